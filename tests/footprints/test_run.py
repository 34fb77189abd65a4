"""Footprints end to end with a stand-in model: any CRS, cut buildings joined, bad input, resume."""

import json
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
import shapely

import benchmark.footprints.run as run
import benchmark.footprints.vectorize as vectorize
from benchmark.cli.footprints import main
from benchmark.errors import InputError
from benchmark.footprints.inputs import ImageRef, list_images
from benchmark.footprints.run import FootprintOutputs, FootprintSettings, footprints_for_images
from benchmark.inference.settings import PredictionSettings
from tests.fixtures.models import FP32, bundle_loader, pointwise_model
from tests.fixtures.rasters import write_raster

# The conftest's buildings: 80 x 140 and 60 x 50 px of 10 cm.
AREAS = [112.0, 30.0]
SETTINGS = FootprintSettings(
    threshold=0.5, prediction=PredictionSettings(FP32, window=64, overlap=16, gsd=0.3)
)


def outline(folder: Path | str, out: Path, settings: FootprintSettings = SETTINGS):
    return footprints_for_images(pointwise_model(), list_images(str(folder)), str(out), settings)


def features(out: Path, name: str) -> list[dict]:
    return json.loads((out / f"{name}_buildings.geojson").read_text())["features"]


def leftovers(folder: Path) -> list[str]:
    partials = [p for p in folder.rglob("*.partial") if p.is_file()]
    return [p.name for p in [*folder.rglob(".tmp-*"), *partials]]


class TestFootprints:
    @pytest.mark.parametrize("grid", ["utm", "webmercator", "lonlat"])
    def test_any_crs(self, make_scene, tmp_path, grid):
        uri = make_scene(grid, grid)
        out = tmp_path / "out"
        report = outline(uri, out)
        assert report.written == {grid: 2}
        found = sorted(features(out, grid), key=lambda f: -f["properties"]["area_m2"])
        for feature, area in zip(found, AREAS, strict=True):
            assert feature["properties"]["building"] == "yes"
            assert feature["properties"]["area_m2"] == pytest.approx(area, rel=0.1)
            assert feature["properties"]["confidence"] > 0.9
        with rasterio.open(uri) as src:
            bounds = rasterio.warp.transform_bounds(src.crs, "EPSG:4326", *src.bounds)
        lonlat = shapely.box(*bounds).buffer(1e-7)
        assert all(lonlat.contains(shapely.geometry.shape(f["geometry"])) for f in found)
        gpkg = pyogrio.read_info(str(out / f"{grid}_buildings.gpkg"))
        assert gpkg["features"] == 2
        with rasterio.open(out / f"{grid}_prob.tif") as prob, rasterio.open(uri) as src:
            assert (prob.crs, prob.transform, prob.shape) == (src.crs, src.transform, src.shape)
            assert prob.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert leftovers(tmp_path) == []

    def test_a_cog_with_overviews_and_squared_outlines(self, make_scene, tmp_path):
        uri = make_scene("big", height=700, width=900, boxes=[(100, 100, 300, 400)])
        out = tmp_path / "out"
        settings = FootprintSettings(**{**SETTINGS.__dict__, "regularize": True})
        outline(uri, out, settings)
        with rasterio.open(out / "big_prob.tif") as prob:
            assert prob.overviews(1)
            assert prob.profile["compress"] == "deflate" and prob.profile["tiled"]
        (feature,) = features(out, "big")
        assert len(feature["geometry"]["coordinates"][0]) == 5  # a rectangle

    def test_a_building_across_four_windows_and_four_blocks_is_one(
        self, make_scene, tmp_path, monkeypatch
    ):
        monkeypatch.setattr(vectorize, "BLOCK_SIZE", 128)
        uri = make_scene("cross", height=256, width=256, boxes=[(60, 60, 200, 200)])
        out = tmp_path / "out"
        settings = FootprintSettings(
            threshold=0.5, prediction=PredictionSettings(FP32, window=128, overlap=32)
        )
        outline(uri, out, settings)  # windows start at 0 and 96; blocks at 0 and 128
        (feature,) = features(out, "cross")
        assert feature["properties"]["area_m2"] == pytest.approx(140 * 140 * 0.01, rel=0.02)

    def test_alpha_is_respected(self, make_scene, tmp_path):
        uri = make_scene("a", alpha_off=(190, 240, 270, 310))  # hides the second building
        assert outline(uri, tmp_path / "out").written == {"a": 1}

    def test_smaller_than_a_window_and_without_buildings(self, make_scene, tmp_path):
        make_scene("tiny", height=30, width=40, boxes=[(5, 5, 25, 35)])
        make_scene("empty", boxes=[])
        out = tmp_path / "out"
        assert outline(tmp_path / "in", out).written == {"empty": 0, "tiny": 1}
        assert features(out, "empty") == []
        assert pyogrio.read_info(str(out / "empty_buildings.gpkg"))["features"] == 0

    def test_bad_images_are_reported_and_the_others_go_on(self, make_scene, tmp_path):
        make_scene("good")
        write_raster(tmp_path / "in" / "chip.tif", np.zeros((3, 64, 64), np.uint8), crs=None)
        truncated = Path(make_scene("truncated", height=600, width=600))
        truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
        report = outline(tmp_path / "in", tmp_path / "out")
        assert report.written == {"good": 2}
        assert set(report.failed) == {"chip", "truncated"}
        assert "--chip-gsd" in report.failed["chip"]
        assert report.failed["truncated"].startswith(str(truncated))
        assert all("\n" not in problem for problem in report.failed.values())
        assert leftovers(tmp_path) == []

    def test_a_rerun_skips_finished_images(self, make_scene, tmp_path):
        make_scene("one")
        out = tmp_path / "out"
        outline(tmp_path / "in", out)
        outputs = FootprintOutputs.of(str(out), "one")
        before = Path(outputs.geojson).stat().st_mtime_ns
        Path(outputs.prob).unlink()
        make_scene("two")
        report = outline(tmp_path / "in", out)
        assert report.skipped == [] and set(report.written) == {"one", "two"}
        again = outline(tmp_path / "in", out)
        assert again.skipped == ["one", "two"] and again.written == {}
        assert Path(outputs.geojson).stat().st_mtime_ns != before  # redone: prob was missing


def fake_bundle(threshold: float = 0.5, gsd: float | None = 0.3):
    return bundle_loader(threshold=threshold, gsd=gsd, window=64, overlap=16)


class TestCommand:
    def test_exit_statuses_and_options(self, make_scene, tmp_path, capsys):
        make_scene("scene")
        out = tmp_path / "out"
        args = ["bundle.zip", str(tmp_path / "in"), str(out), "--no-fast", "--device", "cpu"]
        assert main([*args, "--min-area", "50"], load_bundle=fake_bundle()) == 0
        assert len(features(out, "scene")) == 1  # the 30 m² building is under --min-area
        write_raster(tmp_path / "in" / "chip.tif", np.zeros((3, 8, 8), np.uint8), crs=None)
        assert main(args, load_bundle=fake_bundle()) == 1
        last = capsys.readouterr().err.splitlines()[-1]  # after the progress bars
        assert last.startswith("error: 1 image(s) not outlined: ") and "chip.tif" in last

    def test_the_threshold_defaults_to_the_bundles(self, make_scene, tmp_path):
        make_scene("scene")
        out = tmp_path / "out"
        args = ["b.zip", str(tmp_path / "in"), str(out), "--no-fast", "--device", "cpu"]
        assert main(args, load_bundle=fake_bundle(threshold=0.995)) == 0
        assert features(out, "scene") == []  # P 0.992 on the roofs: nothing above 0.995

    def test_bad_input_is_one_line(self, tmp_path, capsys):
        missing = str(tmp_path / "nowhere")
        assert main(["b.zip", missing, str(tmp_path / "o")], load_bundle=fake_bundle()) == 2
        assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.parametrize(
    "error", [InputError("b_buildings.gpkg: not a GeoPackage"), shapely.errors.GEOSException("x")]
)
def test_osm_outputs_that_fail_leave_the_image_unmapped_not_the_run_stopped(
    monkeypatch, tmp_path, error
):
    def fail(*_):
        raise error

    monkeypatch.setattr(run, "write_mapping_outputs", fail)
    report = run.FootprintReport()
    run._map_image(ImageRef("b", str(tmp_path / "b.tif")), str(tmp_path), None, report)
    assert report.unmapped == {"b": str(error)}
