"""Config of the benchmark pipeline: chip, train, predict, eval, bundle, POSTPROCESS."""

from rasterio.windows import Window
from rastervision.core.rv_pipeline import SemanticSegmentationConfig
from rastervision.pipeline.config import Config, Field, register_config
from rastervision.pipeline.pipeline import Pipeline

from benchmark import PLUGIN
from benchmark.data import layout
from benchmark.data.constants import CHIP_SIZE, DEFAULT_THRESHOLD
from benchmark.evaluation.threshold_choice import (
    THRESHOLD_FLAGS,
    THRESHOLD_HELP,
    ThresholdChoice,
    choice_from_flags,
)
from benchmark.inference.execution import ExecutionName, InferenceOptions
from benchmark.inference.settings import PredictionSettings
from benchmark.networks.targets import Target
from benchmark.pipeline import dry_run


@register_config("benchmark_test_chip", plugin=PLUGIN)
class TestChipConfig(Config):
    """One unlabeled, un-georeferenced test chip to predict for the submission."""

    id: str = Field(..., description="Chip id: the submission file is {id}.tif.")
    uri: str = Field(..., description="The chip's GeoTIFF (local or s3://).")


@register_config("benchmark_native_window", plugin=PLUGIN)
class NativeWindowConfig(Config):
    """Where a window PREPROCESS resampled to a GSD sits in its scene, at the scene's pixels.

    Predictions of the resampled window are brought back onto this grid, and ``eval`` scores
    them there (the scene's own valid pixels against the labels), at the original resolution.
    """

    image_uri: str = Field(..., description="The scene's GeoTIFF.")
    col_off: int = Field(..., ge=0, description="First column of the window in the scene.")
    row_off: int = Field(..., ge=0, description="First row of the window in the scene.")
    width: int = Field(..., gt=0, description="Window width in scene pixels.")
    height: int = Field(..., gt=0, description="Window height in scene pixels.")

    @property
    def window(self) -> Window:
        """The window, for rasterio reads of ``image_uri``."""
        return Window(self.col_off, self.row_off, self.width, self.height)


def upgrade_inference_config(cfg_dict: dict, version: int) -> dict:
    """An :class:`InferenceConfig` saved at plugin ``version``, as of ``version + 1``.

    Raster Vision calls this for every saved config older than the plugin (pipeline configs,
    model bundles), so what earlier versions wrote keeps loading. Version 1 renamed
    ``chip_sz`` to ``window``: training chips are ``-a chip_sz``, the prediction window is not.
    Version 2 replaced ``fast`` by ``plan``, the vocabulary of ``--plan``: ``fast: false`` is
    ``plan: fp32``, ``fast: true`` the machine's fastest, ``auto``.
    """
    if version == 0 and "chip_sz" in cfg_dict:
        cfg_dict = dict(cfg_dict)
        cfg_dict["window"] = cfg_dict.pop("chip_sz")
    if version == 1 and "fast" in cfg_dict:
        cfg_dict = dict(cfg_dict)
        cfg_dict["plan"] = "auto" if cfg_dict.pop("fast") else "fp32"
    return cfg_dict


@register_config("benchmark_inference", plugin=PLUGIN, upgrader=upgrade_inference_config)
class InferenceConfig(Config):
    """How ``predict`` runs the model on validation scenes and test chips."""

    window: int = Field(
        1024,
        gt=0,
        description="Side of the windows scenes and test chips are predicted in, in the "
        "model's pixels (the model is fully convolutional; -a predict_window).",
    )
    overlap: int = Field(
        0, ge=0, description="Pixels shared by neighbouring windows, blended smoothly."
    )
    batch_sz: int = Field(4, gt=0, description="Windows or chips per forward pass.")
    plan: ExecutionName = Field(
        "auto",
        description="How the model runs (-a plan, --plan): auto = the machine's fastest (CUDA: "
        "fp16; a CPU: each plan timed on the first batch, see "
        "benchmark.inference.plan_choice), or one forced: fp32 (plain PyTorch), "
        "fp32_channels_last, bf16, fp16, onnx, int8.",
    )
    tta: bool = Field(False, description="Average the 8 flips/rotations (8x the compute).")
    ensemble: list[str] = Field(
        [],
        description="Learner bundles of other trained models (train/{exp}/model-bundle.zip of "
        "other seeds or encoders): predict averages their probabilities with this run's "
        "model's, and bundle packs them with it.",
    )

    def options(self) -> InferenceOptions:
        """How the model runs: batch size, plan, TTA."""
        return InferenceOptions(batch_size=self.batch_sz, execution=self.plan, tta=self.tta)

    def prediction(self, gsd: float | None, target: Target = "binary") -> PredictionSettings:
        """What every prediction of a run takes: these settings, the model's ``gsd`` and target.

        ``target`` sets the bands of scene probability rasters (an instance model's three);
        chips are P(building) whatever it is.
        """
        return PredictionSettings(self.options(), self.window, self.overlap, gsd, target)


@register_config("benchmark_self_training", plugin=PLUGIN)
class SelfTrainingConfig(Config):
    """Self-training: fine-tune on the model's own confident labels of unlabeled imagery.

    See :mod:`benchmark.pipeline.self_training`. Validation and test labels are never used:
    the pseudo-labels come from the model's predictions of unlabeled images only.
    """

    rounds: int = Field(
        1,
        gt=0,
        description="Fine-tuning rounds after the first training, each on the "
        "pseudo-labels of the round before.",
    )
    epochs: int = Field(2, gt=0, description="Epochs of each fine-tuning round.")
    margin: float = Field(
        0.2,
        gt=0,
        lt=0.5,
        description="Pixels whose probability is within this of the threshold (0.5) are "
        "ignored by the loss; the rest are pseudo-labelled building or background. 0.2: "
        "beyond 0.3 and 0.7, the Lovasz hinge's margin (a logit difference of 1 is 0.73).",
    )
    lr_scale: float = Field(
        0.1,
        gt=0,
        description="Peak learning rate of the fine-tuning rounds, as a fraction of the run's "
        "(a fine-tuned model is near its optimum: the run's full rate throws it off).",
    )
    min_known: float = Field(
        0.5, ge=0, le=1, description="Least fraction of confident pixels a chip needs to be kept."
    )
    test_chips: bool = Field(True, description="Pseudo-label the test chips.")
    image_uris: list[str] = Field(
        [],
        description="More unlabeled georeferenced images (GeoTIFF/COG, local or s3://) to "
        "pseudo-label, at the run's GSD: e.g. the imagery of the city to map.",
    )


def upgrade_benchmark_config(cfg_dict: dict, version: int) -> dict:
    """A :class:`BenchmarkConfig` saved at plugin ``version``, as of ``version + 1``.

    Raster Vision calls this for every saved config older than the plugin (pipeline configs,
    model bundles), as it calls :func:`upgrade_inference_config`. Version 3 replaced the flags
    ``tune_threshold``, ``train_threshold`` and ``share_threshold`` by ``threshold``, the choice
    they made (:func:`~benchmark.evaluation.threshold_choice.choice_from_flags`).
    """
    if version == 2 and cfg_dict.keys() & THRESHOLD_FLAGS:
        cfg_dict = dict(cfg_dict)
        flags = {flag: cfg_dict.pop(flag) for flag in THRESHOLD_FLAGS if flag in cfg_dict}
        cfg_dict["threshold"] = choice_from_flags(**flags)
    return cfg_dict


@register_config("benchmark", plugin=PLUGIN, upgrader=upgrade_benchmark_config)
class BenchmarkConfig(SemanticSegmentationConfig):
    """Configure the benchmark pipeline (see ``benchmark.experiments.benchmark``).

    Train and validation scenes in ``dataset`` are the windows PREPROCESS wrote; test chips are
    kept out of ``dataset`` because RV's chip and eval cannot handle unlabeled,
    un-georeferenced images, and are predicted by our own ``predict``.
    """

    experiment_id: str = Field(..., description="Names this run's outputs under each command.")
    seed: int = Field(
        0,
        description="Seeds Python's, NumPy's and torch's random generators before chip (plus "
        "the split index) and train: RV's chip windows, initial weights and batch order.",
    )
    scene_keys: dict[str, str] = Field(
        ..., description="RV scene id (a window) -> its catalog scene, area/id."
    )
    test_chips: list[TestChipConfig] = Field([], description="Chips to predict for submission.")
    test_chip_size: int = Field(CHIP_SIZE, gt=0, description="Side of every test chip.")
    gsd: float | None = Field(
        None, gt=0, description="Metres per pixel of the windows (None: each scene's own)."
    )
    test_chip_gsd: float | None = Field(
        None,
        gt=0,
        description="Metres per pixel of the test chips; with gsd, chips are resized to gsd "
        "for the model and the outputs back to the chip size (None: predicted as they are).",
    )
    native_windows: dict[str, NativeWindowConfig] = Field(
        {},
        description="Validation window (RV scene id) resampled to gsd -> its grid in the "
        "scene, where its prediction is written and scored. Empty without a gsd.",
    )
    inference: InferenceConfig = Field(InferenceConfig(), description="Prediction settings.")
    threshold: ThresholdChoice = Field("fixed", description=THRESHOLD_HELP)
    threshold_value: float = Field(
        DEFAULT_THRESHOLD,
        gt=0,
        lt=1,
        description="The decision threshold of threshold fixed: a pixel is a building when its "
        "probability is above it.",
    )
    self_training: SelfTrainingConfig | None = Field(
        None, description="Fine-tune on pseudo-labels of unlabeled imagery (None: off)."
    )
    postprocess_uri: str | None = Field(
        None, description="Submission masks, {id}.tif (default {root_uri}/postprocess/{exp})."
    )
    submission_uri: str | None = Field(
        None,
        description="The packed masks (default {root_uri}/submission/{exp}/submission.tgz).",
    )

    def update(self) -> None:
        """Put every command's output where :mod:`benchmark.data.layout` says."""
        root, exp = self.root_uri, self.experiment_id
        for command in layout.RV_COMMAND_DIRS:
            if getattr(self, f"{command}_uri") is None:
                setattr(self, f"{command}_uri", layout.command_dir(root, command, exp))
        if self.postprocess_uri is None:
            self.postprocess_uri = layout.postprocess_dir(root, exp)
        if self.submission_uri is None:
            self.submission_uri = layout.submission_uri(root, exp)
        super().update()

    def get_config_uri(self) -> str:
        """One config per experiment, so experiments can share a root (a dry run: local)."""
        return dry_run.config_uri(layout.pipeline_config_uri(self.root_uri, self.experiment_id))

    def build(self, tmp_dir: str) -> Pipeline:
        """The benchmark pipeline (see :func:`~benchmark.console.as_rastervision_runs_it`)."""
        from benchmark import console
        from benchmark.pipeline.benchmark_pipeline import BenchmarkPipeline

        return console.as_rastervision_runs_it(BenchmarkPipeline(self, tmp_dir))
