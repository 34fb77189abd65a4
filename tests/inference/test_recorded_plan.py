"""Eval runs the model as predict did: the plan predict recorded, or the nearest one here."""

import json

import pytest

from benchmark.inference.execution import InferenceOptions, select_execution
from benchmark.inference.recorded_plan import record_plan, replay_options

OPTIONS = InferenceOptions(batch_size=3, tta=True)


@pytest.fixture
def recorded(tmp_path):
    """``recorded(name, device)``: the URI of predict's record of that plan."""

    def write(name: str, device: str) -> str:
        uri = str(tmp_path / "predict" / "execution.json")
        record_plan(select_execution(device, execution=name, onnx_runtime=True), uri)
        return uri

    return write


def test_the_record_says_the_plan_and_the_kind_of_device(recorded):
    with open(recorded("fp16", "cuda:1")) as f:
        assert json.load(f) == {"execution": "fp16", "device": "cuda"}


def test_fp16_on_a_gpu_replays_as_fp32_on_a_cpu_saying_so(recorded, fake_gpus, caplog):
    fake_gpus(0)
    caplog.set_level("INFO", logger="benchmark.inference.recorded_plan")
    options = replay_options(OPTIONS, recorded("fp16", "cuda"))
    assert (options.device, options.execution) == ("cpu", "fp32")
    assert (options.batch_size, options.tta) == (3, True)
    assert "Predict ran fp16 on cuda, which this machine cannot: running fp32 on cpu" in caplog.text


def test_where_a_gpu_is_the_recorded_plan_runs_on_it(recorded, fake_gpus):
    fake_gpus(1)
    options = replay_options(OPTIONS, recorded("fp16", "cuda"))
    assert (options.device, options.execution) == ("cuda", "fp16")


@pytest.mark.parametrize("name", ["int8", "bf16", "fp32_channels_last"])
def test_a_cpu_plan_runs_as_recorded(recorded, fake_gpus, monkeypatch, name):
    fake_gpus(1)  # a GPU here changes nothing: predict ran on a CPU
    monkeypatch.setattr("benchmark.inference.execution.onnx_runtime_available", lambda: True)
    options = replay_options(OPTIONS, recorded(name, "cpu"))
    assert (options.device, options.execution) == ("cpu", name)


def test_int8_without_onnx_runtime_here_is_fp32(recorded, monkeypatch):
    monkeypatch.setattr("benchmark.inference.execution.onnx_runtime_available", lambda: False)
    options = replay_options(OPTIONS, recorded("int8", "cpu"))
    assert (options.device, options.execution) == ("cpu", "fp32")


def test_without_a_record_the_options_are_kept_with_a_warning(tmp_path, caplog):
    assert replay_options(OPTIONS, str(tmp_path / "execution.json")) is OPTIONS
    assert "execution.json not found: the model runs this machine's own plan" in caplog.text
