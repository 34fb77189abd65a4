"""Training labels: building polygons over no-data pixels are background, as in every output."""

import json

import numpy as np
import pytest
from pyproj import Transformer
from rastervision.core.box import Box

from tests.fixtures.rasters import TRANSFORM, rgba, write_raster

SIDE = 40


def _covering_building(path) -> str:
    """GeoJSON (lon/lat) of one building that covers the whole raster, and 2 px more."""
    to_lonlat = Transformer.from_crs("EPSG:32636", "EPSG:4326", always_xy=True)
    lo, hi = -2, SIDE + 2
    corners = [TRANSFORM * c for c in ((lo, lo), (hi, lo), (hi, hi), (lo, hi), (lo, lo))]
    ring = [list(to_lonlat.transform(x, y)) for x, y in corners]
    feature = {
        "type": "Feature",
        "properties": {},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    return str(path)


@pytest.mark.parametrize("no_data", ["alpha", "nodata value"])
def test_a_building_over_no_data_is_background_there(tmp_path, label_source, no_data):
    data = rgba(SIDE, SIDE)  # no imagery in the top-left quarter
    if no_data == "alpha":
        image = write_raster(tmp_path / "scene.tif", data)
    else:
        image = write_raster(tmp_path / "scene.tif", data[:3], nodata=0)
    source = label_source(image, _covering_building(tmp_path / "b.geojson"))
    labels = source.get_label_arr(Box(0, 0, SIDE, SIDE))
    expected = np.ones((SIDE, SIDE), dtype=labels.dtype)
    expected[: SIDE // 2, : SIDE // 2] = 0
    np.testing.assert_array_equal(labels, expected)


def test_a_window_past_the_scene_edge_is_the_null_class_there(tmp_path, label_source):
    image = write_raster(tmp_path / "scene.tif", rgba(SIDE, SIDE))
    source = label_source(image, _covering_building(tmp_path / "b.geojson"))
    labels = source.get_label_arr(Box(30, 25, 50, 45))  # ymin, xmin, ymax, xmax
    assert labels.shape == (20, 20)
    assert (labels[:10, :15] == 1).all()
    assert (labels[10:] == 0).all() and (labels[:, 15:] == 0).all()
