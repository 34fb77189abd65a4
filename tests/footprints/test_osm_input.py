"""Existing buildings from files in any CRS, OSM extracts and a local Overpass stand-in."""

import json
import logging

import geopandas as gpd
import pytest
import shapely

from benchmark.errors import InputError
from benchmark.footprints.osm_input import (
    ExistingBuildings,
    fetch_overpass,
    read_osm_file,
    warn_if_not_covering,
)
from tests.footprints.conftest import (
    MAPPED_BOX,
    SHED_BOX,
    lonlat_box,
    osm_xml,
    overpass_answer,
)

BOX = (32.59, 0.35, 32.60, 0.36)
TAGS = {"building": "yes", "type": "multipolygon"}


def geometry(ring: shapely.LinearRing) -> list[dict]:
    """Overpass's ``geometry`` of a way: its points as lat/lon objects."""
    return [{"lat": lat, "lon": lon} for lon, lat in ring.coords]


@pytest.fixture(autouse=True)
def fresh_cache():
    read_osm_file.cache_clear()  # each test writes its own files under one name


def existing_polygons() -> list[shapely.Polygon]:
    return [lonlat_box(MAPPED_BOX), lonlat_box(SHED_BOX)]


def with_spike(polygon: shapely.Polygon, bow_tie: bool = False) -> shapely.Polygon:
    """``polygon`` with an out-and-back spike from its first corner, as mappers' slips leave;
    ``bow_tie``: its last two corners swapped too (a self-crossing outline)."""
    corners = list(polygon.exterior.coords[:-1])
    if bow_tie:
        corners[2], corners[3] = corners[3], corners[2]
    (x, y), (x2, _) = corners[0], corners[2]
    return shapely.Polygon([(x, y), (x - (x2 - x) / 2, y), *corners])


class TestFiles:
    def test_a_self_crossing_building_with_a_spike_is_kept(self, tmp_path):
        crossing = with_spike(lonlat_box(MAPPED_BOX), bow_tie=True)
        frame = gpd.GeoDataFrame({"osm_id": [11.0]}, geometry=[crossing], crs="EPSG:4326")
        frame.to_file(tmp_path / "b.geojson", driver="GeoJSON")
        existing = read_osm_file(str(tmp_path / "b.geojson"))
        assert existing.osm_ids == ("11",)  # not dropped: the footprint over it is not "new"
        assert existing.polygons[0].area > 0

    def test_geojson_in_web_mercator_with_other_features(self, tmp_path):
        frame = gpd.GeoDataFrame(
            {"osm_id": [11.0, 12.0, 13.0], "building": ["yes", "house", None]},
            geometry=[*existing_polygons(), shapely.box(32.5, 0.3, 32.6, 0.4)],  # a landuse
            crs="EPSG:4326",
        ).to_crs("EPSG:3857")
        frame.to_file(tmp_path / "b.geojson", driver="GeoJSON")
        existing = read_osm_file(str(tmp_path / "b.geojson"))
        assert existing.osm_ids == ("11", "12")
        for read, made in zip(existing.polygons, existing_polygons(), strict=True):
            assert shapely.equals_exact(shapely.normalize(read), shapely.normalize(made), 1e-7)

    def test_osm_xml_extract_with_its_bounds(self, tmp_path):
        path = tmp_path / "extract.osm"
        path.write_text(osm_xml(existing_polygons(), bounds=shapely.box(*BOX)))
        existing = read_osm_file(str(path))
        assert existing.osm_ids == ("way/1000", "way/1001")
        assert existing.extent == pytest.approx(BOX)
        assert existing.within(lonlat_box(SHED_BOX).bounds).osm_ids == ("way/1001",)

    @pytest.mark.parametrize(
        ("content", "problem"),
        [
            ("<osm><node", "not read as OpenStreetMap buildings"),
            ('{"type": "FeatureCollection", "features": []}', "no buildings in it"),
        ],
    )
    def test_unusable_file_is_one_line(self, tmp_path, content, problem):
        suffix = ".osm" if content.startswith("<") else ".geojson"
        path = tmp_path / f"bad{suffix}"
        path.write_text(content)
        with pytest.raises(InputError, match=problem) as raised:
            read_osm_file(str(path))
        assert str(raised.value).startswith(str(path)) and "\n" not in str(raised.value)

    def test_a_file_elsewhere_is_a_warning(self, caplog):
        existing = ExistingBuildings((), (), "far.osm", extent=(10.0, 10.0, 10.1, 10.1))
        with caplog.at_level(logging.WARNING):
            warn_if_not_covering(existing, BOX, "scene.tif")
        assert "far.osm covers 0% of scene.tif" in caplog.text


class TestOverpass:
    def test_a_way_with_a_spike_is_a_polygon(self, overpass):
        overpass.answer_json(overpass_answer([with_spike(lonlat_box(MAPPED_BOX))]))
        [polygon] = fetch_overpass(overpass.url, BOX, timeout=5).polygons
        assert polygon.geom_type == "Polygon"  # the review page draws polygons' rings

    def test_ways_and_a_multipolygon_from_a_realistic_answer(self, overpass):
        answer = overpass_answer(existing_polygons())
        outer = shapely.box(32.5, 0.3, 32.5001, 0.3001)
        inner = shapely.box(32.50004, 0.30004, 32.50006, 0.30006)
        members = [
            {"type": "way", "ref": ref, "role": role, "geometry": geometry(ring.exterior)}
            for ref, role, ring in ((1, "outer", outer), (2, "inner", inner))
        ]
        relation = {"type": "relation", "id": 77, "members": members, "tags": TAGS}
        answer["elements"].append(relation)
        overpass.answer_json(answer)
        existing = fetch_overpass(overpass.url, BOX, timeout=5)
        assert existing.osm_ids == ("way/1000", "way/1001", "relation/77")
        assert existing.polygons[2].area == pytest.approx(outer.area - inner.area)
        (query,) = overpass.queries
        assert "[out:json]" in query and "(0.3500000,32.5900000,0.3600000,32.6000000)" in query

    @pytest.mark.parametrize(
        ("status", "body", "problem"),
        [
            (429, b"rate_limited", "Overpass answered HTTP 429"),
            (200, b"<html>busy</html>", "Overpass's answer is not JSON"),
            (200, json.dumps({"elements": [], "remark": "runtime error: Query timed out"}),
             "Overpass: runtime error: Query timed out"),
        ],
    )  # fmt: skip
    def test_bad_answers_are_one_line(self, overpass, status, body, problem):
        overpass.status = status
        overpass.body = body.encode() if isinstance(body, str) else body
        with pytest.raises(InputError, match=problem) as raised:
            fetch_overpass(overpass.url, BOX, timeout=5)
        assert str(raised.value).startswith(overpass.url)

    def test_no_answer_is_a_timeout(self, overpass):
        overpass.hang = True  # the server never answers: the timeout fires whatever the speed
        with pytest.raises(InputError, match=r"no answer from Overpass within 0\.2 s"):
            fetch_overpass(overpass.url, BOX, timeout=0.2)
