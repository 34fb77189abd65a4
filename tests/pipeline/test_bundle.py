"""Loading a learner bundle onto the device asked for: straight there, ``cpu`` without CUDA."""

import zipfile
from pathlib import Path

import pytest
import torch
from rastervision.core.data import ClassConfig
from rastervision.pytorch_learner import (
    SemanticSegmentationImageDataConfig,
    SemanticSegmentationLearnerConfig,
    SolverConfig,
)
from rastervision.pytorch_learner.learner import Learner
from torch import nn

from benchmark.errors import InputError
from benchmark.pipeline.bundle import load_learner_model, load_learner_models
from benchmark.training.model_config import BenchmarkModelConfig


@pytest.fixture(scope="module")
def learner_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict]:
    """A learner bundle as RV's train writes one (config and weights), of the smallest network.

    Returns its URI and the weights in it.
    """
    folder = tmp_path_factory.mktemp("learner")
    cfg = SemanticSegmentationLearnerConfig(
        model=BenchmarkModelConfig(encoder="tu-mobilenetv3_small_050", pretrained=False),
        solver=SolverConfig(),
        data=SemanticSegmentationImageDataConfig(
            class_config=ClassConfig(names=["background", "building"]), img_channels=3
        ),
    )
    cfg.to_file(str(folder / "learner-config.json"))
    weights = cfg.model.build(num_classes=2, in_channels=3).state_dict()
    torch.save(weights, folder / "model.pth")
    uri = folder / "model-bundle.zip"
    with zipfile.ZipFile(uri, "w") as zf:
        for name in ("learner-config.json", "model.pth"):
            zf.write(folder / name, name)
    return str(uri), weights


def test_cpu_loads_without_touching_cuda(learner_bundle, tmp_path, cuda_untouched):
    uri, weights = learner_bundle
    model = load_learner_model(uri, str(tmp_path), "cpu")
    assert not model.training
    loaded = model.state_dict()
    assert {tensor.device.type for tensor in loaded.values()} == {"cpu"}
    assert all(torch.equal(loaded[name], tensor) for name, tensor in weights.items())


def test_the_gpu_asked_for_is_where_rv_builds_and_maps_the_network(
    learner_bundle, tmp_path, fake_gpus, monkeypatch
):
    fake_gpus(2)
    devices = []

    def setup_model(learner: Learner, *args: object, **kwargs: object) -> None:
        devices.append(learner.device)  # what RV moves the network and maps the weights to
        learner.model = nn.Identity()

    monkeypatch.setattr(Learner, "setup_model", setup_model)
    load_learner_models([learner_bundle[0]] * 2, str(tmp_path), "cuda:1")
    assert devices == [torch.device("cuda:1")] * 2


def test_a_gpu_the_machine_lacks_is_one_line(learner_bundle, tmp_path, fake_gpus):
    fake_gpus(0)
    with pytest.raises(InputError, match=r"^device cuda:7: not available"):
        load_learner_model(learner_bundle[0], str(tmp_path), "cuda:7")
    assert not list(Path(tmp_path).iterdir())  # refused before unpacking
