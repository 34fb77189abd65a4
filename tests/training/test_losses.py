import pytest
import torch

from benchmark.data.constants import BODY_BIT, BORDER_BIT, CONTACT_BIT, IGNORE_LABEL
from benchmark.errors import InputError
from benchmark.training.losses import (
    DiceLoss,
    InstanceLoss,
    LovaszHingeLoss,
    WeightedSumLoss,
    body_target,
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
        assert isinstance(build_loss("ce").loss, torch.nn.CrossEntropyLoss)
        assert isinstance(build_loss("ce+lovasz").loss, WeightedSumLoss)

    @pytest.mark.parametrize("spec", ["ce", "dice", "lovasz", "ce+lovasz"])
    def test_an_instance_networks_logits_are_refused(self, spec):
        labels = torch.zeros(1, 4, 4, dtype=torch.long)
        with pytest.raises(
            ValueError, match="binary target's loss needs 2 logits per pixel, not 4"
        ):
            build_loss(spec)(torch.zeros(1, 4, 4, 4), labels)

    def test_an_unknown_target_is_refused(self):
        with pytest.raises(InputError, match="model target 'panoptic'"):
            build_loss("ce", "panoptic")  # type: ignore[arg-type]


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


def _instance_labels(seed: int = 0) -> torch.Tensor:
    """Random label bits (body, border inside it, contact anywhere) of a (2, 16, 16) batch."""
    generator = torch.Generator().manual_seed(seed)
    body = torch.randint(0, 2, (2, 16, 16), generator=generator)
    border = torch.randint(0, 2, (2, 16, 16), generator=generator) * body
    contact = torch.randint(0, 2, (2, 16, 16), generator=generator)
    return body * BODY_BIT + border * BORDER_BIT + contact * CONTACT_BIT


def _instance_logits(labels: torch.Tensor, confidence: float) -> torch.Tensor:
    """Four logits (background, building, border, contact) that predict ``labels``."""
    signs = [((labels & bit) > 0).float() * 2 - 1 for bit in (BODY_BIT, BORDER_BIT, CONTACT_BIT)]
    body, border, contact = (sign * confidence for sign in signs)
    return torch.stack([-body, body, border, contact], dim=1)


class TestInstanceLoss:
    @pytest.mark.parametrize("spec", ["ce", "dice", "lovasz", "ce+lovasz"])
    def test_each_channel_learns_and_its_gradient_flows(self, spec):
        labels = _instance_labels()
        loss = build_loss(spec, "instance")
        assert isinstance(loss, InstanceLoss)
        right = loss(_instance_logits(labels, 4.0), labels)
        for bit in (BODY_BIT, BORDER_BIT, CONTACT_BIT):
            wrong = loss(_instance_logits(labels ^ bit, 4.0), labels)  # one channel wrong
            assert right < wrong, f"bit {bit}"
        logits = _instance_logits(labels, 0.1).requires_grad_()
        loss(logits, labels).backward()
        for channel in range(4):
            assert logits.grad[:, channel].abs().sum() > 0, f"channel {channel}"

    def test_training_steps_lower_the_loss_of_each_channel(self):
        torch.manual_seed(0)
        labels = _instance_labels()
        logits = torch.zeros(2, 4, 16, 16, requires_grad=True)
        loss = build_loss("ce", "instance", (1.0, 0.25, 0.1))
        parts = [
            InstanceLoss(build_loss("ce"), weights) for weights in ((1, 0, 0), (0, 1, 0), (0, 0, 1))
        ]
        before = [part(logits, labels).item() for part in parts]
        optimizer = torch.optim.Adam([logits], lr=0.2)
        for _ in range(20):
            optimizer.zero_grad()
            loss(logits, labels).backward()
            optimizer.step()
        after = [part(logits, labels).item() for part in parts]
        assert all(a < 0.5 * b for a, b in zip(after, before, strict=True)), (before, after)

    def test_the_weights_weigh_the_channels(self):
        labels = _instance_labels()
        logits = _instance_logits(labels ^ (BORDER_BIT | CONTACT_BIT), 1.0)
        body = build_loss("ce")(logits[:, :2], body_target(labels))
        border_only = InstanceLoss(build_loss("ce"), (0, 1, 0))(logits, labels)
        combined = InstanceLoss(build_loss("ce"), (2, 0.5, 0))(logits, labels)
        assert combined.item() == pytest.approx(2 * body.item() + 0.5 * border_only.item())

    def test_ignored_pixels_count_in_no_channel(self):
        labels = _instance_labels()
        labels[:, :8] = IGNORE_LABEL
        logits = _instance_logits(labels, 0.5)
        other = logits.clone()
        other[:, :, :8] = torch.randn_like(other[:, :, :8]) * 5
        loss = build_loss("ce+dice", "instance")
        assert loss(other, labels).item() == pytest.approx(loss(logits, labels).item(), abs=1e-6)
        free = logits.clone().requires_grad_()
        loss(free, torch.full_like(labels, IGNORE_LABEL)).backward()
        assert not free.grad.any()

    def test_a_binary_networks_logits_are_refused(self):
        labels = _instance_labels()
        with pytest.raises(
            ValueError, match="instance target's loss needs 4 logits per pixel, not 2"
        ):
            build_loss("ce", "instance")(_logits_for(labels & BODY_BIT, 1.0), labels)
