"""What users see in the terminal when they run our code through the ``rastervision`` CLI.

Installed by the plugin shim when Raster Vision loads plugins:

- an uncaught :class:`~benchmark.errors.InputError` prints ``error: <one line>`` instead of a
  traceback (``rastervision -v`` brings the traceback back); the exit status stays 1;
- our loggers (``benchmark.*``) print through Raster Vision's handler at its verbosity, so our
  progress lines look like RV's and ``-v`` turns on our debug lines too.
"""

import logging
import sys
from types import TracebackType

from benchmark.errors import InputError

RV_LOGGER = "rastervision"


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


class _ToRasterVisionLog(logging.Handler):
    """Hand records to RV's logger, which filters by RV's verbosity and formats them."""

    def emit(self, record: logging.LogRecord) -> None:
        rv_log = logging.getLogger(RV_LOGGER)
        if rv_log.isEnabledFor(record.levelno):
            rv_log.handle(record)


def install() -> None:
    """Install the exception hook and route ``benchmark.*`` logs through RV's logger."""
    sys.excepthook = _excepthook
    log = logging.getLogger("benchmark")
    if not any(isinstance(h, _ToRasterVisionLog) for h in log.handlers):
        log.addHandler(_ToRasterVisionLog())
        log.setLevel(logging.DEBUG)
