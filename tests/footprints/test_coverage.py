"""The coverage grid: buildings found and in OSM per cell, as JSON and a picture."""

import json

import shapely
from PIL import Image

from benchmark.footprints.coverage import coverage_grid, write_coverage
from tests.footprints.conftest import metre_box


def test_counts_per_cell(tmp_path):
    found = [metre_box(10, 10, 20, 20), metre_box(30, 30, 40, 40), metre_box(150, 10, 160, 20)]
    status = ["mapped", "new", "new"]
    area = metre_box(0, 0, 200, 100).bounds
    grid = coverage_grid(found, status, area, cell_size=100)
    assert grid.found.tolist() == [[2, 1]]
    assert (grid.mapped + grid.changed).tolist() == [[1, 0]]
    write_coverage(grid, str(tmp_path / "c.json"), str(tmp_path / "c.png"), "test")
    report = json.loads((tmp_path / "c.json").read_text())
    assert (report["found"], report["in_osm"], report["new"]) == (3, 1, 2)
    cells = {(c["row"], c["col"]): (c["found"], c["in_osm"]) for c in report["cells"]}
    assert cells == {(0, 0): (2, 1), (0, 1): (1, 0)}
    cell = shapely.box(*report["cells"][0]["bounds_lonlat"])
    assert cell.contains(found[0]) and cell.contains(found[1])
    assert Image.open(tmp_path / "c.png").format == "PNG"
