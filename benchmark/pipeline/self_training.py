"""Self-training: rounds of fine-tuning on the model's own confident labels of unlabeled imagery.

Round 0 is the run's training as it would be without self-training (same seed, same chips).
Round ``r`` (1 to ``rounds``) predicts the unlabeled imagery with round ``r - 1``'s model (test
chips at their GSD, georeferenced images warped to the run's), keeps the confident pixels as
chips (:mod:`benchmark.training.pseudo_labels`), and fine-tunes round ``r - 1``'s weights on
the labelled chips plus those for ``epochs`` epochs at ``lr_scale`` of the run's peak learning
rate, seeded with ``seed + r``. Earlier rounds write to ``train/{exp}/self-training/round-{r}``;
the last one writes train's own folder, so predict, bundle and eval take the last round's model
as they take any.

A pipeline stage, not a training one: it trains, predicts (:mod:`benchmark.inference`,
:mod:`benchmark.footprints.probabilities`) and loads bundles, in turn. It is given the few
values it needs (:class:`SelfTrainingRun`), not the pipeline's config.

Resumable at every step, like training itself: a round is done once its ``round.json`` is
written (last); a killed round's learner resumes from its ``train-state.pth``; probabilities
already written are not predicted again; chips are zipped atomically. Each round's score on the
validation chips (the learner's validation at its last epoch, at threshold 0.5) is kept and
gathered in ``self-training.json``, which eval copies into ``eval.json``. Validation and test
labels are never read: only the labelled training chips and the model's own predictions.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rastervision.pipeline.file_system import list_paths
from rastervision.pytorch_learner import LearnerConfig

from benchmark.data import layout
from benchmark.data.constants import BUILDING, CLASS_NAMES, DEFAULT_THRESHOLD
from benchmark.data.uris import atomic_geotiff, read_json, uri_exists, write_json
from benchmark.footprints.inputs import image_name
from benchmark.footprints.probabilities import ImageGrid, predict_on_image_grid
from benchmark.inference.chips import ChipLike, predict_chip_folder
from benchmark.inference.settings import PredictionSettings
from benchmark.pipeline.benchmark_config import SelfTrainingConfig
from benchmark.pipeline.bundle import load_learner_models
from benchmark.training.learner import ResumableLearner
from benchmark.training.pseudo_labels import UnlabeledImage, write_pseudo_chips
from benchmark.training.seeding import seed_random_generators

log = logging.getLogger(__name__)

# The threshold pseudo-labels are measured from: the learner's own (its validation argmax).
PSEUDO_LABEL_THRESHOLD = DEFAULT_THRESHOLD


@dataclass(frozen=True)
class SelfTrainingRun:
    """What self-training needs of its run, besides the learner's config.

    Attributes:
        settings: the rounds, their epochs and learning rate, the pseudo-labels' margin.
        prediction: how the unlabeled imagery is predicted (the run's predict settings).
        train_uri: train's folder: earlier rounds under it, the last round in it.
        chip_uri: the labelled chips (chip's zips), trained on in every round.
        seed: round ``r`` is seeded with ``seed + r``.
        test_chips: the test chips to pseudo-label (none unless ``settings.test_chips``).
        test_chip_size: their side in pixels.
        test_chip_gsd: their metres per pixel (None: predicted as they are).
    """

    settings: SelfTrainingConfig
    prediction: PredictionSettings
    train_uri: str
    chip_uri: str
    seed: int
    test_chips: Sequence[ChipLike] = ()
    test_chip_size: int = 0
    test_chip_gsd: float | None = None

    def round_dir(self, round_index: int) -> str:
        """Where round ``round_index`` trains: train's own folder for the last round."""
        if round_index == self.settings.rounds:
            return self.train_uri
        return layout.self_training_round_dir(self.train_uri, round_index)


def _predict_unlabeled(
    run: SelfTrainingRun, model_dir: str, round_dir: str, tmp_dir: str
) -> list[UnlabeledImage]:
    """Probabilities of every unlabeled image by the model in ``model_dir`` (done ones kept)."""
    prediction = run.prediction
    # Prepared for its plan on the first batch (measured there where "auto" asks).
    model = load_learner_models(
        [layout.model_bundle_uri(model_dir)], tmp_dir, prediction.options.device
    )
    out_dir = layout.pseudo_probability_dir(round_dir)
    images = []
    if run.test_chips:
        report = predict_chip_folder(
            model,
            run.test_chips,
            out_dir,
            prediction,
            threshold=None,
            expected_size=run.test_chip_size,
            chip_gsd=run.test_chip_gsd,
        )
        if report.bad:  # pseudo-labels do not need every chip
            log.warning("Self-training goes on without %s", report.not_predicted())
        scale = prediction.input_scale(run.test_chip_gsd)
        images += [
            UnlabeledImage(c.id, c.uri, layout.chip_file_uri(out_dir, c.id), scale)
            for c in run.test_chips
            if c.id not in report.bad
        ]
    for uri in run.settings.image_uris:
        name = image_name(uri)
        out_uri = layout.chip_file_uri(out_dir, name)
        grid = ImageGrid.of(uri)
        if not uri_exists(out_uri):
            with atomic_geotiff(out_uri) as path:
                predict_on_image_grid(model, uri, path, prediction, grid)
        scale = prediction.input_scale(grid.ground_res[0])
        images.append(UnlabeledImage(name, uri, out_uri, scale))
    return images


def _chip_scores(metrics: dict[str, Any]) -> dict[str, float]:
    """Building precision, recall, F1 and Jaccard (F1 / (2 - F1)) of the validation chips."""
    name = CLASS_NAMES[BUILDING]
    f1 = metrics[f"{name}_f1"]
    return {
        "precision": metrics[f"{name}_precision"],
        "recall": metrics[f"{name}_recall"],
        "f1": f1,
        "jaccard": f1 / (2 - f1),
    }


def _round_config(
    run: SelfTrainingRun, learner_cfg: LearnerConfig, round_index: int, chips_uri: str
) -> LearnerConfig:
    """Round ``round_index``'s learner: round ``r - 1``'s weights, labelled + pseudo chips."""
    round_cfg = learner_cfg.model_copy(deep=True)
    round_cfg.output_uri = run.round_dir(round_index)
    if round_index == 0:
        return round_cfg
    round_cfg.data.uri = [*list_paths(run.chip_uri, ext="zip"), chips_uri]
    previous = run.round_dir(round_index - 1)
    round_cfg.model.init_weights = layout.last_model_uri(previous)
    round_cfg.model.pretrained = False  # the previous round's weights replace ImageNet's
    round_cfg.solver.num_epochs = run.settings.epochs
    round_cfg.solver.lr = learner_cfg.solver.lr * run.settings.lr_scale
    return round_cfg


def _train_round(
    run: SelfTrainingRun, learner_cfg: LearnerConfig, round_index: int, tmp_dir: str
) -> dict[str, Any]:
    """Pseudo-label (after round 0) and train one round; its record."""
    settings = run.settings
    round_dir = run.round_dir(round_index)
    chips_uri = layout.pseudo_chips_uri(round_dir)
    pseudo = None
    if round_index > 0:
        log.info("Self-training round %d of %d: pseudo-labelling", round_index, settings.rounds)
        if uri_exists(chips_uri):
            log.info("%s exists: pseudo-labels kept", chips_uri)
        else:
            images = _predict_unlabeled(run, run.round_dir(round_index - 1), round_dir, tmp_dir)
            pseudo = write_pseudo_chips(
                images,
                chips_uri,
                learner_cfg.data.img_sz,
                PSEUDO_LABEL_THRESHOLD,
                settings.margin,
                settings.min_known,
                tmp_dir,
            ).to_json()
    seed = run.seed + round_index
    seed_random_generators(seed)
    round_cfg = _round_config(run, learner_cfg, round_index, chips_uri)
    learner = ResumableLearner(round_cfg, tmp_dir=tmp_dir, training=True, seed=seed)
    learner.main()
    return {
        "round": round_index,
        "seed": seed,
        "epochs": round_cfg.solver.num_epochs,
        "pseudo_labels": pseudo,
        "validation_chips": _chip_scores(learner.last_metrics),
    }


def run_self_training(run: SelfTrainingRun, learner_cfg: LearnerConfig, tmp_dir: str) -> None:
    """Train round 0, then each self-training round (see the module docstring)."""
    record_uri = layout.self_training_record_uri(run.train_uri)
    if uri_exists(record_uri):
        log.info("%s exists: self-training already complete", record_uri)
        return
    for uri in run.settings.image_uris:  # a bad image is refused before any training
        ImageGrid.of(uri)
    records = []
    for round_index in range(run.settings.rounds + 1):
        round_record = layout.round_record_uri(run.round_dir(round_index))
        last = round_index == run.settings.rounds
        if not last and uri_exists(round_record):
            records.append(read_json(round_record, "self-training round record"))
            continue
        record = _train_round(run, learner_cfg, round_index, tmp_dir)
        log.info(
            "Self-training round %d: validation chips Jaccard %.4f",
            round_index, record["validation_chips"]["jaccard"],
        )  # fmt: skip
        if not last:
            write_json(record, round_record)
        records.append(record)
    write_json({"rounds": records}, record_uri)
