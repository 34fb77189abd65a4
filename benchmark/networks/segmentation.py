"""Segmentation networks for the benchmark.

Raster Vision's own semantic segmentation model is DeepLabv3 on ResNet-50/101, too heavy to
train on a laptop CPU; the original benchmark used a ResNet-18 backbone. We build U-Net / FPN
models from ``segmentation-models-pytorch`` instead, wrapped so that any input size works
(their encoders need sides divisible by 32, while the benchmark's chips are 300 px).
"""

import logging

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.errors import InputError

log = logging.getLogger(__name__)

ARCHITECTURES = ("unet", "fpn")
# The last two are light: mobilenet_v2 for slow laptops, and tu-mobilenetv3_small_050 (2.2 M
# parameters with its U-Net, a 9 MB model file against resnet18's 56 MB) for smoke runs and tests.
ENCODERS = (
    "resnet18",
    "resnet34",
    "resnet50",
    "efficientnet-b0",
    "efficientnet-b3",
    "mobilenet_v2",
    "tu-mobilenetv3_small_050",
)
# Output stride of every encoder above: input sides must be multiples of this.
ENCODER_STRIDE = 32


class PadToMultiple(nn.Module):
    """Pad the input to a multiple of the encoder stride and crop the output back.

    Reflection padding keeps the border statistics close to the image, so predictions at
    the edges of a 300 px chip are not dragged towards the background.
    """

    def __init__(self, model: nn.Module, multiple: int = ENCODER_STRIDE) -> None:
        super().__init__()
        self.model = model
        self.multiple = multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        height, width = x.shape[-2:]
        pad_h = (self.multiple - height % self.multiple) % self.multiple
        pad_w = (self.multiple - width % self.multiple) % self.multiple
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        out = self.model(x)
        return out[..., :height, :width]


def build_segmentation_model(
    arch: str = "unet",
    encoder: str = "resnet18",
    num_classes: int = 2,
    in_channels: int = 3,
    pretrained: bool = True,
) -> nn.Module:
    """Build a ``arch`` network on ``encoder`` that returns logits ``[B, num_classes, H, W]``.

    Args:
        arch: ``unet`` or ``fpn``.
        encoder: one of :data:`ENCODERS`.
        num_classes: number of output channels.
        in_channels: number of input bands.
        pretrained: start the encoder from ImageNet weights (downloaded on first use, so
            this needs internet; pass ``False`` offline).
    """
    import segmentation_models_pytorch as smp

    if arch not in ARCHITECTURES:
        raise InputError(f"unknown model architecture {arch!r}: choose one of {ARCHITECTURES}")
    if encoder not in ENCODERS:
        raise InputError(f"unknown encoder {encoder!r}: choose one of {ENCODERS}")
    factory = {"unet": smp.Unet, "fpn": smp.FPN}[arch]
    weights = "imagenet" if pretrained else None
    try:
        model = factory(
            encoder_name=encoder,
            encoder_weights=weights,
            in_channels=in_channels,
            classes=num_classes,
        )
    except Exception as exc:  # the hub download fails in many ways when offline
        if not pretrained:
            raise
        raise InputError(
            f"could not load pretrained {encoder} weights ({exc.__class__.__name__}: {exc}); "
            "offline, pass -a pretrained false"
        ) from exc
    log.info("Built %s-%s (pretrained=%s)", arch, encoder, pretrained)
    return PadToMultiple(model)
