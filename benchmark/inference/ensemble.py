"""Several networks as one: their probabilities averaged.

The winning Open Cities entries averaged models trained apart (other seeds, other encoders):
on a small, noisy training set each model's mistakes are partly its own, and the average
keeps what they agree on. The ensemble is one ``nn.Module`` so that everything downstream is
unchanged: the fast paths (bf16 autocast, the ONNX export, int8 quantization) apply to all
members at once, and TTA, windows and blending see one model.
"""

import torch
from torch import nn

from benchmark.networks.targets import output_channels

# log(0) would make the output -inf, and softmax of all -inf is NaN.
_SMALLEST_PROBABILITY = 1e-12
# The border and contact averages' logits are clamped to [eps, 1 - eps] first: in float32,
# 1 - 1e-12 is 1.0 and a saturated member's logit +inf; 1 - 1e-6 is not (logit about 13.8).
_SIGMOID_EPS = 1e-6


class EnsembleModel(nn.Module):
    """Averages the probabilities of ``members``; returns logits that decode to the average.

    Every consumer turns the first two logits into P(building) with a softmax over them, and
    the softmax of ``log(mean p)`` is ``mean p`` exactly (the mean sums to one): averaging
    probabilities, not logits, keeps one over-confident member from outvoting the others.
    An instance model's border and contact logits are each a sigmoid: their average
    probability is returned as its logit (:mod:`benchmark.networks.targets`).
    """

    def __init__(self, members: list[nn.Module]) -> None:
        """Wrap ``members`` (networks returning logits ``[B, channels, H, W]`` alike)."""
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        logits = [member(x).float() for member in self.members]
        classes = torch.stack([m[:, :2].softmax(dim=1) for m in logits]).mean(0)
        averaged = classes.clamp_min(_SMALLEST_PROBABILITY).log()
        if logits[0].shape[1] == output_channels("binary"):
            return averaged
        others = torch.stack([m[:, 2:].sigmoid() for m in logits]).mean(0)
        return torch.cat([averaged, others.logit(eps=_SIGMOID_EPS)], dim=1)
