"""The errors the user fixes, and the one line each is shown as.

Everything the user can fix in the input (a missing file, a malformed catalog, an unknown scene
id) raises :class:`InputError` with a one-line message naming the file and the problem. An
output that cannot be written (a read-only folder, a full disk) raises :class:`OutputError`,
raised where outputs are published (:mod:`benchmark.data.uris`), naming the output. The file
system's own errors (a file that vanished, permission denied) name their file too:
:func:`one_line_error` turns all of these into the line :mod:`benchmark.console` and our
commands print instead of a traceback.
"""

import errno
from collections.abc import Sequence

# An error line lists this many problems, then only says how many more: a run where thousands of
# chips fail still gets one readable line.
MAX_LISTED_PROBLEMS = 10

# OS errors about the machine's files, not the code: the user frees space, makes the folder
# writable or puts the file back, and runs again.
FILE_SYSTEM_ERRNOS = frozenset(
    {
        errno.ENOENT,  # vanished between listing and reading, or never there
        errno.ENOTDIR,  # a folder in the path is a file
        errno.EACCES,
        errno.EPERM,
        errno.EROFS,
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EIO,
    }
)


def listed_problems(problems: Sequence[str]) -> str:
    """``problems`` for one error line: the first ``MAX_LISTED_PROBLEMS``, then how many more."""
    shown = "; ".join(problems[:MAX_LISTED_PROBLEMS])
    more = len(problems) - MAX_LISTED_PROBLEMS
    return shown + (f"; and {more} more" if more > 0 else "")


class InputError(ValueError):
    """Bad input that the user can fix; the message is shown without a traceback."""


class OutputError(OSError):
    """An output could not be written and was not published; ``filename`` is the output.

    Raised as ``OutputError(errno, what_happened, output_uri)``, so its one line reads
    ``<output>: not written: No space left on device``. Commands that go on past a bad input
    (one chip, one image) stop on it: the next output would meet the same folder or disk.
    """


def one_line_error(exc: BaseException) -> str | None:
    """The one line to show for ``exc`` instead of a traceback, or None for a bug (a traceback).

    An :class:`InputError`'s message, or ``<file>: <problem>`` for an :class:`OSError` that
    names its file and says what is wrong with the machine's files (``FILE_SYSTEM_ERRNOS``).
    """
    if isinstance(exc, InputError):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno in FILE_SYSTEM_ERRNOS and exc.filename:
        return " ".join(f"{exc.filename}: {exc.strerror}".split())
    return None
