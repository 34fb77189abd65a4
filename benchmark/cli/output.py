"""What users see in the terminal when they run our code through the ``rastervision`` CLI.

Installed by our own code only, never by loading the plugin (which only registers, so other
Raster Vision users in the same environment keep RV's behaviour): by the experiments when they
parse their ``-a`` arguments, by our pipelines when RV builds them (``run_command`` of the
``local`` and ``batch`` runners), and by our own commands:

- an uncaught :class:`~benchmark.errors.InputError`, an output that cannot be written
  (:class:`~benchmark.errors.OutputError`: read-only folder, full disk) or a file the OS
  cannot read prints ``error: <one line>`` naming the file instead of a traceback
  (``rastervision -v`` brings the traceback back) and exits with status 2, as our own commands
  do (:func:`~benchmark.errors.one_line_error`; 1 stays for a crash);
- our loggers (``benchmark.*``) print through Raster Vision's handler at its verbosity, so our
  progress lines look like RV's and ``-v`` turns on our debug lines too;
- our own commands (``wb_scripts/predict``, the seam picture) log the same way through
  :func:`log_like_rastervision`;
- the ONNX version converter's warnings only show with ``-v``: RV's train and bundle export
  ONNX asking for operator set 15, torch >= 2.9 writes 18, and the failed conversion down to
  15 prints a traceback although the export is complete (the model keeps set 18).
"""

import atexit
import logging
import os
import sys
from types import TracebackType

from benchmark.cli.options import EXIT_BAD_INPUT, print_error
from benchmark.errors import one_line_error

RV_LOGGER = "rastervision"
ONNX_VERSION_CONVERTER_LOGGER = "onnxscript.version_converter"


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
    message = one_line_error(exc)
    if message is None:
        sys.__excepthook__(exc_type, exc, tb)
        return
    if _verbosity() <= 1:
        print_error(message)
    else:
        sys.__excepthook__(exc_type, exc, tb)
    # Python exits 1 after any uncaught exception, and a hook cannot raise SystemExit: run
    # the exit handlers (temporary directories, logging) as a normal exit would, then leave.
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_BAD_INPUT)


class _ToRasterVisionLog(logging.Handler):
    """Hand records to RV's handlers, which filter by RV's verbosity and format them.

    Only to the ``rastervision`` logger's own handlers: the record goes on to the root logger
    by our own logger's propagation, and handing it to RV's logger as a whole would bring it
    to the root's handlers (a user's ``basicConfig``, pytest's capture) a second time.
    """

    def emit(self, record: logging.LogRecord) -> None:
        rv_log = logging.getLogger(RV_LOGGER)
        if rv_log.isEnabledFor(record.levelno):
            for handler in rv_log.handlers:
                if record.levelno >= handler.level:
                    handler.handle(record)


class _OnlyWhenVerbose(logging.Filter):
    """Let records through only with ``rastervision -v`` (read when each record comes)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _verbosity() > 1


def install() -> None:
    """Install the exception hook, route ``benchmark.*`` logs, quiet the ONNX converter."""
    sys.excepthook = _excepthook
    converter_log = logging.getLogger(ONNX_VERSION_CONVERTER_LOGGER)
    if not any(isinstance(f, _OnlyWhenVerbose) for f in converter_log.filters):
        converter_log.addFilter(_OnlyWhenVerbose())
    _route_to_rastervision("benchmark")


def _route_to_rastervision(name: str) -> None:
    log = logging.getLogger(name)
    if not any(isinstance(h, _ToRasterVisionLog) for h in log.handlers):
        log.addHandler(_ToRasterVisionLog())
        log.setLevel(logging.DEBUG)


def log_like_rastervision(verbose: bool = False, also: tuple[str, ...] = ()) -> None:
    """Log our own commands as the ``rastervision`` CLI does: RV's format, each line once.

    Importing Raster Vision gives its logger a handler; :func:`install` routes ``benchmark.*``
    there, and this the loggers named in ``also`` (the measuring tools' ``tools.*``). A root
    handler on top, as ``logging.basicConfig`` adds, would print every record two or three
    times.
    """
    from rastervision.pipeline import rv_config_
    from rastervision.pipeline.verbosity import Verbosity

    install()
    for name in also:
        _route_to_rastervision(name)
    rv_config_.set_verbosity(Verbosity.VERBOSE if verbose else Verbosity.NORMAL)
