"""A false-positive filter for traced buildings: a small gradient-boosted classifier (cannab's).

Measured by :mod:`tools.false_positive_measure` and not kept: fit on the scene its model trained
on, it learns that scene's over-confident buildings and lowered the validation scene's
per-building F1 for every bundle measured (docs/results.md), so the package does not ship it.

The SpaceNet 4 winner dropped false positives with a gradient-boosted classifier over each
predicted building's shape and probability features; here the same with scikit-learn's
:class:`~sklearn.ensemble.GradientBoostingClassifier` over what every written footprint has
(its outline, ``area_m2`` and ``confidence``, the mean probability), so it needs nothing beyond
what the tracer already gives. It is fit on a scene's
predicted buildings against that scene's labels: a prediction is a true building when it matches
one at IoU >= 0.5 (eval's rule, :func:`~benchmark.footprints.matching.match_buildings`), and
kept at prediction time when the classifier's P(true) is at least ``min_probability``, the cut
that gives the best per-building F1 on the fitting scene's cross-validated probabilities (a cut
of 0 keeps everything: on that scene the filter is never worse than none).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.model_selection import cross_val_predict

from benchmark.errors import InputError
from benchmark.footprints.matching import MIN_IOU, match_buildings

FOLDS = 5  # cross-validation folds choosing the cut
FEATURES = (
    "log_area_m2",
    "perimeter_per_sqrt_area",  # 4 for a square, more for ragged or thin outlines
    "solidity",  # area / convex hull's: low for L-shapes and bites
    "rectangularity",  # area / minimum rotated rectangle's
    "elongation",  # the minimum rotated rectangle's long side / short side
    "confidence",  # mean P(building) over the building's pixels
)


def features(polygon: shapely.Geometry, area_m2: float, confidence: float) -> list[float]:
    """:data:`FEATURES` of one building (the ``area_m2`` and ``confidence`` footprints carry).

    The shape features are ratios, the same in any projected CRS, so ``polygon`` is taken in
    the one it comes in.
    """
    area = max(polygon.area, 1e-12)
    rectangle = shapely.minimum_rotated_rectangle(polygon)
    x, y = rectangle.exterior.coords.xy if rectangle.geom_type == "Polygon" else ([0], [0])
    sides = [math.dist((x[i], y[i]), (x[i + 1], y[i + 1])) for i in range(min(2, len(x) - 1))]
    long_side, short_side = (max(sides), min(sides)) if len(sides) == 2 else (1.0, 1.0)
    return [
        math.log(max(area_m2, 1e-6)),
        polygon.length / math.sqrt(area),
        area / max(polygon.convex_hull.area, 1e-12),
        area / max(rectangle.area, 1e-12),
        long_side / max(short_side, 1e-12),
        confidence,
    ]


@dataclass
class FalsePositiveFilter:
    """A fitted classifier and the P(true building) a footprint needs to be kept."""

    classifier: GradientBoostingClassifier
    min_probability: float = 0.5

    def keep(self, rows: np.ndarray) -> np.ndarray:
        """Which buildings (rows of :func:`features`) to keep."""
        if not len(rows):
            return np.zeros(0, dtype=bool)
        return self.classifier.predict_proba(rows)[:, 1] >= self.min_probability


def true_positive_labels(
    predicted: Sequence[shapely.Geometry], truth: Sequence[shapely.Geometry]
) -> np.ndarray:
    """1 for each prediction matching a true building at IoU >= 0.5 (eval's rule), else 0."""
    labels = np.zeros(len(predicted), dtype=int)
    for p, _, _ in match_buildings(predicted, truth, MIN_IOU):
        labels[p] = 1
    return labels


def best_cut(probability: np.ndarray, labels: np.ndarray, missed: int) -> float:
    """The P(true) cut with the best F1, ``missed`` true buildings never predicted counted."""
    best, best_f1 = 0.0, -1.0
    for cut in np.unique(np.concatenate([[0.0], probability])):
        kept = probability >= cut
        tp = int(labels[kept].sum())
        fp = int(kept.sum()) - tp
        fn = int(labels.sum()) - tp + missed
        f1 = 2 * tp / max(2 * tp + fp + fn, 1)
        if f1 > best_f1:
            best, best_f1 = float(cut), f1
    return best


def fit_filter(
    rows: np.ndarray, labels: np.ndarray, missed: int, seed: int = 0
) -> FalsePositiveFilter:
    """Fit on predicted buildings' :func:`features` and their :func:`true_positive_labels`.

    Small and shallow (50 trees of depth 2): a scene gives tens to hundreds of buildings. The
    cut is :func:`best_cut` of 5-fold cross-validated probabilities; ``missed``: the scene's
    true buildings no prediction matched.

    Raises:
        InputError: the buildings are all true or all false, or too few: nothing to learn.
    """
    if len(set(labels.tolist())) < 2 or min(np.bincount(labels)) < FOLDS:
        raise InputError(
            f"cannot fit a false-positive filter on {len(labels)} buildings, "
            f"{int(labels.sum())} of them true: it needs {FOLDS} or more of each"
        )
    classifier = GradientBoostingClassifier(n_estimators=50, max_depth=2, random_state=seed)
    held_out = cross_val_predict(classifier, rows, labels, cv=FOLDS, method="predict_proba")
    classifier.fit(rows, labels)
    return FalsePositiveFilter(classifier, best_cut(held_out[:, 1], labels, missed))
