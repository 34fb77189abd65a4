"""ONNX exports with the TorchScript exporter: RV's bundle model and the ONNX Runtime plans."""

import functools

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from benchmark.onnx_export import torchscript_exporter
from benchmark.training.learner import ResumableLearner


def small_network() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 1)).eval()


def test_the_exporter_is_torchscripts_where_torch_has_both():
    with torchscript_exporter() as exporter:
        assert exporter == {"dynamo": False}


def record_exporter(monkeypatch, export=None) -> list:
    """The ``dynamo`` argument of each ``torch.onnx.export`` call (``export`` then runs it)."""
    chosen = []

    @functools.wraps(torch.onnx.export)  # its signature is what the choice reads
    def recording(*args, **kwargs):
        chosen.append(kwargs.get("dynamo"))
        return export(*args, **kwargs) if export else None

    monkeypatch.setattr(torch.onnx, "export", recording)
    return chosen


def test_the_learners_bundle_model_runs_at_any_size(tmp_path, monkeypatch):
    """RV's ``export_to_onnx`` (dynamic axes, opset 15) through our exporter choice."""
    chosen = record_exporter(monkeypatch, torch.onnx.export)
    learner = object.__new__(ResumableLearner)  # RV's export reads only what it is given
    network, path = small_network(), tmp_path / "model.onnx"
    learner.export_to_onnx(str(path), model=network, sample_input=torch.rand(1, 3, 16, 16))
    assert chosen == [False]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    image = np.random.default_rng(0).random((2, 3, 24, 40), dtype=np.float32)
    (logits,) = session.run(None, {"x": image})
    with torch.no_grad():
        expected = network(torch.from_numpy(image)).numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-5)
    assert not network.training


def test_an_explicit_choice_wins(tmp_path, monkeypatch):
    chosen = record_exporter(monkeypatch)
    monkeypatch.setattr("onnx.load", lambda path: None)
    monkeypatch.setattr("onnx.checker.check_model", lambda model: None)
    learner = object.__new__(ResumableLearner)
    learner.export_to_onnx(
        str(tmp_path / "m.onnx"), model=small_network(), sample_input=torch.rand(1, 3, 8, 8),
        dynamo=True,
    )  # fmt: skip
    assert chosen == [True]
