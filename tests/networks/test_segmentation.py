import pytest
import torch

from benchmark.errors import InputError
from benchmark.networks.segmentation import ENCODERS, build_segmentation_model


@pytest.mark.parametrize("arch", ["unet", "fpn"])
def test_any_input_size_gives_logits_of_the_same_size(arch):
    model = build_segmentation_model(arch, "resnet18", pretrained=False).eval()
    with torch.inference_mode():
        out = model(torch.rand(2, 3, 70, 45))  # the original's 300 px chips are not /32 either
    assert out.shape == (2, 2, 70, 45)


@pytest.mark.parametrize("encoder", ENCODERS)
def test_every_listed_encoder_builds(encoder):
    assert build_segmentation_model("unet", encoder, pretrained=False) is not None


def test_unknown_names_are_input_errors():
    with pytest.raises(InputError, match="architecture 'deeplab'"):
        build_segmentation_model("deeplab", pretrained=False)
    with pytest.raises(InputError, match="encoder 'resnet9'"):
        build_segmentation_model("unet", "resnet9", pretrained=False)


def test_offline_pretrained_weights_give_a_clear_error(monkeypatch):
    import segmentation_models_pytorch as smp

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(smp, "Unet", offline)
    with pytest.raises(InputError, match="pretrained false"):
        build_segmentation_model("unet", "resnet18", pretrained=True)
