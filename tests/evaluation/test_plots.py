"""Plots write readable PNGs from decimated reads."""

from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from matplotlib.figure import Figure
from rasterio.windows import Window

import benchmark.evaluation.plots as plots
from benchmark.data.submission import write_mask
from benchmark.evaluation.metrics import ConfusionCounts
from benchmark.evaluation.plots import (
    BUILDING_COLORS,
    building_colors,
    draw_outlines,
    plot_chip_predictions,
    plot_scene_overlay,
    plot_threshold_choice,
    plot_training_curves,
)
from tests.fixtures.buildings import BOXES, box_rasterizer
from tests.fixtures.rasters import TRANSFORM, png_shape, rgba, write_raster

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")


@pytest.fixture
def scene_and_prob(tmp_path: Path) -> tuple[str, str]:
    image = rgba(120, 160, seed=9)  # alpha 0 in rows < 60, columns < 80
    prob = np.zeros((1, 120, 160), np.uint8)
    for r0, c0, r1, c1 in BOXES:
        prob[0, r0 + 5 : r1 + 5, c0 : c1 - 8] = 230  # shifted and narrowed: TP, FP and FN
    return write_raster(tmp_path / "s.tif", image), write_raster(tmp_path / "s_prob.tif", prob)


class TestSceneOverlay:
    def test_writes_a_decimated_png(self, tmp_path, scene_and_prob, monkeypatch):
        image_uri, prob_uri = scene_and_prob
        shapes = []
        read = plots._read_decimated

        def recording_read(src, bands, shape, window=None):
            shapes.append(shape)
            return read(src, bands, shape, window)

        monkeypatch.setattr(plots, "_read_decimated", recording_read)
        png = tmp_path / "out" / "overlay.png"
        plot_scene_overlay(image_uri, prob_uri, box_rasterizer(BOXES), str(png), max_side=80)
        assert png_shape(png)[2] in (3, 4)
        assert set(shapes) == {(60, 80)}  # never the full-resolution scene

    def test_window_of_a_scene(self, tmp_path, scene_and_prob):
        image_uri, prob_uri = scene_and_prob
        window = Window(80, 60, 80, 60)  # the quarter with imagery
        with rasterio.open(prob_uri) as src:
            part = src.read(window=window)
            transform = src.window_transform(window)
        part_uri = write_raster(tmp_path / "part.tif", part, transform=transform)
        png = tmp_path / "w.png"
        plot_scene_overlay(
            image_uri, part_uri, box_rasterizer(BOXES), str(png), max_side=40, window=window
        )
        assert png_shape(png)[2] in (3, 4)

    def test_given_counts_set_the_title(self, tmp_path, scene_and_prob):
        image_uri, prob_uri = scene_and_prob
        png = tmp_path / "o.png"
        counts = ConfusionCounts(tp=1, fp=1, fn=0)
        plot_scene_overlay(image_uri, prob_uri, box_rasterizer(BOXES), str(png), counts=counts)
        assert png.stat().st_size > 1000

    def test_with_footprints(self, tmp_path, scene_and_prob):
        image_uri, prob_uri = scene_and_prob
        png = tmp_path / "o.png"
        footprint = shapely.box(*rasterio.transform.array_bounds(30, 40, TRANSFORM))
        rasterize = box_rasterizer(BOXES)
        plot_scene_overlay(image_uri, prob_uri, rasterize, str(png), buildings=[footprint])
        assert png.stat().st_size > 1000


class TestDrawOutlines:
    def test_in_the_pictures_pixels(self):
        ax = Figure().subplots()
        transform = Affine(0.2, 0, 100, 0, -0.2, 50)  # a picture's pixels: 0.2 units
        draw_outlines(ax, [shapely.box(101, 48, 103, 49)], transform)
        (ring,) = ax.collections[0].get_segments()
        # columns 5 to 15, rows 5 to 10; imshow puts pixel centres on whole numbers
        assert ring.min(axis=0) == pytest.approx((4.5, 4.5))
        assert ring.max(axis=0) == pytest.approx((14.5, 9.5))

    def test_a_colour_per_polygon(self):
        ax = Figure().subplots()
        square = shapely.box(0, 0, 1, 1)
        with_hole = square.buffer(3).difference(shapely.box(-1, -1, 2, 2))
        draw_outlines(ax, [square, with_hole], Affine.identity(), colors=["red", "blue"])
        colors = ax.collections[0].get_colors()
        assert len(colors) == 3  # the hole's ring takes its polygon's colour
        assert [tuple(c[:3]) for c in colors] == [(1, 0, 0), (0, 0, 1), (0, 0, 1)]


class TestBuildingColors:
    def test_touching_buildings_differ(self):
        # A row of six terraced houses, each touching the next, and a lone shed.
        row = [shapely.box(k, 0, k + 1, 1) for k in range(6)]
        colors = building_colors([*row, shapely.box(20, 20, 21, 21)], distance=0.1)
        assert all(colors[k] != colors[k + 1] for k in range(5))
        assert set(colors) <= set(BUILDING_COLORS)

    def test_more_neighbours_than_colours_still_colours_each(self):
        ring = [shapely.Point(0, 0).buffer(1)] * (len(BUILDING_COLORS) + 2)  # all overlapping
        assert len(building_colors(ring, distance=0.0)) == len(ring)
        assert building_colors([], distance=1.0) == []

    def test_overlay_outlines_each_building_in_its_colour(
        self, tmp_path, scene_and_prob, monkeypatch
    ):
        image_uri, prob_uri = scene_and_prob
        west, south, east, north = rasterio.transform.array_bounds(30, 40, TRANSFORM)
        middle = (west + east) / 2
        pair = [shapely.box(west, south, middle, north), shapely.box(middle, south, east, north)]
        drawn = []

        def recording(ax, polygons, transform, color=None, colors=None):
            drawn.append(colors)

        png = tmp_path / "o.png"
        monkeypatch.setattr(plots, "draw_outlines", recording)
        plot_scene_overlay(image_uri, prob_uri, box_rasterizer(BOXES), str(png), buildings=pair)
        ((first, second),) = drawn
        assert first != second


class TestTrainingCurves:
    def test_plots_what_the_log_has(self, tmp_path):
        log_csv = tmp_path / "log.csv"
        log_csv.write_text(
            "epoch,train_loss,train_time,val_loss,avg_f1,Building_f1,Building_precision,"
            "No Building_f1,valid_time\n"
            "0,0.9,0:01:02,0.8,0.5,0.3,0.4,0.9,0:00:10\n"
            "1,0.6,0:01:01,0.7,0.6,0.45,0.5,0.92,0:00:10\n"
            "2,0.5,0:01:03,0.65,0.66,0.5,0.55,0.93,0:00:10\n"
        )
        png = tmp_path / "curves.png"
        plot_training_curves(str(log_csv), str(png))
        assert png_shape(png)[0] > 100

    def test_lower_case_columns_without_validation(self, tmp_path):
        log_csv = tmp_path / "log.csv"
        log_csv.write_text("epoch,train_loss,building_f1\n0,1.0,0.2\n1,0.8,0.3\n")
        plot_training_curves(str(log_csv), str(tmp_path / "c.png"))
        assert (tmp_path / "c.png").stat().st_size > 1000

    def test_an_empty_log_is_skipped(self, tmp_path, caplog):
        log_csv = tmp_path / "log.csv"
        log_csv.write_text("epoch,train_loss\n")
        plot_training_curves(str(log_csv), str(tmp_path / "c.png"))
        assert not (tmp_path / "c.png").exists()
        assert "no epochs logged" in caplog.text


@pytest.mark.parametrize("threshold", [0.5, 0.276])
def test_threshold_choice(tmp_path, threshold):
    """Both histograms on a log scale, with empty levels; the sweep holds the threshold."""
    pos = np.zeros(256, np.int64)
    pos[60:250] = 30
    neg = np.zeros(256, np.int64)
    neg[40:70] = 5000
    sweep = {t: 0.4 for t in (0.25, threshold, 0.5)}
    plot_threshold_choice(pos, neg, sweep, threshold, str(tmp_path / "t.png"))
    assert png_shape(tmp_path / "t.png")[0] > 100


def test_chip_predictions_grid(tmp_path):
    chips, masks = [], []
    for i in range(5):
        chips.append(write_raster(tmp_path / f"c{i}.tif", rgba(64, 64, seed=i), crs=None))
        m = np.zeros((64, 64), np.uint8)
        m[10 : 20 + 5 * i, 15:40] = 1
        masks.append(str(tmp_path / f"m{i}.tif"))
        write_mask(m, masks[-1])
    png = tmp_path / "preview.png"
    plot_chip_predictions(chips, masks, str(png), max_chips=4)
    height, width, _ = png_shape(png)
    assert width > height  # 4 chips: one row
