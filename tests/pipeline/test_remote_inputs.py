"""A batch run refuses local paths among its inputs and outputs, in one line naming each.

The configs are built as the experiments build them, every place on S3; each test moves some
to this machine. ``tests/pipeline/test_dry_run.py`` runs the real CLI on a local catalog.
"""

from collections.abc import Callable

import pytest
from rastervision.core.data import (
    ClassConfig,
    DatasetConfig,
    GeoJSONVectorSourceConfig,
    RasterioSourceConfig,
    RasterizedSourceConfig,
    RasterizerConfig,
    SceneConfig,
)
from rastervision.pytorch_backend import PyTorchSemanticSegmentationConfig

from benchmark.data.label_source import NoDataAsBackgroundLabelSourceConfig
from benchmark.errors import MAX_LISTED_PROBLEMS, InputError
from benchmark.pipeline.benchmark_config import (
    BenchmarkConfig,
    InferenceConfig,
    NativeWindowConfig,
    SelfTrainingConfig,
    TestChipConfig,
)
from benchmark.pipeline.preprocess_config import SceneSourceConfig, SplitImagesConfig
from benchmark.pipeline.remote_inputs import local_uris, require_remote_uris
from benchmark.training.data_config import BenchmarkImageDataConfig
from benchmark.training.model_config import BenchmarkModelConfig, BenchmarkSolverConfig

ROOT = "s3://bench/oc"
CATALOG_DIR = "s3://bench/data/train_tier_1"
LOCAL = "data/kampala_sample/local.tif"
WHY = "a local path, but batch jobs run on AWS and cannot reach this machine's files"
FIX = "put it on S3 (aws s3 sync) and give its s3:// URI (nothing was submitted)"


def scene_source(scene_id: str) -> SceneSourceConfig:
    return SceneSourceConfig(
        area="kam",
        id=scene_id,
        image_uri=f"{CATALOG_DIR}/kam/{scene_id}/{scene_id}.tif",
        label_uri=f"{CATALOG_DIR}/kam/{scene_id}-labels/{scene_id}.geojson",
    )


def preprocess_config(scenes: int = 1) -> SplitImagesConfig:
    return SplitImagesConfig(
        root_uri=ROOT,
        scenes=[scene_source(f"aaa{n:03}") for n in range(scenes)],
        split_dir=f"{ROOT}/split_images",
    )


def window_scene(root: str, window_id: str) -> SceneConfig:
    """A PREPROCESS window as the benchmark experiment makes it an RV scene."""
    window = f"{root}/split_images/kam/{window_id}.tif"
    labels = RasterizedSourceConfig(
        vector_source=GeoJSONVectorSourceConfig(
            uris=[f"{root}/split_images/kam/{window_id}.geojson"]
        ),
        rasterizer_config=RasterizerConfig(background_class_id=0),
    )
    return SceneConfig(
        id=window_id,
        raster_source=RasterioSourceConfig(uris=[window], channel_order=[0, 1, 2]),
        label_source=NoDataAsBackgroundLabelSourceConfig(raster_source=labels, image_uri=window),
    )


def benchmark_config(root: str = ROOT) -> BenchmarkConfig:
    """Every kind of place the benchmark's config holds, with the outputs ``update`` sets.

    The windows and outputs are under ``root``; the rest is on S3.
    """
    cfg = BenchmarkConfig(
        root_uri=root,
        experiment_id="unet",
        scene_keys={"aaa000_0": "kam/aaa000", "bbb000_0": "kam/bbb000"},
        dataset=DatasetConfig(
            class_config=ClassConfig(names=["background", "building"]),
            train_scenes=[window_scene(root, "aaa000_0")],
            validation_scenes=[window_scene(root, "bbb000_0")],
        ),
        backend=PyTorchSemanticSegmentationConfig(
            data=BenchmarkImageDataConfig(),
            model=BenchmarkModelConfig(pretrained=False),
            solver=BenchmarkSolverConfig(),
        ),
        test_chips=[TestChipConfig(id="c0ffee", uri="s3://bench/test/c0ffee/c0ffee.tif")],
        native_windows={
            "bbb000_0": NativeWindowConfig(
                image_uri=f"{CATALOG_DIR}/kam/bbb000/bbb000.tif",
                col_off=0,
                row_off=0,
                width=64,
                height=64,
            )
        },
        inference=InferenceConfig(ensemble=["s3://bench/oc/bundle/seed1/model-bundle.zip"]),
        self_training=SelfTrainingConfig(image_uris=["s3://bench/city/map.tif"]),
    )
    cfg.update()
    return cfg


def refused(config: object) -> str:
    with pytest.raises(InputError) as raised:
        require_remote_uris(config)
    return str(raised.value)


# (which config, how one place is made local, the field the line names, where it came from)
ONE_LOCAL_PLACE: list[tuple[Callable, Callable, str, str]] = [
    (preprocess_config, lambda c: setattr(c, "root_uri", LOCAL), "root_uri", ""),
    (preprocess_config, lambda c: setattr(c, "split_dir", LOCAL), "split_dir", ""),
    (
        preprocess_config,
        lambda c: setattr(c.scenes[0], "image_uri", LOCAL),
        "scenes[aaa000].image_uri",
        " (from -a train_stac_uri)",
    ),
    (
        preprocess_config,
        lambda c: setattr(c.scenes[0], "label_uri", LOCAL),
        "scenes[aaa000].label_uri",
        " (from -a train_stac_uri)",
    ),
    (benchmark_config, lambda c: setattr(c, "train_uri", LOCAL), "train_uri", ""),
    (benchmark_config, lambda c: setattr(c, "submission_uri", LOCAL), "submission_uri", ""),
    (
        benchmark_config,
        lambda c: setattr(c.backend.data, "uri", LOCAL),
        "backend.data.uri",
        "",
    ),
    (
        benchmark_config,
        lambda c: setattr(c.dataset.train_scenes[0].raster_source, "uris", [LOCAL]),
        "dataset.train_scenes[aaa000_0].raster_source.uris[0]",
        " (from -a split_dir)",
    ),
    (
        benchmark_config,
        lambda c: setattr(
            c.dataset.validation_scenes[0].label_source.raster_source.vector_source,
            "uris",
            [LOCAL],
        ),
        "dataset.validation_scenes[bbb000_0].label_source.raster_source.vector_source.uris[0]",
        " (from -a split_dir)",
    ),
    (
        benchmark_config,
        lambda c: setattr(c.test_chips[0], "uri", LOCAL),
        "test_chips[c0ffee].uri",
        " (from -a test_img_dir or test_stac_uri)",
    ),
    (
        benchmark_config,
        lambda c: setattr(c.native_windows["bbb000_0"], "image_uri", LOCAL),
        "native_windows[bbb000_0].image_uri",
        " (from -a train_stac_uri)",
    ),
    (
        benchmark_config,
        lambda c: setattr(c.self_training, "image_uris", [LOCAL]),
        "self_training.image_uris[0]",
        " (from -a self_train_images)",
    ),
    (
        benchmark_config,
        lambda c: setattr(c.inference, "ensemble", [LOCAL]),
        "inference.ensemble[0]",
        " (from -a ensemble)",
    ),
    (
        benchmark_config,
        lambda c: setattr(c.backend.model, "init_weights", LOCAL),
        "backend.model.init_weights",
        "",
    ),
]


@pytest.mark.parametrize(
    ("make", "localise", "field", "origin"),
    ONE_LOCAL_PLACE,
    ids=[case[2] for case in ONE_LOCAL_PLACE],
)
def test_a_local_place_is_named_in_one_line(make, localise, field, origin):
    config = make()
    localise(config)
    assert refused(config) == f"{field} {LOCAL}{origin}: {WHY}: {FIX}"


def test_several_are_listed():
    config = preprocess_config()
    config.scenes[0].image_uri = "/data/kam/aaa000.tif"
    config.scenes[0].label_uri = "/data/kam/aaa000.geojson"
    assert refused(config) == (
        "2 local paths, but batch jobs run on AWS and cannot reach this machine's files: "
        "scenes[aaa000].image_uri /data/kam/aaa000.tif (from -a train_stac_uri); "
        "scenes[aaa000].label_uri /data/kam/aaa000.geojson (from -a train_stac_uri): "
        "put them on S3 (aws s3 sync) and give their s3:// URIs (nothing was submitted)"
    )


def test_many_are_summarised():
    config = preprocess_config(scenes=MAX_LISTED_PROBLEMS)
    for scene in config.scenes:
        scene.image_uri = scene.label_uri = LOCAL
    message = refused(config)
    assert message.startswith(f"{2 * MAX_LISTED_PROBLEMS} local paths, but batch jobs run on AWS")
    assert message.count(LOCAL) == MAX_LISTED_PROBLEMS
    assert f"; and {MAX_LISTED_PROBLEMS} more: put them on S3" in message


@pytest.mark.parametrize("make", [preprocess_config, benchmark_config])
def test_all_on_s3_passes(make):
    config = make()
    assert local_uris(config) == []
    require_remote_uris(config)


def test_http_and_https_pass():
    config = benchmark_config()
    config.test_chips[0].uri = "https://example.com/test/c0ffee/c0ffee.tif"
    config.self_training.image_uris = ["http://example.com/city/map.tif"]
    require_remote_uris(config)


def test_every_place_under_a_local_root_is_found():
    """The windows, and every output ``update`` derives from the root, nothing else."""
    fields = {field for field, _ in local_uris(benchmark_config(root="/out"))}
    assert fields == {
        "root_uri",
        "analyze_uri",
        "chip_uri",
        "train_uri",
        "predict_uri",
        "eval_uri",
        "bundle_uri",
        "postprocess_uri",
        "submission_uri",
        "backend.data.uri",
        "evaluators[0].output_uri",
        *(
            f"dataset.{split}[{window}].{field}"
            for split, window in (("train_scenes", "aaa000_0"), ("validation_scenes", "bbb000_0"))
            for field in (
                "raster_source.uris[0]",
                "label_source.raster_source.vector_source.uris[0]",
                "label_source.image_uri",
                "label_store.uri",
            )
        ),
    }
