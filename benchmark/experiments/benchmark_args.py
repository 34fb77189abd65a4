"""The benchmark experiment's ``-a`` arguments, typed: what ``get_config`` is built from.

Kept apart from :mod:`benchmark.experiments.benchmark`, which turns them into a pipeline
config: the ablation and the argument reference read the arguments without building anything.
"""

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from benchmark.data.label_source import InstanceLabelSourceConfig
from benchmark.evaluation.threshold_choice import (
    THRESHOLD_FLAGS,
    THRESHOLD_HELP,
    ThresholdChoice,
    choice_from_flags,
)
from benchmark.experiments.args import (
    Respelled,
    SceneArgs,
    config_field,
    rename_deprecated,
    respell_deprecated,
)
from benchmark.inference.execution import ExecutionName
from benchmark.networks.targets import Target
from benchmark.pipeline.benchmark_config import BenchmarkConfig, SelfTrainingConfig
from benchmark.training.losses import check_channel_weights, parse_loss_spec
from benchmark.training.model_config import BenchmarkModelConfig, BenchmarkSolverConfig

# Arguments renamed since a release (old name -> new): the old name still works, with a warning.
RENAMED_ARGS = {"predict_chip_sz": "predict_window"}


def _plan_of_fast(fast: bool) -> ExecutionName:
    """``-a fast`` as a plan: ``false`` was plain PyTorch, ``true`` the machine's fastest."""
    return "auto" if fast else "fp32"


# Old booleans now said as a value of another argument: still accepted, with a warning.
RESPELLED_ARGS = (
    Respelled(("fast",), "plan", _plan_of_fast),
    Respelled(THRESHOLD_FLAGS, "threshold", choice_from_flags),
)


class BenchmarkArgs(SceneArgs):
    """Arguments of ``benchmark.experiments.benchmark`` (all optional but ``root_uri``)."""

    experiment_id: str = Field("benchmark", description="Names this run's outputs.")
    test_stac_uri: str | None = Field(None, description="Test-set STAC catalog.json.")
    test_img_dir: str | None = Field(
        None, description="Test chips {id}/{id}.tif (default: beside test_stac_uri)."
    )
    test: bool = Field(False, description="Tiny quick run: few chips, 1 epoch, 5 test chips.")
    seed: int = Field(0, description="Seed for every random choice the experiment makes.")
    # Chips (training data).
    chip_method: Literal["sliding", "random"] = Field(
        "sliding", description="sliding (original) or random windows."
    )
    chip_sz: int = Field(300, gt=0, description="Chip side in pixels (training input size).")
    stride: int | None = Field(None, gt=0, description="Sliding stride (default chip_sz).")
    chips_per_scene: int = Field(
        100, gt=0, description="Random chips per training window (chip_method random)."
    )
    random_sz_min: int | None = Field(
        None, gt=0, description="Random chips: smallest window side before resizing to chip_sz."
    )
    random_sz_max: int | None = Field(
        None, gt=0, description="Random chips: largest window side before resizing to chip_sz."
    )
    # Training.
    batch_sz: int = Field(8, gt=0, description="Training batch size.")
    num_epochs: int = Field(6, gt=0, description="Training epochs.")
    lr: float = Field(1e-4, gt=0, description="Peak learning rate.")
    one_cycle: bool = Field(True, description="One-cycle learning-rate schedule.")
    model: Literal["unet", "fpn"] = Field("unet", description="Decoder architecture.")
    encoder: str = Field("resnet18", description="Encoder network.")
    pretrained: bool = Field(True, description="ImageNet encoder weights (needs internet).")
    loss: str = Field("ce", description="ce, dice, lovasz or a sum such as ce+dice.")
    target: Target = config_field(BenchmarkModelConfig, "target")
    border_width: float = config_field(InstanceLabelSourceConfig, "border_width")
    contact_width: float = config_field(InstanceLabelSourceConfig, "contact_width")
    channel_weights: tuple[float, float, float] = config_field(
        BenchmarkSolverConfig, "channel_weights"
    )
    aug: str = Field("d4", description="Augmentation preset: none, d4, color, scale.")
    ema_decay: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="Validate and bundle an exponential moving average of the weights with "
        "this decay per step (e.g. 0.99); none: the last weights.",
    )
    num_workers: int = Field(2, ge=0, description="DataLoader worker processes.")
    # Prediction and evaluation.
    predict_window: int = Field(
        1024,
        gt=0,
        description="Side of the windows validation scenes and test chips are predicted in, in "
        "the model's pixels (formerly predict_chip_sz, still accepted).",
    )
    predict_overlap: int = Field(0, ge=0, description="Overlap of prediction windows (pixels).")
    predict_batch_sz: int = Field(4, gt=0, description="Prediction batch size.")
    plan: ExecutionName = Field(
        "auto",
        description="How the model predicts, as --plan: auto (the machine's fastest; on a CPU "
        "measured on the first batch), fp32, fp32_channels_last, bf16, fp16, onnx or int8 "
        "(-a fast false, the old spelling of -a plan fp32, is still accepted).",
    )
    tta: bool = Field(False, description="8-fold flip/rotate test-time augmentation.")
    ensemble: list[str] = Field(
        [],
        description="Comma-separated learner bundles of other trained models "
        "({root}/train/{exp}/model-bundle.zip of other seeds or encoders): predict averages "
        "their probabilities with this run's model, and bundle packs them with it.",
    )
    threshold: ThresholdChoice = Field(
        "fixed",
        description=f"{THRESHOLD_HELP} (-a tune_threshold, train_threshold or share_threshold "
        "true, the old spellings of -a threshold tune, train or share, are still accepted.)",
    )
    threshold_value: float = config_field(BenchmarkConfig, "threshold_value")
    # Self-training (pseudo-labels).
    self_train_rounds: int = Field(
        0,
        ge=0,
        description="Fine-tuning rounds on pseudo-labels of the unlabeled imagery (the test "
        "chips, self_train_images) after the first training; 0: off.",
    )
    self_train_epochs: int = config_field(SelfTrainingConfig, "epochs")
    self_train_margin: float = config_field(SelfTrainingConfig, "margin")
    self_train_lr_scale: float = config_field(SelfTrainingConfig, "lr_scale")
    self_train_test_chips: bool = Field(True, description="Self-training uses the test chips.")
    self_train_images: list[str] = Field(
        [],
        description="Comma-separated unlabeled georeferenced images self-training also "
        "pseudo-labels (never a validation scene's).",
    )
    test_chip_size: int = Field(1024, gt=0, description="Expected test chip side.")
    test_chip_gsd: float | None = Field(
        None,
        gt=0,
        description="Test chips' metres per pixel (unknown: they carry no georeferencing); "
        "with gsd, chips are resized to gsd for the model (default: predicted as they are).",
    )

    @model_validator(mode="before")
    @classmethod
    def _accept_renamed_args(cls, args: Any) -> Any:
        return respell_deprecated(rename_deprecated(args, RENAMED_ARGS), RESPELLED_ARGS)

    @field_validator("loss")
    @classmethod
    def _known_loss(cls, value: str) -> str:
        """Refuse an unknown loss here, in one line: RV validates configs after we return."""
        parse_loss_spec(value)
        return value

    @field_validator("ensemble", "self_train_images", mode="before")
    @classmethod
    def _split_uris(cls, value: Any) -> Any:
        if isinstance(value, str):  # -a ensemble a.zip,b.zip
            return [uri.strip() for uri in value.split(",") if uri.strip()]
        return value

    @field_validator("channel_weights", mode="before")
    @classmethod
    def _split_weights(cls, value: Any) -> Any:
        if isinstance(value, str):  # -a channel_weights 1,0.25,0.1
            return tuple(weight.strip() for weight in value.split(","))
        return value

    @field_validator("channel_weights")
    @classmethod
    def _usable_weights(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        check_channel_weights(value)  # here, in one line: RV validates configs after we return
        return value

    @model_validator(mode="after")
    def _check_instance_args(self) -> "BenchmarkArgs":
        """Instance arguments without the instance target would do nothing: say so."""
        given = self.model_fields_set & {"border_width", "contact_width", "channel_weights"}
        if given and self.target != "instance":
            raise ValueError(f"{', '.join(sorted(given))}: only with -a target instance")
        if self.target == "instance" and self.self_train_rounds:
            raise ValueError(
                "self-training's pseudo-labels have no border or contact: "
                "-a self_train_rounds needs -a target binary"
            )
        return self

    @model_validator(mode="after")
    def _check_random_sizes(self) -> "BenchmarkArgs":
        if self.random_sz_min and self.random_sz_max and self.random_sz_min >= self.random_sz_max:
            raise ValueError("random_sz_min must be below random_sz_max")
        return self

    @model_validator(mode="after")
    def _check_threshold_value(self) -> "BenchmarkArgs":
        if "threshold_value" in self.model_fields_set and self.threshold != "fixed":
            raise ValueError(
                f"threshold_value is the threshold of -a threshold fixed, not {self.threshold}"
            )
        return self

    @model_validator(mode="after")
    def _check_test_chip_gsd(self) -> "BenchmarkArgs":
        if self.test_chip_gsd is not None and self.gsd is None:
            raise ValueError("test_chip_gsd needs gsd (the GSD the model works at)")
        return self
