"""``python -m benchmark.cli.demo`` (``wb_scripts/demo``): its command lines, statuses and errors.

The ``rastervision`` children and the summary are faked: nothing trains. The expected command
lines are the ones ``wb_scripts/demo`` ran when the recipe was written in it.
"""

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from benchmark.cli import demo, summary

TMP = "/rv/tmp"
# The recipe's -a arguments, in the order the shell script gave them.
RECIPE = [
    "-a", "chip_method", "random", "-a", "chip_sz", "128",
    "-a", "random_sz_min", "112", "-a", "random_sz_max", "160",
    "-a", "chips_per_scene", "600", "-a", "num_epochs", "5", "-a", "lr", "1e-3",
    "-a", "loss", "lovasz", "-a", "aug", "d4",
    "-a", "predict_window", "128", "-a", "predict_overlap", "64",
    "-a", "ema_decay", "0.99", "-a", "threshold", "share",
]  # fmt: skip


def expected_commands(
    repo_root: Path,
    out: Path,
    test: str = "false",
    pretrained: str = "false",
    extra: Sequence[str] = (),
) -> list[list[str]]:
    """``wb_scripts/demo``'s two command lines as the shell script wrote them."""
    sample = repo_root / "data" / "kampala_sample"
    scenes = [
        "-a", "train_stac_uri", f"{sample}/train_tier_1/catalog.json",
        "-a", "train_ids", "kam/94f080", "-a", "valid_ids", "kam/8a5983", "-a", "gsd", "0.3",
    ]  # fmt: skip
    rastervision = ["rastervision", "--tmpdir", TMP, "run", "inprocess"]
    return [
        [
            *rastervision, "benchmark.experiments.split_images", "PREPROCESS",
            "-a", "root_uri", str(out), *scenes,
        ],
        [
            *rastervision, "benchmark.experiments.benchmark",
            "chip", "train", "predict", "eval", "bundle", "POSTPROCESS",
            "-a", "root_uri", str(out), "-a", "experiment_id", "kampala", *scenes,
            "-a", "test_img_dir", f"{sample}/test", "-a", "test_chip_gsd", "0.075",
            "-a", "test", test, "-a", "pretrained", pretrained, *RECIPE, *extra,
        ],
    ]  # fmt: skip


@dataclass
class Children:
    """Stands in for ``subprocess.run`` and the summary: records them, fails as told."""

    statuses: dict[str, int] = field(default_factory=dict)  # by the command's experiment
    commands: list[list[str]] = field(default_factory=list)
    summaries: list[list[str]] = field(default_factory=list)

    def run(self, command: list[str], check: bool) -> subprocess.CompletedProcess:
        assert check is False
        self.commands.append(command)
        return subprocess.CompletedProcess(command, self.statuses.get(command[5], 0))

    def summary(self, argv: list[str]) -> int:
        self.summaries.append(argv)
        return 0


@pytest.fixture
def children(monkeypatch) -> Children:
    """Fake children and summary, ``RV_TMP_DIR`` set as ``wb_scripts/_venv.sh`` sets it."""
    fake = Children()
    monkeypatch.setattr(demo.subprocess, "run", fake.run)
    monkeypatch.setattr(summary, "main", fake.summary)
    monkeypatch.setenv("RV_TMP_DIR", TMP)
    return fake


def test_runs_the_demos_two_command_lines_then_the_summary(children, repo_root, tmp_path):
    out = tmp_path / "demo"
    assert demo.main(["--out", str(out)]) == 0
    assert children.commands == expected_commands(repo_root, out)
    ((root, experiment_id, option, seconds),) = children.summaries
    assert (root, experiment_id, option) == (str(out), "kampala", "--seconds")
    assert int(seconds) >= 0


def test_test_pretrained_and_extra_arguments(children, repo_root, tmp_path):
    extra = ["-a", "num_epochs", "8", "-a", "tta", "true"]
    assert demo.main(["--test", "--pretrained", "--out", str(tmp_path), "--", *extra]) == 0
    assert children.commands == expected_commands(repo_root, tmp_path, "true", "true", extra)
    assert children.summaries[0][:2] == [str(tmp_path), "kampala-TEST"]


def test_a_relative_out_is_in_the_working_directory(children, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    demo.main(["--out", "out/demo"])
    assert children.summaries[0][0] == str(tmp_path / "out" / "demo")


@pytest.mark.parametrize(
    ("failing", "status", "ran"),
    [
        ("benchmark.experiments.split_images", 3, 1),
        ("benchmark.experiments.benchmark", 1, 2),
        ("benchmark.experiments.benchmark", -9, 2),  # killed: 128 + 9, as a shell says
    ],
)
def test_a_failed_run_stops_the_demo_with_its_status(children, tmp_path, failing, status, ran):
    children.statuses[failing] = status
    assert demo.main(["--out", str(tmp_path)]) == (status if status > 0 else 137)
    assert len(children.commands) == ran
    assert not children.summaries


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--out", "o", "--frobnicate"], "unknown option --frobnicate"),
        (["--out", "o", "extra"], "unknown option extra"),  # EXTRA goes after --
        (["--out", "o", "--pre"], "unknown option --pre"),  # no abbreviations
        (["--test"], "the following arguments are required: --out"),
        (["--out"], "argument --out: expected one argument"),
    ],
)
def test_a_bad_option_is_one_line_and_runs_nothing(children, capsys, argv, message):
    assert demo.main(argv) == 2
    assert capsys.readouterr().err == f"error: {message} (see --help)\n"
    assert not children.commands


def test_without_rv_tmp_dir_one_line(children, monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("RV_TMP_DIR")
    assert demo.main(["--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: RV_TMP_DIR is not set: ")
    assert not children.commands


def test_rv_flags():
    assert demo.rv_flags({"a": "1", "b": "x"}) == ["-a", "a", "1", "-a", "b", "x"]
