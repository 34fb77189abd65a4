"""Prediction settings: the windows they refuse, the scene window, the resize for the model."""

import pytest

from benchmark.errors import InputError
from benchmark.inference.settings import SCENE_WINDOW, PredictionSettings


def test_windows_blending_cannot_take_are_refused():
    with pytest.raises(ValueError, match="window 0 must be positive"):
        PredictionSettings(window=0)
    with pytest.raises(ValueError, match="overlap -1 must not be negative"):
        PredictionSettings(overlap=-1)


def test_scenes_take_the_default_window_where_chips_run_whole():
    assert PredictionSettings().scene_window == SCENE_WINDOW
    assert PredictionSettings(window=256).scene_window == 256


@pytest.mark.parametrize(
    ("model_gsd", "image_gsd", "scale"), [(0.1, 0.075, 0.75), (None, 0.075, 1.0), (0.1, None, 1.0)]
)
def test_images_are_resized_to_the_models_gsd_when_both_are_known(model_gsd, image_gsd, scale):
    assert PredictionSettings(gsd=model_gsd).input_scale(image_gsd) == pytest.approx(scale)


def test_scene_rasters_have_the_targets_bands():
    assert PredictionSettings().bands == 1
    assert PredictionSettings(target="instance").bands == 3
    with pytest.raises(
        InputError, match="model target 'panoptic', expected one of binary, instance"
    ):
        PredictionSettings(target="panoptic")  # type: ignore[arg-type]
