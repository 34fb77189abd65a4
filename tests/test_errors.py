"""Which errors become one line naming a file, and which keep their traceback (bugs)."""

import errno
import os

import pytest

from benchmark.console import EXIT_BAD_INPUT, EXIT_FAILED, crash_status, exit_status
from benchmark.errors import (
    MAX_LISTED_PROBLEMS,
    InputError,
    OutputError,
    listed_problems,
    one_line_error,
)

pytestmark = pytest.mark.faults


def os_error(code: int, filename: str | None = "/data/x.tif") -> OSError:
    return OSError(code, os.strerror(code), filename)


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (InputError("cat.json: not JSON"), "cat.json: not JSON"),
        (
            OutputError(errno.ENOSPC, "not written: No space left on device", "/o/a.tif"),
            "/o/a.tif: not written: No space left on device",
        ),
        (os_error(errno.ENOENT), "/data/x.tif: No such file or directory"),
        (os_error(errno.EACCES), "/data/x.tif: Permission denied"),
        (os_error(errno.EROFS), "/data/x.tif: Read-only file system"),
        (os_error(errno.ENOENT, filename=None), None),  # says no file: a bug's traceback
        (os_error(errno.EEXIST), None),  # not the machine's fault
        (RuntimeError("bug"), None),
    ],
)
def test_one_line_error(error, line):
    assert one_line_error(error) == line


def test_commands_exit_2_with_the_line_and_keep_tracebacks_for_bugs(capsys):
    def fail(error: BaseException):
        def run() -> int:
            raise error

        return run

    assert exit_status(fail(os_error(errno.ENOSPC))) == EXIT_BAD_INPUT
    assert capsys.readouterr().err == "error: /data/x.tif: No space left on device\n"
    with pytest.raises(OSError, match="File exists"):
        exit_status(fail(os_error(errno.EEXIST)))  # a bug: on to the group's crash line


def test_a_crash_is_one_line_and_exit_1(capsys):
    assert crash_status(RuntimeError("a bug")) == EXIT_FAILED
    assert capsys.readouterr().err == "error: RuntimeError: a bug (a bug; -v shows the traceback)\n"


@pytest.mark.parametrize(
    ("count", "line"),
    [
        (0, ""),
        (1, "p0"),
        (MAX_LISTED_PROBLEMS, "; ".join(f"p{i}" for i in range(MAX_LISTED_PROBLEMS))),
        (
            MAX_LISTED_PROBLEMS + 3,
            "; ".join(f"p{i}" for i in range(MAX_LISTED_PROBLEMS)) + "; and 3 more",
        ),
    ],
)
def test_listed_problems_shows_the_first_ones_then_counts_the_rest(count: int, line: str) -> None:
    assert listed_problems([f"p{i}" for i in range(count)]) == line
