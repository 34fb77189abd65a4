"""The forward pass: batches, TTA, reduced precision against fp32, and the probability rule."""

import numpy as np
import pytest
import torch
from torch import nn

from benchmark.errors import InputError
from benchmark.inference.execution import InferenceOptions, execution_plan, prepare_model
from benchmark.inference.forward import (
    bands_for,
    batch_probabilities,
    logit_probabilities,
    predict_probabilities,
    probabilities_at_scale,
    probability_to_mask,
    quantize,
)
from tests.fixtures.models import (
    FP32,
    conv_model,
    instance_model,
    pointwise_instance_model,
    pointwise_model,
    whole_forward,
    whole_instance_forward,
)
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


class TestInstanceProbabilities:
    """An instance model's 4 logits give 3 bands: P(body), P(border), P(contact)."""

    images = torch.from_numpy(rgba(64, 96, seed=3, notch=False)[None, :3].repeat(2, axis=0))
    plan = execution_plan(FP32)

    def test_three_bands_in_order_body_the_binary_models_building(self):
        model = instance_model(5)
        probs = batch_probabilities(model, self.images, self.plan, tta=False)
        assert probs.shape == (2, 3, 64, 96)
        expected = whole_instance_forward(model, self.images[1].numpy())
        np.testing.assert_allclose(probs[1].numpy(), expected, atol=1e-6)
        binary = batch_probabilities(conv_model(), self.images, self.plan, tta=False)
        assert binary.shape == (2, 1, 64, 96)
        np.testing.assert_allclose(probs[:, :1], binary, atol=1e-6)
        assert np.abs(probs[:, 1] - probs[:, 2]).max() > 0.1  # border and contact differ

    def test_predict_probabilities_is_p_body(self):
        model = prepare_model(instance_model(5), FP32)
        body = predict_probabilities(model, self.images.numpy(), FP32)
        assert body.shape == (2, 64, 96)
        np.testing.assert_allclose(body, predict_probabilities(conv_model(), self.images, FP32))

    def test_tta_turns_every_band_back(self):
        # Averaged over the 8 symmetries, the map of a turned image is the turned map, for
        # any model: a band left turned (or turned the wrong way) breaks this.
        torch.manual_seed(0)
        model = nn.Conv2d(3, 4, 3, padding=1)  # no symmetry of its own
        turned = torch.rot90(self.images, 1, dims=(2, 3)).flip(3)
        probs = batch_probabilities(model, self.images, self.plan, tta=True)
        probs_of_turned = batch_probabilities(model, turned, self.plan, tta=True)
        assert probs.shape == (2, 3, 64, 96)
        np.testing.assert_allclose(
            probs_of_turned, torch.rot90(probs, 1, dims=(2, 3)).flip(3), atol=1e-5
        )
        plain = batch_probabilities(model, self.images, self.plan, tta=False)
        assert (probs - plain).abs().amax(dim=(0, 2, 3)).min() > 1e-3  # each band averaged

    def test_tta_of_a_pointwise_model_changes_no_band(self):
        model = pointwise_instance_model()
        np.testing.assert_allclose(
            batch_probabilities(model, self.images, self.plan, tta=True),
            batch_probabilities(model, self.images, self.plan, tta=False),
            atol=1e-6,
        )

    def test_gsd_resize_is_band_by_band(self):
        model = instance_model(3)

        def probabilities(batch: torch.Tensor) -> torch.Tensor:
            return batch_probabilities(model, batch, self.plan, tta=False)

        probs = probabilities_at_scale(self.images, self.plan, 0.5, probabilities)
        assert probs.shape == (2, 3, 64, 96)
        for band in range(3):
            alone = probabilities_at_scale(
                self.images,
                self.plan,
                0.5,
                lambda batch, b=band: probabilities(batch)[:, b : b + 1],
            )
            np.testing.assert_array_equal(probs[:, band : band + 1], alone)

    def test_bands_for_a_target(self):
        probs = batch_probabilities(instance_model(1), self.images, self.plan, tta=False)
        np.testing.assert_array_equal(bands_for(probs, "instance"), probs)
        np.testing.assert_array_equal(bands_for(probs, "binary"), probs[:, :1])
        binary = batch_probabilities(pointwise_model(), self.images, self.plan, tta=False)
        with pytest.raises(InputError, match="gives 1: it is not an instance model"):
            bands_for(binary, "instance")

    @pytest.mark.parametrize("execution", ["fp32_channels_last", "onnx", "int8"])
    def test_the_fast_plans_give_every_band(self, execution):
        if execution in ("onnx", "int8"):
            pytest.importorskip("onnxruntime")
        options = InferenceOptions(device="cpu", execution=execution, batch_size=2)
        fast = prepare_model(instance_model(5), options)
        got = batch_probabilities(fast, self.images, execution_plan(options), tta=False)
        reference = batch_probabilities(instance_model(5), self.images, self.plan, tta=False)
        assert got.shape == (2, 3, 64, 96)
        np.testing.assert_allclose(got, reference, atol=0.03)

    @pytest.mark.parametrize("channels", [1, 3, 5])
    def test_other_logit_counts_are_one_line(self, channels):
        with pytest.raises(InputError, match=f"outputs {channels} logits per pixel: expected 2"):
            logit_probabilities(torch.zeros(1, channels, 4, 4))
