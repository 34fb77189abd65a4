"""A train killed at any point and started again ends as if it had never stopped (local and S3).

The runs keep a weight average (``-a ema_decay``), so its state resumes too, and it is what the
run saves and bundles. Quick tests below: the average's update, the loaders' priority.
"""

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import boto3
import numpy as np
import pandas as pd
import pytest
import torch
from rastervision.pytorch_learner import SemanticSegmentationLearner
from torch.optim.swa_utils import AveragedModel

from benchmark.data.background import start_background_worker
from benchmark.experiments import split_images
from benchmark.pipeline import layout
from benchmark.pipeline.bundle import load_learner_model
from benchmark.training.learner import ResumableLearner, _warmed_up_ema
from tests.fixtures import kill_at
from tests.fixtures.cli import TINY_MODEL_ARGS
from tests.fixtures.opencities import cli_args, make_opencities_catalog

EPOCHS = 3
KILLED = -9


def _train_args(catalog, root: str, experiment_id: str) -> list[str]:
    return [
        "run", "inprocess", "benchmark.experiments.benchmark",
        *cli_args(catalog.scene_args(root)), *TINY_MODEL_ARGS,
        "-a", "experiment_id", experiment_id, "-a", "num_epochs", str(EPOCHS),
        "-a", "chip_sz", "32", "-a", "batch_sz", "2", "-a", "num_workers", "0",
        "-a", "ema_decay", "0.9",
    ]  # fmt: skip


def _train(
    args: list[str], tmp_path: Path, *commands: str, kill: tuple[str, int] | None = None
) -> str:
    """``commands`` (default: train), SIGKILLed at ``kill`` (point, epoch) or run to the end.

    Through :mod:`tests.fixtures.kill_at` either way (bundles without ONNX); returns the log.
    """
    point = [kill[0], str(kill[1])] if kill else ["never"]
    cmd = [sys.executable, kill_at.__file__, *point, "--tmpdir", str(tmp_path / "rvtmp"), *args]
    done = subprocess.run([*cmd, *(commands or ["train"])], capture_output=True, text=True)
    assert done.returncode == (KILLED if kill else 0), done.stdout[-2000:] + done.stderr[-4000:]
    return done.stderr


def _epochs_logged(train_dir: Path) -> list[int]:
    return pd.read_csv(layout.training_log_uri(str(train_dir)))["epoch"].tolist()


@pytest.fixture(scope="module")
def preprocessed(tmp_path_factory):
    """The tiny catalog, cut into windows, and a train run that was never interrupted."""
    tmp_path = tmp_path_factory.mktemp("resume")
    catalog = make_opencities_catalog(tmp_path / "data", test_chip_size=64)
    root = str(tmp_path / "out")
    config = split_images.get_config("inprocess", **catalog.scene_args(root), split_size="64")
    config.build(str(tmp_path)).PREPROCESS()  # in this process: no test here is about it
    _train(_train_args(catalog, root, "whole"), tmp_path, "chip", "train")
    return catalog, Path(root), tmp_path


@pytest.mark.slow
@pytest.mark.faults
def test_killed_mid_epoch_and_at_epoch_end_training_ends_as_if_never_stopped(preprocessed):
    catalog, root, tmp_path = preprocessed
    args = _train_args(catalog, str(root), "killed")
    train_dir = root / "train" / "killed"

    _train(args, tmp_path, "chip", "train", kill=("mid-epoch", 1))
    assert _epochs_logged(train_dir) == [0]
    output = _train(args, tmp_path, kill=("epoch-end", 1))
    assert "Resuming after epoch 1 of 3" in output
    assert _epochs_logged(train_dir) == [0]  # the state saved epoch 1; RV's log did not yet
    output = _train(args, tmp_path)
    assert "Resuming after epoch 2 of 3" in output  # from the state, not from log.csv

    whole = root / "train" / "whole"
    assert _epochs_logged(train_dir) == _epochs_logged(whole) == list(range(EPOCHS))
    resumed = torch.load(train_dir / "last-model.pth", weights_only=True)
    uninterrupted = torch.load(whole / "last-model.pth", weights_only=True)
    for name, tensor in uninterrupted.items():  # same batches, same optimizer state
        torch.testing.assert_close(resumed[name], tensor, rtol=1e-4, atol=1e-5, msg=name)
    assert list(train_dir.rglob("*.partial")) == []
    state = torch.load(train_dir / layout.TRAIN_STATE_NAME, weights_only=False)
    assert state["epoch"] == EPOCHS - 1
    average = {k.removeprefix("module."): v for k, v in state["ema"].items() if k != "n_averaged"}
    assert average.keys() == resumed.keys()
    for name, tensor in average.items():  # last-model.pth, and so the bundle, is the average
        assert torch.equal(resumed[name], tensor), name
    assert not all(torch.equal(state["model"][n], t) for n, t in average.items())

    model = load_learner_model(layout.model_bundle_uri(str(train_dir)), str(tmp_path / "load"))
    with torch.inference_mode():
        logits = model(torch.rand(1, 3, 32, 32))
    assert logits.shape == (1, 2, 32, 32) and np.isfinite(logits.numpy()).all()


@pytest.mark.aws
@pytest.mark.slow
@pytest.mark.faults
def test_a_train_on_s3_killed_mid_epoch_resumes_from_the_synced_state(preprocessed, aws_env):
    catalog, root, tmp_path = preprocessed
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="open-cities")
    args = _train_args(catalog, "s3://open-cities/out", "spot")
    # PREPROCESS's windows stay local (the catalog is): only the run's outputs are on S3.
    args += ["-a", "split_dir", str(root / "split_images")]
    _train(args, tmp_path, "chip", "train", kill=("mid-epoch", 2))
    output = _train(args, tmp_path)
    assert "Resuming after epoch 2 of 3" in output

    copy = tmp_path / "from-s3"
    copy.mkdir()
    for name in (layout.TRAINING_LOG_NAME, layout.MODEL_BUNDLE_NAME):
        s3.download_file("open-cities", f"out/train/spot/{name}", str(copy / name))
    assert _epochs_logged(copy) == list(range(EPOCHS))
    model = load_learner_model(layout.model_bundle_uri(str(copy)), str(tmp_path / "s3load"))
    assert model(torch.rand(1, 3, 32, 32)).shape == (1, 2, 32, 32)


def test_the_weight_average_is_updated_in_place_with_the_warmed_up_decay():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    average = AveragedModel(model, multi_avg_fn=_warmed_up_ema(0.99), use_buffers=True)
    expected = {k: v.clone() for k, v in model.state_dict().items()}
    for updates in range(3):
        with torch.no_grad():
            for tensor in model.state_dict().values():
                tensor.add_(1)
        average.update_parameters(model)
        decay = min(0.99, (1 + updates) / (10 + updates)) if updates else 0  # 0: a copy
        for name, value in model.state_dict().items():
            floating = value.is_floating_point()
            expected[name] = expected[name].lerp(value, 1 - decay) if floating else value.clone()
    averaged = average.module.state_dict()
    assert all(torch.equal(averaged[name], value) for name, value in expected.items())


def test_the_loader_workers_run_at_background_priority(monkeypatch):
    built = {}
    monkeypatch.setattr(
        SemanticSegmentationLearner,
        "build_dataloader",
        lambda self, split, **kwargs: built.setdefault(split, kwargs),
    )
    learner = object.__new__(ResumableLearner)  # only its config is read
    for workers, split in ((2, "train"), (0, "valid")):
        learner.cfg = SimpleNamespace(data=SimpleNamespace(num_workers=workers))
        learner.build_dataloader(split)
    assert built == {"train": {"worker_init_fn": start_background_worker}, "valid": {}}
