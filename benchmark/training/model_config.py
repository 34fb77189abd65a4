"""Raster Vision configs of the model and loss (networks: networks/segmentation.py; losses.py)."""

from rastervision.pipeline.config import Field, register_config
from rastervision.pytorch_learner import SemanticSegmentationModelConfig, SolverConfig
from torch import nn

from benchmark import PLUGIN
from benchmark.networks.segmentation import build_segmentation_model
from benchmark.training.losses import build_loss, parse_loss_spec


@register_config("benchmark_model", plugin=PLUGIN)
class BenchmarkModelConfig(SemanticSegmentationModelConfig):
    """A U-Net or FPN on a light encoder (the original benchmark used ResNet-18).

    The inherited ``backbone`` field (DeepLab's) is unused; ``pretrained`` downloads ImageNet
    encoder weights on first use.
    """

    arch: str = Field("unet", description="Decoder architecture: unet or fpn.")
    encoder: str = Field(
        "resnet18",
        description=(
            "Encoder: resnet18, resnet34, resnet50, efficientnet-b0, efficientnet-b3, "
            "mobilenet_v2 or tu-mobilenetv3_small_050 (the smallest)."
        ),
    )

    def build_default_model(self, num_classes: int, in_channels: int) -> nn.Module:
        """Build the network (RV calls this when training and when loading a bundle)."""
        return build_segmentation_model(
            self.arch, self.encoder, num_classes, in_channels, pretrained=self.pretrained
        )


@register_config("benchmark_solver", plugin=PLUGIN)
class BenchmarkSolverConfig(SolverConfig):
    """RV's solver with a choice of loss (RV's own is cross-entropy only) and weight averaging."""

    loss: str = Field(
        "ce",
        description="Loss spec: ce, dice, lovasz or a weighted sum such as ce:0.5+dice:0.5.",
    )
    ema_decay: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="Keep an exponential moving average of the weights, updated after every "
        "step with this decay (0.99: about the last 100 steps), and validate and bundle it in "
        "place of the last weights. None: off.",
    )

    def validate_config(self) -> None:
        """Reject unknown loss names when the config is built, not hours later."""
        super().validate_config()
        parse_loss_spec(self.loss)

    def build_loss(self, num_classes: int, save_dir=None, hubconf_dir=None) -> nn.Module:
        """Build the configured loss (the external-loss options of RV are not supported)."""
        return build_loss(self.loss)
