"""What earlier versions wrote keeps working: old ``-a`` names, pipeline configs and bundles.

Plugin version 1 renamed ``InferenceConfig.chip_sz`` to ``window`` (and ``-a predict_chip_sz``
to ``-a predict_window``); version 2 replaced ``fast`` by ``plan`` (and ``-a fast`` by
``-a plan``); version 3 replaced the flags ``tune_threshold``, ``train_threshold`` and
``share_threshold`` by ``threshold`` (and ``-a tune_threshold true`` by ``-a threshold tune``).
A config or bundle saved at an older version goes through Raster Vision's own loading path
(``upgrade_config`` then ``build_config``), as ``run``, ``predict`` and bundle loading take it.
"""

import io
import itertools
import json
import logging
import zipfile
from pathlib import Path

import pytest
import rasterio
import torch
from rastervision.core.data import ClassConfig, DatasetConfig
from rastervision.pipeline.config import Config, build_config, upgrade_config
from rastervision.pytorch_backend import PyTorchSemanticSegmentationConfig
from rastervision.pytorch_learner import SemanticSegmentationLearnerConfig

from benchmark import PLUGIN
from benchmark.cli import predict
from benchmark.data import layout
from benchmark.errors import InputError
from benchmark.evaluation.threshold_choice import THRESHOLD_FLAGS, choice_from_flags
from benchmark.experiments.args import parse_args
from benchmark.experiments.benchmark_args import BenchmarkArgs
from benchmark.pipeline.benchmark_config import (
    BenchmarkConfig,
    InferenceConfig,
    upgrade_benchmark_config,
    upgrade_inference_config,
)
from benchmark.training.data_config import BenchmarkImageDataConfig
from benchmark.training.model_config import BenchmarkModelConfig, BenchmarkSolverConfig
from tests.fixtures.cli import CHIP, EXPERIMENT

PIPELINE_CONFIG_NAME = "pipeline-config.json"  # RV's name inside a bundle

# Every combination of the threshold flags a config of plugin version 2 or before could hold.
OLD_THRESHOLD_FLAGS = [
    dict(zip(THRESHOLD_FLAGS, values, strict=True))
    for values in itertools.product((False, True), repeat=len(THRESHOLD_FLAGS))
]


def as_version(cfg_dict: dict, version: int, **flags: bool) -> dict:
    """A saved pipeline config as the code of plugin ``version`` (0 or 2) wrote it.

    Its threshold is the old ``flags`` (those not given: false); at version 0, its prediction
    window is ``chip_sz``.
    """
    old = json.loads(json.dumps(cfg_dict))
    old["plugin_versions"][PLUGIN] = version
    del old["threshold"], old["threshold_value"]
    old.update({flag: flags.get(flag, False) for flag in THRESHOLD_FLAGS})
    if version == 0:
        old["inference"]["chip_sz"] = old["inference"].pop("window")
    without_targets(old["backend"])
    return old


def without_targets(learner: dict) -> dict:
    """A backend's or learner's config as before targets (``model.target``, loss weights)."""
    del learner["model"]["target"], learner["solver"]["channel_weights"]
    return learner


def old_learner_bundle(data: bytes) -> bytes:
    """A learner bundle (``model-bundle.zip``) whose config is as before targets."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            member = src.read(item.filename)
            if item.filename == "learner-config.json":
                member = json.dumps(without_targets(json.loads(member))).encode()
            dst.writestr(item, member)
    return out.getvalue()


def load_like_rastervision(cfg_dict: dict) -> BenchmarkConfig:
    """What ``rastervision predict`` does with a bundle's config (``Predictor.__init__``)."""
    return build_config(upgrade_config(cfg_dict))


class TestInferenceConfigUpgrader:
    def test_version_0_names_the_window_chip_sz(self):
        old = {"type_hint": "benchmark_inference", "chip_sz": 256, "overlap": 32}
        assert upgrade_inference_config(old, 0) == {
            "type_hint": "benchmark_inference", "window": 256, "overlap": 32
        }  # fmt: skip
        assert "chip_sz" in old  # the caller's dict is left as it was

    @pytest.mark.parametrize(("fast", "plan"), [(False, "fp32"), (True, "auto")])
    def test_version_1_says_fast_as_a_plan(self, fast, plan):
        old = {"type_hint": "benchmark_inference", "window": 256, "fast": fast}
        assert upgrade_inference_config(old, 1) == {
            "type_hint": "benchmark_inference", "window": 256, "plan": plan
        }  # fmt: skip
        assert "fast" in old

    def test_later_versions_pass_through(self):
        current = {"type_hint": "benchmark_inference", "window": 256, "plan": "int8"}
        assert upgrade_inference_config(current, 2) == current


class TestBenchmarkConfigUpgrader:
    @pytest.mark.parametrize("flags", OLD_THRESHOLD_FLAGS)
    def test_version_2_says_the_flags_as_the_choice_they_made(self, flags):
        kept = {"type_hint": "benchmark", "experiment_id": "old"}
        old = kept | flags
        assert upgrade_benchmark_config(old, 2) == kept | {"threshold": choice_from_flags(**flags)}
        assert THRESHOLD_FLAGS[0] in old  # the caller's dict is left as it was

    def test_a_config_with_some_of_the_flags(self):
        old = {"type_hint": "benchmark", "tune_threshold": True}  # before the other two existed
        assert upgrade_benchmark_config(old, 2) == {"type_hint": "benchmark", "threshold": "tune"}

    @pytest.mark.parametrize("version", [0, 1, 3])
    def test_other_versions_pass_through(self, version):
        config = {"type_hint": "benchmark", "share_threshold": True}
        assert upgrade_benchmark_config(config, version) == config  # 0, 1: done at 2 -> 3


@pytest.fixture
def saved_config(tmp_path) -> tuple[BenchmarkConfig, Path]:
    """A small pipeline config and the file it is saved in, as ``run`` saves it."""
    cfg = BenchmarkConfig(
        root_uri=str(tmp_path),
        experiment_id="old",
        scene_keys={},
        dataset=DatasetConfig(
            class_config=ClassConfig(names=["background", "building"]),
            train_scenes=[],
            validation_scenes=[],
        ),
        backend=PyTorchSemanticSegmentationConfig(
            data=BenchmarkImageDataConfig(),
            model=BenchmarkModelConfig(pretrained=False),
            solver=BenchmarkSolverConfig(),
        ),
        inference=InferenceConfig(window=256, overlap=32),
    )
    cfg.update()
    uri = Path(cfg.get_config_uri())
    cfg.to_file(str(uri))
    return cfg, uri


@pytest.mark.parametrize("flags", OLD_THRESHOLD_FLAGS)
@pytest.mark.parametrize("version", [0, 2])
def test_an_old_pipeline_config_loads_and_decides_the_same(saved_config, version, flags):
    cfg, uri = saved_config
    old = as_version(json.loads(uri.read_text()), version, **flags)
    uri.write_text(json.dumps(old))

    for loaded in (BenchmarkConfig.from_file(str(uri)), load_like_rastervision(old)):
        assert loaded.inference == InferenceConfig(window=256, overlap=32)
        assert loaded.eval_uri == cfg.eval_uri
        assert loaded.threshold == choice_from_flags(**flags)
        assert loaded.threshold_value == cfg.threshold_value
        assert loaded.backend.model.target == "binary"


def test_a_learner_config_saved_before_targets_builds_the_binary_network(tmp_path):
    """What a bundle's ``learner-config.json`` held before ``target``: a 2-logit network."""
    learner = SemanticSegmentationLearnerConfig(
        model=BenchmarkModelConfig(encoder="tu-mobilenetv3_small_050", pretrained=False),
        solver=BenchmarkSolverConfig(),
        data=BenchmarkImageDataConfig(class_config=ClassConfig(names=["background", "building"])),
    )
    uri = tmp_path / "learner-config.json"
    learner.to_file(str(uri))
    old = without_targets(json.loads(uri.read_text()))
    assert "target" not in old["model"]
    uri.write_text(json.dumps(old))
    loaded = Config.from_file(str(uri))  # as RV reads a learner bundle's config
    assert loaded.model.target == "binary"
    assert loaded.solver.channel_weights == (1.0, 0.25, 0.1)
    network = loaded.model.build(num_classes=2, in_channels=3).eval()
    assert network(torch.rand(1, 3, 32, 32)).shape == (1, 2, 32, 32)
    loaded.model.target = "instance"
    network = loaded.model.build(num_classes=2, in_channels=3).eval()
    assert network(torch.rand(1, 3, 32, 32)).shape == (1, 4, 32, 32)


class TestRenamedArgument:
    def test_old_name_still_works_with_one_warning(self, caplog):
        with caplog.at_level(logging.WARNING, logger="benchmark"):
            args = BenchmarkArgs(root_uri="out", predict_chip_sz="128")
        assert args.predict_window == 128
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert warnings == ["-a predict_chip_sz is deprecated: it is now -a predict_window"]

    def test_both_names_is_an_error(self):
        message = "arguments: predict_chip_sz is the old name of predict_window: give only -a pre"
        with pytest.raises(InputError, match=message):
            parse_args(
                BenchmarkArgs, {"root_uri": "out", "predict_chip_sz": "1", "predict_window": "2"}
            )


class TestFastArgument:
    @pytest.mark.parametrize(("fast", "plan"), [(False, "fp32"), ("false", "fp32"), (True, "auto")])
    def test_fast_is_said_as_a_plan_with_one_warning(self, caplog, fast, plan):
        with caplog.at_level(logging.WARNING, logger="benchmark"):
            args = BenchmarkArgs(root_uri="out", fast=fast)
        assert args.plan == plan
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert warnings == [f"-a fast is deprecated: it is now -a plan {plan}"]

    @pytest.mark.parametrize(
        ("args", "problem"),
        [
            ({"fast": "false", "plan": "int8"}, "fast is the old spelling of plan: give only"),
            ({"fast": "maybe"}, "-a fast maybe: expected true or false"),
            ({"plan": "int4"}, "-a plan: Input should be 'auto', 'fp32'"),
        ],
    )
    def test_bad_plans_are_one_line(self, args, problem):
        with pytest.raises(InputError, match=problem):
            parse_args(BenchmarkArgs, {"root_uri": "out", **args})

    def test_the_plan_reaches_the_pipeline_config(self):
        assert InferenceConfig(plan="int8").options().execution == "int8"


class TestThresholdArguments:
    @pytest.mark.parametrize(
        ("flag", "value", "choice"),
        [
            ("tune_threshold", "true", "tune"),
            ("train_threshold", "true", "train"),
            ("share_threshold", "true", "share"),
            ("share_threshold", "false", "fixed"),
            ("tune_threshold", True, "tune"),
        ],
    )
    def test_an_old_flag_is_said_as_the_choice_with_one_warning(self, caplog, flag, value, choice):
        with caplog.at_level(logging.WARNING, logger="benchmark"):
            args = BenchmarkArgs(root_uri="out", **{flag: value})
        assert args.threshold == choice
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert warnings == [f"-a {flag} is deprecated: it is now -a threshold {choice}"]

    def test_old_flags_together_keep_their_precedence_in_one_warning(self, caplog):
        with caplog.at_level(logging.WARNING, logger="benchmark"):
            args = BenchmarkArgs(root_uri="out", share_threshold="true", train_threshold="true")
        assert args.threshold == "train"
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert warnings == [
            "-a train_threshold and -a share_threshold are deprecated: together they are now "
            "-a threshold train"
        ]

    @pytest.mark.parametrize(
        ("args", "problem"),
        [
            (
                {"share_threshold": "true", "threshold": "share"},
                "share_threshold is the old spelling of threshold: give only -a threshold",
            ),
            ({"tune_threshold": "yes"}, "-a tune_threshold yes: expected true or false"),
            ({"threshold": "best"}, "-a threshold: Input should be 'fixed', 'tune'"),
            ({"threshold": "tune", "threshold_value": "0.4"}, "threshold_value is the thresh"),
            ({"threshold_value": "1.5"}, "-a threshold_value: Input should be less than 1"),
        ],
    )
    def test_bad_thresholds_are_one_line(self, args, problem):
        with pytest.raises(InputError, match=problem):
            parse_args(BenchmarkArgs, {"root_uri": "out", **args})

    def test_a_fixed_threshold_of_its_own(self):
        args = parse_args(BenchmarkArgs, {"root_uri": "out", "threshold_value": "0.35"})
        assert (args.threshold, args.threshold_value) == ("fixed", 0.35)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("version", "flags", "choice"),
    [
        (0, {}, "fixed"),  # before the window's rename: chip_sz
        (2, {"train_threshold": True, "share_threshold": True}, "train"),  # before threshold
    ],
)
def test_an_old_bundle_loads_and_predicts(finished_run, tmp_path, version, flags, choice):
    """A bundle the code of an older plugin ``version`` wrote, its threshold the old flags."""
    root, catalog = finished_run["root"], finished_run["catalog"]
    bundle_dir = layout.command_dir(str(root), "bundle", EXPERIMENT)
    new_bundle = Path(layout.model_bundle_uri(bundle_dir))
    old_bundle = tmp_path / "old" / new_bundle.name
    old_bundle.parent.mkdir()
    with zipfile.ZipFile(new_bundle) as src, zipfile.ZipFile(old_bundle, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == PIPELINE_CONFIG_NAME:
                data = json.dumps(as_version(json.loads(data), version, **flags)).encode()
            elif item.filename == layout.MODEL_BUNDLE_NAME:  # the learner's bundle
                data = old_learner_bundle(data)
            dst.writestr(item, data)
    with zipfile.ZipFile(old_bundle) as zf:
        old_config = json.loads(zf.read(PIPELINE_CONFIG_NAME))
    assert ("chip_sz" in old_config["inference"]) == (version == 0)
    assert "threshold" not in old_config and "share_threshold" in old_config

    loaded = load_like_rastervision(old_config)
    assert loaded.inference.window == 48  # the run's predict_window
    assert loaded.threshold == choice

    chips = Path(catalog.test_catalog_uri).parent
    out, tgz = tmp_path / "masks", tmp_path / "submission.tgz"
    status = predict.main([str(old_bundle), str(chips), str(out), "--chip-size", str(CHIP),
                           "--pack", str(tgz)])  # fmt: skip
    assert status == 0
    for chip_id in catalog.test_chip_ids:
        with rasterio.open(layout.chip_file_uri(str(out), chip_id)) as src:
            assert (src.height, src.width) == (CHIP, CHIP)
    assert tgz.exists()
