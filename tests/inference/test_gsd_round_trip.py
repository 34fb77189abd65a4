"""The GSD round trip: a view at the model's GSD predicted, brought back onto its window's grid."""

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window

import benchmark.inference.gsd_round_trip as round_trip_module
from benchmark.data.imagery import read_valid_mask
from benchmark.data.scene_windows import cut_scene_into_windows
from benchmark.data.stac import SceneRef
from benchmark.inference.forward import quantize
from benchmark.inference.gsd_round_trip import predict_resampled_window
from benchmark.inference.scenes import predict_scene
from benchmark.inference.settings import PredictionSettings
from benchmark.networks.targets import INSTANCE_BANDS
from tests.fixtures.models import (
    FP32,
    conv_model,
    instance_model,
    pointwise_model,
    whole_forward,
)
from tests.fixtures.rasters import rgba, smooth_rgba, write_raster

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")

IN_64 = PredictionSettings(FP32, window=64, overlap=16)


@pytest.fixture
def resampled_windows(tmp_path):
    """``split(gsd)``: a smooth 150 x 200 scene at 7.5 cm cut into 100 px windows at ``gsd``."""
    data = smooth_rgba(150, 200)
    scene_uri = write_raster(tmp_path / "scene.tif", data)
    labels = tmp_path / "labels.geojson"
    labels.write_text('{"type": "FeatureCollection", "features": []}')

    def split(gsd: float):
        scene = SceneRef("kam", "s1", scene_uri, str(labels))
        return cut_scene_into_windows(scene, str(tmp_path / f"split{gsd}"), 100, gsd=gsd)

    return scene_uri, data, split


def _window(w) -> Window:
    return Window(w.col_off, w.row_off, w.width, w.height)


@pytest.mark.parametrize("gsd", [0.1, 0.05])  # the scene is at 7.5 cm
def test_prediction_at_the_gsd_comes_back_on_the_window_grid(tmp_path, resampled_windows, gsd):
    scene_uri, data, split = resampled_windows
    model = pointwise_model()
    native = quantize(whole_forward(model, data[:3])).astype(int) * (data[3] == 255)
    far_from_no_data = np.ones(native.shape, dtype=bool)
    far_from_no_data[:78, :103] = False  # where resampling mixes no-data into imagery
    for i, w in enumerate(split(gsd).windows):
        window = _window(w)
        out = tmp_path / "pred" / f"{i}.tif"
        predict_resampled_window(model, w.uri, scene_uri, window, str(out), IN_64)
        with rasterio.open(out) as prob_src, rasterio.open(scene_uri) as scene_src:
            assert prob_src.shape == (w.height, w.width)
            assert prob_src.transform.almost_equals(scene_src.window_transform(window), 1e-9)
            assert prob_src.crs == scene_src.crs and prob_src.dtypes[0] == "uint8"
            prob = prob_src.read(1).astype(int)
        rows, cols = window.toslices()
        assert not prob[data[3, rows, cols] == 0].any()  # the scene's own no-data
        far = far_from_no_data[rows, cols]
        assert np.abs(prob - native[rows, cols])[far].max() <= 8


@pytest.mark.parametrize("gsd", [0.1, 0.05])  # shrinking and enlarging: scale != 1
def test_block_by_block_is_the_whole_window_resampled_at_once(
    tmp_path, resampled_windows, monkeypatch, gsd
):
    """What the pipeline and footprints wrote before the round trip was one: the same raster.

    Their old paths both predicted the view at the GSD, then resampled it bilinearly onto the
    window (0 off the scene's imagery); small blocks here must give that raster exactly.
    """
    monkeypatch.setattr(round_trip_module, "RESAMPLE_BLOCK", 24)
    scene_uri, _, split = resampled_windows
    w = split(gsd).windows[0]
    window = _window(w)
    out, at_gsd = tmp_path / "round_trip.tif", tmp_path / "at_gsd.tif"
    predict_resampled_window(conv_model(), w.uri, scene_uri, window, str(out), IN_64)

    predict_scene(conv_model(), w.uri, str(at_gsd), IN_64)
    with rasterio.open(at_gsd) as src, rasterio.open(scene_uri) as scene:
        shape = (int(window.height), int(window.width))
        whole = src.read(1, out_shape=shape, resampling=Resampling.bilinear)
        expected = whole * read_valid_mask(scene, window)
    with rasterio.open(out) as src:
        np.testing.assert_array_equal(src.read(1), expected)


def test_existing_output_is_kept(tmp_path, caplog):
    uri = write_raster(tmp_path / "scene.tif", rgba(150, 200, seed=5))
    out = tmp_path / "p.tif"
    out.write_bytes(b"done before")
    caplog.set_level("INFO", logger="benchmark.inference.scenes")
    predict_resampled_window(pointwise_model(), uri, uri, Window(0, 0, 200, 150), str(out))
    assert out.read_bytes() == b"done before" and "exists: skipped" in caplog.text


def test_an_instance_models_bands_all_come_back(tmp_path, resampled_windows):
    """Each band resampled as a binary model's only one is: body, border, contact alike."""
    scene_uri, _, split = resampled_windows
    w = split(0.1).windows[0]
    window = _window(w)
    out, at_gsd = tmp_path / "round_trip.tif", tmp_path / "at_gsd.tif"
    instance = PredictionSettings(FP32, window=64, overlap=16, target="instance")
    predict_resampled_window(instance_model(5), w.uri, scene_uri, window, str(out), instance)
    predict_scene(instance_model(5), w.uri, str(at_gsd), instance)
    with rasterio.open(at_gsd) as src, rasterio.open(scene_uri) as scene:
        shape = (3, int(window.height), int(window.width))
        whole = src.read(out_shape=shape, resampling=Resampling.bilinear)
        expected = whole * read_valid_mask(scene, window)
    with rasterio.open(out) as src:
        assert src.descriptions == INSTANCE_BANDS
        np.testing.assert_array_equal(src.read(), expected)
