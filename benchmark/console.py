"""What users see in the terminal when our code runs: exit statuses, one-line errors, logs.

The same whether our ``benchmark`` command or ``rastervision`` runs it.

A leaf (it imports nothing of ours but :mod:`benchmark.errors`), so the command line
(:mod:`benchmark.cli`) and what Raster Vision runs (our experiments' ``get_config``, our
pipelines' commands, our batch runner) share it without importing each other. Nothing here
changes the process until our code asks: loading the plugin does not, so other Raster Vision
pipelines in the environment keep Python's and RV's behaviour.

- Exit statuses: ``EXIT_OK`` (0) done; ``EXIT_FAILED`` (1) ran, but some of the work could
  not be done (listed), or crashed; ``EXIT_BAD_INPUT`` (2) stopped: the input is wrong or an
  output cannot be written, said in one ``error: ...`` line naming the file
  (:func:`~benchmark.errors.one_line_error`). Command lines that do not parse exit 2 too, so a
  caller tells "fix the input or the machine" from "some items failed" by the status alone.
- Tracebacks only when asked: ``-v`` (ours or ``rastervision -v``) shows them.
- Our loggers (``benchmark.*``) print through Raster Vision's handler at its verbosity, so our
  progress lines look like RV's; the ONNX version converter's warnings only show with ``-v``
  (RV's train and bundle ask for operator set 15, torch >= 2.9 writes 18, and the failed
  conversion prints a traceback although the export is complete).
"""

import logging
import sys
import traceback
from collections.abc import Callable
from contextlib import ContextDecorator
from types import TracebackType
from typing import TypeVar

from benchmark.errors import InputError, one_line_error

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

RV_LOGGER = "rastervision"
ONNX_VERSION_CONVERTER_LOGGER = "onnxscript.version_converter"

T = TypeVar("T")
_verbose = False  # our own -v; Raster Vision's is read from rv_config_


def print_error(message: str) -> None:
    """``error: <message>`` on stderr, as Raster Vision's commands and ours show problems."""
    sys.stderr.write(f"error: {message}\n")


def set_verbose(verbose: bool) -> None:
    """Our ``-v``: tracebacks and debug lines (Raster Vision's ``-v`` counts too)."""
    global _verbose
    _verbose = verbose


def is_verbose() -> bool:
    """Whether ``-v`` was given, to us or to ``rastervision``."""
    if _verbose:
        return True
    try:
        from rastervision.pipeline import rv_config_

        return int(rv_config_.get_verbosity()) > 1
    except Exception:  # Raster Vision not importable or not set up yet: not asked for
        return False


def exit_status(run: Callable[[], int]) -> int:
    """Run a command's work; a problem the user fixes becomes one line and ``EXIT_BAD_INPUT``.

    Our commands return their status (``main() -> int``, testable without a process); any
    other exception (a bug) is raised on, to the ``benchmark`` group's crash line.
    """
    try:
        return run()
    except (InputError, OSError) as exc:
        if not _shown_in_one_line(exc):
            raise
        return EXIT_BAD_INPUT


def crash_status(exc: BaseException) -> int:
    """Show an exception that ended a command: one line (traceback with ``-v``); its status."""
    if _shown_in_one_line(exc):
        return EXIT_BAD_INPUT
    _show(exc, f"{type(exc).__name__}: {exc} (a bug; -v shows the traceback)")
    return EXIT_FAILED


def _shown_in_one_line(exc: BaseException) -> bool:
    """Show ``exc`` as its one line if it is one the user fixes; whether it was."""
    message = one_line_error(exc)
    if message is not None:
        _show(exc, message)
    return message is not None


def _show(exc: BaseException, message: str) -> None:
    if is_verbose():
        traceback.print_exception(exc)
    else:
        print_error(message)


class one_line_errors(ContextDecorator):  # a decorator's name, as contextmanager's
    """Where Raster Vision's command line enters our code: a fixable error exits 2 in one line.

    Around our experiments' ``get_config``, our pipelines' commands and our batch runner. Only
    under a command line (a click context is active: ``rastervision`` or ``benchmark``) does an
    :func:`~benchmark.errors.one_line_error` become the line and ``SystemExit(2)``, which
    ``rastervision run inprocess`` and each ``rastervision run_command`` of the ``local`` and
    ``batch`` runners exit with. Called from Python (tests, tools), the error is raised as it is.
    """

    def __enter__(self) -> "one_line_errors":
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, _: TracebackType
    ) -> bool:
        if exc is None or not _under_a_command_line() or not _shown_in_one_line(exc):
            return False
        raise SystemExit(EXIT_BAD_INPUT) from None


def _under_a_command_line() -> bool:
    import click

    return click.get_current_context(silent=True) is not None


def as_rastervision_runs_it(pipeline: T) -> T:
    """One of our pipelines, built by its config for Raster Vision: our terminal behaviour on.

    A config's ``build`` is where ``run_command`` (the ``local`` and ``batch`` runners) first
    runs our code, so our log lines are routed here (:func:`install`) and the pipeline's
    commands go under :class:`one_line_errors`. The instance's attributes shadow the class's
    methods, which Raster Vision looks up with ``getattr(pipeline, command)``; the class is
    left as it is.
    """
    install()
    for name in getattr(pipeline, "commands"):  # noqa: B009 (any Pipeline, typed loosely)
        setattr(pipeline, name, one_line_errors()(getattr(pipeline, name)))
    return pipeline


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
    """Let records through only with ``-v`` (read when each record comes)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return is_verbose()


def install() -> None:
    """Route ``benchmark.*`` logs through RV's handler and quiet the ONNX converter."""
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
    times. ``verbose`` adds to the ``benchmark`` group's ``-v``, never takes it back.
    """
    from rastervision.pipeline import rv_config_
    from rastervision.pipeline.verbosity import Verbosity

    install()
    for name in also:
        _route_to_rastervision(name)
    set_verbose(verbose or _verbose)
    rv_config_.set_verbosity(Verbosity.VERBOSE if _verbose else Verbosity.NORMAL)
