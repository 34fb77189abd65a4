"""``-a target instance`` through the real CLI: chips of label bits, a 4-logit network, its bundle.

And, on the tiny learner of ``conftest.py``, validation reads the body: an instance model's
confusion matrix is that of its first two logits against the labels' body bit.
"""

import io
import json
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark.data import layout
from benchmark.data.constants import BODY_BIT, BORDER_BIT, IGNORE_LABEL
from benchmark.experiments import split_images
from benchmark.pipeline.bundle import load_learner_model
from tests.fixtures.cli import TINY_MODEL_ARGS, rastervision
from tests.fixtures.opencities import cli_args, make_opencities_catalog

EXPERIMENT = "instance"


def _label_chips(chip_zip: Path) -> list[np.ndarray]:
    with zipfile.ZipFile(chip_zip) as zf:
        names = [n for n in zf.namelist() if "/labels/" in n and n.endswith(".png")]
        return [np.asarray(Image.open(io.BytesIO(zf.read(n)))) for n in names]


@pytest.mark.slow
def test_chip_and_train_an_instance_target_make_a_4_logit_model_whose_bundle_loads(tmp_path):
    catalog = make_opencities_catalog(tmp_path / "data", test_chip_size=64)
    root = str(tmp_path / "out")
    config = split_images.get_config("inprocess", **catalog.scene_args(root), split_size="64")
    config.build(str(tmp_path)).PREPROCESS()
    rastervision(
        "run", "inprocess", "benchmark.experiments.benchmark", "chip", "train",
        *cli_args(catalog.scene_args(root)), *TINY_MODEL_ARGS,
        "-a", "experiment_id", EXPERIMENT, "-a", "target", "instance",
        "-a", "border_width", "0.15", "-a", "contact_width", "0.3",
        "-a", "channel_weights", "1,0.5,0.2",
        "-a", "chip_sz", "32", "-a", "batch_sz", "2", "-a", "num_epochs", "1",
        "-a", "num_workers", "0",
        tmp_path=tmp_path,
    )  # fmt: skip
    chip_zips = list(Path(layout.command_dir(root, "chip", EXPERIMENT)).glob("*.zip"))
    labels = np.concatenate([chip.ravel() for z in chip_zips for chip in _label_chips(z)])
    # Bits as the label source made them (a border only with a body, contact anywhere).
    assert set(np.unique(labels)) <= {0, 1, 3, 4, 5, 7, IGNORE_LABEL}
    assert (labels == BODY_BIT).any() and (labels & BORDER_BIT).any()
    saved = json.loads(
        Path(root, "pipeline-config", f"{EXPERIMENT}.json").read_text()
    )  # as the run saved it
    assert saved["backend"]["model"]["target"] == "instance"
    assert saved["backend"]["solver"]["channel_weights"] == [1.0, 0.5, 0.2]
    assert saved["dataset"]["train_scenes"][0]["label_source"]["contact_width"] == 0.3
    train_dir = Path(layout.command_dir(root, "train", EXPERIMENT))
    header, scores = (line.split(",") for line in (train_dir / "log.csv").read_text().splitlines())
    assert 0 <= float(scores[header.index("Building_f1")]) <= 1  # the body's, as a binary run's

    model = load_learner_model(str(train_dir / "model-bundle.zip"), str(tmp_path / "load"), "cpu")
    out = model(torch.rand(1, 3, 40, 40))
    assert out.shape == (1, 4, 40, 40)


def test_validation_scores_the_body_of_an_instance_model(tiny_learner):
    learner = tiny_learner()
    target = torch.tensor([[[1, 3], [0, 4]]])  # body, body+border; background, contact
    logits = torch.tensor(
        [[[[0.0, 0.0], [5.0, 5.0]], [[5.0, 5.0], [0.0, 0.0]], [[9.0] * 2] * 2, [[-9.0] * 2] * 2]]
    )  # body right everywhere; border and contact said everywhere and nowhere
    learner.cfg.model = SimpleNamespace(target="instance")
    learner.cfg.data = SimpleNamespace(class_names=["background", "building"])
    learner.loss = lambda out, y: torch.tensor(0.0)
    learner.model = lambda x: logits
    step = learner.validate_step((torch.zeros(1, 3, 2, 2), target), 0)
    assert step["conf_mat"].tolist() == [[2.0, 0.0], [0.0, 2.0]]
