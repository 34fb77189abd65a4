"""Window arithmetic: PREPROCESS tiles, sliding prediction windows, their edges, exact crops."""

from itertools import pairwise

import numpy as np
import pytest
from rasterio.windows import Window

from benchmark.data.windows import (
    centred_exact_tiling,
    exact_tiling_period,
    plan_windows,
    window_edges,
    window_starts,
)


class TestPlanWindows:
    @pytest.mark.parametrize("width", [1, 7, 64, 65, 100])
    @pytest.mark.parametrize("height", [1, 9, 64, 130])
    @pytest.mark.parametrize("size", [1, 8, 64, 1000])
    def test_windows_cover_every_pixel_exactly_once(self, width, height, size):
        cover = np.zeros((height, width), dtype=int)
        for w in plan_windows(width, height, size):
            assert 0 < w.width <= size and 0 < w.height <= size
            cover[w.row_off : w.row_off + w.height, w.col_off : w.col_off + w.width] += 1
        assert (cover == 1).all()

    def test_row_major_with_remainders_last(self):
        windows = plan_windows(25, 12, 10)
        assert [(w.col_off, w.row_off, w.width, w.height) for w in windows] == [
            (0, 0, 10, 10), (10, 0, 10, 10), (20, 0, 5, 10),
            (0, 10, 10, 2), (10, 10, 10, 2), (20, 10, 5, 2),
        ]  # fmt: skip

    @pytest.mark.parametrize("args", [(0, 5, 5), (5, 5, 0), (5, -1, 5)])
    def test_rejects_empty_plans(self, args):
        with pytest.raises(ValueError, match="bad window plan"):
            plan_windows(*args)


class TestWindowStarts:
    def test_the_last_window_is_flush_with_the_end(self):
        assert window_starts(200, 64, 0) == [0, 64, 128, 136]
        assert window_starts(200, 64, 32) == [0, 32, 64, 96, 128, 136]
        assert window_starts(192, 64, 0) == [0, 64, 128]

    def test_a_side_no_longer_than_a_window_is_one_window(self):
        assert window_starts(64, 64, 8) == window_starts(10, 64, 0) == [0]

    @pytest.mark.parametrize("length", [65, 100, 257])
    @pytest.mark.parametrize(("window", "overlap"), [(32, 0), (32, 16), (48, 5)])
    def test_windows_cover_the_side_sharing_at_least_the_overlap(self, length, window, overlap):
        starts = window_starts(length, window, overlap)
        assert starts[0] == 0 and starts[-1] + window == length
        for left, right in pairwise(starts):
            assert 0 < right - left <= window - overlap

    @pytest.mark.parametrize("overlap", [-1, 32, 40])
    def test_rejects_an_overlap_that_is_not_less_than_the_window(self, overlap):
        with pytest.raises(ValueError, match=f"overlap {overlap} must be"):
            window_starts(100, 32, overlap)


class TestExactTiling:
    def test_window_edges(self):
        assert window_edges(768, 256, 0) == [256, 512]
        assert window_edges(768, 256, 128) == [128, 256, 384, 512, 640]
        assert window_edges(200, 256, 0) == []

    def test_period_is_a_multiple_of_every_stride(self):
        assert exact_tiling_period(256, (0, 128)) == 256
        assert exact_tiling_period(256, (0, 64)) == 768

    def test_largest_centred_crop_every_tiling_fits(self):
        # The Kampala validation scene: 1273 x 1012 px.
        crop = centred_exact_tiling(Window(0, 0, 1273, 1012), 256, (0, 128))
        assert crop == Window(124, 122, 1024, 768)
        # Strides 256 and 192 both tile 256 + 768k px.
        crop = centred_exact_tiling(Window(10, 20, 1100, 1030), 256, (0, 64))
        assert crop == Window(48, 23, 1024, 1024)

    @pytest.mark.parametrize("overlap", [0, 16, 32])
    def test_the_crop_is_tiled_exactly(self, overlap):
        crop = centred_exact_tiling(Window(3, 5, 400, 300), 64, (0, overlap))
        for side in (int(crop.width), int(crop.height)):
            for each in (0, overlap):
                starts = window_starts(side, 64, each)
                assert all(b - a == 64 - each for a, b in pairwise(starts))

    def test_too_small_for_two_windows(self):
        with pytest.raises(ValueError, match="at least 512 px"):
            centred_exact_tiling(Window(0, 0, 1000, 500), 256, (0, 128))
