"""What earlier versions wrote keeps working: old ``-a`` names, pipeline configs and bundles.

Plugin version 1 renamed ``InferenceConfig.chip_sz`` to ``window`` (and ``-a predict_chip_sz``
to ``-a predict_window``); version 2 replaced ``fast`` by ``plan`` (and ``-a fast`` by
``-a plan``). A config or bundle saved at version 0 goes through Raster Vision's
own loading path (``upgrade_config`` then ``build_config``), as ``run``, ``predict`` and
bundle loading take it.
"""

import json
import logging
import zipfile
from pathlib import Path

import pytest
import rasterio
from rastervision.core.data import ClassConfig, DatasetConfig
from rastervision.pipeline.config import build_config, upgrade_config
from rastervision.pytorch_backend import PyTorchSemanticSegmentationConfig

from benchmark import PLUGIN
from benchmark.cli import predict
from benchmark.data import layout
from benchmark.errors import InputError
from benchmark.experiments.args import parse_args
from benchmark.experiments.benchmark_args import BenchmarkArgs
from benchmark.pipeline.benchmark_config import (
    BenchmarkConfig,
    InferenceConfig,
    upgrade_inference_config,
)
from benchmark.training.data_config import BenchmarkImageDataConfig
from benchmark.training.model_config import BenchmarkModelConfig, BenchmarkSolverConfig
from tests.fixtures.cli import CHIP, EXPERIMENT

PIPELINE_CONFIG_NAME = "pipeline-config.json"  # RV's name inside a bundle


def as_version_0(cfg_dict: dict) -> dict:
    """A saved pipeline config as the code before the rename wrote it."""
    old = json.loads(json.dumps(cfg_dict))
    old["plugin_versions"][PLUGIN] = 0
    old["inference"]["chip_sz"] = old["inference"].pop("window")
    return old


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


def test_a_version_0_pipeline_config_loads(tmp_path):
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
    uri = cfg.get_config_uri()
    cfg.to_file(uri)
    old = as_version_0(json.loads(Path(uri).read_text()))
    Path(uri).write_text(json.dumps(old))

    for loaded in (BenchmarkConfig.from_file(uri), load_like_rastervision(old)):
        assert loaded.inference == InferenceConfig(window=256, overlap=32)
        assert loaded.eval_uri == cfg.eval_uri


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


@pytest.mark.slow
def test_a_version_0_bundle_loads_and_predicts(finished_run, tmp_path):
    """A bundle the code before the rename wrote: its configs at version 0, with ``chip_sz``."""
    root, catalog = finished_run["root"], finished_run["catalog"]
    bundle_dir = layout.command_dir(str(root), "bundle", EXPERIMENT)
    new_bundle = Path(layout.model_bundle_uri(bundle_dir))
    old_bundle = tmp_path / "old" / new_bundle.name
    old_bundle.parent.mkdir()
    with zipfile.ZipFile(new_bundle) as src, zipfile.ZipFile(old_bundle, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == PIPELINE_CONFIG_NAME:
                data = json.dumps(as_version_0(json.loads(data))).encode()
            dst.writestr(item, data)
    with zipfile.ZipFile(old_bundle) as zf:
        old_config = json.loads(zf.read(PIPELINE_CONFIG_NAME))
    assert "chip_sz" in old_config["inference"]

    assert load_like_rastervision(old_config).inference.window == 48  # the run's predict_window

    chips = Path(catalog.test_catalog_uri).parent
    out, tgz = tmp_path / "masks", tmp_path / "submission.tgz"
    status = predict.main([str(old_bundle), str(chips), str(out), "--chip-size", str(CHIP),
                           "--pack", str(tgz)])  # fmt: skip
    assert status == 0
    for chip_id in catalog.test_chip_ids:
        with rasterio.open(layout.chip_file_uri(str(out), chip_id)) as src:
            assert (src.height, src.width) == (CHIP, CHIP)
    assert tgz.exists()
