"""``python -m tools.conflation_measure``: how much of what OSM lacks conflation calls new.

On the Kampala validation scene, whose labels are OpenStreetMap's buildings, a seeded half of
the buildings is removed from "OSM"; the scene's footprints (the demo's bundle, traced once
with ``tools.footprints_picture``) are conflated with the half that is left, and we count how
many removed buildings come out ``new`` (a ``new`` footprint matches them at IoU >= 0.5, the
per-building rule) against the model's per-building recall on the whole scene: a removed
building the model finds should be ``new``, so the two should agree, except where its footprint
also overlaps a building left in "OSM" (``changed``): ``found_removed_new_share`` is the share
of the removed buildings the model found that come out ``new``. By construction no
building left in "OSM" may be matched by a ``new`` footprint (checked: ``kept_found_new``).
Several seeds, as 37 buildings make one seed's half noisy.

Writes ``--json`` (default ``docs/conflation.json``) and a PNG beside it, every OSM output of
the first seed under ``--out``, and ``img/review.png``: the review page of the first seed in
headless Chromium (``tools.offline_browser``), a new building's popup open.
"""

import argparse
import io
import logging
import os
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import rasterio
from matplotlib.figure import Figure
from PIL import Image

from benchmark.console import log_like_rastervision
from benchmark.data.labels import LabelRasterizer, read_building_labels
from benchmark.data.uris import atomic_output, write_json
from benchmark.evaluation.buildings import count_buildings, match_buildings, truth_in_raster
from benchmark.footprints.conflation import NEW, conflate
from benchmark.footprints.osm_input import ExistingBuildings, read_osm_file
from benchmark.footprints.osm_outputs import (
    ExistingSource,
    MappingOutputs,
    MappingSettings,
    write_mapping_outputs,
)
from benchmark.footprints.outlines import DEFAULT_MIN_AREA
from tools.footprints_picture import DEMO_BUNDLE, LABELS, SCENE, outline_scene
from tools.measure import REPO, cpu_description
from tools.offline_browser import chromium_missing, offline_page

log = logging.getLogger("tools.conflation_measure")
COMMAND = "python -m tools.conflation_measure"


def scene_truth() -> gpd.GeoDataFrame:
    """The scene's OSM buildings clipped to it (those >= 4 m² inside), in its CRS, with ids."""
    with rasterio.open(SCENE) as src:
        geoms, _ = read_building_labels(str(LABELS))
        truth = truth_in_raster(LabelRasterizer(geoms, src.crs).geoms, src, DEFAULT_MIN_AREA)
        crs = src.crs
    return gpd.GeoDataFrame(
        {"osm_id": [f"way/{i}" for i in range(len(truth))], "building": "yes"},
        geometry=truth,
        crs=crs,
    )


def half_removed(truth: gpd.GeoDataFrame, seed: int) -> np.ndarray:
    """A seeded half of the rows: True where removed from "OSM"."""
    removed = np.zeros(len(truth), bool)
    removed[np.random.default_rng(seed).permutation(len(truth))[: len(truth) // 2]] = True
    return removed


def measure_seed(
    found: gpd.GeoDataFrame, truth: gpd.GeoDataFrame, removed: np.ndarray
) -> dict[str, int]:
    """Conflate ``found`` with the kept half; count what the removed and kept halves became."""
    lonlat = truth.to_crs(4326)
    kept = ExistingBuildings(
        tuple(lonlat.geometry[~removed]), tuple(lonlat.osm_id[~removed]), "the kept half"
    )
    status = conflate(list(found.to_crs(4326).geometry), kept).status
    new = [g for g, s in zip(found.geometry, status, strict=True) if s == NEW]
    return {
        "removed": int(removed.sum()),
        "removed_found": len(match_buildings(list(found.geometry), list(truth.geometry[removed]))),
        "removed_found_new": len(match_buildings(new, list(truth.geometry[removed]))),
        "kept": int((~removed).sum()),
        "kept_found_new": len(match_buildings(new, list(truth.geometry[~removed]))),
        "new": len(new),
        "found": len(found),
    }


def draw(results: dict, png: Path) -> None:
    """Share of removed buildings that came out new, per seed, against the recall."""
    seeds = results["seeds"]
    share = [s["removed_found_new"] / s["removed"] for s in seeds]
    fig = Figure(figsize=(7, 3.6))
    ax = fig.subplots()
    ax.bar(range(len(seeds)), share, color="#e020e0", label="removed buildings found new")
    ax.axhline(results["recall"], color="black", linestyle="--", label="per-building recall")
    ax.set_xticks(range(len(seeds)), [str(s["seed"]) for s in seeds])
    ax.set_xlabel("seed (which half of OSM's buildings is removed)")
    ax.set_ylim(0, 1)
    ax.set_title(
        f"Kampala {SCENE.stem}: {results['removed_found_new_share']:.2f} of removed buildings "
        f"come out new, recall {results['recall']:.2f}"
    )
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    with atomic_output(str(png)) as path:
        fig.savefig(path, format="png", dpi=100)


def screenshot(review_html: str, png: Path) -> None:
    """The review page, offline, with the first new building's popup open."""
    with offline_page(1100, 800) as offline:
        offline.page.goto(Path(review_html).resolve().as_uri())
        new = offline.page.locator("path.building-new")
        if new.count():
            new.first.click()
        shot = Image.open(io.BytesIO(offline.page.screenshot(animations="disabled")))
        with atomic_output(str(png)) as path:  # 256 colours: a third of the bytes, alike
            shot.convert("RGB").quantize(256).save(path, format="PNG", optimize=True)
        if offline.blocked or offline.errors:
            raise RuntimeError(f"review page: blocked {offline.blocked}, errors {offline.errors}")


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m tools.conflation_measure [--bundle B] [--seeds N] ...``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bundle", default=str(DEMO_BUNDLE), help="model bundle (the demo's)")
    parser.add_argument("--out", default=str(REPO / "out" / "conflation_measure"))
    parser.add_argument("--seeds", type=int, default=10, help="halves removed, one per seed")
    parser.add_argument("--json", default=str(REPO / "docs" / "conflation.json"))
    parser.add_argument("--screenshot", default=str(REPO / "img" / "review.png"))
    args = parser.parse_args(argv)
    log_like_rastervision(also=("tools",))
    out = Path(args.out)
    outputs = outline_scene(args.bundle, out, regularize=True)
    found = pyogrio.read_dataframe(outputs.gpkg)
    truth = scene_truth()
    whole = count_buildings(list(found.geometry), list(truth.geometry))
    seeds = [
        {"seed": seed, **measure_seed(found, truth, half_removed(truth, seed))}
        for seed in range(args.seeds)
    ]

    first = out / "osm_half_seed0.geojson"
    with atomic_output(str(first)) as path:
        truth[~half_removed(truth, 0)].to_crs(4326).to_file(path, driver="GeoJSON")
    read_osm_file.cache_clear()
    mapping = MappingSettings(ExistingSource(osm_file=str(first)))
    review = MappingOutputs.of(str(out), SCENE.stem)
    start = time.perf_counter()
    write_mapping_outputs(str(SCENE), SCENE.stem, outputs.gpkg, review, mapping)
    seconds = time.perf_counter() - start

    removed = sum(s["removed"] for s in seeds)
    results = {
        "command": COMMAND,
        "date": time.strftime("%Y-%m-%d"),
        "cpu": cpu_description(Path("/proc/cpuinfo").read_text()),
        "bundle": os.path.relpath(args.bundle, REPO),
        "scene": str(SCENE.relative_to(REPO)),
        "osm_buildings": len(truth),
        "found": len(found),
        "recall": whole.recall,
        "precision": whole.precision,
        "removed_found_new_share": sum(s["removed_found_new"] for s in seeds) / removed,
        "found_removed_new_share": sum(s["removed_found_new"] for s in seeds)
        / max(1, sum(s["removed_found"] for s in seeds)),
        "kept_found_new": sum(s["kept_found_new"] for s in seeds),
        "osm_outputs_seconds": round(seconds, 2),
        "seeds": seeds,
    }
    write_json(results, args.json)
    draw(results, Path(args.json).with_suffix(".png"))
    missing = chromium_missing()
    if missing:
        log.warning("No screenshot: %s", missing)
    else:
        screenshot(review.review, Path(args.screenshot))
    log.info("Wrote %s: %s", args.json, {k: v for k, v in results.items() if k != "seeds"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
