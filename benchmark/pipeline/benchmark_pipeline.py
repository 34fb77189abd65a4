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
from benchmark.data.gsd import gsd_scale
from benchmark.errors import InputError
from benchmark.evaluation.evaluate import (
    THRESHOLDS,
    evaluate_validation,
    read_decision_threshold,
)
from benchmark.evaluation.share_threshold import training_building_share
from benchmark.evaluation.training_threshold import TrainingThreshold, choose_training_threshold
from benchmark.inference.chips import predict_chip_folder
from benchmark.inference.execution import InferenceOptions, execution_plan, prepare_model
from benchmark.inference.plan_choice import prepare_measured
from benchmark.inference.recorded_plan import record_plan, replay_options
from benchmark.inference.scenes import predict_resampled_window, predict_scene
from benchmark.pipeline.benchmark_config import BenchmarkConfig
from benchmark.pipeline.bundle import add_bundle_info, load_learner_models
from benchmark.pipeline.postprocess import write_submission
from benchmark.pipeline.work_split import share_of_work
from benchmark.training.learner import ResumableLearner
from benchmark.training.seeding import seed_random_generators
from benchmark.training.self_training import run_self_training

log = logging.getLogger(__name__)


def bundle_info(cfg: BenchmarkConfig) -> dict:
    """``benchmark.json``: the threshold eval chose, the model, its GSD and prediction windows.

    The folder predict reads the threshold, the GSD (``--chip-gsd``) and the windows from it,
    so a bundle alone predicts as the pipeline did.
    """
    model = cfg.backend.model
    return {
        "experiment_id": cfg.experiment_id,
        "threshold": read_decision_threshold(cfg),
        "model": {"arch": model.arch, "encoder": model.encoder},
        "class_names": list(cfg.dataset.class_config.names),
        "gsd": cfg.gsd,
        "predict_window": cfg.inference.window,
        "predict_overlap": cfg.inference.overlap,
    }


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
        (:mod:`benchmark.training.self_training`).
        """
        cfg = self.config
        seed_random_generators(cfg.seed)
        if cfg.source_bundle_uri is not None:
            if cfg.self_training is not None:
                raise InputError("self-training trains its own first model: drop source_bundle_uri")
            super().train()
            return
        learner_cfg = cfg.backend.get_learner_config(cfg)
        if cfg.self_training is not None:
            run_self_training(cfg, learner_cfg, self.tmp_dir)
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
        self, model: nn.Module, scene: SceneConfig, options: InferenceOptions
    ) -> None:
        """Probabilities of one validation window, on its grid in the scene (what eval scores).

        A window PREPROCESS resampled to the GSD is predicted at the GSD and brought back.
        """
        cfg = self.config
        image_uri = scene.raster_source.uris[0]
        out_uri = layout.window_probability_uri(cfg.predict_uri, scene.id)
        sizes = {"window": cfg.inference.window, "overlap": cfg.inference.overlap}
        native = cfg.native_windows.get(scene.id)
        if native is None:
            predict_scene(model, image_uri, out_uri, options, **sizes)
            return
        predict_resampled_window(
            model, image_uri, native.image_uri, native.window, out_uri, options,
            **sizes, tmp_dir=self.tmp_dir,
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
        options = cfg.inference.options()
        # prepared once, for the plan chosen on the first window or chip (plan_choice)
        model = self._load_model()
        for scene in scenes:
            self._predict_validation_window(model, scene, options)
        if chips:
            report = predict_chip_folder(
                model,
                chips,
                layout.test_probability_dir(cfg.predict_uri),
                options,
                threshold=None,
                expected_size=cfg.test_chip_size,
                input_scale=gsd_scale(cfg.test_chip_gsd, cfg.gsd),
                window=cfg.inference.window,
                overlap=cfg.inference.overlap,
            )
            log.info("Test chips: %s", report.summary())
            if report.bad:  # the submission needs every chip: stop here, saying which
                raise InputError(f"predict: test {report.not_predicted()}")
        self._record_plan(model, options)

    def eval(self) -> None:
        """Micro Jaccard (and precision/recall/F1) per scene, per city and overall."""
        cfg = self.config
        choose_on_training = cfg.train_threshold and not cfg.tune_threshold  # tune_ wins
        training = self._training_threshold() if choose_on_training else None
        share = None
        if cfg.share_threshold and not (cfg.tune_threshold or choose_on_training):
            share = training_building_share(list_paths(cfg.chip_uri, ext="zip"), self.tmp_dir)
        evaluate_validation(cfg, training, share)

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
