"""The measured plan: the fastest within tolerance, cached, forced or not measured at all.

Timings are stand-ins (:func:`stand_in_timings`): no test depends on this machine's speed.
"""

import copy
import gc
import json
import logging
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch

import benchmark.inference.plan_choice as plan_choice
from benchmark.data.chips import ChipRef
from benchmark.inference.chips import predict_chip_folder
from benchmark.inference.execution import InferenceOptions
from benchmark.inference.plan_choice import (
    cache_key,
    cache_path,
    candidate_plans,
    fastest_within_tolerance,
    jaccard_distance,
    prepare_measured,
    read_cache,
    write_cache,
)
from benchmark.inference.scenes import predict_scene
from benchmark.inference.settings import PredictionSettings
from tests.fixtures.models import conv_model
from tests.fixtures.rasters import rgba, write_raster

AUTO = InferenceOptions(device="cpu", batch_size=2, num_workers=0)
PIXELS = plan_choice.MIN_WORK_PIXELS  # enough work to measure for


def _images(count: int = 2, side: int = 64) -> torch.Tensor:
    """Black and white 16 px blocks: every plan's mask is fp32's (no box mean is near 0.5)."""
    blocks = np.random.default_rng(0).integers(0, 2, (count, 1, side // 16, side // 16))
    images = np.kron(blocks, np.ones((1, 3, 16, 16), np.int64)) * 255
    return torch.from_numpy(images.astype(np.uint8))


@pytest.fixture
def cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CPU with native bf16 and without ONNX Runtime, as far as the choice can tell."""
    monkeypatch.setattr(plan_choice, "cpu_has_fast_bf16", lambda: True)
    monkeypatch.setattr(plan_choice, "onnx_runtime_available", lambda: False)


def stand_in_timings(monkeypatch: pytest.MonkeyPatch, seconds: dict[str, float]) -> list[str]:
    """Each plan runs for real (its masks are compared) but takes ``seconds[plan]``; returns
    the plans measured, in order."""
    measured = []
    real = plan_choice._time_plan

    def timed(model, options, crops, calibration, threshold):
        prepared, _, masks = real(model, options, crops, calibration, threshold)
        measured.append(options.execution)
        return prepared, seconds[options.execution], masks

    monkeypatch.setattr(plan_choice, "_time_plan", timed)
    return measured


def no_measure(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args):
        raise AssertionError("measured")

    monkeypatch.setattr(plan_choice, "_time_plan", fail)


class TestFastestWithinTolerance:
    def test_the_fastest_plan_within_tolerance_wins(self):
        seconds = {"fp32": 1.4, "onnx": 0.94, "int8": 0.38, "bf16": 0.47}
        distances = {"fp32": 0.0, "onnx": 0.0, "int8": 0.0036, "bf16": 0.001}
        assert fastest_within_tolerance(seconds, distances) == "int8"

    def test_a_faster_plan_beyond_tolerance_is_passed_over(self):
        seconds = {"fp32": 1.4, "int8": 0.38, "bf16": 0.47}
        distances = {"fp32": 0.0, "int8": 0.02, "bf16": 0.001}
        assert fastest_within_tolerance(seconds, distances, tolerance=0.005) == "bf16"

    def test_fp32_when_nothing_else_is_close_or_faster(self):
        seconds = {"fp32": 1.0, "int8": 0.5, "bf16": 1.2}
        distances = {"fp32": 0.0, "int8": 0.5, "bf16": 0.0}
        assert fastest_within_tolerance(seconds, distances) == "fp32"


class TestCandidatesAndDistance:
    @pytest.mark.parametrize(
        ("bf16", "ort", "plans"),
        [
            (True, True, ["fp32", "fp32_channels_last", "onnx", "int8", "bf16"]),
            (False, True, ["fp32", "fp32_channels_last", "onnx", "int8"]),
            (False, False, ["fp32", "fp32_channels_last"]),
        ],
    )
    def test_only_the_plans_this_cpu_runs_fast_enough_to_time(self, bf16, ort, plans):
        assert candidate_plans(bf16, ort) == plans

    def test_jaccard_distance(self):
        a = np.array([1, 1, 0, 0], bool)
        assert jaccard_distance(a, a) == 0.0
        assert jaccard_distance(a, np.array([1, 0, 1, 0], bool)) == pytest.approx(2 / 3)
        assert jaccard_distance(~a & a, ~a & a) == 0.0  # both empty


class TestCache:
    def test_in_the_variables_folder(self, plan_cache):
        assert cache_path() == plan_cache

    def test_else_in_the_users_cache_folder(self, monkeypatch, tmp_path):
        monkeypatch.delenv(plan_choice.CACHE_ENV)
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
        assert cache_path() == tmp_path / "open-cities-benchmark" / "plans.json"

    def test_written_and_read_back(self, plan_cache):
        write_cache(plan_cache, "a", {"plan": "int8"})
        write_cache(plan_cache, "b", {"plan": "bf16"})
        assert read_cache(plan_cache) == {"a": {"plan": "int8"}, "b": {"plan": "bf16"}}
        assert not list(plan_cache.parent.glob(".partial/*"))

    @pytest.mark.parametrize("text", ["{not json", "[1, 2]"])
    def test_a_corrupt_cache_is_ignored_with_a_warning(self, plan_cache, caplog, text):
        plan_cache.parent.mkdir()
        plan_cache.write_text(text)
        assert read_cache(plan_cache) == {}
        assert "not a readable plan cache" in caplog.text
        write_cache(plan_cache, "a", {"plan": "fp32"})  # and replaced
        assert read_cache(plan_cache) == {"a": {"plan": "fp32"}}

    def test_an_unwritable_cache_is_only_a_warning(self, tmp_path, caplog):
        blocked = tmp_path / "file"
        blocked.write_text("")
        write_cache(blocked / "plans.json", "a", {"plan": "fp32"})
        assert "plan choice not cached" in caplog.text

    def test_the_key_names_cpu_network_versions_and_threads(self):
        key = cache_key(conv_model(), 2)
        assert torch.__version__ in key and "onnxruntime" in key and "2 threads" in key
        assert key == cache_key(conv_model(), 2)  # the same weights, another object
        other = conv_model()
        with torch.no_grad():
            other.bias.add_(1)
        assert cache_key(other, 2) != key
        assert cache_key(conv_model(), 1) != key


class TestPrepareMeasured:
    def test_the_fastest_within_tolerance_is_chosen_cached_and_logged(
        self, monkeypatch, cpu, plan_cache, caplog
    ):
        caplog.set_level(logging.INFO, logger="benchmark.inference.plan_choice")
        measured = stand_in_timings(
            monkeypatch, {"fp32": 1.0, "fp32_channels_last": 0.9, "bf16": 0.4}
        )
        _, options = prepare_measured(conv_model(), AUTO, _images(), PIXELS)
        assert measured == ["fp32", "fp32_channels_last", "bf16"]
        assert options.execution == "bf16"
        [entry] = json.loads(plan_cache.read_text()).values()
        assert entry["plan"] == "bf16"
        assert entry["jaccard_distance"]["bf16"] <= plan_choice.TOLERANCE
        [line] = [r.message for r in caplog.records if r.message.startswith("Plan bf16")]
        assert "bf16 2.50x" in line

    def test_the_next_run_takes_the_cached_plan_without_measuring(
        self, monkeypatch, cpu, plan_cache
    ):
        stand_in_timings(monkeypatch, {"fp32": 1.0, "fp32_channels_last": 0.5, "bf16": 0.9})
        prepare_measured(conv_model(), AUTO, _images(), PIXELS)
        no_measure(monkeypatch)
        # another process: a new network object with the same weights, even for one small chip
        _, options = prepare_measured(conv_model(), AUTO, _images(1), 1)
        assert options.execution == "fp32_channels_last"

    def test_a_plan_beyond_tolerance_is_not_taken(self, monkeypatch, cpu):
        stand_in_timings(monkeypatch, {"fp32": 1.0, "fp32_channels_last": 0.9, "bf16": 0.4})
        monkeypatch.setattr(plan_choice, "jaccard_distance", lambda mask, reference: 0.1)
        _, options = prepare_measured(conv_model(), AUTO, _images(), PIXELS)
        assert options.execution == "fp32"

    def test_every_plan_runs_on_any_cpu(self, monkeypatch):
        pytest.importorskip("onnxruntime")
        monkeypatch.setattr(plan_choice, "cpu_has_fast_bf16", lambda: True)  # emulated or not
        seconds = {"fp32": 1.0, "fp32_channels_last": 0.9, "onnx": 0.6, "int8": 0.3, "bf16": 0.4}
        measured = stand_in_timings(monkeypatch, seconds)
        model, options = prepare_measured(conv_model(), AUTO, _images(), PIXELS)
        assert measured == list(seconds)
        assert options.execution == "int8"
        assert plan_choice._in_onnx_runtime(model)

    def test_once_per_network_in_a_process(self, monkeypatch, cpu):
        measured = stand_in_timings(monkeypatch, {"fp32": 1.0, "fp32_channels_last": 2, "bf16": 2})
        network = conv_model()
        first = prepare_measured(network, AUTO, _images(), PIXELS)
        assert prepare_measured(network, AUTO, _images(), PIXELS) == first
        assert measured == ["fp32", "fp32_channels_last", "bf16"]

    def test_a_copy_handed_back_is_itself_and_freed_with_its_network(self, monkeypatch, cpu):
        stand_in_timings(monkeypatch, {"fp32": 2.0, "fp32_channels_last": 1.0, "bf16": 2})
        network = conv_model()
        prepared, options = prepare_measured(network, AUTO, _images(), PIXELS)
        assert prepare_measured(prepared, AUTO, _images(), PIXELS) == (prepared, options)
        copy = weakref.ref(prepared)
        del network, prepared
        gc.collect()
        assert copy() is None  # self-training's rounds each load a network: none may linger

    def test_a_plan_not_measured_for_want_of_work_is_measured_when_work_comes(
        self, monkeypatch, cpu
    ):
        measured = stand_in_timings(monkeypatch, {"fp32": 1, "fp32_channels_last": 0.5, "bf16": 2})
        # every plan a copy, as bf16's is of a network with BatchNorm: the flags' one is kept
        monkeypatch.setattr(plan_choice, "prepare_model", lambda model, _: copy.deepcopy(model))
        network = conv_model()
        assert prepare_measured(network, AUTO, _images(1), 64 * 64)[1] == AUTO
        blank = torch.zeros(2, 3, 64, 64, dtype=torch.uint8)
        assert prepare_measured(network, AUTO, blank, PIXELS)[1] == AUTO
        assert measured == []
        _, options = prepare_measured(network, AUTO, _images(), PIXELS)
        assert options.execution == "fp32_channels_last"
        assert measured == ["fp32", "fp32_channels_last", "bf16"]

    @pytest.mark.parametrize("plan", ["fp32", "fp32_channels_last"])
    def test_a_forced_plan_is_never_measured(self, monkeypatch, cpu, plan):
        options = InferenceOptions(device="cpu", execution=plan)
        no_measure(monkeypatch)
        _, chosen = prepare_measured(conv_model(), options, _images(), PIXELS)
        assert chosen == options

    def test_a_single_small_chip_takes_the_flags_plan(self, monkeypatch, cpu, plan_cache):
        no_measure(monkeypatch)
        _, options = prepare_measured(conv_model(), AUTO, _images(1), 64 * 64)
        assert options == AUTO  # select_execution's rule: bf16 here
        assert not plan_cache.exists()

    def test_blank_images_take_the_flags_plan(self, monkeypatch, cpu):
        no_measure(monkeypatch)
        blank = torch.zeros(2, 3, 64, 64, dtype=torch.uint8)
        assert prepare_measured(conv_model(), AUTO, blank, PIXELS)[1] == AUTO

    def test_a_gpu_takes_the_flags_plan(self, monkeypatch, cpu):
        no_measure(monkeypatch)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
        monkeypatch.setattr(plan_choice, "prepare_model", lambda model, options: model)
        gpu = InferenceOptions(device="cuda")
        assert prepare_measured(conv_model(), gpu, _images(), PIXELS)[1] == gpu


class TestWhereTheModelMeetsData:
    """Folder and scene prediction choose on their first batch."""

    @pytest.fixture(autouse=True)
    def _small_work_pays(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(plan_choice, "MIN_WORK_PIXELS", 64 * 64)

    def test_folder_prediction(self, monkeypatch, cpu, tmp_path):
        measured = stand_in_timings(
            monkeypatch, {"fp32": 1.0, "fp32_channels_last": 0.2, "bf16": 2}
        )
        chips = [
            ChipRef(f"c{i}", write_raster(tmp_path / f"c{i}.tif", rgba(64, 64, seed=i), crs=None))
            for i in range(3)
        ]
        report = predict_chip_folder(
            conv_model(), chips, str(tmp_path / "out"), PredictionSettings(AUTO), expected_size=64
        )
        assert len(report.written) == 3
        assert measured == ["fp32", "fp32_channels_last", "bf16"]
        [entry] = read_cache(cache_path()).values()
        assert entry["plan"] == "fp32_channels_last"

    def test_scene_prediction(self, monkeypatch, cpu, tmp_path):
        measured = stand_in_timings(monkeypatch, {"fp32": 0.5, "fp32_channels_last": 1, "bf16": 2})
        scene = write_raster(tmp_path / "scene.tif", rgba(96, 96, seed=1))
        in_64 = PredictionSettings(AUTO, window=64)
        predict_scene(conv_model(), scene, str(tmp_path / "prob.tif"), in_64)
        assert measured == ["fp32", "fp32_channels_last", "bf16"]
        assert Path(tmp_path / "prob.tif").exists()
