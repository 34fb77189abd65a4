"""The value types, exit statuses and one-line errors every command of ours shares."""

import argparse

import pytest

from benchmark.cli import options
from benchmark.errors import InputError


@pytest.mark.parametrize(
    ("value_type", "text", "expected"),
    [
        (options.probability, "0", 0.0),
        (options.probability, "0.35", 0.35),
        (options.metres, "0.075", 0.075),
        (options.pixels, "0", 0),
        (options.side, "256", 256),
        (options.count, "1", 1),
    ],
)
def test_good_values(value_type, text, expected):
    assert value_type(text) == expected


@pytest.mark.parametrize(
    ("value_type", "text", "message"),
    [
        (options.probability, "1", r"1 is not in \[0, 1\)"),
        (options.metres, "0", "0 is not a positive number of metres"),
        (options.pixels, "-1", "-1 is not a number of pixels"),
        (options.side, "0", "a window needs at least one pixel a side"),
        (options.count, "0", "0 is not a whole number above 0"),
    ],
)
def test_bad_values(value_type, text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        value_type(text)


def test_argparse_names_the_type_and_exits_with_bad_input(capsys):
    parser = argparse.ArgumentParser(prog="cmd")
    parser.add_argument("--window", type=options.side)
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--window", "x"])
    assert exit_info.value.code == options.EXIT_BAD_INPUT
    assert "argument --window: invalid side value: 'x'" in capsys.readouterr().err


class TestExitStatus:
    def test_passes_the_status_through(self):
        assert options.exit_status(lambda: options.EXIT_FAILED) == 1

    def test_input_error_is_one_line_and_exit_2(self, capsys):
        def fail() -> int:
            raise InputError("data/x.json: not a STAC catalog")

        assert options.exit_status(fail) == options.EXIT_BAD_INPUT == 2
        assert capsys.readouterr().err == "error: data/x.json: not a STAC catalog\n"

    def test_other_errors_are_not_hidden(self):
        def crash() -> int:
            raise RuntimeError("bug")

        with pytest.raises(RuntimeError):
            options.exit_status(crash)
