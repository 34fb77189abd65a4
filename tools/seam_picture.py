"""``python -m tools.seam_picture BUNDLE SCENE OUT_PNG``: window seams, unblended and blended.

A scene is predicted window by window, and near a window's edge the network sees zero padding
instead of the neighbouring pixels, so two windows disagree where they meet: a seam. This
predicts a crop of a scene twice with :func:`benchmark.inference.scenes.predict_scene`, in windows
that only touch (overlap 0) and in overlapping windows blended with ramps, and writes a
picture of both with the window edges drawn, plus ``OUT_PNG``'s ``.json``: for each run, the
mean absolute probability jump across window edges and across every other row and column
boundary. Without seams the two are alike; a seam makes the first larger.

The crop is cut so that both runs' windows tile it exactly (each side is ``window`` plus a
multiple of both strides, see :mod:`benchmark.data.windows`), so the edges drawn and measured
are the ones the prediction used.
"""

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window
from torch import nn

from benchmark.console import log_like_rastervision
from benchmark.data.imagery import open_scene_checked, read_rgb, read_valid_mask
from benchmark.data.uris import write_json
from benchmark.data.windows import centred_exact_tiling, window_edges
from benchmark.errors import InputError
from benchmark.evaluation.plots import WindowedPrediction, plot_window_seams
from benchmark.inference.execution import InferenceOptions, prepare_model
from benchmark.inference.scenes import predict_scene
from benchmark.inference.settings import PredictionSettings

BundleLoader = Callable[[str], Any]  # uri -> object with .model (nn.Module)


@dataclass(frozen=True)
class SeamMeasure:
    """Mean absolute probability jump between neighbouring pixels, on and off window edges."""

    edge_jump: float
    other_jump: float

    @property
    def ratio(self) -> float | None:
        """How much larger jumps are across window edges than elsewhere (1 = no seam)."""
        return self.edge_jump / self.other_jump if self.other_jump else None


def measure_seams(
    prob: np.ndarray,
    row_edges: Sequence[int],
    col_edges: Sequence[int],
    valid: np.ndarray | None = None,
) -> SeamMeasure:
    """Compare probability jumps across window edges with jumps across all other boundaries.

    A seam is a jump concentrated on the window edges; buildings' own outlines make jumps
    everywhere, which the second number measures. Pairs with a pixel outside the imagery
    (``valid`` False) are left out: prediction writes 0 there, a jump no window caused.

    Args:
        prob: float (H, W) probabilities.
        row_edges: rows where a window starts or ends (the boundary between rows e - 1 and e).
        col_edges: the same for columns.
        valid: bool (H, W), True where there is imagery; None = everywhere.
    """
    valid = np.ones(prob.shape, dtype=bool) if valid is None else valid
    sums = np.zeros(2)  # [on an edge, elsewhere]
    counts = np.zeros(2)
    for axis, edges in ((0, row_edges), (1, col_edges)):
        jumps = np.abs(np.diff(prob, axis=axis))
        both = valid[1:] & valid[:-1] if axis == 0 else valid[:, 1:] & valid[:, :-1]
        across = 1 - axis
        boundary_sums = (jumps * both).sum(axis=across)
        boundary_counts = both.sum(axis=across)
        on_edge = np.isin(np.arange(1, prob.shape[axis]), edges)
        for i, selected in enumerate((on_edge, ~on_edge)):
            sums[i] += boundary_sums[selected].sum()
            counts[i] += boundary_counts[selected].sum()
    if not counts.all():
        raise ValueError("no pixel pairs with imagery on window edges, or none elsewhere")
    edge_jump, other_jump = sums / counts
    return SeamMeasure(float(edge_jump), float(other_jump))


def write_crop(scene_uri: str, window: Window, path: str) -> None:
    """Copy ``window`` of the scene (all bands, their meanings, georeference) to ``path``."""
    with open_scene_checked(scene_uri) as src:
        profile = {
            "driver": "GTiff",
            "width": int(window.width),
            "height": int(window.height),
            "count": src.count,
            "dtype": src.dtypes[0],
            "crs": src.crs,
            "transform": src.window_transform(window),
            "nodata": src.nodata,
        }
        with rasterio.open(path, "w", **profile) as dst:
            dst.colorinterp = src.colorinterp
            dst.write(src.read(window=window))


def _scene_region(scene_uri: str, region: Window | None) -> Window:
    """``region`` checked to lie inside the scene; the whole scene if None."""
    with open_scene_checked(scene_uri) as src:
        height, width = src.height, src.width
    if region is None:
        return Window(0, 0, width, height)
    row, col = int(region.row_off), int(region.col_off)
    if row < 0 or col < 0 or row + region.height > height or col + region.width > width:
        raise InputError(f"{scene_uri}: region {region} is not inside the {width}x{height} scene")
    return region


def _predict_run(
    model: nn.Module,
    crop_path: str,
    valid: np.ndarray,
    window: int,
    overlap: int,
    options: InferenceOptions,
) -> tuple[WindowedPrediction, SeamMeasure]:
    """Predict the crop with ``predict_scene`` (as it writes them: uint8) and measure seams."""
    out_path = f"{crop_path.removesuffix('.tif')}_overlap{overlap}.tif"
    predict_scene(model, crop_path, out_path, PredictionSettings(options, window, overlap))
    with rasterio.open(out_path) as src:
        prob = src.read(1).astype(np.float32) / 255
    row_edges = window_edges(prob.shape[0], window, overlap)
    col_edges = window_edges(prob.shape[1], window, overlap)
    measure = measure_seams(prob, row_edges, col_edges, valid)
    name = "no overlap" if overlap == 0 else f"overlap {overlap} px, blended"
    note = (
        f"mean jump {measure.edge_jump:.3f} across window edges, {measure.other_jump:.3f} elsewhere"
    )
    return WindowedPrediction(name, note, prob, row_edges, col_edges), measure


def seam_picture(
    model: nn.Module,
    scene_uri: str,
    png_uri: str,
    window: int = 256,
    overlap: int = 128,
    region: Window | None = None,
    options: InferenceOptions | None = None,
) -> dict[str, Any]:
    """Predict a crop of the scene without and with blended overlap; write the PNG and JSON.

    Args:
        model: the network.
        scene_uri: an RGB(A) GeoTIFF.
        png_uri: the picture; the report goes next to it with the suffix ``.json``.
        window: window side (small, so several window edges cross the picture).
        overlap: the blended run's overlap (1 to ``window // 2``).
        region: where to cut the crop (its largest exactly tiled centre); None = the scene.
        options: inference options (defaults if None).

    Returns:
        The report written to the JSON.
    """
    if not 0 < overlap <= window // 2:
        raise InputError(f"overlap {overlap} must be between 1 and half the window ({window})")
    try:
        crop = centred_exact_tiling(_scene_region(scene_uri, region), window, (0, overlap))
    except ValueError as exc:
        raise InputError(f"{scene_uri}: no crop for the picture: {exc}") from None
    report: dict[str, Any] = {
        "scene": scene_uri,
        "crop": {k: int(v) for k, v in crop.todict().items()},
        "window": window,
        "runs": {},
    }
    runs = []
    options = options or InferenceOptions()
    model = prepare_model(model, options)  # once for both runs
    with tempfile.TemporaryDirectory() as tmp_dir:
        crop_path = os.path.join(tmp_dir, "crop.tif")
        write_crop(scene_uri, crop, crop_path)
        with rasterio.open(crop_path) as src:
            rgb, valid = read_rgb(src), read_valid_mask(src)
        for key, run_overlap in (("no_overlap", 0), ("blended", overlap)):
            run, measure = _predict_run(model, crop_path, valid, window, run_overlap, options)
            runs.append(run)
            report["runs"][key] = {
                "overlap": run_overlap,
                **asdict(measure),
                "ratio": measure.ratio,
            }
    title = (
        f"{os.path.basename(scene_uri)}, rows {crop.row_off}-{crop.row_off + crop.height}, "
        f"columns {crop.col_off}-{crop.col_off + crop.width}: {window} px windows"
    )
    plot_window_seams(rgb, *runs, png_uri, title)
    write_json(report, f"{os.path.splitext(png_uri)[0]}.json")
    return report


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("bundle", help="model bundle (bundle/model-bundle.zip; local or s3://)")
    parser.add_argument("scene", help="RGB(A) GeoTIFF scene or PREPROCESS window")
    parser.add_argument("out_png", help="the picture; the seam measure goes to its .json")
    parser.add_argument("--window", type=int, default=256, help="window side (default 256)")
    parser.add_argument(
        "--overlap", type=int, default=128, help="blended run's overlap (default 128)"
    )
    parser.add_argument(
        "--region",
        type=int,
        nargs=4,
        metavar=("ROW", "COL", "HEIGHT", "WIDTH"),
        help="cut the crop from this part of the scene (default: the whole scene)",
    )
    parser.add_argument("--batch-size", type=int, default=4, help="windows per forward pass")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    return parser


def main(argv: Sequence[str] | None = None, load_bundle: BundleLoader | None = None) -> int:
    """Run the command; ``load_bundle`` replaces :func:`~benchmark.pipeline.bundle.load_bundle`."""
    args = build_parser().parse_args(argv)
    log_like_rastervision(also=("tools",))
    if load_bundle is None:
        from benchmark.pipeline.bundle import load_bundle  # imports Raster Vision's learner: slow
    region = None
    if args.region:
        row, col, height, width = args.region
        region = Window(col, row, width, height)
    options = InferenceOptions(device=args.device, batch_size=args.batch_size)
    try:
        model = load_bundle(args.bundle).model
        report = seam_picture(
            model, args.scene, args.out_png, args.window, args.overlap, region, options
        )
    except InputError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    for name, run in report["runs"].items():
        sys.stdout.write(
            f"{name}: mean jump {run['edge_jump']:.4f} across window edges, "
            f"{run['other_jump']:.4f} elsewhere\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
