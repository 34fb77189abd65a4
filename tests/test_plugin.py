"""The plugin shim registers our configs, so RV can rebuild them from JSON in any runner."""

import subprocess
import sys

import pytest
from rastervision.pipeline import registry_
from rastervision.pipeline.config import build_config

from benchmark.errors import InputError
from benchmark.model_config import BenchmarkModelConfig, BenchmarkSolverConfig
from benchmark.pipeline_config import InferenceConfig


def test_plugin_is_discovered_with_a_version():
    assert registry_.get_plugin_version("rastervision.benchmark") == 0


@pytest.mark.parametrize(
    "config",
    [
        BenchmarkModelConfig(arch="fpn", encoder="resnet34", pretrained=False),
        BenchmarkSolverConfig(loss="ce+dice", lr=1e-3),
        InferenceConfig(tta=True),
    ],
)
def test_configs_round_trip_through_json(config):
    rebuilt = build_config(config.dict())
    assert type(rebuilt).__name__ == type(config).__name__
    assert rebuilt == config


def test_bad_loss_is_rejected_when_the_config_is_validated():
    with pytest.raises(InputError, match="unknown loss"):
        BenchmarkSolverConfig(loss="focal").validate_config()


def test_input_errors_print_one_line_without_traceback():
    code = (
        "import rastervision.pipeline\n"
        "from benchmark.errors import InputError\n"
        "raise InputError('data/x.json: not a STAC catalog')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr == "error: data/x.json: not a STAC catalog\n"


@pytest.mark.parametrize(
    "module",
    ["stac", "inference", "experiments.benchmark"],
)
def test_any_module_imports_first(module):
    """Loading the plugin while one of our modules is half-imported must not be a cycle."""
    result = subprocess.run(
        [sys.executable, "-c", f"import benchmark.{module}"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_onnx_version_conversion_noise_shows_only_when_verbose():
    code = (
        "import logging\n"
        "import rastervision.pipeline\n"
        "from rastervision.pipeline import rv_config_\n"
        "logging.basicConfig()\n"
        "converter = logging.getLogger('onnxscript.version_converter')\n"
        "converter.warning('quiet by default')\n"
        "rv_config_.set_verbosity(verbosity=2)\n"
        "converter.warning('shown with -v')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "quiet by default" not in result.stderr
    assert "shown with -v" in result.stderr


def test_our_commands_print_each_log_line_once():
    """``wb_scripts/predict`` and the other scripts log as ``rastervision`` does, once a line."""
    code = (
        "import logging\n"
        "from benchmark.cli_output import log_like_rastervision\n"
        "log = logging.getLogger('benchmark.predict_folder')\n"
        "log_like_rastervision()\n"
        "log.info('chips predicted')\n"
        "log.debug('hidden details')\n"
        "log_like_rastervision(verbose=True)\n"
        "log.debug('verbose details')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("chips predicted") == 1
    assert "benchmark.predict_folder: INFO - chips predicted" in result.stderr
    assert "hidden details" not in result.stderr
    assert result.stderr.count("verbose details") == 1
