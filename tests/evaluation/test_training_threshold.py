"""The threshold chosen on the training chips: the best there, from the train split only."""

import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmark.data.constants import BUILDING, IGNORE_LABEL, NO_BUILDING
from benchmark.data.uris import read_json
from benchmark.errors import InputError
from benchmark.evaluation import training_threshold
from benchmark.evaluation.evaluate import THRESHOLDS
from benchmark.evaluation.training_threshold import choose_training_threshold
from benchmark.pipeline import layout
from tests.fixtures.cli import EXPERIMENT
from tests.fixtures.models import FP32, pointwise_model
from tests.fixtures.runs import build_pipeline, copy_run

# pointwise_model: P(building) = sigmoid(12 (brightness - 0.5)).
BACKGROUND = 90  # P 0.14
BUILDING_GREY = 115  # P 0.35: under 0.5, so a model this unsure needs a threshold under 0.5
BRIGHT = 230  # P 0.99


def _chip(labels: np.ndarray) -> np.ndarray:
    """RGB whose brightness follows ``labels``; ignored pixels bright (false if counted)."""
    grey = np.full(labels.shape, BACKGROUND, np.uint8)
    grey[labels == BUILDING] = BUILDING_GREY
    grey[labels == IGNORE_LABEL] = BRIGHT
    return np.repeat(grey[..., None], 3, axis=2)


def write_chip_zip(path: Path, split_labels: dict[str, list[np.ndarray]]) -> str:
    """Raster Vision's chip zip: ``{split}/img/N.png`` and ``{split}/labels/N.png``."""
    work = path.parent / f"{path.stem}-chips"
    for split, chips in split_labels.items():
        for kind in ("img", "labels"):
            (work / split / kind).mkdir(parents=True)
        for i, labels in enumerate(chips):
            Image.fromarray(_chip(labels)).save(work / split / "img" / f"{i}.png")
            Image.fromarray(labels).save(work / split / "labels" / f"{i}.png")
    with zipfile.ZipFile(path, "w") as zf:
        for file in sorted(work.rglob("*.png")):
            zf.write(file, file.relative_to(work).as_posix())
    return str(path)


def _labels(seed: int, size: int = 32) -> np.ndarray:
    labels = np.full((size, size), NO_BUILDING, np.uint8)
    labels[4 + seed : 16 + seed, 8:20] = BUILDING
    labels[-3:, -3:] = IGNORE_LABEL
    return labels


def choose(zips: list[str], tmp_path: Path) -> training_threshold.TrainingThreshold:
    return choose_training_threshold(pointwise_model(), zips, FP32, THRESHOLDS, str(tmp_path))


def test_the_best_threshold_on_the_training_chips(tmp_path):
    zip_uri = write_chip_zip(tmp_path / "a.zip", {"train": [_labels(i) for i in range(3)]})
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
        {"train": [_labels(0)], "valid": [everything_a_building] * 4},
    )
    chosen = choose([zip_uri], tmp_path)
    assert chosen.threshold == 0.15 and chosen.chips == 1


def test_chips_of_several_zips_and_sizes_at_most_max_chips(tmp_path, monkeypatch):
    first = write_chip_zip(tmp_path / "a.zip", {"train": [_labels(i) for i in range(3)]})
    second = write_chip_zip(tmp_path / "b.zip", {"train": [_labels(i, 64) for i in range(3)]})
    assert choose([first, second], tmp_path).chips == 6
    monkeypatch.setattr(training_threshold, "MAX_CHIPS", 4)
    assert choose([first, second], tmp_path).chips == 3  # every second one


def test_no_training_chip_is_an_input_error(tmp_path):
    zip_uri = write_chip_zip(tmp_path / "a.zip", {"valid": [_labels(0)]})
    with pytest.raises(InputError, match="no training chips"):
        choose([zip_uri], tmp_path)


@pytest.mark.slow
def test_eval_decides_with_the_training_chips_threshold(finished_run, tmp_path):
    parts = [f"{command}/{EXPERIMENT}" for command in ("chip", "train", "predict")]
    root = copy_run(finished_run, tmp_path, "split_images", *parts)
    pipeline = build_pipeline(root, preprocess=False, tmp_path=tmp_path)
    pipeline.config.train_threshold = True
    pipeline.eval()

    report = read_json(layout.eval_report_uri(pipeline.config.eval_uri))
    chosen = report["training_threshold"]
    assert report["decision_threshold"] == chosen["threshold"] in THRESHOLDS
    assert chosen["chips"] > 0 and len(chosen["sweep"]) == len(THRESHOLDS)
    assert report["best_threshold"]["threshold"] in THRESHOLDS  # validation's, still reported

    pipeline.config.tune_threshold = True  # the validation scenes' choice wins, and alone runs
    pipeline.eval()
    report = read_json(layout.eval_report_uri(pipeline.config.eval_uri))
    assert "training_threshold" not in report
    assert report["decision_threshold"] == report["best_threshold"]["threshold"]
