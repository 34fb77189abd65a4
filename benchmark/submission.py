"""The competition's submission format: write it, check it, pack it.

One ``{id}.tif`` per test chip: single band, uint8, 1 = building and 0 = not, the chip's size
(1024 x 1024), no georeferencing needed; all of them at the root of ``submission.tgz``.
Packing refuses an incomplete or malformed set and says what is wrong.
"""

import logging
import os
import tarfile
import tempfile
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from rastervision.pipeline.file_system import download_if_needed, list_paths

from benchmark.errors import InputError
from benchmark.uris import TMP_PREFIX, atomic_output, is_s3

log = logging.getLogger(__name__)

MAX_LISTED_PROBLEMS = 10


def write_mask(mask: np.ndarray, uri: str) -> None:
    """Write a (H, W) uint8 0/1 mask as a submission GeoTIFF, atomically."""
    profile = {
        "driver": "GTiff",
        "width": mask.shape[1],
        "height": mask.shape[0],
        "count": 1,
        "dtype": "uint8",
        "compress": "deflate",
    }
    with (
        warnings.catch_warnings(),
        atomic_output(uri) as path,
    ):
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(mask.astype(np.uint8), 1)


def _tif_names(dir_uri: str) -> list[str]:
    if is_s3(dir_uri):
        paths = list_paths(dir_uri, ext=".tif")
    elif os.path.isdir(dir_uri):
        paths = os.listdir(dir_uri)
    else:
        return []
    names = [os.path.basename(p) for p in paths]
    return [n for n in names if n.endswith(".tif") and not n.startswith(TMP_PREFIX)]


def _check_mask(uri: str, size: int) -> str | None:
    """The problem with one submission file, or None."""
    try:
        with warnings.catch_warnings(), rasterio.open(uri) as src:
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            if src.count != 1:
                return f"{src.count} bands, expected 1"
            if src.dtypes[0] != "uint8":
                return f"pixel type {src.dtypes[0]}, expected uint8"
            if (src.height, src.width) != (size, size):
                return f"{src.width}x{src.height}, expected {size}x{size}"
            values = np.unique(src.read(1))
    except rasterio.errors.RasterioIOError as exc:
        return f"unreadable ({exc})"
    if not set(values.tolist()) <= {0, 1}:
        return f"values {values[:5].tolist()} outside {{0, 1}}"
    return None


def validate_submission(dir_uri: str, expected_ids: Sequence[str], size: int = 1024) -> list[str]:
    """Every problem with the submission in ``dir_uri``, one readable line each (sorted)."""
    dir_uri = dir_uri.rstrip("/")
    present = {n.removesuffix(".tif") for n in _tif_names(dir_uri)}
    expected = set(expected_ids)
    problems = [f"{i}.tif: missing" for i in sorted(expected - present)]
    problems += [f"{i}.tif: not a test chip id" for i in sorted(present - expected)]
    to_check = sorted(expected & present)
    with ThreadPoolExecutor(4) as pool:
        found = pool.map(lambda i: _check_mask(f"{dir_uri}/{i}.tif", size), to_check)
        problems += [f"{i}.tif: {p}" for i, p in zip(to_check, found, strict=True) if p]
    return sorted(problems)


def pack_submission(
    dir_uri: str, expected_ids: Sequence[str], tgz_uri: str, size: int = 1024
) -> None:
    """Validate the submission in ``dir_uri`` and write ``submission.tgz`` (atomically).

    Raises:
        InputError: the set is incomplete or malformed (the first problems are listed).
    """
    problems = validate_submission(dir_uri, expected_ids, size)
    if problems:
        shown = "; ".join(problems[:MAX_LISTED_PROBLEMS])
        more = f" (and {len(problems) - MAX_LISTED_PROBLEMS} more)" if len(problems) > 10 else ""
        raise InputError(
            f"{dir_uri}: not packing {len(problems)} problem(s) in the submission: {shown}{more}"
        )
    dir_uri = dir_uri.rstrip("/")
    with tempfile.TemporaryDirectory() as tmp_dir, atomic_output(tgz_uri) as out_path:
        with tarfile.open(out_path, "w:gz") as tar:
            for chip_id in sorted(expected_ids):
                local = download_if_needed(f"{dir_uri}/{chip_id}.tif", tmp_dir)
                tar.add(local, arcname=f"{chip_id}.tif")
    log.info("Packed %d masks into %s", len(expected_ids), tgz_uri)
