"""Pictures of results: prediction overlays, training curves, test-chip previews, window seams.

Scenes are drawn from decimated reads (GDAL picks overview levels), so a picture of a
40,000 px scene costs as much memory as the picture. Figures are drawn with matplotlib's
object API (no pyplot), which needs no display and changes no global state.
"""

import csv
import io
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import rasterio
import shapely
from affine import Affine
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.legend_handler import HandlerTuple
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import MaxNLocator
from rasterio.enums import Resampling
from rasterio.windows import Window
from rastervision.pipeline.file_system import file_to_str

from benchmark.data.constants import DEFAULT_THRESHOLD
from benchmark.data.imagery import alpha_band
from benchmark.data.uris import atomic_output
from benchmark.evaluation.metrics import ConfusionCounts, WindowRasterizer, evaluate_scene
from benchmark.inference.forward import probability_to_mask

log = logging.getLogger(__name__)

# Overlay colours: found buildings, false alarms, missed buildings (distinct for most kinds of
# colour blindness: green / magenta / blue, none of them the imagery's browns).
TP_COLOR, FP_COLOR, FN_COLOR = (0.1, 0.85, 0.2), (1.0, 0.1, 0.75), (0.1, 0.45, 1.0)
CHIP_PREVIEW_SIDE = 512
# Window edges on probability maps: thin, and a colour no grey level can be mistaken for.
EDGE_COLOR = (1.0, 0.55, 0.0)
ZOOM_COLOR = (0.0, 0.9, 1.0)
# Traced footprints: yellow, apart from the fill colours and the imagery...
OUTLINE_COLOR = (1.0, 0.9, 0.0)
# ...or a colour each, neighbours apart, so that where touching buildings were split shows:
# yellow, orange, red, cyan, white, violet (none of them the fills' green, magenta or blue).
BUILDING_COLORS = (
    OUTLINE_COLOR,
    (1.0, 0.5, 0.0),
    (0.9, 0.0, 0.0),
    (0.0, 0.9, 1.0),
    (1.0, 1.0, 1.0),
    (0.6, 0.4, 1.0),
)


def _decimated_shape(area: rasterio.DatasetReader | Window, max_side: int) -> tuple[int, int]:
    """(H, W) of a picture of a raster (or a window of one) at most ``max_side`` px a side."""
    scale = min(1.0, max_side / max(area.width, area.height))
    return max(1, round(area.height * scale)), max(1, round(area.width * scale))


def _read_decimated(
    src: rasterio.DatasetReader,
    bands: list[int],
    shape: tuple[int, int],
    window: Window | None = None,
) -> np.ndarray:
    return src.read(
        bands, window=window, out_shape=(len(bands), *shape), resampling=Resampling.nearest
    )


def _read_valid_decimated(
    src: rasterio.DatasetReader, shape: tuple[int, int], window: Window | None = None
) -> np.ndarray:
    """Where there is imagery, at ``shape`` (alpha 255, else GDAL's mask: nodata or internal)."""
    alpha = alpha_band(src)
    if alpha is not None:
        return _read_decimated(src, [alpha], shape, window)[0] == 255
    return src.dataset_mask(window=window, out_shape=shape) > 0


def _save(fig: Figure, png_uri: str) -> None:
    with atomic_output(png_uri) as path:
        fig.savefig(path, format="png", dpi=100, bbox_inches="tight")
    log.info("Wrote %s", png_uri)


def draw_outlines(
    ax,
    polygons: Sequence[shapely.Geometry],
    transform: Affine,
    color=OUTLINE_COLOR,
    colors: Sequence | None = None,
) -> None:
    """Outline ``polygons`` (in a CRS) on a picture whose pixels ``transform`` places.

    ``colors``: one per polygon (default: ``color`` for all).
    """
    to_pixels = ~transform
    rings, ring_colors = [], []
    for k, polygon in enumerate(polygons):
        for part in getattr(polygon, "geoms", [polygon]):
            for ring in (part.exterior, *part.interiors):
                cols, rows = to_pixels * np.asarray(ring.coords).T
                rings.append(np.column_stack([cols - 0.5, rows - 0.5]))  # imshow: centres
                ring_colors.append(color if colors is None else colors[k])
    ax.add_collection(LineCollection(rings, colors=ring_colors, linewidths=0.9))


def building_colors(
    polygons: Sequence[shapely.Geometry], distance: float, palette: Sequence = BUILDING_COLORS
) -> list:
    """A colour of ``palette`` per polygon, apart from those of polygons within ``distance``.

    Greedy, in order, each polygon starting its search at its index (so that the colours vary
    where nothing forces them); with more close neighbours than colours, a repeat.
    """
    if not polygons:
        return []
    geoms = np.asarray(polygons, dtype=object)
    left, right = shapely.STRtree(geoms).query(geoms, predicate="dwithin", distance=distance)
    neighbours: list[list[int]] = [[] for _ in polygons]
    for a, b in zip(left.tolist(), right.tolist(), strict=True):
        if b < a:
            neighbours[a].append(b)
    chosen: list[int] = []
    for k in range(len(polygons)):
        taken = {chosen[j] for j in neighbours[k]}
        order = [(k + step) % len(palette) for step in range(len(palette))]
        chosen.append(next((c for c in order if c not in taken), order[0]))
    return [palette[c] for c in chosen]


def plot_scene_overlay(
    image_uri: str,
    prob_uri: str,
    rasterize_window: WindowRasterizer,
    png_uri: str,
    threshold: float = DEFAULT_THRESHOLD,
    max_side: int = 1200,
    counts: ConfusionCounts | None = None,
    window: Window | None = None,
    buildings: Sequence[shapely.Geometry] | None = None,
) -> None:
    """The scene with found (green), false (magenta) and missed (blue) building pixels.

    Args:
        image_uri: the scene.
        prob_uri: its uint8 probability raster (from ``predict_scene``).
        rasterize_window: ``(transform, (h, w)) -> uint8 0/1`` true buildings.
        png_uri: where to write the PNG.
        threshold: decision threshold.
        max_side: longest side of the picture in pixels.
        counts: the scene's full-resolution counts at ``threshold`` for the title's Jaccard;
            computed here (one streamed pass) if None. The picture itself is decimated.
        window: the part of ``image_uri`` the probabilities cover (None: all of it).
        buildings: footprints traced from the probabilities (in the scene's CRS), each
            outlined in a colour of its own (:func:`building_colors`: two touching buildings
            apart), so that the picture shows which blobs the tracer split into buildings.
    """
    if counts is None:
        swept = evaluate_scene(prob_uri, image_uri, rasterize_window, (threshold,), window=window)
        counts = swept[threshold]
    with rasterio.open(image_uri) as src, rasterio.open(prob_uri) as prob_src:
        region = window or Window(0, 0, src.width, src.height)
        shape = _decimated_shape(region, max_side)
        rgb = _read_decimated(src, [1, 2, 3], shape, region).transpose(1, 2, 0)
        valid = _read_valid_decimated(src, shape, region)
        prob = _read_decimated(prob_src, [1], shape)[0]
        transform = src.window_transform(region) @ Affine.scale(
            region.width / shape[1], region.height / shape[0]
        )
    truth = rasterize_window(transform, shape).astype(bool)
    pred = probability_to_mask(prob, threshold).astype(bool)

    image = rgb.astype(np.float32) / 255
    image[~valid] = 0.5 * image[~valid] + 0.5  # no imagery: washed out
    for mask, color in (
        (pred & truth, TP_COLOR),
        (pred & ~truth, FP_COLOR),
        (~pred & truth, FN_COLOR),
    ):
        mask &= valid
        image[mask] = 0.45 * image[mask] + 0.55 * np.array(color)
    fig = Figure(figsize=(10, 10 * shape[0] / shape[1] + 0.8))
    ax = fig.subplots()
    ax.imshow(image, interpolation="nearest")
    if buildings:
        near = 2 * abs(transform.a)  # two of the picture's pixels: outlines that look touching
        draw_outlines(ax, buildings, transform, colors=building_colors(buildings, near))
    ax.set_axis_off()
    name = os.path.splitext(os.path.basename(prob_uri))[0]
    ax.set_title(
        f"{name}: Jaccard {counts.jaccard:.3f}, precision {counts.precision:.3f}, "
        f"recall {counts.recall:.3f} (threshold {threshold:.2f})"
    )
    handles: list = [
        Patch(color=TP_COLOR, label="building found (TP)"),
        Patch(color=FP_COLOR, label="false building (FP)"),
        Patch(color=FN_COLOR, label="building missed (FN)"),
    ]
    labels = [h.get_label() for h in handles]
    if buildings:  # one entry: a short line in each of the first colours
        handles.append(tuple(Line2D([], [], color=c) for c in BUILDING_COLORS[:3]))
        labels.append("footprints traced (a colour each)")
    ax.legend(
        handles,
        labels,
        handler_map={tuple: HandlerTuple(ndivide=None)},
        loc="lower right",
        framealpha=0.85,
    )
    _save(fig, png_uri)


def plot_threshold_choice(
    pos: np.ndarray,
    neg: np.ndarray,
    sweep: Mapping[float, float],
    threshold: float,
    png_uri: str,
) -> None:
    """How often each probability was predicted on buildings and elsewhere, and the Jaccard.

    Shows why a threshold was chosen: where the background's peak ends, where the buildings
    the model is unsure of lie, and what each threshold of eval's sweep scores.

    Args:
        pos: validation pixels per uint8 probability level that are buildings.
        neg: the same for the other pixels.
        sweep: threshold -> micro Jaccard.
        threshold: the decision threshold (drawn solid; the default, DEFAULT_THRESHOLD, dashed).
        png_uri: where to write the PNG.
    """
    edges = np.arange(len(pos) + 1) / 255  # level q spans [q, q + 1) / 255
    fig = Figure(figsize=(9, 4.5))
    ax = fig.subplots()
    for counts, color, label in ((neg, FN_COLOR, "not building"), (pos, TP_COLOR, "building")):
        ax.stairs(counts, edges, fill=True, alpha=0.6, color=color, label=f"{label} (pixels)")
    ax.set_yscale("log")
    ax.set_xlabel("predicted probability of building")
    ax.set_ylabel("validation pixels")
    jaccard_ax = ax.twinx()
    jaccard_ax.plot(list(sweep), list(sweep.values()), color="black", marker="o",
                    markersize=3, label="micro Jaccard")  # fmt: skip
    jaccard_ax.set_ylim(0, 1)
    jaccard_ax.set_ylabel("micro Jaccard at the threshold")
    ax.axvline(threshold, color=FP_COLOR, linewidth=1.5, label=f"threshold {threshold:.3f}")
    if threshold != DEFAULT_THRESHOLD:
        default = f"default {DEFAULT_THRESHOLD}"
        ax.axvline(DEFAULT_THRESHOLD, color=FP_COLOR, linestyle="--", linewidth=1, label=default)
    handles = ax.get_legend_handles_labels()[0] + jaccard_ax.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="upper right", framealpha=0.85)
    ax.set_xlim(0, 1)
    ax.set_title(f"Validation probabilities: Jaccard {sweep[threshold]:.3f} at {threshold:.3f}")
    _save(fig, png_uri)


def _numeric_columns(rows: list[dict[str, str]]) -> dict[str, list[float]]:
    """Columns whose every value is a number (``train_time`` and the like are not)."""
    columns = {}
    for key in rows[0]:
        try:
            columns[key] = [float(r[key]) for r in rows]
        except (TypeError, ValueError):
            continue
    return columns


def plot_training_curves(log_csv_uri: str, png_uri: str) -> None:
    """Losses and building-class metrics per epoch from Raster Vision's ``train/log.csv``.

    Plots what the log has: ``train_loss``/``val_loss`` and the ``Building_*`` (any case)
    precision/recall/F1 columns, plus ``avg_f1``. A log without any of them is skipped with a
    warning: a missing picture is no reason to fail ``eval``.
    """
    rows = list(csv.DictReader(io.StringIO(file_to_str(log_csv_uri))))
    if not rows:
        log.warning("%s: no epochs logged, %s not written", log_csv_uri, png_uri)
        return
    columns = _numeric_columns(rows)
    epochs = columns.pop("epoch", list(range(len(rows))))
    epochs = [e + 1 for e in epochs]  # RV counts epochs from 0
    losses = [k for k in ("train_loss", "val_loss") if k in columns]
    metrics = [k for k in columns if k.lower().startswith("building_") or k == "avg_f1"]
    if not losses and not metrics:
        log.warning("%s: no loss or building metric columns, %s not written", log_csv_uri, png_uri)
        return
    fig = Figure(figsize=(11, 4))
    loss_ax, metric_ax = fig.subplots(1, 2)
    for ax, keys, title in (
        (loss_ax, losses, "loss"),
        (metric_ax, metrics, "validation chips"),
    ):
        for key in keys:
            ax.plot(epochs, columns[key], marker="o", markersize=3, label=key)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if keys:
            ax.legend()
    metric_ax.set_ylim(0, 1)
    _save(fig, png_uri)


def plot_chip_predictions(
    chip_uris: Sequence[str], mask_uris: Sequence[str], png_uri: str, max_chips: int = 8
) -> None:
    """A grid of test chips with their predicted buildings tinted and outlined."""
    pairs = list(zip(chip_uris, mask_uris, strict=True))[:max_chips]
    if not pairs:
        log.warning("No chips to draw: %s not written", png_uri)
        return
    cols = min(4, len(pairs))
    rows = math.ceil(len(pairs) / cols)
    fig = Figure(figsize=(4 * cols, 4.3 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, (chip_uri, mask_uri) in zip(axes.flat, pairs, strict=False):
        with rasterio.open(chip_uri) as src, rasterio.open(mask_uri) as mask_src:
            shape = _decimated_shape(src, CHIP_PREVIEW_SIDE)
            image = _read_decimated(src, [1, 2, 3], shape).transpose(1, 2, 0) / 255.0
            mask = _read_decimated(mask_src, [1], shape)[0] == 1
        image[mask] = 0.65 * image[mask] + 0.35 * np.array(FP_COLOR)
        ax.imshow(image, interpolation="nearest")
        if mask.any() and not mask.all():
            ax.contour(mask, levels=[0.5], colors=[FP_COLOR], linewidths=0.8)
        name = os.path.splitext(os.path.basename(chip_uri))[0]
        ax.set_title(f"{name}: {mask.mean():.0%} building", fontsize=10)
    _save(fig, png_uri)


@dataclass(frozen=True)
class WindowedPrediction:
    """One windowed prediction of a picture-sized crop, for :func:`plot_window_seams`."""

    name: str  # how it was predicted, e.g. "no overlap"
    note: str  # a second title line, e.g. its seam measure
    prob: np.ndarray  # float (H, W) P(building)
    row_edges: Sequence[int]  # window edges: a seam would lie between pixels e - 1 and e
    col_edges: Sequence[int]


def _draw_edges(ax, row_edges: Sequence[int], col_edges: Sequence[int]) -> None:
    """Thin lines on the pixel boundaries where windows start or end."""
    # Dashed: the line must not hide the seam it marks.
    style = {"color": EDGE_COLOR, "linewidth": 0.7, "alpha": 0.8, "linestyle": (0, (4, 4))}
    for edge in row_edges:
        ax.axhline(edge - 0.5, **style)
    for edge in col_edges:
        ax.axvline(edge - 0.5, **style)


def _zoom_box(difference: np.ndarray, side: int) -> tuple[int, int, int]:
    """(row, col, side) of a square around the largest difference, inside the picture.

    Blending changes a prediction most where a seam was, so that is where to look closely.
    """
    side = min(side, *difference.shape)
    row, col = np.unravel_index(np.argmax(difference), difference.shape)
    top = int(np.clip(row - side // 2, 0, difference.shape[0] - side))
    left = int(np.clip(col - side // 2, 0, difference.shape[1] - side))
    return top, left, side


def _mark_box(ax, box: tuple[int, int, int]) -> None:
    top, left, side = box
    ax.add_patch(Rectangle((left - 0.5, top - 0.5), side, side, fill=False, color=ZOOM_COLOR))


def _zoom_to(ax, box: tuple[int, int, int]) -> None:
    top, left, side = box
    ax.set_xlim(left - 0.5, left + side - 0.5)
    ax.set_ylim(top + side - 0.5, top - 0.5)


def plot_window_seams(
    rgb: np.ndarray,
    before: WindowedPrediction,
    after: WindowedPrediction,
    png_uri: str,
    title: str,
    zoom_side: int = 128,
    max_difference: float = 0.5,
) -> None:
    """Two predictions of a crop side by side with their window edges, whole and zoomed.

    Top: the imagery and both probability maps (grey: black = 0, white = 1; window edges in
    orange). Bottom: where the two differ, and both maps zoomed (cyan box) on the largest
    difference: a seam is a line or two of pixels, invisible in a picture of the whole crop.

    Args:
        rgb: uint8 (3, H, W) imagery of the crop.
        before: e.g. the prediction in windows that only touch.
        after: e.g. the prediction in overlapping, blended windows.
        png_uri: where to write the PNG.
        title: the figure's title.
        zoom_side: side of the zoomed square in crop pixels.
        max_difference: the difference colour scale's top (larger differences saturate).
    """
    height, width = before.prob.shape
    panel_width = 6
    fig = Figure(
        figsize=(3 * panel_width, 2 * panel_width * height / width + 1.5), layout="constrained"
    )
    fig.suptitle(title)
    axes = fig.subplots(2, 3)
    difference = np.abs(after.prob - before.prob)
    box = _zoom_box(difference, zoom_side)
    axes[0, 0].imshow(rgb.transpose(1, 2, 0), interpolation="nearest")
    axes[0, 0].set_title("imagery")
    for col, run in enumerate((before, after), start=1):
        for row in (0, 1):
            ax = axes[row, col]
            shown = ax.imshow(run.prob, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            _draw_edges(ax, run.row_edges, run.col_edges)
        axes[0, col].set_title(f"{run.name}\n{run.note}")
        axes[1, col].set_title(f"zoom (cyan box), {run.name}")
        _zoom_to(axes[1, col], box)
    fig.colorbar(shown, ax=axes[:, 2].tolist(), shrink=0.6, label="P(building)")
    diff_shown = axes[1, 0].imshow(
        difference, cmap="magma", vmin=0, vmax=max_difference, interpolation="nearest"
    )
    _draw_edges(axes[1, 0], before.row_edges, before.col_edges)
    axes[1, 0].set_title("|difference| (edges: windows without overlap)")
    fig.colorbar(diff_shown, ax=axes[1, 0], shrink=0.8, location="left")
    for ax in axes[0]:
        _mark_box(ax, box)
    _mark_box(axes[1, 0], box)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    _save(fig, png_uri)
