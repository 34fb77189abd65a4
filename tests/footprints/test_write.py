"""Footprint files: RFC 7946 GeoJSON and a GeoPackage, streamed, atomic, empty when need be."""

import json

import pyogrio
import pytest
import shapely
from shapely.geometry.polygon import orient

import benchmark.footprints.write as write
from benchmark.footprints.outlines import Footprint
from benchmark.footprints.write import write_footprints


def footprint(i: int) -> Footprint:
    square = orient(shapely.box(i, 0, i + 0.5, 0.5), sign=-1.0)  # clockwise on purpose
    lonlat = orient(shapely.box(32.5 + i * 1e-5, 0.3, 32.5 + i * 1e-5 + 5e-6, 0.300005), -1.0)
    return Footprint(square, lonlat, area_m2=0.25 + i, confidence=0.5 + i / 100)


@pytest.fixture
def outputs(tmp_path):
    return str(tmp_path / "a_buildings.geojson"), str(tmp_path / "a_buildings.gpkg")


class TestWriteFootprints:
    def test_rfc7946_geojson(self, outputs):
        geojson, gpkg = outputs
        assert write_footprints([footprint(0), footprint(1)], geojson, gpkg, "EPSG:32636") == 2
        data = json.loads(open(geojson).read())
        assert data["type"] == "FeatureCollection" and "crs" not in data
        first = data["features"][0]
        assert first["properties"] == {"building": "yes", "area_m2": 0.25, "confidence": 0.5}
        ring = shapely.Polygon(first["geometry"]["coordinates"][0])
        assert ring.exterior.is_ccw  # the right-hand rule
        assert all(len(str(v).split(".")[-1]) <= 7 for xy in ring.exterior.coords for v in xy)

    def test_geopackage_in_the_image_crs_in_batches(self, outputs, monkeypatch):
        monkeypatch.setattr(write, "GPKG_BATCH", 2)
        geojson, gpkg = outputs
        write_footprints([footprint(i) for i in range(5)], geojson, gpkg, "EPSG:32636")
        info = pyogrio.read_info(gpkg, layer="buildings")
        assert info["features"] == 5
        assert info["crs"] == "EPSG:32636"
        assert info["geometry_type"] == "Polygon"
        assert list(info["fields"]) == ["building", "area_m2", "confidence"]

    def test_no_buildings_gives_valid_empty_files(self, outputs):
        geojson, gpkg = outputs
        assert write_footprints([], geojson, gpkg, "EPSG:32636") == 0
        assert json.loads(open(geojson).read()) == {"type": "FeatureCollection", "features": []}
        assert pyogrio.read_info(gpkg, layer="buildings")["features"] == 0

    def test_a_failure_publishes_nothing(self, outputs, tmp_path):
        def failing():
            yield footprint(0)
            raise OSError("disk full")

        geojson, gpkg = outputs
        with pytest.raises(OSError, match="disk full"):
            write_footprints(failing(), geojson, gpkg, "EPSG:32636")
        assert list(tmp_path.iterdir()) == []
