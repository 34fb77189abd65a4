"""Loading a learner bundle onto the device asked for, and what the bundle says of its model."""

import json
import zipfile
from pathlib import Path

import pytest
import torch
from rastervision.pytorch_learner.learner import Learner
from torch import nn

from benchmark.data.layout import BUNDLE_INFO_NAME, MODEL_BUNDLE_NAME
from benchmark.errors import InputError
from benchmark.inference.execution import InferenceOptions
from benchmark.pipeline.bundle import (
    LEARNER_CONFIG_NAME,
    add_bundle_info,
    learner_bundle_target,
    load_bundle,
    load_learner_model,
    load_learner_models,
)
from tests.fixtures.models import write_learner_bundle


@pytest.fixture(scope="module")
def learner_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict]:
    """A binary learner bundle of the smallest network: its URI and the weights in it."""
    return write_learner_bundle(tmp_path_factory.mktemp("learner"))


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


def _with_target(learner_bundle: str, folder: Path, target: str) -> str:
    """A copy of ``learner_bundle`` whose learner config says ``model.target``."""
    with zipfile.ZipFile(learner_bundle) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    config = json.loads(members[LEARNER_CONFIG_NAME])
    config["model"]["target"] = target
    members[LEARNER_CONFIG_NAME] = json.dumps(config).encode()
    uri = folder / f"{target}-learner.zip"
    with zipfile.ZipFile(uri, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return str(uri)


def _bundle(folder: Path, learner_bundle: str, **members: str) -> str:
    """A bundle as ``bundle`` writes one, before ``benchmark.json``: the learner's bundle."""
    uri = folder / "bundle.zip"
    with zipfile.ZipFile(uri, "w") as zf:
        zf.write(learner_bundle, MODEL_BUNDLE_NAME)
        for name, member in members.items():
            zf.write(member, name)
    return str(uri)


class TestTarget:
    def test_a_bundle_from_before_targets_is_binary_decoded_by_components(
        self, learner_bundle, tmp_path
    ):
        assert learner_bundle_target(learner_bundle[0]) == "binary"
        uri = _bundle(tmp_path, learner_bundle[0])
        loaded = load_bundle(uri, device="cpu")  # no benchmark.json at all
        assert loaded.target == "binary"
        add_bundle_info(uri, {"threshold": 0.4}, str(tmp_path / "tmp"))
        with zipfile.ZipFile(uri) as zf:
            assert json.loads(zf.read(BUNDLE_INFO_NAME)) == {
                "threshold": 0.4,
                "decoding": "components",
            }
        loaded = load_bundle(uri, device="cpu")
        assert loaded.target == "binary" and loaded.prediction(InferenceOptions()).bands == 1

    def test_an_instance_bundle_is_decoded_by_watershed(self, tmp_path):
        instance, _ = write_learner_bundle(tmp_path / "instance", target="instance")
        assert learner_bundle_target(instance) == "instance"
        uri = _bundle(tmp_path, instance)
        add_bundle_info(uri, {"threshold": 0.4}, str(tmp_path / "tmp"))
        with zipfile.ZipFile(uri) as zf:
            assert json.loads(zf.read(BUNDLE_INFO_NAME))["decoding"] == "watershed"
        loaded = load_bundle(uri, device="cpu")
        assert loaded.target == "instance"
        assert loaded.model(torch.zeros(1, 3, 32, 32)).shape[1] == 4  # RV builds its 4 logits
        settings = loaded.prediction(InferenceOptions())
        assert (settings.target, settings.bands) == ("instance", 3)

    def test_a_learner_config_that_is_not_json_reads_as_binary(self, learner_bundle, tmp_path):
        uri = tmp_path / "garbled.zip"
        with zipfile.ZipFile(uri, "w") as zf:
            zf.writestr(LEARNER_CONFIG_NAME, "{not json")
        assert learner_bundle_target(str(uri)) == "binary"

    def test_an_unknown_target_and_a_mixed_ensemble_are_refused(self, learner_bundle, tmp_path):
        with pytest.raises(InputError, match=r"model target 'panoptic', expected one of"):
            learner_bundle_target(_with_target(learner_bundle[0], tmp_path, "panoptic"))
        instance = _with_target(learner_bundle[0], tmp_path, "instance")
        uri = _bundle(tmp_path, learner_bundle[0], **{"ensemble-1-model-bundle.zip": instance})
        add_bundle_info(uri, {"ensemble": ["ensemble-1-model-bundle.zip"]}, str(tmp_path / "t"))
        with pytest.raises(InputError, match=r"different targets \(binary, instance\)"):
            load_bundle(uri, device="cpu")
