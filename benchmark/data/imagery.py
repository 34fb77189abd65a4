"""Opening scenes and telling imagery from no-data.

Open Cities scenes are RGBA: alpha 255 is imagery, 0 is outside it (RGB is 0 there too).
Other sources come as RGB with a nodata value, RGB with an internal mask, or RGB with no
mask at all. Raster Vision does not treat alpha 0 as no-data, so we compute the valid mask
ourselves.
"""

import os
import warnings

import numpy as np
import rasterio
from rasterio.enums import ColorInterp, MaskFlags
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.windows import Window

from benchmark.data.aws_errors import aws_errors
from benchmark.errors import InputError

# GDAL's block cache defaults to 5% of RAM and fills up when a huge scene is streamed through
# it (1.2 GB on a 24 GB machine), which would break the bounded-memory promise of PREPROCESS
# and scene prediction. 256 MB holds every block a window or strip needs; a GDAL_CACHEMAX set
# by the user wins. Set before any raster is opened: GDAL reads it on first use.
os.environ.setdefault("GDAL_CACHEMAX", "256")


def open_scene_checked(
    uri: str, require_georef: bool = True, allow_dtypes: tuple[str, ...] = ("uint8",)
) -> rasterio.DatasetReader:
    """Open ``uri`` with rasterio, or raise a one-line :class:`InputError` saying why not.

    Checking up front turns what would be a confusing failure deep in training (a float
    raster, a single band, labels that cannot be placed) into one line naming the file.

    Args:
        uri: GeoTIFF path or ``s3://`` URI.
        require_georef: scenes need a CRS (any) to place their labels; test chips have none.
        allow_dtypes: accepted pixel types (the models are trained on 8-bit imagery).
    """
    try:
        with warnings.catch_warnings():
            # Test chips have no georeferencing by design; scenes without it are refused below.
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with aws_errors(uri):  # GDAL says "does not exist" for most S3 problems
                src = rasterio.open(uri)
    except RasterioError as exc:
        raise InputError(f"{uri}: cannot read as a raster ({exc})") from None
    problem = None
    if not set(src.dtypes) <= set(allow_dtypes):
        problem = (
            f"pixel type {'/'.join(sorted(set(src.dtypes)))}, expected {'/'.join(allow_dtypes)}"
        )
    elif src.count < 3:
        problem = f"{src.count} band(s), expected RGB or RGBA"
    elif require_georef and src.crs is None:
        problem = "no CRS (scenes must be georeferenced)"
    if problem:
        src.close()
        raise InputError(f"{uri}: {problem}")
    return src


def alpha_band(src: rasterio.DatasetReader) -> int | None:
    """1-based index of the alpha band, if any (4-band imagery counts as RGBA)."""
    for i, interp in enumerate(src.colorinterp, start=1):
        if interp == ColorInterp.alpha:
            return i
    return 4 if src.count == 4 else None


def has_dataset_mask(src: rasterio.DatasetReader) -> bool:
    """Whether an internal (or ``.msk``) mask, not alpha or nodata, says where imagery is."""
    return src.mask_flag_enums[0] == [MaskFlags.per_dataset]


def read_valid_mask(src: rasterio.DatasetReader, window: Window | None = None) -> np.ndarray:
    """Boolean (H, W): True where there is imagery.

    RGBA: alpha == 255. RGB with a nodata value: not every band equal to it. RGB with an
    internal mask: mask == 255. Otherwise all True.
    """
    alpha = alpha_band(src)
    if alpha is not None:
        return src.read(alpha, window=window) == 255
    if src.nodata is not None:
        return (src.read([1, 2, 3], window=window) != src.nodata).any(axis=0)
    if has_dataset_mask(src):
        return src.read_masks(1, window=window) == 255
    height = int(window.height) if window is not None else src.height
    width = int(window.width) if window is not None else src.width
    return np.ones((height, width), dtype=bool)


def window_of_window(outer: Window, inner: Window) -> Window:
    """``inner`` (in ``outer``'s own pixels) in the pixels of the raster ``outer`` is a part of."""
    return Window(
        outer.col_off + inner.col_off, outer.row_off + inner.row_off, inner.width, inner.height
    )


def read_rgb(src: rasterio.DatasetReader, window: Window | None = None) -> np.ndarray:
    """uint8 (3, H, W): bands 1-3 (the alpha band is not model input)."""
    return src.read([1, 2, 3], window=window)


def read_rgb_and_valid(
    src: rasterio.DatasetReader, window: Window | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`read_rgb` and :func:`read_valid_mask` with one read where alpha is a band.

    Each read of a compressed raster decompresses its blocks again: reading the alpha band
    apart cost a 1024 px RGBA test chip as much as its colours (``wb_scripts/bench --only
    chip_io``).
    """
    alpha = alpha_band(src)
    if alpha is None:
        return read_rgb(src, window), read_valid_mask(src, window)
    data = src.read([1, 2, 3, alpha], window=window)
    return data[:3], data[3] == 255
