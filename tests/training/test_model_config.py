"""What the model config builds for each target."""

import pytest

from benchmark.errors import InputError
from benchmark.training.losses import BinaryLoss, InstanceLoss
from benchmark.training.model_config import BenchmarkModelConfig, BenchmarkSolverConfig

SMALLEST = {"encoder": "tu-mobilenetv3_small_050", "pretrained": False}


def test_an_instance_model_of_other_than_two_label_classes_is_refused():
    config = BenchmarkModelConfig(target="instance", **SMALLEST)
    with pytest.raises(InputError, match="background and building: 3 classes given"):
        config.build_default_model(num_classes=3, in_channels=3)


def test_each_target_gets_its_own_loss():
    solver = BenchmarkSolverConfig()
    assert isinstance(solver.build_loss(2), BinaryLoss)
    assert isinstance(solver.build_loss(2, target="instance"), InstanceLoss)
