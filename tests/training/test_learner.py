"""A train killed at any point and started again ends as if it had never stopped (local and S3).

The runs keep a weight average (``-a ema_decay``), so its state resumes too, and it is what the
run saves and bundles. Quick tests below, on the tiny learner of ``conftest.py``: the average's
update, the state read on another device than it was written on, one process where RV would
start DDP, the bundle's ONNX model, the loaders' priority.
"""

import logging
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import boto3
import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import torch
import torch.serialization
from rastervision.pytorch_learner import SemanticSegmentationLearner
from torch.nn.parallel import DistributedDataParallel

from benchmark.data import layout
from benchmark.data.background import start_background_worker
from benchmark.errors import InputError
from benchmark.experiments import split_images
from benchmark.pipeline.bundle import load_learner_model
from benchmark.training.learner import ResumableLearner, WeightAverage
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


@pytest.mark.parametrize("count_on", ["cpu", "meta"])
def test_the_weight_average_is_updated_in_place_with_the_warmed_up_decay(count_on):
    """With ``AveragedModel``'s count on the meta device (no value to read or copy), as one on
    the GPU that every read or copy would wait for: the update counts on the host instead."""
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    average = WeightAverage(model, 0.99)
    average.n_averaged = torch.zeros((), dtype=torch.long, device=count_on)
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
    assert average.updates == 3
    if count_on == "cpu":  # still counted there, for the saved state
        assert int(average.n_averaged) == 3


@pytest.mark.parametrize(
    ("saved_on", "resumed_on"), [("cpu", "cuda"), ("cuda", "cpu"), ("cuda", "cuda")]
)
def test_a_resumed_optimizer_keeps_step_counts_on_the_cpu_and_moments_with_their_weights(
    tiny_learner, train_steps, monkeypatch, saved_on, resumed_on
):
    """The train state is read onto the CPU whatever the device said (no GPU here: a state
    "saved on cuda" is tagged so, and a "cuda" learner reads it as a GPU host would)."""
    killed = tiny_learner()
    train_steps(killed, 3)
    with monkeypatch.context() as patch:
        if saved_on == "cuda":
            patch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        killed.on_epoch_end(0, {"epoch": 0, "train_loss": 1.0})
    if saved_on == "cuda":
        with pytest.raises(RuntimeError, match="CUDA"):  # tagged for a GPU indeed
            torch.load(killed.train_state_path, weights_only=False)

    resumed = tiny_learner(device=resumed_on)
    params = zip(resumed.model.parameters(), killed.model.parameters(), strict=True)
    for param, killed_param in params:
        state, before = resumed.opt.state[param], killed.opt.state[killed_param]
        assert state["step"].device == torch.device("cpu")  # Adam keeps it there
        for moment in ("exp_avg", "exp_avg_sq"):
            assert state[moment].device == param.device
            assert torch.equal(state[moment], before[moment])
    assert resumed._ema.updates == killed._ema.updates == 3
    train_steps(killed, 2, seed=2)
    train_steps(resumed, 2, seed=2)
    for name, value in killed.trained_model.state_dict().items():  # the run continues
        assert torch.equal(resumed.trained_model.state_dict()[name], value), name


@pytest.fixture
def ddp_settings(monkeypatch):
    """RV's DDP settings from a clean environment, on a machine that shows 2 GPUs."""
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RASTERVISION_USE_DDP", "yes")
    monkeypatch.setenv("RASTERVISION_DDP_START_METHOD", "spawn")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.distributed, "is_available", lambda: True)
    learner = object.__new__(ResumableLearner)  # what RV's DDP settings read
    learner.training, learner.model = True, None
    learner.train_ds = learner.valid_ds = learner.test_ds = None
    return learner


@pytest.mark.parametrize("start", ["spawn", "fork"])
def test_with_several_gpus_training_runs_in_one_process_and_says_why(
    ddp_settings, monkeypatch, caplog, start
):
    monkeypatch.setenv("RASTERVISION_DDP_START_METHOD", start)
    if start == "fork":  # RV then needs WORLD_SIZE, and would keep CUDA unstarted for the fork
        monkeypatch.setenv("WORLD_SIZE", "2")
    with caplog.at_level(logging.WARNING, logger="benchmark"):
        ddp_settings.setup_ddp_params()
    assert not ddp_settings.distributed
    assert not ddp_settings.avoid_activating_cuda_runtime
    assert ddp_settings.ddp_world_size is None
    (message,) = [r.getMessage() for r in caplog.records if r.name.startswith("benchmark")]
    assert "Training on one GPU, not DDP on 2" in message
    assert "RASTERVISION_USE_DDP=no" in message


def test_a_train_started_as_one_ddp_rank_stops_in_one_line(ddp_settings, monkeypatch):
    for name, value in {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(InputError, match=r"DDP rank 1 of 2.*without torchrun"):
        ddp_settings.setup_ddp_params()


def test_a_start_method_rv_refuses_without_world_size_stops_in_one_line(ddp_settings, monkeypatch):
    monkeypatch.setenv("RASTERVISION_DDP_START_METHOD", "fork")
    with pytest.raises(InputError, match=r"WORLD_SIZE.*unset RASTERVISION_DDP_START_METHOD$"):
        ddp_settings.setup_ddp_params()


def test_one_gpu_or_ddp_switched_off_is_left_alone(ddp_settings, monkeypatch, caplog):
    monkeypatch.setenv("RASTERVISION_USE_DDP", "no")
    ddp_settings.setup_ddp_params()
    monkeypatch.setenv("RASTERVISION_USE_DDP", "yes")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    ddp_settings.setup_ddp_params()
    assert not ddp_settings.distributed
    assert not [r for r in caplog.records if r.name.startswith("benchmark")]


@pytest.mark.parametrize("ema_decay", [None, 0.9])
def test_weights_are_saved_without_ddps_wrapper(tiny_learner, tiny_network, tmp_path, ema_decay):
    """``module.``-prefixed keys would not load into the bundle's network."""
    learner = tiny_learner(ema_decay=ema_decay)
    wrapper = object.__new__(DistributedDataParallel)  # DDP's module, no process group
    torch.nn.Module.__init__(wrapper)
    wrapper.module = learner.model
    learner.model = wrapper
    if ema_decay is not None:
        learner._ema.module = wrapper
    learner.save_weights(str(tmp_path / "weights.pth"))
    network = tiny_network()
    network.load_state_dict(torch.load(tmp_path / "weights.pth", weights_only=True))
    for name, value in wrapper.module.state_dict().items():
        assert torch.equal(network.state_dict()[name], value), name


def test_the_bundles_onnx_model_is_the_weight_average_as_in_model_pth(
    tiny_learner, train_steps, tiny_network, tmp_path
):
    learner = tiny_learner(ema_decay=0.9)
    train_steps(learner, 5)
    x = torch.rand(1, 3, 16, 24)
    learner.valid_dl = [(x[:, :, :8, :8], None)]  # RV's export draws its sample input here
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    learner._bundle_model(str(bundle))  # model.pth and model.onnx, as RV's bundle makes them
    bundled = tiny_network().eval()
    bundled.load_state_dict(torch.load(bundle / "model.pth", weights_only=True))
    session = ort.InferenceSession(str(bundle / "model.onnx"), providers=["CPUExecutionProvider"])
    (onnx_logits,) = session.run(None, {"x": x.numpy()})
    with torch.no_grad():
        expected, last = bundled(x).numpy(), learner.model.eval()(x).numpy()
    np.testing.assert_allclose(onnx_logits, expected, atol=1e-5)
    assert not np.allclose(onnx_logits, last, atol=1e-3)  # not the last weights


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
