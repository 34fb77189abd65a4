"""The benchmark pipeline: RV's chip/train/bundle plus our predict, eval and POSTPROCESS.

RV 0.31's own ``predict`` holds whole scenes in memory and cannot write chips without
georeferencing, and its ``eval`` reports no Jaccard. Ours predict by windows (validation
scenes) and in batches (test chips), and evaluate with the competition's micro Jaccard.
With ``-a gsd`` the model works at that GSD throughout, while every output keeps its input's
own grid: validation predictions the scene's, test masks the chip's 1024 x 1024.
"""

import logging
import tempfile

import numpy as np
from rastervision.core.data import SceneConfig
from rastervision.core.rv_pipeline import SemanticSegmentation
from rastervision.pipeline.file_system import list_paths
from torch import nn

from benchmark.data import layout
from benchmark.errors import InputError
from benchmark.evaluation.evaluate import (
    THRESHOLDS,
    EvalInputs,
    ScoredWindow,
    evaluate_validation,
    read_decision_threshold,
)
from benchmark.evaluation.share_threshold import training_building_share
from benchmark.evaluation.training_threshold import TrainingThreshold, choose_training_threshold
from benchmark.inference.chips import predict_chip_folder
from benchmark.inference.execution import InferenceOptions, execution_plan, prepare_model
from benchmark.inference.gsd_round_trip import predict_resampled_window
from benchmark.inference.plan_choice import prepare_measured
from benchmark.inference.recorded_plan import record_plan, replay_options
from benchmark.inference.scenes import predict_scene
from benchmark.inference.settings import PredictionSettings
from benchmark.networks.targets import target_of
from benchmark.pipeline.benchmark_config import BenchmarkConfig
from benchmark.pipeline.bundle import add_bundle_info, load_learner_models
from benchmark.pipeline.postprocess import write_submission
from benchmark.pipeline.self_training import SelfTrainingRun, run_self_training
from benchmark.pipeline.work_split import share_of_work
from benchmark.training.learner import ResumableLearner
from benchmark.training.seeding import seed_random_generators

log = logging.getLogger(__name__)


def bundle_info(cfg: BenchmarkConfig) -> dict:
    """``benchmark.json``: the threshold eval chose, the model, its GSD and prediction windows.

    The folder predict reads the threshold, the GSD (``--chip-gsd``) and the windows from it,
    so a bundle alone predicts as the pipeline did.
    """
    model = cfg.backend.model
    return {
        "experiment_id": cfg.experiment_id,
        "threshold": read_decision_threshold(cfg.eval_uri),
        "model": {"arch": model.arch, "encoder": model.encoder},
        "class_names": list(cfg.dataset.class_config.names),
        "gsd": cfg.gsd,
        "predict_window": cfg.inference.window,
        "predict_overlap": cfg.inference.overlap,
    }


def _scored_window(cfg: BenchmarkConfig, scene: SceneConfig) -> ScoredWindow:
    """A validation window on the grid predict wrote its probabilities on, for eval.

    The window file PREPROCESS wrote, or for one resampled to a GSD, its place in the scene:
    scores are always at the original resolution, comparable with and without ``-a gsd``.
    """
    native = cfg.native_windows.get(scene.id)
    return ScoredWindow(
        id=scene.id,
        key=cfg.scene_keys[scene.id],
        image_uri=scene.raster_source.uris[0] if native is None else native.image_uri,
        label_uri=scene.label_source.raster_source.vector_source.uris[0],
        window=None if native is None else native.window,
    )


def eval_inputs(cfg: BenchmarkConfig) -> EvalInputs:
    """What eval needs of the pipeline config, and no more (see :class:`EvalInputs`)."""
    return EvalInputs(
        windows=tuple(_scored_window(cfg, scene) for scene in cfg.dataset.validation_scenes),
        predict_uri=cfg.predict_uri,
        eval_uri=cfg.eval_uri,
        train_uri=cfg.train_uri,
        gsd=cfg.gsd,
        threshold=cfg.threshold,
        threshold_value=cfg.threshold_value,
    )


def self_training_run(cfg: BenchmarkConfig) -> SelfTrainingRun:
    """What self-training needs of the pipeline config (see :class:`SelfTrainingRun`)."""
    settings = cfg.self_training
    return SelfTrainingRun(
        settings=settings,
        prediction=cfg.inference.prediction(cfg.gsd),
        train_uri=cfg.train_uri,
        chip_uri=cfg.chip_uri,
        seed=cfg.seed,
        test_chips=cfg.test_chips if settings.test_chips else (),
        test_chip_size=cfg.test_chip_size,
        test_chip_gsd=cfg.test_chip_gsd,
    )


class BenchmarkPipeline(SemanticSegmentation):
    """Semantic segmentation of buildings, ending in a competition submission."""

    commands = ["chip", "train", "predict", "eval", "bundle", "POSTPROCESS"]
    split_commands = ["chip", "predict"]
    gpu_commands = ["train", "predict"]
    config: BenchmarkConfig

    def chip(self, split_ind: int = 0, num_splits: int = 1) -> None:
        """RV's chip, seeded (each split its own seed, so splits draw different windows)."""
        seed_random_generators(self.config.seed + split_ind)
        super().chip(split_ind, num_splits)

    def train(self) -> None:
        """RV's train, seeded and resumable (:class:`ResumableLearner`).

        The same chips give the same model (up to thread scheduling), and a train killed
        part way (a reclaimed spot instance) and started again continues where it was. Fine-
        tuning from ``source_bundle_uri`` keeps RV's own learner, which resumes weights only.
        With ``self_training``, rounds of fine-tuning on pseudo-labels follow
        (:mod:`benchmark.pipeline.self_training`).
        """
        cfg = self.config
        seed_random_generators(cfg.seed)
        if cfg.source_bundle_uri is not None:
            if cfg.self_training is not None:
                raise InputError("self-training trains its own first model: drop source_bundle_uri")
            if target_of(cfg.backend.model) != "binary":
                raise InputError(
                    "fine-tuning from source_bundle_uri runs Raster Vision's learner, which "
                    "trains the binary target only: drop source_bundle_uri or -a target instance"
                )
            super().train()
            return
        learner_cfg = cfg.backend.get_learner_config(cfg)
        if cfg.self_training is not None:
            run_self_training(self_training_run(cfg), learner_cfg, self.tmp_dir)
            return
        learner = ResumableLearner(learner_cfg, tmp_dir=self.tmp_dir, training=True, seed=cfg.seed)
        learner.main()

    def _load_model(self) -> nn.Module:
        """The run's model, averaged with the ``-a ensemble`` ones if any, on its device."""
        own = layout.model_bundle_uri(self.config.train_uri)
        uris = [own, *self.config.inference.ensemble]
        return load_learner_models(uris, self.tmp_dir, self.config.inference.options().device)

    def _record_plan(self, model: nn.Module, options: InferenceOptions) -> None:
        """Record the plan predict ran (the one chosen for ``model``), for eval to run it too."""
        _, ran = prepare_measured(model, options, np.empty((0, 3, 0, 0), np.uint8), 0)
        record_plan(execution_plan(ran), layout.execution_record_uri(self.config.predict_uri))

    def _predict_validation_window(
        self, model: nn.Module, scene: SceneConfig, settings: PredictionSettings
    ) -> None:
        """Probabilities of one validation window, on its grid in the scene (what eval scores).

        A window PREPROCESS resampled to the GSD is predicted at the GSD and brought back.
        """
        cfg = self.config
        image_uri = scene.raster_source.uris[0]
        out_uri = layout.window_probability_uri(cfg.predict_uri, scene.id)
        native = cfg.native_windows.get(scene.id)
        if native is None:
            predict_scene(model, image_uri, out_uri, settings)
            return
        predict_resampled_window(
            model, image_uri, native.image_uri, native.window, out_uri, settings,
            tmp_dir=self.tmp_dir,
        )  # fmt: skip

    def predict(self, split_ind: int = 0, num_splits: int = 1) -> None:
        """Write building probabilities for this split's validation windows and test chips.

        A test chip that cannot be read (gone, truncated, wrong size) is an
        :class:`InputError` naming it, once every other chip is written: a re-run does only it.
        """
        cfg = self.config
        scenes = share_of_work(cfg.dataset.validation_scenes, split_ind, num_splits)
        chips = share_of_work(cfg.test_chips, split_ind, num_splits)
        if not scenes and not chips:
            return
        # validation windows get the model's probability bands (an instance model's three)
        settings = cfg.inference.prediction(cfg.gsd, target_of(cfg.backend.model))
        # prepared once, for the plan chosen on the first window or chip (plan_choice)
        model = self._load_model()
        for scene in scenes:
            self._predict_validation_window(model, scene, settings)
        if chips:
            report = predict_chip_folder(
                model,
                chips,
                layout.test_probability_dir(cfg.predict_uri),
                settings,
                threshold=None,
                expected_size=cfg.test_chip_size,
                chip_gsd=cfg.test_chip_gsd,
            )
            log.info("Test chips: %s", report.summary())
            if report.bad:  # the submission needs every chip: stop here, saying which
                raise InputError(f"predict: test {report.not_predicted()}")
        self._record_plan(model, settings.options)

    def eval(self) -> None:
        """Micro Jaccard (and precision/recall/F1) per scene, per city and overall.

        Of the thresholds read off the training chips, only the one ``threshold`` asks for is
        computed: predicting the chips (``train``) costs a pass of the model over them.
        """
        cfg = self.config
        training = self._training_threshold() if cfg.threshold == "train" else None
        share = None
        if cfg.threshold == "share":
            share = training_building_share(list_paths(cfg.chip_uri, ext="zip"), self.tmp_dir)
        evaluate_validation(eval_inputs(cfg), training, share)

    def _training_threshold(self) -> TrainingThreshold:
        """The threshold the run's model (or ensemble) scores best with on its training chips.

        The model runs as predict ran it (or the nearest plan this machine has:
        :mod:`benchmark.inference.recorded_plan`), so the threshold suits predict's outputs.
        """
        cfg = self.config
        options = replay_options(
            cfg.inference.options(), layout.execution_record_uri(cfg.predict_uri)
        )
        model = prepare_model(self._load_model(), options)
        zips = list_paths(cfg.chip_uri, ext="zip")
        return choose_training_threshold(model, zips, options, THRESHOLDS, self.tmp_dir)

    def bundle(self) -> None:
        """RV's bundle plus ``benchmark.json`` (see :func:`bundle_info`) and ensemble members."""
        super().bundle()
        cfg = self.config
        members = {
            layout.ensemble_member_name(index): uri
            for index, uri in enumerate(cfg.inference.ensemble, start=1)
        }
        info = bundle_info(cfg) | ({"ensemble": list(members)} if members else {})
        with tempfile.TemporaryDirectory(dir=self.tmp_dir) as tmp_dir:
            add_bundle_info(cfg.get_model_bundle_uri(), info, tmp_dir, members)

    def POSTPROCESS(self) -> None:
        """Threshold the test-chip probabilities into submission masks and pack them."""
        write_submission(self.config)

    # The original README spells the command in capitals; accept lower case as well.
    postprocess = POSTPROCESS
