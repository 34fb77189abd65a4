"""The ONNX Runtime fast path computes what PyTorch computes, for any input size."""

import numpy as np
import pytest
import torch
from torch import nn

import benchmark.inference.predict as inference
from benchmark.inference.onnx_runtime import OnnxRuntimeNetwork, run_with_onnx_runtime
from benchmark.inference.predict import InferenceOptions, predict_probabilities, prepare_model
from benchmark.training.models import PadToMultiple, build_segmentation_model
from tests.fixtures.rasters import rgba
from tests.inference.test_predict import PLAIN, conv_model

pytest.importorskip("onnxruntime")


def _torch_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(x)


def test_a_unet_runs_on_sides_that_are_not_multiples_of_32():
    torch.manual_seed(0)
    model = build_segmentation_model(pretrained=False)
    x = torch.rand(2, 3, 80, 100)
    expected = _torch_logits(model, x)
    fast = run_with_onnx_runtime(model, num_threads=1)
    assert isinstance(fast, PadToMultiple) and isinstance(fast.model, OnnxRuntimeNetwork)
    got = fast(x)
    assert got.shape == expected.shape == (2, 2, 80, 100)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(fast(x[:1, :, :64, :96]), _torch_logits(model, x[:1, :, :64, :96]))


def test_preparing_twice_exports_once():
    fast = run_with_onnx_runtime(conv_model(), num_threads=1)
    assert run_with_onnx_runtime(fast, num_threads=1) is fast
    padded = run_with_onnx_runtime(PadToMultiple(conv_model()), num_threads=1)
    assert run_with_onnx_runtime(padded, num_threads=1) is padded


def test_the_cpu_fast_path_agrees_with_plain_fp32(monkeypatch):
    monkeypatch.setattr(inference, "cpu_has_fast_bf16", lambda: False)
    monkeypatch.setattr(inference, "onnx_runtime_available", lambda: True)
    fast = InferenceOptions(device="cpu", fast=True, batch_size=2)
    images = rgba(48, 72, seed=5, notch=False)[None, :3].repeat(3, axis=0)
    model = prepare_model(conv_model(), fast)
    assert isinstance(model, OnnxRuntimeNetwork)
    plain = predict_probabilities(prepare_model(conv_model(), PLAIN), images, PLAIN)
    np.testing.assert_allclose(predict_probabilities(model, images, fast), plain, atol=1e-5)
