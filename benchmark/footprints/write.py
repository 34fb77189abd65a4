"""Footprint files: GeoJSON (RFC 7946, lon/lat) and GeoPackage (the image's CRS), streamed.

Both are written while the footprints come, never holding a city's buildings at once: GeoJSON
feature by feature (a FeatureCollection needs no count up front), the GeoPackage in batches
appended to one layer. RFC 7946 asks for longitude/latitude in WGS 84, no ``crs`` member, and
exterior rings counter-clockwise (the right-hand rule); coordinates are rounded to 7 decimals
(1 cm). Every feature carries ``building=yes`` (the OpenStreetMap tag, so JOSM takes the file
as it is), ``area_m2`` and ``confidence`` (mean P(building) inside). An image without buildings
gets valid empty files. Both files are atomic: a killed run leaves neither half-written.
"""

import json
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pyogrio.raw
import shapely
import shapely.geometry
from shapely.geometry.polygon import orient

from benchmark.data.uris import atomic_output
from benchmark.footprints.outlines import Footprint

GPKG_LAYER = "buildings"
GPKG_BATCH = 5000  # footprints appended to the GeoPackage at a time
LONLAT_DECIMALS = 7


def image_output_uris(out_dir: str, name: str, *suffixes: str) -> list[str]:
    """``{out_dir}/{name}{suffix}`` for each suffix: where one image's outputs go."""
    base = f"{out_dir.rstrip('/')}/{name}"
    return [base + suffix for suffix in suffixes]


def _properties(footprint: Footprint) -> dict[str, Any]:
    return {
        "building": "yes",
        "area_m2": round(footprint.area_m2, 2),
        "confidence": round(footprint.confidence, 3),
    }


def geojson_feature(footprint: Footprint) -> dict[str, Any]:
    """An RFC 7946 Feature: rounded lon/lat, exterior counter-clockwise, holes clockwise."""
    lonlat = shapely.transform(footprint.lonlat, lambda xy: np.round(xy, LONLAT_DECIMALS))
    lonlat = orient(lonlat, sign=1.0)
    return {
        "type": "Feature",
        "properties": _properties(footprint),
        "geometry": shapely.geometry.mapping(lonlat),
    }


@contextmanager
def gpkg_under_any_name() -> Iterator[None]:
    """Write GeoPackages quietly under atomic_output's partial name, which does not end in .gpkg."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".* (non conformant file|filename) ext", RuntimeWarning)
        yield


def append_polygons(
    path: str,
    wkb: np.ndarray,
    columns: Sequence[np.ndarray],
    fields: Sequence[str],
    crs_wkt: str,
    append: bool,
) -> None:
    """Write polygons (WKB) and their ``fields`` to the footprints' GeoPackage layer at ``path``.

    Creates the layer, even empty, unless ``append``.
    """
    with gpkg_under_any_name():
        pyogrio.raw.write(
            path,
            geometry=wkb,
            field_data=list(columns),
            fields=list(fields),
            layer=GPKG_LAYER,
            driver="GPKG",
            geometry_type="Polygon",
            crs=crs_wkt,
            append=append,
        )


def _append_gpkg(path: str, batch: list[Footprint], crs_wkt: str, append: bool) -> None:
    """Write ``batch`` to the GeoPackage layer (create it, even empty, unless ``append``)."""
    rows = [_properties(f) for f in batch]
    columns = [
        np.array([r["building"] for r in rows], dtype=object),
        np.array([r["area_m2"] for r in rows], dtype=np.float64),
        np.array([r["confidence"] for r in rows], dtype=np.float64),
    ]
    wkb = shapely.to_wkb(np.array([f.polygon for f in batch], dtype=object))
    append_polygons(path, wkb, columns, ["building", "area_m2", "confidence"], crs_wkt, append)


def write_footprints(
    footprints: Iterable[Footprint], geojson_uri: str, gpkg_uri: str, crs_wkt: str
) -> int:
    """Write ``footprints`` to both files (local or s3://); how many there were.

    Args:
        footprints: consumed once.
        geojson_uri: the RFC 7946 GeoJSON.
        gpkg_uri: the GeoPackage, layer ``buildings``, in ``crs_wkt``.
        crs_wkt: the image's CRS.
    """
    count = 0
    with (
        atomic_output(gpkg_uri) as gpkg_path,
        atomic_output(geojson_uri) as geojson_path,
        open(geojson_path, "w") as out,
    ):
        out.write('{"type": "FeatureCollection", "features": [')
        batch: list[Footprint] = []
        for footprint in footprints:
            out.write(("," if count else "") + "\n" + json.dumps(geojson_feature(footprint)))
            count += 1
            batch.append(footprint)
            if len(batch) == GPKG_BATCH:
                _append_gpkg(gpkg_path, batch, crs_wkt, append=count > GPKG_BATCH)
                batch = []
        if batch or count == 0:
            _append_gpkg(gpkg_path, batch, crs_wkt, append=count > len(batch))
        out.write("\n]}\n")
    return count
