import json
import logging
from pathlib import Path

import pytest

from benchmark.data.chips import ChipRef, list_test_chips
from benchmark.data.stac import SceneRef, parse_scene_ids, read_training_scenes, select_scenes
from benchmark.errors import InputError
from tests.fixtures.files import edit_json
from tests.fixtures.opencities import make_opencities_catalog

KAMPALA = "data/kampala_sample/train_tier_1/catalog.json"
NIA = "data/opencities_stac_nia/catalog.json"


def _item(catalog, name: str) -> Path:
    """``aaa111`` -> the image item, ``aaa111-labels`` -> the label item."""
    return Path(catalog.catalog_uri).parent / "kam" / name / f"{name}.json"


class TestRealCatalogs:
    def test_kampala_sample(self):
        scenes = read_training_scenes(KAMPALA)
        assert sorted(scenes) == ["kam/8a5983", "kam/94f080"]
        root = Path(KAMPALA).resolve().parent
        assert scenes["kam/94f080"] == SceneRef(
            "kam",
            "94f080",
            str(root / "kam/94f080/94f080.tif"),
            str(root / "kam/94f080-labels/94f080.geojson"),
        )
        assert [s.key for s in select_scenes(scenes, ["kam/94f080", "kam/8a5983"], KAMPALA)] == [
            "kam/94f080",
            "kam/8a5983",
        ]

    def test_nia_reads_logs_its_quirks_and_reports_the_missing_image(self, caplog):
        caplog.set_level(logging.INFO, logger="benchmark.data.stac")
        scenes = read_training_scenes(NIA)
        assert list(scenes) == ["nia/825a50"]
        assert "1 label item(s) without a 'source' link, paired by id" in caplog.text
        with pytest.raises(
            InputError,
            match=r"scene nia/825a50: image \S+/825a50\.tif does not exist "
            r"\(asset 'image' of \S+/nia/825a50/825a50\.json\)",
        ):
            select_scenes(scenes, ["nia/825a50"], NIA)

    def test_unknown_id_lists_the_ids_in_the_catalog(self):
        with pytest.raises(
            InputError,
            match=r"catalog\.json: no scene acc/d41d81; the catalog has: kam/8a5983, kam/94f080",
        ):
            select_scenes(read_training_scenes(KAMPALA), ["acc/d41d81"], KAMPALA)


class TestGeneratedCatalog:
    @pytest.mark.parametrize("version", ["0.8.1", "1.0.0", "1.1.0"])
    def test_every_stac_version(self, tmp_path, version):
        fixture = make_opencities_catalog(tmp_path, stac_version=version, test_chip_size=8)
        scenes = read_training_scenes(fixture.catalog_uri)
        assert sorted(scenes) == fixture.scene_keys
        selected = select_scenes(scenes, fixture.scene_keys, fixture.catalog_uri)
        assert selected[0].image_uri == str(tmp_path / "train_tier_1/kam/aaa111/aaa111.tif")
        assert selected[1].label_uri == str(
            tmp_path / "train_tier_1/kam/bbb222-labels/bbb222.geojson"
        )

    def test_pairs_by_source_link_whatever_the_ids(self, catalog):
        # A label item named unlike its image: only the source link ties them.
        labels = _item(catalog, "aaa111-labels")
        edit_json(labels, lambda d: d.update(id="roofs-of-a"))
        assert read_training_scenes(catalog.catalog_uri)["kam/aaa111"].label_uri.endswith(
            "aaa111-labels/aaa111.geojson"
        )

    def test_a_collection_as_the_catalog_is_one_area(self, catalog):
        collection = str(Path(catalog.catalog_uri).parent / "kam" / "collection.json")
        assert sorted(read_training_scenes(collection)) == catalog.scene_keys

    def test_stac_1_without_type_and_odd_datetimes_are_fixed_up(self, tmp_path, caplog):
        fixture = make_opencities_catalog(tmp_path, stac_version="1.0.0", test_chip_size=8)
        edit_json(Path(fixture.catalog_uri), lambda d: d.pop("type"))
        edit_json(_item(fixture, "aaa111"), lambda d: d["properties"].update(datetime="19/09/2017"))
        edit_json(_item(fixture, "bbb222"), lambda d: d["properties"].pop("datetime"))
        assert sorted(read_training_scenes(fixture.catalog_uri)) == fixture.scene_keys
        assert (
            f"1 STAC file(s) (e.g. {fixture.catalog_uri}): STAC 1.x catalog or collection "
            "without 'type': type inferred" in caplog.text
        )
        assert "2 STAC file(s) (e.g. " in caplog.text
        assert "aaa111.json): item datetime missing or unreadable: ignored" in caplog.text


class TestBrokenCatalogs:
    def test_missing_catalog(self, tmp_path):
        with pytest.raises(InputError, match=r"nope\.json: STAC file not found"):
            read_training_scenes(str(tmp_path / "nope.json"))

    def test_not_json(self, catalog):
        Path(catalog.catalog_uri).write_text("<html>")
        with pytest.raises(InputError, match=r"train_tier_1/catalog\.json: not valid JSON"):
            read_training_scenes(catalog.catalog_uri)

    @pytest.mark.parametrize(
        ("content", "missing"),
        [
            ({"hello": 1}, "stac_version or links"),
            ({"stac_version": "0.8.1", "id": "x"}, "links"),
            ({"stac_version": "0.8.1", "links": {}}, "links list"),
            ([1, 2], "stac_version or links"),
        ],
    )
    def test_json_but_not_stac(self, catalog, content, missing):
        Path(catalog.catalog_uri).write_text(json.dumps(content))
        with pytest.raises(
            InputError, match=rf"train_tier_1/catalog\.json: not a STAC file \(no {missing}\)"
        ):
            read_training_scenes(catalog.catalog_uri)

    def test_an_item_given_as_the_catalog(self, catalog):
        with pytest.raises(InputError, match=r"aaa111\.json: a STAC item, not a catalog"):
            read_training_scenes(str(_item(catalog, "aaa111")))

    def test_broken_child_link_names_both_files(self, catalog):
        (Path(catalog.catalog_uri).parent / "kam" / "collection.json").unlink()
        with pytest.raises(
            InputError,
            match=r"kam/collection\.json: STAC file not found "
            r"\(linked from \S+train_tier_1/catalog\.json\)",
        ):
            read_training_scenes(catalog.catalog_uri)

    def test_broken_item_link_names_the_collection(self, catalog):
        _item(catalog, "bbb222").unlink()
        with pytest.raises(
            InputError, match=r"bbb222\.json: STAC file not found \(linked from \S+collection\.json"
        ):
            read_training_scenes(catalog.catalog_uri)

    def test_a_linked_item_that_is_not_stac(self, catalog):
        _item(catalog, "bbb222").write_text('{"id": "bbb222"}')
        with pytest.raises(InputError, match=r"bbb222\.json: not a STAC file"):
            read_training_scenes(catalog.catalog_uri)

    def test_a_linked_item_pystac_cannot_parse(self, catalog):
        edit_json(_item(catalog, "bbb222"), lambda d: d["links"].append({"rel": "x"}))
        with pytest.raises(InputError, match=r"bbb222\.json: not a readable STAC object"):
            read_training_scenes(catalog.catalog_uri)

    def test_item_without_image_asset_is_an_error_only_when_selected(self, catalog, caplog):
        edit_json(_item(catalog, "aaa111"), lambda d: d.update(assets={}))
        scenes = read_training_scenes(catalog.catalog_uri)
        assert list(scenes) == ["kam/bbb222"]
        assert "scene kam/aaa111 skipped" in caplog.text
        assert select_scenes(scenes, ["kam/bbb222"], catalog.catalog_uri)
        with pytest.raises(
            InputError,
            match=r"scene kam/aaa111 cannot be used: item \S+aaa111\.json has no 'image' or "
            r"'labels' asset \(it has: none\)",
        ):
            select_scenes(scenes, ["kam/aaa111"], catalog.catalog_uri)

    def test_item_without_labels_asset(self, catalog):
        edit_json(_item(catalog, "aaa111-labels"), lambda d: d.update(assets={"x": {"href": "x"}}))
        with pytest.raises(InputError, match=r"aaa111-labels\.json has no 'image' or 'labels'"):
            select_scenes(read_training_scenes(catalog.catalog_uri), ["kam/aaa111"], "c")

    def test_image_item_without_a_label_item(self, catalog):
        collection = Path(catalog.catalog_uri).parent / "kam" / "collection.json"
        edit_json(
            collection,
            lambda d: d.update(
                links=[ln for ln in d["links"] if "aaa111-labels" not in ln["href"]]
            ),
        )
        with pytest.raises(InputError, match=r"image item \S+aaa111\.json has no label item"):
            select_scenes(read_training_scenes(catalog.catalog_uri), ["kam/aaa111"], "c")

    def test_label_source_link_that_does_not_resolve(self, catalog):
        def point_elsewhere(d):
            next(ln for ln in d["links"] if ln["rel"] == "source")["href"] = "../zzz/zzz.json"

        edit_json(_item(catalog, "aaa111-labels"), point_elsewhere)
        scenes = read_training_scenes(catalog.catalog_uri)
        with pytest.raises(
            InputError,
            match=r"label item \S+aaa111-labels\.json: its source link \S+kam/zzz/zzz\.json is "
            "not an image item of the catalog",
        ):
            select_scenes(scenes, ["kam/aaa111"], "c")

    @pytest.mark.parametrize(
        ("name", "asset", "file"),
        [("aaa111-labels", "labels", r"aaa111\.geojson"), ("aaa111", "image", r"aaa111\.tif")],
    )
    def test_asset_href_that_does_not_resolve(self, catalog, name, asset, file):
        edit_json(_item(catalog, name), lambda d: d["assets"][asset].update(href=f"./../x/{asset}"))
        scenes = read_training_scenes(catalog.catalog_uri)  # not checked until selected
        with pytest.raises(
            InputError,
            match=rf"scene kam/aaa111: {asset} \S+/kam/x/{asset} does not exist "
            rf"\(asset '{asset}' of \S+{name}\.json\)",
        ):
            select_scenes(scenes, ["kam/aaa111"], "c")

    def test_select_from_a_plain_dict(self, tmp_path):
        scene = SceneRef("a", "b", str(tmp_path / "b.tif"), str(tmp_path / "b.geojson"))
        with pytest.raises(InputError, match=r"scene a/b: image \S+b\.tif does not exist$"):
            select_scenes({"a/b": scene}, ["a/b"], "c")


class TestParseSceneIds:
    @pytest.mark.parametrize(
        "value",
        ["mon/401175,acc/d41d81", " mon/401175 , acc/d41d81,", ["mon/401175", "acc/d41d81"]],
    )
    def test_lists_and_comma_separated(self, value):
        assert parse_scene_ids(value) == ["mon/401175", "acc/d41d81"]

    @pytest.mark.parametrize("bad", ["401175", "mon/", "/401175", "a/b/c", "mon /1"])
    def test_not_area_slash_id(self, bad):
        with pytest.raises(InputError, match="not of the form area/id"):
            parse_scene_ids(f"acc/d41d81,{bad}")

    def test_repeated(self):
        with pytest.raises(InputError, match="more than once: acc/d41d81"):
            parse_scene_ids("acc/d41d81,mon/401175,acc/d41d81")


@pytest.mark.aws
def test_catalogs_and_chips_on_s3(catalog, tmp_path, s3_upload):
    data = s3_upload(tmp_path, "s3://opencities/data")
    train_uri = f"{data}/train_tier_1/catalog.json"
    scenes = read_training_scenes(train_uri)
    assert [s.image_uri for s in select_scenes(scenes, catalog.scene_keys, train_uri)] == [
        f"{data}/train_tier_1/kam/aaa111/aaa111.tif",
        f"{data}/train_tier_1/kam/bbb222/bbb222.tif",
    ]
    expected = [ChipRef(i, f"{data}/test/{i}/{i}.tif") for i in catalog.test_chip_ids]
    assert list_test_chips(f"{data}/test/catalog.json") == expected
    assert list_test_chips(test_img_dir=f"{data}/test/") == expected
    with pytest.raises(InputError, match=r"s3://opencities/data/nope/catalog\.json: STAC file"):
        read_training_scenes(f"{data}/nope/catalog.json")
