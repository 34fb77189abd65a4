"""A common ground sample distance (GSD): windows resampled to it, predictions brought back.

The resolution of the Open Cities imagery varies from region to region, so a roof spans
different pixel counts from one city to the next. With ``-a gsd`` PREPROCESS resamples every
window to one GSD, so the model learns and predicts buildings at one scale; scene predictions
are then resampled back onto each window's own grid, so ``eval`` scores them at the original
resolution against the labels (vectors: they need no resampling).

A resampled window covers exactly the ground of its native window: each side is scaled to the
GSD and rounded to whole pixels, so the pixel size is off the GSD by at most half a pixel over
the side (under 0.1% for resampled sides over 500 px). Keeping the extent makes the way back
exact at the edges. Blocks are read through GDAL's resampling from fractional source windows,
which gives the same pixels as resampling the whole window at once, so memory stays bounded by
the block at any GSD.
"""

from dataclasses import dataclass

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.windows import Window

from benchmark.data.imagery import alpha_band


def describe_gsd(gsd: float | None) -> str:
    """How logs and errors name a GSD (None: the imagery's own resolution)."""
    return "at its own resolution" if gsd is None else f"at {gsd:g} m GSD"


def resampled_length(pixels: int, resolution: float, gsd: float) -> int:
    """Pixels that ``pixels`` of ``resolution`` metres become at ``gsd`` metres (at least 1)."""
    return max(1, round(pixels * resolution / gsd))


def gsd_scale(image_gsd: float | None, model_gsd: float | None) -> float:
    """Resize factor that brings an image at ``image_gsd`` to the model's ``model_gsd``.

    1 when either is unknown: a model trained at the scenes' own resolution, or chips whose
    GSD nobody gave, are used as they are.
    """
    return image_gsd / model_gsd if image_gsd and model_gsd else 1.0


@dataclass(frozen=True)
class GridMap:
    """A ``width`` x ``height`` pixel grid over the same ground as ``source``, a raster window.

    Maps blocks of the grid to the (fractional) windows of the raster they cover; with the
    source's own size it is the identity, and reads through it are plain copies.
    """

    source: Window
    width: int
    height: int

    @classmethod
    def at_gsd(cls, src: rasterio.DatasetReader, window: Window, gsd: float | None) -> "GridMap":
        """``window`` of ``src`` at ``gsd`` metres per pixel (None: at its own resolution)."""
        width, height = int(window.width), int(window.height)
        if gsd is None:
            return cls(window, width, height)
        x_res, y_res = src.res
        return cls(
            window, resampled_length(width, x_res, gsd), resampled_length(height, y_res, gsd)
        )

    @property
    def is_identity(self) -> bool:
        """Whether the grid is the source window's own (no resampling)."""
        return (self.width, self.height) == (int(self.source.width), int(self.source.height))

    def transform(self, src: rasterio.DatasetReader) -> Affine:
        """The grid's georeferencing: the source window's, with its pixels rescaled."""
        return src.window_transform(self.source) * Affine.scale(
            self.source.width / self.width, self.source.height / self.height
        )

    def block_side(self, source_side: int) -> int:
        """Side of grid blocks whose source windows are at most ``source_side`` pixels a side.

        Shrinking 5x reads 25 source pixels per pixel written: the blocks shrink instead, so
        memory stays bounded by ``source_side``. (Blocks then need not match the output's
        tiles; GDAL's block cache holds a partly written tile row until it is complete.)
        """
        scale = max(1.0, self.source.width / self.width, self.source.height / self.height)
        return max(1, int(source_side / scale))

    def source_window(self, block: Window) -> Window:
        """The part of the source that ``block`` (grid pixels) covers, in source pixels."""
        x0, x1 = (
            self.source.col_off + c * self.source.width / self.width
            for c in (block.col_off, block.col_off + block.width)
        )
        y0, y1 = (
            self.source.row_off + r * self.source.height / self.height
            for r in (block.row_off, block.row_off + block.height)
        )
        return Window(x0, y0, x1 - x0, y1 - y0)


def read_bands(src: rasterio.DatasetReader, window: Window, shape: tuple[int, int]) -> np.ndarray:
    """Every band of ``window`` at ``shape`` (H, W): one plain read when that is its own size.

    Imagery is bilinear (GDAL widens the kernel when shrinking, so it also averages); alpha is
    nearest, so it stays 0 or 255 and no half-imagery pixel appears.
    """
    if (window.height, window.width) == shape:
        return src.read(window=window)
    out = np.empty((src.count, *shape), dtype=src.dtypes[0])
    alpha = alpha_band(src)
    for resampling, bands in (
        (Resampling.bilinear, [i for i in src.indexes if i != alpha]),
        (Resampling.nearest, [alpha] if alpha else []),
    ):
        if bands:
            out[[i - 1 for i in bands]] = src.read(
                bands, window=window, out_shape=(len(bands), *shape), resampling=resampling
            )
    return out


def read_mask(src: rasterio.DatasetReader, window: Window, shape: tuple[int, int]) -> np.ndarray:
    """The first band's GDAL mask of ``window`` at ``shape``, nearest (a mask stays a mask)."""
    return src.read_masks(1, window=window, out_shape=shape, resampling=Resampling.nearest)
