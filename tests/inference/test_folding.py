"""BatchNorm folding: the same outputs with fewer layers, wherever torch.fx can trace."""

import pytest
import torch
from torch import nn

from benchmark.inference.ensemble import EnsembleModel
from benchmark.inference.execution import InferenceOptions, prepare_model
from benchmark.inference.folding import fold_batch_norm
from benchmark.networks.segmentation import PadToMultiple, build_segmentation_model
from tests.fixtures.models import FP32

IMAGES = torch.rand(2, 3, 40, 56)


def batch_norms(model: nn.Module) -> int:
    return sum(type(m) is nn.BatchNorm2d for m in model.modules())


def conv_bn_network() -> nn.Module:
    """conv -> BN -> ReLU -> conv -> BN, with running statistics far from the identity."""
    torch.manual_seed(0)
    network = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 2, 3, padding=1, bias=False), nn.BatchNorm2d(2),
    )  # fmt: skip
    for bn in (network[1], network[4]):
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.5, 0.5)
    return network.eval()


def outputs(model: nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(IMAGES)


@pytest.mark.parametrize(
    "make",
    [
        conv_bn_network,
        lambda: PadToMultiple(conv_bn_network(), 32),  # not traceable: its child is
        lambda: EnsembleModel([PadToMultiple(conv_bn_network(), 32) for _ in range(2)]),
    ],
    ids=["traceable", "padding-wrapper", "ensemble"],
)
def test_folds_every_batch_norm_and_keeps_the_outputs(make):
    model = make()
    reference = outputs(model)
    folded = fold_batch_norm(model)
    assert batch_norms(folded) == 0
    torch.testing.assert_close(outputs(folded), reference, atol=1e-5, rtol=1e-5)
    assert batch_norms(model) > 0  # the model given is left as it was
    torch.testing.assert_close(outputs(model), reference)


def test_folding_twice_is_free():
    folded = fold_batch_norm(conv_bn_network())
    assert fold_batch_norm(folded) is folded


def test_a_model_without_batch_norm_passes_through():
    model = nn.Conv2d(3, 2, 1)
    assert fold_batch_norm(model) is model


def test_an_untraceable_network_is_folded_part_by_part():
    """SMP's FPN branches on sizes in Python; its encoder and decoder blocks trace alone."""
    torch.manual_seed(0)
    model = build_segmentation_model("fpn", "resnet18", pretrained=False).eval()
    images = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        reference = model(images)
        folded = fold_batch_norm(model)
        got = folded(images)
    assert batch_norms(model) > 0
    assert batch_norms(folded) == 0
    torch.testing.assert_close(got, reference, atol=1e-4, rtol=1e-4)


def test_plain_fp32_runs_the_network_as_trained_and_fast_plans_fold():
    channels_last = InferenceOptions(device="cpu", execution="fp32_channels_last")
    assert batch_norms(prepare_model(conv_bn_network(), FP32)) == 2
    assert batch_norms(prepare_model(conv_bn_network(), channels_last)) == 0
