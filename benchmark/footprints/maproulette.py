"""MapRoulette cooperative tasks: the new buildings, a cluster per task, ready for JOSM.

MapRoulette's preferred task file is line-by-line GeoJSON (RFC 7464): each task one
FeatureCollection on its own line, prefixed by the record separator (RS, 0x1E). In a
*cooperative* challenge each task also carries the in-progress edit, an OsmChange that
MapRoulette loads into the mapper's editor, under ``cooperativeWork`` (MapRoulette's format:
``meta`` version 2, type 2 for a change file; the ``.osc`` base64-encoded). The mapper checks
the buildings against imagery, fixes or deletes them, and uploads.

Buildings closer than ``task_distance`` metres to one another (edge to edge, through any chain
of neighbours) go into one task: a mapper reviews a hamlet or a block at a time, and no
building is split from its neighbours across two tasks that two mappers might edit at once.
"""

import base64
import json
from dataclasses import dataclass

import numpy as np
import shapely
import shapely.geometry
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from benchmark.data.uris import atomic_output
from benchmark.footprints.conflation import to_metric
from benchmark.footprints.osm_write import osm_change

RECORD_SEPARATOR = "\x1e"
DEFAULT_TASK_DISTANCE = 50.0  # metres: a street's width and a yard or two


@dataclass(frozen=True)
class NewBuilding:
    """A new building for a task: its squared outline (lon/lat), OSM XML fragment, properties."""

    lonlat: shapely.Geometry
    fragment: str
    properties: dict


def clusters(lonlat: list[shapely.Geometry], distance: float) -> list[list[int]]:
    """Indices of ``lonlat`` grouped by chains of buildings within ``distance`` metres."""
    if not lonlat:
        return []
    metric, _ = to_metric(lonlat)
    left, right = shapely.STRtree(metric).query(metric, predicate="dwithin", distance=distance)
    graph = coo_matrix((np.ones(len(left)), (left, right)), shape=(len(metric), len(metric)))
    _, labels = connected_components(graph, directed=False)
    groups: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        groups.setdefault(int(label), []).append(index)
    return list(groups.values())


def task(buildings: list[NewBuilding]) -> dict:
    """One cooperative task: the buildings as features, their OsmChange as cooperativeWork."""
    change = osm_change([b.fragment for b in buildings])
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": b.properties,
                "geometry": shapely.geometry.mapping(b.lonlat),
            }
            for b in buildings
        ],
        "cooperativeWork": {
            "meta": {"version": 2, "type": 2},
            "file": {
                "type": "xml",
                "format": "osc",
                "encoding": "base64",
                "content": base64.b64encode(change.encode("utf-8")).decode("ascii"),
            },
        },
    }


def write_tasks(buildings: list[NewBuilding], distance: float, uri: str) -> int:
    """Write the tasks of ``buildings`` to ``uri`` (line-by-line GeoJSON); how many tasks."""
    groups = clusters([b.lonlat for b in buildings], distance)
    with atomic_output(uri) as path, open(path, "w", encoding="utf-8") as out:
        for group in groups:
            record = json.dumps(task([buildings[i] for i in group]), separators=(",", ":"))
            out.write(f"{RECORD_SEPARATOR}{record}\n")
    return len(groups)
