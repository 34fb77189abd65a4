"""Micro Jaccard arithmetic, streamed scene evaluation and the threshold sweep, eval reports."""

from dataclasses import astuple
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from rasterio.windows import Window

from benchmark.errors import InputError
from benchmark.evaluation.metrics import (
    ConfusionCounts,
    build_eval_report,
    count_confusion,
    counts_from_histograms,
    evaluate_scene,
)
from benchmark.inference.forward import probability_to_mask
from tests.fixtures.buildings import BOXES, box_rasterizer
from tests.fixtures.rasters import TRANSFORM, rgba, write_raster


@pytest.fixture
def scored_scene(tmp_path: Path):
    """A 100 x 130 RGBA scene (alpha-0 notch), a probability raster on its grid, the truth."""
    image = rgba(100, 130, seed=7)
    image_uri = write_raster(tmp_path / "scene.tif", image)
    rasterize_window = box_rasterizer(BOXES)
    truth = rasterize_window(TRANSFORM, (100, 130)).astype(bool)
    rng = np.random.default_rng(8)
    prob = np.where(truth, rng.integers(60, 256, truth.shape), rng.integers(0, 200, truth.shape))
    prob_uri = write_raster(tmp_path / "prob.tif", prob[None].astype(np.uint8))
    return image_uri, prob_uri, rasterize_window, prob.astype(np.uint8), truth, image[3] == 255


class TestConfusionCounts:
    def test_jaccard_precision_recall_f1(self):
        c = ConfusionCounts(tp=2, fp=1, fn=1, tn=10)
        assert c.jaccard == 0.5
        assert c.precision == pytest.approx(2 / 3)
        assert c.recall == pytest.approx(2 / 3)
        assert c.f1 == pytest.approx(2 / 3)

    def test_nothing_to_find_and_nothing_found_is_perfect(self):
        c = ConfusionCounts(tn=5)
        assert (c.jaccard, c.precision, c.recall, c.f1) == (1.0, 1.0, 1.0, 1.0)
        assert ConfusionCounts(fn=3).jaccard == 0.0

    def test_sum_and_dict(self):
        total = ConfusionCounts(1, 2, 3, 4) + ConfusionCounts(10, 20, 30, 40)
        assert total == ConfusionCounts(11, 22, 33, 44)
        assert total.to_dict() == {
            "jaccard": 11 / 66,
            "precision": 11 / 33,
            "recall": 11 / 44,
            "f1": 22 / 77,
            "tp": 11,
            "fp": 22,
            "fn": 33,
            "tn": 44,
        }


def test_count_confusion_on_hand_made_masks():
    pred = np.array([[1, 1, 0], [1, 0, 0]])
    truth = np.array([[1, 0, 1], [1, 0, 1]])
    assert count_confusion(pred, truth) == ConfusionCounts(tp=2, fp=1, fn=2, tn=1)
    valid = np.array([[True, True, False], [True, True, True]])
    assert count_confusion(pred, truth, valid) == ConfusionCounts(tp=2, fp=1, fn=1, tn=1)


def test_histogram_counts_follow_the_mask_rule():
    prob = np.arange(256, dtype=np.uint8)
    truth = prob % 3 == 0
    pos = np.bincount(prob[truth], minlength=256)
    neg = np.bincount(prob[~truth], minlength=256)
    for t, counts in counts_from_histograms(pos, neg, [0.0, 0.2, 0.5, 0.999]).items():
        assert counts == count_confusion(probability_to_mask(prob, t), truth)


class TestEvaluateScene:
    def test_threshold_sweep_equals_direct_counting(self, scored_scene):
        image_uri, prob_uri, rasterize_window, prob, truth, valid = scored_scene
        thresholds = (0.1, 0.5, 0.73, 0.9)
        # Small blocks: the sum over blocks must equal the count over the whole scene.
        swept = evaluate_scene(prob_uri, image_uri, rasterize_window, thresholds, block_size=32)
        assert list(swept) == list(thresholds)
        for t in thresholds:
            assert swept[t] == count_confusion(probability_to_mask(prob, t), truth, valid)
        assert sum(astuple(swept[0.5])) == valid.sum()  # alpha-0 pixels are not scored
        assert 0 < swept[0.5].jaccard < 1

    def test_a_window_of_the_scene_is_scored_on_its_grid(self, scored_scene, tmp_path):
        """As eval scores a window that was resampled to a GSD: in the scene, at its pixels."""
        image_uri, _, rasterize_window, prob, truth, valid = scored_scene
        window = Window(30, 20, 70, 50)
        rows, cols = window.toslices()
        transform = TRANSFORM * Affine.translation(30, 20)
        part = write_raster(tmp_path / "part.tif", prob[None, rows, cols], transform=transform)
        swept = evaluate_scene(part, image_uri, rasterize_window, (0.5,), 16, window=window)
        expected = probability_to_mask(prob[rows, cols], 0.5)
        assert swept[0.5] == count_confusion(expected, truth[rows, cols], valid[rows, cols])
        with pytest.raises(InputError, match=r"not on the grid of .*scene\.tif Window\(col_off=31"):
            evaluate_scene(part, image_uri, rasterize_window, window=Window(31, 20, 70, 50))

    def test_probabilities_of_two_bands_or_not_uint8_are_one_line(self, scored_scene, tmp_path):
        image_uri, _, rasterize_window, prob, _, _ = scored_scene
        two = write_raster(tmp_path / "two.tif", np.stack([prob, prob]).astype(np.uint8))
        with pytest.raises(InputError, match=r"^\S*two\.tif: 2 probability bands; expected 1 "):
            evaluate_scene(two, image_uri, rasterize_window)
        floats = write_raster(tmp_path / "floats.tif", prob[None].astype(np.float32) / 255)
        with pytest.raises(InputError, match=r"floats\.tif: float32 pixels; expected uint8"):
            evaluate_scene(floats, image_uri, rasterize_window)

    def test_probabilities_on_another_grid_are_refused(self, scored_scene, tmp_path):
        image_uri, _, rasterize_window, prob, _, _ = scored_scene
        other = write_raster(tmp_path / "other.tif", prob[None, :90])
        with pytest.raises(InputError, match="not on the grid of"):
            evaluate_scene(other, image_uri, rasterize_window)


class TestEvalReport:
    per_scene = {
        "kam/small": ConfusionCounts(tp=1, fp=0, fn=1, tn=8),  # Jaccard 0.5
        "kam/big": ConfusionCounts(tp=90, fp=10, fn=0, tn=900),  # Jaccard 0.9
        "acc/x": ConfusionCounts(tp=5, fp=5, fn=0, tn=0),  # Jaccard 0.5
    }

    def test_structure_and_micro_average(self):
        report = build_eval_report(self.per_scene)
        assert set(report) == {"metric", "overall", "mean_scene_jaccard", "per_city", "per_scene"}
        assert list(report["per_city"]) == ["acc", "kam"]
        assert list(report["per_scene"]) == ["acc/x", "kam/big", "kam/small"]
        assert report["per_city"]["kam"]["tp"] == 91
        assert report["per_city"]["kam"]["jaccard"] == pytest.approx(91 / 102)
        assert report["overall"]["jaccard"] == pytest.approx(96 / 112)

    def test_micro_is_not_the_mean_of_scenes(self):
        report = build_eval_report(self.per_scene)
        assert report["mean_scene_jaccard"] == pytest.approx((0.5 + 0.9 + 0.5) / 3)
        assert report["overall"]["jaccard"] > report["mean_scene_jaccard"] + 0.2

    def test_empty(self):
        report = build_eval_report({})
        assert report["overall"]["tp"] == 0
        assert report["mean_scene_jaccard"] is None
