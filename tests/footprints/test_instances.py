"""Instance decoding: touching buildings of the Kampala sample come out apart, whole, once.

The probability bands are drawn from the sample's real building outlines as an instance model
would predict them: P(body) high inside each building and lower on its border band and on the
contact pixels between two buildings (still above the threshold there, so touching buildings
form one blob of the mask), P(border) and P(contact) high on theirs.
"""

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
import shapely.affinity
from affine import Affine
from rasterio.features import rasterize, shapes
from rasterio.transform import from_origin
from scipy import ndimage

from benchmark.errors import InputError
from benchmark.footprints.instances import InstanceOptions, seed_mask
from benchmark.footprints.outlines import OutlineOptions, footprints_of_raster
from benchmark.footprints.vectorize import PixelBuilding, vectorize_probabilities
from tests.fixtures.rasters import write_raster

KAMPALA = Path("data/kampala_sample/train_tier_1/kam")
SCENE_LABELS = KAMPALA / "8a5983-labels/8a5983.geojson"
OTHER_LABELS = KAMPALA / "94f080-labels/94f080.geojson"
UTM = "EPSG:32636"
PIXEL = 0.25  # m
THRESHOLD = 0.5
# P(body) inside a building and on its border band or contact pixels; P(border), P(contact) there.
BODY, BODY_EDGE, SURE = 245, 170, 235


def real_buildings(path: Path) -> list[shapely.Polygon]:
    return list(gpd.read_file(path).to_crs(UTM).geometry)


def touching_pair() -> list[shapely.Polygon]:
    """The two buildings of the sample that touch with the most area each (64 and 159 m²)."""
    polygons = real_buildings(SCENE_LABELS)
    pairs = [
        (min(a.area, b.area), i, j)
        for i, a in enumerate(polygons)
        for j, b in enumerate(polygons[i + 1 :], start=i + 1)
        if a.distance(b) < 0.01
    ]
    _, i, j = max(pairs)
    return [polygons[i], polygons[j]]


def largest_building() -> shapely.Polygon:
    """The largest building of the sample (329 m², 29 x 17 m; its ring touches itself)."""
    return max(real_buildings(OTHER_LABELS), key=lambda p: p.area)


@dataclass
class Scene:
    """Probability bands drawn from ``truth`` (in pixel coordinates), and where they are."""

    bands: np.ndarray  # uint8 (3, H, W): body, border, contact
    truth: list[shapely.Polygon]  # in pixels (x = column, y = row)
    transform: Affine

    def write(self, path: Path, bands: int = 3) -> str:
        return write_raster(path, self.bands[:bands], crs=UTM, transform=self.transform)


def draw_scene(polygons: list[shapely.Polygon], margin: float = 3.0, border: int = 2) -> Scene:
    """Bands of an instance model that got ``polygons`` (UTM) right, ``margin`` m around them."""
    west, south, east, north = shapely.union_all(polygons).bounds
    transform = from_origin(west - margin, north + margin, PIXEL, PIXEL)
    shape = (round((north - south + 2 * margin) / PIXEL), round((east - west + 2 * margin) / PIXEL))
    ids = rasterize(
        [(p, k) for k, p in enumerate(polygons, start=1)], out_shape=shape, transform=transform
    )
    near = np.zeros(shape, np.uint8)  # how many buildings lie within `border` px
    body = np.where(ids > 0, BODY, 0).astype(np.uint8)
    edge = np.zeros(shape, np.uint8)
    for k in range(1, len(polygons) + 1):
        inside = ids == k
        near += ndimage.binary_dilation(inside, iterations=border)
        edge[inside & ~ndimage.binary_erosion(inside, iterations=border)] = SURE
    contact = np.where(near >= 2, SURE, 0).astype(np.uint8)
    body[edge > 0] = BODY_EDGE
    body[(contact > 0) & (ids > 0)] = BODY_EDGE  # the gap between two stays background
    to_pixels = (~transform).to_shapely()
    truth = [shapely.make_valid(shapely.affinity.affine_transform(p, to_pixels)) for p in polygons]
    return Scene(np.stack([body, edge, contact]), truth, transform)


def traced(path: str, block_size: int = 1024, halo: int = 256) -> list[PixelBuilding]:
    options = InstanceOptions(halo=halo)
    return list(vectorize_probabilities(path, THRESHOLD, block_size, options))


def iou(a: shapely.Geometry, b: shapely.Geometry) -> float:
    return a.intersection(b).area / a.union(b).area


def best_ious(found: list[PixelBuilding], truth: list[shapely.Polygon]) -> list[float]:
    return [max(iou(b.polygon, t) for b in found) for t in truth]


def key(building: PixelBuilding) -> tuple:
    return building.pixels, building.polygon.bounds


def assert_same(a: list[PixelBuilding], b: list[PixelBuilding]) -> None:
    assert len(a) == len(b)
    for x, y in zip(sorted(a, key=key), sorted(b, key=key), strict=True):
        assert x.polygon.normalize().equals(y.polygon.normalize())
        assert (x.pixels, x.prob_sum) == (y.pixels, y.prob_sum)


def assert_each_pixel_once(found: list[PixelBuilding], mask: np.ndarray) -> None:
    assert sum(b.pixels for b in found) == int(mask.sum())
    polygons = [b.polygon for b in found]
    assert sum(p.area for p in polygons) == pytest.approx(shapely.union_all(polygons).area)


class TestTouchingBuildings:
    def test_two_touching_buildings_are_two(self, tmp_path):
        scene = draw_scene(touching_pair())
        body = scene.bands[0]
        assert ndimage.label(body > 127)[1] == 1  # one blob: components cannot split it
        found = traced(scene.write(tmp_path / "p.tif"))
        assert len(found) == 2
        assert min(best_ious(found, scene.truth)) >= 0.8
        assert_each_pixel_once(found, body > 127)

    def test_the_same_body_alone_is_one_building(self, tmp_path):
        scene = draw_scene(touching_pair())
        assert len(traced(scene.write(tmp_path / "p.tif", bands=1))) == 1

    @pytest.mark.parametrize("halo", [256, 8])
    def test_split_by_block_edges_they_stay_two(self, tmp_path, halo):
        scene = draw_scene(touching_pair())
        found = traced(scene.write(tmp_path / "p.tif"), block_size=40, halo=halo)
        assert len(found) == 2
        assert min(best_ious(found, scene.truth)) >= 0.8

    def test_footprints_in_metres(self, tmp_path):
        pair = touching_pair()
        prob = draw_scene(pair).write(tmp_path / "p.tif")
        found = list(footprints_of_raster(prob, THRESHOLD, OutlineOptions(), block_size=64))
        assert sorted(f.area_m2 for f in found) == pytest.approx(
            sorted(p.area for p in pair), rel=0.1
        )
        assert all(0.5 < f.confidence < 1 for f in found)


class TestLargeBuilding:
    @pytest.mark.parametrize("halo", [256, 8])  # larger than the building, and much smaller
    def test_across_four_blocks_it_is_one_polygon(self, tmp_path, halo):
        scene = draw_scene([largest_building()])
        (truth,) = scene.truth
        block = round((truth.bounds[1] + truth.bounds[3]) / 2)  # a block corner inside it
        assert truth.contains(shapely.Point(block, block))
        found = traced(scene.write(tmp_path / "p.tif"), block_size=block, halo=halo)
        assert len(found) == 1
        assert iou(found[0].polygon, truth) >= 0.9
        assert found[0].pixels == int((scene.bands[0] > 127).sum())
        body = scene.bands[0][scene.bands[0] > 127]
        assert found[0].confidence == pytest.approx(body.mean() / 255)


class TestSeedless:
    def test_a_shed_all_border_is_still_a_building(self, tmp_path):
        shed = min(real_buildings(OTHER_LABELS), key=lambda p: p.area)  # 1.6 m²
        scene = draw_scene([shed], border=4)
        body, border, contact = scene.bands
        assert not seed_mask(body, border, contact, InstanceOptions().seed_threshold).any()
        (found,) = traced(scene.write(tmp_path / "p.tif"))
        assert found.pixels == int((body > 127).sum())


class TestBlocks:
    def test_blocks_change_nothing(self, tmp_path):
        scene = draw_scene(real_buildings(SCENE_LABELS))  # 37 buildings, several touching
        mask = scene.bands[0] > 127
        blobs, _ = ndimage.label(mask)
        largest = max(max(s.stop - s.start for s in box) for box in ndimage.find_objects(blobs))
        assert 64 < largest < 128  # touching buildings 26 m long: more than a small block
        path = scene.write(tmp_path / "p.tif")
        whole = traced(path, block_size=1024)
        assert len(whole) == len(scene.truth)
        assert np.median(best_ious(whole, scene.truth)) >= 0.8
        assert_each_pixel_once(whole, mask)
        for block_size in (37, 64):
            assert_same(traced(path, block_size=block_size, halo=128), whole)

    def test_a_halo_smaller_than_the_blobs_still_decodes_each_building(self, tmp_path):
        # Not guaranteed (windows see parts of blobs), but seeds are local: here it holds.
        scene = draw_scene(real_buildings(SCENE_LABELS))
        found = traced(scene.write(tmp_path / "p.tif"), block_size=20, halo=4)
        assert_each_pixel_once(found, scene.bands[0] > 127)
        assert len(found) == len(scene.truth)
        assert min(best_ious(found, scene.truth)) >= 0.8

    def test_one_band_decodes_by_components(self, tmp_path):
        scene = draw_scene(real_buildings(SCENE_LABELS))
        body = scene.bands[0]
        labels, _ = ndimage.label(body > 127)
        expected = [shapely.geometry.shape(g) for g, _ in shapes(labels, mask=labels > 0)]
        found = traced(scene.write(tmp_path / "p.tif", bands=1), block_size=50)
        assert len(found) == len(expected)
        for polygon in expected:  # the same outline, perhaps with more points on its sides
            assert sum(b.polygon.equals(polygon) for b in found) == 1

    def test_two_bands_are_refused(self, tmp_path):
        path = draw_scene(touching_pair()).write(tmp_path / "p.tif", bands=2)
        with pytest.raises(InputError, match="2 probability bands"):
            traced(path)

    @pytest.mark.parametrize(
        ("options", "match"), [({"halo": 0}, "halo"), ({"seed_threshold": 1.0}, "seed")]
    )
    def test_bad_options(self, options, match):
        with pytest.raises(ValueError, match=match):
            InstanceOptions(**options)
