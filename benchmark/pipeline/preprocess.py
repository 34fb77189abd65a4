"""The PREPROCESS command: cut the selected training/validation scenes into windows.

The real Open Cities scenes reach tens of thousands of pixels a side, more than a 6 GB worker
can chip in memory. PREPROCESS cuts each into windows of at most ``split_size`` pixels (see
:mod:`benchmark.data.scene_windows`), one scene per work item, so ``-s N`` spreads the scenes
over N of Raster Vision's splits (parallel jobs). It is resumable: finished scenes and windows
are skipped.
"""

import logging

from rastervision.pipeline.pipeline import Pipeline

from benchmark.data import layout
from benchmark.data.scene_windows import cut_scene_into_windows
from benchmark.pipeline.preprocess_config import SplitImagesConfig
from benchmark.pipeline.work_split import share_of_work

log = logging.getLogger(__name__)


class SplitImages(Pipeline):
    """Pipeline with the single, splittable command ``PREPROCESS``."""

    commands = ["PREPROCESS"]
    split_commands = ["PREPROCESS"]
    gpu_commands: list[str] = []
    config: SplitImagesConfig

    def PREPROCESS(self, split_ind: int = 0, num_splits: int = 1) -> None:
        """Cut this split's share of the scenes into windows."""
        cfg = self.config
        scenes = share_of_work(cfg.scenes, split_ind, num_splits)
        log.info("PREPROCESS split %d/%d: %s", split_ind + 1, num_splits, [s.key for s in scenes])
        for scene in scenes:
            out_dir = layout.scene_windows_dir(cfg.split_dir, scene.area, scene.id)
            cut_scene_into_windows(scene.to_ref(), out_dir, split_size=cfg.split_size, gsd=cfg.gsd)
