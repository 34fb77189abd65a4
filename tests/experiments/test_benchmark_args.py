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


class TestInstanceTarget:
    def test_the_instance_arguments_reach_their_configs(self):
        args = parse_args(
            BenchmarkArgs,
            {
                "root_uri": "out",
                "target": "instance",
                "border_width": "0.3",
                "contact_width": "0.9",
                "channel_weights": "1, 0.5,0.2",
            },
        )
        assert (args.target, args.border_width, args.contact_width) == ("instance", 0.3, 0.9)
        assert args.channel_weights == (1.0, 0.5, 0.2)

    def test_binary_is_the_default_with_the_winners_weights(self):
        args = parse_args(BenchmarkArgs, {"root_uri": "out"})
        assert args.target == "binary" and args.channel_weights == (1.0, 0.25, 0.1)
        assert (args.border_width, args.contact_width) == (0.6, 1.2)

    @pytest.mark.parametrize(
        ("given", "problem"),
        [
            ({"target": "instances"}, "-a target: .*'binary' or 'instance'"),
            ({"border_width": "0.3"}, "border_width: only with -a target instance"),
            ({"target": "instance", "contact_width": "0"}, "-a contact_width: .*greater than 0"),
            ({"target": "instance", "channel_weights": "1,0.25"}, "-a channel_weights"),
            ({"target": "instance", "channel_weights": "1,-1,0"}, "none < 0, one > 0"),
            ({"target": "instance", "self_train_rounds": "1"}, "needs -a target binary"),
        ],
    )
    def test_bad_instance_arguments_are_one_line(self, given, problem):
        with pytest.raises(InputError, match=rf"^bad experiment arguments: .*{problem}"):
            parse_args(BenchmarkArgs, {"root_uri": "out", **given})
