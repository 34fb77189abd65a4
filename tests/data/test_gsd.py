"""A common GSD: grid maps, resampled block reads, the args, and predict + eval at a GSD."""

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.windows import Window
from rastervision.pipeline.config import build_config

from benchmark.data.gsd import GridMap, gsd_scale, read_bands, resampled_length
from benchmark.data.scene_windows import read_scene_windows
from benchmark.data.windows import plan_windows
from benchmark.errors import InputError
from benchmark.experiments import benchmark, split_images
from benchmark.experiments.args import SceneArgs
from benchmark.pipeline.benchmark_pipeline import bundle_info
from benchmark.pipeline.bundle import add_bundle_info, load_bundle
from tests.fixtures.models import pointwise_model
from tests.fixtures.opencities import make_opencities_catalog
from tests.fixtures.rasters import rgba, write_raster

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")


@pytest.fixture
def scene(tmp_path: Path) -> str:
    """A 90 x 120 px RGBA scene at 7.5 cm, alpha 0 in its top-left quarter."""
    return write_raster(tmp_path / "scene.tif", rgba(90, 120, seed=4))


class TestGridMap:
    def test_window_at_a_gsd_covers_the_same_ground(self, scene):
        with rasterio.open(scene) as src:
            window = Window(40, 20, 60, 44)
            grid = GridMap.at_gsd(src, window, 0.1)
            assert (grid.width, grid.height) == (45, 33)  # 60 * 0.075 / 0.1, 44 * 0.075 / 0.1
            transform = grid.transform(src)
            expected = src.window_transform(window) * Affine.scale(60 / 45, 44 / 33)
            assert transform.almost_equals(expected, precision=1e-12)
            assert transform.a == pytest.approx(0.1) and transform.e == pytest.approx(-0.1)
            assert not grid.is_identity
            assert GridMap.at_gsd(src, window, None).is_identity

    def test_sides_round_to_whole_pixels_keeping_the_extent(self, scene):
        assert resampled_length(759, 0.075, 0.1) == 569  # 569.25
        assert resampled_length(1, 0.075, 1.0) == 1  # never empty
        with rasterio.open(scene) as src:
            grid = GridMap.at_gsd(src, Window(0, 0, 59, 7), 0.1)
            right, bottom = grid.transform(src) * (grid.width, grid.height)
            assert (right, bottom) == pytest.approx(
                src.window_transform(Window(0, 0, 59, 7)) * (59, 7)
            )

    @pytest.mark.parametrize("size", [(45, 33), (7, 5), (130, 97)])
    def test_blocks_cover_the_source_window_exactly(self, size):
        grid = GridMap(Window(40, 20, 60, 44), *size)
        covered = 0.0
        for block in plan_windows(grid.width, grid.height, 8):
            src = grid.source_window(block)
            assert 40 <= src.col_off and src.col_off + src.width <= 100 + 1e-9
            assert 20 <= src.row_off and src.row_off + src.height <= 64 + 1e-9
            covered += src.width * src.height
        assert covered == pytest.approx(60 * 44)

    def test_block_side_bounds_the_source_read(self):
        shrink = GridMap(Window(0, 0, 400, 400), 100, 100)
        assert shrink.block_side(64) == 16
        assert GridMap(Window(0, 0, 100, 100), 300, 300).block_side(64) == 64


@pytest.mark.parametrize("gsd", [0.1, 0.05, 0.3])
def test_block_reads_equal_one_whole_read(scene, gsd):
    """Memory is bounded by the block, and the pixels do not depend on it."""
    with rasterio.open(scene) as src:
        window = Window(10, 5, 100, 80)
        grid = GridMap.at_gsd(src, window, gsd)
        whole = read_bands(src, window, (grid.height, grid.width))
        blocks = np.zeros_like(whole)
        for block in plan_windows(grid.width, grid.height, 7):
            shape = (int(block.height), int(block.width))
            rows, cols = block.toslices()
            blocks[:, rows, cols] = read_bands(src, grid.source_window(block), shape)
        bilinear = src.read(
            [1, 2, 3],
            window=window,
            out_shape=(3, *whole.shape[1:]),
            resampling=Resampling.bilinear,
        )
    np.testing.assert_array_equal(blocks, whole)
    np.testing.assert_array_equal(whole[:3], bilinear)
    assert set(np.unique(whole[3])) == {0, 255}  # alpha is nearest: no half-imagery pixels


def test_plain_window_is_a_plain_read(scene):
    with rasterio.open(scene) as src:
        window = Window(3, 4, 20, 10)
        np.testing.assert_array_equal(read_bands(src, window, (10, 20)), src.read(window=window))


def test_gsd_scale():
    assert gsd_scale(0.075, 0.1) == pytest.approx(0.75)
    assert gsd_scale(None, 0.1) == gsd_scale(0.075, None) == gsd_scale(None, None) == 1.0


class TestArgs:
    def test_default_split_dir_depends_on_the_gsd(self):
        assert SceneArgs(root_uri="s3://b/r/").get_split_dir() == "s3://b/r/split_images"
        at_gsd = SceneArgs(root_uri="s3://b/r", gsd="0.1")
        assert at_gsd.gsd == 0.1 and at_gsd.get_split_dir() == "s3://b/r/split_images_gsd0.1"
        given = SceneArgs(root_uri="r", gsd=0.1, split_dir="elsewhere")
        assert given.get_split_dir() == "elsewhere"

    @pytest.mark.parametrize(
        ("args", "problem"),
        [
            ({"gsd": "0"}, "-a gsd: Input should be greater than 0"),
            ({"test_chip_gsd": "0.075"}, "test_chip_gsd needs gsd"),
        ],
    )
    def test_bad_gsd_args_are_one_line_errors(self, args, problem):
        with pytest.raises(InputError, match=problem):
            benchmark.get_config("local", root_uri="r", **args)


def test_bundle_gives_the_folder_predict_its_gsd(tmp_path, monkeypatch):
    uri = str(tmp_path / "model-bundle.zip")
    with zipfile.ZipFile(uri, "w") as zf:
        zf.writestr("model-bundle.zip", b"the learner's own bundle")
    monkeypatch.setattr(
        "benchmark.pipeline.bundle.load_learner_model", lambda *_: pointwise_model()
    )
    assert load_bundle(uri).gsd is None  # made without -a gsd, or by plain RV
    add_bundle_info(uri, {"threshold": 0.4, "gsd": 0.1}, str(tmp_path))
    loaded = load_bundle(uri)
    assert (loaded.threshold, loaded.gsd) == (0.4, 0.1)


def test_predict_and_eval_at_a_gsd_score_at_the_scenes_resolution(tmp_path, monkeypatch):
    """PREPROCESS at 0.1 m, then the pipeline's own predict and eval (no training needed)."""
    catalog = make_opencities_catalog(tmp_path / "data", test_chip_size=64)
    scene_args = {**catalog.scene_args(str(tmp_path / "out")), "gsd": "0.1"}
    preprocess = split_images.get_config("inprocess", **scene_args, split_size="64")
    preprocess.build(str(tmp_path)).PREPROCESS()
    split_dir = tmp_path / "out" / "split_images_gsd0.1"
    split = read_scene_windows(str(split_dir / catalog.valid_keys[0]), 0.1)
    with pytest.raises(InputError, match=r"windows at 0\.1 m GSD, not at 0\.2 m GSD as asked"):
        benchmark.get_config("inprocess", **{**scene_args, "gsd": "0.2"}, split_dir=str(split_dir))

    cfg = benchmark.get_config(
        "inprocess", **scene_args, experiment_id="g", test_stac_uri=catalog.test_catalog_uri,
        test_chip_size="64", test_chip_gsd="0.075", pretrained="false", predict_window="48",
        plan="fp32",  # PyTorch runs the model, so the hook below sees its input sizes
    )  # fmt: skip
    cfg.update()
    cfg = build_config(json.loads(cfg.json()))  # as every runner rebuilds it
    assert sorted(cfg.native_windows) == sorted(s.id for s in cfg.dataset.validation_scenes)
    pipeline = cfg.build(str(tmp_path))
    model = pointwise_model()
    seen = []
    model.register_forward_hook(lambda m, inputs, out: seen.append(tuple(inputs[0].shape[-2:])))
    monkeypatch.setattr(pipeline, "_load_model", lambda: model)
    pipeline.predict()

    with rasterio.open(split.image_uri) as scene_src:
        for w in split.windows:
            window = Window(w.col_off, w.row_off, w.width, w.height)
            name = w.uri.rsplit("/", 1)[-1]
            with rasterio.open(tmp_path / "out" / "predict" / "g" / name) as prob:
                assert prob.shape == (w.height, w.width)
                assert prob.transform.almost_equals(scene_src.window_transform(window), 1e-9)
        native_valid = int((scene_src.read(4) == 255).sum())
    for chip_id in catalog.test_chip_ids:
        with rasterio.open(tmp_path / "out" / "predict" / "g" / "test" / f"{chip_id}.tif") as c:
            assert c.shape == (64, 64)
    assert (48, 48) in seen  # test chips at 7.5 cm resized to the model's 10 cm, one window

    pipeline.eval()
    overall = json.loads((tmp_path / "out" / "eval" / "g" / "eval.json").read_text())["overall"]
    scored = overall["tp"] + overall["fp"] + overall["fn"] + overall["tn"]
    assert scored == native_valid  # every valid pixel of the scene, at its own resolution
    assert sorted(p.name for p in (tmp_path / "out" / "eval" / "g").glob("*.png"))
    info = bundle_info(cfg)
    assert (info["gsd"], info["predict_window"], info["predict_overlap"]) == (0.1, 48, 0)
