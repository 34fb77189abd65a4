import json
import shutil
from pathlib import Path

import pytest

from benchmark.data.chips import ChipRef, list_test_chips
from benchmark.errors import InputError
from tests.fixtures.files import edit_json


class TestTestChips:
    def test_from_the_catalog_with_ids_from_its_items(self, catalog):
        chips = list_test_chips(catalog.test_catalog_uri)
        assert chips == [
            ChipRef(i, str(Path(catalog.test_dir) / i / f"{i}.tif")) for i in ["c0ffee", "decade"]
        ]

    def test_catalog_ids_with_images_elsewhere(self, catalog):
        chips = list_test_chips(catalog.test_catalog_uri, "s3://bucket/test/")
        assert chips[0] == ChipRef("c0ffee", "s3://bucket/test/c0ffee/c0ffee.tif")

    def test_nested_and_flat_directories(self, catalog, tmp_path):
        nested = list_test_chips(test_img_dir=catalog.test_dir)
        assert nested == list_test_chips(catalog.test_catalog_uri)
        flat = tmp_path / "flat"
        flat.mkdir()
        for chip in nested:
            shutil.copy(chip.uri, flat)
        (flat / ".tmp-0123-c0ffee.tif").write_bytes(b"")  # a killed upload's leftover
        assert list_test_chips(test_img_dir=str(flat)) == [
            ChipRef(c.id, str(flat / f"{c.id}.tif")) for c in nested
        ]

    def test_item_asset_not_named_image(self, catalog):
        item = Path(catalog.test_dir) / "decade" / "decade.json"
        edit_json(item, lambda d: d.update(assets={"visual": d["assets"]["image"]}))
        assert list_test_chips(catalog.test_catalog_uri)[1].uri.endswith("decade/decade.tif")
        edit_json(item, lambda d: d.update(assets={"a": {"href": "a.png"}, "b": {"href": "b.png"}}))
        with pytest.raises(InputError, match=r"decade\.json: test item has no 'image' asset"):
            list_test_chips(catalog.test_catalog_uri)

    def test_many_items_stay_linear(self, tmp_path):
        ids = [f"{i:06x}" for i in range(2000)]
        item = {"type": "Feature", "stac_version": "0.8.1", "properties": {}, "geometry": None}
        for chip_id in ids:
            path = tmp_path / chip_id / f"{chip_id}.json"
            path.parent.mkdir()
            path.write_text(json.dumps({**item, "id": chip_id, "links": [], "assets": {}}))
        links = [{"rel": "item", "href": f"./{i}/{i}.json"} for i in reversed(ids)]
        catalog = {"id": "test", "stac_version": "0.8.1", "description": "t", "links": links}
        (tmp_path / "catalog.json").write_text(json.dumps(catalog))
        chips = list_test_chips(str(tmp_path / "catalog.json"), str(tmp_path))
        assert [c.id for c in chips] == ids

    def test_duplicate_ids(self, catalog, tmp_path):
        shutil.copy(Path(catalog.test_dir) / "c0ffee" / "c0ffee.tif", catalog.test_dir)
        with pytest.raises(InputError, match=r"test: 1 test chip id\(s\) occur twice: c0ffee"):
            list_test_chips(test_img_dir=catalog.test_dir)

    def test_nothing_found_or_nothing_given(self, tmp_path):
        with pytest.raises(InputError, match=rf"{tmp_path}: no test chips found"):
            list_test_chips(test_img_dir=str(tmp_path))
        with pytest.raises(InputError, match=r"nope: test image directory not found"):
            list_test_chips(test_img_dir=str(tmp_path / "nope"))
        with pytest.raises(InputError, match="give test_stac_uri or test_img_dir"):
            list_test_chips()
