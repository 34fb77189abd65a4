"""The int8 plan: calibrated on its first batch, close to fp32, forced so it runs on any CPU."""

import numpy as np
import pytest
import torch

from benchmark.inference.execution import InferenceOptions, prepare_model
from benchmark.inference.forward import predict_probabilities
from benchmark.inference.onnx_runtime import OnnxRuntimeNetwork, run_with_onnx_runtime
from benchmark.inference.quantize import calibration_crops
from benchmark.networks.segmentation import PadToMultiple, build_segmentation_model
from tests.fixtures.models import FP32, conv_model
from tests.fixtures.rasters import rgba

pytest.importorskip("onnxruntime")

INT8 = InferenceOptions(device="cpu", execution="int8", batch_size=2, num_workers=0)


def _images(height: int, width: int, count: int = 3) -> np.ndarray:
    return np.stack([rgba(height, width, seed=s, notch=False)[:3] for s in range(count)])


class TestCalibrationCrops:
    def test_count_and_side(self):
        crops = calibration_crops(np.random.rand(2, 3, 300, 400).astype(np.float32), 5, 256)
        assert len(crops) == 5
        assert all(c.shape == (1, 3, 256, 256) and c.dtype == np.float32 for c in crops)

    def test_small_images_give_their_shorter_side(self):
        crops = calibration_crops(np.ones((1, 3, 40, 64), np.float32), 2, 256)
        assert [c.shape for c in crops] == [(1, 3, 40, 40)] * 2

    def test_crops_with_content_beat_nodata(self):
        images = np.zeros((2, 3, 64, 64), np.float32)
        images[1] = np.random.default_rng(0).random((3, 64, 64))
        crops = calibration_crops(images, count=4, side=32)
        assert all(c.std() > 0.1 for c in crops)

    def test_seeded(self):
        images = np.random.default_rng(1).random((2, 3, 64, 64)).astype(np.float32)
        first, again = calibration_crops(images, 3, 32), calibration_crops(images, 3, 32)
        assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))


class TestInt8Plan:
    def test_agrees_with_fp32(self):
        images = _images(48, 72)
        model = prepare_model(conv_model(), INT8)
        assert isinstance(model, OnnxRuntimeNetwork) and model.int8
        reference = predict_probabilities(prepare_model(conv_model(), FP32), images, FP32)
        got = predict_probabilities(model, images, INT8)
        np.testing.assert_allclose(got, reference, atol=0.02)
        assert ((got > 0.5) == (reference > 0.5)).mean() > 0.99

    def test_a_unet_agrees_with_fp32_on_any_size(self):
        torch.manual_seed(0)
        network = build_segmentation_model(pretrained=False).eval()
        images = _images(80, 100, count=2)
        reference = predict_probabilities(prepare_model(network, FP32), images, FP32)
        model = prepare_model(network, INT8)
        assert isinstance(model, PadToMultiple) and isinstance(model.model, OnnxRuntimeNetwork)
        got = predict_probabilities(model, images, INT8)
        assert got.shape == reference.shape == (2, 80, 100)
        np.testing.assert_allclose(got, reference, atol=0.05)
        # another size, after calibration
        assert predict_probabilities(model, images[:1, :, :64, :96], INT8).shape == (1, 64, 96)

    def test_quantizes_once_on_the_first_batch(self, monkeypatch):
        calls = []
        import benchmark.inference.quantize as quantize

        real = quantize.quantize_onnx
        monkeypatch.setattr(quantize, "quantize_onnx", lambda *a: calls.append(1) or real(*a))
        model = prepare_model(conv_model(), INT8)
        assert model.session is None  # nothing to calibrate on yet
        for _ in range(2):
            predict_probabilities(model, _images(32, 32), INT8)
        assert calls == [1]
        assert prepare_model(model, INT8) is model

    def test_fp32_and_int8_preparations_do_not_mix(self):
        int8 = run_with_onnx_runtime(conv_model(), num_threads=1, int8=True)
        with pytest.raises(ValueError, match="prepared for ONNX Runtime int8, not fp32"):
            run_with_onnx_runtime(int8, num_threads=1)
        fp32 = run_with_onnx_runtime(PadToMultiple(conv_model()), num_threads=1)
        with pytest.raises(ValueError, match="prepared for ONNX Runtime fp32, not int8"):
            run_with_onnx_runtime(fp32, num_threads=1, int8=True)
