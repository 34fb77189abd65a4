"""Overlapping prediction windows blended without seams: the blend grid scenes and chips share.

Near a window's edge a CNN sees zero padding instead of the neighbouring pixels, so two
windows disagree where they meet. Windows that share ``overlap`` pixels are blended with
raised-cosine ramps that sum to 1, so their edges leave no seam (``tools/seam_picture.py``
pictures and measures this).
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from benchmark.data.windows import window_starts
from benchmark.inference.execution import ExecutionPlan
from benchmark.inference.forward import batch_probabilities


def _axis_weights(starts: list[int], length: int, window: int, overlap: int) -> list[np.ndarray]:
    """Each window's 1-D blend weights on one axis, clipped to the raster.

    A raised-cosine ramp across the overlap fades out a window's edges toward its neighbours
    (where a CNN's zero padding makes it least accurate) and sums with the neighbour's ramp
    to 1, so the blend has no seam. Edges on the raster's border keep full weight: there the
    padding is the same as for the whole raster, and no other window covers them.
    """
    ramp = np.sin(0.5 * np.pi * (np.arange(overlap, dtype=np.float32) + 0.5) / max(overlap, 1))
    ramp **= 2
    weights = []
    for i, start in enumerate(starts):
        w = np.ones(window, dtype=np.float32)
        if overlap and i > 0:
            w[:overlap] = ramp
        if overlap and i < len(starts) - 1:
            w[window - overlap :] = ramp[::-1]
        weights.append(w[: min(window, length - start)])
    return weights


def _coverage(length: int, starts: list[int], weights: list[np.ndarray]) -> np.ndarray:
    """Sum of the windows' 1-D weights over each pixel of one axis (the blend's normalizer)."""
    total = np.zeros(length, dtype=np.float32)
    for start, w in zip(starts, weights, strict=True):
        total[start : start + len(w)] += w
    return total


@dataclass(frozen=True)
class BlendGrid:
    """Overlapping ``window`` px windows over a raster, with their blend weights per axis.

    Attributes:
        row_weights, col_weights: the windows' origins on each axis, in order, and each
            origin's 1-D weights (clipped to the raster).
        row_cover, col_cover: the weights' sum over each pixel; their outer product
            normalizes the blend.
    """

    row_weights: dict[int, np.ndarray]
    col_weights: dict[int, np.ndarray]
    row_cover: np.ndarray
    col_cover: np.ndarray

    @classmethod
    def over(cls, height: int, width: int, window: int, overlap: int) -> "BlendGrid":
        """Windows of ``window`` px sharing ``overlap`` px (at most half a window)."""
        overlap = min(overlap, window // 2)
        rows = window_starts(height, window, overlap)
        cols = window_starts(width, window, overlap)
        row_weights = _axis_weights(rows, height, window, overlap)
        col_weights = _axis_weights(cols, width, window, overlap)
        return cls(
            row_weights=dict(zip(rows, row_weights, strict=True)),
            col_weights=dict(zip(cols, col_weights, strict=True)),
            row_cover=_coverage(height, rows, row_weights),
            col_cover=_coverage(width, cols, col_weights),
        )

    @property
    def rows(self) -> list[int]:
        """The windows' row origins, top to bottom."""
        return list(self.row_weights)

    @property
    def cols(self) -> list[int]:
        """The windows' column origins, left to right."""
        return list(self.col_weights)


@torch.inference_mode()
def windowed_probabilities(
    model: nn.Module,
    images: torch.Tensor,
    plan: ExecutionPlan,
    tta: bool,
    window: int,
    overlap: int,
) -> torch.Tensor:
    """(B, C, H, W) probabilities of uint8 images run in ``window`` px windows blended like scenes.

    A model trained on small chips can be best at that size: run on a whole 1024 px chip it
    sees more context than it ever learned from. Images no larger than ``window`` run whole.
    Every band is blended with the same weights.
    """
    height, width = images.shape[-2:]
    if max(height, width) <= window:
        return batch_probabilities(model, images, plan, tta)
    grid = BlendGrid.over(height, width, window, overlap)
    # On the device once, windows and weights: from a GPU's side, a copy per window from a
    # slice of host memory would wait for each in turn.
    images = images.to(plan.device, non_blocking=plan.is_cuda)
    rows = {row: torch.from_numpy(wy).to(plan.device) for row, wy in grid.row_weights.items()}
    cols = {col: torch.from_numpy(wx).to(plan.device) for col, wx in grid.col_weights.items()}
    total = None  # (B, C, H, W) once the first window says C
    for row, wy in rows.items():
        for col, wx in cols.items():
            h, w = len(wy), len(wx)
            prob = batch_probabilities(model, images[:, :, row : row + h, col : col + w], plan, tta)
            if total is None:
                total = prob.new_zeros(*prob.shape[:2], height, width)
            total[..., row : row + h, col : col + w] += prob * (wy[:, None] * wx)
    cover = np.outer(grid.row_cover, grid.col_cover)
    return total / torch.from_numpy(cover).to(plan.device)
