"""The value types, exit statuses and one-line errors every command of ours shares."""

import argparse

import pytest

from benchmark.cli import footprints, options, predict
from benchmark.errors import InputError
from tests.fixtures.rasters import rgba, write_raster


@pytest.mark.parametrize(
    ("value_type", "text", "expected"),
    [
        (options.probability, "0", 0.0),
        (options.probability, "0.35", 0.35),
        (options.metres, "0.075", 0.075),
        (options.pixels, "0", 0),
        (options.side, "256", 256),
        (options.count, "1", 1),
        (options.epsg_code, "32636", 32636),
        (options.epsg_code, "epsg:4326", 4326),
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
        (options.epsg_code, "99999", "99999 is not a known EPSG code"),
        (options.epsg_code, "utm", "utm is not a known EPSG code"),
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


class TestPlan:
    """``--plan NAME`` forces a plan; ``--no-fast``, the older spelling of ``--plan fp32``."""

    @staticmethod
    def parse(*argv: str) -> argparse.Namespace:
        parser = argparse.ArgumentParser(prog="cmd")
        options.add_model_arguments(parser, unit="chips", window_default="whole chips")
        return parser.parse_args(argv)

    @pytest.mark.parametrize(
        ("argv", "plan"),
        [((), "auto"), (("--plan", "int8"), "int8"), (("--no-fast",), "fp32")],
    )
    def test_the_plan_asked_for(self, argv, plan):
        assert options.inference_options(self.parse(*argv)).execution == plan

    @pytest.mark.parametrize(
        ("argv", "problem"),
        [
            (("--plan", "int4"), "argument --plan: invalid choice: 'int4'"),
            (("--plan", "bf16", "--no-fast"), "argument --no-fast: not allowed with argument"),
        ],
    )
    def test_a_bad_plan_is_one_line_and_exit_2(self, capsys, argv, problem):
        with pytest.raises(SystemExit) as exit_info:
            self.parse(*argv)
        assert exit_info.value.code == options.EXIT_BAD_INPUT
        assert problem in capsys.readouterr().err


class TestDevice:
    """``--device`` in every command that runs a bundle: checked, then the bundle loaded there."""

    COMMANDS = pytest.mark.parametrize("main", [predict.main, footprints.main])

    @pytest.fixture
    def image(self, tmp_path) -> str:
        """A folder of one chip: an input both commands list."""
        write_raster(tmp_path / "img" / "a1.tif", rgba(64, 64), crs=None)
        return str(tmp_path / "img")

    def test_an_unknown_device_is_a_usage_error(self, capsys):
        parser = argparse.ArgumentParser(prog="cmd")
        options.add_model_arguments(parser, unit="chips", window_default="whole chips")
        with pytest.raises(SystemExit) as info:
            parser.parse_args(["--device", "gpu"])
        assert info.value.code == options.EXIT_BAD_INPUT
        err = capsys.readouterr().err
        assert "argument --device: device 'gpu': expected auto, cpu, cuda or cuda:N" in err

    @COMMANDS
    def test_a_gpu_the_machine_lacks_is_one_line_before_the_bundle_loads(
        self, main, image, tmp_path, fake_gpus, capsys
    ):
        fake_gpus(0)
        loaded = []
        argv = ["b.zip", image, str(tmp_path / "out"), "--device", "cuda:7"]
        assert main(argv, load_bundle=loaded.append) == options.EXIT_BAD_INPUT
        err = capsys.readouterr().err
        assert err == "error: device cuda:7: not available (this machine has no CUDA GPU)\n"
        assert loaded == []

    @COMMANDS
    def test_a_plan_the_device_cannot_run_is_one_line_before_the_bundle_loads(
        self, main, image, tmp_path, capsys
    ):
        loaded = []
        argv = ["b.zip", image, str(tmp_path / "out"), "--device", "cpu", "--plan", "fp16"]
        assert main(argv, load_bundle=loaded.append) == options.EXIT_BAD_INPUT
        assert capsys.readouterr().err == "error: --plan fp16: execution 'fp16' runs on cuda\n"
        assert loaded == []

    @COMMANDS
    def test_the_bundle_is_loaded_onto_the_device(self, main, image, tmp_path, monkeypatch):
        devices = []

        def load_bundle(uri: str, device: str) -> None:
            devices.append(device)
            raise InputError(f"{uri}: stop here")

        monkeypatch.setattr("benchmark.pipeline.bundle.load_bundle", load_bundle)
        argv = ["b.zip", image, str(tmp_path / "out"), "--device", "cpu"]
        assert main(argv) == options.EXIT_BAD_INPUT
        assert devices == ["cpu"]
