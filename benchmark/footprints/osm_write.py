"""New buildings as the files JOSM and the OpenStreetMap API take: ``.osm`` and ``.osc``.

Only what a mapper would upload: each building is a closed way tagged ``building=yes`` and
``source`` (a polygon with holes: an untagged way per ring in a ``type=multipolygon``
relation carrying the tags), with negative ids (new objects, numbered down from -1 across the
file) and lon/lat (WGS 84, 7 decimals: 1 cm). ``area_m2`` and ``confidence`` are not
OpenStreetMap tags and stay out. Outlines are squared first (:func:`square_outlines`): mappers
square machine outlines anyway (JOSM's ``Q``), and round roofs stay round.

Each building is one fragment of XML, its nodes before its ways (:func:`building_fragments`):
the ``.osm`` file (:func:`osm_document`), the OsmChange ``<create>`` block
(:func:`osm_change`) and the review page's "save kept buildings" (which joins the fragments of
the buildings a reviewer kept) all wrap the same fragments.
"""

import itertools
from collections.abc import Iterator
from xml.sax.saxutils import escape

import numpy as np
import shapely
from pyproj import Transformer

from benchmark.data.uris import atomic_output
from benchmark.footprints.conflation import to_metric
from benchmark.footprints.ground import WGS84
from benchmark.footprints.regularize import regularize

GENERATOR = "benchmark-footprints"
DEFAULT_SOURCE = "benchmark-footprints"
LONLAT_DECIMALS = 7
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
OSM_HEADER = f'{XML_DECLARATION}<osm version="0.6" generator="{GENERATOR}">\n'
OSM_FOOTER = "</osm>\n"


def square_outlines(lonlat: list[shapely.Geometry]) -> list[shapely.Geometry]:
    """``lonlat`` polygons squared in metres (:mod:`benchmark.footprints.regularize`)."""
    if not lonlat:
        return []
    metric, crs = to_metric(lonlat)
    back = Transformer.from_crs(crs, WGS84, always_xy=True)

    def project(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(back.transform(xy[:, 0], xy[:, 1]))

    return list(shapely.transform(np.array([regularize(p) for p in metric], object), project))


def _tags(source: str) -> str:
    value = escape(source, {'"': "&quot;"})
    return f'    <tag k="building" v="yes"/>\n    <tag k="source" v="{value}"/>\n'


def _ring(coords: np.ndarray, ids: Iterator[int]) -> tuple[list[str], list[int]]:
    """Node elements for a ring's distinct points and the closed list of their ids."""
    points = np.round(np.asarray(coords)[:-1], LONLAT_DECIMALS)
    refs = [next(ids) for _ in points]
    nodes = [
        f'  <node id="{ref}" lat="{lat:.{LONLAT_DECIMALS}f}" lon="{lon:.{LONLAT_DECIMALS}f}"/>\n'
        for ref, (lon, lat) in zip(refs, points, strict=True)
    ]
    return nodes, [*refs, refs[0]]


def _way(way_id: int, refs: list[int], tags: str) -> str:
    nds = "".join(f'    <nd ref="{ref}"/>\n' for ref in refs)
    return f'  <way id="{way_id}">\n{nds}{tags}  </way>\n'


def building_fragments(polygons: list[shapely.Polygon], source: str) -> list[str]:
    """One XML fragment per building (nodes, then its way or multipolygon), ids from -1 down."""
    ids = itertools.count(-1, -1)
    fragments = []
    for polygon in polygons:
        rings = [polygon.exterior, *polygon.interiors]
        nodes, ways = [], []
        for ring in rings:
            ring_nodes, refs = _ring(ring.coords, ids)
            nodes += ring_nodes
            ways.append(refs)
        if len(ways) == 1:
            body = _way(next(ids), ways[0], _tags(source))
        else:
            way_ids = [next(ids) for _ in ways]
            body = "".join(_way(i, refs, "") for i, refs in zip(way_ids, ways, strict=True))
            members = "".join(
                f'    <member type="way" ref="{i}" role="{"outer" if k == 0 else "inner"}"/>\n'
                for k, i in enumerate(way_ids)
            )
            multipolygon = '    <tag k="type" v="multipolygon"/>\n'
            body += f'  <relation id="{next(ids)}">\n{members}{multipolygon}{_tags(source)}'
            body += "  </relation>\n"
        fragments.append("".join(nodes) + body)
    return fragments


def osm_document(fragments: list[str]) -> str:
    """A JOSM ``.osm`` file of ``fragments``."""
    return OSM_HEADER + "".join(fragments) + OSM_FOOTER


def osm_change(fragments: list[str]) -> str:
    """An OsmChange (``.osc``) creating ``fragments``."""
    return (
        f'{XML_DECLARATION}<osmChange version="0.6" generator="{GENERATOR}">\n<create>\n'
        + "".join(fragments)
        + "</create>\n</osmChange>\n"
    )


def write_text(text: str, uri: str) -> None:
    """``text`` to ``uri`` (local or s3://), atomically."""
    with atomic_output(uri) as path, open(path, "w", encoding="utf-8") as out:
        out.write(text)
