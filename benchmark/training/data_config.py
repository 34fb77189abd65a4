"""Raster Vision config for the training chips: RV's, with augmentation that follows the seed."""

import albumentations as A
from rastervision.pipeline.config import Field, register_config
from rastervision.pytorch_learner import SemanticSegmentationImageDataConfig

from benchmark import PLUGIN
from benchmark.training.augmentation import ProcessSeededTransform


@register_config("benchmark_image_data", plugin=PLUGIN)
class BenchmarkImageDataConfig(SemanticSegmentationImageDataConfig):
    """RV's chip data, its training augmentation seeded (RV's own draws a new seed each run)."""

    seed: int | None = Field(
        None,
        description="The run's seed: the training augmentation follows torch's seed, which "
        "the pipeline sets from it (see ProcessSeededTransform); None: a new seed each run.",
    )

    def get_data_transforms(self) -> tuple[A.BasicTransform, A.BasicTransform]:
        """RV's (validation, training) transforms, the training one seeded."""
        base_transform, aug_transform = super().get_data_transforms()
        if self.seed is None:
            return base_transform, aug_transform
        return base_transform, ProcessSeededTransform(aug_transform)
