"""Folder prediction: bad chips, resume, windows, GSD resizing, background writing, S3."""

import os
import sys
import tarfile
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.enums import Compression
from rastervision.pipeline.file_system import download_if_needed

import benchmark.inference.chips as chips_module
from benchmark.data.background import BACKGROUND_NICENESS
from benchmark.data.chips import ChipRef
from benchmark.data.submission import pack_submission
from benchmark.inference.chips import decoding_workers, predict_chip_folder, writer_threads
from benchmark.inference.execution import InferenceOptions, select_execution
from benchmark.inference.forward import probability_to_mask, quantize
from benchmark.inference.settings import PredictionSettings
from tests.fixtures.models import (
    FP32,
    conv_model,
    instance_model,
    pointwise_model,
    record_input_sizes,
    whole_forward,
)
from tests.fixtures.rasters import read_band, rgba, smooth_rgba, write_raster

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")

WHOLE = PredictionSettings(FP32)  # whole chips, plain fp32
AT_10_CM = PredictionSettings(FP32, gsd=0.1)  # a model at 10 cm: chips resized to it


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
        write = chips_module._write_chip_output

        def recording_write(*args):
            niceness.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
            write(*args)

        monkeypatch.setattr(chips_module, "_write_chip_output", recording_write)
        predict_chip_folder(pointwise_model(), chips, str(tmp_path / "o"), WHOLE, expected_size=64)
        base = os.getpriority(os.PRIO_PROCESS, 0)
        assert niceness == [min(19, base + BACKGROUND_NICENESS)] * len(good)

    def test_chips_larger_than_the_window_run_in_blended_windows(self, tmp_path):
        # The blending itself is tested in test_blending.py; here: the window reaches it.
        window, overlap = 24, 6
        rng = np.random.default_rng(7)
        chips = []
        for chip_id in ("w1", "w2", "w3"):
            data = rng.integers(0, 255, (3, 64, 64), dtype=np.uint8)
            chips.append(ChipRef(chip_id, write_raster(tmp_path / f"{chip_id}.tif", data, None)))
        model = pointwise_model()
        sizes = record_input_sizes(model)
        whole, windowed = tmp_path / "whole", tmp_path / "windowed"
        predict_chip_folder(model, chips, str(whole), WHOLE, threshold=None, expected_size=64)
        predict_chip_folder(
            model, chips, str(windowed), PredictionSettings(FP32, window, overlap),
            threshold=None, expected_size=64,
        )  # fmt: skip
        assert set(sizes) == {(64, 64), (window, window)}
        for chip in chips:
            diff = read_band(whole / f"{chip.id}.tif").astype(int) - read_band(
                windowed / f"{chip.id}.tif"
            )
            assert np.abs(diff).max() <= 1  # blending weights sum to 1: rounding only

    @pytest.mark.parametrize("settings", [WHOLE, PredictionSettings(FP32, 24, 6), AT_10_CM])
    def test_an_instance_models_chips_are_its_body(self, tmp_path, chip_dir, settings):
        chips, good = chip_dir
        chips = chips[: len(good)]
        instance = replace(settings, target="instance")
        for name, model, chosen in (
            ("binary", conv_model(), settings),
            ("instance", instance_model(5), instance),
        ):
            predict_chip_folder(
                model, chips, str(tmp_path / name), chosen, threshold=None, expected_size=64,
                chip_gsd=0.075,
            )  # fmt: skip
        for chip in chips:
            with rasterio.open(tmp_path / "instance" / f"{chip.id}.tif") as src:
                assert src.count == 1
            assert (tmp_path / "instance" / f"{chip.id}.tif").read_bytes() == (
                tmp_path / "binary" / f"{chip.id}.tif"
            ).read_bytes()

    @pytest.mark.parametrize("num_workers", [0, 1])
    def test_writes_masks_and_reports_bad_chips(self, tmp_path, chip_dir, num_workers):
        chips, good = chip_dir
        out = tmp_path / "out"
        options = InferenceOptions(
            device="cpu", execution="fp32", batch_size=2, num_workers=num_workers
        )
        model = conv_model()
        report = predict_chip_folder(
            model, chips, str(out), PredictionSettings(options), expected_size=64
        )

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
                assert src.compression == Compression.packbits
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
        predict_chip_folder(conv_model(), chips, out, WHOLE, expected_size=64)
        mtimes = {p.name: p.stat().st_mtime_ns for p in Path(out).iterdir()}

        caplog.set_level("INFO", logger="benchmark.inference.chips")
        again = predict_chip_folder(conv_model(), chips, out, WHOLE, expected_size=64)
        assert sorted(again.skipped) == sorted(good)
        assert again.written == []
        assert set(again.bad) == {"dd04", "ee05", "ff06"}  # still no output: tried again
        assert "3 chip(s) already predicted" in caplog.text
        assert {p.name: p.stat().st_mtime_ns for p in Path(out).iterdir()} == mtimes

        redo = predict_chip_folder(
            conv_model(), chips[:1], out, WHOLE, expected_size=64, overwrite=True
        )
        assert redo.written == ["aa01"]

    def test_no_threshold_writes_quantized_probabilities(self, tmp_path, chip_dir):
        chips, good = chip_dir
        model = pointwise_model()
        out = tmp_path / "prob"
        predict_chip_folder(model, chips[1:2], str(out), WHOLE, threshold=None, expected_size=64)
        expected = quantize(whole_forward(model, good["bb02"][:3]))
        np.testing.assert_array_equal(read_band(out / "bb02.tif"), expected)
        with rasterio.open(out / "bb02.tif") as src:
            assert src.compression == Compression.deflate

    @pytest.mark.parametrize(("num_workers", "threads"), [(0, 2), (1, 1)])
    def test_chips_decode_on_every_core_only_between_batches(
        self, tmp_path, chip_dir, monkeypatch, num_workers, threads
    ):
        chips, _ = chip_dir
        monkeypatch.setattr(chips_module, "usable_cores", lambda: 2)
        datasets = []
        dataset_class = chips_module._ChipDataset

        def recording(*args, **kwargs):
            datasets.append(dataset_class(*args, **kwargs))
            return datasets[-1]

        monkeypatch.setattr(chips_module, "_ChipDataset", recording)
        options = InferenceOptions(device="cpu", execution="fp32", num_workers=num_workers)
        out = str(tmp_path / "out")
        predict_chip_folder(
            pointwise_model(), chips[:2], out, PredictionSettings(options), expected_size=64
        )
        assert [d.threads for d in datasets] == [threads]

    def test_decoding_threads_hold_while_a_chip_is_read(self, chip_dir, monkeypatch):
        chips, _ = chip_dir
        seen = []
        open_checked = chips_module.open_scene_checked

        def recording(uri, **kwargs):
            seen.append(str(rasterio.env.getenv().get("GDAL_NUM_THREADS")))
            return open_checked(uri, **kwargs)

        monkeypatch.setattr(chips_module, "open_scene_checked", recording)
        chips_module._ChipDataset(chips[:1], 64, threads=2)[0]
        assert seen == ["2"]

    @pytest.mark.parametrize(("scale", "side"), [(0.75, 48), (1.5, 96)])
    def test_chips_resized_for_the_model_come_back_at_their_size(
        self, tmp_path, chip_dir, scale, side
    ):
        chips, good = chip_dir
        model = pointwise_model()
        sizes = record_input_sizes(model)
        out = tmp_path / "out"
        report = predict_chip_folder(
            model, chips, str(out), AT_10_CM, expected_size=64, chip_gsd=0.1 * scale
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
                pointwise_model(),
                [chip],
                str(out),
                AT_10_CM,
                expected_size=64,
                chip_gsd=0.1 * scale,
            )
            masks[scale] = read_band(out / "s1.tif")
        assert 0 < masks[1.0].sum() < masks[1.0].size
        assert (masks[1.0] != masks[0.75]).mean() < 0.03  # only some roof edges move

    def test_report_times_the_model(self, tmp_path, chip_dir):
        chips, _ = chip_dir
        report = predict_chip_folder(conv_model(), chips, str(tmp_path), WHOLE, expected_size=64)
        assert 0 < report.model_seconds <= report.wall_seconds
        assert "3 written, 0 already done, 3 bad" in report.summary()


class TestDecodingWorkers:
    CPU = select_execution("cpu", fast=False)

    @pytest.fixture
    def cores(self, monkeypatch):
        monkeypatch.setattr(chips_module.os, "sched_getaffinity", lambda _: {0, 1}, raising=False)
        monkeypatch.setattr(chips_module.os, "cpu_count", lambda: 2)

    @pytest.mark.parametrize(("threads", "workers"), [(2, 0), (1, 1)])
    def test_a_worker_only_where_a_core_is_free_of_the_model(
        self, cores, monkeypatch, threads, workers
    ):
        monkeypatch.setattr(chips_module.torch, "get_num_threads", lambda: threads)
        assert decoding_workers(InferenceOptions(), self.CPU) == workers

    def test_a_gpu_leaves_every_core_to_decoding(self, cores, monkeypatch):
        monkeypatch.setattr(chips_module.torch, "get_num_threads", lambda: 2)
        assert decoding_workers(InferenceOptions(), select_execution("cuda", fast=False)) == 2

    def test_asked_for_is_given(self):
        assert decoding_workers(InferenceOptions(num_workers=3), self.CPU) == 3


class TestWriting:
    """Beside a GPU, writing keeps up: a thread per core, the batch brought back in one copy."""

    GPU = select_execution("cuda", fast=False)

    @pytest.mark.parametrize(("device", "threads"), [("cpu", 1), ("cuda", 2)])
    def test_writer_threads(self, monkeypatch, device, threads):
        monkeypatch.setattr(chips_module, "usable_cores", lambda: 2)
        plan = select_execution(device, fast=False)
        assert writer_threads(InferenceOptions(), plan) == threads
        assert writer_threads(InferenceOptions(num_writers=3), plan) == 3

    def test_folder_predict_writes_on_the_threads_asked_for(self, tmp_path, chip_dir, monkeypatch):
        chips, good = chip_dir
        pools = []
        pool_class = chips_module.ThreadPoolExecutor

        def recording(**kwargs):
            pools.append(kwargs["max_workers"])
            return pool_class(**kwargs)

        monkeypatch.setattr(chips_module, "ThreadPoolExecutor", recording)
        options = InferenceOptions(device="cpu", execution="fp32", num_workers=0, num_writers=3)
        report = predict_chip_folder(
            pointwise_model(), chips, str(tmp_path), PredictionSettings(options), expected_size=64
        )
        assert pools == [3] and sorted(report.written) == sorted(good)

    def test_a_gpu_batch_comes_back_in_one_copy_to_page_locked_memory(self, monkeypatch):
        calls = []
        empty = torch.empty

        def recording_empty(*args, pin_memory=False, **kwargs):
            calls.append(("empty", pin_memory))
            return empty(*args, **kwargs)  # page-locked memory needs CUDA: plain here

        class Stream:
            def synchronize(self):
                calls.append(("synchronize", None))

        monkeypatch.setattr(chips_module.torch, "empty", recording_empty)
        monkeypatch.setattr(chips_module.torch.cuda, "current_stream", lambda device: Stream())
        probs = torch.arange(24, dtype=torch.uint8).reshape(2, 3, 4)
        host = chips_module._on_host(probs, self.GPU)
        assert calls == [("empty", True), ("synchronize", None)]
        np.testing.assert_array_equal(host, probs.numpy())

    def test_a_cpu_batch_is_not_copied(self):
        probs = torch.arange(24, dtype=torch.uint8).reshape(2, 3, 4)
        host = chips_module._on_host(probs, select_execution("cpu", fast=False))
        assert np.shares_memory(host, probs.numpy())


@pytest.mark.aws
def test_chips_on_s3_predict_resume_and_pack(tmp_path, s3_upload):
    ids = ["a1", "b2", "c3"]
    for i, chip_id in enumerate(ids):
        write_raster(tmp_path / "img" / f"{chip_id}.tif", rgba(64, 64, seed=i), crs=None)
    img_uri = s3_upload(tmp_path / "img", "s3://bench/test/img")
    chips = [ChipRef(i, f"{img_uri}/{i}.tif") for i in ids]
    out = "s3://bench/pred/masks"
    options = InferenceOptions(device="cpu", batch_size=2, num_workers=1)

    first = predict_chip_folder(
        pointwise_model(), chips, out, PredictionSettings(options), expected_size=64
    )
    assert sorted(first.written) == ids
    again = predict_chip_folder(
        pointwise_model(), chips, out, PredictionSettings(options), expected_size=64
    )
    assert sorted(again.skipped) == ids

    tgz = "s3://bench/pred/submission.tgz"
    pack_submission(out, ids, tgz, size=64)
    local = download_if_needed(tgz, str(tmp_path / "dl"))
    with tarfile.open(local) as tar:
        assert tar.getnames() == [f"{i}.tif" for i in ids]
