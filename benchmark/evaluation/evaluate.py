"""The ``eval`` command: the competition's micro Jaccard on the validation scenes.

RV's evaluator reports per-class precision/recall/F1 but no IoU, and holds whole scenes in
memory. We stream each validation window's probability raster against its rasterized labels,
counting pixel outcomes at a sweep of thresholds in one pass, sum the counts per scene, per city
and overall (micro averaging, as the competition scores the test set), and draw overlays.
"""

import logging
from functools import lru_cache

import rasterio
from rasterio.windows import Window
from rastervision.core.data import SceneConfig

from benchmark.data.labels import LabelRasterizer, read_building_labels
from benchmark.data.uris import read_json, uri_exists, write_json
from benchmark.evaluation.metrics import ConfusionCounts, build_eval_report, evaluate_scene
from benchmark.evaluation.plots import plot_scene_overlay, plot_training_curves
from benchmark.pipeline.benchmark_config import BenchmarkConfig
from benchmark.pipeline.bundle import DEFAULT_THRESHOLD

log = logging.getLogger(__name__)

# 0.05 .. 0.95; includes the default 0.5 exactly.
THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 20))


def eval_json_uri(cfg: BenchmarkConfig) -> str:
    """Where ``eval`` writes its report."""
    return f"{cfg.eval_uri}/eval.json"


def read_decision_threshold(cfg: BenchmarkConfig) -> float:
    """The threshold ``eval`` chose, or 0.5 when eval has not run (with a warning)."""
    uri = eval_json_uri(cfg)
    if not uri_exists(uri):
        log.warning("%s not found: using threshold %.2f", uri, DEFAULT_THRESHOLD)
        return DEFAULT_THRESHOLD
    return float(read_json(uri)["decision_threshold"])


@lru_cache(maxsize=8)
def _label_rasterizer(label_uri: str, crs_wkt: str) -> LabelRasterizer:
    """One rasterizer per scene: its windows share the label file and the CRS."""
    geoms, _ = read_building_labels(label_uri)
    return LabelRasterizer(geoms, crs_wkt)


def _scored_grid(cfg: BenchmarkConfig, scene: SceneConfig) -> tuple[str, Window | None]:
    """The image (and window of it) a validation window's prediction is on and scored against.

    The window file PREPROCESS wrote, or for one resampled to a GSD, its place in the scene:
    scores are always at the original resolution, comparable with and without ``-a gsd``.
    """
    native = cfg.native_windows.get(scene.id)
    if native is None:
        return scene.raster_source.uris[0], None
    return native.image_uri, native.window


def evaluate_validation(cfg: BenchmarkConfig) -> dict:
    """Evaluate every validation window; write ``eval.json`` and PNGs under ``cfg.eval_uri``."""
    sweeps: dict[str, dict[float, ConfusionCounts]] = {}
    window_counts: dict[str, dict[float, ConfusionCounts]] = {}
    rasterizers = {}
    for scene in cfg.dataset.validation_scenes:
        image_uri, window = _scored_grid(cfg, scene)
        label_uri = scene.label_source.raster_source.vector_source.uris[0]
        with rasterio.open(image_uri) as src:
            crs_wkt = src.crs.to_wkt()
        rasterizers[scene.id] = _label_rasterizer(label_uri, crs_wkt)
        counts = evaluate_scene(
            f"{cfg.predict_uri}/{scene.id}.tif",
            image_uri,
            rasterizers[scene.id].window,
            thresholds=THRESHOLDS,
            window=window,
        )
        window_counts[scene.id] = counts
        key = cfg.scene_keys[scene.id]
        total = sweeps.setdefault(key, {t: ConfusionCounts() for t in THRESHOLDS})
        for t in THRESHOLDS:
            total[t] = total[t] + counts[t]

    overall = {t: sum((s[t] for s in sweeps.values()), ConfusionCounts()) for t in THRESHOLDS}
    best = max(THRESHOLDS, key=lambda t: overall[t].jaccard)
    threshold = best if cfg.tune_threshold else DEFAULT_THRESHOLD
    report = build_eval_report({key: sweep[threshold] for key, sweep in sweeps.items()})
    report["decision_threshold"] = threshold
    report["threshold_tuned"] = cfg.tune_threshold
    report["best_threshold"] = {"threshold": best, "jaccard": overall[best].jaccard}
    report["threshold_sweep"] = [
        {"threshold": t, "jaccard": overall[t].jaccard} for t in THRESHOLDS
    ]
    write_json(report, eval_json_uri(cfg))
    log.info(
        "Validation micro Jaccard %.4f at threshold %.2f (best %.4f at %.2f)",
        overall[threshold].jaccard,
        threshold,
        overall[best].jaccard,
        best,
    )

    for scene in cfg.dataset.validation_scenes:
        image_uri, window = _scored_grid(cfg, scene)
        plot_scene_overlay(
            image_uri,
            f"{cfg.predict_uri}/{scene.id}.tif",
            rasterizers[scene.id].window,
            f"{cfg.eval_uri}/{scene.id}.png",
            threshold=threshold,
            counts=window_counts[scene.id][threshold],
            window=window,
        )
    log_csv = f"{cfg.train_uri}/log.csv"
    if uri_exists(log_csv):
        plot_training_curves(log_csv, f"{cfg.eval_uri}/training_curves.png")
    return report
