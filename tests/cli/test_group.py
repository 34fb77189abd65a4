"""The ``benchmark`` command group: its commands, its one error path, its aliases."""

import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.cli import locate, main
from benchmark.console import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK

BIN = Path(sys.executable).parent


@pytest.mark.parametrize("command", list(main.COMMANDS))
def test_every_command_has_help(command, capsys):
    assert main.main([command, "--help"]) == EXIT_OK
    # demo.py (its owner's) still names its prog python -m benchmark.cli.demo
    assert capsys.readouterr().out.startswith(
        f"usage: benchmark {command}" if command != "demo" else "usage: "
    )


def test_every_word_after_the_command_reaches_it(monkeypatch):
    """``--`` too: ``benchmark demo --out X -- -a num_epochs 8`` passes ``-a`` on to RV."""
    seen = []
    monkeypatch.setattr("benchmark.cli.demo.main", lambda words: seen.append(words) or EXIT_OK)
    words = ["--out", "x", "--", "-a", "num_epochs", "8"]
    assert main.main(["demo", *words]) == EXIT_OK
    assert seen == [words]


def test_the_group_lists_its_commands(capsys):
    assert main.main(["--help"]) == EXIT_OK
    listed = capsys.readouterr().out
    assert all(command in listed for command in main.COMMANDS)


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["frobnicate"], "No such command 'frobnicate'"),
        (["locate", "nowhere", "r", "e"], "argument name: invalid choice: 'nowhere'"),
        (["predict", "--threshold", "2", "b", "i", "o"], "2 is not in [0, 1)"),
    ],
)
def test_a_bad_command_line_is_one_line_and_exit_2(argv, problem, capsys):
    assert main.main(argv) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and problem in err


def test_bad_input_names_the_file_in_one_line_and_v_shows_the_traceback(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert main.main(["summary", str(missing), "e"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith(f"error: {missing}") and err.count("\n") == 1
    assert main.main(["-v", "summary", str(missing), "e"]) == EXIT_BAD_INPUT
    assert "Traceback" in capsys.readouterr().err


def test_a_crash_is_one_line_and_exit_1_and_v_shows_the_traceback(monkeypatch, capsys):
    def bug(root_uri: str, experiment_id: str) -> str:
        raise RuntimeError("a bug")

    monkeypatch.setitem(locate.LOCATIONS, "config", bug)
    assert main.main(["locate", "config", "r", "e"]) == EXIT_FAILED
    assert capsys.readouterr().err == "error: RuntimeError: a bug (a bug; -v shows the traceback)\n"
    assert main.main(["-v", "locate", "config", "r", "e"]) == EXIT_FAILED
    assert "Traceback" in capsys.readouterr().err


def run(*words: str) -> subprocess.CompletedProcess:
    return subprocess.run(words, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    ("alias", "command"),
    [
        ([str(BIN / "benchmark-predict")], "predict"),
        ([str(BIN / "benchmark-footprints")], "footprints"),
        ([sys.executable, "-m", "benchmark.cli.locate"], "locate"),
        ([sys.executable, "-m", "benchmark.cli.sync"], "sync"),
    ],
)
def test_the_old_entry_points_are_aliases(alias, command):
    """Same words, same output, same status: a bad option, then a good command line."""
    group = [str(BIN / "benchmark"), command]
    for words in (["--frobnicate"], ["--help"]):
        old, new = run(*alias, *words), run(*group, *words)
        assert (old.returncode, old.stdout, old.stderr) == (new.returncode, new.stdout, new.stderr)
    assert run(*alias, "--frobnicate").returncode == EXIT_BAD_INPUT


def test_python_m_benchmark_cli_is_the_group():
    result = run(sys.executable, "-m", "benchmark.cli", "locate", "config", "r", "e")
    assert (result.returncode, result.stdout) == (EXIT_OK, "r/pipeline-config/e.json\n")
