"""Execution plans: the hardware's fast path on every kind of device, and forced plans."""

import pytest
import torch

from benchmark.inference.execution import InferenceOptions, execution_plan, select_execution


class TestSelectExecution:
    def test_cuda_fast_uses_fp16_channels_last(self):
        plan = select_execution("cuda", fast=True)
        assert plan.is_cuda
        assert plan.channels_last
        assert plan.autocast_dtype == torch.float16
        assert plan.name == "fp16"

    def test_cuda_plain_is_fp32(self):
        plan = select_execution("cuda:1", fast=False)
        assert plan.device == torch.device("cuda:1")
        assert not plan.channels_last
        assert plan.autocast_dtype is None

    @pytest.mark.parametrize(
        ("bf16", "dtype", "name"),
        [(True, torch.bfloat16, "bf16"), (False, None, "fp32_channels_last")],
    )
    def test_cpu_fast_uses_bf16_only_where_native(self, bf16, dtype, name):
        plan = select_execution("cpu", fast=True, cpu_bf16=bf16, onnx_runtime=False)
        assert plan.device == torch.device("cpu")
        assert plan.channels_last
        assert plan.autocast_dtype == dtype
        assert not plan.onnx_runtime
        assert plan.name == name

    def test_cpu_fast_without_bf16_runs_int8_in_onnx_runtime_where_installed(self):
        plan = select_execution("cpu", fast=True, cpu_bf16=False, onnx_runtime=True)
        assert plan.name == "int8"
        assert plan.onnx_runtime and plan.int8
        assert not plan.channels_last
        assert plan.autocast_dtype is None

    def test_native_bf16_and_gpus_stay_in_pytorch(self):
        assert not select_execution("cpu", fast=True, cpu_bf16=True, onnx_runtime=True).onnx_runtime
        assert not select_execution("cuda", fast=True, onnx_runtime=True).onnx_runtime
        assert not select_execution("cpu", fast=False, onnx_runtime=True).onnx_runtime

    def test_auto_is_cpu_without_gpu(self, monkeypatch):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        assert select_execution("auto", fast=False).device == torch.device("cpu")


class TestForcedExecution:
    @pytest.mark.parametrize("bf16", [True, False])
    @pytest.mark.parametrize("name", ["fp32", "fp32_channels_last", "bf16", "onnx", "int8"])
    def test_a_forced_plan_ignores_the_hardware(self, name, bf16):
        plan = select_execution("cpu", cpu_bf16=bf16, onnx_runtime=True, execution=name)
        assert plan.name == name
        assert plan.device == torch.device("cpu")

    def test_what_each_forced_plan_runs(self):
        def plan(name, device="cpu"):
            p = select_execution(device, onnx_runtime=True, execution=name)
            return (p.channels_last, p.autocast_dtype, p.onnx_runtime, p.int8)

        assert plan("fp32") == (False, None, False, False)
        assert plan("fp32_channels_last") == (True, None, False, False)
        assert plan("bf16") == (True, torch.bfloat16, False, False)
        assert plan("bf16", "cuda") == (True, torch.bfloat16, False, False)
        assert plan("fp16", "cuda") == (True, torch.float16, False, False)
        assert plan("onnx") == (False, None, True, False)
        assert plan("int8") == (False, None, True, True)

    @pytest.mark.parametrize(
        ("device", "name", "problem"),
        [
            ("cpu", "fp16", "'fp16' runs on cuda"),
            ("cuda", "onnx", "'onnx' runs on cpu"),
            ("cuda", "int8", "'int8' runs on cpu"),
        ],
    )
    def test_a_plan_on_a_device_it_cannot_run_on_is_refused(self, device, name, problem):
        with pytest.raises(ValueError, match=problem):
            select_execution(device, onnx_runtime=True, execution=name)

    @pytest.mark.parametrize("name", ["onnx", "int8"])
    def test_onnx_runtime_plans_without_onnxruntime_are_refused(self, name):
        with pytest.raises(ValueError, match=f"'{name}' needs onnxruntime"):
            select_execution("cpu", onnx_runtime=False, execution=name)


class TestInferenceOptions:
    @pytest.mark.parametrize("bf16", [True, False])
    def test_fast_false_is_fp32_on_any_cpu(self, monkeypatch, bf16):
        monkeypatch.setattr("benchmark.inference.execution.cpu_has_fast_bf16", lambda: bf16)
        assert execution_plan(InferenceOptions(device="cpu", fast=False)).name == "fp32"
        forced = InferenceOptions(device="cpu", fast=False, execution="fp32")
        assert execution_plan(forced).name == "fp32"

    def test_forced_plan_wins_over_the_hardware(self, monkeypatch):
        monkeypatch.setattr("benchmark.inference.execution.cpu_has_fast_bf16", lambda: True)
        assert execution_plan(InferenceOptions(device="cpu")).name == "bf16"
        pinned = InferenceOptions(device="cpu", execution="fp32_channels_last")
        assert execution_plan(pinned).name == "fp32_channels_last"

    def test_contradictions_and_unknown_plans_are_refused(self):
        with pytest.raises(ValueError, match="fast=False runs fp32, not execution 'bf16'"):
            InferenceOptions(fast=False, execution="bf16")
        with pytest.raises(ValueError, match="execution 'int4': expected one of auto, fp32"):
            InferenceOptions(execution="int4")
