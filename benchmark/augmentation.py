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

import albumentations as A

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


def build_aug_transform(preset: str, img_sz: int, seed: int | None = None) -> dict:
    """Serialized albumentations transform for ``preset`` (RV's ``DataConfig.aug_transform``).

    Args:
        preset: one of :data:`AUG_PRESETS`; each includes the ones before it (but ``none``).
        img_sz: chip side in pixels, the output size of the scale jitter.
        seed: seed of the transform's own random state (albumentations ignores the global
            seeds); None draws a new one each time the transform is built.
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
    spec = A.to_dict(A.Compose(transforms))
    # to_dict leaves the seed out, from_dict passes it back to Compose.
    spec["transform"]["seed"] = seed
    return spec
