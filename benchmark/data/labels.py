"""Building labels: read GeoJSON robustly, write it clean, rasterize it by windows.

The Open Cities label files are OpenStreetMap extracts: some polygons are self-intersecting,
some geometries null or empty, the files carry the old GeoJSON ``crs`` member, and polygons
cross the scene edges. Reading repairs what can be repaired, drops what cannot (counting
both), honors ``crs`` and returns shapely geometries in EPSG:4326 lon/lat, the one CRS every
other module assumes for labels.
"""

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
import shapely.geometry
from affine import Affine
from pyproj import CRS, Transformer
from rasterio.features import rasterize

from benchmark.data.constants import BUILDING
from benchmark.data.uris import read_json, write_json
from benchmark.errors import InputError

log = logging.getLogger(__name__)

WGS84 = CRS.from_epsg(4326)
POLYGONAL = (shapely.Polygon, shapely.MultiPolygon)


@dataclass
class LabelReport:
    """What reading a label file found and fixed."""

    features: int = 0
    kept: int = 0
    repaired: int = 0
    dropped_null: int = 0
    dropped_empty: int = 0
    dropped_not_polygon: int = 0
    source_crs: str = "EPSG:4326"

    def summary(self) -> str:
        """One line for the log."""
        reprojected = "" if self.source_crs == "EPSG:4326" else f"; from {self.source_crs}"
        return (
            f"{self.kept} of {self.features} buildings kept ({self.repaired} invalid repaired, "
            f"{self.dropped_null} null, {self.dropped_empty} empty and "
            f"{self.dropped_not_polygon} non-polygon geometries dropped{reprojected})"
        )


def _features(data: Any, uri: str) -> list[dict]:
    """The features of a FeatureCollection, a single Feature or a bare geometry."""
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise InputError(f"{uri}: not GeoJSON (no 'type' member)")
    kind = data["type"]
    if kind == "FeatureCollection":
        features = data.get("features")
        if not isinstance(features, list):
            raise InputError(f"{uri}: not GeoJSON (a FeatureCollection without a features list)")
    elif kind == "Feature":
        features = [data]
    elif kind == "GeometryCollection":
        features = [{"geometry": g} for g in data.get("geometries") or []]
    elif kind in ("Polygon", "MultiPolygon"):
        features = [{"geometry": data}]
    else:
        raise InputError(f"{uri}: not GeoJSON building labels (type {kind!r})")
    for i, feature in enumerate(features):
        if not isinstance(feature, dict):
            raise InputError(f"{uri}: not GeoJSON (feature {i} is not an object)")
    return features


def _source_crs(data: dict, uri: str) -> CRS:
    """The legacy (2008 GeoJSON) ``crs`` member: a name or an EPSG code; lon/lat without it."""
    member = data.get("crs")
    if member is None:
        return WGS84
    properties = member.get("properties") if isinstance(member, dict) else None
    properties = properties if isinstance(properties, dict) else {}
    name = properties.get("name") or (
        f"EPSG:{properties['code']}" if "code" in properties else None
    )
    try:
        crs = CRS.from_user_input(name)
    except Exception:
        raise InputError(f"{uri}: unreadable crs member {json.dumps(member)[:100]}") from None
    return WGS84 if crs.equals(CRS.from_string("OGC:CRS84")) else crs


def _reproject(geoms: Sequence[shapely.Geometry], src: CRS, dst: CRS) -> list[shapely.Geometry]:
    """``geoms`` from ``src`` to ``dst`` (x = east), all coordinates in one pyproj call."""
    if not geoms or src.equals(dst):
        return list(geoms)
    transformer = Transformer.from_crs(src, dst, always_xy=True)

    def project(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))

    return list(shapely.transform(np.asarray(geoms, dtype=object), project))


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry | None:
    """The polygon parts of ``geom`` (make_valid can return collections with lines)."""
    if isinstance(geom, POLYGONAL):
        return geom
    if isinstance(geom, shapely.GeometryCollection):
        parts = [g for g in geom.geoms if isinstance(g, POLYGONAL)]
        return shapely.union_all(parts) if parts else None
    return None


def _building(geometry: Any, report: LabelReport, uri: str) -> shapely.Geometry | None:
    """A valid 2D (multi)polygon from a GeoJSON geometry, or None (counted in ``report``)."""
    if geometry is None:
        report.dropped_null += 1
        return None
    try:
        geom = shapely.force_2d(shapely.geometry.shape(geometry))
    except Exception:
        raise InputError(f"{uri}: malformed geometry {json.dumps(geometry)[:80]}") from None
    if geom.is_empty:
        report.dropped_empty += 1
        return None
    repaired = not geom.is_valid
    polygon = _polygonal(shapely.make_valid(geom) if repaired else geom)
    if polygon is None or polygon.is_empty:
        report.dropped_not_polygon += 1
        return None
    report.repaired += repaired
    return polygon


def read_building_labels(uri: str) -> tuple[list[shapely.Geometry], LabelReport]:
    """Building polygons of a GeoJSON file, valid, in EPSG:4326 (see the module docstring).

    An empty FeatureCollection is a scene without buildings, not an error.

    Raises:
        InputError: the file is missing, not JSON, not GeoJSON, or has an unknown ``crs``.
    """
    data = read_json(uri, what="label file")
    features = _features(data, uri)
    crs = _source_crs(data, uri)
    report = LabelReport(features=len(features), source_crs=crs.to_string())
    geoms = [_building(feature.get("geometry"), report, uri) for feature in features]
    geoms = _reproject([g for g in geoms if g is not None], crs, WGS84)
    report.kept = len(geoms)
    log.info("%s: %s", uri, report.summary())
    return geoms, report


def write_labels_geojson(geoms: Sequence[shapely.Geometry], uri: str) -> None:
    """Write EPSG:4326 polygons as a plain RFC 7946 FeatureCollection (no crs), atomically."""
    features = [
        {
            "type": "Feature",
            "properties": {"building": "yes"},
            "geometry": shapely.geometry.mapping(g),
        }
        for g in geoms
    ]
    write_json({"type": "FeatureCollection", "features": features}, uri)


class LabelRasterizer:
    """Rasterize one scene's buildings window by window.

    Polygons are projected to the raster CRS once and indexed, so each window only burns the
    few buildings that touch it (scenes hold thousands, windows are many).
    """

    def __init__(self, geoms_4326: Sequence[shapely.Geometry], crs: Any) -> None:
        """``crs``: the raster's (rasterio or pyproj CRS, or anything pyproj reads)."""
        self.geoms = _reproject(geoms_4326, WGS84, CRS.from_user_input(crs))
        self.tree = shapely.STRtree(self.geoms)

    def window(self, transform: Affine, shape: tuple[int, int]) -> np.ndarray:
        """uint8 (H, W): 1 where a building covers the pixel centre, else 0."""
        height, width = shape
        xs, ys = zip(*(transform @ corner for corner in ((0, 0), (width, height))), strict=True)
        hits = self.tree.query(shapely.box(min(xs), min(ys), max(xs), max(ys)))
        if len(hits) == 0:
            return np.zeros(shape, dtype=np.uint8)
        return rasterize(
            ((self.geoms[i], BUILDING) for i in hits),
            out_shape=shape,
            transform=transform,
            fill=0,
            dtype=np.uint8,
        )


def rasterize_labels(
    geoms_4326: Sequence[shapely.Geometry], crs: Any, transform: Affine, shape: tuple[int, int]
) -> np.ndarray:
    """One window's buildings as uint8 0/1; use :class:`LabelRasterizer` for many windows."""
    return LabelRasterizer(geoms_4326, crs).window(transform, shape)
