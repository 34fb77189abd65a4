"""The forward pass: batches, TTA, reduced precision against fp32, and the probability rule."""

import numpy as np
import pytest

from benchmark.inference.execution import InferenceOptions, prepare_model
from benchmark.inference.forward import predict_probabilities, probability_to_mask, quantize
from tests.fixtures.models import FP32, conv_model, pointwise_model, whole_forward
from tests.fixtures.rasters import rgba


class TestPredictProbabilities:
    images = rgba(64, 96, seed=3, notch=False)[None, :3].repeat(3, axis=0)

    def test_matches_a_plain_forward_in_batches(self):
        model = prepare_model(conv_model(), FP32)
        probs = predict_probabilities(model, self.images, FP32)
        assert probs.shape == (3, 64, 96)
        assert probs.dtype == np.float32
        np.testing.assert_allclose(probs[2], whole_forward(model, self.images[2]), atol=1e-6)

    def test_bf16_agrees_with_fp32(self):
        # Forced, so it runs on any CPU: emulated where bf16 is not native, hence tiny input.
        bf16 = InferenceOptions(device="cpu", execution="bf16", batch_size=2, num_workers=0)
        images = self.images[:, :, :32, :48]
        reference = predict_probabilities(prepare_model(conv_model(), FP32), images, FP32)
        quick = predict_probabilities(prepare_model(conv_model(), bf16), images, bf16)
        np.testing.assert_allclose(quick, reference, atol=0.02)

    def test_tta_undoes_each_transform(self):
        # A pointwise model commutes with flips and rotations: TTA must give the same map
        # (a wrongly inverted rotation would move pixels).
        model = prepare_model(pointwise_model(), FP32)
        tta = InferenceOptions(device="cpu", execution="fp32", tta=True)
        np.testing.assert_allclose(
            predict_probabilities(model, self.images, tta),
            predict_probabilities(model, self.images, FP32),
            atol=1e-6,
        )

    def test_refuses_float_images(self):
        with pytest.raises(ValueError, match=r"uint8 \(B, 3, H, W\)"):
            predict_probabilities(pointwise_model(), self.images.astype(np.float32), FP32)


def test_probability_rule_is_strictly_above_threshold():
    prob_u8 = quantize(np.array([0.0, 0.5, 0.502, 1.0], dtype=np.float32))
    assert prob_u8.tolist() == [0, 128, 128, 255]
    assert probability_to_mask(np.array([127, 128], np.uint8), 0.5).tolist() == [0, 1]
    assert probability_to_mask(np.array([51, 52], np.uint8), 0.2).tolist() == [0, 1]
