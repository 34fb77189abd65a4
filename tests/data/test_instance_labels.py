"""An instance target's labels: body, border and contact bits, on shapes and on real labels."""

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import torch
from rasterio.transform import from_origin
from rastervision.core.box import Box
from scipy.ndimage import binary_erosion
from shapely import affinity
from shapely.geometry import box

from benchmark.data.constants import BODY_BIT, BORDER_BIT, CONTACT_BIT, IGNORE_LABEL
from benchmark.data.instance_labels import body_labels, instance_bits, instance_reach
from benchmark.data.label_source import (
    InstanceLabelSourceConfig,
    NoDataAsBackgroundLabelSourceConfig,
)
from benchmark.errors import InputError
from benchmark.training.losses import body_target
from tests.fixtures.rasters import rgba, write_raster

SAMPLE_LABELS = "data/kampala_sample/train_tier_1/kam/94f080-labels/94f080.geojson"
# Two buildings of the sample 0.15 m apart (a shared wall, as OSM draws one).
NEIGHBOURS = (29, 28)  # their rows in the GeoJSON (osm_id checked below)
GSD = 0.3


# (label, its body): binary labels are their own body; instance ones keep their body bit.
BODY_TABLE = [
    (0, 0),
    (1, 1),
    (IGNORE_LABEL, IGNORE_LABEL),
    (BODY_BIT | BORDER_BIT, 1),
    (BODY_BIT | CONTACT_BIT, 1),
    (BODY_BIT | BORDER_BIT | CONTACT_BIT, 1),
    (BORDER_BIT, 0),
    (CONTACT_BIT, 0),
    (BORDER_BIT | CONTACT_BIT, 0),
]


def _bit(bits: np.ndarray, bit: int) -> np.ndarray:
    return (bits & bit) > 0


class TestInstanceBits:
    def test_a_shared_wall_has_a_contact_band_and_each_building_its_border(self):
        # Columns 2-9 and 10-15, rows 2-7: the wall between columns 9 and 10.
        bits = instance_bits([box(2, 2, 10, 8), box(10, 2, 16, 8)], (12, 20), 2, 4)
        body = _bit(bits, BODY_BIT)
        assert body[2:8, 2:16].all() and body.sum() == 6 * 14
        border = _bit(bits, BORDER_BIT)
        assert not (border & ~body).any(), "the border is inside the buildings"
        row = border[5]
        assert row[2:4].all() and not row[4:8].any() and row[8:12].all(), "2 px each side"
        contact = _bit(bits, CONTACT_BIT)
        assert contact[2:8, 8:12].all(), "4 px across the wall, 2 in each building"
        assert not contact[:, :8].any() and not contact[:, 12:].any()

    def test_a_lone_building_has_no_contact(self):
        bits = instance_bits([box(5, 5, 15, 15)], (20, 20), 2, 4)
        assert not _bit(bits, CONTACT_BIT).any()
        assert _bit(bits, BORDER_BIT).sum() == 10 * 10 - 6 * 6

    def test_buildings_apart_by_less_than_the_contact_width_touch_across_the_gap(self):
        # Each dilated by 2 px: across a 3 px gap they overlap in 1 px (4 - 3), its middle.
        near = instance_bits([box(2, 2, 8, 8), box(11, 2, 16, 8)], (10, 20), 1, 4)
        assert _bit(near, CONTACT_BIT)[4, 7:12].tolist() == [False, False, True, False, False]
        far = instance_bits([box(2, 2, 8, 8), box(13, 2, 18, 8)], (10, 20), 1, 4)
        assert not _bit(far, CONTACT_BIT).any()

    def test_a_building_past_the_edge_has_no_border_along_the_cut(self):
        bits = instance_bits([box(-20, 2, 8, 8)], (10, 10), 2, 4)
        border = _bit(bits, BORDER_BIT)
        assert not border[4:6, 0:5].any() and border[4:6, 6:8].all()

    def test_a_building_just_past_the_edge_makes_contact(self):
        bits = instance_bits([box(0, 0, 5, 10), box(5, 0, 12, 10)], (10, 4), 1, 4)
        assert _bit(bits, CONTACT_BIT)[:, 3].all()

    @pytest.mark.parametrize(
        "body",
        [body_labels, lambda labels: body_target(torch.from_numpy(labels)).numpy()],
        ids=["numpy body_labels", "torch body_target"],
    )
    def test_the_body_of_labels_is_the_body_bit_and_binary_labels_are_themselves(self, body):
        labels, bodies = np.array(BODY_TABLE, dtype=np.uint8).T
        assert body(labels).tolist() == bodies.tolist()

    @pytest.mark.parametrize(("border_px", "contact_px"), [(2, 4), (1, 8), (3, 2), (0.5, 5)])
    def test_a_window_with_the_buildings_in_reach_has_the_whole_grids_bits(
        self, border_px, contact_px
    ):
        # Buildings in a row, 0 to 6 px apart (some share a wall), around and across a window.
        buildings, x = [], 0
        for gap in (0, 3, 1, 6, 0, 2, 4, 0, 5, 1):
            buildings.append(box(x, 4 + gap, x + 4 + gap, 30 - gap))
            x += 4 + 2 * gap
        whole = instance_bits(buildings, (34, x), border_px, contact_px)
        reach = instance_reach(border_px, contact_px)
        for c0, c1 in ((9, 21), (20, 33), (30, 44)):
            reached = box(c0 - reach, -reach, c1 + reach, 34 + reach)
            near = [affinity.translate(b, -c0) for b in buildings if b.intersects(reached)]
            window = instance_bits(near, (34, c1 - c0), border_px, contact_px)
            np.testing.assert_array_equal(window, whole[:, c0:c1])


def _sample_neighbours(repo_root: Path) -> gpd.GeoDataFrame:
    labels = gpd.read_file(repo_root / SAMPLE_LABELS).to_crs("EPSG:32636")
    pair = labels.iloc[list(NEIGHBOURS)]
    assert pair.geometry.iloc[0].distance(pair.geometry.iloc[1]) < 0.2  # the sample's pair
    return pair


def _scene(tmp_path: Path, repo_root: Path, label_source, config, data=None):
    """A scene at 0.3 m over the sample's two neighbours, its labels the sample's own."""
    minx, miny, maxx, maxy = _sample_neighbours(repo_root).total_bounds
    width, height = int((maxx - minx) / GSD) + 20, int((maxy - miny) / GSD) + 20
    transform = from_origin(minx - 10 * GSD, maxy + 10 * GSD, GSD, GSD)
    if data is None:
        data = rgba(height, width, notch=False)
    image = write_raster(tmp_path / "scene.tif", data, transform=transform)
    return label_source(image, str(repo_root / SAMPLE_LABELS), config), transform


class TestSampleLabels:
    def test_the_sample_neighbours_have_contact_between_them_and_a_border(
        self, tmp_path, repo_root, label_source
    ):
        source, transform = _scene(tmp_path, repo_root, label_source, InstanceLabelSourceConfig)
        assert source.border_px == pytest.approx(2) and source.contact_px == pytest.approx(4)
        bits = source.get_label_arr()
        binary, _ = _scene(
            tmp_path / "b", repo_root, label_source, NoDataAsBackgroundLabelSourceConfig
        )
        np.testing.assert_array_equal(body_labels(bits), binary.get_label_arr())
        # Where the two come closest: contact there, and in no pixel far from both.
        first, second = _sample_neighbours(repo_root).geometry
        meeting = first.buffer(0.5).intersection(second.buffer(0.5)).centroid
        col, row = ~transform * (meeting.x, meeting.y)
        contact = _bit(bits, CONTACT_BIT)
        assert contact[int(row) - 1 : int(row) + 2, int(col) - 1 : int(col) + 2].any()
        assert 0 < contact.sum() < _bit(bits, BODY_BIT).sum() / 4
        # A 2 px border inside the bodies: every edge pixel, not their middles.
        border, body = _bit(bits, BORDER_BIT), _bit(bits, BODY_BIT)
        assert not (border & ~body).any()
        assert not (body & ~binary_erosion(body) & ~border).any()
        assert not (border & binary_erosion(body, iterations=3)).any()
        assert (body & ~binary_erosion(body, iterations=2) & ~border).sum() < 0.1 * border.sum()

    def test_no_imagery_is_background_in_every_bit(self, tmp_path, repo_root, label_source):
        source, _ = _scene(tmp_path, repo_root, label_source, InstanceLabelSourceConfig)
        height, width = source.get_label_arr().shape
        data = np.full((4, height, width), 255, dtype=np.uint8)
        data[3, :, : width // 2] = 0  # no imagery in the left half
        source, _ = _scene(tmp_path / "n", repo_root, label_source, InstanceLabelSourceConfig, data)
        bits = source.get_label_arr()
        assert not bits[:, : width // 2].any() and bits[:, width // 2 :].any()
        beyond = source.get_label_arr(Box(-5, -5, 10, 10))  # past the scene's corner
        assert not beyond[:5].any() and not beyond[:, :5].any()

    def test_pixels_in_degrees_are_refused(self, tmp_path, repo_root, label_source):
        image = write_raster(
            tmp_path / "deg.tif",
            rgba(8, 8, notch=False),
            crs="EPSG:4326",
            transform=from_origin(32.5, 0.35, 1e-5, 1e-5),
        )
        with pytest.raises(InputError, match="degrees"):
            label_source(image, str(repo_root / SAMPLE_LABELS), InstanceLabelSourceConfig)
