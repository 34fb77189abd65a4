"""Pseudo-labels: a trained model's confident answers on unlabeled imagery, as training chips.

The winning Open Cities solutions trained again on their own predictions of the unlabeled test
imagery: the model sees more of the buildings it will be asked about, labelled as well as it
can label them. Only what it is sure of is kept. A pixel is a building where the probability
is at least ``threshold + margin``, background where it is at most ``threshold - margin``;
in between, and outside the imagery, it is :data:`~benchmark.data.constants.IGNORE_LABEL`,
which every loss leaves out (:mod:`benchmark.training.losses`): the model is not taught its
own doubts.

Chips are cut at the model's GSD on a grid of ``chip_sz`` model pixels (whole image pixels
each; the last row and column of chips aligned with the image's edge, so each is whole), read
through GDAL's resampling a chip at a time (memory bounded by a chip at any image size), and
written in Raster Vision's chip layout (``train/img/{name}-{i}.png``,
``train/labels/{name}-{i}.png``) in one zip, which RV's learner reads beside the labelled chips.
A chip with less than ``min_known`` of its pixels confident teaches little and is left out.
"""

import logging
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from os.path import join

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window
from rastervision.pipeline.file_system import zipdir
from rastervision.pytorch_backend.pytorch_learner_backend import write_chip

from benchmark.data.constants import BUILDING, IGNORE_LABEL, NO_BUILDING
from benchmark.data.gsd import read_bands, read_mask
from benchmark.data.imagery import open_scene_checked
from benchmark.data.layout import TRAIN_CHIP_IMAGES, TRAIN_CHIP_LABELS
from benchmark.data.uris import atomic_output
from benchmark.data.windows import window_starts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UnlabeledImage:
    """An image to pseudo-label, and the model's probabilities of it."""

    name: str  # chips are {name}-{i}.png
    image_uri: str
    probability_uri: str  # uint8 round(255 * P), on the image's own grid
    scale: float  # model pixels per image pixel (the image's GSD / the model's)


@dataclass
class PseudoLabelCounts:
    """What a set of pseudo-labelled chips holds (logged, and kept in the round's record)."""

    images: int = 0
    chips: int = 0
    chips_left_out: int = 0  # fewer confident pixels than min_known
    building_px: int = 0
    background_px: int = 0
    ignored_px: int = 0

    def add(self, labels: np.ndarray) -> None:
        """Count one written chip's labels."""
        self.chips += 1
        self.building_px += int((labels == BUILDING).sum())
        self.background_px += int((labels == NO_BUILDING).sum())
        self.ignored_px += int((labels == IGNORE_LABEL).sum())

    def to_json(self) -> dict[str, int]:
        """The counts, for JSON."""
        return asdict(self)


def pseudo_labels(
    probability: np.ndarray, valid: np.ndarray, threshold: float, margin: float
) -> np.ndarray:
    """uint8 labels from uint8 probabilities: confident pixels 0/1, the rest IGNORE_LABEL.

    Args:
        probability: ``round(255 * P)`` of the building class.
        valid: True where there is imagery.
        threshold: the model's decision threshold.
        margin: how far from the threshold a probability must be to be kept.
    """
    p = probability.astype(np.float32) / 255
    labels = np.full(probability.shape, IGNORE_LABEL, dtype=np.uint8)
    labels[p >= threshold + margin] = BUILDING
    labels[p <= threshold - margin] = NO_BUILDING
    labels[~valid] = IGNORE_LABEL
    return labels


def chip_windows(width: int, height: int, side: int) -> Iterator[Window]:
    """Windows of ``side`` image pixels covering a ``width`` x ``height`` image.

    The last row and column are flush with its edge (:func:`benchmark.data.windows.window_starts`).
    """
    for row in window_starts(height, side):
        for col in window_starts(width, side):
            yield Window(col, row, min(side, width), min(side, height))


def _image_chips(
    image: UnlabeledImage, chip_sz: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(uint8 HWC RGB, uint8 probabilities, valid mask) of each chip, at the model's GSD."""
    side = max(1, round(chip_sz / image.scale))  # whole pixels: off the GSD by < half a pixel
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # test chips have no CRS
        with (
            open_scene_checked(image.image_uri, require_georef=False) as src,
            rasterio.open(image.probability_uri) as prob,
        ):
            for window in chip_windows(src.width, src.height, side):
                shape = (max(1, round(window.height * image.scale)),
                         max(1, round(window.width * image.scale)))  # fmt: skip
                rgb = read_bands(src, window, shape)[:3].transpose(1, 2, 0)
                valid = read_mask(src, window, shape) == 255
                p = prob.read(1, window=window, out_shape=shape, resampling=Resampling.bilinear)
                yield rgb, p, valid


def write_pseudo_chips(
    images: Sequence[UnlabeledImage],
    zip_uri: str,
    chip_sz: int,
    threshold: float,
    margin: float,
    min_known: float,
    tmp_dir: str,
) -> PseudoLabelCounts:
    """Write the pseudo-labelled chips of ``images`` to ``zip_uri`` (atomically).

    Args:
        images: the unlabeled images and their probabilities.
        zip_uri: the chip zip (local or s3://).
        chip_sz: chip side in model pixels.
        threshold: the model's decision threshold.
        margin: see :func:`pseudo_labels`.
        min_known: the least fraction of confident pixels a chip needs to be kept.
        tmp_dir: where the chips are gathered before zipping.
    """
    counts = PseudoLabelCounts()
    with tempfile.TemporaryDirectory(dir=tmp_dir) as work:
        img_dir, label_dir = join(work, TRAIN_CHIP_IMAGES), join(work, TRAIN_CHIP_LABELS)
        os.makedirs(img_dir)
        os.makedirs(label_dir)
        for image in images:
            counts.images += 1
            for rgb, probability, valid in _image_chips(image, chip_sz):
                labels = pseudo_labels(probability, valid, threshold, margin)
                if (labels != IGNORE_LABEL).mean() < min_known:
                    counts.chips_left_out += 1
                    continue
                name = f"{image.name}-{counts.chips}.png"
                write_chip(rgb, join(img_dir, name))
                write_chip(labels, join(label_dir, name))
                counts.add(labels)
        log.info(
            "Pseudo-labels: %d chips from %d images (%d left out: under %.0f%% confident); "
            "pixels %d building, %d background, %d ignored",
            counts.chips, counts.images, counts.chips_left_out, 100 * min_known,
            counts.building_px, counts.background_px, counts.ignored_px,
        )  # fmt: skip
        with atomic_output(zip_uri) as partial:
            zipdir(work, partial)
    return counts
