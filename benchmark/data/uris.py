"""Reading and writing outputs at URIs (local paths or ``s3://``) without half-written files.

Every output goes through :func:`atomic_output`: it is written to a temporary name and only
renamed into place (locally) or uploaded whole (S3) when complete, so a killed run never
leaves a file that a later command or a re-run would accept as finished.
"""

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from rastervision.pipeline.file_system import file_exists, file_to_str, upload_or_copy

from benchmark.data.aws_errors import aws_errors, s3_object_exists
from benchmark.errors import InputError

# Temporary files start with this (a hidden name), so no glob for outputs ("{id}_{i}.tif",
# "*.tif") ever matches one, even one left behind by a killed process.
TMP_PREFIX = ".tmp-"


def is_s3(uri: str) -> bool:
    """Whether ``uri`` names an S3 object."""
    return uri.startswith("s3://")


def _tmp_name(uri: str) -> str:
    """A unique hidden name that keeps ``uri``'s suffix (GDAL picks drivers by it)."""
    return f"{TMP_PREFIX}{uuid.uuid4().hex[:12]}-{Path(uri).name}"


@contextmanager
def atomic_output(uri: str) -> Iterator[str]:
    """Yield a local path to write ``uri``'s content to; publish it only if the body succeeds.

    Locally the temporary file sits beside the destination (parent directories are created),
    so the final ``os.replace`` is atomic; for S3 it is written in a temporary directory and
    uploaded in one piece after the body finishes. If the body raises, the temporary file is
    removed and nothing is published. The file is not created in advance (``mkstemp`` would
    leave it readable by its owner only), the body creates it.
    """
    if is_s3(uri):
        tmp_dir = tempfile.mkdtemp(prefix=TMP_PREFIX)
        tmp_path = os.path.join(tmp_dir, Path(uri).name)
        try:
            yield tmp_path
            with aws_errors(uri, write=True):
                upload_or_copy(tmp_path, uri)
        finally:
            shutil.rmtree(tmp_dir, ignore_errors=True)
        return
    parent = os.path.dirname(os.path.abspath(uri))
    os.makedirs(parent, exist_ok=True)
    tmp_path = os.path.join(parent, _tmp_name(uri))
    try:
        yield tmp_path
        os.replace(tmp_path, uri)
    except BaseException:
        with suppress(FileNotFoundError):
            os.remove(tmp_path)
        raise


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
