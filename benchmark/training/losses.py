"""Training losses, chosen by a short spec string such as ``ce``, ``dice`` or ``ce+lovasz``.

The competition scores the Jaccard index, which cross-entropy only approximates; Dice and the
Lovasz hinge optimise overlap directly and were part of every top solution. A spec is a ``+``
separated sum of terms, each optionally weighted: ``ce:0.5+dice:0.5``.

Every loss leaves out pixels labelled :data:`~benchmark.data.constants.IGNORE_LABEL`: self-
training marks the pseudo-labels it is unsure of so (:mod:`benchmark.training.pseudo_labels`).
"""

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.data.constants import BUILDING, IGNORE_LABEL
from benchmark.errors import InputError


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


def build_loss(spec: str) -> nn.Module:
    """Build the loss described by ``spec`` (see the module docstring)."""
    terms = parse_loss_spec(spec)
    if len(terms) == 1 and terms[0][1] == 1.0:
        return LOSSES[terms[0][0]]()
    return WeightedSumLoss([(weight, LOSSES[name]()) for name, weight in terms])
