"""The ``eval`` command: the competition's micro Jaccard on the validation scenes.

RV's evaluator reports per-class precision/recall/F1 but no IoU, and holds whole scenes in
memory. We stream each validation window's probability raster against its rasterized labels,
counting pixel outcomes at a sweep of thresholds in one pass, sum the counts per scene, per city
and overall (micro averaging, as the competition scores the test set), and draw overlays. At the
chosen threshold each window's probabilities are also traced into building footprints, written
beside the report and scored per building (:mod:`benchmark.evaluation.buildings`).
"""

import logging
from functools import lru_cache

import numpy as np
import rasterio
from rasterio.windows import Window
from rastervision.core.data import SceneConfig

from benchmark.data import layout
from benchmark.data.constants import DEFAULT_THRESHOLD
from benchmark.data.labels import LabelRasterizer, read_building_labels
from benchmark.data.uris import read_json, uri_exists, write_json
from benchmark.evaluation.buildings import (
    BuildingCounts,
    build_building_report,
    score_scene_buildings,
)
from benchmark.evaluation.metrics import (
    ConfusionCounts,
    build_eval_report,
    counts_from_histograms,
    scene_histograms,
)
from benchmark.evaluation.plots import (
    plot_scene_overlay,
    plot_threshold_choice,
    plot_training_curves,
)
from benchmark.evaluation.share_threshold import (
    ShareThreshold,
    TrainingShare,
    choose_share_threshold,
)
from benchmark.evaluation.training_threshold import TrainingThreshold
from benchmark.pipeline.benchmark_config import BenchmarkConfig

log = logging.getLogger(__name__)

# 0.05 .. 0.95; includes the default 0.5 exactly.
THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 20))


def read_decision_threshold(cfg: BenchmarkConfig) -> float:
    """The threshold ``eval`` chose, or 0.5 when eval has not run (with a warning)."""
    uri = layout.eval_report_uri(cfg.eval_uri)
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


def _decision_threshold(
    cfg: BenchmarkConfig,
    best: float,
    training: TrainingThreshold | None,
    shared: ShareThreshold | None,
) -> float:
    """0.5, or the threshold the config asks for (``tune_threshold`` wins, then the others)."""
    if cfg.tune_threshold:
        return best
    if training is not None:
        return training.threshold
    if shared is not None:
        return shared.threshold
    return DEFAULT_THRESHOLD


def evaluate_validation(
    cfg: BenchmarkConfig,
    training: TrainingThreshold | None = None,
    training_share: TrainingShare | None = None,
) -> dict:
    """Evaluate every validation window; write ``eval.json`` and PNGs under ``cfg.eval_uri``.

    The decision threshold is 0.5, the best on the validation scenes (``tune_threshold``),
    ``training``'s, chosen on the training chips (``train_threshold``), or the one at which
    the validation scenes hold ``training_share``'s share of buildings (``share_threshold``).
    """
    histograms: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    rasterizers = {}
    for scene in cfg.dataset.validation_scenes:
        image_uri, window = _scored_grid(cfg, scene)
        label_uri = scene.label_source.raster_source.vector_source.uris[0]
        with rasterio.open(image_uri) as src:
            crs_wkt = src.crs.to_wkt()
        rasterizers[scene.id] = _label_rasterizer(label_uri, crs_wkt)
        histograms[scene.id] = scene_histograms(
            layout.window_probability_uri(cfg.predict_uri, scene.id),
            image_uri,
            rasterizers[scene.id].window,
            window=window,
        )
    on_buildings = sum((pos for pos, _ in histograms.values()), np.zeros(256, np.int64))
    elsewhere = sum((neg for _, neg in histograms.values()), np.zeros(256, np.int64))
    predicted = on_buildings + elsewhere  # how often each probability was predicted: no label
    shared = None if training_share is None else choose_share_threshold(predicted, training_share)
    thresholds = sorted({*THRESHOLDS, *([shared.threshold] if shared is not None else [])})
    window_counts = {
        scene_id: counts_from_histograms(pos, neg, thresholds)
        for scene_id, (pos, neg) in histograms.items()
    }
    sweeps: dict[str, dict[float, ConfusionCounts]] = {}
    for scene_id, counts in window_counts.items():
        total = sweeps.setdefault(cfg.scene_keys[scene_id], {})
        for t in thresholds:
            total[t] = total.get(t, ConfusionCounts()) + counts[t]

    overall = {t: sum((s[t] for s in sweeps.values()), ConfusionCounts()) for t in thresholds}
    best = max(THRESHOLDS, key=lambda t: overall[t].jaccard)
    threshold = _decision_threshold(cfg, best, training, shared)
    report = build_eval_report({key: sweep[threshold] for key, sweep in sweeps.items()})
    report["decision_threshold"] = threshold
    report["threshold_tuned"] = cfg.tune_threshold
    if training is not None:
        report["training_threshold"] = training.to_json()
    if shared is not None:
        report["share_threshold"] = shared.to_json()
    report["best_threshold"] = {"threshold": best, "jaccard": overall[best].jaccard}
    report["threshold_sweep"] = [
        {"threshold": t, "jaccard": overall[t].jaccard} for t in THRESHOLDS
    ]
    building_counts: dict[str, BuildingCounts] = {}
    footprints = {}
    for scene in cfg.dataset.validation_scenes:
        counts, footprints[scene.id] = score_scene_buildings(
            layout.window_probability_uri(cfg.predict_uri, scene.id),
            rasterizers[scene.id].geoms,
            threshold,
            cfg.gsd,
            layout.footprints_uri(cfg.eval_uri, scene.id, "geojson"),
            layout.footprints_uri(cfg.eval_uri, scene.id, "gpkg"),
        )
        key = cfg.scene_keys[scene.id]
        building_counts[key] = building_counts.get(key, BuildingCounts()) + counts
    report["buildings"] = build_building_report(building_counts)
    self_training = layout.self_training_record_uri(cfg.train_uri)
    if uri_exists(self_training):
        report["self_training"] = read_json(self_training, "self-training record")["rounds"]
    write_json(report, layout.eval_report_uri(cfg.eval_uri))
    log.info(
        "Validation micro Jaccard %.4f at threshold %.3f (best %.4f at %.2f)",
        overall[threshold].jaccard,
        threshold,
        overall[best].jaccard,
        best,
    )
    log.info("Validation per-building F1 %.4f", report["buildings"]["overall"]["f1"])

    for scene in cfg.dataset.validation_scenes:
        image_uri, window = _scored_grid(cfg, scene)
        plot_scene_overlay(
            image_uri,
            layout.window_probability_uri(cfg.predict_uri, scene.id),
            rasterizers[scene.id].window,
            layout.overlay_uri(cfg.eval_uri, scene.id),
            threshold=threshold,
            counts=window_counts[scene.id][threshold],
            window=window,
            buildings=footprints[scene.id],
        )
    plot_threshold_choice(
        on_buildings,
        elsewhere,
        {t: overall[t].jaccard for t in thresholds},
        threshold,
        layout.thresholds_picture_uri(cfg.eval_uri),
    )
    log_csv = layout.training_log_uri(cfg.train_uri)
    if uri_exists(log_csv):
        plot_training_curves(log_csv, layout.training_curves_uri(cfg.eval_uri))
    return report
