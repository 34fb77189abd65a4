import pytest
import torch

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
