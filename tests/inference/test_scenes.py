"""Scene prediction: the grid, no-data, strips, blending, resume (at a GSD: test_gsd_round_trip)."""

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.enums import Compression

import benchmark.inference.scenes as scenes_module
from benchmark.inference.execution import InferenceOptions
from benchmark.inference.forward import quantize
from benchmark.inference.scenes import predict_scene
from benchmark.inference.settings import PredictionSettings
from benchmark.networks.targets import INSTANCE_BANDS
from tests.fixtures.models import (
    FP32,
    conv_model,
    instance_model,
    pointwise_instance_model,
    pointwise_model,
    whole_forward,
    whole_instance_forward,
)
from tests.fixtures.rasters import TRANSFORM, read_band, rgba, write_raster

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")

IN_64 = PredictionSettings(FP32, window=64)  # 64 px windows: a 150 x 200 scene takes several


@pytest.fixture
def scene(tmp_path: Path) -> tuple[str, np.ndarray]:
    """A 150 x 200 px georeferenced RGBA scene, alpha 0 in its top-left quarter."""
    data = rgba(150, 200, seed=5)
    return write_raster(tmp_path / "scene.tif", data), data


class TestPredictScene:
    @pytest.mark.parametrize("write_columns", [None, 48])  # 48: blocks end mid-scene
    def test_copies_the_grid_masks_no_data_and_tiles_exactly(
        self, tmp_path, scene, monkeypatch, write_columns
    ):
        if write_columns:
            monkeypatch.setattr(scenes_module, "WRITE_COLUMNS", write_columns)
        uri, data = scene
        model = pointwise_model()
        out = tmp_path / "pred" / "scene.tif"
        predict_scene(model, uri, str(out), IN_64)
        with rasterio.open(out) as src:
            assert (src.count, src.dtypes[0], src.shape) == (1, "uint8", (150, 200))
            assert src.crs.to_epsg() == 32636
            assert src.transform == TRANSFORM
            assert src.compression == Compression.deflate
            assert src.block_shapes == [(256, 256)]
            prob = src.read(1)
        expected = quantize(whole_forward(model, data[:3])) * (data[3] == 255)
        assert np.abs(prob.astype(int) - expected).max() <= 1
        assert not prob[:75, :100].any()

    def test_overlap_blending_leaves_no_seams(self, tmp_path, scene):
        uri, data = scene
        model = conv_model()
        whole = quantize(whole_forward(model, data[:3])).astype(int) * (data[3] == 255)
        errors = {}
        for overlap in (0, 32):
            out = tmp_path / f"o{overlap}.tif"
            predict_scene(model, uri, str(out), PredictionSettings(FP32, 64, overlap))
            errors[overlap] = np.abs(read_band(out).astype(int) - whole).max()
        assert errors[0] > 10  # window edges (zero padding) show without blending
        assert errors[32] <= 2

    def test_small_scene_one_window_and_tta(self, tmp_path):
        data = rgba(40, 70, seed=6, notch=False)
        uri = write_raster(tmp_path / "small.tif", data)
        model = pointwise_model()
        out = tmp_path / "small_pred.tif"
        options = InferenceOptions(device="cpu", execution="fp32", tta=True)
        predict_scene(model, uri, str(out), PredictionSettings(options))
        expected = quantize(whole_forward(model, data[:3]))
        assert np.abs(read_band(out).astype(int) - expected).max() <= 1

    def test_existing_output_is_kept_unless_overwrite(self, tmp_path, scene, caplog):
        uri, _ = scene
        out = tmp_path / "p.tif"
        predict_scene(pointwise_model(), uri, str(out), IN_64)
        mtime = out.stat().st_mtime_ns
        caplog.set_level("INFO", logger="benchmark.inference.scenes")
        predict_scene(pointwise_model(), uri, str(out), IN_64)
        assert out.stat().st_mtime_ns == mtime
        assert "exists: skipped" in caplog.text
        predict_scene(pointwise_model(), uri, str(out), IN_64, overwrite=True)
        assert out.stat().st_mtime_ns != mtime

    def test_failed_read_leaves_no_output(self, tmp_path, monkeypatch):
        uri = write_raster(tmp_path / "s.tif", rgba(100, 100))

        def broken_read(*args, **kwargs):
            raise OSError("disk on fire")

        monkeypatch.setattr(scenes_module, "_read_padded", broken_read)
        with pytest.raises(OSError, match="disk on fire"):
            predict_scene(pointwise_model(), uri, str(tmp_path / "out.tif"), IN_64)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["s.tif"]


class TestInstanceScene:
    """An instance model's scene raster: body, border and contact; band 1 as a binary model's."""

    def test_three_bands_body_as_the_binary_models(self, tmp_path, scene):
        uri, data = scene
        model = pointwise_instance_model()
        out = tmp_path / "instance.tif"
        predict_scene(model, uri, str(out), PredictionSettings(FP32, 64, target="instance"))
        with rasterio.open(out) as src:
            assert (src.count, src.dtypes, src.shape) == (3, ("uint8",) * 3, (150, 200))
            assert src.descriptions == INSTANCE_BANDS
            assert src.block_shapes == [(256, 256)] * 3
            assert "red" not in {interp.name for interp in src.colorinterp}  # not an RGB image
            probs = src.read()
        valid = data[3] == 255
        expected = quantize(whole_instance_forward(model, data[:3])) * valid
        assert np.abs(probs.astype(int) - expected).max() <= 1
        binary = tmp_path / "binary.tif"
        predict_scene(pointwise_model(), uri, str(binary), IN_64)
        np.testing.assert_array_equal(probs[0], read_band(binary))

    def test_every_band_is_blended_without_seams(self, tmp_path, scene):
        uri, data = scene
        model = instance_model(5)
        whole = quantize(whole_instance_forward(model, data[:3])).astype(int) * (data[3] == 255)
        out = tmp_path / "blended.tif"
        settings = PredictionSettings(FP32, 64, overlap=32, target="instance")
        predict_scene(model, uri, str(out), settings)
        with rasterio.open(out) as src:
            assert np.abs(src.read().astype(int) - whole).max() <= 2

    def test_a_binary_prediction_of_an_instance_model_is_its_body(self, tmp_path, scene):
        uri, _ = scene
        body, binary = tmp_path / "body.tif", tmp_path / "binary.tif"
        predict_scene(pointwise_instance_model(), uri, str(body), IN_64)
        predict_scene(pointwise_model(), uri, str(binary), IN_64)
        assert body.read_bytes() == binary.read_bytes()

    def test_an_instance_prediction_of_a_binary_model_is_refused(self, tmp_path, scene):
        uri, _ = scene
        settings = PredictionSettings(FP32, 64, target="instance")
        with pytest.raises(ValueError, match="not an instance model"):
            predict_scene(pointwise_model(), uri, str(tmp_path / "out.tif"), settings)
        assert not (tmp_path / "out.tif").exists()
