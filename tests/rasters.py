"""Tiny GeoTIFFs for unit tests (seeded, with a real CRS and transform)."""

import warnings
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning
from rasterio.transform import from_origin

TRANSFORM = from_origin(455_000.0, 39_000.0, 0.075, 0.075)


def write_raster(
    path: Path,
    data: np.ndarray,
    crs: str | None = "EPSG:32636",
    nodata: float | None = None,
    transform: Affine = TRANSFORM,
    **profile,
) -> str:
    """Write (bands, H, W) ``data`` as a GeoTIFF and return its path as a string."""
    count, height, width = data.shape
    path.parent.mkdir(parents=True, exist_ok=True)
    georef = {"crs": crs, "transform": transform} if crs else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(
            path, "w", driver="GTiff", width=width, height=height, count=count,
            dtype=data.dtype, nodata=nodata, **georef, **profile,
        ) as dst:  # fmt: skip
            dst.write(data)
    return str(path)


def rgba(height: int, width: int, seed: int = 0, notch: bool = True) -> np.ndarray:
    """Random RGBA uint8 with alpha 0 (and RGB 0) in the top-left quarter if ``notch``."""
    rng = np.random.default_rng(seed)
    data = rng.integers(1, 255, (4, height, width), dtype=np.uint8)
    data[3] = 255
    if notch:
        data[:, : height // 2, : width // 2] = 0
    return data
