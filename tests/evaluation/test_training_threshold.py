"""The threshold chosen on the training chips: the best there, from the train split only."""

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmark.data.constants import BORDER_BIT, BUILDING, CONTACT_BIT
from benchmark.errors import InputError
from benchmark.evaluation import training_chips, training_threshold
from benchmark.evaluation.evaluate import THRESHOLDS
from benchmark.evaluation.training_threshold import choose_training_threshold
from tests.fixtures.chip_zips import chip_labels, write_chip_zip
from tests.fixtures.models import FP32, pointwise_model


def choose(zips: list[str], tmp_path: Path) -> training_threshold.TrainingThreshold:
    return choose_training_threshold(pointwise_model(), zips, FP32, THRESHOLDS, str(tmp_path))


def test_the_best_threshold_on_the_training_chips(tmp_path):
    zip_uri = write_chip_zip(tmp_path / "a.zip", {"train": [chip_labels(i) for i in range(3)]})
    chosen = choose([zip_uri], tmp_path)
    assert chosen.threshold == 0.15  # the first of 0.15-0.35, which all separate the two
    assert chosen.jaccard == 1.0 and chosen.chips == 3
    sweep = {s["threshold"]: s["jaccard"] for s in chosen.sweep}
    assert sweep[0.5] == 0.0 and sweep[0.1] < 1.0  # the bright ignored pixels do not count
    assert list(sweep) == list(THRESHOLDS)


def test_validation_chips_are_never_read(tmp_path):
    everything_a_building = np.full((32, 32), BUILDING, np.uint8)  # would make 0.05 the best
    zip_uri = write_chip_zip(
        tmp_path / "a.zip",
        {"train": [chip_labels(0)], "valid": [everything_a_building] * 4},
    )
    chosen = choose([zip_uri], tmp_path)
    assert chosen.threshold == 0.15 and chosen.chips == 1


def test_chips_of_several_zips_and_sizes_at_most_max_chips(tmp_path, monkeypatch):
    first = write_chip_zip(tmp_path / "a.zip", {"train": [chip_labels(i) for i in range(3)]})
    second = write_chip_zip(tmp_path / "b.zip", {"train": [chip_labels(i, 64) for i in range(3)]})
    assert choose([first, second], tmp_path).chips == 6
    monkeypatch.setattr(training_chips, "MAX_CHIPS", 4)
    assert choose([first, second], tmp_path).chips == 3  # every second one


def test_no_training_chip_is_an_input_error(tmp_path):
    zip_uri = write_chip_zip(tmp_path / "a.zip", {"valid": [chip_labels(0)]})
    with pytest.raises(InputError, match="no training chips"):
        choose([zip_uri], tmp_path)


def test_an_instance_targets_chips_are_scored_on_their_body(tmp_path):
    """Label bits (border, contact) choose what the body alone chooses: the same chips, their
    labels' building pixels also a border and their background all contact."""
    plain_zip = write_chip_zip(tmp_path / "a.zip", {"train": [chip_labels(i) for i in range(3)]})
    bits_zip = tmp_path / "b.zip"
    with zipfile.ZipFile(plain_zip) as src, zipfile.ZipFile(bits_zip, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if "/labels/" in name:
                labels = np.asarray(Image.open(io.BytesIO(data))).copy()
                labels[labels == BUILDING] |= BORDER_BIT
                labels[labels == 0] = CONTACT_BIT
                out = io.BytesIO()
                Image.fromarray(labels).save(out, format="PNG")
                data = out.getvalue()
            dst.writestr(name, data)
    plain, decoded = choose([plain_zip], tmp_path), choose([str(bits_zip)], tmp_path)
    assert (decoded.threshold, decoded.jaccard, decoded.chips) == (0.15, 1.0, 3)
    assert decoded.sweep == plain.sweep
