"""The bench's bookkeeping: repeated measures, the plans it times, the tables it writes."""

import pytest

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


def test_a_table_without_plans_still_renders():
    results = {"machine": "x", "predict_overhead_ratio": 1.2}
    assert "| `predict_overhead_ratio` | <= 1.1 | 1.200 | no |" in bench.markdown_table(results)
