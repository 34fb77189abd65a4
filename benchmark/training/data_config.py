"""Raster Vision config for the training chips: RV's, with augmentation that follows the seed.

The plots the learner writes (``dataloaders/*.png`` before training, ``valid_preds.png`` after)
stretch each band to 0-1 first. RV's default plot transform, its ``MinMaxNormalize``, no longer
does: under albumentations 2 its constructor's ``super().__init__(always_apply, p)`` sets
``p=always_apply=False``, so it never applies (``docs/rastervision-pins.md``). Albumentations'
own per-band min-max ``Normalize`` does the same stretch, and saved in the config it keeps
``p=1.0`` when read back. Set here, not on RV's class: other pipelines are left as they are.
"""

import albumentations as A
from rastervision.pipeline.config import Field, register_config
from rastervision.pytorch_learner import PlotOptions, SemanticSegmentationImageDataConfig

from benchmark import PLUGIN
from benchmark.training.augmentation import ProcessSeededTransform

# Each band of a plotted chip stretched to 0-1, as RV's MinMaxNormalize meant to.
PLOT_TRANSFORM = A.to_dict(A.Normalize(normalization="min_max_per_channel", p=1.0))


@register_config("benchmark_image_data", plugin=PLUGIN)
class BenchmarkImageDataConfig(SemanticSegmentationImageDataConfig):
    """RV's chip data, its training augmentation seeded (RV's own draws a new seed each run)."""

    seed: int | None = Field(
        None,
        description="The run's seed: the training augmentation follows torch's seed, which "
        "the pipeline sets from it (see ProcessSeededTransform); None: a new seed each run.",
    )
    plot_options: PlotOptions | None = Field(
        default_factory=lambda: PlotOptions(transform=PLOT_TRANSFORM),
        description="Options to control plotting; RV's, with a plot transform that applies.",
    )

    def get_data_transforms(self) -> tuple[A.BasicTransform, A.BasicTransform]:
        """RV's (validation, training) transforms, the training one seeded."""
        base_transform, aug_transform = super().get_data_transforms()
        if self.seed is None:
            return base_transform, aug_transform
        return base_transform, ProcessSeededTransform(aug_transform)
