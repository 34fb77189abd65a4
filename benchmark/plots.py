"""Pictures of results: prediction overlays, training curves, test-chip previews.

Scenes are drawn from decimated reads (GDAL picks overview levels), so a picture of a
40,000 px scene costs as much memory as the picture. Figures are drawn with matplotlib's
object API (no pyplot), which needs no display and changes no global state.
"""

import csv
import io
import logging
import math
from collections.abc import Sequence

import numpy as np
import rasterio
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from rasterio.enums import Resampling
from rastervision.pipeline.file_system import file_to_str

from benchmark.imagery import alpha_band
from benchmark.inference import probability_to_mask
from benchmark.metrics import WindowRasterizer, count_confusion
from benchmark.uris import atomic_output

log = logging.getLogger(__name__)

# Overlay colours: found buildings, false alarms, missed buildings.
TP_COLOR, FP_COLOR, FN_COLOR = (0.1, 0.8, 0.2), (0.95, 0.2, 0.1), (0.1, 0.5, 1.0)


def _read_decimated(src: rasterio.DatasetReader, bands: list[int], shape: tuple[int, int]):
    return src.read(bands, out_shape=(len(bands), *shape), resampling=Resampling.nearest)


def _save(fig: Figure, png_uri: str) -> None:
    with atomic_output(png_uri) as path:
        fig.savefig(path, dpi=100, bbox_inches="tight")
    log.info("Wrote %s", png_uri)


def plot_scene_overlay(
    image_uri: str,
    prob_uri: str,
    rasterize_window: WindowRasterizer,
    png_uri: str,
    threshold: float = 0.5,
    max_side: int = 1200,
) -> None:
    """The scene with found (green), false (red) and missed (blue) building pixels."""
    with rasterio.open(image_uri) as src, rasterio.open(prob_uri) as prob_src:
        scale = min(1.0, max_side / max(src.width, src.height))
        shape = (max(1, round(src.height * scale)), max(1, round(src.width * scale)))
        rgb = _read_decimated(src, [1, 2, 3], shape).transpose(1, 2, 0)
        alpha = alpha_band(src)
        valid = _read_decimated(src, [alpha], shape)[0] == 255 if alpha else np.ones(shape, bool)
        prob = _read_decimated(prob_src, [1], shape)[0]
        transform = src.transform @ src.transform.scale(src.width / shape[1], src.height / shape[0])
    truth = rasterize_window(transform, shape).astype(bool)
    pred = probability_to_mask(prob, threshold).astype(bool)
    jaccard = count_confusion(pred, truth, valid).jaccard

    image = rgb.astype(np.float32) / 255
    for mask, color in (
        (pred & truth, TP_COLOR),
        (pred & ~truth, FP_COLOR),
        (~pred & truth, FN_COLOR),
    ):
        image[mask & valid] = 0.45 * image[mask & valid] + 0.55 * np.array(color)
    fig = Figure(figsize=(10, 10 * shape[0] / shape[1] + 0.8))
    ax = fig.subplots()
    ax.imshow(image)
    ax.set_axis_off()
    ax.set_title(
        f"{prob_uri.rsplit('/', 1)[-1]}: Jaccard {jaccard:.3f} (threshold {threshold:.2f})"
    )
    handles = [
        Patch(color=TP_COLOR, label="building found"),
        Patch(color=FP_COLOR, label="false building"),
        Patch(color=FN_COLOR, label="building missed"),
    ]
    ax.legend(handles=handles, loc="lower right", framealpha=0.8)
    _save(fig, png_uri)


def plot_training_curves(log_csv_uri: str, png_uri: str) -> None:
    """Losses and building metrics per epoch from Raster Vision's ``train/log.csv``."""
    rows = list(csv.DictReader(io.StringIO(file_to_str(log_csv_uri))))
    if not rows:
        log.warning("%s is empty: no training curves", log_csv_uri)
        return
    epochs = [int(r["epoch"]) + 1 for r in rows]
    fig = Figure(figsize=(11, 4))
    loss_ax, metric_ax = fig.subplots(1, 2)
    for key in ("train_loss", "val_loss"):
        if key in rows[0]:
            loss_ax.plot(epochs, [float(r[key]) for r in rows], marker="o", label=key)
    loss_ax.set_xlabel("epoch")
    loss_ax.set_title("loss")
    loss_ax.legend()
    for key in rows[0]:
        if key.lower().startswith("building_") and key.lower() != "building_support":
            metric_ax.plot(epochs, [float(r[key]) for r in rows], marker="o", label=key)
    metric_ax.set_xlabel("epoch")
    metric_ax.set_title("validation chips, building class")
    metric_ax.set_ylim(0, 1)
    metric_ax.legend()
    _save(fig, png_uri)


def plot_chip_predictions(
    chip_uris: Sequence[str], mask_uris: Sequence[str], png_uri: str, max_chips: int = 8
) -> None:
    """A grid of test chips with their predicted buildings tinted red."""
    pairs = list(zip(chip_uris, mask_uris, strict=True))[:max_chips]
    if not pairs:
        return
    cols = min(4, len(pairs))
    rows = math.ceil(len(pairs) / cols)
    fig = Figure(figsize=(4 * cols, 4 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, (chip_uri, mask_uri) in zip(axes.flat, pairs, strict=False):
        with rasterio.open(chip_uri) as src, rasterio.open(mask_uri) as msrc:
            shape = (min(src.height, 512), min(src.width, 512))
            image = _read_decimated(src, [1, 2, 3], shape).transpose(1, 2, 0) / 255.0
            mask = _read_decimated(msrc, [1], shape)[0] == 1
        image[mask] = 0.5 * image[mask] + 0.5 * np.array(FP_COLOR)
        ax.imshow(image)
        ax.set_title(chip_uri.rsplit("/", 1)[-1])
    _save(fig, png_uri)
