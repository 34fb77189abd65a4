import albumentations as A
import numpy as np
import pytest

from benchmark.augmentation import AUG_PRESETS, build_aug_transform
from benchmark.errors import InputError


@pytest.mark.parametrize("preset", AUG_PRESETS)
def test_presets_round_trip_and_keep_image_and_mask_aligned(preset):
    transform = A.from_dict(build_aug_transform(preset, 32))
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    mask = (image[..., 0] > 127).astype(np.uint8)
    out = transform(image=image, mask=mask)
    assert out["image"].shape == (32, 32, 3)
    assert out["mask"].shape == (32, 32)
    if preset in ("none", "d4"):  # geometric only: the mask still marks the bright pixels
        assert np.array_equal(out["mask"], (out["image"][..., 0] > 127).astype(np.uint8))


def test_unknown_preset():
    with pytest.raises(InputError, match="'heavy'"):
        build_aug_transform("heavy", 32)


def test_a_seeded_transform_repeats_itself_after_serialization():
    image = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    runs = []
    for _ in range(2):
        transform = A.from_dict(build_aug_transform("scale", 32, seed=7))
        runs.append([transform(image=image)["image"] for _ in range(5)])
    for first, second in zip(*runs, strict=True):
        np.testing.assert_array_equal(first, second)
