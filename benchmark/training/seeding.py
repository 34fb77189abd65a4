"""Seeds for Raster Vision's chip and train, so that a run can be repeated and resumed.

RV samples random chip windows with Python's ``random``, initializes weights and shuffles
batches with torch's generator (which also seeds the DataLoader workers) and seeds none of
them. The augmentation draws from torch's seed of its process
(:class:`benchmark.training.augmentation.ProcessSeededTransform`).
"""

import random

import numpy as np
import torch


def seed_random_generators(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators with ``seed``."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one training epoch: its batch order and augmentation depend on nothing else.

    An epoch that drew from generators carried over from the epochs before would draw
    differently after a restart (a new process starts them afresh): with a seed of its own,
    epoch 5 draws the same batches whether it follows epoch 4 or a spot interruption.
    """
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])
