"""Right-angle outlines for rectilinear roofs (``--regularize``).

Traced outlines follow the pixels and the model's blur: wobbly sides, cut corners. Most roofs
are made of right angles, so the outline is snapped to its dominant direction: the mean of the
edge directions modulo 90 degrees, weighted by edge length (directions are averaged as angles
times four, so 0 and 90 degrees agree). In that frame every edge is horizontal or vertical
(whichever it is closer to); runs of edges of one kind become one side at their length-weighted
mean position, sides shorter than ``min_side`` are folded into their neighbours, and corners
are where consecutive sides meet. An outline that comes out degenerate or changes too much
(intersection over union with the input under :data:`MIN_IOU`) falls back to the minimum
rotated rectangle if that fits, else stays as it was: squaring must never lose a building.
Holes are squared in the same frame and dropped if they cannot be.
"""

from itertools import pairwise

import numpy as np
import shapely

# Sides shorter than this (metres) are folded into their neighbours: wall offsets under a
# metre are below what the models see at 30 cm, and the traced outline's wobble makes many.
MIN_SIDE = 1.0
# How close a squared outline must stay to the traced one (IoU) to replace it: a disc squared
# keeps ~0.82, and round huts (rondavels) must stay round.
MIN_IOU = 0.85


def dominant_angle(coords: np.ndarray) -> float:
    """The ring's main direction in radians, in [-pi/4, pi/4): edges weighted by length."""
    edges = np.diff(coords, axis=0)
    lengths = np.hypot(edges[:, 0], edges[:, 1])
    angles = np.arctan2(edges[:, 1], edges[:, 0])
    total = np.sum(lengths * np.exp(4j * angles))
    return float(np.angle(total) / 4)


def _rotate(coords: np.ndarray, angle: float) -> np.ndarray:
    cos, sin = np.cos(angle), np.sin(angle)
    return coords @ np.array([[cos, sin], [-sin, cos]])


def _runs(coords: np.ndarray) -> list[list[float]]:
    """[is_horizontal, position, length] of each run of same-kind edges of a closed ring."""
    runs: list[list[float]] = []
    for (x0, y0), (x1, y1) in pairwise(coords):
        length = float(np.hypot(x1 - x0, y1 - y0))
        if length == 0:
            continue
        horizontal = abs(x1 - x0) >= abs(y1 - y0)
        position = (y0 + y1) / 2 if horizontal else (x0 + x1) / 2
        runs.append([horizontal, position * length, length])
        if len(runs) > 1 and runs[-2][0] == horizontal:
            _, weighted, more = runs.pop()
            runs[-1][1] += weighted
            runs[-1][2] += more
    if len(runs) > 1 and runs[0][0] == runs[-1][0]:
        _, weighted, more = runs.pop()
        runs[0][1] += weighted
        runs[0][2] += more
    return [[h, w / n, n] for h, w, n in runs]


def _fold_short_sides(runs: list[list[float]], min_side: float) -> list[list[float]]:
    """Remove sides shorter than ``min_side`` (shortest first); their neighbours merge."""
    while len(runs) > 4:
        i = min(range(len(runs)), key=lambda k: runs[k][2])
        if runs[i][2] >= min_side:
            break
        start = (i - 1) % len(runs)
        before, _, after, *rest = runs[start:] + runs[:start]  # the short side in the middle
        length = before[2] + after[2]
        merged = [before[0], (before[1] * before[2] + after[1] * after[2]) / length, length]
        runs = [merged, *rest]
    return runs


def square_ring(coords: np.ndarray, angle: float, min_side: float) -> np.ndarray | None:
    """The ring with right angles only, in the frame turned by ``angle``; None if degenerate."""
    runs = _fold_short_sides(_runs(_rotate(coords, -angle)), min_side)
    if len(runs) < 4 or len(runs) % 2:
        return None
    corners = []
    for (h0, p0, _), (_, p1, _) in zip(runs, runs[1:] + runs[:1], strict=True):
        corners.append((p1, p0) if h0 else (p0, p1))
    corners.append(corners[0])
    return _rotate(np.array(corners), angle)


def _iou(a: shapely.Geometry, b: shapely.Geometry) -> float:
    union = shapely.union(a, b).area
    return shapely.intersection(a, b).area / union if union else 0.0


def regularize(polygon: shapely.Polygon, min_side: float = MIN_SIDE) -> shapely.Polygon:
    """``polygon`` (metric coordinates) with right-angle outlines, or as it was (see above).

    Args:
        polygon: a building outline.
        min_side: sides shorter than this (metres) are folded into their neighbours.
    """
    if not polygon.is_valid or polygon.is_empty:
        return polygon
    origin = np.array(polygon.centroid.coords[0])
    shell = np.asarray(polygon.exterior.coords) - origin
    angle = dominant_angle(shell)
    squared = square_ring(shell, angle, min_side)
    if squared is not None:
        holes = [
            square_ring(np.asarray(r.coords) - origin, angle, min_side) for r in polygon.interiors
        ]
        candidate = shapely.Polygon(squared + origin, [h + origin for h in holes if h is not None])
        if not candidate.is_valid:
            candidate = shapely.Polygon(squared + origin)
        if candidate.is_valid and _iou(candidate, polygon) >= MIN_IOU:
            return candidate
    rectangle = shapely.minimum_rotated_rectangle(polygon)
    if isinstance(rectangle, shapely.Polygon) and _iou(rectangle, polygon) >= MIN_IOU:
        return rectangle
    return polygon
