import numpy as np
import pytest
import torch

from benchmark.inference.ensemble import EnsembleModel
from benchmark.inference.execution import InferenceOptions, prepare_model
from benchmark.inference.forward import predict_probabilities
from tests.fixtures.models import FP32, brightness_model, conv_model, whole_forward

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
