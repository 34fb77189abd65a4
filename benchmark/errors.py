"""The one error type for bad user input.

Everything the user can fix (a missing file, a malformed catalog, an unknown scene id)
raises :class:`InputError` with a one-line message naming the file and the problem. The
plugin installs an exception hook (see :func:`install_excepthook`) so the ``rastervision``
CLI prints that line instead of a traceback; ``-v`` brings the traceback back.
"""

import sys
from types import TracebackType


class InputError(ValueError):
    """Bad input that the user can fix; the message is shown without a traceback."""


def _verbosity() -> int:
    """RV's verbosity (1 = default, 2 with ``-v``); 1 if RV is not set up yet."""
    try:
        from rastervision.pipeline import rv_config_

        return int(rv_config_.get_verbosity())
    except Exception:
        return 1


def _excepthook(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    if issubclass(exc_type, InputError) and _verbosity() <= 1:
        sys.stderr.write(f"error: {exc}\n")
        sys.stderr.flush()
        return
    sys.__excepthook__(exc_type, exc, tb)


def install_excepthook() -> None:
    """Make uncaught :class:`InputError` print one line (exit status stays 1)."""
    sys.excepthook = _excepthook
