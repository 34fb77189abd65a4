"""The buildings OpenStreetMap already has, from a file or an Overpass API endpoint.

Conflation (:mod:`benchmark.footprints.conflation`) needs the existing buildings around each
image, in longitude/latitude, each with its OpenStreetMap id when the source has one:

- a file (``--osm``): GeoJSON, GeoPackage or anything else OGR reads, in any CRS (its first
  layer; features tagged ``building`` other than ``no``, or every polygon when there is no
  ``building`` field), or an OpenStreetMap extract (``.osm`` XML, ``.osm.pbf``) read by GDAL's
  OSM driver (its ``multipolygons`` layer: closed ways and multipolygon relations tagged
  ``building``). The file is read once per run and kept (:func:`read_osm_file`): an extract
  of a city is a few hundred thousand polygons, and every image of the run needs it.
- an Overpass API endpoint (``--overpass [URL]``): the buildings in the image's bounding box,
  asked per image (:func:`fetch_overpass`), ways and multipolygon relations with their
  geometry (``out geom``).

A file that does not cover an image is a warning (:func:`warn_if_not_covering`): buildings
outside it would all come out ``new``. A file or an answer that cannot be used raises
:class:`~benchmark.errors.InputError` in one line; the caller still writes the footprints.
"""

import functools
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyogrio
import requests
import shapely
import shapely.ops
from pyogrio.errors import DataLayerError, DataSourceError
from pyproj import CRS, Transformer

from benchmark.errors import InputError
from benchmark.footprints.ground import WGS84

log = logging.getLogger(__name__)

DEFAULT_OVERPASS_URL = "https://overpass-api.de/api/interpreter"
DEFAULT_OVERPASS_TIMEOUT = 180.0  # seconds: Overpass's own default query timeout
# Fraction of an image's box a file must cover not to be warned about: by its declared bounds
# (an extract cut to the box may round inwards), or, lacking them, by the box of its buildings,
# which is smaller than the area mapped (the Kampala validation scene's OSM buildings: 87 %).
MIN_COVERED_BOUNDS = 0.9
MIN_COVERED_BUILDINGS = 0.5
_OSM_SUFFIXES = (".osm", ".osm.pbf", ".pbf")
_ID_FIELDS = ("osm_id", "@id", "id", "osm_way_id")
# JOSM saves new objects with negative ids, which GDAL's fast node index refuses; .osm XML
# files are small enough for the plain one (.osm.pbf extracts keep the fast one).
_OSM_OPEN_OPTIONS = {"USE_CUSTOM_INDEXING": "NO"}


@dataclass(frozen=True)
class ExistingBuildings:
    """Buildings already mapped: polygons in lon/lat and their OpenStreetMap ids ("" unknown).

    ``source`` names where they came from (a file or an Overpass URL), for messages;
    ``extent`` is the lon/lat box the source covers (a file's), None when unknown.
    """

    polygons: tuple[shapely.Geometry, ...]
    osm_ids: tuple[str, ...]
    source: str
    extent: tuple[float, float, float, float] | None = None

    def within(self, lonlat_box: tuple[float, float, float, float]) -> "ExistingBuildings":
        """Those that intersect ``(west, south, east, north)``."""
        if not self.polygons:
            return self
        keep = shapely.intersects(np.asarray(self.polygons, dtype=object), shapely.box(*lonlat_box))
        return ExistingBuildings(
            tuple(p for p, k in zip(self.polygons, keep, strict=True) if k),
            tuple(i for i, k in zip(self.osm_ids, keep, strict=True) if k),
            self.source,
            self.extent,
        )


def _is_osm_extract(uri: str) -> bool:
    return uri.lower().endswith(_OSM_SUFFIXES)


def _osm_id_of(row: dict) -> str:
    """``way/123``-style ids as OpenStreetMap spells them; bare numbers kept as they are."""
    if row.get("osm_way_id"):  # GDAL's OSM driver: a closed way (osm_id is for relations)
        return f"way/{row['osm_way_id']}"
    if "osm_way_id" in row and row.get("osm_id"):
        return f"relation/{row['osm_id']}"
    for name in _ID_FIELDS:
        value = row.get(name)
        if value is not None and value == value and value != "":  # not None, NaN or empty
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            return str(value)
    return ""


@functools.cache
def read_osm_file(uri: str) -> ExistingBuildings:
    """The buildings of an OSM extract, GeoJSON, GeoPackage... in lon/lat (cached per run).

    Raises:
        InputError: the file cannot be read, or holds no polygons at all.
    """
    try:
        if _is_osm_extract(uri):
            frame = pyogrio.read_dataframe(
                uri, layer="multipolygons", where="building IS NOT NULL AND building != 'no'",
                **_OSM_OPEN_OPTIONS if uri.lower().endswith(".osm") else {},
            )  # fmt: skip
        else:
            frame = pyogrio.read_dataframe(uri)
    except (DataSourceError, DataLayerError, OSError, ValueError) as exc:
        problem = " ".join(str(exc).replace(uri, "the file").split())
        raise InputError(f"{uri}: not read as OpenStreetMap buildings ({problem})") from None
    if "building" in frame.columns and not _is_osm_extract(uri):
        tagged = frame["building"].notna() & (frame["building"].astype(str) != "no")
        frame = frame[tagged]
    if frame.crs is not None and not CRS.from_user_input(frame.crs).equals(WGS84):
        frame = frame.to_crs(WGS84)
    geoms = _polygonal(np.asarray(frame.geometry.values, dtype=object))
    polygons, ids = [], []
    for geom, row in zip(geoms, frame.drop(columns="geometry").to_dict("records"), strict=True):
        parts = shapely.get_parts(geom) if geom is not None else []
        area = [p for p in parts if isinstance(p, shapely.Polygon) and not p.is_empty]
        if area:
            polygons.append(shapely.MultiPolygon(area) if len(area) > 1 else area[0])
            ids.append(_osm_id_of(row))
    if not polygons:
        raise InputError(f"{uri}: no buildings in it (polygons tagged building=*)")
    log.info("%s: %d existing buildings", uri, len(polygons))
    return ExistingBuildings(tuple(polygons), tuple(ids), uri, _extent(uri, polygons))


def _extent(uri: str, polygons: list[shapely.Geometry]) -> tuple[float, float, float, float]:
    """The box a file covers: an extract's declared bounds, else its buildings' (lon/lat)."""
    if _is_osm_extract(uri):  # <bounds> of .osm XML, the header's bbox of .osm.pbf
        declared = pyogrio.read_info(uri, layer="multipolygons")["total_bounds"]
        if declared is not None:
            return tuple(float(v) for v in declared)
    return tuple(float(v) for v in shapely.total_bounds(np.asarray(polygons, dtype=object)))


def warn_if_not_covering(
    existing: ExistingBuildings, lonlat_box: tuple[float, float, float, float], image: str
) -> None:
    """Warn when ``existing``'s extent covers too little of the image's box.

    An extract's extent is its declared bounds (:data:`MIN_COVERED_BOUNDS`); a file without
    them (GeoJSON, GeoPackage) is known by its buildings' box (:data:`MIN_COVERED_BUILDINGS`),
    so a sparsely built image may still be warned about in vain: the warning says what it
    measured.
    """
    if existing.extent is None:
        return
    box = shapely.box(*lonlat_box)
    covered = shapely.intersection(box, shapely.box(*existing.extent)).area / box.area
    declared = _is_osm_extract(existing.source)
    if covered < (MIN_COVERED_BOUNDS if declared else MIN_COVERED_BUILDINGS):
        log.warning(
            "%s covers %.0f%% of %s (%s): buildings outside it come out new",
            existing.source, 100 * covered, image,
            "its bounds" if declared else "the box of its buildings",
        )  # fmt: skip


def overpass_query(lonlat_box: tuple[float, float, float, float], timeout: float) -> str:
    """Overpass QL for the buildings in ``(west, south, east, north)``, with their geometry."""
    west, south, east, north = lonlat_box
    bbox = f"{south:.7f},{west:.7f},{north:.7f},{east:.7f}"
    return (
        f"[out:json][timeout:{round(timeout)}];"
        f'(way["building"]["building"!="no"]({bbox});'
        f'relation["building"]["type"="multipolygon"]({bbox}););out geom;'
    )


def _line(points: list[dict]) -> shapely.LineString | None:
    coords = [(p["lon"], p["lat"]) for p in points if p is not None]
    return shapely.LineString(coords) if len(coords) >= 2 else None


def _relation_polygon(element: dict) -> shapely.Geometry | None:
    """A multipolygon relation's area: its outer ways joined into rings, minus the inner."""
    rings: dict[str, list] = {"outer": [], "inner": []}
    for member in element.get("members", []):
        line = _line(member.get("geometry") or []) if member.get("type") == "way" else None
        if line is not None:
            rings["inner" if member.get("role") == "inner" else "outer"].append(line)
    outer = shapely.union_all(list(shapely.ops.polygonize(rings["outer"])))
    inner = shapely.union_all(list(shapely.ops.polygonize(rings["inner"])))
    area = shapely.difference(outer, inner) if not inner.is_empty else outer
    return None if area.is_empty else area


def _polygonal(geoms: Any) -> Any:
    """``geoms`` made valid as polygons only: a spike or collapsed ring dropped, not the building.

    GEOS's default keeps them as lines in a collection, which a filter for polygons then drops
    whole (the footprint over it would come out ``new``), and the review page cannot draw.
    """
    return shapely.make_valid(geoms, method="structure", keep_collapsed=False)


def parse_overpass(answer: dict, source: str) -> ExistingBuildings:
    """The buildings of an Overpass JSON answer (``out geom``); elements without area skipped."""
    polygons, ids = [], []
    for element in answer.get("elements", []):
        if element.get("type") == "way":
            line = _line(element.get("geometry") or [])
            closed = line is not None and len(line.coords) >= 4 and line.is_closed
            geom = _polygonal(shapely.Polygon(line.coords)) if closed else None
        elif element.get("type") == "relation":
            geom = _relation_polygon(element)
        else:
            continue
        if geom is not None and not geom.is_empty and geom.area > 0:
            polygons.append(geom)
            ids.append(f"{element['type']}/{element.get('id', '')}")
    return ExistingBuildings(tuple(polygons), tuple(ids), source)


def fetch_overpass(
    url: str, lonlat_box: tuple[float, float, float, float], timeout: float
) -> ExistingBuildings:
    """The buildings in ``lonlat_box`` from the Overpass API at ``url``.

    Raises:
        InputError: no answer within ``timeout`` seconds, an HTTP error (Overpass says 429
            when busy, 504 when its own timeout runs out), or an answer that is not
            Overpass JSON; one line naming the URL.
    """
    query = overpass_query(lonlat_box, timeout)
    try:
        response = requests.post(url, data={"data": query}, timeout=timeout)
        response.raise_for_status()
        answer = response.json()
    except requests.Timeout:
        raise InputError(f"{url}: no answer from Overpass within {timeout:g} s") from None
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise InputError(f"{url}: Overpass answered HTTP {status}") from None
    except requests.JSONDecodeError:  # a RequestException too: first
        raise InputError(f"{url}: Overpass's answer is not JSON") from None
    except requests.RequestException as exc:
        problem = " ".join(str(exc).split())
        raise InputError(f"{url}: Overpass not reached ({problem})") from None
    if not isinstance(answer, dict) or not isinstance(answer.get("elements"), list):
        raise InputError(f"{url}: Overpass's answer has no elements")
    if answer.get("remark"):  # Overpass reports its own runtime errors here, with a 200
        remark = " ".join(str(answer["remark"]).split())
        raise InputError(f"{url}: Overpass: {remark}")
    existing = parse_overpass(answer, url)
    log.info("%s: %d existing buildings in the image's box", url, len(existing.polygons))
    return existing


def lonlat_bounds(crs: object, bounds: tuple[float, float, float, float]) -> tuple:
    """``(west, south, east, north)`` of a box in ``crs`` (densified edges)."""
    transformer = Transformer.from_crs(CRS.from_user_input(crs), WGS84, always_xy=True)
    return tuple(float(v) for v in transformer.transform_bounds(*bounds, densify_pts=21))
