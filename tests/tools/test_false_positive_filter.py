"""The false-positive filter: features, the F1-best cut, fitting and refusing to fit."""

import math

import numpy as np
import pytest
import shapely

from benchmark.errors import InputError
from tools.false_positive_filter import (
    FEATURES,
    best_cut,
    features,
    fit_filter,
    true_positive_labels,
)


def test_features_of_a_square_and_of_an_l_shape():
    square = features(shapely.box(0, 0, 10, 10), 100.0, 0.8)
    assert len(square) == len(FEATURES)
    assert square == pytest.approx([math.log(100), 4.0, 1.0, 1.0, 1.0, 0.8])
    ell = features(shapely.Polygon([(0, 0), (20, 0), (20, 5), (5, 5), (5, 20), (0, 20)]), 175, 0.5)
    assert ell[2] < 0.7 and ell[3] < 0.5  # solidity and rectangularity of an L


def test_true_positives_follow_evals_rule():
    truth = [shapely.box(0, 0, 10, 10), shapely.box(20, 0, 30, 10)]
    predicted = [shapely.box(1, 0, 10, 10), shapely.box(20, 0, 24, 10), shapely.box(50, 50, 52, 52)]
    assert true_positive_labels(predicted, truth).tolist() == [1, 0, 0]


def test_the_cut_keeps_everything_unless_dropping_raises_f1():
    probability = np.array([0.9, 0.8, 0.2, 0.1])
    assert best_cut(probability, np.array([1, 1, 0, 0]), missed=0) == 0.8
    assert best_cut(probability, np.array([0, 0, 1, 1]), missed=0) == 0.0


def test_a_filter_learns_what_separates_true_from_false():
    rng = np.random.default_rng(0)
    true_rows = rng.normal([3.5, 4.2, 0.95, 0.9, 1.5, 0.8], 0.05, size=(30, 6))
    false_rows = rng.normal([1.0, 6.0, 0.6, 0.5, 4.0, 0.55], 0.05, size=(30, 6))
    rows = np.vstack([true_rows, false_rows])
    labels = np.array([1] * 30 + [0] * 30)
    fitted = fit_filter(rows, labels, missed=5)
    assert fitted.keep(rows).tolist() == labels.astype(bool).tolist()
    assert fitted.keep(np.zeros((0, 6))).tolist() == []


@pytest.mark.parametrize("labels", [[1] * 10, [0] * 10, [1] * 3 + [0] * 7])
def test_too_little_to_learn_is_one_line(labels):
    with pytest.raises(InputError, match="needs 5 or more of each"):
        fit_filter(np.zeros((len(labels), 6)), np.array(labels), missed=0)
