import pytest
import torch

from benchmark.data.constants import IGNORE_LABEL
from benchmark.errors import InputError
from benchmark.training.losses import (
    DiceLoss,
    LovaszHingeLoss,
    WeightedSumLoss,
    build_loss,
    parse_loss_spec,
)


def _logits_for(mask: torch.Tensor, confidence: float) -> torch.Tensor:
    """Two-class logits that predict ``mask`` with the given margin."""
    building = (mask.float() * 2 - 1) * confidence
    return torch.stack([-building, building], dim=1)


class TestLossSpec:
    def test_single_and_weighted_terms(self):
        assert parse_loss_spec("ce") == [("ce", 1.0)]
        assert parse_loss_spec("ce:0.5 + dice") == [("ce", 0.5), ("dice", 1.0)]

    def test_unknown_name_lists_choices(self):
        with pytest.raises(InputError, match=r"unknown loss 'focal'.*dice"):
            parse_loss_spec("ce+focal")

    def test_bad_weight(self):
        with pytest.raises(InputError, match="not a number"):
            parse_loss_spec("ce:half")

    def test_build(self):
        assert isinstance(build_loss("ce"), torch.nn.CrossEntropyLoss)
        assert isinstance(build_loss("ce+lovasz"), WeightedSumLoss)


@pytest.mark.parametrize("loss", [DiceLoss(), LovaszHingeLoss(), build_loss("ce:0.5+dice:0.5")])
def test_loss_prefers_the_right_answer(loss):
    torch.manual_seed(0)
    mask = torch.randint(0, 2, (2, 16, 16))
    right = loss(_logits_for(mask, 4.0), mask)
    wrong = loss(_logits_for(1 - mask, 4.0), mask)
    assert right < wrong
    logits = _logits_for(mask, 0.1).requires_grad_()
    loss(logits, mask).backward()
    assert torch.isfinite(logits.grad).all()


def test_lovasz_is_zero_for_confident_perfect_prediction():
    mask = torch.randint(0, 2, (1, 8, 8))
    assert LovaszHingeLoss()(_logits_for(mask, 2.0), mask).item() == pytest.approx(0.0)


@pytest.mark.parametrize("spec", ["ce", "dice", "lovasz", "ce+lovasz"])
def test_ignored_pixels_do_not_count(spec):
    """Whatever the model says where the label is IGNORE_LABEL, the loss and its gradient
    elsewhere are the same; where every pixel is ignored there is nothing to learn."""
    torch.manual_seed(0)
    mask = torch.randint(0, 2, (2, 16, 16))
    target = mask.clone()
    target[:, :8] = IGNORE_LABEL
    logits = _logits_for(mask, 0.5)
    other = logits.clone()
    other[:, :, :8] = torch.randn_like(other[:, :, :8]) * 5
    loss = build_loss(spec)
    assert loss(other, target).item() == pytest.approx(loss(logits, target).item(), abs=1e-6)
    unsure = torch.full_like(mask, IGNORE_LABEL)
    free = logits.clone().requires_grad_()
    loss(free, unsure).backward()
    assert not free.grad.any()
