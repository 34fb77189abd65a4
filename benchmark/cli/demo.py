"""Run the whole benchmark on the Kampala sample with the demo's recipe (``wb_scripts/demo``).

PREPROCESS, then chip, train, predict, eval, bundle and POSTPROCESS on CPU with the inprocess
runner, each command line the one a user would type (``rastervision --tmpdir $RV_TMP_DIR run
inprocess ...``) run as a child process whose output goes straight to the terminal; then where
the model bundle, the eval report (validation Jaccard) and submission.tgz are. The recipe is
:mod:`benchmark.experiments.demo_recipe`'s, the one ``wb_scripts/ablation --recipe demo`` varies.

Exit status: 0 done; 2 a bad option or setting (one line); otherwise the status of the
``rastervision`` run that failed (128 + N for one killed by signal N, as a shell says).
"""

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn

from benchmark.cli import options
from benchmark.data import layout
from benchmark.errors import InputError
from benchmark.experiments import demo_recipe

PREPROCESS = ("benchmark.experiments.split_images", "PREPROCESS")
BENCHMARK = (
    "benchmark.experiments.benchmark",
    *("chip", "train", "predict", "eval", "bundle", "POSTPROCESS"),
)


def rv_flags(args: Mapping[str, str]) -> list[str]:
    """``{"k": "v"}`` -> ``["-a", "k", "v"]``: experiment arguments on RV's command line."""
    return [word for key, value in args.items() for word in ("-a", key, value)]


def rv_run(tmp: str, experiment: Sequence[str], args: Mapping[str, str]) -> list[str]:
    """``rastervision --tmpdir TMP run inprocess EXPERIMENT COMMANDS... -a ...``."""
    return ["rastervision", "--tmpdir", tmp, "run", "inprocess", *experiment, *rv_flags(args)]


def sample_scenes() -> dict[str, str]:
    """What PREPROCESS and the benchmark both take: the sample's scenes and the GSD."""
    return {
        "train_stac_uri": str(demo_recipe.TRAIN_STAC_URI),
        "train_ids": demo_recipe.TRAIN_IDS,
        "valid_ids": demo_recipe.VALID_IDS,
        "gsd": demo_recipe.GSD,
    }


def command_lines(
    out: Path, tmp: str, test: bool, pretrained: bool, extra: Sequence[str]
) -> list[list[str]]:
    """PREPROCESS's command line, then the benchmark's (``extra`` last: it wins)."""
    benchmark = {
        "root_uri": str(out),
        "experiment_id": demo_recipe.EXPERIMENT_ID,
        **sample_scenes(),
        "test_img_dir": str(demo_recipe.TEST_IMG_DIR),
        "test_chip_gsd": demo_recipe.TEST_CHIP_GSD,
        "test": str(test).lower(),
        **demo_recipe.ARGS,
        "pretrained": str(pretrained).lower(),
    }
    return [
        rv_run(tmp, PREPROCESS, {"root_uri": str(out), **sample_scenes()}),
        [*rv_run(tmp, BENCHMARK, benchmark), *extra],
    ]


def child_status(returncode: int) -> int:
    """A child's exit status as a shell reports it: 128 + N for one killed by signal N."""
    return returncode if returncode >= 0 else 128 - returncode


def rv_tmp_dir() -> str:
    """``$RV_TMP_DIR``: without it Raster Vision writes temporaries under ``/opt/data/tmp``."""
    tmp = os.environ.get("RV_TMP_DIR")
    if not tmp:
        raise InputError(
            "RV_TMP_DIR is not set: the folder for Raster Vision's temporary files "
            "(wb_scripts/demo sets it)"
        )
    return tmp


def run_demo(out: Path, test: bool, pretrained: bool, extra: Sequence[str]) -> int:
    """Both runs, stopping at a failed one with its status, then the summary."""
    start = time.monotonic()
    for command in command_lines(out, rv_tmp_dir(), test, pretrained, extra):
        status = child_status(subprocess.run(command, check=False).returncode)
        if status != options.EXIT_OK:
            return status
    from benchmark.cli import summary  # reads the outputs' layout: seconds to import

    seconds = int(time.monotonic() - start)
    run_id = layout.run_experiment_id(demo_recipe.EXPERIMENT_ID, test)
    return summary.main([str(out), run_id, "--seconds", str(seconds)])


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one ``error: ...`` line, as the shell script's were."""

    def error(self, message: str) -> NoReturn:
        """Raise ``message`` for :func:`~benchmark.cli.options.exit_status` to show."""
        raise InputError(f"{message} (see --help)")


def build_parser() -> OneLineParser:
    """The command line (``wb_scripts/demo`` passes its options here)."""
    parser = OneLineParser(
        prog="python -m benchmark.cli.demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Anything after -- goes to the benchmark experiment, e.g. -- -a num_epochs 8",
        allow_abbrev=False,
    )
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output root")
    parser.add_argument(
        "--pretrained",
        action="store_true",
        help="start from ImageNet encoder weights (downloads them: needs internet)",
    )
    parser.add_argument(
        "--test",
        action="store_true",
        help="a test run of a couple of minutes (-a test true: tiny training, low Jaccard)",
    )
    return parser


def parse_command_line(words: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """The options, and the words after the first ``--`` (passed on to the experiment as they are).

    Raises:
        InputError: an unknown option or a word before ``--`` that is none, or an option
            without its value: one line.
    """
    extra: list[str] = []
    if "--" in words:
        end = words.index("--")
        words, extra = words[:end], words[end + 1 :]
    args, unknown = build_parser().parse_known_args(words)
    if unknown:
        raise InputError(f"unknown option {unknown[0]} (see --help)")
    return args, extra


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmark.cli.demo --out DIR [--test] [--pretrained] [-- EXTRA...]``."""

    def run() -> int:
        args, extra = parse_command_line(list(sys.argv[1:] if argv is None else argv))
        return run_demo(args.out.resolve(), args.test, args.pretrained, extra)

    return options.exit_status(run)


if __name__ == "__main__":
    sys.exit(main())
