"""Training augmentation presets, selected with ``-a aug PRESET``.

``d4`` is Raster Vision's default (random 90 degree rotations and flips: all 8 symmetries of a
square, which suit nadir imagery where buildings have no "up"). The top competition entries
added colour jitter, for imagery from many drones and light conditions, and scale jitter, for
ground sample distances that differ from city to city.

Colour jitter here goes as far as swapping the bands and dropping colour: roof colour is a
property of a neighbourhood, not of buildings. On the Kampala sample the training scene has
mostly red tile roofs and the validation scene mostly blue-grey metal ones; a model that never
saw a blue roof misses most of them.
"""

import os
import random
from typing import Any

import albumentations as A
import numpy as np
import torch

from benchmark.errors import InputError

AUG_PRESETS = ("none", "d4", "color", "scale")


def _d4() -> list[A.BasicTransform]:
    return [A.RandomRotate90(), A.HorizontalFlip(), A.VerticalFlip()]


def _color() -> list[A.BasicTransform]:
    return [
        A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.5),
        A.HueSaturationValue(hue_shift_limit=20, sat_shift_limit=30, val_shift_limit=20, p=0.5),
        A.ChannelShuffle(p=0.5),
        A.ToGray(p=0.1),
    ]


def build_aug_transform(preset: str, img_sz: int) -> dict:
    """Serialized albumentations transform for ``preset`` (RV's ``DataConfig.aug_transform``).

    Args:
        preset: one of :data:`AUG_PRESETS`; each includes the ones before it (but ``none``).
        img_sz: chip side in pixels, the output size of the scale jitter.
    """
    if preset not in AUG_PRESETS:
        raise InputError(f"unknown augmentation preset {preset!r}: choose one of {AUG_PRESETS}")
    transforms: list[A.BasicTransform] = []
    if preset != "none":
        transforms += _d4()
    if preset in ("color", "scale"):
        transforms += _color()
    if preset == "scale":
        transforms.append(
            A.RandomResizedCrop(size=(img_sz, img_sz), scale=(0.5, 1.0), ratio=(0.8, 1.25), p=0.5)
        )
    return A.to_dict(A.Compose(transforms))


class ProcessSeededTransform:
    """An albumentations transform that draws from torch's seed of the process it runs in.

    Albumentations keeps its own random state and ignores the global seeds. A ``seed`` given to
    ``A.Compose`` does not help: it seeds every child transform alike, so a horizontal and a
    vertical flip would always fire together; and DataLoader workers, forked from one process,
    would all replay the same draws. Here the whole transform shares one generator, seeded
    with ``torch.initial_seed()``: in the main process the seed the pipeline (or the learner,
    each epoch) gave torch; in a DataLoader worker the seed torch gives that worker, derived
    from the main process's generator. Whenever that seed changes (a new epoch, a new worker),
    the generator is seeded again: repeatable, each worker draws its own augmentations, and an
    epoch draws the same whatever ran before it in the process.
    """

    def __init__(self, transform: A.BaseCompose) -> None:
        """Wrap ``transform`` (RV's training transform)."""
        self.transform = transform
        self._seeded_for: tuple[int, int] | None = None  # (process, torch seed) of the state

    def __call__(self, **data: Any) -> dict[str, Any]:
        """Apply the transform (RV calls it as ``transform(image=..., mask=...)``)."""
        key = (os.getpid(), torch.initial_seed())
        if self._seeded_for != key:
            seed = key[1] % 2**32
            self.transform.set_random_state(np.random.default_rng(seed), random.Random(seed))
            self._seeded_for = key
        return self.transform(**data)
