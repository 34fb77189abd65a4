"""Tracing in blocks: buildings cut by block edges come out whole, once, with their confidence."""

from pathlib import Path

import numpy as np
import pytest
import shapely
from scipy import ndimage

from benchmark.errors import InputError
from benchmark.footprints.vectorize import vectorize_probabilities
from tests.fixtures.rasters import write_raster


def prob_raster(path: Path, prob: np.ndarray) -> str:
    return write_raster(path, prob[None].astype(np.uint8))


def traced(path: str, block_size: int) -> list:
    return list(vectorize_probabilities(path, threshold=0.5, block_size=block_size))


class TestVectorize:
    def test_a_building_across_four_blocks_is_one_polygon(self, tmp_path):
        prob = np.zeros((128, 128), np.uint8)
        prob[40:90, 30:100] = 200
        prob[40:50, 30:40] = 250  # confidence is the mean over all the pieces' pixels
        buildings = traced(prob_raster(tmp_path / "p.tif", prob), block_size=64)
        assert len(buildings) == 1
        (building,) = buildings
        assert building.polygon.equals(shapely.box(30, 40, 100, 90))
        assert building.pixels == 50 * 70
        assert building.confidence == pytest.approx(prob[40:90, 30:100].mean() / 255)

    def test_a_u_shape_cut_twice_by_one_edge_is_one_building(self, tmp_path):
        prob = np.zeros((64, 64), np.uint8)
        prob[10:50, 10:20] = prob[10:50, 40:50] = prob[40:50, 10:50] = 255  # U, open at the top
        buildings = traced(prob_raster(tmp_path / "p.tif", prob), block_size=32)
        assert len(buildings) == 1
        assert buildings[0].pixels == int((prob > 127).sum())

    def test_corner_contact_across_an_edge_stays_two_buildings(self, tmp_path):
        prob = np.zeros((64, 64), np.uint8)
        prob[20:32, 20:32] = prob[32:44, 32:44] = 255  # touch at the corner (32, 32) only
        assert len(traced(prob_raster(tmp_path / "p.tif", prob), block_size=32)) == 2

    def test_blocks_change_nothing(self, tmp_path):
        rng = np.random.default_rng(3)
        smooth = ndimage.gaussian_filter(rng.random((200, 230)), 4)
        prob = (255 * (smooth > np.quantile(smooth, 0.6))).astype(np.uint8)
        path = prob_raster(tmp_path / "p.tif", prob)
        whole = traced(path, block_size=1024)
        blocked = traced(path, block_size=37)
        assert len(blocked) == len(whole) == ndimage.label(prob > 127)[1]
        key = lambda b: (b.pixels, b.polygon.bounds)  # noqa: E731
        for a, b in zip(sorted(whole, key=key), sorted(blocked, key=key), strict=True):
            assert a.polygon.normalize().equals(b.polygon.normalize())
            assert a.pixels == b.pixels

    def test_no_building(self, tmp_path):
        assert traced(prob_raster(tmp_path / "p.tif", np.full((50, 50), 100)), 16) == []


def test_a_raster_of_two_bands_is_one_line(tmp_path):
    path = write_raster(tmp_path / "two.tif", np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(InputError, match=r"two\.tif: 2 probability bands; expected 1 .* or 3 "):
        list(vectorize_probabilities(path, 0.5))
