"""The plugin shim registers our configs, so RV can rebuild them from JSON in any runner."""

import subprocess
import sys
from pathlib import Path

import pytest
from rastervision.pipeline import registry_
from rastervision.pipeline.config import build_config

from benchmark.errors import InputError
from benchmark.pipeline.benchmark_config import InferenceConfig, SelfTrainingConfig
from benchmark.training.model_config import BenchmarkModelConfig, BenchmarkSolverConfig
from rastervision.benchmark import PLUGIN_VERSION


def run_python(*lines: str) -> subprocess.CompletedProcess:
    """Run lines of Python in a fresh interpreter: logging and hooks set up as a user's are."""
    code = "".join(f"{line}\n" for line in lines)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_plugin_is_discovered_with_a_version():
    assert registry_.get_plugin_version("rastervision.benchmark") == PLUGIN_VERSION == 3


@pytest.mark.parametrize(
    "first_import",
    [
        "rastervision.pipeline",
        "rastervision.pytorch_learner",  # half imported while it loads the plugins
        "benchmark.training.model_config",  # likewise, and imports RV's learner
        "benchmark.cli.predict",  # benchmark-predict: loads bundles of our model
    ],
)
def test_configs_rebuild_from_json_whatever_was_imported_first(first_import):
    """``run_command``, ``rastervision predict`` and bundles rebuild our configs by type hint."""
    result = run_python(
        f"import {first_import}",
        "from rastervision.pipeline.config import build_config",
        "for hint in ('benchmark', 'benchmark_inference', 'benchmark_model', 'benchmark_solver',",
        "             'benchmark_image_data', 'benchmark_split_images', 'benchmark_self_training',",
        "             'benchmark_no_data_as_background_label_source',",
        "             'benchmark_instance_label_source'):",
        "    from rastervision.pipeline import registry_",
        "    registry_.get_config(hint)",
        "print(build_config({'type_hint': 'benchmark_inference', 'window': 64}).window)",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout == "64\n"


@pytest.mark.parametrize(
    "config",
    [
        BenchmarkModelConfig(arch="fpn", encoder="resnet34", pretrained=False),
        BenchmarkSolverConfig(loss="ce+dice", lr=1e-3),
        InferenceConfig(tta=True),
        SelfTrainingConfig(rounds=2, image_uris=["s3://bucket/city.tif"]),
    ],
)
def test_configs_round_trip_through_json(config):
    rebuilt = build_config(config.dict())
    assert type(rebuilt).__name__ == type(config).__name__
    assert rebuilt == config


def test_bad_loss_is_rejected_when_the_config_is_validated():
    with pytest.raises(InputError, match="unknown loss"):
        BenchmarkSolverConfig(loss="focal").validate_config()


def test_loading_the_plugin_only_registers():
    """Other RV users in the environment keep Python's hook and RV's logging as they were."""
    result = run_python(
        "import logging, sys",
        "from rastervision.pipeline import registry_",
        "registry_.get_plugin_version('rastervision.benchmark')",
        "assert sys.excepthook is sys.__excepthook__, sys.excepthook",
        "assert not logging.getLogger('benchmark').handlers",
        "assert not logging.getLogger('onnxscript.version_converter').filters",
    )
    assert result.returncode == 0, result.stderr[-2000:]


def rastervision(*words: str, cwd: Path) -> subprocess.CompletedProcess:
    rv = Path(sys.executable).parent / "rastervision"
    return subprocess.run(
        [str(rv), "--tmpdir", str(cwd), *words], capture_output=True, text=True, cwd=cwd
    )


def test_an_output_root_that_cannot_be_made_is_one_line(tmp_path):
    """RV writes its config to the root after get_config returns: we make the root first."""
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    result = rastervision(
        "run", "inprocess", "benchmark.experiments.split_images", "PREPROCESS",
        "-a", "root_uri", str(blocked / "out"), cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    assert (
        result.stderr.splitlines()[-1] == f"error: {blocked / 'out'}: not written: Not a directory"
    )
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("verbose", [[], ["-v"]])
def test_rastervision_run_of_ours_exits_2_in_one_line(tmp_path, verbose):
    """get_config's InputError under ``rastervision run inprocess``: one line (-v: traceback)."""
    result = rastervision(
        *verbose, "run", "inprocess", "benchmark.experiments.split_images", "PREPROCESS",
        "-a", "root_uri", "out", "-a", "split_size", "-3", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    assert ("Traceback" in result.stderr) == bool(verbose)
    if not verbose:
        assert result.stderr.startswith("error: bad experiment arguments: -a split_size")
        assert result.stderr.count("\n") == 1


def test_a_pipeline_command_exits_2_in_one_line_under_run_command(tmp_path):
    """The ``local`` and ``batch`` runners' per-command process: PREPROCESS's InputError."""
    from benchmark.experiments import split_images
    from tests.fixtures.opencities import make_opencities_catalog

    catalog = make_opencities_catalog(tmp_path / "data")
    cfg = split_images.get_config("inprocess", **catalog.scene_args(str(tmp_path / "out")))
    cfg.update()
    uri = str(tmp_path / "pipeline-config.json")
    Path(uri).write_text(cfg.json())
    for image in (tmp_path / "data").rglob("*.tif"):
        image.unlink()  # the scenes' imagery vanished after the config was made
    result = rastervision("run_command", uri, "PREPROCESS", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.splitlines()[-1].startswith("error: ")
    assert "Traceback" not in result.stderr


def test_onnx_version_conversion_noise_shows_only_when_verbose():
    result = run_python(
        "import logging",
        "import rastervision.pipeline",
        "from rastervision.pipeline import rv_config_",
        "from benchmark import console",
        "console.install()",
        "logging.basicConfig()",
        "converter = logging.getLogger('onnxscript.version_converter')",
        "converter.warning('quiet by default')",
        "rv_config_.set_verbosity(verbosity=2)",
        "converter.warning('shown with -v')",
    )
    assert result.returncode == 0, result.stderr
    assert "quiet by default" not in result.stderr
    assert "shown with -v" in result.stderr


def test_our_commands_print_each_log_line_once():
    """``wb_scripts/predict`` and the other scripts log as ``rastervision`` does, once a line."""
    result = run_python(
        "import logging",
        "from benchmark.console import log_like_rastervision",
        "log = logging.getLogger('benchmark.cli.predict')",
        "log_like_rastervision()",
        "log.info('chips predicted')",
        "log.debug('hidden details')",
        "log_like_rastervision(verbose=True)",
        "log.debug('verbose details')",
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("chips predicted") == 1
    assert "benchmark.cli.predict: INFO - chips predicted" in result.stderr
    assert "hidden details" not in result.stderr
    assert result.stderr.count("verbose details") == 1
