"""New buildings as JOSM XML and OsmChange: only building=yes and source, negative ids, closed."""

import xml.etree.ElementTree as ET

import pyogrio
import pytest
import shapely

from benchmark.footprints.osm_write import (
    building_fragments,
    osm_change,
    osm_document,
    square_outlines,
)
from tests.footprints.conftest import metre_box as box

HOUSE = box(0, 0, 10, 8)
COURTYARD = shapely.Polygon(box(20, 0, 40, 20).exterior, [box(25, 5, 35, 15).exterior.coords])


def test_osm_file_mappers_load(tmp_path):
    fragments = building_fragments([HOUSE, COURTYARD], 'drone survey "2026"')
    root = ET.fromstring(osm_document(fragments))
    ids = [int(e.get("id")) for e in root]
    assert sorted(ids, reverse=True) == list(range(-1, -len(ids) - 1, -1))  # unique, negative
    nodes = {e.get("id") for e in root.iter("node")}
    for way in root.iter("way"):
        refs = [nd.get("ref") for nd in way.iter("nd")]
        assert refs[0] == refs[-1] and set(refs) <= nodes
    tagged = [e for e in root if e.find("tag") is not None]
    assert [e.tag for e in tagged] == ["way", "relation"]
    for element in tagged:
        tags = {t.get("k"): t.get("v") for t in element.iter("tag")}
        tags.pop("type", None)  # the relation's type=multipolygon
        assert tags == {"building": "yes", "source": 'drone survey "2026"'}
    path = tmp_path / "new.osm"
    path.write_text(osm_document(fragments))
    read = pyogrio.read_dataframe(path, layer="multipolygons", USE_CUSTOM_INDEXING="NO")
    areas = sorted(shapely.area(read.geometry.values))  # GDAL reads what mappers will see
    assert areas == pytest.approx(sorted([HOUSE.area, COURTYARD.area]), rel=1e-3)


def test_osmchange_creates_the_same():
    fragments = building_fragments([HOUSE], "s")
    root = ET.fromstring(osm_change(fragments))
    assert root.tag == "osmChange" and [c.tag for c in root] == ["create"]
    assert [e.tag for e in root[0]] == ["node"] * 4 + ["way"]


def test_squared_outlines_stay_in_place():
    wobbly = shapely.Polygon(
        [(32.6, 0.35), (32.6 + 90 * 1e-7, 0.35 + 3e-7), (32.6 + 90e-7, 0.35 + 72e-7),
         (32.6 + 2e-7, 0.35 + 72e-7)]
    )  # fmt: skip
    (squared,) = square_outlines([wobbly])
    assert len(squared.exterior.coords) == 5
    assert shapely.intersection(squared, wobbly).area / shapely.union(squared, wobbly).area > 0.9
