"""The generated catalog is what the other tests take it for: real-shaped, consistent, fast."""

import json
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.errors import NotGeoreferencedWarning

from benchmark.labels import LabelRasterizer, read_building_labels
from benchmark.stac import list_test_chips, read_training_scenes
from tests.data.opencities import make_opencities_catalog

KAMPALA = Path("data/kampala_sample/train_tier_1")


def _shape(obj):
    """The key structure of a JSON document (dict keys in order, list element shapes)."""
    if isinstance(obj, dict):
        return {k: _shape(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_shape(obj[0])] if obj else []
    return type(obj).__name__


def _json(path: Path):
    return json.loads(path.read_text())


def test_default_catalog_is_fast(tmp_path):
    start = time.perf_counter()
    make_opencities_catalog(tmp_path)  # two 1024 px chips included
    assert time.perf_counter() - start < 1.5


def test_stac_json_has_the_kampala_structure(tmp_path):
    fixture = make_opencities_catalog(tmp_path, test_chip_size=8)
    ours = Path(fixture.catalog_uri).parent
    for real, generated in [
        ("catalog.json", "catalog.json"),
        ("kam/collection.json", "kam/collection.json"),
        ("kam/94f080/94f080.json", "kam/aaa111/aaa111.json"),
        ("kam/94f080-labels/94f080-labels.json", "kam/aaa111-labels/aaa111-labels.json"),
    ]:
        real_json, our_json = _json(KAMPALA / real), _json(ours / generated)
        assert _shape(our_json) == _shape(real_json), generated
        assert our_json["stac_version"] == "0.8.1"
    item = _json(ours / "kam/aaa111/aaa111.json")
    assert item["properties"]["datetime"] == "2022-12-12 00:00:00Z"  # the competition's form


class TestScene:
    @pytest.fixture
    def fixture(self, tmp_path):
        return make_opencities_catalog(tmp_path, test_chip_size=8)

    def test_imagery_is_rgba_at_7_5_cm_with_a_notch(self, fixture):
        scene = read_training_scenes(fixture.catalog_uri)["kam/aaa111"]
        with rasterio.open(scene.image_uri) as src:
            assert (src.count, src.dtypes[0], src.crs.to_epsg()) == (4, "uint8", 32636)
            assert (src.width, src.height, src.res) == (96, 80, (0.075, 0.075))
            pixels = src.read()
        alpha = pixels[3]
        assert alpha[0, 0] == 0 and alpha[-1, -1] == 255 and set(np.unique(alpha)) == {0, 255}
        assert not pixels[:3, alpha == 0].any()  # RGB is 0 outside the imagery

    @pytest.mark.parametrize(
        ("crs", "version"),
        [("EPSG:32636", "0.8.1"), ("EPSG:32737", "1.0.0"), ("EPSG:3857", "1.0.0")],
    )
    def test_labels_are_the_bright_roofs(self, tmp_path, crs, version):
        fixture = make_opencities_catalog(tmp_path, crs=crs, stac_version=version, test_chip_size=8)
        for scene in read_training_scenes(fixture.catalog_uri).values():
            geoms, report = read_building_labels(scene.label_uri)
            assert report.kept == report.features > 2
            with rasterio.open(scene.image_uri) as src:
                pixels = src.read()
                truth = LabelRasterizer(geoms, src.crs).window(src.transform, src.shape)
                right_edge = src.bounds.right
            valid = pixels[3] == 255
            roofs = (pixels[:3] >= 190).all(axis=0)
            assert np.array_equal(truth.astype(bool)[valid], roofs[valid])
            # One building runs past the image edge, as real labels do.
            assert any(g.bounds[2] > right_edge for g in LabelRasterizer(geoms, crs).geoms)

    def test_labels_file_has_the_real_files_style(self, fixture):
        scene = read_training_scenes(fixture.catalog_uri)["kam/aaa111"]
        lines = Path(scene.label_uri).read_text().splitlines()
        assert lines[1] == '"type": "FeatureCollection",'
        assert "urn:ogc:def:crs:OGC:1.3:CRS84" in lines[2]
        features = [json.loads(line.rstrip(",")) for line in lines[4:-2]]
        assert all(f["properties"]["building"] == "yes" for f in features)
        label_item = Path(scene.label_uri).with_name("aaa111-labels.json")
        overview = _json(label_item)["properties"]["label:overviews"][0]
        assert overview["counts"] == [{"name": "yes", "count": len(features)}]


def test_test_chips_are_not_georeferenced_and_listed_by_their_catalog(tmp_path):
    fixture = make_opencities_catalog(tmp_path, test_chip_size=32, test_chip_ids=("a1", "b2"))
    chips = list_test_chips(fixture.test_catalog_uri)
    assert [c.id for c in chips] == fixture.test_chip_ids == ["a1", "b2"]
    for chip in chips:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(chip.uri) as src:
                assert (src.crs, src.transform.is_identity) == (None, True)
                assert (src.count, src.width, src.height, src.dtypes[0]) == (4, 32, 32, "uint8")
