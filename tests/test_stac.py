import json
import shutil

import pytest

from benchmark.errors import InputError
from benchmark.stac import list_test_chips, parse_scene_ids, read_training_scenes, select_scenes
from tests.data.opencities import make_opencities_catalog

KAMPALA = "data/kampala_sample/train_tier_1/catalog.json"
NIA = "/work/shared/data/opencities_stac_nia/catalog.json"


def test_real_kampala_catalog():
    scenes = read_training_scenes(KAMPALA)
    assert sorted(scenes) == ["kam/8a5983", "kam/94f080"]
    scene = select_scenes(scenes, ["kam/94f080"], KAMPALA)[0]
    assert scene.image_uri.endswith("kam/94f080/94f080.tif")
    assert scene.label_uri.endswith("kam/94f080-labels/94f080.geojson")


@pytest.mark.skipif(not shutil.os.path.exists(NIA), reason="shared data not present")
def test_real_nia_catalog_reads_and_reports_its_missing_image():
    scenes = read_training_scenes(NIA)  # label item without a source link: paired by id
    assert list(scenes) == ["nia/825a50"]
    with pytest.raises(InputError, match=r"scene nia/825a50: image .*825a50\.tif does not exist"):
        select_scenes(scenes, ["nia/825a50"], NIA)


def test_unknown_id_lists_the_catalogs_ids():
    with pytest.raises(
        InputError, match=r"no scene acc/d41d81; the catalog has: kam/8a5983, kam/94f080"
    ):
        select_scenes(read_training_scenes(KAMPALA), ["acc/d41d81"], KAMPALA)


@pytest.mark.parametrize("version", ["0.8.1", "1.0.0"])
def test_generated_catalog_in_both_stac_versions(tmp_path, version):
    fixture = make_opencities_catalog(tmp_path, stac_version=version, test_chip_size=8)
    assert sorted(read_training_scenes(fixture.catalog_uri)) == ["kam/aaa111", "kam/bbb222"]


@pytest.fixture
def catalog(tmp_path):
    return make_opencities_catalog(tmp_path, test_chip_size=8)


def _edit(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


class TestBrokenCatalogs:
    def test_missing_catalog(self, tmp_path):
        with pytest.raises(InputError, match=r"nope\.json: STAC catalog not found"):
            read_training_scenes(str(tmp_path / "nope.json"))

    def test_not_json(self, catalog, tmp_path):
        (tmp_path / "train_tier_1" / "catalog.json").write_text("<html>")
        with pytest.raises(InputError, match=r"catalog\.json: not valid JSON"):
            read_training_scenes(catalog.catalog_uri)

    def test_not_stac(self, catalog, tmp_path):
        (tmp_path / "train_tier_1" / "catalog.json").write_text('{"hello": 1}')
        with pytest.raises(InputError, match=r"catalog\.json: not a STAC catalog"):
            read_training_scenes(catalog.catalog_uri)

    def test_broken_child_link(self, catalog, tmp_path):
        (tmp_path / "train_tier_1" / "kam" / "collection.json").unlink()
        with pytest.raises(InputError, match=r"catalog\.json: a link does not resolve"):
            read_training_scenes(catalog.catalog_uri)

    def test_item_without_image_asset_is_skipped_and_selecting_it_fails(self, catalog, tmp_path):
        item = tmp_path / "train_tier_1" / "kam" / "aaa111" / "aaa111.json"
        _edit(item, lambda d: d.update(assets={}))
        scenes = read_training_scenes(catalog.catalog_uri)
        assert list(scenes) == ["kam/bbb222"]
        with pytest.raises(InputError, match="no scene kam/aaa111"):
            select_scenes(scenes, ["kam/aaa111"], catalog.catalog_uri)

    def test_label_source_link_to_a_missing_item(self, catalog, tmp_path):
        labels = tmp_path / "train_tier_1" / "kam" / "aaa111-labels" / "aaa111-labels.json"

        def add_source(d):
            d["links"].append({"rel": "source", "href": "../zzz999/zzz999.json"})

        _edit(labels, add_source)
        with pytest.raises(InputError, match="no scene kam/aaa111"):
            select_scenes(read_training_scenes(catalog.catalog_uri), ["kam/aaa111"], "c")

    def test_asset_href_that_does_not_resolve(self, catalog, tmp_path):
        (tmp_path / "train_tier_1" / "kam" / "aaa111-labels" / "aaa111.geojson").unlink()
        with pytest.raises(
            InputError, match=r"scene kam/aaa111: labels .*aaa111\.geojson does not exist"
        ):
            select_scenes(read_training_scenes(catalog.catalog_uri), ["kam/aaa111"], "c")


def test_parse_scene_ids():
    assert parse_scene_ids("mon/401175, acc/d41d81") == ["mon/401175", "acc/d41d81"]
    with pytest.raises(InputError, match="not of the form area/id"):
        parse_scene_ids("401175")


class TestTestChips:
    def test_from_catalog_nested_and_flat(self, catalog, tmp_path):
        from_catalog = list_test_chips(catalog.test_catalog_uri)
        assert [c.id for c in from_catalog] == ["c0ffee", "decade"]
        assert list_test_chips(test_img_dir=catalog.test_dir) == from_catalog
        flat = tmp_path / "flat"
        flat.mkdir()
        for chip in from_catalog:
            shutil.copy(chip.uri, flat)
        assert [c.id for c in list_test_chips(test_img_dir=str(flat))] == ["c0ffee", "decade"]

    def test_catalog_ids_with_images_elsewhere(self, catalog):
        chips = list_test_chips(catalog.test_catalog_uri, "s3://bucket/test")
        assert chips[0].uri == "s3://bucket/test/c0ffee/c0ffee.tif"

    def test_empty_and_missing_dirs(self, tmp_path):
        with pytest.raises(InputError, match="no test chips"):
            list_test_chips(test_img_dir=str(tmp_path))
        with pytest.raises(InputError, match="not found"):
            list_test_chips(test_img_dir=str(tmp_path / "nope"))
