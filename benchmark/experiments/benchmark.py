"""The benchmark experiment: chip, train, predict, eval, bundle, POSTPROCESS.

Run PREPROCESS (``benchmark.experiments.split_images``) first, with the same ``root_uri``,
scene ids and ``gsd``, then::

    rastervision run local benchmark.experiments.benchmark \
        chip train predict eval bundle POSTPROCESS \
        -a root_uri ROOT -a experiment_id ID -a train_stac_uri CATALOG \
        -a test_stac_uri TEST_CATALOG -a test_img_dir TEST_DIR [-s 10]

Defaults reproduce the original benchmark (ResNet-18 backbone, 300 px sliding-window chips
with stride 300, batch 8, 6 epochs, lr 1e-4, one-cycle schedule); every knob is an ``-a``
argument, documented on
:class:`~benchmark.experiments.benchmark_args.BenchmarkArgs`.
"""

import logging
import random
from dataclasses import dataclass, field
from typing import Any

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

from benchmark.console import one_line_errors
from benchmark.data import layout
from benchmark.data.chips import list_test_chips
from benchmark.data.constants import BUILDING, CLASS_COLORS, CLASS_NAMES, NO_BUILDING
from benchmark.data.label_source import (
    InstanceLabelSourceConfig,
    NoDataAsBackgroundLabelSourceConfig,
)
from benchmark.data.scene_windows import SceneWindows, WindowFile, read_scene_windows
from benchmark.data.uris import make_output_root
from benchmark.errors import InputError
from benchmark.experiments.args import parse_args
from benchmark.experiments.benchmark_args import BenchmarkArgs
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


def _label_source(
    args: BenchmarkArgs, labels: RasterizedSourceConfig, image_uri: str
) -> NoDataAsBackgroundLabelSourceConfig:
    """A window's training labels: binary, or an instance target's body, border and contact."""
    if args.target == "instance":
        return InstanceLabelSourceConfig(
            raster_source=labels,
            image_uri=image_uri,
            border_width=args.border_width,
            contact_width=args.contact_width,
        )
    return NoDataAsBackgroundLabelSourceConfig(raster_source=labels, image_uri=image_uri)


def training_labels_config(label_uri: str) -> RasterizedSourceConfig:
    """The training labels of a scene: the buildings of GeoJSON ``label_uri``, rasterized."""
    vector_source = GeoJSONVectorSourceConfig(
        uris=[label_uri],
        transformers=[ClassInferenceTransformerConfig(default_class_id=BUILDING)],
    )
    return RasterizedSourceConfig(
        vector_source=vector_source,
        rasterizer_config=RasterizerConfig(background_class_id=NO_BUILDING),
    )


def _scene_configs(
    args: BenchmarkArgs, manifests: dict[str, SceneWindows], keys: list[str]
) -> _Windows:
    """RV scenes for every PREPROCESS window of the scenes ``keys``."""
    windows = _Windows()
    for key in keys:
        split = manifests[key]
        labels = training_labels_config(split.label_uri)
        for window in split.windows:
            window_id = window.uri.rsplit("/", 1)[-1].removesuffix(".tif")
            windows.scenes.append(
                SceneConfig(
                    id=window_id,
                    raster_source=RasterioSourceConfig(uris=[window.uri], channel_order=[0, 1, 2]),
                    label_source=_label_source(args, labels, window.uri),
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


@one_line_errors()
def get_config(runner: str, **kwargs: Any) -> BenchmarkConfig:
    """Build the benchmark pipeline config from ``-a`` arguments (see :class:`BenchmarkArgs`).

    Args:
        runner: RV runner name (unused: the same config serves every runner).
        **kwargs: the ``-a`` arguments; ``root_uri`` is required.
    """
    args = parse_args(BenchmarkArgs, kwargs)
    make_output_root(args.root_uri)
    rng = random.Random(args.seed)
    experiment_id = layout.run_experiment_id(args.experiment_id, args.test)
    train_refs, valid_refs = args.read_scenes(args.train_ids, args.valid_ids)
    train_keys, valid_keys = [s.key for s in train_refs], [s.key for s in valid_refs]
    manifests = _read_windows(args, train_keys + valid_keys)
    train = _scene_configs(args, manifests, train_keys)
    valid = _scene_configs(args, manifests, valid_keys)
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
            arch=args.model, encoder=args.encoder, pretrained=args.pretrained, target=args.target
        ),
        solver=BenchmarkSolverConfig(
            lr=args.lr,
            num_epochs=1 if args.test else args.num_epochs,
            batch_sz=2 if args.test else args.batch_sz,
            one_cycle=args.one_cycle,
            loss=args.loss,
            ema_decay=args.ema_decay,
            channel_weights=args.channel_weights,
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
        threshold=args.threshold,
        threshold_value=args.threshold_value,
        self_training=_self_training(args, bool(test_chips), manifests, valid_keys),
    )
