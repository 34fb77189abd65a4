"""Several networks as one: their building probabilities averaged.

The winning Open Cities entries averaged models trained apart (other seeds, other encoders):
on a small, noisy training set each model's mistakes are partly its own, and the average
keeps what they agree on. The ensemble is one ``nn.Module`` so that everything downstream is
unchanged: the fast paths (bf16 autocast, the ONNX export, int8 quantization) apply to all
members at once, and TTA, windows and blending see one model.
"""

import torch
from torch import nn

# log(0) would make the output -inf, and softmax of all -inf is NaN.
_SMALLEST_PROBABILITY = 1e-12


class EnsembleModel(nn.Module):
    """Averages the class probabilities of ``members``; returns their logarithm as logits.

    Every consumer turns logits into probabilities with a softmax over classes, and the
    softmax of ``log(mean p)`` is ``mean p`` exactly (the mean sums to one): averaging
    probabilities, not logits, keeps one over-confident member from outvoting the others.
    """

    def __init__(self, members: list[nn.Module]) -> None:
        """Wrap ``members`` (networks returning logits ``[B, classes, H, W]`` alike)."""
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        mean = torch.stack([member(x).float().softmax(dim=1) for member in self.members]).mean(0)
        return mean.clamp_min(_SMALLEST_PROBABILITY).log()
