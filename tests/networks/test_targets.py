"""Which target a model config is, and the probability bands a prediction may have."""

from types import SimpleNamespace

import pytest

from benchmark.errors import InputError
from benchmark.networks.targets import check_probability_bands, target_of
from benchmark.training.model_config import BenchmarkModelConfig


def test_a_model_config_without_the_field_is_binary():
    assert target_of(BenchmarkModelConfig()) == "binary"
    assert target_of(SimpleNamespace()) == "binary"  # RV's own model configs
    assert target_of(SimpleNamespace(target="instance")) == "instance"


def test_an_unknown_target_is_one_line_naming_the_config():
    with pytest.raises(InputError, match=r"^SimpleNamespace: model target 'panoptic', expected"):
        target_of(SimpleNamespace(target="panoptic"))


@pytest.mark.parametrize("count", [1, 3])
def test_one_and_three_probability_bands_are_allowed(count):
    check_probability_bands(count, "p.tif")


@pytest.mark.parametrize("count", [0, 2, 4])
def test_other_band_counts_are_one_line(count):
    with pytest.raises(InputError, match=rf"^p\.tif: {count} probability bands; expected 1 "):
        check_probability_bands(count, "p.tif")
