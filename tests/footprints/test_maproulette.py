"""MapRoulette's line-by-line GeoJSON: a cooperative task per cluster of new buildings."""

import base64
import json
import xml.etree.ElementTree as ET

from benchmark.footprints.maproulette import NewBuilding, clusters, write_tasks
from benchmark.footprints.osm_write import building_fragments
from tests.footprints.conftest import metre_box

# Two houses 5 m apart, a third 30 m from the second, a fourth 200 m away.
HOUSES = [metre_box(0, 0, 10, 10), metre_box(15, 0, 25, 10), metre_box(55, 0, 65, 10),
          metre_box(265, 0, 275, 10)]  # fmt: skip


def test_clusters_by_distance():
    assert sorted(clusters(HOUSES, 50)) == [[0, 1, 2], [3]]
    assert sorted(clusters(HOUSES, 10)) == [[0, 1], [2], [3]]
    assert clusters([], 10) == []


def test_line_by_line_cooperative_tasks(tmp_path):
    fragments = building_fragments(HOUSES, "test")
    buildings = [
        NewBuilding(h, f, {"building": "yes", "area_m2": 100.0})
        for h, f in zip(HOUSES, fragments, strict=True)
    ]
    path = tmp_path / "tasks.geojson"
    assert write_tasks(buildings, 50, str(path)) == 2
    text = path.read_text()
    lines = text.split("\n")
    assert lines[-1] == "" and all(line.startswith("\x1e") for line in lines[:-1])
    tasks = [json.loads(line[1:]) for line in lines[:-1]]
    assert [len(t["features"]) for t in tasks] == [3, 1]
    work = tasks[0]["cooperativeWork"]
    assert work["meta"] == {"version": 2, "type": 2}
    assert {k: work["file"][k] for k in ("type", "format", "encoding")} == {
        "type": "xml", "format": "osc", "encoding": "base64"
    }  # fmt: skip
    change = ET.fromstring(base64.b64decode(work["file"]["content"]))
    assert change.tag == "osmChange" and len(change.find("create").findall("way")) == 3
