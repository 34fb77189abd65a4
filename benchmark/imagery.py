"""Opening scenes and telling imagery from no-data.

Open Cities scenes are RGBA: alpha 255 is imagery, 0 is outside it (RGB is 0 there too).
Other sources come as RGB with a nodata value, or RGB with no mask at all. Raster Vision
does not treat alpha 0 as no-data, so we compute the valid mask ourselves.
"""

import numpy as np
import rasterio
from rasterio.enums import ColorInterp
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

from benchmark.errors import InputError


def open_scene_checked(
    uri: str, require_georef: bool = True, dtypes: tuple[str, ...] = ("uint8",)
) -> rasterio.DatasetReader:
    """Open ``uri`` with rasterio, or raise a one-line :class:`InputError` saying why not.

    Args:
        uri: GeoTIFF path or ``s3://`` URI.
        require_georef: scenes need a CRS (any projected one) to place their labels.
        dtypes: accepted pixel types (the models are trained on 8-bit imagery).
    """
    try:
        src = rasterio.open(uri)
    except RasterioIOError as exc:
        raise InputError(f"{uri}: cannot read as a raster ({exc})") from None
    problem = None
    if src.dtypes[0] not in dtypes:
        problem = f"pixel type {src.dtypes[0]}, expected {'/'.join(dtypes)}"
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


def read_valid_mask(src: rasterio.DatasetReader, window: Window | None = None) -> np.ndarray:
    """Boolean (H, W): True where there is imagery.

    RGBA: alpha == 255. RGB with a nodata value: not every band equal to it. Otherwise all True.
    """
    alpha = alpha_band(src)
    if alpha is not None:
        return src.read(alpha, window=window) == 255
    if src.nodata is not None:
        return (src.read([1, 2, 3], window=window) != src.nodata).any(axis=0)
    height = int(window.height) if window is not None else src.height
    width = int(window.width) if window is not None else src.width
    return np.ones((height, width), dtype=bool)


def read_rgb(src: rasterio.DatasetReader, window: Window | None = None) -> np.ndarray:
    """uint8 (3, H, W): bands 1-3 (the alpha band is not model input)."""
    return src.read([1, 2, 3], window=window)
