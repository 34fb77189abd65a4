"""The ``eval`` command: the competition's micro Jaccard on the validation scenes.

RV's evaluator reports per-class precision/recall/F1 but no IoU, and holds whole scenes in
memory. We stream each validation window's probability raster against its rasterized labels,
counting pixel outcomes at a sweep of thresholds in one pass, sum the counts per scene, per city
and overall (micro averaging, as the competition scores the test set), and draw overlays. At the
chosen threshold each window's probabilities are also traced into building footprints, written
beside the report and scored per building (:mod:`benchmark.evaluation.buildings`).

It takes the few values it needs (:class:`EvalInputs`), as Raster Vision's evaluators take an
``EvaluatorConfig``: the pipeline builds them from its config, which scoring never imports.
"""

import logging
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import rasterio
from rasterio.windows import Window

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
from benchmark.evaluation.share_threshold import TrainingShare, choose_share_threshold
from benchmark.evaluation.threshold_choice import ThresholdChoice, decide_threshold
from benchmark.evaluation.training_threshold import TrainingThreshold

log = logging.getLogger(__name__)

# 0.05 .. 0.95; includes the default 0.5 exactly.
THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 20))


@dataclass(frozen=True)
class ScoredWindow:
    """One validation window as eval scores it: its prediction against its scene's labels."""

    id: str  # the RV scene id: names its prediction, overlay and footprints
    key: str  # its catalog scene, area/id: scores are summed per scene and per city
    image_uri: str  # the image its prediction is on, and whose valid pixels are scored
    label_uri: str  # the scene's buildings (GeoJSON)
    window: Window | None = None  # its place in image_uri; None: the whole file


@dataclass(frozen=True)
class EvalInputs:
    """What ``eval`` reads, where it writes, and how it picks the decision threshold."""

    windows: tuple[ScoredWindow, ...]
    predict_uri: str  # predict's output: each window's probabilities
    eval_uri: str  # eval's output: eval.json, overlays, footprints
    train_uri: str  # train's output: its log and self-training record, drawn and reported
    gsd: float | None  # the model's metres per pixel: the outlines' tolerance (None: the raster's)
    threshold: ThresholdChoice = "fixed"
    threshold_value: float = DEFAULT_THRESHOLD  # the threshold of ``fixed``


def read_decision_threshold(eval_uri: str) -> float:
    """The threshold ``eval`` chose, or 0.5 when eval has not run (with a warning)."""
    uri = layout.eval_report_uri(eval_uri)
    if not uri_exists(uri):
        log.warning("%s not found: using threshold %.2f", uri, DEFAULT_THRESHOLD)
        return DEFAULT_THRESHOLD
    return float(read_json(uri)["decision_threshold"])


@lru_cache(maxsize=8)
def _label_rasterizer(label_uri: str, crs_wkt: str) -> LabelRasterizer:
    """One rasterizer per scene: its windows share the label file and the CRS."""
    geoms, _ = read_building_labels(label_uri)
    return LabelRasterizer(geoms, crs_wkt)


def evaluate_validation(
    inputs: EvalInputs,
    training: TrainingThreshold | None = None,
    training_share: TrainingShare | None = None,
) -> dict:
    """Evaluate every validation window; write ``eval.json`` and PNGs under ``inputs.eval_uri``.

    The decision threshold is the one ``inputs.threshold`` asks for (:func:`decide_threshold`):
    ``threshold_value``, the best on the validation scenes, ``training``'s (chosen on the
    training chips), or the one at which the validation scenes hold ``training_share``'s share
    of buildings. The last two cost work of their own, so the caller computes them only for
    their choice.
    """
    histograms: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    rasterizers = {}
    for scored in inputs.windows:
        with rasterio.open(scored.image_uri) as src:
            crs_wkt = src.crs.to_wkt()
        rasterizers[scored.id] = _label_rasterizer(scored.label_uri, crs_wkt)
        histograms[scored.id] = scene_histograms(
            layout.window_probability_uri(inputs.predict_uri, scored.id),
            scored.image_uri,
            rasterizers[scored.id].window,
            window=scored.window,
        )
    on_buildings = sum((pos for pos, _ in histograms.values()), np.zeros(256, np.int64))
    elsewhere = sum((neg for _, neg in histograms.values()), np.zeros(256, np.int64))
    predicted = on_buildings + elsewhere  # how often each probability was predicted: no label
    shared = None if training_share is None else choose_share_threshold(predicted, training_share)
    swept = counts_from_histograms(on_buildings, elsewhere, THRESHOLDS)
    best = max(THRESHOLDS, key=lambda t: swept[t].jaccard)
    threshold = decide_threshold(
        inputs.threshold,
        fixed=inputs.threshold_value,
        best=best,
        training=None if training is None else training.threshold,
        shared=None if shared is None else shared.threshold,
    )
    thresholds = sorted({*THRESHOLDS, threshold})
    window_counts = {
        scene_id: counts_from_histograms(pos, neg, thresholds)
        for scene_id, (pos, neg) in histograms.items()
    }
    sweeps: dict[str, dict[float, ConfusionCounts]] = {}
    for scored in inputs.windows:
        total = sweeps.setdefault(scored.key, {})
        for t in thresholds:
            total[t] = total.get(t, ConfusionCounts()) + window_counts[scored.id][t]

    overall = swept | counts_from_histograms(on_buildings, elsewhere, [threshold])
    report = build_eval_report({key: sweep[threshold] for key, sweep in sweeps.items()})
    report["decision_threshold"] = threshold
    report["threshold_choice"] = inputs.threshold
    report["threshold_tuned"] = inputs.threshold == "tune"  # eval.json's key before the choice
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
    for scored in inputs.windows:
        counts, footprints[scored.id] = score_scene_buildings(
            layout.window_probability_uri(inputs.predict_uri, scored.id),
            rasterizers[scored.id].geoms,
            threshold,
            inputs.gsd,
            layout.footprints_uri(inputs.eval_uri, scored.id, "geojson"),
            layout.footprints_uri(inputs.eval_uri, scored.id, "gpkg"),
        )
        building_counts[scored.key] = building_counts.get(scored.key, BuildingCounts()) + counts
    report["buildings"] = build_building_report(building_counts)
    self_training = layout.self_training_record_uri(inputs.train_uri)
    if uri_exists(self_training):
        report["self_training"] = read_json(self_training, "self-training record")["rounds"]
    write_json(report, layout.eval_report_uri(inputs.eval_uri))
    log.info(
        "Validation micro Jaccard %.4f at threshold %.3f (best %.4f at %.2f)",
        overall[threshold].jaccard,
        threshold,
        overall[best].jaccard,
        best,
    )
    log.info("Validation per-building F1 %.4f", report["buildings"]["overall"]["f1"])

    for scored in inputs.windows:
        plot_scene_overlay(
            scored.image_uri,
            layout.window_probability_uri(inputs.predict_uri, scored.id),
            rasterizers[scored.id].window,
            layout.overlay_uri(inputs.eval_uri, scored.id),
            threshold=threshold,
            counts=window_counts[scored.id][threshold],
            window=scored.window,
            buildings=footprints[scored.id],
        )
    plot_threshold_choice(
        on_buildings,
        elsewhere,
        {t: overall[t].jaccard for t in thresholds},
        threshold,
        layout.thresholds_picture_uri(inputs.eval_uri),
    )
    log_csv = layout.training_log_uri(inputs.train_uri)
    if uri_exists(log_csv):
        plot_training_curves(log_csv, layout.training_curves_uri(inputs.eval_uri))
    return report
