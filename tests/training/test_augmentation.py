import random

import albumentations as A
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from benchmark.errors import InputError
from benchmark.training.augmentation import AUG_PRESETS, ProcessSeededTransform, build_aug_transform
from benchmark.training.data_config import BenchmarkImageDataConfig


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


def _rv_training_transform(preset: str = "d4") -> A.Compose:
    """The transform as RV builds it: its base transform and ours, in an unseeded Compose."""
    return A.Compose([A.Compose([]), A.from_dict(build_aug_transform(preset, 8))])


IMAGE = np.arange(64, dtype=np.uint8).reshape(8, 8, 1).repeat(3, axis=2)


def test_a_seeded_transform_repeats_itself_and_reaches_all_eight_symmetries():
    runs = []
    for _ in range(2):
        torch.manual_seed(3)
        transform = ProcessSeededTransform(_rv_training_transform())
        runs.append([transform(image=IMAGE)["image"].tobytes() for _ in range(60)])
    assert runs[0] == runs[1]
    # A Compose(seed=...) seeds each child alike: its flips fire together, 4 outcomes of 8.
    assert len(set(runs[0])) == 8


class _Images(Dataset):
    def __init__(self, transform) -> None:
        self.transform = transform

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.from_numpy(self.transform(image=IMAGE)["image"])


def _epoch(transform, seed: int) -> list[bytes]:
    torch.manual_seed(seed)  # as the pipeline does before train
    loader = DataLoader(_Images(transform), batch_size=4, num_workers=2)
    return [batch.numpy().tobytes() for batch in loader]


def test_a_new_torch_seed_starts_the_draws_again():
    """Each epoch is seeded anew by the learner: it must draw the same after any history."""
    transform = ProcessSeededTransform(_rv_training_transform())
    draws = {}
    for history in (0, 7):
        torch.manual_seed(1)
        for _ in range(history):
            transform(image=IMAGE)
        torch.manual_seed(2)  # the next epoch
        draws[history] = [transform(image=IMAGE)["image"].tobytes() for _ in range(20)]
    assert draws[0] == draws[7]


def test_dataloader_workers_draw_apart_and_repeatably():
    transform = ProcessSeededTransform(_rv_training_transform())
    first_worker, second_worker = _epoch(transform, seed=0)
    assert first_worker != second_worker  # forked copies would replay one stream
    assert _epoch(transform, seed=0) == [first_worker, second_worker]
    assert _epoch(transform, seed=1) != [first_worker, second_worker]


def test_the_data_config_seeds_only_when_given_a_seed():
    spec = build_aug_transform("d4", 8)
    _, seeded = BenchmarkImageDataConfig(img_sz=8, aug_transform=spec, seed=3).get_data_transforms()
    assert isinstance(seeded, ProcessSeededTransform)
    _, unseeded = BenchmarkImageDataConfig(img_sz=8, aug_transform=spec).get_data_transforms()
    assert not isinstance(unseeded, ProcessSeededTransform)


@pytest.mark.parametrize("preset", AUG_PRESETS)
def test_label_bits_come_out_as_they_went_in(preset):
    """An instance target's labels are bits (1 body, 2 border, 4 contact): a mask, resampled
    nearest (the scale preset's crop resizes it), never blended into values it did not hold."""
    transform = A.from_dict(build_aug_transform(preset, 32))
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)
    held = np.array([0, 1, 3, 5, 7, 255], dtype=np.uint8)
    mask = rng.choice(held, (48, 48)).astype(np.uint8)
    for seed in range(8):
        transform.set_random_state(np.random.default_rng(seed), random.Random(seed))
        out = transform(image=image, mask=mask)["mask"]
        assert set(np.unique(out)) <= set(held.tolist())
