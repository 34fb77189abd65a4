"""Raster Vision's S3 file system, with syncs that fail loudly and S3 outages as one line.

Raster Vision 0.31's ``S3FileSystem.sync_from_dir``/``sync_to_dir`` run ``aws s3 sync`` with
``subprocess.run`` and never look at its exit status: a sync that fails after the aws CLI's
retries is lost without a word, and training's sync of its output to S3 is such a sync. Here
the same command runs and a non-zero status raises :class:`S3SyncError`: one line naming the
S3 URI and the aws CLI's first error (``error: ...``, exit 2 under the ``rastervision`` CLI).
The other operations raise what Raster Vision raises, except that S3 failing after every
retry (``unavailable`` in :mod:`~benchmark.data.aws_errors`: 5xx, throttling, dropped
connections) becomes one line too, and is no longer a ``NotReadableError``: Raster Vision
catches that as "the file is not there", which an outage is not.

Why a registered subclass: Raster Vision finds a file system with
``registry.get_file_system(uri)``, the first registered class whose ``matches_uri`` accepts the
URI, and every caller (the learner's syncs, ``upload_or_copy``, ``download_if_needed``) goes
through it. Putting ours at the head of ``registry.file_systems`` when the plugin loads covers
them all, whichever of ``rastervision.aws_s3`` and our plugin loads first (plugins load in
``sys.path`` order). Patching ``S3FileSystem``'s methods would change Raster Vision's class by
mutation for everything in the process; the subclass leaves it as it is for anyone who names
it. RV's methods call each other by class name (``copy_to`` a directory calls
``S3FileSystem.sync_to_dir``, ``read_str`` calls ``S3FileSystem.read_bytes``), so each public
method that can fail is overridden, not only the syncs.

The class is made on first use (:func:`checked_s3_file_system`), not at import: importing
Raster Vision loads the plugins, which register this class, so a module subclassing at import
would meet itself half-initialized whenever it was a program's first import (the cycle
:mod:`benchmark.pipeline.runner_registration` describes).
"""

import functools
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from benchmark.data.aws_errors import UNAVAILABLE, AwsError, aws_problem
from benchmark.data.uri_schemes import is_s3

if TYPE_CHECKING:  # importing Raster Vision here would load the plugins: see above
    from rastervision.aws_s3 import S3FileSystem
    from rastervision.pipeline.registry import Registry

log = logging.getLogger(__name__)

SYNC_FAILED = "sync failed"  # AwsError.kind of S3SyncError
_checked: "type[S3FileSystem] | None" = None


class S3SyncError(AwsError):
    """``aws s3 sync`` ended with a non-zero status: some files were not copied."""

    def __init__(self, message: str) -> None:
        super().__init__(message, SYNC_FAILED)


def _first_error(stderr: str) -> str:
    """The aws CLI's first error line (``upload failed: ...``), else its last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if "failed" in line or "error" in line.lower():
            return line
    return lines[-1] if lines else "no message"


def aws_sync(
    src: str,
    dst: str,
    *,
    delete: bool = False,
    exclude: Sequence[str] = (),
    request_payer: bool = False,
    quiet: bool = False,
) -> None:
    """Run ``aws s3 sync SRC DST``; raise :class:`S3SyncError` unless it copied everything.

    The aws CLI retries each request as :mod:`benchmark.data.retries` says (it inherits the
    environment). Its exit status is 1 when a transfer failed and 2 when files were skipped
    (unreadable, vanished): both mean the destination is incomplete. Its stderr is passed on
    when it succeeds (warnings) and summed up in the error's one line when it fails (all of it
    with ``rastervision -v``).

    Args:
        src: local directory or ``s3://`` prefix.
        dst: local directory or ``s3://`` prefix.
        delete: also delete what ``dst`` has and ``src`` does not.
        exclude: ``--exclude`` patterns.
        request_payer: send ``--request-payer`` (requester-pays buckets).
        quiet: only show errors (``--only-show-errors``), no per-file lines.
    """
    command = ["aws", "s3", "sync", src, dst]
    if delete:
        command.append("--delete")
    for pattern in exclude:
        command += ["--exclude", pattern]
    if request_payer:
        command.append("--request-payer")
    if quiet:
        command.append("--only-show-errors")
    s3_uri = src if is_s3(src) else dst
    try:
        result = subprocess.run(command, stderr=subprocess.PIPE, text=True)
    except FileNotFoundError:
        raise S3SyncError(
            f"{s3_uri}: the aws CLI is not installed (pip install awscli): it copies folders "
            "to and from S3"
        ) from None
    if result.returncode != 0:
        log.debug("aws s3 sync %s %s:\n%s", src, dst, result.stderr)
        raise S3SyncError(
            f"{s3_uri}: aws s3 sync {src} {dst} failed (status {result.returncode}): "
            f"{_first_error(result.stderr)}"
        )
    sys.stderr.write(result.stderr)


@contextmanager
def unavailable_as_one_line(uri: str) -> Iterator[None]:
    """Raise S3 failing after every retry as one :class:`AwsError` line naming ``uri``."""
    try:
        yield
    except AwsError:
        raise
    except Exception as exc:
        problem = aws_problem(exc, uri)
        if problem is None or problem.kind != UNAVAILABLE:
            raise
        raise problem from exc


def _outage_as_one_line(method: Callable[..., Any]) -> staticmethod:
    """``method`` (a static one of RV's, its URI first) under :func:`unavailable_as_one_line`."""

    @functools.wraps(method)
    def checked(uri: str, *args: Any, **kwargs: Any) -> Any:
        with unavailable_as_one_line(uri):
            return method(uri, *args, **kwargs)

    return staticmethod(checked)


def _define(base: "type[S3FileSystem]") -> "type[S3FileSystem]":
    class CheckedS3FileSystem(base):  # type: ignore[valid-type,misc]
        """Raster Vision's S3 file system; see :mod:`benchmark.data.s3_file_system`."""

        @staticmethod
        def sync_from_dir(src_dir_uri: str, dst_dir: str, delete: bool = False) -> None:
            # RV passes --request-payer whenever get_request_payer() is truthy: always.
            payer = bool(base.get_request_payer())
            aws_sync(src_dir_uri, dst_dir, delete=delete, request_payer=payer)

        @staticmethod
        def sync_to_dir(src_dir: str, dst_dir_uri: str, delete: bool = False) -> None:
            payer = bool(base.get_request_payer())
            aws_sync(src_dir, dst_dir_uri, delete=delete, request_payer=payer)

        @staticmethod
        def copy_to(src_path: str, dst_uri: str) -> None:
            if os.path.isdir(src_path):
                CheckedS3FileSystem.sync_to_dir(src_path, dst_uri, delete=True)
                return
            with unavailable_as_one_line(dst_uri):
                base.copy_to(src_path, dst_uri)

        # The rest take the URI first; RV's read_str/write_str call S3FileSystem.read_bytes/
        # write_bytes by name, so each is wrapped, not only the outer ones.
        copy_from = _outage_as_one_line(base.copy_from)
        read_str = _outage_as_one_line(base.read_str)
        read_bytes = _outage_as_one_line(base.read_bytes)
        write_str = _outage_as_one_line(base.write_str)
        write_bytes = _outage_as_one_line(base.write_bytes)
        list_paths = _outage_as_one_line(base.list_paths)

    CheckedS3FileSystem.__qualname__ = CheckedS3FileSystem.__name__  # not _define.<locals>
    return CheckedS3FileSystem


def checked_s3_file_system() -> "type[S3FileSystem]":
    """The checked subclass of Raster Vision's ``S3FileSystem`` (made once, on first use)."""
    global _checked
    from rastervision.aws_s3.s3_file_system import S3FileSystem

    if _checked is None:  # importing RV may have registered, and so made, it meanwhile
        _checked = _define(S3FileSystem)
    return _checked


def register(registry: "Registry") -> None:
    """Make ``s3://`` URIs use the checked file system, ahead of Raster Vision's own."""
    checked = checked_s3_file_system()
    if checked not in registry.file_systems:
        registry.file_systems.insert(0, checked)
