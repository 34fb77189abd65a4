"""Inference: execution plans, batched chips (bad ones, resume, GSD), windowed blended scenes."""

import os
import subprocess
import sys
import tarfile
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import rasterio
import torch
from rasterio.enums import Compression
from rasterio.windows import Window
from rastervision.pipeline.file_system import download_if_needed
from torch import nn

import benchmark.inference.predict as inference
from benchmark.cli.predict import main
from benchmark.data.scene_windows import split_scene
from benchmark.data.stac import ChipRef, SceneRef
from benchmark.data.submission import pack_submission
from benchmark.inference.predict import (
    InferenceOptions,
    predict_chip_folder,
    predict_probabilities,
    predict_resampled_window,
    predict_scene,
    prepare_model,
    probability_to_mask,
    quantize,
    select_execution,
)
from tests.fixtures.rasters import TRANSFORM, rgba, write_raster

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")

PLAIN = InferenceOptions(device="cpu", fast=False, batch_size=2, num_workers=0)


def brightness_model(kernel: int) -> nn.Module:
    """Building logit = local brightness (a ``kernel`` px box mean) above 0.5: both classes.

    With zero padding, pixels near a window edge see darkness the whole image does not have,
    so ``kernel > 1`` shows window seams; ``kernel == 1`` makes any tiling exact.
    """
    conv = nn.Conv2d(3, 2, kernel, padding=kernel // 2)
    scale = 6.0
    with torch.no_grad():
        conv.weight[0] = -scale / (3 * kernel**2)
        conv.weight[1] = scale / (3 * kernel**2)
        conv.bias.copy_(torch.tensor([scale / 2, -scale / 2]))
    return conv


def pointwise_model() -> nn.Module:
    return brightness_model(1)


def conv_model() -> nn.Module:
    return brightness_model(5)


def whole_forward(model: nn.Module, rgb: np.ndarray) -> np.ndarray:
    """P(building) of one (3, H, W) uint8 image in one forward pass, plain fp32."""
    with torch.no_grad():
        logits = model(torch.from_numpy(rgb[None]).float() / 255)
    return logits.softmax(dim=1)[0, 1].numpy()


def read_band(path: str | Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


def smooth_rgba(height: int, width: int) -> np.ndarray:
    """RGBA of smooth waves (resampling barely changes them), alpha 0 in the top-left quarter."""
    rows, cols = np.mgrid[0:height, 0:width]
    gray = (40 + 90 * (1 + np.sin(cols / 15) * np.cos(rows / 20))).astype(np.uint8)
    data = np.concatenate([np.repeat(gray[None], 3, axis=0), np.full_like(gray[None], 255)])
    data[:, : height // 2, : width // 2] = 0
    return data


def record_input_sizes(model: nn.Module) -> list[tuple[int, int]]:
    """The (H, W) of every batch ``model`` is run on, from now on."""
    sizes = []
    model.register_forward_hook(lambda m, inputs, out: sizes.append(tuple(inputs[0].shape[-2:])))
    return sizes


class TestSelectExecution:
    def test_cuda_fast_uses_fp16_channels_last(self):
        plan = select_execution("cuda", fast=True)
        assert plan.is_cuda
        assert plan.channels_last
        assert plan.autocast_dtype == torch.float16

    def test_cuda_plain_is_fp32(self):
        plan = select_execution("cuda:1", fast=False)
        assert plan.device == torch.device("cuda:1")
        assert not plan.channels_last
        assert plan.autocast_dtype is None

    @pytest.mark.parametrize(("bf16", "dtype"), [(True, torch.bfloat16), (False, None)])
    def test_cpu_fast_uses_bf16_only_where_native(self, bf16, dtype):
        plan = select_execution("cpu", fast=True, cpu_bf16=bf16, onnx_runtime=False)
        assert plan.device == torch.device("cpu")
        assert plan.channels_last
        assert plan.autocast_dtype == dtype
        assert not plan.onnx_runtime

    def test_cpu_fast_without_bf16_runs_onnx_runtime_where_installed(self):
        plan = select_execution("cpu", fast=True, cpu_bf16=False, onnx_runtime=True)
        assert plan.onnx_runtime
        assert not plan.channels_last
        assert plan.autocast_dtype is None

    def test_native_bf16_and_gpus_stay_in_pytorch(self):
        assert not select_execution("cpu", fast=True, cpu_bf16=True, onnx_runtime=True).onnx_runtime
        assert not select_execution("cuda", fast=True, onnx_runtime=True).onnx_runtime
        assert not select_execution("cpu", fast=False, onnx_runtime=True).onnx_runtime

    def test_auto_is_cpu_without_gpu(self, monkeypatch):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        assert select_execution("auto", fast=False).device == torch.device("cpu")


class TestPredictProbabilities:
    images = rgba(64, 96, seed=3, notch=False)[None, :3].repeat(3, axis=0)

    def test_matches_a_plain_forward_in_batches(self):
        model = prepare_model(conv_model(), PLAIN)
        probs = predict_probabilities(model, self.images, PLAIN)
        assert probs.shape == (3, 64, 96)
        assert probs.dtype == np.float32
        np.testing.assert_allclose(probs[2], whole_forward(model, self.images[2]), atol=1e-6)

    def test_fast_bf16_agrees_with_plain(self, monkeypatch):
        monkeypatch.setattr(inference, "cpu_has_fast_bf16", lambda: True)
        fast = InferenceOptions(device="cpu", fast=True, batch_size=2)
        assert select_execution("cpu", fast=True).autocast_dtype == torch.bfloat16
        plain = predict_probabilities(prepare_model(conv_model(), PLAIN), self.images, PLAIN)
        quick = predict_probabilities(prepare_model(conv_model(), fast), self.images, fast)
        np.testing.assert_allclose(quick, plain, atol=0.02)

    def test_tta_undoes_each_transform(self):
        # A pointwise model commutes with flips and rotations: TTA must give the same map
        # (a wrongly inverted rotation would move pixels).
        model = prepare_model(pointwise_model(), PLAIN)
        tta = InferenceOptions(device="cpu", fast=False, tta=True)
        np.testing.assert_allclose(
            predict_probabilities(model, self.images, tta),
            predict_probabilities(model, self.images, PLAIN),
            atol=1e-6,
        )

    def test_refuses_float_images(self):
        with pytest.raises(ValueError, match=r"uint8 \(B, 3, H, W\)"):
            predict_probabilities(pointwise_model(), self.images.astype(np.float32), PLAIN)


def test_probability_rule_is_strictly_above_threshold():
    prob_u8 = quantize(np.array([0.0, 0.5, 0.502, 1.0], dtype=np.float32))
    assert prob_u8.tolist() == [0, 128, 128, 255]
    assert probability_to_mask(np.array([127, 128], np.uint8), 0.5).tolist() == [0, 1]
    assert probability_to_mask(np.array([51, 52], np.uint8), 0.2).tolist() == [0, 1]


@pytest.fixture
def chip_dir(tmp_path: Path) -> tuple[list[ChipRef], dict[str, np.ndarray]]:
    """Three good 64 px chips (nested and flat), a 2-band one, a 32 px one, a broken one."""
    good = {
        "aa01": rgba(64, 64, seed=1),  # alpha-0 notch
        "bb02": rgba(64, 64, seed=2, notch=False),
        "cc03": rgba(64, 64, seed=3, notch=False)[:3],  # RGB
    }
    chips = []
    for chip_id, data in good.items():
        uri = write_raster(tmp_path / "img" / chip_id / f"{chip_id}.tif", data, crs=None)
        chips.append(ChipRef(chip_id, uri))
    two_band = write_raster(tmp_path / "img" / "dd04.tif", rgba(64, 64)[:2], crs=None)
    small = write_raster(tmp_path / "img" / "ee05.tif", rgba(32, 32), crs=None)
    broken = tmp_path / "img" / "ff06.tif"
    broken.write_bytes(b"II*\x00 not really a tiff")
    chips += [ChipRef("dd04", two_band), ChipRef("ee05", small), ChipRef("ff06", str(broken))]
    return chips, good


class TestPredictChipFolder:
    @pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice: Linux")
    def test_writing_runs_at_background_priority(self, tmp_path, chip_dir, monkeypatch):
        chips, good = chip_dir
        niceness = []
        write = inference._write_chip_output

        def recording_write(*args):
            niceness.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
            write(*args)

        monkeypatch.setattr(inference, "_write_chip_output", recording_write)
        predict_chip_folder(pointwise_model(), chips, str(tmp_path / "o"), PLAIN, expected_size=64)
        base = os.getpriority(os.PRIO_PROCESS, 0)
        assert niceness == [min(19, base + inference.BACKGROUND_NICENESS)] * len(good)

    @pytest.mark.parametrize(("window", "overlap"), [(24, 0), (24, 6), (40, 16)])
    def test_windows_of_a_pointwise_model_give_the_whole_chip(self, tmp_path, window, overlap):
        rng = np.random.default_rng(7)
        chips = []
        for chip_id in ("w1", "w2", "w3"):
            data = rng.integers(0, 255, (3, 64, 64), dtype=np.uint8)
            chips.append(ChipRef(chip_id, write_raster(tmp_path / f"{chip_id}.tif", data, None)))
        model = pointwise_model()
        sizes = record_input_sizes(model)
        whole, windowed = tmp_path / "whole", tmp_path / "windowed"
        predict_chip_folder(model, chips, str(whole), PLAIN, threshold=None, expected_size=64)
        predict_chip_folder(
            model, chips, str(windowed), PLAIN, threshold=None, expected_size=64,
            window_sz=window, overlap=overlap,
        )  # fmt: skip
        assert set(sizes) == {(64, 64), (window, window)}
        for chip in chips:
            diff = read_band(whole / f"{chip.id}.tif").astype(int) - read_band(
                windowed / f"{chip.id}.tif"
            )
            assert np.abs(diff).max() <= 1  # blending weights sum to 1: rounding only

    @pytest.mark.parametrize("num_workers", [0, 1])
    def test_writes_masks_and_reports_bad_chips(self, tmp_path, chip_dir, num_workers):
        chips, good = chip_dir
        out = tmp_path / "out"
        options = InferenceOptions(device="cpu", batch_size=2, num_workers=num_workers)
        model = conv_model()
        report = predict_chip_folder(model, chips, str(out), options, expected_size=64)

        assert sorted(report.written) == sorted(good)
        assert set(report.bad) == {"dd04", "ee05", "ff06"}
        assert "2 band" in report.bad["dd04"]
        assert "32x32 px, expected 64x64" in report.bad["ee05"]
        assert "cannot read" in report.bad["ff06"]
        assert sorted(p.name for p in out.iterdir()) == [f"{i}.tif" for i in sorted(good)]
        for chip_id, data in good.items():
            with rasterio.open(out / f"{chip_id}.tif") as src:
                assert (src.count, src.dtypes[0], src.shape) == (1, "uint8", (64, 64))
                assert src.crs is None
                assert src.compression == Compression.deflate
                mask = src.read(1)
            expected = probability_to_mask(quantize(whole_forward(model, data[:3])), 0.5)
            if len(data) == 4:
                expected[data[3] == 0] = 0
            np.testing.assert_array_equal(mask, expected)
            assert 0 < mask.sum() < mask.size  # both classes: the comparison means something
        assert not read_band(out / "aa01.tif")[:32, :32].any()  # alpha 0 -> 0

    def test_rerun_skips_finished_chips_unless_overwrite(self, tmp_path, chip_dir, caplog):
        chips, good = chip_dir
        out = str(tmp_path / "out")
        predict_chip_folder(conv_model(), chips, out, PLAIN, expected_size=64)
        mtimes = {p.name: p.stat().st_mtime_ns for p in Path(out).iterdir()}

        caplog.set_level("INFO", logger="benchmark.inference.predict")
        again = predict_chip_folder(conv_model(), chips, out, PLAIN, expected_size=64)
        assert sorted(again.skipped) == sorted(good)
        assert again.written == []
        assert set(again.bad) == {"dd04", "ee05", "ff06"}  # still no output: tried again
        assert "3 chip(s) already predicted" in caplog.text
        assert {p.name: p.stat().st_mtime_ns for p in Path(out).iterdir()} == mtimes

        redo = predict_chip_folder(
            conv_model(), chips[:1], out, PLAIN, expected_size=64, overwrite=True
        )
        assert redo.written == ["aa01"]

    def test_no_threshold_writes_quantized_probabilities(self, tmp_path, chip_dir):
        chips, good = chip_dir
        model = pointwise_model()
        out = tmp_path / "prob"
        predict_chip_folder(model, chips[1:2], str(out), PLAIN, threshold=None, expected_size=64)
        expected = quantize(whole_forward(model, good["bb02"][:3]))
        np.testing.assert_array_equal(read_band(out / "bb02.tif"), expected)

    @pytest.mark.parametrize(("scale", "side"), [(0.75, 48), (1.5, 96)])
    def test_chips_resized_for_the_model_come_back_at_their_size(
        self, tmp_path, chip_dir, scale, side
    ):
        chips, good = chip_dir
        model = pointwise_model()
        sizes = record_input_sizes(model)
        out = tmp_path / "out"
        report = predict_chip_folder(
            model, chips, str(out), PLAIN, expected_size=64, input_scale=scale
        )
        assert sorted(report.written) == sorted(good)
        assert set(sizes) == {(side, side)}
        for chip_id, data in good.items():
            mask = read_band(out / f"{chip_id}.tif")
            assert mask.shape == (64, 64) and mask.dtype == np.uint8
            assert set(np.unique(mask)) == {0, 1}
            if len(data) == 4:
                assert not mask[data[3] == 0].any()

    def test_resized_smooth_chip_keeps_its_buildings(self, tmp_path):
        data = smooth_rgba(64, 64)
        chip = ChipRef("s1", write_raster(tmp_path / "s1.tif", data, crs=None))
        masks = {}
        for scale in (1.0, 0.75):
            out = tmp_path / str(scale)
            predict_chip_folder(
                pointwise_model(), [chip], str(out), PLAIN, expected_size=64, input_scale=scale
            )
            masks[scale] = read_band(out / "s1.tif")
        assert 0 < masks[1.0].sum() < masks[1.0].size
        assert (masks[1.0] != masks[0.75]).mean() < 0.03  # only some roof edges move

    def test_report_times_the_model(self, tmp_path, chip_dir):
        chips, _ = chip_dir
        report = predict_chip_folder(conv_model(), chips, str(tmp_path), PLAIN, expected_size=64)
        assert 0 < report.model_seconds <= report.wall_seconds
        assert "3 written, 0 already done, 3 bad" in report.summary()


@pytest.fixture
def scene(tmp_path: Path) -> tuple[str, np.ndarray]:
    """A 150 x 200 px georeferenced RGBA scene, alpha 0 in its top-left quarter."""
    data = rgba(150, 200, seed=5)
    return write_raster(tmp_path / "scene.tif", data), data


class TestPredictScene:
    @pytest.mark.parametrize("write_columns", [None, 48])  # 48: blocks end mid-scene
    def test_copies_the_grid_masks_no_data_and_tiles_exactly(
        self, tmp_path, scene, monkeypatch, write_columns
    ):
        if write_columns:
            monkeypatch.setattr("benchmark.inference.predict.WRITE_COLUMNS", write_columns)
        uri, data = scene
        model = pointwise_model()
        out = tmp_path / "pred" / "scene.tif"
        predict_scene(model, uri, str(out), PLAIN, chip_sz=64)
        with rasterio.open(out) as src:
            assert (src.count, src.dtypes[0], src.shape) == (1, "uint8", (150, 200))
            assert src.crs.to_epsg() == 32636
            assert src.transform == TRANSFORM
            assert src.compression == Compression.deflate
            assert src.block_shapes == [(256, 256)]
            prob = src.read(1)
        expected = quantize(whole_forward(model, data[:3])) * (data[3] == 255)
        assert np.abs(prob.astype(int) - expected).max() <= 1
        assert not prob[:75, :100].any()

    def test_overlap_blending_leaves_no_seams(self, tmp_path, scene):
        uri, data = scene
        model = conv_model()
        whole = quantize(whole_forward(model, data[:3])).astype(int) * (data[3] == 255)
        errors = {}
        for overlap in (0, 32):
            out = tmp_path / f"o{overlap}.tif"
            predict_scene(model, uri, str(out), PLAIN, chip_sz=64, overlap=overlap)
            errors[overlap] = np.abs(read_band(out).astype(int) - whole).max()
        assert errors[0] > 10  # window edges (zero padding) show without blending
        assert errors[32] <= 2

    def test_small_scene_one_window_and_tta(self, tmp_path):
        data = rgba(40, 70, seed=6, notch=False)
        uri = write_raster(tmp_path / "small.tif", data)
        model = pointwise_model()
        out = tmp_path / "small_pred.tif"
        options = InferenceOptions(device="cpu", tta=True)
        predict_scene(model, uri, str(out), options, chip_sz=1024)
        expected = quantize(whole_forward(model, data[:3]))
        assert np.abs(read_band(out).astype(int) - expected).max() <= 1

    def test_existing_output_is_kept_unless_overwrite(self, tmp_path, scene, caplog):
        uri, _ = scene
        out = tmp_path / "p.tif"
        predict_scene(pointwise_model(), uri, str(out), PLAIN, chip_sz=64)
        mtime = out.stat().st_mtime_ns
        caplog.set_level("INFO", logger="benchmark.inference.predict")
        predict_scene(pointwise_model(), uri, str(out), PLAIN, chip_sz=64)
        assert out.stat().st_mtime_ns == mtime
        assert "exists: skipped" in caplog.text
        predict_scene(pointwise_model(), uri, str(out), PLAIN, chip_sz=64, overwrite=True)
        assert out.stat().st_mtime_ns != mtime

    def test_failed_read_leaves_no_output(self, tmp_path, monkeypatch):
        uri = write_raster(tmp_path / "s.tif", rgba(100, 100))

        def broken_read(*args, **kwargs):
            raise OSError("disk on fire")

        monkeypatch.setattr(inference, "_read_padded", broken_read)
        with pytest.raises(OSError, match="disk on fire"):
            predict_scene(pointwise_model(), uri, str(tmp_path / "out.tif"), PLAIN, chip_sz=64)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["s.tif"]


class TestPredictResampledWindow:
    @pytest.mark.parametrize("gsd", [0.1, 0.05])  # the scene is at 7.5 cm
    def test_prediction_at_the_gsd_comes_back_on_the_window_grid(self, tmp_path, gsd):
        data = smooth_rgba(150, 200)
        scene_uri = write_raster(tmp_path / "scene.tif", data)
        labels = tmp_path / "labels.geojson"
        labels.write_text('{"type": "FeatureCollection", "features": []}')
        split = split_scene(
            SceneRef("kam", "s1", scene_uri, str(labels)), str(tmp_path / "split"), 100, gsd=gsd
        )
        model = pointwise_model()
        native = quantize(whole_forward(model, data[:3])).astype(int) * (data[3] == 255)
        far_from_no_data = np.ones(native.shape, dtype=bool)
        far_from_no_data[:78, :103] = False  # where resampling mixes no-data into imagery
        for i, w in enumerate(split.windows):
            window = Window(w.col_off, w.row_off, w.width, w.height)
            out = tmp_path / "pred" / f"{i}.tif"
            predict_resampled_window(model, w.uri, scene_uri, window, str(out), PLAIN, chip_sz=64)
            with rasterio.open(out) as prob_src, rasterio.open(scene_uri) as scene_src:
                assert prob_src.shape == (w.height, w.width)
                assert prob_src.transform.almost_equals(scene_src.window_transform(window), 1e-9)
                assert prob_src.crs == scene_src.crs and prob_src.dtypes[0] == "uint8"
                prob = prob_src.read(1).astype(int)
            rows, cols = window.toslices()
            assert not prob[data[3, rows, cols] == 0].any()  # the scene's own no-data
            far = far_from_no_data[rows, cols]
            assert np.abs(prob - native[rows, cols])[far].max() <= 8

    def test_existing_output_is_kept(self, tmp_path, scene, caplog):
        uri, _ = scene
        out = tmp_path / "p.tif"
        out.write_bytes(b"done before")
        caplog.set_level("INFO", logger="benchmark.inference.predict")
        predict_resampled_window(pointwise_model(), uri, uri, Window(0, 0, 200, 150), str(out))
        assert out.read_bytes() == b"done before" and "exists: skipped" in caplog.text


class TestPredictFolderCommand:
    @staticmethod
    def run(
        args: list[str],
        threshold: float = 0.5,
        gsd: float | None = None,
        model=None,
        window: int | None = None,
    ) -> int:
        bundle = SimpleNamespace(
            model=model or pointwise_model(), threshold=threshold, gsd=gsd, window=window, overlap=8
        )
        common = ["--chip-size", "64", "--num-workers", "0", "--no-fast"]
        return main([*args, *common], load_bundle=lambda uri: bundle)

    @pytest.fixture
    def img_dir(self, tmp_path: Path) -> Path:
        for i, chip_id in enumerate(["a1", "b2"]):
            data = rgba(64, 64, seed=i, notch=False)
            write_raster(tmp_path / "img" / chip_id / f"{chip_id}.tif", data, crs=None)
        return tmp_path / "img"

    def test_predicts_and_packs(self, tmp_path, img_dir):
        tgz = tmp_path / "submission.tgz"
        out = tmp_path / "out"
        assert self.run(["b.zip", str(img_dir), str(out), "--pack", str(tgz)]) == 0
        with tarfile.open(tgz) as tar:
            assert tar.getnames() == ["a1.tif", "b2.tif"]
        assert self.run(["b.zip", str(img_dir), str(out), "--pack", str(tgz)]) == 0  # resumes

    def test_threshold_from_the_bundle_unless_given(self, tmp_path, img_dir):
        self.run(["b.zip", str(img_dir), str(tmp_path / "low")], threshold=0.0)
        self.run(["b.zip", str(img_dir), str(tmp_path / "high"), "--threshold", "0.999"])
        assert read_band(tmp_path / "low" / "b2.tif").all()
        assert not read_band(tmp_path / "high" / "b2.tif").any()

    def test_chip_gsd_resizes_chips_to_the_bundle_gsd(self, tmp_path, img_dir):
        model = pointwise_model()
        sizes = record_input_sizes(model)
        args = ["b.zip", str(img_dir), str(tmp_path / "out"), "--chip-gsd", "0.075"]
        assert self.run(args, gsd=0.1, model=model) == 0
        assert set(sizes) == {(48, 48)}
        assert read_band(tmp_path / "out" / "a1.tif").shape == (64, 64)

    def test_a_bundle_with_a_gsd_warns_without_chip_gsd(self, tmp_path, img_dir, caplog):
        assert self.run(["b.zip", str(img_dir), str(tmp_path / "out")], gsd=0.3) == 0
        assert "works at 0.3 m per pixel" in caplog.text
        assert "--chip-gsd" in caplog.text

    def test_chips_run_in_the_bundles_windows_unless_told(self, tmp_path, img_dir):
        model = pointwise_model()
        sizes = record_input_sizes(model)
        assert self.run(["b.zip", str(img_dir), str(tmp_path / "a")], window=32, model=model) == 0
        assert set(sizes) == {(32, 32)}  # 64 px chips, 32 px windows overlapping by 8
        sizes.clear()
        args = ["b.zip", str(img_dir), str(tmp_path / "b"), "--window", "48", "--overlap", "0"]
        assert self.run(args, window=32, model=model) == 0
        assert set(sizes) == {(48, 48)}
        with pytest.raises(SystemExit):
            self.run(["b.zip", str(img_dir), str(tmp_path / "c"), "--window", "0"])

    def test_chip_gsd_needs_a_bundle_with_a_gsd(self, tmp_path, img_dir, capsys):
        args = ["b.zip", str(img_dir), str(tmp_path / "out"), "--chip-gsd", "0.075"]
        assert self.run(args) == 2
        assert capsys.readouterr().err.startswith("error: --chip-gsd: the bundle records no gsd")
        with pytest.raises(SystemExit):
            self.run(["b.zip", str(img_dir), str(tmp_path), "--chip-gsd", "-1"])

    def test_bad_chips_exit_1_and_are_listed(self, tmp_path, img_dir, capsys):
        write_raster(img_dir / "c3.tif", rgba(64, 64)[:2], crs=None)
        assert self.run(["b.zip", str(img_dir), str(tmp_path / "out")]) == 1
        last_line = capsys.readouterr().err.splitlines()[-1]  # after the progress bar
        assert last_line.startswith("error: 1 chip(s) not predicted: c3: 2 band(s)")
        tgz = str(tmp_path / "s.tgz")
        assert self.run(["b.zip", str(img_dir), str(tmp_path / "out"), "--pack", tgz]) == 2
        assert "c3.tif: missing" in capsys.readouterr().err

    def test_input_error_is_one_line_exit_2(self, tmp_path, capsys):
        assert self.run(["b.zip", str(tmp_path / "nope"), str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert err == f"error: {tmp_path / 'nope'}: test image directory not found\n"

    def test_threshold_must_be_a_probability(self, tmp_path):
        with pytest.raises(SystemExit) as info:
            self.run(["b.zip", str(tmp_path), str(tmp_path), "--threshold", "1.5"])
        assert info.value.code == 2

    def test_wrapper_script_help(self):
        script = Path(__file__).parents[2] / "wb_scripts" / "predict"
        done = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True)
        assert "BUNDLE IMG_DIR OUT_DIR" in done.stdout


@pytest.mark.aws
def test_chips_on_s3_predict_resume_and_pack(tmp_path, s3_upload):
    ids = ["a1", "b2", "c3"]
    for i, chip_id in enumerate(ids):
        write_raster(tmp_path / "img" / f"{chip_id}.tif", rgba(64, 64, seed=i), crs=None)
    img_uri = s3_upload(tmp_path / "img", "s3://bench/test/img")
    chips = [ChipRef(i, f"{img_uri}/{i}.tif") for i in ids]
    out = "s3://bench/pred/masks"
    options = InferenceOptions(device="cpu", batch_size=2, num_workers=1)

    first = predict_chip_folder(pointwise_model(), chips, out, options, expected_size=64)
    assert sorted(first.written) == ids
    again = predict_chip_folder(pointwise_model(), chips, out, options, expected_size=64)
    assert sorted(again.skipped) == ids

    tgz = "s3://bench/pred/submission.tgz"
    pack_submission(out, ids, tgz, size=64)
    local = download_if_needed(tgz, str(tmp_path / "dl"))
    with tarfile.open(local) as tar:
        assert tar.getnames() == [f"{i}.tif" for i in ids]
