"""Separate touching buildings in an instance model's bands with a marker watershed.

One probability and a threshold cannot split two touching roofs: their pixels form one
connected blob. An instance model (:mod:`benchmark.networks.targets`) also gives P(border), a
band along each building's outline, and P(contact), the pixels between two buildings. Where
a pixel is surely inside a building and on neither, it seeds that building: the seeds are the
connected components of ``body * (1 - border) * (1 - contact) > seed_threshold``. Each seed
then floods the building mask (``body > threshold``, the rule of
:func:`~benchmark.inference.forward.probability_to_mask`) downhill from the surest body
pixels (over ``-body``), so the line between two buildings falls where the body is least sure,
on their contact. A blob of the mask with no seed (a shed so small its border band covered it)
stays one building. This is the SpaceNet 4 and 6 winners' decoding.

Each blob is flooded on its own, so a blob wholly inside an array is labelled the same
whatever else the array holds: :mod:`benchmark.footprints.vectorize` relies on this to label a
large raster window by window.
"""

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.segmentation import watershed

from benchmark.inference.forward import probability_to_mask

# A seed where the body is more likely than not and neither border nor contact take much of it.
# 0.7 was the first default: on the demo's seed-0 instance model it split roofs into more seeds
# than buildings (F1 0.24 on the validation scene, against 0.38 at 0.5; docs/results.md).
DEFAULT_SEED_THRESHOLD = 0.5
# Context read around each block: a blob of touching buildings no more than this across (25 m at
# 10 cm) is decoded exactly as in one pass over the whole raster.
DEFAULT_HALO = 256


@dataclass(frozen=True)
class InstanceOptions:
    """How an instance model's bands become separate buildings.

    Attributes:
        seed_threshold: a pixel seeds a building when
            ``P(body) * (1 - P(border)) * (1 - P(contact))`` exceeds it: high, so that the
            seeds of two touching buildings never meet.
        halo: pixels read around each block on the sides facing another block. Blobs of
            touching buildings smaller than this come out the same whatever the block size;
            larger ones are decoded from what each block's window sees and joined across
            block edges (:func:`benchmark.footprints.vectorize.vectorize_probabilities`).
    """

    seed_threshold: float = DEFAULT_SEED_THRESHOLD
    halo: int = DEFAULT_HALO

    def __post_init__(self) -> None:
        if not 0 <= self.seed_threshold < 1:
            raise ValueError(f"seed_threshold {self.seed_threshold} must be in [0, 1)")
        if self.halo < 1:
            raise ValueError(f"halo {self.halo} must be at least 1 pixel")


def seed_mask(
    body: np.ndarray, border: np.ndarray, contact: np.ndarray, seed_threshold: float
) -> np.ndarray:
    """Where ``body * (1 - border) * (1 - contact) > seed_threshold``, from uint8 bands.

    Computed in integers (255³ fits in int32): no float copy of a block.
    """
    score = body.astype(np.int32)
    score *= 255 - border.astype(np.int32)
    score *= 255 - contact.astype(np.int32)
    return score > round(seed_threshold * 255**3)


def instance_labels(
    body: np.ndarray,
    border: np.ndarray,
    contact: np.ndarray,
    threshold: float,
    seed_threshold: float = DEFAULT_SEED_THRESHOLD,
) -> np.ndarray:
    """int32 labels (0: no building, 1..n: one building each) of uint8 body, border, contact.

    Every pixel of the mask ``body > threshold`` gets a label; each label is 4-connected.
    Each blob of the mask is flooded on its own, in the box around it: skimage breaks ties
    between seeds by the state of its heap, which holds every blob flooded at once, so only a
    blob alone is labelled the same in every array that holds it whole.

    Args:
        body: P(building) as ``round(255 * P)``, as a binary model's only band.
        border: P(border), the same way.
        contact: P(contact), the same way.
        threshold: a pixel is a building when P(body) > threshold.
        seed_threshold: see :class:`InstanceOptions`.
    """
    mask = probability_to_mask(body, threshold).astype(bool)
    seeds = seed_mask(body, border, contact, seed_threshold)
    blobs, _ = ndimage.label(mask)
    labels = np.zeros(body.shape, np.int32)
    count = 0
    for blob_id, box in enumerate(ndimage.find_objects(blobs), start=1):
        blob = blobs[box] == blob_id
        markers, found = ndimage.label(seeds[box] & blob)
        if found > 1:
            flooded = watershed(255 - body[box], markers, mask=blob, connectivity=1)
            labels[box][blob] = flooded[blob] + count
        else:  # one seed, or none (a shed so small its border band covered it)
            labels[box][blob] = count + 1
        count += max(found, 1)
    return labels
