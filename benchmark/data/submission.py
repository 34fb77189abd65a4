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
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rastervision.pipeline.file_system import download_if_needed

from benchmark.data.uris import atomic_geotiff, atomic_output, file_names
from benchmark.errors import InputError, listed_problems

log = logging.getLogger(__name__)


# Measured by ``wb_scripts/bench --only chip_io`` (docs/results.md), per 1024 px chip. 0/1
# masks: PackBits (run lengths) writes one in ~6 ms against DEFLATE's ~17 ms, and gzip in
# submission.tgz then packs it smaller than DEFLATE's (17 kB against 23 kB); every TIFF reader
# has it (baseline TIFF). uint8 probabilities, read back by POSTPROCESS: DEFLATE at level 1
# with horizontal differencing, ~18 ms and ~530 kB against ~31 ms and ~680 kB at level 6.
MASK_COMPRESSION = {"compress": "packbits"}
PROBABILITY_COMPRESSION = {"compress": "deflate", "zlevel": 1, "predictor": 2}


def write_band(band: np.ndarray, uri: str, compression: dict) -> None:
    """Write a (H, W) uint8 raster as an ungeoreferenced GeoTIFF, atomically."""
    if band.ndim != 2:
        raise ValueError(f"{uri}: expected a (H, W) raster, got shape {band.shape}")
    profile = {
        "driver": "GTiff",
        "width": band.shape[1],
        "height": band.shape[0],
        "count": 1,
        "dtype": "uint8",
        **compression,
    }
    with warnings.catch_warnings(), atomic_geotiff(uri) as path:
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(band.astype(np.uint8, copy=False), 1)


def write_mask(mask: np.ndarray, uri: str) -> None:
    """Write a (H, W) 0/1 mask: the submission's format (the competition needs no CRS).

    Folder predict writes masks while the model runs on the next chips, so what writing costs
    slows the model: hence the fast codec (``MASK_COMPRESSION``).
    """
    write_band(mask, uri, MASK_COMPRESSION)


def write_probabilities(prob: np.ndarray, uri: str) -> None:
    """Write a (H, W) uint8 probability raster ``round(255 * P)`` for a threshold chosen later."""
    write_band(prob, uri, PROBABILITY_COMPRESSION)


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
                return f"{src.width}x{src.height} px, expected {size}x{size}"
            mask = src.read(1)
    except RasterioError as exc:
        return f"unreadable ({exc})"
    if mask.max() > 1:
        return f"values {np.unique(mask)[:6].tolist()} outside {{0, 1}}"
    return None


def validate_submission(
    dir_uri: str, expected_ids: Sequence[str], size: int = 1024, ignore: Collection[str] = ()
) -> list[str]:
    """Every problem with the submission in ``dir_uri``, one readable line each (sorted).

    Problems: a chip's mask missing, a file that is no chip's mask, a mask that is unreadable,
    not single band, not uint8, not ``size`` x ``size``, or has values other than 0 and 1.

    Args:
        dir_uri: directory of ``{id}.tif`` masks (local or s3://).
        expected_ids: every test chip id.
        size: the masks' side in pixels.
        ignore: file names in ``dir_uri`` that are not extra files (e.g. the archive).
    """
    dir_uri = dir_uri.rstrip("/")
    present = set(file_names(dir_uri)) - set(ignore)
    expected = {f"{i}.tif" for i in expected_ids}
    problems = [f"{n}: missing" for n in sorted(expected - present)]
    problems += [f"{n}: not a test chip's mask (extra file)" for n in sorted(present - expected)]
    to_check = sorted(expected & present)
    with ThreadPoolExecutor(4) as pool:
        found = pool.map(lambda n: _check_mask(f"{dir_uri}/{n}", size), to_check)
        problems += [f"{n}: {p}" for n, p in zip(to_check, found, strict=True) if p]
    return sorted(" ".join(p.split()) for p in problems)  # one line each


def pack_submission(
    dir_uri: str, expected_ids: Sequence[str], tgz_uri: str, size: int = 1024
) -> None:
    """Validate the submission in ``dir_uri`` and write ``tgz_uri`` with ``{id}.tif`` at its root.

    The archive is written atomically, so an existing one is complete and valid.

    Raises:
        InputError: the set is incomplete or malformed (the first problems are listed).
    """
    dir_uri = dir_uri.rstrip("/")
    same_dir = os.path.dirname(tgz_uri.rstrip("/")) == dir_uri
    ignore = [os.path.basename(tgz_uri)] if same_dir else []
    problems = validate_submission(dir_uri, expected_ids, size, ignore=ignore)
    if problems:
        raise InputError(
            f"{dir_uri}: not packing a submission with {len(problems)} problem(s): "
            + listed_problems(problems)
        )
    names = [f"{chip_id}.tif" for chip_id in sorted(expected_ids)]
    with tempfile.TemporaryDirectory() as tmp_dir, atomic_output(tgz_uri) as out_path:
        # Local files are used in place; S3 objects are downloaded a few at a time.
        with ThreadPoolExecutor(8) as pool:
            local = pool.map(lambda n: download_if_needed(f"{dir_uri}/{n}", tmp_dir), names)
            with tarfile.open(out_path, "w:gz") as tar:
                for name, path in zip(names, local, strict=True):
                    tar.add(path, arcname=name)
    log.info("Packed %d masks into %s", len(names), tgz_uri)
