"""The decision threshold at which the scenes scored hold the training data's share of buildings.

On a scene it was not trained on, the demo's model is unsure rather than blind: precision
0.86-0.92 but recall 0.47-0.57 at 0.5 on the validation scene, the buildings it misses predicted
between the background's peak (near 0.2) and 0.5, at levels that move with the seed. No
threshold read off the training chips finds them (the model is sure there:
``training_threshold``), nor one read off the shape of the validation probabilities alone (the
triangle method put it on the background's peak for one seed in three). This one needs the share
of building pixels in the training chips' labels, and the validation scenes' predicted
probabilities, not their labels: the threshold is the one at which that share of validation
pixels is predicted a building.

It assumes the scenes scored are about as built-up as the training ones, as the competition's
test chips are (the same cities). On the Kampala sample, where they are, it lifted every seed's
validation Jaccard (docs/results.md). For imagery far denser or sparser than the training data,
keep a fixed threshold.
"""

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from tqdm import tqdm

from benchmark.data.constants import BUILDING, DEFAULT_THRESHOLD, NO_BUILDING
from benchmark.errors import InputError
from benchmark.evaluation.training_chips import training_chips

log = logging.getLogger(__name__)

LEVELS = 256  # uint8 probabilities, q = round(255 p)


@dataclass(frozen=True)
class TrainingShare:
    """The share of building pixels in the training chips' labels, and how many chips."""

    share: float
    chips: int


@dataclass(frozen=True)
class ShareThreshold:
    """The threshold chosen, the share it was chosen for, and the share it predicts."""

    threshold: float
    training_share: float  # building pixels in the training chips' labels
    predicted_share: float  # validation pixels predicted a building at the threshold
    chips: int

    def to_json(self) -> dict:
        """As ``eval.json`` keeps it."""
        return asdict(self)


def training_building_share(chip_zip_uris: Sequence[str], tmp_dir: str) -> TrainingShare:
    """The share of building pixels in the training chips' labels (read without the images).

    Args:
        chip_zip_uris: Raster Vision's chip zips (local or s3://); their ``train`` chips count.
        tmp_dir: where zips on S3 are downloaded.

    Ignored pixels (no imagery) count neither way.
    """
    building = labelled = chips = 0
    for _, labels in tqdm(
        training_chips(chip_zip_uris, tmp_dir, images=False), desc="Training labels", unit="chip"
    ):
        building += int(np.count_nonzero(labels == BUILDING))
        labelled += int(np.count_nonzero((labels == BUILDING) | (labels == NO_BUILDING)))
        chips += 1
    if labelled == 0:
        where = ", ".join(chip_zip_uris) or "no chip zip"
        raise InputError(f"threshold share: no labelled training pixel ({where}); run chip first")
    return TrainingShare(building / labelled, chips)


def share_threshold(predicted: np.ndarray, share: float) -> tuple[float, float]:
    """The threshold at which the share of pixels predicted a building comes closest to ``share``.

    Args:
        predicted: pixels per uint8 probability level (0..255), of every pixel scored.
        share: the building share to match, in [0, 1].

    Returns:
        The threshold, between two levels: the levels above it are buildings (``q > 255 t``,
        as ``probability_to_mask`` decides); and the share of pixels it predicts a building.
        (0.5, 0.0) when no pixel was predicted.
    """
    counts = np.asarray(predicted, dtype=np.float64)
    if counts.shape != (LEVELS,):
        raise ValueError(f"expected pixels per level of {LEVELS} levels, got {counts.shape}")
    total = counts.sum()
    if total == 0:
        return DEFAULT_THRESHOLD, 0.0
    # above[k]: the share of pixels at levels above k, i.e. predicted a building at (k + 0.5) / 255.
    above = (total - np.cumsum(counts)) / total
    level = int(np.argmin(np.abs(above - share)))
    return (level + 0.5) / 255, float(above[level])


def choose_share_threshold(predicted: np.ndarray, training: TrainingShare) -> ShareThreshold:
    """The threshold that predicts ``training``'s building share on the scenes scored.

    Args:
        predicted: pixels per uint8 probability level of the validation scenes (no label).
        training: the training chips' building share.
    """
    threshold, predicted_share = share_threshold(predicted, training.share)
    log.info(
        "Threshold %.3f predicts %.1f%% of the validation pixels buildings "
        "(%.1f%% of the labelled pixels of %d training chips)",
        threshold, 100 * predicted_share, 100 * training.share, training.chips,
    )  # fmt: skip
    return ShareThreshold(threshold, training.share, predicted_share, training.chips)
