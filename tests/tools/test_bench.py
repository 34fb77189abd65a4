"""The bench's bookkeeping: repeated measures, the plans it times, the tables it writes."""

import json

import numpy as np
import pytest
import torch

from tools import bench


def test_median_and_spread_of_repeats():
    assert bench._median_spread([1.0, 1.2, 1.1]) == pytest.approx((1.1, 0.2 / 1.1))
    assert bench._median_spread([2.0]) == (2.0, 0.0)


@pytest.mark.parametrize(
    ("bf16", "ort", "fast", "plans"),
    [
        (False, True, "int8", ["fp32", "onnx", "int8"]),
        (True, True, "bf16", ["fp32", "onnx", "int8", "bf16"]),
        (False, False, "fp32_channels_last", ["fp32", "fp32_channels_last"]),
    ],
)
def test_the_plans_timed_include_the_fast_path(monkeypatch, bf16, ort, fast, plans):
    monkeypatch.setattr("benchmark.inference.execution.cpu_has_fast_bf16", lambda: bf16)
    monkeypatch.setattr("benchmark.inference.execution.onnx_runtime_available", lambda: ort)
    monkeypatch.setattr("benchmark.inference.onnx_runtime.onnx_runtime_available", lambda: ort)
    assert bench.cpu_plans() == (fast, plans)


def _results() -> dict:
    results = {
        "machine": "AMD EPYC, 2 cores",
        "date": "2026-12-02",
        "plans": ["fp32", "int8"],
        "fast_path": "int8",
        "predict_chips": 64,
        "predict_overhead_ratio": 1.05,
        "predict_overhead_ratio_spread": 0.03,
        "train_overhead_ratio": 1.3,
        "command_startup_s": 12.5,
        "folding_speedup_bf16": 1.234,
        "folding_speedup_spread_bf16": 0.05,
        "rv_predict_s_per_chip": 20.0,
        "test_set_hours_rv": 63.8,
        "cpu_fast_path_speedup": 4.0,
        "test_set_hours": 3.19,
    }
    for name, s, speedup in (("fp32", 4.0, 1.0), ("int8", 1.0, 4.0)):
        results |= {
            f"plan_s_per_chip_{name}": s,
            f"plan_speedup_{name}": speedup,
            f"plan_jaccard_delta_{name}": 0.001 if name == "int8" else 0.0,
            f"test_set_hours_{name}": s * bench.TEST_SET_CHIPS / 3600,
        }
    return results


def test_the_table_gives_goals_spreads_plans_cpu_and_date():
    table = bench.markdown_table(_results())
    assert "| `predict_overhead_ratio` | <= 1.1 | 1.050 (spread 3%) | yes |" in table
    assert "| `train_overhead_ratio` | <= 1.15 | 1.300 | no |" in table
    assert "| `command_startup_s` | | 12.50 | |" in table
    assert "| `folding_speedup_bf16` | | 1.23 | |" in table
    assert "spread_bf16" not in table
    assert "| int8 (fast path) | 1.00 | 4.00 | 0.0010 | 3.2 |" in table
    assert "| fp32 | 4.00 | 1.00 | 0.0000 | 12.8 |" in table
    assert "| stock `rastervision predict` | 20.00 | | | 63.8 |" in table
    assert "Machine: AMD EPYC, 2 cores; 2026-12-02." in table


def test_the_measured_fast_path_beside_the_flags_guess_and_the_readme_row():
    results = _results() | {"plans": ["fp32", "int8", "bf16"], "flags_plan": "bf16"}
    results |= {"plan_choice_s": 4.21, "plan_s_per_chip_bf16": 1.5, "plan_speedup_bf16": 2.7}
    results |= {"plan_jaccard_delta_bf16": 0.002, "test_set_hours_bf16": 4.8}
    table = bench.markdown_table(results)
    assert "| int8 (fast path) | 1.00 |" in table
    assert "| bf16 (the CPU flags' guess) | 1.50 | 2.70 |" in table
    assert "Fast path measured in 4.2 s (`--plan auto`)." in table
    row = "| AMD EPYC, 2 cores, 2026-12-02 | int8 (flags: bf16) | 4.0x | 3.2 h | 63.8 h |"
    assert row in table


def test_the_fast_path_is_measured_afresh_in_the_bench_folder(tmp_path, monkeypatch):
    from benchmark.inference import plan_choice
    from tests.fixtures.models import conv_model

    monkeypatch.setattr(plan_choice, "onnx_runtime_available", lambda: False)
    monkeypatch.setattr(plan_choice, "cpu_has_fast_bf16", lambda: False)
    images = [np.full((3, 64, 64), 255, np.uint8) for _ in range(4)]
    for image in images:
        image[:, :, :32] = 0  # dark and bright halves: every plan's mask is fp32's
    plan, seconds = bench.measured_plan(conv_model(), images, 64, tmp_path)
    assert plan in ("fp32", "fp32_channels_last")
    assert seconds > 0
    [entry] = json.loads((tmp_path / "plan_cache" / "plans.json").read_text()).values()
    assert entry["plan"] == plan


def test_our_share_of_a_commands_imports():
    importtime = """import time: self [us] | cumulative | imported package
import time:       100 |        100 |       torch._C
import time:      3000 |       3100 |     torch
import time:        50 |         50 |       benchmark.errors
import time:       900 |       2000 |     benchmark.data.aws_errors
import time:       200 |       5300 |   benchmark.data.s3_file_system
import time:        10 |         10 |   rastervision.benchmark
import time:       500 |     900000 | rastervision.pipeline
import time:      1000 |       1000 | benchmark.experiments.args
"""
    # s3_file_system (with the torch it alone imported), the shim, the experiment's args
    assert bench.our_import_seconds(importtime) == pytest.approx((5300 + 10 + 1000) / 1e6)


def test_a_table_without_plans_still_renders():
    results = {"machine": "x", "predict_overhead_ratio": 1.2}
    assert "| `predict_overhead_ratio` | <= 1.1 | 1.200 | no |" in bench.markdown_table(results)


def test_the_gpu_stand_in_waits_per_image_and_times_itself():
    model = bench.GpuStandIn(ms_per_chip=2.0)
    x = torch.zeros(3, 3, 32, 32)
    x[:, 1, :16, :16] = 1.0  # a bright green block: a building
    logits = model(x)
    assert logits.shape == (3, 2, 32, 32)
    building = logits[:, 1] > logits[:, 0]
    assert building[:, :16, :16].all() and building.sum() == 3 * 16 * 16
    assert model.seconds >= 3 * 2.0 / 1000


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # test chips
def test_the_busy_measure_reports_the_models_share_of_each_run(tmp_path):
    results = bench.measure_busy(tmp_path, n_chips=2, ms_per_chip=0.0, scene_px=256)
    assert results["busy_chips"] == 2 and results["busy_scene_px"] == 256
    for name in ("chips", "footprints", "scene_probabilities"):
        assert 0 < results[f"busy_model_share_{name}"] <= 1
        assert results[f"busy_s_per_chip_{name}"] > 0
    assert len(list((tmp_path / "busy" / "prob").glob("*.tif"))) == 2
    assert (tmp_path / "busy" / "footprints" / "scene_buildings.geojson").exists()


def test_the_busy_measure_alone_needs_no_demo_run(tmp_path, monkeypatch):
    def no_demo(out):
        raise AssertionError("the demo ran")

    monkeypatch.setattr(bench, "ensure_demo_run", no_demo)
    monkeypatch.setattr(bench, "measure_busy", lambda *args: {"busy_model_share_chips": 0.9})
    assert bench.main(["--out", str(tmp_path), "--only", "busy"]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["busy_model_share_chips"] == 0.9


def test_a_gpus_plans_are_fp32_and_fp16_and_a_cpus_its_own():
    """What ``measure_predict`` times on each device (``wb_scripts/gpu_check`` on CUDA)."""
    assert bench.device_plans("cuda") == ("fp16", ["fp32", "fp16"])
    assert bench.device_plans("cpu") == bench.cpu_plans()
