"""The decision threshold chosen on the training chips: calibrated without validation labels.

A model trained for a few hundred steps under-predicts buildings, and a Lovasz-hinge model puts
background near sigmoid(-1) = 0.27 (the hinge's margin) rather than near 0: on the demo's recipe the
validation Jaccard was 0.05-0.08 higher at 0.3 than at 0.5 for every seed, with precision 0.88 and
recall 0.53 at 0.5. Picking the threshold on the validation scene (``threshold: tune``) scores it on
the labels it was chosen with. Here it is chosen on the chips the model was trained on, which the
run has labels for anyway: the trained model (or ensemble) predicts them as ``predict`` did (the
plan it recorded, or the nearest this machine runs: eval runs on a CPU, predict on a GPU;
:mod:`benchmark.inference.recorded_plan`), and the threshold with the best micro Jaccard over their
pixels is the decision threshold. Measured on the demo's recipe (docs/results.md), it kept 0.5 for
every seed: a model fits the scene it trained on, and is unsure only on another one. It can matter
where training and validation scenes look alike, or for an ensemble, whose averaged probabilities
are less sure than its members'.
"""

import logging
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from torch import nn
from tqdm import tqdm

from benchmark.data.constants import BUILDING, DEFAULT_THRESHOLD, NO_BUILDING
from benchmark.errors import InputError
from benchmark.evaluation.metrics import counts_from_histograms
from benchmark.evaluation.training_chips import training_chips
from benchmark.inference.execution import InferenceOptions, execution_plan
from benchmark.inference.forward import predict_probabilities, quantize

log = logging.getLogger(__name__)

_BATCH = 32  # chips read per forward call (predict_probabilities splits it by the batch size)


@dataclass(frozen=True)
class TrainingThreshold:
    """The threshold chosen, its Jaccard on the training chips, and what it was chosen from."""

    threshold: float
    jaccard: float
    chips: int
    sweep: list[dict[str, float]]
    execution: str  # the plan the training chips were predicted with

    def to_json(self) -> dict:
        """As ``eval.json`` keeps it."""
        return asdict(self)


def _batches(
    chips: Iterator[tuple[np.ndarray, np.ndarray]], size: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Stacks of up to ``size`` chips of one shape, with a progress bar."""
    images: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for image, label in tqdm(chips, desc="Training chips", unit="chip"):
        if images and (len(images) == size or image.shape != images[0].shape):
            yield np.stack(images), np.stack(labels)
            images, labels = [], []
        images.append(image)
        labels.append(label)
    if images:
        yield np.stack(images), np.stack(labels)


def choose_training_threshold(
    model: nn.Module,
    chip_zip_uris: Sequence[str],
    options: InferenceOptions,
    thresholds: Sequence[float],
    tmp_dir: str,
) -> TrainingThreshold:
    """The threshold in ``thresholds`` with the best micro Jaccard on the training chips.

    Args:
        model: the trained model (or ensemble), prepared for ``options``.
        chip_zip_uris: Raster Vision's chip zips (local or s3://); their ``train`` chips count.
        options: how ``predict`` ran the model (its execution plan, batch size, TTA; see
            :func:`~benchmark.inference.recorded_plan.replay_options`).
        thresholds: the candidates (eval's sweep).
        tmp_dir: where zips on S3 are downloaded.
    """
    pos = np.zeros(256, dtype=np.int64)
    neg = np.zeros(256, dtype=np.int64)
    chips = 0
    for images, labels in _batches(training_chips(chip_zip_uris, tmp_dir), _BATCH):
        probs = quantize(predict_probabilities(model, images, options))
        pos += np.bincount(probs[labels == BUILDING], minlength=256)  # IGNORE_LABEL: neither
        neg += np.bincount(probs[labels == NO_BUILDING], minlength=256)
        chips += len(images)
    if chips == 0:
        where = ", ".join(chip_zip_uris) or "no chip zip"
        raise InputError(f"threshold train: no training chips ({where}); run chip first")
    counts = counts_from_histograms(pos, neg, thresholds)
    best = max(thresholds, key=lambda t: counts[t].jaccard)
    log.info(
        "Threshold %.2f chosen on %d training chips (their Jaccard %.4f; at %.2f: %.4f)",
        best, chips, counts[best].jaccard, DEFAULT_THRESHOLD,
        counts_from_histograms(pos, neg, [DEFAULT_THRESHOLD])[DEFAULT_THRESHOLD].jaccard,
    )  # fmt: skip
    sweep = [{"threshold": t, "jaccard": counts[t].jaccard} for t in thresholds]
    plan = execution_plan(options).name
    return TrainingThreshold(best, counts[best].jaccard, chips, sweep, plan)
