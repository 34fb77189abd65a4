"""The blend grid: its windows, weights that leave no seam, and windowed chips."""

import numpy as np
import pytest
import torch

from benchmark.data.windows import window_starts
from benchmark.inference.blending import BlendGrid, windowed_probabilities
from benchmark.inference.execution import execution_plan
from benchmark.inference.forward import batch_probabilities
from tests.fixtures.models import (
    FP32,
    conv_model,
    instance_model,
    pointwise_instance_model,
    pointwise_model,
)

PLAN = execution_plan(FP32)


class TestBlendGrid:
    @pytest.mark.parametrize(
        ("height", "width", "window", "overlap"), [(150, 200, 64, 32), (70, 64, 64, 8)]
    )
    def test_windows_are_the_planners(self, height, width, window, overlap):
        grid = BlendGrid.over(height, width, window, overlap)
        assert grid.rows == window_starts(height, window, overlap)
        assert grid.cols == window_starts(width, window, overlap)

    def test_overlap_is_at_most_half_a_window(self):
        assert BlendGrid.over(10, 200, 64, 60).cols == window_starts(200, 64, 32)

    @pytest.mark.parametrize("overlap", [0, 5, 16])
    def test_weights_fit_the_raster_and_keep_its_border(self, overlap):
        grid = BlendGrid.over(40, 90, 32, overlap)
        for start, w in grid.col_weights.items():
            assert len(w) == min(32, 90 - start)
        first, *_, last = grid.col_weights.values()
        assert first[0] == 1 and last[-1] == 1  # no neighbour beyond the border
        assert (grid.col_cover > 0).all() and len(grid.col_cover) == 90

    def test_ramps_of_neighbours_sum_to_one(self):
        grid = BlendGrid.over(32, 96, 32, 8)  # columns 0, 24, 48, 64: the last one flush
        np.testing.assert_allclose(grid.col_cover[:64], 1, atol=1e-6)


class TestWindowedProbabilities:
    images = torch.from_numpy(np.random.default_rng(7).integers(0, 255, (2, 3, 64, 80), np.uint8))

    @pytest.mark.parametrize(("window", "overlap"), [(24, 0), (24, 6), (40, 16)])
    def test_a_pointwise_model_in_windows_is_the_whole_image(self, window, overlap):
        model = pointwise_model()
        whole = batch_probabilities(model, self.images, PLAN, tta=False)
        windowed = windowed_probabilities(model, self.images, PLAN, False, window, overlap)
        torch.testing.assert_close(windowed, whole, atol=1e-6, rtol=0)

    def test_blending_hides_the_windows_edges(self):
        model = conv_model()
        whole = batch_probabilities(model, self.images, PLAN, tta=False)
        errors = {
            overlap: (windowed_probabilities(model, self.images, PLAN, False, 32, overlap) - whole)
            .abs()
            .max()
            for overlap in (0, 16)
        }
        assert errors[16] < errors[0] / 2

    def test_images_no_larger_than_a_window_run_whole(self):
        model = conv_model()
        whole = batch_probabilities(model, self.images, PLAN, tta=False)
        torch.testing.assert_close(
            windowed_probabilities(model, self.images, PLAN, False, 80, 8), whole
        )

    @pytest.mark.parametrize(("window", "overlap"), [(24, 0), (40, 16)])
    def test_every_band_of_an_instance_model_is_blended(self, window, overlap):
        model = pointwise_instance_model()
        whole = batch_probabilities(model, self.images, PLAN, tta=False)
        windowed = windowed_probabilities(model, self.images, PLAN, False, window, overlap)
        assert windowed.shape == (2, 3, 64, 80)
        torch.testing.assert_close(windowed, whole, atol=1e-6, rtol=0)

    def test_blending_hides_the_windows_edges_in_every_band(self):
        model = instance_model(5)
        whole = batch_probabilities(model, self.images, PLAN, tta=False)
        errors = {
            overlap: (windowed_probabilities(model, self.images, PLAN, False, 32, overlap) - whole)
            .abs()
            .amax(dim=(0, 2, 3))
            for overlap in (0, 16)
        }
        assert (errors[16] < errors[0] / 2).all()
