"""Reading and writing outputs at URIs (local paths or ``s3://``) without half-written files.

Every output goes through :func:`atomic_output`: it is written under a partial name and only
renamed into place (locally) or uploaded whole (S3) when complete, so a killed run never
leaves a file that a later command or a re-run would accept as finished, nor one that a glob
of outputs (``*.tif``, ``**/*.tif``) would meet. An output that cannot be written (read-only
folder, full disk) is an :class:`~benchmark.errors.OutputError` naming it, and nothing is
published. GDAL hides the disk filling up (a log line, an empty or truncated file, or an error
without the reason), so GeoTIFFs go through :func:`atomic_geotiff`, which checks them whole, and
any error while the output's disk is (nearly) full is reported as the disk being full.
"""

import errno
import hashlib
import itertools
import json
import os
import re
import shutil
import socket
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rastervision.pipeline.file_system import file_exists, file_to_str, list_paths, upload_or_copy

from benchmark.data.aws_errors import aws_errors, s3_object_exists
from benchmark.data.uri_schemes import is_s3
from benchmark.errors import InputError, OutputError

# Temporary directories (system temp, S3 uploads) start with this hidden prefix. Runs before
# partial files moved to PARTIAL_DIR also left ``.tmp-*`` files beside outputs: listings still
# skip hidden names.
TMP_PREFIX = ".tmp-"
# A local output in ``{dir}`` is written as ``{dir}/.partial/{pid}-{host}-{random}-{name}.partial``.
PARTIAL_DIR = ".partial"
PARTIAL_SUFFIX = ".partial"
_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]
_PARTIAL_NAME = re.compile(rf"(\d+)-([0-9a-f]{{8}})-[0-9a-f]{{8}}-.+{re.escape(PARTIAL_SUFFIX)}")
_writing: set[str] = set()  # this process's partial files in progress (all threads)
_DEVICE_FULL = (errno.ENOSPC, errno.EDQUOT)
# Below this much free space, a write that failed (GDAL and OGR do not say why) or a GeoTIFF
# that came out incomplete is put down to the disk being full.
NEARLY_FULL_BYTES = 1 << 20


def _partial_path(uri: str) -> str:
    """Where this process writes local ``uri`` until it is complete (see :func:`atomic_output`)."""
    parent, name = os.path.split(os.path.abspath(uri))
    tag = f"{os.getpid()}-{_HOST}-{uuid.uuid4().hex[:8]}"
    return os.path.join(parent, PARTIAL_DIR, f"{tag}-{name}{PARTIAL_SUFFIX}")


def _pid_alive(pid: int) -> bool:
    if os.name != "posix":  # os.kill(pid, 0) would send Ctrl-C on Windows: keep the partial
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_partials(parent: str) -> None:
    """Remove the partial files in ``parent`` that dead processes of this machine left.

    A partial is stale when its name says this host and a process id that no longer runs (or
    this process, but not one of its writes in progress: a restarted container can reuse the
    pid). Others are kept: another split writing the same folder right now, another machine
    on a shared file system, files not named by :func:`atomic_output`.
    """
    partial_dir = os.path.join(parent, PARTIAL_DIR)
    try:
        names = os.listdir(partial_dir)
    except FileNotFoundError:
        return
    for name in names:
        match = _PARTIAL_NAME.fullmatch(name)
        if match is None or match[2] != _HOST:
            continue
        path = os.path.join(partial_dir, name)
        pid = int(match[1])
        if (pid == os.getpid() and path not in _writing) or not _pid_alive(pid):
            with suppress(FileNotFoundError):
                os.remove(path)


def _not_written(uri: str, exc: OSError) -> OutputError:
    """The :class:`OutputError` for ``uri`` that ``exc`` (from the OS) stopped."""
    code = exc.errno if exc.errno is not None else errno.EIO
    return OutputError(code, f"not written: {exc.strerror or exc}", uri)


def make_output_root(uri: str) -> None:
    """Create the local output root ``uri`` now, or say in one line why it cannot be.

    Raster Vision writes the pipeline config there as soon as our experiment returns, outside
    our code, where a missing parent or a read-only disk is a traceback. An ``s3://`` root is
    not written here: the batch runner and ``benchmark check-aws`` check its bucket.
    """
    if is_s3(uri):
        return
    try:
        os.makedirs(uri, exist_ok=True)
        if not os.access(uri, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), uri)
    except OSError as exc:
        raise _not_written(uri, exc) from None


def _nearly_full(folder: str) -> bool:
    """Whether the disk holding ``folder`` has (almost) no space left for this user."""
    try:
        return shutil.disk_usage(folder).free < NEARLY_FULL_BYTES
    except OSError:
        return False


def _body_error(uri: str, exc: Exception, folder: str, where: str = "") -> Exception:
    """What the body of ``atomic_output(uri)``, writing in ``folder``, failing with ``exc`` raises.

    A full disk or quota becomes an :class:`OutputError` for ``uri``: said by the OS
    (``ENOSPC``, ``EDQUOT``), or guessed from the space left when a library hid the reason.
    Anything else (an inner output's error, a bug, an unreadable input) is raised as it is.
    """
    if isinstance(exc, OutputError):  # an inner atomic_output's (two outputs written together)
        return exc
    said = exc.errno if isinstance(exc, OSError) and exc.errno in _DEVICE_FULL else None
    if said is None and not _nearly_full(folder):
        return exc
    code = said or errno.ENOSPC
    return OutputError(code, f"not written: {os.strerror(code)}{where}", uri)


@contextmanager
def atomic_output(uri: str) -> Iterator[str]:
    """Yield a local path to write ``uri``'s content to; publish it only if the body succeeds.

    Locally the partial file is ``{dir}/.partial/{pid}-{host}-{random}-{name}.partial``: on the
    destination's file system, so the final ``os.replace`` is atomic, and never with the
    final extension, so no glob of outputs finds one left by a killed process (``glob`` and
    shells skip the hidden folder; ``pathlib``'s ``rglob("*.tif")`` and ``aws s3 sync
    --exclude "*" --include "*.tif"`` enter it, but the name does not match). A plain ``aws s3
    sync`` does copy hidden folders: each write removes the partials that dead processes of
    this machine left in its folder (:func:`remove_stale_partials`), so a re-run that
    completes leaves none, and the last writer out removes the ``.partial`` folder.

    The partial file is created empty (normal permissions, not ``mkstemp``'s owner-only ones)
    before the body runs: it keeps the folder from being removed under a concurrent writer.
    The body writes over it (without deleting it) and must name its format (GDAL ``driver``,
    matplotlib ``format``): the partial's suffix says none. For S3 the file is written in a
    temporary directory and uploaded in one piece after the body finishes. If the body
    raises, the partial file is removed and nothing is published.

    Raises:
        OutputError: the folder cannot be written (read-only, permission denied), or the disk
            or quota fills up (while the body writes too: :func:`_body_error`), naming ``uri``;
            a file already at ``uri`` is left as it was.
    """
    if is_s3(uri):
        tmp_dir = tempfile.mkdtemp(prefix=TMP_PREFIX)
        tmp_path = os.path.join(tmp_dir, Path(uri).name)
        try:
            try:
                yield tmp_path
            except Exception as exc:
                error = _body_error(uri, exc, tmp_dir, f" in the temporary folder {tmp_dir}")
                if error is exc:
                    raise
                raise error from exc
            with aws_errors(uri, write=True):
                upload_or_copy(tmp_path, uri)
        finally:
            shutil.rmtree(tmp_dir, ignore_errors=True)
        return
    tmp_path = _partial_path(uri)
    partial_dir = os.path.dirname(tmp_path)
    _writing.add(tmp_path)
    try:
        try:
            while True:
                # Another writer's last one out may remove the folder at any moment, even
                # between makedirs' own mkdir and its check (FileExistsError): try again.
                with suppress(FileExistsError):
                    os.makedirs(partial_dir, exist_ok=True)
                with suppress(FileNotFoundError):  # the folder went before the file was made
                    open(tmp_path, "x").close()
                    break
        except OSError as exc:
            raise _not_written(uri, exc) from exc
        remove_stale_partials(os.path.dirname(partial_dir))
        try:
            yield tmp_path
        except Exception as exc:
            error = _body_error(uri, exc, partial_dir)
            if error is exc:
                raise
            raise error from exc
        try:
            os.replace(tmp_path, uri)
        except OSError as exc:
            raise _not_written(uri, exc) from exc
    except BaseException:
        with suppress(OSError):  # also on a folder that went read-only: keep the first error
            os.remove(tmp_path)
        raise
    finally:
        _writing.discard(tmp_path)
        with suppress(OSError):  # fails while another writer's partial is in it
            os.rmdir(partial_dir)


def _incomplete_blocks(path: str) -> int:
    """How many blocks of the GeoTIFF at ``path`` are missing or run past its end.

    GDAL records each block's offset and size in the file's directory (TIFF metadata domain);
    a block a failed write left out has none, one cut off by the disk filling up ends past the
    end of the file. Asking costs no decompression, whatever the raster's size.
    """
    size = os.path.getsize(path)
    with warnings.catch_warnings(), rasterio.open(path) as src:
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        block_h, block_w = src.block_shapes[0]
        columns, rows = range(-(-src.width // block_w)), range(-(-src.height // block_h))
        missing = 0
        for band in src.indexes:
            for y, x in itertools.product(rows, columns):
                offset = src.get_tag_item(f"BLOCK_OFFSET_{x}_{y}", "TIFF", bidx=band)
                length = src.get_tag_item(f"BLOCK_SIZE_{x}_{y}", "TIFF", bidx=band)
                if not offset or not length or int(offset) + int(length) > size:
                    missing += 1
        return missing


def check_geotiff_complete(path: str, uri: str) -> None:
    """Raise an :class:`OutputError` for ``uri`` unless the GeoTIFF at ``path`` is whole.

    GDAL (through rasterio) does not raise when the disk fills up while it flushes a dataset
    at close: it logs ``_tiffWriteProc: No space left on device`` and leaves an empty or
    truncated file, which would be published as complete. A file that does not open, or whose
    blocks are missing or cut off, is reported as the disk being full when it nearly is.
    """
    try:
        missing = _incomplete_blocks(path)
        problem = f"{missing} block(s) missing or cut off" if missing else ""
    except RasterioError as exc:
        problem = " ".join(str(exc).split())
    if not problem:
        return
    if _nearly_full(os.path.dirname(path)):
        raise OutputError(errno.ENOSPC, f"not written: {os.strerror(errno.ENOSPC)}", uri)
    problem = problem.replace(path, "the file")  # the partial name would only confuse
    raise OutputError(errno.EIO, f"not written: the GeoTIFF came out incomplete ({problem})", uri)


@contextmanager
def atomic_geotiff(uri: str) -> Iterator[str]:
    """:func:`atomic_output` for a GeoTIFF written with GDAL: checked whole before it is published.

    The body must close its dataset (see :func:`check_geotiff_complete` for why).
    """
    with atomic_output(uri) as path:
        yield path
        check_geotiff_complete(path, uri)


def file_names(dir_uri: str) -> list[str]:
    """Names of the files directly in ``dir_uri`` (local folder or ``s3://`` prefix), none hidden.

    Hidden names are writes in progress (:func:`atomic_output`'s partial files). A local folder
    that does not exist has none.
    """
    if is_s3(dir_uri):
        paths = list_paths(dir_uri)
    elif os.path.isdir(dir_uri):
        paths = os.listdir(dir_uri)
    else:
        return []
    names = [os.path.basename(p.rstrip("/")) for p in paths]
    return [n for n in names if not n.startswith(".")]


def uri_exists(uri: str) -> bool:
    """Whether a file (not a directory) exists at ``uri`` (local or S3).

    Raises:
        AwsError: S3 cannot be asked (no credentials, access denied, no such bucket...):
            Raster Vision's own check would answer "no", read as "not found".
    """
    if is_s3(uri):
        return s3_object_exists(uri)
    return file_exists(uri, include_dir=False)


def read_json(uri: str, what: str = "file") -> Any:
    """Parse the JSON at ``uri``; a missing file or bad JSON is an :class:`InputError`.

    ``what`` names the file in the "not found" message (e.g. ``"STAC catalog"``).
    """
    if not uri_exists(uri):
        raise InputError(f"{uri}: {what} not found")
    try:
        with aws_errors(uri):
            text = file_to_str(uri)
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{uri}: not valid JSON ({exc})") from None


def write_json(obj: Any, uri: str) -> None:
    """Write ``obj`` as indented JSON to ``uri``, atomically."""
    with atomic_output(uri) as path:
        Path(path).write_text(json.dumps(obj, indent=2) + "\n")
