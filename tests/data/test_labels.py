import json
import logging
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from pyproj import Transformer
from rasterio.transform import from_origin
from rasterio.windows import Window
from shapely.geometry import box, mapping

from benchmark.data.labels import (
    LabelRasterizer,
    rasterize_labels,
    read_building_labels,
    write_labels_geojson,
)
from benchmark.errors import InputError

KAMPALA = "data/kampala_sample/train_tier_1/kam"
NIA_LABELS = "data/opencities_stac_nia/nia/825a50-labels/825a50.geojson"
BOWTIE = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}


def _write(tmp_path: Path, obj, name: str = "labels.geojson") -> str:
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return str(path)


def _fc(*geometries, crs: dict | str | None = None) -> dict:
    fc = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": {}, "geometry": g} for g in geometries],
    }
    if crs:
        fc["crs"] = crs if isinstance(crs, dict) else {"type": "name", "properties": {"name": crs}}
    return fc


def _to_wgs84(geom, crs: str):
    to_wgs84 = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform
    return shapely.ops.transform(to_wgs84, geom)


class TestRead:
    def test_real_invalid_polygon_is_repaired(self, caplog):
        caplog.set_level(logging.INFO, logger="benchmark.data.labels")
        geoms, report = read_building_labels(f"{KAMPALA}/94f080-labels/94f080.geojson")
        assert (report.features, report.repaired, report.kept) == (58, 1, 58)
        assert all(g.is_valid and g.geom_type in ("Polygon", "MultiPolygon") for g in geoms)
        assert "94f080.geojson: 58 of 58 buildings kept (1 invalid repaired" in caplog.text

    def test_real_nia_labels(self):
        geoms, report = read_building_labels(NIA_LABELS)
        assert (report.kept, report.repaired) == (634, 0)
        assert 2.0 < geoms[0].centroid.x < 2.01 and 13.57 < geoms[0].centroid.y < 13.59

    def test_null_empty_and_non_polygon_geometries_are_dropped_and_counted(self, tmp_path):
        lines_and_square = {
            "type": "GeometryCollection",
            "geometries": [
                mapping(box(5, 5, 6, 6)),
                {"type": "LineString", "coordinates": [[0, 0], [1, 1]]},
            ],
        }
        uri = _write(
            tmp_path,
            _fc(
                mapping(box(0, 0, 1, 1)),
                None,
                {"type": "Polygon", "coordinates": []},
                BOWTIE,
                {"type": "Point", "coordinates": [0, 0]},
                lines_and_square,
            ),
        )
        geoms, report = read_building_labels(uri)
        counts = (report.kept, report.dropped_null, report.dropped_empty, report.repaired)
        assert counts == (3, 1, 1, 1) and report.dropped_not_polygon == 1
        assert geoms[1].geom_type == "MultiPolygon" and geoms[1].area == pytest.approx(0.5)
        assert geoms[2].equals(box(5, 5, 6, 6))
        assert report.summary() == (
            "3 of 6 buildings kept (1 invalid repaired, 1 null, 1 empty and "
            "1 non-polygon geometries dropped)"
        )

    def test_a_feature_without_geometry_member_is_null(self, tmp_path):
        uri = _write(tmp_path, {"type": "FeatureCollection", "features": [{"type": "Feature"}]})
        assert read_building_labels(uri)[1].dropped_null == 1

    def test_empty_feature_collection_means_no_buildings(self, tmp_path):
        geoms, report = read_building_labels(_write(tmp_path, _fc()))
        assert geoms == [] and (report.features, report.kept) == (0, 0)

    @pytest.mark.parametrize(
        "obj",
        [
            {"type": "Feature", "properties": None, "geometry": mapping(box(0, 0, 1, 1))},
            mapping(box(0, 0, 1, 1)),
            {"type": "GeometryCollection", "geometries": [mapping(box(0, 0, 1, 1))]},
        ],
        ids=["feature", "polygon", "geometry-collection"],
    )
    def test_a_single_feature_or_bare_geometry(self, tmp_path, obj):
        geoms, _ = read_building_labels(_write(tmp_path, obj))
        assert [g.bounds for g in geoms] == [(0, 0, 1, 1)]

    def test_3d_coordinates_become_2d(self, tmp_path):
        square = {"type": "Polygon", "coordinates": [[[0, 0, 5], [1, 0, 5], [1, 1, 5], [0, 0, 5]]]}
        assert not read_building_labels(_write(tmp_path, _fc(square)))[0][0].has_z

    @pytest.mark.parametrize(
        "crs",
        [
            "urn:ogc:def:crs:EPSG::32636",
            "EPSG:32636",
            {"type": "EPSG", "properties": {"code": 32636}},
        ],
    )
    def test_crs_member_in_utm_is_honored(self, tmp_path, crs):
        utm = box(455_000, 39_000, 455_010, 39_010)
        geoms, report = read_building_labels(_write(tmp_path, _fc(mapping(utm), crs=crs)))
        assert report.source_crs == "EPSG:32636" and report.summary().endswith("from EPSG:32636)")
        expected = _to_wgs84(utm, "EPSG:32636")
        assert shapely.equals_exact(geoms[0], expected, tolerance=1e-9)
        assert 32.5 < expected.centroid.x < 32.7 and 0.3 < expected.centroid.y < 0.4  # Kampala

    @pytest.mark.parametrize(
        "crs", ["urn:ogc:def:crs:OGC:1.3:CRS84", "EPSG:4326", "urn:ogc:def:crs:EPSG::4326"]
    )
    def test_lon_lat_crs_members_keep_lon_lat_order(self, tmp_path, crs):
        square = box(32.59, 0.35, 32.5901, 0.3501)
        geoms, report = read_building_labels(_write(tmp_path, _fc(mapping(square), crs=crs)))
        assert geoms[0].equals(square) and report.source_crs == "EPSG:4326"

    @pytest.mark.parametrize(
        ("content", "problem"),
        [
            ("{oops", "not valid JSON"),
            ('{"foo": 1}', r"not GeoJSON \(no 'type' member\)"),
            ("[1, 2]", r"not GeoJSON \(no 'type' member\)"),
            ('{"type": "Point"}', r"not GeoJSON building labels \(type 'Point'\)"),
            ('{"type": "FeatureCollection"}', "not GeoJSON .a FeatureCollection without"),
            (
                '{"type": "FeatureCollection", "features": [3]}',
                r"not GeoJSON \(feature 0 is not an object\)",
            ),
            (json.dumps(_fc({"type": "Polygon", "coordinates": "x"})), "malformed geometry"),
            (json.dumps(_fc(crs="EPSG:nope")), "unreadable crs member"),
            (json.dumps(_fc(crs={"type": "link"})), "unreadable crs member"),
        ],
    )
    def test_unreadable_label_files_are_one_line_errors_naming_the_file(
        self, tmp_path, content, problem
    ):
        with pytest.raises(InputError, match=rf"labels\.geojson: {problem}") as error:
            read_building_labels(_write(tmp_path, content))
        assert "\n" not in str(error.value)

    def test_missing_file(self, tmp_path):
        with pytest.raises(InputError, match=r"none\.geojson: label file not found"):
            read_building_labels(str(tmp_path / "none.geojson"))


def test_written_labels_are_plain_rfc7946_and_read_back(tmp_path):
    geoms = [box(32.59, 0.35, 32.5901, 0.3501), box(32.5902, 0.35, 32.5903, 0.3501)]
    out = tmp_path / "sub" / "out.geojson"
    write_labels_geojson(geoms, str(out))
    data = json.loads(out.read_text())
    assert data["type"] == "FeatureCollection" and "crs" not in data
    assert sorted(p.name for p in out.parent.iterdir()) == ["out.geojson"]  # no temp file left
    back, report = read_building_labels(str(out))
    assert report.kept == 2
    assert all(shapely.equals_exact(a, b, 1e-12) for a, b in zip(back, geoms, strict=True))


class TestRasterize:
    @pytest.mark.parametrize(("scene", "fraction"), [("8a5983", 0.2601), ("94f080", 0.2495)])
    def test_real_labels_match_the_documented_building_fraction(self, scene, fraction):
        geoms, _ = read_building_labels(f"{KAMPALA}/{scene}-labels/{scene}.geojson")
        with rasterio.open(f"{KAMPALA}/{scene}/{scene}.tif") as src:
            truth = rasterize_labels(geoms, src.crs, src.transform, (src.height, src.width))
            valid = src.read(4) == 255
        assert truth.dtype == np.uint8 and set(np.unique(truth)) == {0, 1}
        assert truth[valid].mean() == pytest.approx(fraction, abs=0.005)  # shared/data README

    def test_windows_match_the_whole_scene(self):
        geoms, _ = read_building_labels(f"{KAMPALA}/8a5983-labels/8a5983.geojson")
        with rasterio.open(f"{KAMPALA}/8a5983/8a5983.tif") as src:
            rasterizer = LabelRasterizer(geoms, src.crs)
            whole = rasterizer.window(src.transform, (src.height, src.width))
            for row in range(0, src.height, 300):
                for col in range(0, src.width, 400):
                    window = Window(col, row, min(400, src.width - col), min(300, src.height - row))
                    part = rasterizer.window(
                        src.window_transform(window), (window.height, window.width)
                    )
                    assert np.array_equal(part, whole[window.toslices()])

    @pytest.mark.parametrize(
        ("crs", "origin"),
        [("EPSG:32737", (530_000.0, 9_960_000.0)), ("EPSG:32631", (400_000.0, 1_500_000.0))],
    )
    def test_other_utm_zones(self, crs, origin):
        transform = from_origin(*origin, 0.075, 0.075)
        x0, y0 = transform @ (2, 2)
        x1, y1 = transform @ (6, 5)
        building = _to_wgs84(box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)), crs)
        expected = np.zeros((8, 8), dtype=np.uint8)
        expected[2:5, 2:6] = 1
        assert np.array_equal(rasterize_labels([building], crs, transform, (8, 8)), expected)
        right_half = LabelRasterizer([building], crs).window(
            transform @ transform.translation(4, 0), (8, 4)
        )
        assert np.array_equal(right_half, expected[:, 4:])

    def test_nothing_to_burn(self):
        transform = from_origin(455_000.0, 39_000.0, 0.075, 0.075)
        far = _to_wgs84(box(0, 0, 1, 1), "EPSG:32636")
        for geoms in ([], [far]):
            assert not rasterize_labels(geoms, "EPSG:32636", transform, (4, 5)).any()
