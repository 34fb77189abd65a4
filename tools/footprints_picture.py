"""``python -m tools.footprints_picture``: the docs' picture of footprints over imagery.

Runs ``benchmark-footprints``' work with the demo's bundle on the Kampala validation scene and
draws the footprints over the imagery, matched ones (IoU >= 0.5 with an OpenStreetMap building)
in green, the others in magenta, and the OpenStreetMap buildings in thin blue, with the
per-building scores in the title. Writes ``img/footprints.png`` (and the footprints under
``--out``).
"""

import argparse
import logging
import sys
from pathlib import Path

import pyogrio.raw
import rasterio
import shapely
from affine import Affine
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from rasterio.enums import Resampling

from benchmark.console import log_like_rastervision
from benchmark.data import layout
from benchmark.data.labels import LabelRasterizer, read_building_labels
from benchmark.data.uris import atomic_output
from benchmark.evaluation.buildings import (
    BuildingCounts,
    match_buildings,
    truth_in_raster,
)
from benchmark.evaluation.plots import FN_COLOR, FP_COLOR, TP_COLOR, draw_outlines
from benchmark.footprints.inputs import ImageRef
from benchmark.footprints.outlines import DEFAULT_MIN_AREA
from benchmark.footprints.run import FootprintOutputs, FootprintSettings, footprints_for_images
from benchmark.inference.execution import InferenceOptions
from tools.measure import REPO

log = logging.getLogger("tools.footprints_picture")

SCENE = REPO / "data" / "kampala_sample" / "train_tier_1" / "kam" / "8a5983" / "8a5983.tif"
LABELS = SCENE.parents[1] / "8a5983-labels" / "8a5983.geojson"
DEMO_BUNDLE = Path(
    layout.model_bundle_uri(layout.command_dir(str(REPO / "out" / "demo"), "bundle", "kampala"))
)
PICTURE_SIDE = 1200


def outline_scene(bundle_uri: str, out_dir: Path, regularize: bool) -> FootprintOutputs:
    """The Kampala validation scene's footprints with the bundle (kept if already made)."""
    from benchmark.pipeline.bundle import load_bundle

    bundle = load_bundle(bundle_uri)
    settings = FootprintSettings(
        threshold=bundle.threshold,
        regularize=regularize,
        prediction=bundle.prediction(InferenceOptions()),
    )
    footprints_for_images(bundle.model, [ImageRef(SCENE.stem, str(SCENE))], str(out_dir), settings)
    return FootprintOutputs.of(str(out_dir), SCENE.stem)


def draw_picture(outputs: FootprintOutputs, png: Path) -> BuildingCounts:
    """Imagery, OSM buildings and the footprints coloured by match; the counts drawn."""
    _, _, wkb, _ = pyogrio.raw.read(outputs.gpkg)
    found = list(shapely.from_wkb(wkb))
    with rasterio.open(SCENE) as src:
        scale = min(1.0, PICTURE_SIDE / max(src.width, src.height))
        shape = (round(src.height * scale), round(src.width * scale))
        rgb = src.read([1, 2, 3], out_shape=(3, *shape), resampling=Resampling.average)
        transform = src.transform * Affine.scale(src.width / shape[1], src.height / shape[0])
        geoms, _ = read_building_labels(str(LABELS))
        truth = truth_in_raster(LabelRasterizer(geoms, src.crs).geoms, src, DEFAULT_MIN_AREA)
    matched = {p for p, _, _ in match_buildings(found, truth)}
    counts = BuildingCounts(len(matched), len(found) - len(matched), len(truth) - len(matched))
    fig = Figure(figsize=(10, 10 * shape[0] / shape[1] + 0.8))
    ax = fig.subplots()
    ax.imshow(rgb.transpose(1, 2, 0), interpolation="nearest")
    draw_outlines(ax, truth, transform, color=FN_COLOR)
    for keep, color in ((True, TP_COLOR), (False, FP_COLOR)):
        chosen = [f for i, f in enumerate(found) if (i in matched) == keep]
        draw_outlines(ax, chosen, transform, color=color)
    ax.set_axis_off()
    ax.set_title(
        f"Kampala validation scene {SCENE.stem}: per-building F1 {counts.f1:.2f} at IoU >= 0.5 "
        f"(precision {counts.precision:.2f}, recall {counts.recall:.2f})"
    )
    handles = [
        Line2D([], [], color=TP_COLOR, label=f"footprint matching OSM ({counts.tp})"),
        Line2D([], [], color=FP_COLOR, label=f"footprint without a match ({counts.fp})"),
        Line2D([], [], color=FN_COLOR, label=f"OpenStreetMap building ({len(truth)})"),
    ]
    ax.legend(handles=handles, loc="lower right", framealpha=0.85)
    with atomic_output(str(png)) as path:
        fig.savefig(path, format="png", dpi=100, bbox_inches="tight")
    log.info("Wrote %s (%s)", png, counts)
    return counts


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m tools.footprints_picture [--bundle B] [--out DIR] [--png P]``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bundle", default=str(DEMO_BUNDLE), help="model bundle (the demo's)")
    parser.add_argument("--out", default=str(REPO / "out" / "footprints_picture"))
    parser.add_argument("--png", default=str(REPO / "img" / "footprints.png"))
    parser.add_argument("--regularize", action="store_true", help="square the outlines")
    args = parser.parse_args(argv)
    log_like_rastervision(also=("tools",))
    outputs = outline_scene(args.bundle, Path(args.out), args.regularize)
    draw_picture(outputs, Path(args.png))
    return 0


if __name__ == "__main__":
    sys.exit(main())
