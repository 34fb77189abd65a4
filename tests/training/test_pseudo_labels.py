"""Pseudo-labels: confident pixels only, chips at the model's GSD in Raster Vision's layout."""

import zipfile
from io import BytesIO

import numpy as np
import pytest
from matplotlib.image import imread

from benchmark.data.constants import BUILDING, IGNORE_LABEL, NO_BUILDING
from benchmark.training.pseudo_labels import (
    UnlabeledImage,
    chip_windows,
    pseudo_labels,
    write_pseudo_chips,
)
from tests.fixtures.rasters import rgba, write_raster


def test_only_confident_pixels_inside_the_imagery_are_labelled():
    probability = np.array([[0, 51, 52, 128], [203, 204, 255, 255]], dtype=np.uint8)
    valid = np.array([[True] * 4, [True, True, True, False]])
    labels = pseudo_labels(probability, valid, threshold=0.5, margin=0.3)
    ignore, building, background = IGNORE_LABEL, BUILDING, NO_BUILDING
    assert labels.tolist() == [
        [background, background, ignore, ignore],
        [ignore, building, building, ignore],
    ]


@pytest.mark.parametrize(("width", "height", "side"), [(100, 70, 32), (64, 64, 32), (20, 90, 33)])
def test_chip_windows_cover_the_image_once_whole(width, height, side):
    covered = np.zeros((height, width), dtype=int)
    windows = list(chip_windows(width, height, side))
    for w in windows:
        assert w.col_off >= 0 and w.row_off >= 0
        assert w.col_off + w.width <= width and w.row_off + w.height <= height
        assert w.width == min(side, width) and w.height == min(side, height)
        covered[int(w.row_off) : int(np.ceil(w.row_off + w.height)),
                int(w.col_off) : int(np.ceil(w.col_off + w.width))] += 1  # fmt: skip
    assert covered.min() >= 1
    assert len(windows) == int(np.ceil(width / side)) * int(np.ceil(height / side))


def _zip_chips(uri: str) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(uri) as archive:
        return {n: imread(BytesIO(archive.read(n)), format="png") for n in archive.namelist()}


@pytest.mark.parametrize(("min_known", "kept"), [(0.4, True), (0.6, False)])
def test_chips_are_written_at_the_model_gsd_with_their_labels(tmp_path, min_known, kept):
    """A 64 px image at twice the model's GSD is one 128 px chip: its alpha-0 quarter and its
    unsure quarter ignored, the others building and background (but where resampling blurs
    their edges); about half known is enough at ``min_known`` 0.4, not at 0.6."""
    image = write_raster(tmp_path / "img.tif", rgba(64, 64, notch=True), crs=None)
    probability = np.full((1, 64, 64), 255, dtype=np.uint8)  # top right: building
    probability[0, 32:, :32] = 0  # bottom left: background
    probability[0, 32:, 32:] = 128  # bottom right: unsure
    prob_uri = write_raster(tmp_path / "prob.tif", probability, crs=None)
    out = tmp_path / "pseudo-chips.zip"
    counts = write_pseudo_chips(
        [UnlabeledImage("a", image, prob_uri, scale=2.0)],
        str(out), chip_sz=128, threshold=0.5, margin=0.3, min_known=min_known,
        tmp_dir=str(tmp_path),
    )  # fmt: skip
    assert (counts.images, counts.chips, counts.chips_left_out) == (1, int(kept), int(not kept))
    chips = _zip_chips(str(out))
    assert not list(tmp_path.glob(".partial/*"))
    if not kept:
        assert chips == {}
        return
    assert sorted(chips) == ["train/img/a-0.png", "train/labels/a-0.png"]
    assert chips["train/img/a-0.png"].shape == (128, 128, 3)
    labels = np.rint(chips["train/labels/a-0.png"] * 255).astype(int)
    inner = slice(4, 60), slice(68, 124)  # the quarters away from the blurred edges
    quarters = [labels[rows, cols] for rows in inner for cols in inner]
    assert [np.unique(q).tolist() for q in quarters] == [
        [IGNORE_LABEL],
        [BUILDING],
        [NO_BUILDING],
        [IGNORE_LABEL],
    ]
    assert counts.building_px + counts.background_px + counts.ignored_px == 128**2
    assert counts.background_px == pytest.approx(64**2, rel=0.05)
