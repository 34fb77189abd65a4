"""PREPROCESS experiment: cut the benchmark's scenes into windows.

Run with::

    rastervision run local benchmark.experiments.split_images PREPROCESS \
        -a root_uri ROOT -a train_stac_uri CATALOG [-a train_ids area/id,...] [-a gsd 0.1] [-s 8]

The module keeps the original benchmark's name, which users' run scripts spell: it cuts
scenes into windows (``-a split_size`` is the window side, ``-a split_dir`` the windows
folder), and ``-s N`` shares the scenes among N of Raster Vision's splits (parallel jobs).
"""

from typing import Any

from pydantic import Field

from benchmark.console import one_line_errors
from benchmark.data.uris import make_output_root
from benchmark.experiments.args import SceneArgs, parse_args
from benchmark.pipeline.preprocess_config import SceneSourceConfig, SplitImagesConfig


class SplitImagesArgs(SceneArgs):
    """Arguments of ``benchmark.experiments.split_images``."""

    split_size: int = Field(
        9000,
        gt=0,
        description="The window side: PREPROCESS cuts each scene into windows of at most this "
        "many of its pixels a side (the original benchmark's name and 9000).",
    )


@one_line_errors()
def get_config(runner: str, **kwargs: Any) -> SplitImagesConfig:
    """Build the PREPROCESS config from ``-a`` arguments (see :class:`SplitImagesArgs`).

    Args:
        runner: RV runner name (unused: the same config serves every runner).
        **kwargs: the ``-a`` arguments: ``root_uri`` (required), ``train_stac_uri``,
            ``train_ids``, ``valid_ids``, ``split_dir``, ``split_size``, ``gsd``.
    """
    args = parse_args(SplitImagesArgs, kwargs)
    make_output_root(args.root_uri)
    # Validation scenes are cut too: the benchmark predicts and evaluates on their windows.
    (scenes,) = args.read_scenes(list(dict.fromkeys(args.train_ids + args.valid_ids)))
    return SplitImagesConfig(
        root_uri=args.root_uri,
        scenes=[SceneSourceConfig.from_ref(s) for s in scenes],
        split_dir=args.get_split_dir(),
        split_size=args.split_size,
        gsd=args.gsd,
    )
