import json

import numpy as np
import pytest
import rasterio
import shapely
from shapely.geometry import box, mapping

from benchmark.errors import InputError
from benchmark.labels import LabelRasterizer, read_building_labels, write_labels_geojson
from tests.rasters import TRANSFORM

KAMPALA = "data/kampala_sample/train_tier_1/kam"


def _write(tmp_path, obj, name="labels.geojson"):
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return str(path)


def _fc(*geometries, crs=None):
    fc = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "geometry": g} for g in geometries],
    }
    if crs:
        fc["crs"] = {"type": "name", "properties": {"name": crs}}
    return fc


def test_real_invalid_polygon_is_repaired():
    geoms, report = read_building_labels(f"{KAMPALA}/94f080-labels/94f080.geojson")
    assert (report.features, report.repaired, report.kept) == (58, 1, 58)
    assert all(g.is_valid for g in geoms)


def test_null_and_empty_geometries_are_dropped_and_counted(tmp_path):
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    uri = _write(
        tmp_path,
        _fc(mapping(box(0, 0, 1, 1)), None, {"type": "Polygon", "coordinates": []}, bowtie),
    )
    _, report = read_building_labels(uri)
    assert (report.kept, report.dropped_null, report.dropped_empty, report.repaired) == (2, 1, 1, 1)


def test_empty_feature_collection_means_no_buildings(tmp_path):
    assert read_building_labels(_write(tmp_path, _fc()))[0] == []


def test_crs_member_in_utm_is_honored(tmp_path):
    utm = box(455_000, 39_000, 455_010, 39_010)
    geoms, _ = read_building_labels(
        _write(tmp_path, _fc(mapping(utm), crs="urn:ogc:def:crs:EPSG::32636"))
    )
    lon, lat = geoms[0].centroid.coords[0]
    assert 32.5 < lon < 32.7 and 0.3 < lat < 0.4  # Kampala


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{oops", "not valid JSON"),
        ('{"foo": 1}', "not GeoJSON"),
        ('{"type": "Point"}', "not GeoJSON building"),
    ],
)
def test_unreadable_label_files_are_named(tmp_path, content, problem):
    with pytest.raises(InputError, match=rf"labels\.geojson: {problem}"):
        read_building_labels(_write(tmp_path, content))


def test_written_labels_read_back(tmp_path):
    geoms = [box(32.59, 0.35, 32.5901, 0.3501)]
    write_labels_geojson(geoms, str(tmp_path / "out.geojson"))
    back, report = read_building_labels(str(tmp_path / "out.geojson"))
    assert report.kept == 1 and shapely.equals_exact(back[0], geoms[0], 1e-12)


def test_rasterized_real_labels_match_the_documented_building_fraction():
    geoms, _ = read_building_labels(f"{KAMPALA}/8a5983-labels/8a5983.geojson")
    with rasterio.open(f"{KAMPALA}/8a5983/8a5983.tif") as src:
        truth = LabelRasterizer(geoms, src.crs).window(src.transform, (src.height, src.width))
        valid = src.read(4) == 255
    assert truth[valid].mean() == pytest.approx(0.2601, abs=0.005)  # shared/data README


def test_rasterize_in_another_utm_zone_and_by_windows():
    crs = "EPSG:32737"
    to_wgs84 = __import__("pyproj").Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform
    x0, y0 = TRANSFORM @ (2, 2)
    x1, y1 = TRANSFORM @ (6, 5)
    building = shapely.ops.transform(
        to_wgs84, box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
    )
    rasterizer = LabelRasterizer([building], crs)
    full = rasterizer.window(TRANSFORM, (8, 8))
    assert full.sum() == 4 * 3
    right_half = rasterizer.window(TRANSFORM @ TRANSFORM.translation(4, 0), (8, 4))
    assert np.array_equal(right_half, full[:, 4:])
