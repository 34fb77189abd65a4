"""The benchmark experiment: chip, train, predict, eval, bundle, POSTPROCESS.

Run PREPROCESS (``benchmark.experiments.split_images``) first, with the same ``root_uri``,
scene ids and ``gsd``, then::

    rastervision run local benchmark.experiments.benchmark \
        chip train predict eval bundle POSTPROCESS \
        -a root_uri ROOT -a experiment_id ID -a train_stac_uri CATALOG \
        -a test_stac_uri TEST_CATALOG -a test_img_dir TEST_DIR [-s 10]

Defaults reproduce the original benchmark (ResNet-18 backbone, 300 px sliding-window chips
with stride 300, batch 8, 6 epochs, lr 1e-4, one-cycle schedule); every knob is an ``-a``
argument, documented on :class:`BenchmarkArgs`.
"""

import logging
import random
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from rastervision.core.data import (
    ClassConfig,
    ClassInferenceTransformerConfig,
    DatasetConfig,
    GeoJSONVectorSourceConfig,
    RasterioSourceConfig,
    RasterizedSourceConfig,
    RasterizerConfig,
    SceneConfig,
)
from rastervision.core.rv_pipeline import SemanticSegmentationChipOptions, WindowSamplingConfig
from rastervision.pytorch_backend import PyTorchSemanticSegmentationConfig

from benchmark.data.chips import list_test_chips
from benchmark.data.constants import BUILDING, CLASS_COLORS, CLASS_NAMES, NO_BUILDING
from benchmark.data.label_source import NoDataAsBackgroundLabelSourceConfig
from benchmark.data.scene_windows import SceneWindows, WindowFile, read_scene_windows
from benchmark.errors import InputError
from benchmark.experiments.args import SceneArgs, fast_as_plan, parse_args, rename_deprecated
from benchmark.inference.execution import ExecutionName
from benchmark.pipeline import layout
from benchmark.pipeline.benchmark_config import (
    BenchmarkConfig,
    InferenceConfig,
    NativeWindowConfig,
    SelfTrainingConfig,
    TestChipConfig,
)
from benchmark.pipeline.dry_run import read_or_assume
from benchmark.training.augmentation import build_aug_transform
from benchmark.training.data_config import BenchmarkImageDataConfig
from benchmark.training.model_config import BenchmarkModelConfig, BenchmarkSolverConfig

log = logging.getLogger(__name__)

# Arguments renamed since a release (old name -> new): the old name still works, with a warning.
RENAMED_ARGS = {"predict_chip_sz": "predict_window"}


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
    tune_threshold: bool = Field(
        False,
        description="Pick the threshold on validation scenes (wins over the other choices).",
    )
    train_threshold: bool = Field(
        False,
        description="Pick the threshold on the training chips (the trained model predicts "
        "them in eval; no validation label is read; wins over share_threshold).",
    )
    share_threshold: bool = Field(
        False,
        description="Pick the threshold at which the validation scenes' predicted building "
        "share is the training chips' (no validation label is read).",
    )
    # Self-training (pseudo-labels).
    self_train_rounds: int = Field(
        0,
        ge=0,
        description="Fine-tuning rounds on pseudo-labels of the unlabeled imagery (the test "
        "chips, self_train_images) after the first training; 0: off.",
    )
    self_train_epochs: int = Field(2, gt=0, description="Epochs of each self-training round.")
    self_train_margin: float = Field(
        0.2,
        gt=0,
        lt=0.5,
        description="Pseudo-labels keep pixels whose probability is at least this far from "
        "0.5; the loss ignores the rest.",
    )
    self_train_lr_scale: float = Field(
        0.1, gt=0, description="Fine-tuning rounds' peak learning rate, as a fraction of lr."
    )
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
        return fast_as_plan(rename_deprecated(args, RENAMED_ARGS))

    @field_validator("ensemble", "self_train_images", mode="before")
    @classmethod
    def _split_uris(cls, value: Any) -> Any:
        if isinstance(value, str):  # -a ensemble a.zip,b.zip
            return [uri.strip() for uri in value.split(",") if uri.strip()]
        return value

    @model_validator(mode="after")
    def _check_random_sizes(self) -> "BenchmarkArgs":
        if self.random_sz_min and self.random_sz_max and self.random_sz_min >= self.random_sz_max:
            raise ValueError("random_sz_min must be below random_sz_max")
        return self

    @model_validator(mode="after")
    def _check_test_chip_gsd(self) -> "BenchmarkArgs":
        if self.test_chip_gsd is not None and self.gsd is None:
            raise ValueError("test_chip_gsd needs gsd (the GSD the model works at)")
        return self


@dataclass
class _Windows:
    """PREPROCESS's windows of some scenes, as RV scenes, and what each belongs to."""

    scenes: list[SceneConfig] = field(default_factory=list)
    scene_keys: dict[str, str] = field(default_factory=dict)  # window id -> area/id
    native: dict[str, NativeWindowConfig] = field(default_factory=dict)  # resampled only


def _assumed_windows(args: BenchmarkArgs, key: str) -> SceneWindows:
    """One window covering a scene: a dry run's stand-in for a manifest it may not read.

    Its size is unknown (1 px): nothing reads it, the job graph does not depend on it.
    """
    area, scene_id = key.split("/")
    scene_dir = layout.scene_windows_dir(args.get_split_dir(), area, scene_id)
    image_uri, source_label_uri = layout.catalog_scene_uris(args.train_stac_uri, area, scene_id)
    window = WindowFile(layout.window_file_uri(scene_dir, scene_id, 0), 0, 0, 1, 1, 0)
    return SceneWindows(
        scene=key,
        image_uri=image_uri,
        source_label_uri=source_label_uri,
        label_uri=layout.window_labels_uri(scene_dir, scene_id),
        crs="",
        width=1,
        height=1,
        split_size=1,
        valid_pixels=0,
        label_report="",
        gsd=args.gsd,
        windows=[window],
    )


def _read_windows(args: BenchmarkArgs, keys: list[str]) -> dict[str, SceneWindows]:
    """PREPROCESS's manifest (at ``args.gsd``) of each scene ``keys``.

    A dry run that may not read them assumes one window per scene (:func:`_assumed_windows`).
    """
    split_dir = args.get_split_dir()

    def read() -> dict[str, SceneWindows]:
        return {
            key: read_scene_windows(layout.scene_windows_dir(split_dir, *key.split("/")), args.gsd)
            for key in keys
        }

    return read_or_assume(
        read,
        layout.manifest_uri(layout.scene_windows_dir(split_dir, "{area}", "{id}")),
        "one window per scene, {area}/{id}/{id}_0.tif",
        {key: _assumed_windows(args, key) for key in keys},
    )


def _scene_configs(manifests: dict[str, SceneWindows], keys: list[str]) -> _Windows:
    """RV scenes for every PREPROCESS window of the scenes ``keys``."""
    windows = _Windows()
    for key in keys:
        split = manifests[key]
        vector_source = GeoJSONVectorSourceConfig(
            uris=[split.label_uri],
            transformers=[ClassInferenceTransformerConfig(default_class_id=BUILDING)],
        )
        labels = RasterizedSourceConfig(
            vector_source=vector_source,
            rasterizer_config=RasterizerConfig(background_class_id=NO_BUILDING),
        )
        for window in split.windows:
            window_id = window.uri.rsplit("/", 1)[-1].removesuffix(".tif")
            windows.scenes.append(
                SceneConfig(
                    id=window_id,
                    raster_source=RasterioSourceConfig(uris=[window.uri], channel_order=[0, 1, 2]),
                    label_source=NoDataAsBackgroundLabelSourceConfig(
                        raster_source=labels, image_uri=window.uri
                    ),
                )
            )
            windows.scene_keys[window_id] = key
            if split.gsd is not None:
                windows.native[window_id] = NativeWindowConfig(
                    image_uri=split.image_uri,
                    col_off=window.col_off,
                    row_off=window.row_off,
                    width=window.width,
                    height=window.height,
                )
    return windows


def _chip_options(
    args: BenchmarkArgs, train_scenes: list[SceneConfig], valid_scenes: list[SceneConfig]
) -> SemanticSegmentationChipOptions:
    """Training windows chipped as asked; validation windows always by a sliding window.

    Sliding validation chips cover each validation window once, so the per-epoch validation
    metrics are deterministic and cheap however many random training chips are drawn.
    """
    sliding = WindowSamplingConfig(
        method="sliding", size=args.chip_sz, stride=args.stride or args.chip_sz
    )
    train_sampling = sliding
    if args.chip_method == "random" or args.test:
        size_lims = None
        if args.random_sz_min and args.random_sz_max:
            size_lims = (args.random_sz_min, args.random_sz_max + 1)
        train_sampling = WindowSamplingConfig(
            method="random",
            size=args.chip_sz,
            size_lims=size_lims,
            max_windows=10 if args.test else args.chips_per_scene,
        )
    sampling = {s.id: train_sampling for s in train_scenes}
    sampling.update({s.id: sliding for s in valid_scenes})
    # Drop chips that are mostly outside the imagery (alpha 0 reads as black, label 0).
    return SemanticSegmentationChipOptions(sampling=sampling, nodata_threshold=0.5)


def _test_chips(args: BenchmarkArgs) -> list[TestChipConfig]:
    source = args.test_stac_uri or args.test_img_dir
    if not source:
        log.warning("No test_stac_uri / test_img_dir: no submission will be made.")
        return []
    chips = read_or_assume(
        lambda: list_test_chips(args.test_stac_uri, args.test_img_dir), source, "no test chips", []
    )
    if args.test:
        chips = chips[:5]
    return [TestChipConfig(id=c.id, uri=c.uri) for c in chips]


def _self_training(
    args: BenchmarkArgs,
    have_test_chips: bool,
    manifests: dict[str, SceneWindows],
    valid_keys: list[str],
) -> SelfTrainingConfig | None:
    """The self-training settings, or None when it is off.

    Raises:
        InputError: there is no unlabeled imagery to pseudo-label, or a validation scene's
            image is among it (its score would then measure what the model was taught).
    """
    if not args.self_train_rounds:
        return None
    uses_chips = args.self_train_test_chips and have_test_chips
    if not uses_chips and not args.self_train_images:
        raise InputError(
            "-a self_train_rounds needs unlabeled imagery: test chips (-a test_img_dir or "
            "test_stac_uri) or -a self_train_images"
        )
    valid_images = {manifests[key].image_uri: key for key in valid_keys}
    for uri in args.self_train_images:
        if uri in valid_images:
            raise InputError(
                f"{uri}: validation scene {valid_images[uri]}'s image; self-training never "
                "learns from validation imagery"
            )
    return SelfTrainingConfig(
        rounds=args.self_train_rounds,
        epochs=args.self_train_epochs,
        margin=args.self_train_margin,
        lr_scale=args.self_train_lr_scale,
        test_chips=uses_chips,
        image_uris=args.self_train_images,
    )


def get_config(runner: str, **kwargs: Any) -> BenchmarkConfig:
    """Build the benchmark pipeline config from ``-a`` arguments (see :class:`BenchmarkArgs`).

    Args:
        runner: RV runner name (unused: the same config serves every runner).
        **kwargs: the ``-a`` arguments; ``root_uri`` is required.
    """
    args = parse_args(BenchmarkArgs, kwargs)
    rng = random.Random(args.seed)
    experiment_id = args.experiment_id + ("-TEST" if args.test else "")
    train_refs, valid_refs = args.read_scenes(args.train_ids, args.valid_ids)
    train_keys, valid_keys = [s.key for s in train_refs], [s.key for s in valid_refs]
    manifests = _read_windows(args, train_keys + valid_keys)
    train, valid = _scene_configs(manifests, train_keys), _scene_configs(manifests, valid_keys)
    train_scenes, valid_scenes = train.scenes, valid.scenes
    if args.test:
        train_scenes = rng.sample(train_scenes, min(3, len(train_scenes)))
        valid_scenes = rng.sample(valid_scenes, min(3, len(valid_scenes)))

    test_chips = _test_chips(args)
    class_config = ClassConfig(
        names=list(CLASS_NAMES), colors=list(CLASS_COLORS), null_class=CLASS_NAMES[NO_BUILDING]
    )
    data = BenchmarkImageDataConfig(
        img_sz=args.chip_sz,
        num_workers=args.num_workers,
        aug_transform=build_aug_transform(args.aug, args.chip_sz),
        seed=args.seed,
    )
    backend = PyTorchSemanticSegmentationConfig(
        data=data,
        model=BenchmarkModelConfig(
            arch=args.model, encoder=args.encoder, pretrained=args.pretrained
        ),
        solver=BenchmarkSolverConfig(
            lr=args.lr,
            num_epochs=1 if args.test else args.num_epochs,
            batch_sz=2 if args.test else args.batch_sz,
            one_cycle=args.one_cycle,
            loss=args.loss,
            ema_decay=args.ema_decay,
        ),
        log_tensorboard=False,
        run_tensorboard=False,
    )
    return BenchmarkConfig(
        root_uri=args.root_uri,
        experiment_id=experiment_id,
        seed=args.seed,
        dataset=DatasetConfig(
            class_config=class_config,
            train_scenes=train_scenes,
            validation_scenes=valid_scenes,
        ),
        backend=backend,
        chip_options=_chip_options(args, train_scenes, valid_scenes),
        scene_keys={**train.scene_keys, **valid.scene_keys},
        test_chips=test_chips,
        test_chip_size=args.test_chip_size,
        gsd=args.gsd,
        test_chip_gsd=args.test_chip_gsd,
        native_windows={s.id: valid.native[s.id] for s in valid_scenes if s.id in valid.native},
        inference=InferenceConfig(
            window=args.predict_window,
            overlap=args.predict_overlap,
            batch_sz=args.predict_batch_sz,
            plan=args.plan,
            tta=args.tta,
            ensemble=args.ensemble,
        ),
        tune_threshold=args.tune_threshold,
        train_threshold=args.train_threshold,
        share_threshold=args.share_threshold,
        self_training=_self_training(args, bool(test_chips), manifests, valid_keys),
    )
