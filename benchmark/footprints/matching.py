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


def match_buildings(
    predicted: Sequence[shapely.Geometry],
    truth: Sequence[shapely.Geometry],
    min_iou: float = MIN_IOU,
) -> list[tuple[int, int, float]]:
    """One-to-one matches ``(predicted index, true index, IoU)`` with IoU >= ``min_iou``.

    Both in one CRS (any: IoU has no unit). Candidate pairs come from an R-tree, so the cost
    grows with the overlapping pairs, not with the product of the counts.
    """
    if not len(predicted) or not len(truth):
        return []
    pred = np.asarray(predicted, dtype=object)
    true = np.asarray(truth, dtype=object)
    p_idx, t_idx = shapely.STRtree(true).query(pred, predicate="intersects")
    inter = shapely.area(shapely.intersection(pred[p_idx], true[t_idx]))
    union = shapely.area(pred[p_idx]) + shapely.area(true[t_idx]) - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
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
