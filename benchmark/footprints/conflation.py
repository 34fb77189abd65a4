"""Footprints against the buildings OpenStreetMap has: what is new, what is mapped already.

Each footprint gets a ``status``:

- ``mapped``: one existing building matches it at IoU >= ``match_iou`` (one-to-one, SpaceNet's
  rule: :func:`~benchmark.footprints.matching.match_buildings`); its ``osm_id`` is kept;
- ``changed``: it overlaps existing buildings but matches none: the outline differs, or the
  model merged two mapped buildings or split one;
- ``new``: no existing building overlaps it: what is missing from the map.

A footprint and an existing building *overlap* when their intersection is at least
``min_overlap`` of the smaller of the two: traced outlines spill a pixel or two over their
neighbours, which must not make a new house next to a mapped one ``changed``; a small mapped
shed inside a footprint merged with it still counts. Each existing building that intersects
the image's bounding box is ``seen`` (it matches or overlaps a footprint) or ``not_seen``
(the model found nothing there: demolished, hidden by trees, or missed). Areas and IoU are
computed in metres true near the image (:func:`~benchmark.footprints.ground.measuring_crs`).
"""

from dataclasses import dataclass

import numpy as np
import shapely
from pyproj import CRS, Transformer

from benchmark.footprints.ground import WGS84, utm_crs
from benchmark.footprints.matching import MIN_IOU, match_buildings
from benchmark.footprints.osm_input import ExistingBuildings

NEW, MAPPED, CHANGED = "new", "mapped", "changed"
SEEN, NOT_SEEN = "seen", "not_seen"
DEFAULT_MIN_OVERLAP = 0.2


@dataclass(frozen=True)
class ConflationRules:
    """When a footprint is an existing building, overlaps one, or is new.

    Attributes:
        match_iou: IoU at which a footprint and an existing building are the same building.
        min_overlap: intersection, as a fraction of the smaller of the two areas, from which a
            footprint and an existing building overlap (below it: neighbours touching).
    """

    match_iou: float = MIN_IOU
    min_overlap: float = DEFAULT_MIN_OVERLAP


@dataclass(frozen=True)
class Conflation:
    """What conflation found: per footprint and per existing building.

    ``status``, ``osm_id`` ("" unless mapped) and the best ``iou`` with any existing building,
    per footprint; ``existing_status`` per existing building (all of them, in their order).
    """

    status: list[str]
    osm_id: list[str]
    iou: list[float]
    existing_status: list[str]


def to_metric(lonlat: list[shapely.Geometry]) -> tuple[np.ndarray, CRS]:
    """Geometries in the local UTM zone of their centre (metres true to well under 1 %)."""
    geoms = np.asarray(lonlat, dtype=object)
    if not len(geoms):
        return geoms, utm_crs(0.0, 0.0)
    west, south, east, north = shapely.total_bounds(geoms)
    crs = utm_crs((west + east) / 2, (south + north) / 2)
    transformer = Transformer.from_crs(WGS84, crs, always_xy=True)

    def project(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))

    return shapely.transform(geoms, project), crs


def conflate(
    footprints: list[shapely.Geometry],
    existing: ExistingBuildings,
    rules: ConflationRules = ConflationRules(),
) -> Conflation:
    """The statuses of ``footprints`` and ``existing`` (both lon/lat) under ``rules``."""
    metric, _ = to_metric([*footprints, *existing.polygons])
    found, known = metric[: len(footprints)], metric[len(footprints) :]
    status = [NEW] * len(found)
    osm_id = [""] * len(found)
    best_iou = [0.0] * len(found)
    seen = np.zeros(len(known), bool)
    if len(found) and len(known):
        f_idx, k_idx = shapely.STRtree(known).query(found, predicate="intersects")
        inter = shapely.area(shapely.intersection(found[f_idx], known[k_idx]))
        f_area, k_area = shapely.area(found[f_idx]), shapely.area(known[k_idx])
        smaller = np.minimum(f_area, k_area)
        overlap = inter >= rules.min_overlap * np.where(smaller > 0, smaller, np.inf)
        iou = inter / np.maximum(f_area + k_area - inter, 1e-12)
        for f, k, ok, value in zip(f_idx, k_idx, overlap, iou, strict=True):
            best_iou[f] = max(best_iou[f], float(value))
            if ok:
                status[f] = CHANGED
                seen[k] = True
        for f, k, _ in match_buildings(list(found), list(known), rules.match_iou):
            status[f] = MAPPED
            osm_id[f] = existing.osm_ids[k]
            seen[k] = True
    return Conflation(
        status=status,
        osm_id=osm_id,
        iou=[round(v, 3) for v in best_iou],
        existing_status=[SEEN if s else NOT_SEEN for s in seen],
    )
