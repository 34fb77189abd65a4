"""The forward pass: uint8 images in, probabilities out, with TTA and a resize for the model's GSD.

A batch's probabilities are float (B, C, H, W): one band, P(building), for a binary model;
P(body), P(border), P(contact) for an instance model (:mod:`benchmark.networks.targets`), told
apart by the logits the network outputs (:func:`logit_probabilities`). Band 0 is P(building)
either way, so what reads buildings only takes it and ignores the rest.

Probabilities are stored as uint8 ``round(255 * P)`` (:func:`quantize`); a pixel is a
building when that value exceeds ``255 * threshold`` (:func:`probability_to_mask`), everywhere:
folder predict, POSTPROCESS, eval and the plots use that one rule.
"""

from collections.abc import Callable
from contextlib import nullcontext

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.errors import InputError
from benchmark.inference.execution import (
    ExecutionPlan,
    InferenceOptions,
    cudnn_autotuning,
    execution_plan,
)
from benchmark.networks.targets import (
    BORDER_LOGIT,
    CONTACT_LOGIT,
    TARGETS,
    Target,
    output_channels,
    probability_bands,
)


def probability_to_mask(prob_u8: np.ndarray, threshold: float) -> np.ndarray:
    """uint8 building mask (1 = building) from uint8 probabilities."""
    return (prob_u8 > round(255 * threshold, 6)).astype(np.uint8)


def quantize_on_device(prob: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Float probabilities in [0, 1] -> uint8 ``round(255 * P)`` (half to even), where they are.

    In torch: on every core, and on the device that computed them (a quarter of the bytes to
    copy back from a GPU).
    """
    return torch.as_tensor(prob).clamp(0, 1).mul_(255).round_().to(torch.uint8)


def quantize(prob: np.ndarray | torch.Tensor) -> np.ndarray:
    """:func:`quantize_on_device`, brought to the host as numpy."""
    return quantize_on_device(prob).cpu().numpy()


def logit_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """float32 (B, C, H, W) probabilities of (B, L, H, W) logits: C = 1 for 2 logits, 3 for 4.

    P(body) is the softmax's building share of the first two logits, computed in one pass over
    half the values; an instance model's border and contact logits are each a sigmoid.
    """
    channels = logits.shape[1]
    if channels not in (output_channels(target) for target in TARGETS):
        raise InputError(
            f"the model outputs {channels} logits per pixel: expected 2 (binary) or 4 (instance)"
        )
    body = torch.sigmoid(logits[:, 1:2].float() - logits[:, 0:1].float())
    if channels == output_channels("binary"):
        return body
    extra = logits[:, BORDER_LOGIT : CONTACT_LOGIT + 1].float().sigmoid()
    return torch.cat([body, extra], dim=1)


def bands_for(probs: torch.Tensor, target: Target) -> torch.Tensor:
    """The bands of (B, C, H, W) ``probs`` a ``target`` prediction is made of: the first ones.

    A binary prediction of an instance model is its P(body) alone; an instance prediction of
    a binary model is refused.
    """
    bands = probability_bands(target)
    if probs.shape[1] < bands:
        raise InputError(
            f"an {target} prediction has {bands} probability bands, but the network gives "
            f"{probs.shape[1]}: it is not an {target} model"
        )
    return probs[:, :bands]


def _forward_probabilities(model: nn.Module, x: torch.Tensor, plan: ExecutionPlan) -> torch.Tensor:
    """float32 (B, C, H, W) probabilities for float (B, 3, H, W) input already on the device."""
    if plan.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    dtype = plan.autocast_dtype
    autocast = torch.autocast(plan.device.type, dtype=dtype) if dtype else nullcontext()
    with autocast, cudnn_autotuning(plan):
        logits = model(x)
    return logit_probabilities(logits)


def _d4_transforms() -> list[tuple[int, bool]]:
    """The 8 symmetries of a square: (quarter turns, then a left-right flip)."""
    return [(k, flip) for k in range(4) for flip in (False, True)]


@torch.inference_mode()
def batch_probabilities(
    model: nn.Module, images: torch.Tensor, plan: ExecutionPlan, tta: bool
) -> torch.Tensor:
    """Probabilities (B, C, H, W) on the device for uint8 (B, 3, H, W) images, in one pass (or 8).

    With ``tta``, each of the 8 views' probabilities is turned back, every band alike (a
    building's border and the contact between two turn with the image), and averaged.
    """
    x = images.to(plan.device, non_blocking=plan.is_cuda).float().div_(255)
    if not tta:
        return _forward_probabilities(model, x, plan)
    total = None
    for k, flip in _d4_transforms():
        t = torch.rot90(x, k, dims=(2, 3))
        t = torch.flip(t, dims=(3,)) if flip else t
        p = _forward_probabilities(model, t, plan)
        p = torch.flip(p, dims=(3,)) if flip else p
        p = torch.rot90(p, -k, dims=(2, 3))
        total = p if total is None else total.add_(p)
    return total / 8


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of float (B, C, H, W) to ``size`` (antialiased when shrinking)."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def probabilities_at_scale(
    images: torch.Tensor,
    plan: ExecutionPlan,
    scale: float,
    probabilities: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """(B, C, H, W) probabilities of uint8 images: ``probabilities`` of them resized by ``scale``.

    How chips at one GSD meet a model trained at another: each chip is resized to the model's
    GSD and the probabilities (each band alike) back to the chip's own size, so outputs keep
    the chip's grid (1024 x 1024 in the competition) whatever the scale.
    """
    if scale == 1.0:
        return probabilities(images)
    size = (images.shape[-2], images.shape[-1])
    scaled = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
    x = images.to(plan.device, non_blocking=plan.is_cuda).float()
    resized = _resize(x, scaled).round_().clamp_(0, 255).to(torch.uint8)
    return _resize(probabilities(resized), size).clamp_(0, 1)


def predict_probabilities(
    model: nn.Module, images_uint8: np.ndarray | torch.Tensor, options: InferenceOptions
) -> np.ndarray:
    """float32 (B, H, W) P(building) (an instance model's P(body)) for uint8 (B, 3, H, W) images.

    ``model`` must have been through :func:`~benchmark.inference.execution.prepare_model` with
    the same options. Runs ``options.batch_size`` images per forward pass.
    """
    plan = execution_plan(options)
    images = torch.as_tensor(images_uint8)
    if images.ndim != 4 or images.shape[1] != 3 or images.dtype != torch.uint8:
        raise ValueError(f"expected uint8 (B, 3, H, W) images, got {images.dtype} {images.shape}")
    parts = [
        batch_probabilities(model, batch, plan, options.tta)[:, 0].cpu()
        for batch in images.split(options.batch_size)
    ]
    return torch.cat(parts).numpy()
