"""One-to-one matching of footprints by intersection over union (SpaceNet's rule).

Two footprints match when their IoU is at least :data:`MIN_IOU`; each matches at most one
other. With IoU >= 0.5 a footprint can overlap that much with at most one of a set of disjoint
buildings, so greedy matching by IoU, highest first, is the optimal one-to-one matching. Used
by the per-building scores (:mod:`benchmark.evaluation.buildings`) and by conflation with
OpenStreetMap (:mod:`benchmark.footprints.conflation`).
"""

from collections.abc import Sequence

import numpy as np
import shapely

MIN_IOU = 0.5


def intersecting_ious(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every intersecting pair ``(index in a, index in b)`` and its IoU.

    Candidate pairs come from an R-tree, so the cost grows with the overlapping pairs, not with
    the product of the counts.
    """
    a_idx, b_idx = shapely.STRtree(b).query(a, predicate="intersects")
    inter = shapely.area(shapely.intersection(a[a_idx], b[b_idx]))
    union = shapely.area(a[a_idx]) + shapely.area(b[b_idx]) - inter
    return a_idx, b_idx, np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def match_buildings(
    predicted: Sequence[shapely.Geometry],
    truth: Sequence[shapely.Geometry],
    min_iou: float = MIN_IOU,
) -> list[tuple[int, int, float]]:
    """One-to-one matches ``(predicted index, true index, IoU)`` with IoU >= ``min_iou``.

    Both in one CRS (any: IoU has no unit); the pairs are :func:`intersecting_ious`'.
    """
    if not len(predicted) or not len(truth):
        return []
    p_idx, t_idx, iou = intersecting_ious(
        np.asarray(predicted, dtype=object), np.asarray(truth, dtype=object)
    )
    matches = []
    used_p: set[int] = set()
    used_t: set[int] = set()
    for k in np.argsort(-iou, kind="stable"):
        if iou[k] < min_iou:
            break
        p, t = int(p_idx[k]), int(t_idx[k])
        if p not in used_p and t not in used_t:
            used_p.add(p)
            used_t.add(t)
            matches.append((p, t, float(iou[k])))
    return matches
