"""The conflation measure's halves and counts, on boxes whose answer is known."""

import geopandas as gpd
import shapely

from tools.conflation_measure import half_removed, measure_seed

TRUTH = gpd.GeoDataFrame(
    {"osm_id": [f"way/{i}" for i in range(6)], "building": "yes"},
    geometry=[shapely.box(455000 + 20 * i, 39000, 455010 + 20 * i, 39010) for i in range(6)],
    crs="EPSG:32636",
)


def test_halves_are_seeded():
    assert half_removed(TRUTH, 3).sum() == 3
    assert (half_removed(TRUTH, 3) == half_removed(TRUTH, 3)).all()
    assert any((half_removed(TRUTH, 0) != half_removed(TRUTH, s)).any() for s in range(1, 5))


def test_a_perfect_model_finds_every_removed_building_new():
    removed = half_removed(TRUTH, 0)
    counts = measure_seed(TRUTH[["geometry"]], TRUTH, removed)
    assert counts == {
        "removed": 3, "removed_found": 3, "removed_found_new": 3, "kept": 3,
        "kept_found_new": 0, "new": 3, "found": 6,
    }  # fmt: skip
