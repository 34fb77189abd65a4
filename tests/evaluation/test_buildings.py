"""Per-building scores: one-to-one matches at IoU >= 0.5, summed like pixel counts."""

import json

import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine

from benchmark.evaluation.buildings import (
    BuildingCounts,
    build_building_report,
    count_buildings,
    match_buildings,
    score_scene_buildings,
)
from tests.fixtures.rasters import TRANSFORM, write_raster


def box(x: float, y: float, w: float = 10, h: float = 10) -> shapely.Polygon:
    return shapely.box(x, y, x + w, y + h)


class TestMatching:
    def test_iou_threshold_is_inclusive(self):
        truth = [box(0, 0)]
        assert count_buildings([box(0, 0, 10, 5)], truth) == BuildingCounts(1, 0, 0)  # IoU 0.5
        assert count_buildings([box(0, 0, 10, 4.9)], truth) == BuildingCounts(0, 1, 1)

    def test_one_to_one(self):
        truth = [box(0, 0)]
        predicted = [box(0, 0), box(0.5, 0)]  # both overlap the building well: one counts
        assert count_buildings(predicted, truth) == BuildingCounts(tp=1, fp=1, fn=0)

    def test_greedy_by_iou_takes_the_best_pair(self):
        truth = [box(0, 0), box(9, 0)]
        predicted = [box(8, 0)]  # IoU 0.05 with the first, 0.82 with the second
        ((p, t, iou),) = match_buildings(predicted, truth)
        assert (p, t) == (0, 1) and iou == pytest.approx(9 / 11)

    def test_merged_buildings_count_as_one_found_one_missed(self):
        truth = [box(0, 0), box(11, 0)]
        assert count_buildings([box(0, 0, 21, 10)], truth) == BuildingCounts(0, 1, 2)
        assert count_buildings([box(0, 0, 12, 10)], truth) == BuildingCounts(1, 0, 1)

    def test_nothing_to_find_nothing_found(self):
        counts = count_buildings([], [])
        assert (counts.precision, counts.recall, counts.f1) == (1.0, 1.0, 1.0)

    def test_scores(self):
        counts = BuildingCounts(tp=6, fp=2, fn=4)
        assert counts.precision == 0.75 and counts.recall == 0.6
        assert counts.f1 == pytest.approx(2 * 6 / (2 * 6 + 2 + 4))

    def test_report_is_micro_per_city(self):
        report = build_building_report(
            {"kam/a": BuildingCounts(1, 0, 1), "kam/b": BuildingCounts(3, 1, 0),
             "dar/c": BuildingCounts(0, 2, 2)}
        )  # fmt: skip
        assert report["per_city"]["kam"]["tp"] == 4
        assert report["overall"] == BuildingCounts(4, 3, 3).to_dict()
        assert set(report["per_scene"]) == {"kam/a", "kam/b", "dar/c"}


class TestScoreScene:
    def test_traces_writes_and_scores(self, tmp_path):
        prob = np.zeros((1, 200, 200), np.uint8)
        prob[0, 20:80, 20:80] = 230  # found
        prob[0, 120:180, 120:180] = 230  # false
        uri = write_raster(tmp_path / "prob.tif", prob)

        def world(r0, c0, r1, c1):
            (x0, y0), (x1, y1) = TRANSFORM * (c0, r0), TRANSFORM * (c1, r1)
            return shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))

        truth = [
            world(22, 22, 80, 80),  # matches
            world(20, 120, 60, 160),  # missed
            world(190, 100, 260, 150),  # mostly outside: clipped to 10 x 50 px = 2.8 m², dropped
        ]
        geojson, gpkg = tmp_path / "s_buildings.geojson", tmp_path / "s_buildings.gpkg"
        counts, found = score_scene_buildings(uri, truth, 0.5, 0.3, str(geojson), str(gpkg))
        assert counts == BuildingCounts(tp=1, fp=1, fn=1)
        assert len(found) == 2 and gpkg.exists()
        assert len(json.loads(geojson.read_text())["features"]) == 2

    def test_an_instance_model_s_touching_buildings_score_apart(self, tmp_path):
        # Three 60 x 40 px houses in a row: one blob of P(body), told apart by P(contact).
        bands = np.zeros((3, 100, 160), np.uint8)
        bands[0, 20:80, 20:140] = 240
        for wall in (60, 100):
            bands[2, 20:80, wall - 3 : wall + 3] = 230  # contact along the shared walls
            bands[0, 20:80, wall - 3 : wall + 3] = 160  # the body less sure, still a building
        truth = [
            shapely.box(
                *rasterio.transform.array_bounds(60, 40, TRANSFORM * Affine.translation(col, 20))
            )
            for col in (20, 60, 100)
        ]
        out = str(tmp_path / "s_buildings")
        for count, expected in ((3, BuildingCounts(tp=3)), (1, BuildingCounts(fp=1, fn=3))):
            uri = write_raster(tmp_path / f"prob{count}.tif", bands[:count])
            counts, _ = score_scene_buildings(uri, truth, 0.5, 0.3, out + ".geojson", out + ".gpkg")
            assert counts == expected
