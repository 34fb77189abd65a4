"""The benchmark's ``-a`` arguments refuse what would only fail later, in one line."""

import pytest

from benchmark.errors import InputError
from benchmark.experiments.args import parse_args
from benchmark.experiments.benchmark_args import BenchmarkArgs


def test_an_unknown_loss_is_one_line_before_the_config_is_built():
    """Raster Vision validates the built config outside our code, where it would be a traceback."""
    with pytest.raises(
        InputError, match=r"^bad experiment arguments: -a loss: .*unknown loss 'focal'"
    ):
        parse_args(BenchmarkArgs, {"root_uri": "out", "loss": "focal"})


def test_a_known_loss_sum_passes():
    assert (
        parse_args(BenchmarkArgs, {"root_uri": "out", "loss": "ce:0.5+lovasz"}).loss
        == "ce:0.5+lovasz"
    )
