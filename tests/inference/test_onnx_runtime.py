"""The ONNX Runtime fast path computes what PyTorch computes, for any input size."""

import numpy as np
import pytest
import torch
from torch import nn

from benchmark.inference.execution import InferenceOptions, prepare_model
from benchmark.inference.forward import predict_probabilities
from benchmark.inference.onnx_runtime import OnnxRuntimeNetwork, run_with_onnx_runtime
from benchmark.networks.segmentation import PadToMultiple, build_segmentation_model
from tests.fixtures.models import FP32, conv_model
from tests.fixtures.rasters import rgba

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


def test_the_onnx_plan_agrees_with_fp32():
    # Forced, so it runs whether or not this CPU's fast path would pick it.
    onnx = InferenceOptions(device="cpu", execution="onnx", batch_size=2)
    images = rgba(48, 72, seed=5, notch=False)[None, :3].repeat(3, axis=0)
    model = prepare_model(conv_model(), onnx)
    assert isinstance(model, OnnxRuntimeNetwork)
    reference = predict_probabilities(prepare_model(conv_model(), FP32), images, FP32)
    np.testing.assert_allclose(predict_probabilities(model, images, onnx), reference, atol=1e-5)
