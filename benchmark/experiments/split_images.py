"""PREPROCESS experiment: cut the benchmark's scenes into windows.

Run with::

    rastervision run local benchmark.experiments.split_images PREPROCESS \
        -a root_uri ROOT -a train_stac_uri CATALOG [-a train_ids area/id,...] [-a gsd 0.1] [-s 8]
"""

from typing import Any

from pydantic import Field

from benchmark.data.stac import read_training_scenes, select_scenes
from benchmark.experiments.args import SceneArgs, parse_args
from benchmark.pipeline.preprocess_config import SceneSourceConfig, SplitImagesConfig


class SplitImagesArgs(SceneArgs):
    """Arguments of ``benchmark.experiments.split_images``."""

    split_size: int = Field(9000, gt=0, description="Maximum window side in pixels.")


def get_config(runner: str, **kwargs: Any) -> SplitImagesConfig:
    """Build the PREPROCESS config from ``-a`` arguments (see :class:`SplitImagesArgs`).

    Args:
        runner: RV runner name (unused: the same config serves every runner).
        **kwargs: the ``-a`` arguments: ``root_uri`` (required), ``train_stac_uri``,
            ``train_ids``, ``valid_ids``, ``split_dir``, ``split_size``, ``gsd``.
    """
    args = parse_args(SplitImagesArgs, kwargs)
    catalog = read_training_scenes(args.train_stac_uri)
    # Validation scenes are split too: the benchmark predicts and evaluates on their windows.
    ids = list(dict.fromkeys(args.train_ids + args.valid_ids))
    scenes = select_scenes(catalog, ids, args.train_stac_uri)
    return SplitImagesConfig(
        root_uri=args.root_uri,
        scenes=[SceneSourceConfig.from_ref(s) for s in scenes],
        split_dir=args.get_split_dir(),
        split_size=args.split_size,
        gsd=args.gsd,
    )
