"""The demo's closing summary: the per-building line says how many found buildings OSM has."""

from benchmark.cli.summary import describe_building_scores


def test_found_buildings_in_osm_already():
    overall = {"f1": 0.4, "precision": 0.5, "recall": 0.333, "tp": 5, "fp": 5, "fn": 10}
    line = describe_building_scores({"buildings": {"overall": overall}})
    assert "5 of 15 buildings found, 5 false" in line
    assert line.endswith("5 of 10 found buildings are in OSM already")
    assert describe_building_scores({}) is None
