"""Per-building scores: how many buildings were found, SpaceNet's way.

The competition's micro Jaccard counts pixels, so one huge roof outweighs a street of small
houses, and two houses merged into one blob lose almost nothing. Per-building scores count
buildings: a predicted footprint and a true one match when their intersection over union is at
least :data:`MIN_IOU` (0.5), each building matching at most one other (SpaceNet's rule; with
IoU >= 0.5 a footprint can overlap that much with at most one of a set of disjoint buildings,
so greedy matching by IoU, highest first, is the optimal one-to-one matching). Unmatched
predictions are false positives, unmatched true buildings false negatives. Counts are kept raw
and summed per scene, city and overall (micro), like the pixel counts.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import rasterio
import shapely

from benchmark.evaluation.counts import DetectionCounts
from benchmark.footprints.ground import ground_resolution
from benchmark.footprints.matching import MIN_IOU, match_buildings
from benchmark.footprints.outlines import DEFAULT_MIN_AREA, OutlineOptions, footprints_of_raster
from benchmark.footprints.write import write_footprints


@dataclass(frozen=True)
class BuildingCounts(DetectionCounts):
    """Matched (tp), spurious (fp) and missed (fn) buildings."""


def count_buildings(
    predicted: Sequence[shapely.Geometry],
    truth: Sequence[shapely.Geometry],
    min_iou: float = MIN_IOU,
) -> BuildingCounts:
    """Matched, spurious and missed buildings of one scene (see :func:`match_buildings`)."""
    tp = len(match_buildings(predicted, truth, min_iou))
    return BuildingCounts(tp=tp, fp=len(predicted) - tp, fn=len(truth) - tp)


def truth_in_raster(
    truth: Sequence[shapely.Geometry], src: rasterio.DatasetReader, min_area: float
) -> list[shapely.Geometry]:
    """True buildings (in ``src``'s CRS) clipped to its extent, minus pieces under ``min_area``.

    ``min_area`` (m²) is the size under which footprints are dropped too: the sliver of a
    building mostly outside the scored window is not a building to find in it.
    """
    if not len(truth):
        return []
    gx, gy = ground_resolution(src.crs, src.transform, src.width, src.height)
    m2_per_unit2 = gx * gy / abs(src.transform.a * src.transform.e)
    clipped = shapely.clip_by_rect(np.asarray(truth, dtype=object), *src.bounds)
    keep = shapely.area(clipped) * m2_per_unit2 >= min_area
    return list(clipped[keep & ~shapely.is_empty(clipped)])


def score_scene_buildings(
    prob_uri: str,
    truth: Sequence[shapely.Geometry],
    threshold: float,
    simplify: float | None,
    geojson_uri: str,
    gpkg_uri: str,
) -> tuple[BuildingCounts, list[shapely.Geometry]]:
    """Trace a scene's probabilities into footprints, write them, match them with ``truth``.

    Args:
        prob_uri: the scene's uint8 probability raster: one band, or an instance model's
            three, whose touching buildings are scored apart (the footprints tracer's
            decoding, :func:`~benchmark.footprints.vectorize.vectorize_probabilities`).
        truth: its true buildings in the raster's CRS.
        threshold: the decision threshold.
        simplify: outline tolerance in metres: the model's GSD (None: the raster's pixel).
        geojson_uri: where the footprints go, as GeoJSON (lon/lat)...
        gpkg_uri: ...and as a GeoPackage (the raster's CRS).

    Returns:
        The counts, and the footprints in the raster's CRS (for the overlay).
    """
    with rasterio.open(prob_uri) as src:
        if simplify is None:
            simplify = sum(ground_resolution(src.crs, src.transform, src.width, src.height)) / 2
        options = OutlineOptions(simplify=simplify, min_area=DEFAULT_MIN_AREA)
        found = list(footprints_of_raster(prob_uri, threshold, options))
        polygons = [f.polygon for f in found]
        write_footprints(found, geojson_uri, gpkg_uri, src.crs.to_wkt())
        clipped = truth_in_raster(truth, src, DEFAULT_MIN_AREA)
    return count_buildings(polygons, clipped), polygons


def build_building_report(per_scene: Mapping[str, BuildingCounts]) -> dict:
    """eval.json's ``buildings`` member: overall (micro), per city and per scene."""
    per_city: dict[str, BuildingCounts] = {}
    for key, counts in per_scene.items():
        city = key.split("/")[0]
        per_city[city] = per_city.get(city, BuildingCounts()) + counts
    overall = sum(per_scene.values(), BuildingCounts())
    return {
        "metric": f"buildings matched one-to-one at IoU >= {MIN_IOU} (SpaceNet's rule)",
        "overall": overall.to_dict(),
        "per_city": {k: v.to_dict() for k, v in sorted(per_city.items())},
        "per_scene": {k: v.to_dict() for k, v in sorted(per_scene.items())},
    }
