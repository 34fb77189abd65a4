import numpy as np
import pytest
import torch

from benchmark.inference.ensemble import EnsembleModel
from benchmark.inference.execution import InferenceOptions, execution_plan, prepare_model
from benchmark.inference.forward import batch_probabilities, predict_probabilities
from tests.fixtures.models import (
    FP32,
    brightness_model,
    conv_model,
    instance_model,
    whole_forward,
    whole_instance_forward,
)

IMAGES = np.random.default_rng(0).integers(0, 256, (2, 3, 24, 20), dtype=np.uint8)


def test_the_ensemble_averages_probabilities_not_logits():
    members = [brightness_model(1), brightness_model(3), conv_model()]
    ensemble = EnsembleModel(members).eval()
    expected = np.mean([[whole_forward(m, image) for image in IMAGES] for m in members], axis=0)
    got = predict_probabilities(prepare_model(ensemble, FP32), IMAGES, FP32)
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_one_member_predicts_as_the_model_alone():
    model = conv_model()
    alone = predict_probabilities(prepare_model(model, FP32), IMAGES, FP32)
    ensemble = prepare_model(EnsembleModel([model]), FP32)
    np.testing.assert_allclose(predict_probabilities(ensemble, IMAGES, FP32), alone, atol=1e-6)


def test_a_certain_member_gives_no_nan():
    certain = brightness_model(1)
    with torch.no_grad():
        certain.weight.mul_(1e4)  # probabilities of exactly 0 and 1 in float32
    probabilities = predict_probabilities(
        prepare_model(EnsembleModel([certain, certain]), FP32), IMAGES, FP32
    )
    assert np.isfinite(probabilities).all()


@pytest.mark.parametrize("execution", ["onnx", "bf16", "int8"])
def test_the_fast_paths_run_the_whole_ensemble(execution):
    members = [brightness_model(1), conv_model()]
    reference = predict_probabilities(prepare_model(EnsembleModel(members), FP32), IMAGES, FP32)
    options = InferenceOptions(device="cpu", execution=execution, batch_size=2)
    fast = predict_probabilities(prepare_model(EnsembleModel(members), options), IMAGES, options)
    np.testing.assert_allclose(fast, reference, atol=0.03)


def test_an_instance_ensemble_averages_every_band():
    members = [instance_model(1), instance_model(3)]
    ensemble = prepare_model(EnsembleModel(members), FP32)
    got = batch_probabilities(ensemble, torch.from_numpy(IMAGES), execution_plan(FP32), False)
    expected = np.mean([[whole_instance_forward(m, image) for image in IMAGES] for m in members], 0)
    assert got.shape == (2, 3, 24, 20)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_a_saturated_instance_member_gives_no_inf_or_nan():
    saturated = instance_model(1)
    with torch.no_grad():
        saturated.weight.mul_(1e4)  # border and contact of exactly 0 and 1 in float32
        saturated.bias.mul_(1e4)
    ensemble = EnsembleModel([saturated, saturated]).eval()
    with torch.no_grad():
        logits = ensemble(torch.from_numpy(IMAGES).float() / 255)
    assert torch.isfinite(logits).all()
    probs = batch_probabilities(
        prepare_model(ensemble, FP32), torch.from_numpy(IMAGES), execution_plan(FP32), False
    )
    assert np.isfinite(probs.numpy()).all()
    assert probs[:, 1:].min() < 1e-5 and probs[:, 1:].max() > 1 - 1e-5  # saturated both ways
