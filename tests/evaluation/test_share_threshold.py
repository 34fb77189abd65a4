"""The threshold that predicts the training chips' building share on the scenes scored."""

import numpy as np
import pytest

from benchmark.data.constants import BUILDING, IGNORE_LABEL, NO_BUILDING
from benchmark.errors import InputError
from benchmark.evaluation.share_threshold import (
    TrainingShare,
    choose_share_threshold,
    share_threshold,
    training_building_share,
)
from benchmark.inference.forward import probability_to_mask
from tests.fixtures.chip_zips import chip_labels, write_chip_zip


def _predicted(levels: np.ndarray) -> np.ndarray:
    return np.bincount(levels, minlength=256)


@pytest.mark.parametrize("share", [0.1, 0.25, 0.5, 0.9])
def test_the_threshold_predicts_the_share_asked_for(share: float):
    levels = np.random.default_rng(0).integers(0, 256, 100_000).astype(np.uint8)
    t, predicted_share = share_threshold(_predicted(levels), share)
    assert probability_to_mask(levels, t).mean() == pytest.approx(share, abs=0.005)
    assert predicted_share == pytest.approx(probability_to_mask(levels, t).mean())


def test_an_unsure_model_gets_a_threshold_under_half():
    """Background at 0.2, buildings spread over 0.25-0.95: a quarter of the pixels."""
    levels = np.concatenate([np.full(750, 51), np.linspace(64, 242, 250)]).astype(np.uint8)
    t, _ = share_threshold(_predicted(levels), 0.25)
    assert 51 / 255 < t < 64 / 255
    assert probability_to_mask(levels, t).sum() == 250


def test_nothing_predicted_keeps_half_and_a_wrong_histogram_is_refused():
    assert share_threshold(np.zeros(256), 0.3) == (0.5, 0.0)
    chosen = choose_share_threshold(np.zeros(256), TrainingShare(0.3, chips=1))
    assert chosen.threshold == 0.5 and chosen.predicted_share == 0.0
    with pytest.raises(ValueError, match="256 levels"):
        share_threshold(np.ones(10), 0.3)


def test_the_share_of_the_training_labels_only(tmp_path):
    everything_a_building = np.full((32, 32), BUILDING, np.uint8)
    zip_uri = write_chip_zip(
        tmp_path / "a.zip",
        {"train": [chip_labels(i) for i in range(3)], "valid": [everything_a_building]},
    )
    training = training_building_share([zip_uri], str(tmp_path))
    labels = chip_labels(0)
    labelled = np.isin(labels, [BUILDING, NO_BUILDING]).sum()  # the ignored corner is not
    assert IGNORE_LABEL in labels and training.chips == 3
    assert training.share == pytest.approx((labels == BUILDING).sum() / labelled)


def test_no_training_chip_is_an_input_error(tmp_path):
    zip_uri = write_chip_zip(tmp_path / "a.zip", {"valid": [chip_labels(0)]})
    with pytest.raises(InputError, match=r"a\.zip"):
        training_building_share([zip_uri], str(tmp_path))


def test_the_choice_reports_the_share_it_predicts():
    levels = np.concatenate([np.full(800, 40), np.full(200, 100)]).astype(np.uint8)
    chosen = choose_share_threshold(_predicted(levels), TrainingShare(0.2, chips=5))
    assert chosen.predicted_share == 0.2 and chosen.training_share == 0.2 and chosen.chips == 5
    assert set(chosen.to_json()) == {"threshold", "training_share", "predicted_share", "chips"}
