"""Execution plans: the hardware's fast path on every kind of device, and forced plans."""

import pytest
import torch

from benchmark.errors import InputError
from benchmark.inference.execution import (
    ExecutionPlan,
    InferenceOptions,
    cudnn_autotuning,
    execution_plan,
    prepare_model,
    select_execution,
)
from benchmark.inference.forward import batch_probabilities
from tests.fixtures.models import FP32, pointwise_model


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
    def test_fp32_is_fp32_on_any_cpu(self, monkeypatch, bf16):
        monkeypatch.setattr("benchmark.inference.execution.cpu_has_fast_bf16", lambda: bf16)
        assert execution_plan(InferenceOptions(device="cpu", execution="fp32")).name == "fp32"

    def test_forced_plan_wins_over_the_hardware(self, monkeypatch):
        monkeypatch.setattr("benchmark.inference.execution.cpu_has_fast_bf16", lambda: True)
        assert execution_plan(InferenceOptions(device="cpu")).name == "bf16"
        pinned = InferenceOptions(device="cpu", execution="fp32_channels_last")
        assert execution_plan(pinned).name == "fp32_channels_last"

    def test_unknown_plans_are_refused(self):
        with pytest.raises(ValueError, match="execution 'int4': expected one of auto, fp32"):
            InferenceOptions(execution="int4")


class TestDevice:
    def test_an_unknown_device_is_refused(self):
        with pytest.raises(ValueError, match="device 'gpu': expected auto, cpu, cuda or cuda:N"):
            InferenceOptions(device="gpu")

    def test_the_plan_of_a_gpu_the_machine_lacks_is_one_line(self, fake_gpus):
        fake_gpus(0)
        with pytest.raises(InputError, match=r"^device cuda:7: not available \(this machine"):
            execution_plan(InferenceOptions(device="cuda:7"))

    def test_the_plan_is_on_the_gpu_asked_for(self, fake_gpus):
        fake_gpus(2)
        assert execution_plan(InferenceOptions(device="cuda:1")).device == torch.device("cuda:1")


class TestCudnnAutotuning:
    """Autotuning inside inference only: training after a prediction runs as it would alone."""

    @pytest.mark.parametrize("before", [False, True])
    def test_on_for_a_gpu_plan_and_restored_after(self, before, monkeypatch):
        monkeypatch.setattr(torch.backends.cudnn, "benchmark", before)
        with cudnn_autotuning(select_execution("cuda", fast=False)):
            assert torch.backends.cudnn.benchmark
        assert torch.backends.cudnn.benchmark is before

    def test_restored_after_an_error(self, monkeypatch):
        monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
        with pytest.raises(RuntimeError), cudnn_autotuning(select_execution("cuda", fast=False)):
            raise RuntimeError("out of memory")
        assert not torch.backends.cudnn.benchmark

    def test_a_cpu_plan_leaves_it_alone(self, monkeypatch):
        monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
        with cudnn_autotuning(select_execution("cpu", fast=False)):
            assert not torch.backends.cudnn.benchmark

    def test_preparing_a_model_leaves_it_alone(self, monkeypatch):
        monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
        prepare_model(pointwise_model(), FP32)
        assert not torch.backends.cudnn.benchmark

    def test_the_forward_pass_autotunes_on_a_gpu_and_restores(self, monkeypatch):
        monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
        monkeypatch.setattr(ExecutionPlan, "is_cuda", property(lambda plan: True))  # on the CPU
        seen = []
        model = pointwise_model()
        model.register_forward_hook(lambda *_: seen.append(torch.backends.cudnn.benchmark))
        batch_probabilities(
            model, torch.zeros(2, 3, 8, 8, dtype=torch.uint8), execution_plan(FP32), tta=True
        )
        assert seen == [True] * 8
        assert not torch.backends.cudnn.benchmark
