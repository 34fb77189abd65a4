"""Scene prediction: a georeferenced scene in, a probability raster on its grid out.

The raster has one band per probability the prediction asks for (``PredictionSettings.
target``): P(building) alone, or an instance model's P(body), P(border), P(contact), in
:data:`~benchmark.networks.targets.INSTANCE_BANDS` order; band 1 is P(building) either way.

Scenes are predicted one strip of windows at a time, so memory is bounded by a strip, not the
scene: a reader thread reads the next windows while the model runs, and each strip's final
rows are blended, masked and written as soon as no later window touches them. A scene at
another GSD than the model's goes through :mod:`benchmark.inference.gsd_round_trip`.
"""

import logging
import os
import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

import numpy as np
import rasterio
import torch
from rasterio.windows import Window
from torch import nn
from tqdm.auto import tqdm

from benchmark.data.imagery import open_scene_checked, read_rgb, read_valid_mask
from benchmark.data.uris import atomic_geotiff, uri_exists
from benchmark.inference.blending import BlendGrid
from benchmark.inference.execution import ExecutionPlan, execution_plan
from benchmark.inference.forward import bands_for, batch_probabilities, quantize
from benchmark.inference.plan_choice import prepare_measured
from benchmark.inference.settings import PredictionSettings
from benchmark.networks.targets import INSTANCE_BANDS

log = logging.getLogger(__name__)

# Output tiles of scene probability rasters; strips are written in multiples of it, so no
# compressed tile is ever written twice.
SCENE_BLOCK = 256
# Columns normalized and written at a time when a strip of scene rows is final.
WRITE_COLUMNS = 16 * SCENE_BLOCK
# U-Net-style encoders downsample 5 times: window sides must be multiples of 2 ** 5.
SIZE_MULTIPLE = 32

T = TypeVar("T")


def _read_padded(src: rasterio.DatasetReader, row: int, col: int, size: int) -> np.ndarray:
    """(3, size, size) uint8 window, zero-padded where it passes the raster's edge."""
    win = Window(col, row, min(size, src.width - col), min(size, src.height - row))
    out = np.zeros((3, size, size), dtype=np.uint8)
    out[:, : int(win.height), : int(win.width)] = read_rgb(src, win)
    return out


def _prefetched(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Iterate ``items`` in a background thread, ``depth`` items ahead (reads overlap compute).

    An exception in the producer is re-raised here; leaving the loop early stops the producer.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((end, None))
        except BaseException as exc:
            put((end, exc))
        finally:  # now and in this thread, not whenever it is collected: it may hold files
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, exc = q.get()
            if exc is not None:
                raise exc
            if item is end:
                return
            yield item
    finally:
        stop.set()
        thread.join()


def _scene_batches(
    image_uri: str, rows: list[int], cols: list[int], size: int, batch_size: int
) -> Iterator[tuple[int, list[int], np.ndarray]]:
    """(row, cols, uint8 (n, 3, size, size) windows), strip by strip, left to right."""
    with rasterio.open(image_uri) as src:
        for row in rows:
            for c0 in range(0, len(cols), batch_size):
                batch_cols = cols[c0 : c0 + batch_size]
                yield (
                    row,
                    batch_cols,
                    np.stack([_read_padded(src, row, c, size) for c in batch_cols]),
                )


def probability_profile(
    src: rasterio.DatasetReader, window: Window | None = None, bands: int = 1
) -> dict:
    """GeoTIFF profile of a ``bands``-band probability raster on ``src``'s grid (or ``window``).

    Several bands are grey, not the RGB GDAL would take three bytes for.
    """
    window = window or Window(0, 0, src.width, src.height)
    grey = {"photometric": "minisblack"} if bands > 1 else {}
    return {
        "driver": "GTiff",
        "width": int(window.width),
        "height": int(window.height),
        "count": bands,
        "dtype": "uint8",
        "crs": src.crs,
        "transform": src.window_transform(window),
        "tiled": True,
        "blockxsize": SCENE_BLOCK,
        "blockysize": SCENE_BLOCK,
        "compress": "deflate",
        "predictor": 2,
        **grey,
    }


def name_bands(dst: rasterio.io.DatasetWriter) -> None:
    """Name an instance model's bands (body, border, contact) where a viewer shows them."""
    if dst.count == len(INSTANCE_BANDS):
        dst.descriptions = INSTANCE_BANDS


def output_exists(out_uri: str, overwrite: bool) -> bool:
    """Whether ``out_uri`` is done already (outputs are atomic) and is to be kept."""
    if not overwrite and uri_exists(out_uri):
        log.info("%s exists: skipped", out_uri)
        return True
    return False


def _write_final_rows(
    src: rasterio.DatasetReader,
    dst: rasterio.io.DatasetWriter,
    acc: np.ndarray,
    top: int,
    n: int,
    row_cover: np.ndarray,
    col_cover: np.ndarray,
) -> None:
    """Write the first ``n`` rows of ``acc`` (bands, scene rows from ``top``), shift the rest up.

    The rows are normalized by the window coverage and masked by the scene's imagery. Works
    in column blocks: on a 40,000 px wide scene a whole strip's float temporaries (division,
    clipping, rounding, validity mask) would cost several hundred MB at once.
    """
    for col in range(0, acc.shape[2], WRITE_COLUMNS):
        cols = slice(col, col + WRITE_COLUMNS)
        window = Window(col, top, acc[0, :n, cols].shape[1], n)
        prob = acc[:, :n, cols] / (row_cover[top : top + n, None] * col_cover[None, cols])
        dst.write(quantize(prob) * read_valid_mask(src, window), window=window)
        # numpy buffers the overlapping copy, one block at a time
        acc[:, :-n, cols] = acc[:, n:, cols]
        acc[:, -n:, cols] = 0


def predict_scene(
    model: nn.Module,
    image_uri: str,
    out_uri: str,
    settings: PredictionSettings | None = None,
    overwrite: bool = False,
) -> None:
    """Write a georeferenced uint8 probability raster (``round(255 * P)``) for a scene.

    The scene is predicted as it is (at the model's GSD already: :mod:`benchmark.inference.
    gsd_round_trip` brings others to it) in windows of ``settings.scene_window`` px, batched
    within strips of windows, neighbours sharing ``settings.overlap`` px blended with ramps so
    window edges leave no seam (at most half a window; see :mod:`benchmark.inference.
    blending`); each
    finished strip is blended, masked (0 outside the imagery) and written, so memory holds
    one strip. The output has the input's grid, CRS and transform, 256 px tiles, DEFLATE, and
    ``settings.bands`` bands: the model's first ones (an instance model's P(body) alone for a
    binary prediction; a binary model cannot give an instance one).

    Args:
        model: the network (prepared here with ``settings.options``).
        image_uri: the scene (RGBA or RGB GeoTIFF, or a VRT; local or s3://).
        out_uri: where to write; skipped if it exists, unless ``overwrite``.
        settings: the prediction settings (defaults if None); a small scene is one window
            of about its size (a multiple of 32).
        overwrite: redo an existing output.
    """
    if output_exists(out_uri, overwrite):
        return
    settings = settings or PredictionSettings()
    options = settings.options
    plan: ExecutionPlan | None = None  # the model is prepared on the first batch
    with open_scene_checked(image_uri) as src:
        height, width = src.height, src.width
        # A small scene gets one window of about its size, not a mostly-padding full one.
        longest = -(-max(height, width) // SIZE_MULTIPLE) * SIZE_MULTIPLE
        side = min(settings.scene_window, longest)
        grid = BlendGrid.over(height, width, side, settings.overlap)
        rows, cols = grid.rows, grid.cols
        bands = settings.bands
        profile = probability_profile(src, bands=bands)
        batches = _prefetched(_scene_batches(image_uri, rows, cols, side, options.batch_size))
        with (
            atomic_geotiff(out_uri) as path,
            rasterio.open(path, "w", **profile) as dst,
            tqdm(total=len(rows) * len(cols), desc=os.path.basename(image_uri), unit="win") as bar,
        ):
            name_bands(dst)
            # Weighted sums of each band for scene rows [top, top + side + SCENE_BLOCK); rows
            # above top are written.
            acc = np.zeros((bands, side + SCENE_BLOCK, width), dtype=np.float32)
            top = 0
            for row, batch_cols, images in batches:
                if plan is None:  # for the plan chosen on this batch, where "auto" asks
                    model, options = prepare_measured(model, options, images, height * width)
                    plan = execution_plan(options)
                probs = batch_probabilities(model, torch.from_numpy(images), plan, options.tta)
                probs = bands_for(probs, settings.target)
                wy = grid.row_weights[row]
                for col, prob in zip(batch_cols, probs.cpu().numpy(), strict=True):
                    wx = grid.col_weights[col]
                    h, w = len(wy), len(wx)
                    here = np.s_[:, row - top : row - top + h, col : col + w]
                    acc[here] += prob[:, :h, :w] * wy[:, None] * wx

                bar.update(len(batch_cols))
                if batch_cols[-1] != cols[-1]:
                    continue  # the strip is not finished
                next_row = rows[rows.index(row) + 1] if row != rows[-1] else None
                # Rows above the next strip are final; write whole tiles of them.
                end = (
                    height
                    if next_row is None
                    else top + (next_row - top) // SCENE_BLOCK * SCENE_BLOCK
                )
                if end == top:
                    continue
                _write_final_rows(src, dst, acc, top, end - top, grid.row_cover, grid.col_cover)
                top = end
    log.info("Wrote %s", out_uri)
