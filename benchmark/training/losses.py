"""Training losses, chosen by a short spec string such as ``ce``, ``dice`` or ``ce+lovasz``.

The competition scores the Jaccard index, which cross-entropy only approximates; Dice and the
Lovasz hinge optimise overlap directly and were part of every top solution. A spec is a ``+``
separated sum of terms, each optionally weighted: ``ce:0.5+dice:0.5``.

Every loss leaves out pixels labelled :data:`~benchmark.data.constants.IGNORE_LABEL`: self-
training marks the pseudo-labels it is unsure of so (:mod:`benchmark.training.pseudo_labels`).

An instance target (:mod:`benchmark.networks.targets`) is trained by :class:`InstanceLoss`:
the spec's loss on the body (its two logits and the label's body bit, so a body is learnt as a
binary model learns buildings), plus binary cross-entropy on the border and contact logits,
weighted as the SpaceNet 6 winners weighted them (about 1, 0.25, 0.1 for body, border, contact).
"""

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.data.constants import BODY_BIT, BORDER_BIT, BUILDING, CONTACT_BIT, IGNORE_LABEL
from benchmark.errors import InputError
from benchmark.networks.targets import (
    BORDER_LOGIT,
    CONTACT_LOGIT,
    Target,
    checked_target,
    output_channels,
)

# Weights of the body, border and contact terms of an instance target's loss.
CHANNEL_WEIGHTS = (1.0, 0.25, 0.1)


class DiceLoss(nn.Module):
    """Soft Dice loss on the building probability (class 1), computed over the whole batch."""

    def __init__(self, smooth: float = 1.0) -> None:
        super().__init__()
        self.smooth = smooth

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # noqa: D102
        known = (target != IGNORE_LABEL).float()
        prob = logits.float().softmax(dim=1)[:, BUILDING] * known
        truth = (target == BUILDING).float()
        intersection = (prob * truth).sum()
        total = prob.sum() + truth.sum()
        return 1 - (2 * intersection + self.smooth) / (total + self.smooth)


def _lovasz_grad(sorted_truth: torch.Tensor) -> torch.Tensor:
    """Gradient of the Lovasz extension of the Jaccard loss (Berman et al., 2018, Alg. 1)."""
    gts = sorted_truth.sum()
    intersection = gts - sorted_truth.cumsum(0)
    union = gts + (1 - sorted_truth).cumsum(0)
    jaccard = 1.0 - intersection / union
    jaccard[1:] = jaccard[1:] - jaccard[:-1]
    return jaccard


class LovaszHingeLoss(nn.Module):
    """Lovasz hinge: a convex surrogate of ``1 - Jaccard`` for the building class.

    Computed over the whole batch at once ("micro"), like the competition metric.
    """

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # noqa: D102
        logits = logits.float()
        known = (target != IGNORE_LABEL).reshape(-1)
        margin = (logits[:, BUILDING] - logits[:, 1 - BUILDING]).reshape(-1)[known]
        truth = (target == BUILDING).reshape(-1)[known].float()
        signs = 2.0 * truth - 1.0
        errors = 1.0 - margin * signs
        errors_sorted, perm = torch.sort(errors, descending=True)
        grad = _lovasz_grad(truth[perm])
        return torch.dot(F.relu(errors_sorted), grad)


class CrossEntropyLoss(nn.CrossEntropyLoss):
    """PyTorch's cross-entropy, blind to ignored pixels."""

    def __init__(self) -> None:
        super().__init__(ignore_index=IGNORE_LABEL)


LOSSES: dict[str, type[nn.Module]] = {
    "ce": CrossEntropyLoss,
    "dice": DiceLoss,
    "lovasz": LovaszHingeLoss,
}


class WeightedSumLoss(nn.Module):
    """A weighted sum of named losses."""

    def __init__(self, terms: list[tuple[float, nn.Module]]) -> None:
        super().__init__()
        self.weights = [weight for weight, _ in terms]
        self.losses = nn.ModuleList(loss for _, loss in terms)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return sum(
            w * loss(logits, target) for w, loss in zip(self.weights, self.losses, strict=True)
        )


def parse_loss_spec(spec: str) -> list[tuple[str, float]]:
    """``"ce:0.5+dice"`` -> ``[("ce", 0.5), ("dice", 1.0)]``; unknown names are an error."""
    terms = []
    for part in spec.replace(" ", "").split("+"):
        name, _, weight = part.partition(":")
        if name not in LOSSES:
            raise InputError(f"unknown loss {name!r} in {spec!r}: choose from {sorted(LOSSES)}")
        try:
            terms.append((name, float(weight) if weight else 1.0))
        except ValueError:
            raise InputError(f"loss weight {weight!r} in {spec!r} is not a number") from None
    return terms


def check_channel_weights(weights: tuple[float, float, float]) -> None:
    """Refuse body, border and contact weights that are negative, or all 0."""
    if min(weights) < 0 or not any(weights):
        raise InputError(f"channel weights {weights} (body, border, contact): none < 0, one > 0")


def body_target(target: torch.Tensor) -> torch.Tensor:
    """Instance label bits as binary labels: the body bit, IGNORE_LABEL kept (binary: as is).

    Torch, for a training batch's labels; :func:`benchmark.data.instance_labels.body_labels`
    is the same rule in NumPy, for labels read from rasters (both are tested on one table).
    """
    return torch.where(target == IGNORE_LABEL, target, target & BODY_BIT)


def check_logits(logits: torch.Tensor, target: Target) -> None:
    """Refuse logits that are not a ``target`` network's: a model config and loss that disagree."""
    if logits.shape[1] != output_channels(target):
        raise ValueError(
            f"the {target} target's loss needs {output_channels(target)} logits per pixel, not "
            f"{logits.shape[1]}: the model and the loss were built for different targets"
        )


class BinaryLoss(nn.Module):
    """A binary target's loss: ``loss`` on logits ``[B, 2, H, W]`` (background, building).

    Refuses any other number of logits: an instance network's four would otherwise be read as
    four classes by cross-entropy, or as two by Dice and Lovasz, and train without a word.
    """

    def __init__(self, loss: nn.Module) -> None:
        super().__init__()
        self.loss = loss

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # noqa: D102
        check_logits(logits, "binary")
        return self.loss(logits, target)


class InstanceLoss(nn.Module):
    """An instance target's loss: ``body_loss`` on the body, BCE on border and contact.

    Logits ``[B, 4, H, W]`` (background, building, border, contact); target the label bits
    (``BODY_BIT | BORDER_BIT | CONTACT_BIT``) or IGNORE_LABEL, which no term looks at.
    """

    def __init__(self, body_loss: nn.Module, channel_weights: tuple[float, float, float]) -> None:
        super().__init__()
        self.body_loss = body_loss
        self.channel_weights = channel_weights

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # noqa: D102
        check_logits(logits, "instance")
        body_weight, border_weight, contact_weight = self.channel_weights
        loss = body_weight * self.body_loss(logits[:, :2], body_target(target))
        known = (target != IGNORE_LABEL).float()
        for channel, bit, weight in (
            (BORDER_LOGIT, BORDER_BIT, border_weight),
            (CONTACT_LOGIT, CONTACT_BIT, contact_weight),
        ):
            truth = ((target & bit) > 0).float()
            bce = F.binary_cross_entropy_with_logits(
                logits[:, channel].float(), truth, reduction="none"
            )
            loss = loss + weight * (bce * known).sum() / known.sum().clamp(min=1)
        return loss


def build_loss(
    spec: str,
    target: Target = "binary",
    channel_weights: tuple[float, float, float] = CHANNEL_WEIGHTS,
) -> nn.Module:
    """Build the loss described by ``spec`` (see the module docstring) for ``target``.

    Args:
        spec: the body's (a binary target's only) loss, such as ``ce+lovasz``.
        target: what the network outputs (:mod:`benchmark.networks.targets`).
        channel_weights: an instance target's body, border and contact weights.
    """
    terms = parse_loss_spec(spec)
    if len(terms) == 1 and terms[0][1] == 1.0:
        loss = LOSSES[terms[0][0]]()
    else:
        loss = WeightedSumLoss([(weight, LOSSES[name]()) for name, weight in terms])
    checked_target(target, "loss")
    return BinaryLoss(loss) if target == "binary" else InstanceLoss(loss, channel_weights)
