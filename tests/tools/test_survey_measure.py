"""The survey measure's tiling and scoring, on a tiny GeoTIFF and boxes whose answer is known."""

import itertools

import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine

from tools.survey_measure import (
    cut_survey,
    duplicate_pairs_of,
    inner_edges,
    markdown_row,
    score_layers,
    still_cut,
    tile_offsets,
)

ORIGIN = Affine(0.075, 0, 454788.0, 0, -0.075, 38859.0)  # the sample's 7.5 cm, EPSG:32636


@pytest.fixture
def scene(tmp_path):
    """A 4-band 100 x 80 px GeoTIFF whose pixels say where they are."""
    path = tmp_path / "scene.tif"
    rows, cols = np.mgrid[0:80, 0:100]
    data = np.stack([cols, rows, cols + rows, np.full_like(cols, 255)]).astype("uint8")
    profile = {"driver": "GTiff", "width": 100, "height": 80, "count": 4, "dtype": "uint8",
               "crs": "EPSG:32636", "transform": ORIGIN}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def test_offsets_cover_the_scene_with_the_overlap():
    starts, side = tile_offsets(1000, 4, 0.2)
    assert side == 295  # 1000 / (1 + 3 * 0.8), rounded up
    assert starts[0] == 0 and starts[-1] + side == 1000
    overlaps = [side - (b - a) for a, b in itertools.pairwise(starts)]
    assert all(abs(o / side - 0.2) < 0.01 for o in overlaps)
    assert tile_offsets(1000, 1, 0.2) == ([0], 1000)


def test_tiles_are_geotiffs_on_the_scenes_grid(scene, tmp_path):
    tiles = cut_survey(scene, tmp_path / "tiles", grid=3, overlap=0.25)
    assert len(tiles) == 9
    assert sorted(p.stem for p in (tmp_path / "tiles").glob("*.tif")) == sorted(
        t.name for t in tiles
    )
    with rasterio.open(scene) as src:
        whole = src.read()
    for tile in tiles:
        with rasterio.open(tmp_path / "tiles" / f"{tile.name}.tif") as src:
            col, row = int(tile.window.col_off), int(tile.window.row_off)
            assert src.crs.to_epsg() == 32636
            assert src.transform == ORIGIN * Affine.translation(col, row)
            h, w = src.height, src.width
            assert (src.read() == whole[:, row : row + h, col : col + w]).all()
    first, second = tiles[0].window, tiles[1].window
    assert first.width - second.col_off == pytest.approx(0.25 * first.width, abs=1)


def box(x: float, y: float, side: float = 10.0) -> shapely.Polygon:
    """A square house at (x, y)."""
    return shapely.box(x, y, x + side, y + side)


TRUTH = [box(20 * i, 0) for i in range(5)]


def test_identical_layers_score_alike_and_have_no_duplicates():
    layer = [*TRUTH[:4], box(200, 200)]
    scores = score_layers(layer, list(layer), TRUTH)
    assert scores["merged_f1"] == scores["whole_f1"] == pytest.approx(0.8)
    assert scores["f1_difference"] == 0
    assert scores["duplicate_pairs"] == 0
    assert scores["merged_matching_whole"] == 5


def test_duplicates_are_pairs_the_merges_rule_calls_one_building():
    # IoU 0.82 with box 0; 0.25 with box 2 (0.4 of either: not one); IoU 0.2 inside box 3.
    copies = [*TRUTH, box(1, 0), box(40, 6), shapely.box(60, 0, 62, 10)]
    assert [(i, j) for i, j, _ in duplicate_pairs_of(copies)] == [(0, 5), (3, 7)]
    copies = copies[:-1]
    scores = score_layers(copies, TRUTH, TRUTH)
    assert scores["duplicate_pairs"] == 1
    assert scores["merged_precision"] == pytest.approx(5 / 7, abs=1e-4)
    assert scores["f1_difference"] > 0.01


def test_only_pieces_at_inner_edges_count_as_cut():
    scene = shapely.box(0, 0, 100, 50)
    edges = inner_edges({"a": shapely.box(0, 0, 60, 50), "b": shapely.box(40, 0, 100, 50)},
                        scene, tolerance=0.15)  # fmt: skip
    geoms = [box(50, 10, 10), box(0, 10), box(10, 10), box(45, 30, 10)]
    images = ["a", "a", "a", "a+b"]  # at a's inner edge; at the scene's; inside; joined
    assert still_cut(geoms, images, edges, 0.15) == 1


def test_markdown_is_one_row():
    results = {"date": "2026-12-07", "scene": "kam/x", "tiles": 16, "overlap": 0.2,
               "f1_difference": 0.0, "duplicate_pairs": 0, "buildings_before_merge": 9,
               "merged_buildings": 5, "cut_after_merge": 0, "area_km2": 0.02,
               "km2_per_cpu_hour": 3.0, "machine": "cpu"}  # fmt: skip
    for name in ("whole", "merged"):
        results |= {f"{name}_precision": 1.0, f"{name}_recall": 0.5, f"{name}_f1": 2 / 3}
    lines = markdown_row(results).splitlines()
    assert len(lines) == 3
    assert "1.000/0.500/0.667" in lines[2]
