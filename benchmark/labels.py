"""Building labels: read GeoJSON robustly, write it clean, rasterize it by windows.

The Open Cities label files are OpenStreetMap extracts: some polygons are self-intersecting,
some geometries null or empty, the files carry the old GeoJSON ``crs`` member, and polygons
cross the scene edges. Reading repairs what can be repaired, drops what cannot (counting
both), honors ``crs`` and returns shapely geometries in EPSG:4326 lon/lat.
"""

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from affine import Affine
from pyproj import CRS, Transformer
from rasterio.crs import CRS as RioCRS
from rasterio.features import rasterize
from shapely.geometry import box, mapping, shape
from shapely.ops import transform as transform_geometry

from benchmark.constants import BUILDING
from benchmark.errors import InputError
from benchmark.uris import read_json, write_json

log = logging.getLogger(__name__)

WGS84 = CRS.from_epsg(4326)


@dataclass
class LabelReport:
    """What reading a label file found and fixed."""

    features: int = 0
    kept: int = 0
    repaired: int = 0
    dropped_null: int = 0
    dropped_empty: int = 0
    dropped_not_polygon: int = 0

    def summary(self) -> str:
        """One line for the log."""
        return (
            f"{self.kept} of {self.features} buildings kept ({self.repaired} invalid repaired, "
            f"{self.dropped_null} null, {self.dropped_empty} empty and "
            f"{self.dropped_not_polygon} non-polygon geometries dropped)"
        )


def _features(data: object, uri: str) -> list[dict]:
    if not isinstance(data, dict) or "type" not in data:
        raise InputError(f"{uri}: not GeoJSON (no 'type' member)")
    kind = data["type"]
    if kind == "FeatureCollection":
        features = data.get("features")
        if not isinstance(features, list):
            raise InputError(f"{uri}: not GeoJSON (FeatureCollection without a features list)")
        return features
    if kind == "Feature":
        return [data]
    if kind == "GeometryCollection":
        return [{"geometry": g} for g in data.get("geometries", [])]
    if kind in ("Polygon", "MultiPolygon"):
        return [{"geometry": data}]
    raise InputError(f"{uri}: not GeoJSON building labels (type {kind!r})")


def _source_crs(data: dict, uri: str) -> CRS:
    name = (data.get("crs") or {}).get("properties", {}).get("name")
    if not name:
        return WGS84
    try:
        crs = CRS.from_user_input(name)
    except Exception:
        raise InputError(f"{uri}: unknown crs {name!r}") from None
    return WGS84 if crs.equals(CRS.from_string("OGC:CRS84")) else crs


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry | None:
    """The polygon parts of ``geom`` (make_valid can return collections with lines)."""
    if isinstance(geom, shapely.Polygon | shapely.MultiPolygon):
        return geom
    if isinstance(geom, shapely.GeometryCollection):
        parts = [g for g in geom.geoms if isinstance(g, shapely.Polygon | shapely.MultiPolygon)]
        return shapely.union_all(parts) if parts else None
    return None


def read_building_labels(uri: str) -> tuple[list[shapely.Geometry], LabelReport]:
    """Building polygons of a GeoJSON file, valid, in EPSG:4326 (see the module docstring)."""
    data = read_json(uri, what="label file")
    features = _features(data, uri)
    crs = _source_crs(data, uri)
    to_wgs84 = None
    if not crs.equals(WGS84):
        to_wgs84 = Transformer.from_crs(crs, WGS84, always_xy=True).transform

    report = LabelReport(features=len(features))
    geoms = []
    for feature in features:
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        if geometry is None:
            report.dropped_null += 1
            continue
        try:
            geom = shape(geometry)
        except Exception:
            raise InputError(f"{uri}: malformed geometry {json.dumps(geometry)[:80]}") from None
        if geom.is_empty:
            report.dropped_empty += 1
            continue
        if not geom.is_valid:
            geom = shapely.make_valid(geom)
            report.repaired += 1
        geom = _polygonal(geom)
        if geom is None or geom.is_empty:
            report.dropped_not_polygon += 1
            continue
        if to_wgs84 is not None:
            geom = transform_geometry(to_wgs84, geom)
        geoms.append(geom)
    report.kept = len(geoms)
    log.info("%s: %s", uri, report.summary())
    return geoms, report


def write_labels_geojson(geoms: Sequence[shapely.Geometry], uri: str) -> None:
    """Write EPSG:4326 polygons as a plain RFC 7946 FeatureCollection (no crs), atomically."""
    features = [
        {"type": "Feature", "properties": {"building": "yes"}, "geometry": mapping(g)}
        for g in geoms
    ]
    write_json({"type": "FeatureCollection", "features": features}, uri)


class LabelRasterizer:
    """Rasterize one scene's buildings window by window.

    Polygons are projected to the raster CRS once and indexed, so each window only burns the
    few buildings that touch it (scenes hold thousands).
    """

    def __init__(self, geoms_4326: Sequence[shapely.Geometry], crs: RioCRS | str) -> None:
        dst = CRS.from_user_input(str(crs) if not isinstance(crs, RioCRS) else crs.to_wkt())
        project = Transformer.from_crs(WGS84, dst, always_xy=True).transform
        self.geoms = [transform_geometry(project, g) for g in geoms_4326]
        self.tree = shapely.STRtree(self.geoms)

    def window(self, transform: Affine, shape_hw: tuple[int, int]) -> np.ndarray:
        """uint8 (H, W): 1 where a building covers the pixel centre, else 0."""
        height, width = shape_hw
        x0, y0 = transform @ (0, 0)
        x1, y1 = transform @ (width, height)
        hits = self.tree.query(box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
        if len(hits) == 0:
            return np.zeros(shape_hw, dtype=np.uint8)
        return rasterize(
            ((self.geoms[i], BUILDING) for i in hits),
            out_shape=shape_hw,
            transform=transform,
            fill=0,
            dtype=np.uint8,
        )


def rasterize_labels(
    geoms_4326: Sequence[shapely.Geometry],
    crs: RioCRS | str,
    transform: Affine,
    shape_hw: tuple[int, int],
) -> np.ndarray:
    """One-off :meth:`LabelRasterizer.window`."""
    return LabelRasterizer(geoms_4326, crs).window(transform, shape_hw)
