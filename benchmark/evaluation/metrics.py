"""The competition metric: micro Jaccard, from pixel counts summed over everything scored.

The Open Cities score is the Jaccard index of the building class over all test pixels at once
(``sum TP / sum (TP + FP + FN)``), not a mean of per-image scores: a big image weighs more than
a small one. So we keep raw counts per scene and only divide at the end, per scene, per city
and overall. Counting a histogram of quantized probabilities per class gives the counts at
every threshold from a single pass over the rasters.
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import rasterio
from affine import Affine
from rasterio.windows import Window

from benchmark.data.constants import DEFAULT_THRESHOLD
from benchmark.data.imagery import open_scene_checked, read_valid_mask, window_of_window
from benchmark.data.windows import plan_windows
from benchmark.errors import InputError
from benchmark.evaluation.counts import DetectionCounts, ratio
from benchmark.networks.targets import check_probability_bands

WindowRasterizer = Callable[[Affine, tuple[int, int]], np.ndarray]


@dataclass(frozen=True)
class ConfusionCounts(DetectionCounts):
    """Pixel counts for the building class: with true negatives, and the Jaccard index."""

    tn: int = 0

    SCORES: ClassVar[tuple[str, ...]] = ("jaccard", *DetectionCounts.SCORES)

    @property
    def jaccard(self) -> float:
        """Intersection over union of predicted and true buildings."""
        return ratio(self.tp, self.tp + self.fp + self.fn)


def count_confusion(
    pred: np.ndarray, truth: np.ndarray, valid: np.ndarray | None = None
) -> ConfusionCounts:
    """Counts of boolean (0/1) ``pred`` vs ``truth`` over the ``valid`` pixels (all if None)."""
    if valid is not None:
        pred, truth = pred[valid], truth[valid]
    pred, truth = pred.astype(bool), truth.astype(bool)
    tp = int(np.count_nonzero(pred & truth))
    fp = int(np.count_nonzero(pred & ~truth))
    fn = int(np.count_nonzero(~pred & truth))
    return ConfusionCounts(tp, fp, fn, int(pred.size) - tp - fp - fn)


def counts_from_histograms(
    pos: np.ndarray, neg: np.ndarray, thresholds: Iterable[float]
) -> dict[float, ConfusionCounts]:
    """Counts at each threshold from 256-bin histograms of uint8 probabilities.

    ``pos[q]`` / ``neg[q]``: pixels with probability value q that are / are not buildings. A
    pixel is predicted a building when q > 255 * threshold (as in ``probability_to_mask``).
    """
    out = {}
    for t in thresholds:
        cut = int(np.floor(255 * t)) + 1  # first q with q > 255 t
        tp, fn = int(pos[cut:].sum()), int(pos[:cut].sum())
        fp, tn = int(neg[cut:].sum()), int(neg[:cut].sum())
        out[t] = ConfusionCounts(tp, fp, fn, tn)
    return out


def scene_histograms(
    prob_uri: str,
    image_uri: str,
    rasterize_window: WindowRasterizer,
    block_size: int = 2048,
    window: Window | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """256-bin histograms of one scene's uint8 probabilities on its buildings and elsewhere.

    Read block by block. ``pos[q]`` / ``neg[q]``: valid pixels with probability value q that
    are / are not buildings (``counts_from_histograms`` turns them into counts at any threshold;
    their sum, how often each value was predicted, needs no label).

    Args:
        prob_uri: uint8 probability raster on the scene's grid (from ``predict``); band 1,
            P(building) (an instance model's body), is scored.
        image_uri: the scene, for its valid-pixel mask (alpha / nodata).
        rasterize_window: ``(transform, (h, w)) -> uint8 0/1`` true buildings.
        block_size: block side; bounds memory.
        window: the part of ``image_uri`` that ``prob_uri`` covers (None: all of it), e.g. a
            window resampled to a GSD for the model, scored here at the scene's resolution.
    """
    pos = np.zeros(256, dtype=np.int64)
    neg = np.zeros(256, dtype=np.int64)
    with rasterio.open(prob_uri) as prob_src, open_scene_checked(image_uri) as img_src:
        check_probability_bands(prob_src.count, prob_uri)
        if prob_src.dtypes[0] != "uint8":
            raise InputError(
                f"{prob_uri}: {prob_src.dtypes[0]} pixels; expected uint8 probabilities x 255"
            )
        region = window or Window(0, 0, img_src.width, img_src.height)
        width, height = int(region.width), int(region.height)
        transform = img_src.window_transform(region)
        if prob_src.shape != (height, width) or not prob_src.transform.almost_equals(
            transform, precision=1e-9
        ):
            where = image_uri if window is None else f"{image_uri} {window}"
            raise InputError(
                f"{prob_uri}: not on the grid of {where} ({prob_src.width}x"
                f"{prob_src.height} px vs {width}x{height}, or another transform)"
            )
        for block in plan_windows(width, height, block_size):
            prob = prob_src.read(1, window=block)
            in_image = window_of_window(region, block)
            valid = read_valid_mask(img_src, in_image)
            truth = rasterize_window(img_src.window_transform(in_image), prob.shape).astype(bool)
            pos += np.bincount(prob[valid & truth], minlength=256)
            neg += np.bincount(prob[valid & ~truth], minlength=256)
    return pos, neg


def evaluate_scene(
    prob_uri: str,
    image_uri: str,
    rasterize_window: WindowRasterizer,
    thresholds: Iterable[float] = (DEFAULT_THRESHOLD,),
    block_size: int = 2048,
    window: Window | None = None,
) -> dict[float, ConfusionCounts]:
    """Counts at each of ``thresholds`` for one scene (arguments as ``scene_histograms``)."""
    pos, neg = scene_histograms(prob_uri, image_uri, rasterize_window, block_size, window)
    return counts_from_histograms(pos, neg, list(thresholds))


def build_eval_report(per_scene: Mapping[str, ConfusionCounts]) -> dict:
    """eval.json's metrics: overall (micro), per scene and per city (``area`` of ``area/id``).

    ``mean_scene_jaccard`` (the macro average) is there to show how far it is from the score
    the competition uses; it weighs a small scene as much as a large one.
    """
    per_city: dict[str, ConfusionCounts] = {}
    for key, counts in per_scene.items():
        city = key.split("/")[0]
        per_city[city] = per_city.get(city, ConfusionCounts()) + counts
    overall = sum(per_scene.values(), ConfusionCounts())
    scene_jaccards = [c.jaccard for c in per_scene.values()]
    return {
        "metric": "micro Jaccard of the building class over all valid pixels",
        "overall": overall.to_dict(),
        "mean_scene_jaccard": float(np.mean(scene_jaccards)) if scene_jaccards else None,
        "per_city": {k: v.to_dict() for k, v in sorted(per_city.items())},
        "per_scene": {k: v.to_dict() for k, v in sorted(per_scene.items())},
    }
