"""Raster Vision configs of the model and loss (networks: networks/segmentation.py; losses.py)."""

from rastervision.pipeline.config import Field, register_config
from rastervision.pytorch_learner import SemanticSegmentationModelConfig, SolverConfig
from torch import nn

from benchmark import PLUGIN
from benchmark.errors import InputError
from benchmark.networks.segmentation import build_segmentation_model
from benchmark.networks.targets import Target, output_channels
from benchmark.training.losses import (
    CHANNEL_WEIGHTS,
    build_loss,
    check_channel_weights,
    parse_loss_spec,
)


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
    target: Target = Field(
        "binary",
        description="What the network is trained to output: binary, buildings (2 logits); "
        "instance, also each building's border and the contact between buildings (4 logits, "
        "benchmark.networks.targets), so touching buildings can be told apart. Configs saved "
        "before it are binary.",
    )

    def build_default_model(self, num_classes: int, in_channels: int) -> nn.Module:
        """Build the network (RV calls this when training and when loading a bundle).

        ``num_classes`` is RV's, the label classes (2): the outputs are the ``target``'s. An
        instance target's labels are building or not too (their border and contact bits are
        its own), so any other ``num_classes`` is refused rather than silently dropped.
        """
        channels = num_classes if self.target == "binary" else output_channels(self.target)
        if self.target == "instance" and num_classes != 2:
            raise InputError(
                f"an instance model's labels are background and building: {num_classes} "
                "classes given"
            )
        return build_segmentation_model(
            self.arch, self.encoder, channels, in_channels, pretrained=self.pretrained
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

    channel_weights: tuple[float, float, float] = Field(
        CHANNEL_WEIGHTS,
        description="Instance target: loss weights of body, border and contact (the SpaceNet 6 "
        "winners': about 1, 0.25, 0.1); the body's loss is the loss spec, the others BCE.",
    )

    def validate_config(self) -> None:
        """Reject unknown loss names and unusable weights when the config is built."""
        super().validate_config()
        parse_loss_spec(self.loss)
        check_channel_weights(self.channel_weights)

    def build_loss(
        self, num_classes: int, save_dir=None, hubconf_dir=None, target: Target = "binary"
    ) -> nn.Module:
        """Build the configured loss for the model's ``target`` (RV's external losses: no)."""
        return build_loss(self.loss, target, self.channel_weights)
