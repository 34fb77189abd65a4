"""A :class:`ResumableLearner` on a tiny network, without RV's data, loss or files.

RV's own ``__init__``, ``setup_training`` and ``on_epoch_end`` are replaced by stand-ins that
set up only what ours reads (the model, an Adam optimizer, the output folder), so a test can
train a few steps, end an epoch (our ``train-state.pth``) and resume in milliseconds.
"""

from collections.abc import Callable
from os.path import join
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from rastervision.pytorch_learner import SemanticSegmentationLearner
from torch import nn

from benchmark.training.learner import ResumableLearner

INPUT = (2, 3, 8, 8)  # a batch of the tiny network's input


def _tiny_network() -> nn.Module:
    """Convolution, BatchNorm (float buffers and an integer count), convolution: 2 classes."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Conv2d(4, 2, 1))


def _rv_init(self: ResumableLearner, cfg: SimpleNamespace, output_dir: str, device: str) -> None:
    """What RV's constructor leaves that ours reads, then (as RV's does) the training setup."""
    self.cfg, self.output_dir_local, self.device = cfg, output_dir, torch.device(device)
    self.model = _tiny_network()
    self.setup_training()


def _rv_setup_training(self: ResumableLearner, loss_def_path: str | None = None) -> None:
    self.opt = torch.optim.Adam(self.model.parameters(), lr=0.1)
    self.step_scheduler = self.epoch_scheduler = None
    self.last_model_weights_path = join(self.output_dir_local, "last-model.pth")


@pytest.fixture
def tiny_learner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., ResumableLearner]:
    """A function making a learner in ``tmp_path/train`` (resuming what is there).

    ``device``: what the learner is told it runs on (the network stays on the CPU: a "cuda"
    learner on this machine is a GPU host as far as reading the saved state goes).
    ``ema_decay``: the weight average's decay, None for none.
    """
    monkeypatch.setattr(SemanticSegmentationLearner, "__init__", _rv_init)
    monkeypatch.setattr(SemanticSegmentationLearner, "setup_training", _rv_setup_training)
    monkeypatch.setattr(SemanticSegmentationLearner, "on_epoch_end", lambda *_: None)
    output_dir = tmp_path / "train"
    output_dir.mkdir()

    def make(device: str = "cpu", ema_decay: float | None = 0.9) -> ResumableLearner:
        solver = SimpleNamespace(ema_decay=ema_decay, num_epochs=3)
        return ResumableLearner(SimpleNamespace(solver=solver), str(output_dir), device)

    return make


def _train_steps(learner: ResumableLearner, steps: int, seed: int = 1) -> None:
    """``steps`` optimizer steps of ``learner`` on seeded random batches."""
    generator = torch.Generator().manual_seed(seed)
    learner.model.train()
    for _ in range(steps):
        x = torch.rand(INPUT, generator=generator)
        learner.opt.zero_grad()
        learner.model(x).square().mean().backward()
        learner.opt.step()


@pytest.fixture
def tiny_network() -> Callable[[], nn.Module]:
    """The tiny learner's network, as it starts (seeded)."""
    return _tiny_network


@pytest.fixture
def train_steps() -> Callable[..., None]:
    """``train_steps(learner, steps, seed=1)``: optimizer steps on seeded random batches."""
    return _train_steps
