"""``python -m tools.false_positive_measure``: whether a false-positive filter raises F1.

For each ``--bundle``: outlines the Kampala sample's training and validation scenes (the
footprints a user gets: :func:`~benchmark.footprints.run.footprints_for_images` at the bundle's
threshold), fits :mod:`tools.false_positive_filter`' classifier on the training scene's
buildings against its OpenStreetMap labels, and scores the validation scene's buildings with
eval's per-building rule (IoU >= 0.5, one to one) with and without the filter. The filter is
worth keeping in the bundle only if it raises F1 for every bundle (seed) measured.

Writes ``{out}/results.json``, ``results.md`` and, per bundle, ``{name}.png``: the validation
scene's buildings kept (blue) and dropped (orange) over the OSM outlines (black).
"""

import argparse
import time
from pathlib import Path

import numpy as np
import pyogrio
from matplotlib.figure import Figure

from benchmark.console import log_like_rastervision
from benchmark.data.uris import atomic_output, write_json
from benchmark.evaluation.buildings import count_buildings
from benchmark.footprints.inputs import ImageRef
from benchmark.footprints.run import FootprintOutputs, footprints_for_images
from benchmark.inference.execution import InferenceOptions, prepare_model
from benchmark.pipeline.bundle import load_bundle
from benchmark.pipeline.footprints import footprint_settings
from tools.false_positive_filter import features, fit_filter, true_positive_labels
from tools.measure import REPO, describe_machine
from tools.survey_measure import scene_paths, scene_truth

COMMAND = "python -m tools.false_positive_measure"


def outline(bundle_uri: str, scenes: list[str], out: Path) -> dict[str, Path]:
    """Each scene's footprints GeoPackage, outlined with the bundle."""
    bundle = load_bundle(bundle_uri)
    settings = footprint_settings(bundle, InferenceOptions(), overwrite=True)
    model = prepare_model(bundle.model, settings.prediction.options)
    images = [ImageRef(s.replace("/", "_"), str(scene_paths(s)[0])) for s in scenes]
    footprints_for_images(model, images, str(out), settings)
    return {
        s: Path(FootprintOutputs.of(str(out), i.name).gpkg)
        for s, i in zip(scenes, images, strict=True)
    }


def scene_rows(gpkg: Path, scene: str) -> tuple[list, np.ndarray, np.ndarray, int]:
    """A scene's buildings, their feature rows, whether each is a true positive, the missed."""
    frame = pyogrio.read_dataframe(gpkg)
    geoms = list(frame.geometry)
    rows = np.array(
        [
            features(g, a, c)
            for g, a, c in zip(geoms, frame["area_m2"], frame["confidence"], strict=True)
        ]
    ).reshape(len(geoms), -1)
    truth = scene_truth(*scene_paths(scene))
    labels = true_positive_labels(geoms, truth)
    return geoms, rows, labels, len(truth) - int(labels.sum())


def measure_bundle(bundle: str, train: str, valid: str, out: Path) -> dict:
    """Fit on ``train``'s buildings, score ``valid``'s with and without the filter."""
    gpkgs = outline(bundle, [train, valid], out)
    _, train_rows, train_labels, missed = scene_rows(gpkgs[train], train)
    geoms, rows, _, _ = scene_rows(gpkgs[valid], valid)
    truth = scene_truth(*scene_paths(valid))
    fitted = fit_filter(train_rows, train_labels, missed)
    keep = fitted.keep(rows)
    before = count_buildings(geoms, truth)
    after = count_buildings([g for g, k in zip(geoms, keep, strict=True) if k], truth)
    draw(geoms, keep, truth, out.with_suffix(".png"))
    return {
        "bundle": bundle,
        "train_buildings": len(train_labels),
        "train_true": int(train_labels.sum()),
        "valid_buildings": len(geoms),
        "min_probability": round(fitted.min_probability, 4),
        "kept": int(keep.sum()),
        **{f"{k}_without": round(getattr(before, k), 4) for k in ("precision", "recall", "f1")},
        **{f"{k}_with": round(getattr(after, k), 4) for k in ("precision", "recall", "f1")},
        "f1_gain": round(after.f1 - before.f1, 4),
    }


def draw(geoms: list, keep: np.ndarray, truth: list, path: Path) -> None:
    """Kept (blue) and dropped (orange) buildings over the OSM outlines (black)."""
    fig = Figure(figsize=(6, 6))
    ax = fig.subplots()
    for geom in truth:
        for part in getattr(geom, "geoms", [geom]):
            ax.plot(*part.exterior.xy, color="black", lw=0.8)
    for geom, kept in zip(geoms, keep, strict=True):
        for part in getattr(geom, "geoms", [geom]):
            ax.fill(*part.exterior.xy, color="tab:blue" if kept else "tab:orange", alpha=0.6)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title("false-positive filter: kept (blue), dropped (orange), OSM (black)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def markdown(results: dict) -> str:
    """One row per bundle."""
    lines = [
        f"{results['machine']}, {results['date']}; fit on {results['train']}, scored on "
        f"{results['valid']}.",
        "",
        "| Bundle | train buildings (true) | valid buildings, kept | P / R / F1 without | "
        "P / R / F1 with | F1 gain |",
        "|---|---|---|---|---|---|",
    ]
    for r in results["bundles"]:
        lines.append(
            f"| {r['bundle']} | {r['train_buildings']} ({r['train_true']}) | "
            f"{r['valid_buildings']}, {r['kept']} | {r['precision_without']:.3f} / "
            f"{r['recall_without']:.3f} / {r['f1_without']:.3f} | {r['precision_with']:.3f} / "
            f"{r['recall_with']:.3f} / {r['f1_with']:.3f} | {r['f1_gain']:+.3f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m tools.false_positive_measure --bundle B [--bundle B2 ...]``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bundle", action="append", required=True, help="model bundle(s)")
    parser.add_argument("--train", default="kam/94f080", help="scene the filter is fit on")
    parser.add_argument("--valid", default="kam/8a5983", help="scene it is scored on")
    parser.add_argument("--out", type=Path, default=REPO / "out" / "false_positive_measure")
    args = parser.parse_args(argv)
    log_like_rastervision(False)
    args.out.mkdir(parents=True, exist_ok=True)
    results = {
        "command": COMMAND,
        "date": time.strftime("%Y-%m-%d"),
        "machine": describe_machine(),
        "train": args.train,
        "valid": args.valid,
        "bundles": [
            measure_bundle(b, args.train, args.valid, args.out / f"bundle{i}")
            for i, b in enumerate(args.bundle)
        ],
    }
    results["helps_every_bundle"] = all(r["f1_gain"] > 0 for r in results["bundles"])
    write_json(results, str(args.out / "results.json"))
    with atomic_output(str(args.out / "results.md")) as path:
        Path(path).write_text(markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
