"""``python -m tools.survey_measure``: a survey's merged layer against the whole scene's.

A drone survey is many overlapping orthomosaics; ``benchmark merge-footprints`` should turn
their footprints into the layer one would get from a single image of the whole area. We have no
real survey, so one is cut from a Kampala sample scene: ``--grid`` x ``--grid`` GeoTIFF tiles
(each with its real transform) overlapping by ``--overlap`` of a tile. ``benchmark footprints``
runs on the whole scene and on the tiles' folder, ``benchmark merge-footprints`` on the tiles'
outputs, each as a user runs it (a child process, timed). Both layers are scored against the
scene's OpenStreetMap labels with eval's per-building rule (IoU >= 0.5, one to one):

- the merged layer's precision, recall and F1 against the whole scene's (goal: within 0.01);
- pairs of merged buildings the merge's own rule calls copies of one building (IoU >= 0.3, or
  >= 0.5 of the smaller inside the other; goal: 0);
- buildings before merging (summed over the tiles) and after;
- km² per CPU-hour of footprints on the tiles + merge: the children's user + sys time
  (``getrusage(RUSAGE_CHILDREN)``), start-up and bundle loading included, as a user pays them.

Writes ``{out}/results.json``, ``{out}/results.md`` (one table row) and ``{out}/survey.png``.
"""

import argparse
import logging
import math
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyogrio
import rasterio
import shapely
from affine import Affine
from matplotlib import colormaps
from matplotlib.collections import PatchCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Polygon as PolygonPatch
from rasterio.enums import Resampling
from rasterio.windows import Window

from benchmark.console import log_like_rastervision
from benchmark.data.labels import LabelRasterizer, read_building_labels
from benchmark.data.uris import atomic_output, write_json
from benchmark.evaluation.buildings import count_buildings, truth_in_raster
from benchmark.evaluation.plots import FN_COLOR, draw_outlines
from benchmark.footprints.merge import MergeOutputs, duplicate_pairs
from benchmark.footprints.outlines import DEFAULT_MIN_AREA
from benchmark.footprints.survey import BUILDINGS_SUFFIX, EDGE_PIXELS
from tools.footprints_picture import DEMO_BUNDLE
from tools.measure import REPO, describe_machine

log = logging.getLogger("tools.survey_measure")
COMMAND = "python -m tools.survey_measure"
SAMPLE = REPO / "data" / "kampala_sample" / "train_tier_1"
GOALS = {"f1_difference": ("<=", 0.01), "duplicate_pairs": ("==", 0)}
PICTURE_SIDE = 1200


@dataclass(frozen=True)
class Tile:
    """One generated survey image: its name and pixel window in the scene."""

    name: str
    window: Window


def scene_paths(scene: str) -> tuple[Path, Path]:
    """``kam/94f080`` -> the sample's image and its OSM labels."""
    city, scene_id = scene.split("/")
    folder = SAMPLE / city
    return (
        folder / scene_id / f"{scene_id}.tif",
        folder / f"{scene_id}-labels" / f"{scene_id}.geojson",
    )


def tile_offsets(size: int, grid: int, overlap: float) -> tuple[list[int], int]:
    """Starts of ``grid`` tiles along ``size`` pixels overlapping by ``overlap``, and their side.

    The side solves ``size = side * (1 + (grid - 1) * (1 - overlap))``, rounded up; the starts
    are spread evenly from 0 to ``size - side``, so the tiles cover the scene exactly.
    """
    side = min(size, math.ceil(size / (1 + (grid - 1) * (1 - overlap))))
    if grid == 1:
        return [0], side
    return [round(k * (size - side) / (grid - 1)) for k in range(grid)], side


def survey_tiles(width: int, height: int, grid: int, overlap: float) -> list[Tile]:
    """The ``grid`` x ``grid`` windows of a ``width`` x ``height`` scene, row by row."""
    cols, tile_w = tile_offsets(width, grid, overlap)
    rows, tile_h = tile_offsets(height, grid, overlap)
    return [
        Tile(f"tile_r{r}_c{c}", Window(col, row, tile_w, tile_h))
        for r, row in enumerate(rows)
        for c, col in enumerate(cols)
    ]


def cut_survey(scene: Path, folder: Path, grid: int, overlap: float) -> list[Tile]:
    """Write the scene's tiles as GeoTIFFs in ``folder``, each with its own transform."""
    folder.mkdir(parents=True, exist_ok=True)
    with rasterio.open(scene) as src:
        tiles = survey_tiles(src.width, src.height, grid, overlap)
        profile = {k: v for k, v in src.profile.items() if k not in ("blockxsize", "blockysize")}
        for tile in tiles:
            profile |= {
                "width": int(tile.window.width),
                "height": int(tile.window.height),
                "transform": src.window_transform(tile.window),
                "tiled": False,
            }
            with rasterio.open(folder / f"{tile.name}.tif", "w", **profile) as dst:
                dst.write(src.read(window=tile.window))
    return tiles


def run_timed(*args: str, log_path: Path) -> tuple[float, float]:
    """``python -m benchmark.cli ARGS`` in a child: (wall seconds, its user + sys CPU seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(log_path, "w") as sink:
        cmd = [sys.executable, "-m", "benchmark.cli", *args]
        subprocess.run(cmd, check=True, cwd=REPO, stdout=sink, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def duplicate_pairs_of(geoms: list[shapely.Geometry]) -> list[tuple[int, int, float]]:
    """Pairs ``(i, j, IoU)``, i < j, of one layer's buildings the merge calls one building.

    What the merge promises never to leave: two copies of one building, by its own rule
    (:func:`~benchmark.footprints.merge.duplicate_pairs`).
    """
    if len(geoms) < 2:
        return []
    i, j, iou = duplicate_pairs(np.asarray(geoms, dtype=object))
    return [(int(a), int(b), float(v)) for a, b, v in zip(i, j, iou, strict=True)]


def score_layers(
    merged: list[shapely.Geometry], whole: list[shapely.Geometry], truth: list[shapely.Geometry]
) -> dict:
    """Both layers' per-building scores against ``truth`` (eval's rule), and how they differ."""
    scores = {}
    for name, layer in (("merged", merged), ("whole", whole)):
        counts = count_buildings(layer, truth)
        scores |= {
            f"{name}_{k}": round(getattr(counts, k), 4) for k in ("precision", "recall", "f1")
        }
        scores[f"{name}_buildings"] = len(layer)
    scores["f1_difference"] = round(abs(scores["merged_f1"] - scores["whole_f1"]), 4)
    scores["merged_matching_whole"] = count_buildings(merged, whole).tp
    scores["duplicate_pairs"] = len(duplicate_pairs_of(merged))
    return scores


def inner_edges(
    boxes: dict[str, shapely.Geometry], scene_box: shapely.Geometry, tolerance: float
) -> dict[str, shapely.Geometry]:
    """Per tile, the edges it shares with the survey's inside (the scene's own edge left out).

    A building at the scene's edge is cut in the whole scene's layer too: not the merge's to mend.
    """
    outside = scene_box.boundary.buffer(tolerance)
    return {name: box.boundary.difference(outside) for name, box in boxes.items()}


def still_cut(
    geoms: list[shapely.Geometry],
    images: list[str],
    edges: dict[str, shapely.Geometry],
    tolerance: float,
) -> int:
    """Merged buildings within ``tolerance`` of their tile's inner edges: pieces left as pieces.

    Joined pieces (``image`` ``a+b``) are not counted; a piece here is one that no neighbour
    held whole, as when a building is wider than the tiles' overlap.
    """
    return sum(
        1
        for geom, image in zip(geoms, images, strict=True)
        if image in edges and geom.distance(edges[image]) <= tolerance
    )


def read_layer(gpkg: Path) -> tuple[list[shapely.Geometry], list[str]]:
    """A GeoPackage's polygons, and its ``image`` column (empty names without one)."""
    frame = pyogrio.read_dataframe(gpkg)
    images = list(frame["image"]) if "image" in frame else [""] * len(frame)
    return list(frame.geometry), images


def scene_truth(scene: Path, labels: Path) -> list[shapely.Geometry]:
    """The scene's OSM buildings clipped to it (pieces >= the footprints' minimum area)."""
    with rasterio.open(scene) as src:
        geoms, _ = read_building_labels(str(labels))
        return truth_in_raster(LabelRasterizer(geoms, src.crs).geoms, src, DEFAULT_MIN_AREA)


def scene_area_km2(scene: Path) -> float:
    """The scene's area from its bounds (a projected CRS in metres, as the sample's)."""
    with rasterio.open(scene) as src:
        left, bottom, right, top = src.bounds
    return (right - left) * (top - bottom) / 1e6


def goals_met(results: dict) -> dict[str, bool]:
    """Each goal of :data:`GOALS`, met or not."""
    check = {"<=": lambda a, b: a <= b, "==": lambda a, b: a == b}
    return {key: bool(check[op](results[key], goal)) for key, (op, goal) in GOALS.items()}


def draw(
    scene: Path, tiles: list[Tile], merged: Path, truth: list, results: dict, png: Path
) -> None:
    """The scene, its tiles' outlines, merged buildings filled by source image, OSM outlined."""
    geoms, images = read_layer(merged)
    with rasterio.open(scene) as src:
        scale = min(1.0, PICTURE_SIDE / max(src.width, src.height))
        shape = (round(src.height * scale), round(src.width * scale))
        rgb = src.read([1, 2, 3], out_shape=(3, *shape), resampling=Resampling.average)
        transform = src.transform * Affine.scale(src.width / shape[1], src.height / shape[0])
        tile_boxes = [shapely.box(*src.window_bounds(t.window)) for t in tiles]
    fig = Figure(figsize=(10, 10 * shape[0] / shape[1] + 0.9))
    ax = fig.subplots()
    ax.imshow(rgb.transpose(1, 2, 0), interpolation="nearest")
    names = sorted(set(images))
    cmap = colormaps["tab20"]
    to_pixels = ~transform
    patches, colors = [], []
    for geom, image in zip(geoms, images, strict=True):
        for part in getattr(geom, "geoms", [geom]):
            cols, rows = to_pixels * np.asarray(part.exterior.coords).T
            patches.append(PolygonPatch(np.column_stack([cols - 0.5, rows - 0.5])))
            colors.append("white" if "+" in image else cmap(names.index(image) % 20))
    ax.add_collection(PatchCollection(patches, facecolors=colors, edgecolors="black", alpha=0.6))
    draw_outlines(ax, tile_boxes, transform, color=(1.0, 1.0, 0.0))
    draw_outlines(ax, truth, transform, color=FN_COLOR)
    ax.set_axis_off()
    ax.set_title(
        f"{results['scene']}: {len(tiles)} tiles, {results['overlap']:.0%} overlap: merged F1 "
        f"{results['merged_f1']:.2f} vs whole scene {results['whole_f1']:.2f}, "
        f"{results['duplicate_pairs']} duplicate pair(s)",
        fontsize=10,
    )
    handles = [
        Line2D([], [], color="yellow", label="tile outline"),
        Line2D([], [], color="grey", linewidth=6, label="merged building (colour: its tile)"),
        Line2D([], [], color=FN_COLOR, label=f"OpenStreetMap building ({len(truth)})"),
    ]
    ax.legend(handles=handles, loc="lower right", framealpha=0.85, fontsize=8)
    with atomic_output(str(png)) as path:
        fig.savefig(path, format="png", dpi=100, bbox_inches="tight")


MD_COLUMNS = (
    ("date", "date"), ("scene", "scene"), ("tiles", "tiles"), ("overlap", "overlap"),
    ("whole P/R/F1", "whole"), ("merged P/R/F1", "merged"), ("F1 diff", "f1_difference"),
    ("duplicate pairs", "duplicate_pairs"), ("buildings before merge", "buildings_before_merge"),
    ("after", "merged_buildings"), ("still cut", "cut_after_merge"), ("km²", "area_km2"),
    ("km²/CPU-h", "km2_per_cpu_hour"),
    ("machine", "machine"),
)  # fmt: skip


def markdown_row(results: dict) -> str:
    """``results.md``: the header and one row."""

    def cell(key: str) -> str:
        if key in ("whole", "merged"):
            return "/".join(f"{results[f'{key}_{k}']:.3f}" for k in ("precision", "recall", "f1"))
        value = results[key]
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    header = "| " + " | ".join(title for title, _ in MD_COLUMNS) + " |"
    rule = "|" + "---|" * len(MD_COLUMNS)
    row = "| " + " | ".join(cell(key) for _, key in MD_COLUMNS) + " |"
    return "\n".join([header, rule, row]) + "\n"


def count_before_merge(folder: Path) -> int:
    """Buildings of every image's GeoPackage in a footprints output folder."""
    return sum(
        pyogrio.read_info(path)["features"] for path in sorted(folder.glob(f"*{BUILDINGS_SUFFIX}"))
    )


def measure(args: argparse.Namespace) -> dict:
    """Cut, outline, merge, score; the results (see the module docstring)."""
    out = Path(args.out)
    scene, labels = scene_paths(args.scene)
    tiles = cut_survey(scene, out / "tiles", args.grid, args.overlap)
    log.info("Cut %s into %d tiles in %s", scene.name, len(tiles), out / "tiles")
    (out / "logs").mkdir(parents=True, exist_ok=True)
    timings = {}
    for step, cmd in (
        ("whole", ("footprints", args.bundle, str(scene), str(out / "whole"), "--overwrite")),
        ("tiles", ("footprints", args.bundle, str(out / "tiles"), str(out / "out"), "--overwrite")),
        ("merge", ("merge-footprints", str(out / "out"))),
    ):
        timings[step] = run_timed(*cmd, log_path=out / "logs" / f"{step}.log")
        log.info("%s: %.1f s wall, %.1f s CPU", step, *timings[step])
    merged_gpkg = Path(MergeOutputs.of(str(out / "out")).gpkg)
    merged, merged_images = read_layer(merged_gpkg)
    whole, _ = read_layer(out / "whole" / f"{scene.stem}{BUILDINGS_SUFFIX}")
    truth = scene_truth(scene, labels)
    area = scene_area_km2(scene)
    survey_cpu = timings["tiles"][1] + timings["merge"][1]
    with rasterio.open(scene) as src:
        boxes = {t.name: shapely.box(*src.window_bounds(t.window)) for t in tiles}
        tolerance = EDGE_PIXELS * abs(src.transform.a)
        edges = inner_edges(boxes, shapely.box(*src.bounds), tolerance)
    results = {
        "command": COMMAND,
        "date": time.strftime("%Y-%m-%d"),
        "machine": describe_machine(),
        "bundle": os.path.relpath(args.bundle, REPO),
        "scene": args.scene,
        "tiles": len(tiles),
        "grid": args.grid,
        "overlap": args.overlap,
        "osm_buildings": len(truth),
        **score_layers(merged, whole, truth),
        "buildings_before_merge": count_before_merge(out / "out"),
        "cut_after_merge": still_cut(merged, merged_images, edges, tolerance),
        "area_km2": round(area, 5),
        "cpu_time": "children's user + sys (getrusage RUSAGE_CHILDREN), start-up included",
        **{f"{step}_wall_s": round(wall, 2) for step, (wall, _) in timings.items()},
        **{f"{step}_cpu_s": round(cpu, 2) for step, (_, cpu) in timings.items()},
        "km2_per_cpu_hour": round(area / (survey_cpu / 3600), 3),
        "whole_km2_per_cpu_hour": round(area / (timings["whole"][1] / 3600), 3),
    }
    results["goals_met"] = goals_met(results)
    draw(scene, tiles, merged_gpkg, truth, results, out / "survey.png")
    return results


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m tools.survey_measure [--bundle B] [--out DIR] [--grid N] ...``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bundle", default=str(DEMO_BUNDLE), help="model bundle (the demo's)")
    parser.add_argument("--out", default=str(REPO / "out" / "survey_measure"))
    parser.add_argument("--grid", type=int, default=4, help="tiles per side (default 4)")
    parser.add_argument(
        "--overlap", type=float, default=0.2, help="share of a tile its neighbour also covers"
    )
    parser.add_argument(
        "--scene", default="kam/94f080", choices=["kam/94f080", "kam/8a5983"], help="sample scene"
    )
    args = parser.parse_args(argv)
    if args.grid < 1 or not 0 <= args.overlap < 1:
        parser.error("--grid must be >= 1 and --overlap in [0, 1)")
    log_like_rastervision(also=("tools",))
    results = measure(args)
    out = Path(args.out)
    write_json(results, str(out / "results.json"))
    with atomic_output(str(out / "results.md")) as path:
        Path(path).write_text(markdown_row(results))
    log.info("Wrote %s: %s", out / "results.json", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
