"""Scene prediction: the grid, no-data, strips, blending, resume, and windows at a GSD."""

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.enums import Compression
from rasterio.windows import Window

import benchmark.inference.scenes as scenes_module
from benchmark.data.scene_windows import cut_scene_into_windows
from benchmark.data.stac import SceneRef
from benchmark.inference.execution import InferenceOptions
from benchmark.inference.forward import quantize
from benchmark.inference.scenes import predict_resampled_window, predict_scene
from tests.fixtures.models import FP32, conv_model, pointwise_model, whole_forward
from tests.fixtures.rasters import TRANSFORM, read_band, rgba, smooth_rgba, write_raster

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")


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
        predict_scene(model, uri, str(out), FP32, window=64)
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
            predict_scene(model, uri, str(out), FP32, window=64, overlap=overlap)
            errors[overlap] = np.abs(read_band(out).astype(int) - whole).max()
        assert errors[0] > 10  # window edges (zero padding) show without blending
        assert errors[32] <= 2

    def test_small_scene_one_window_and_tta(self, tmp_path):
        data = rgba(40, 70, seed=6, notch=False)
        uri = write_raster(tmp_path / "small.tif", data)
        model = pointwise_model()
        out = tmp_path / "small_pred.tif"
        options = InferenceOptions(device="cpu", execution="fp32", tta=True)
        predict_scene(model, uri, str(out), options, window=1024)
        expected = quantize(whole_forward(model, data[:3]))
        assert np.abs(read_band(out).astype(int) - expected).max() <= 1

    def test_existing_output_is_kept_unless_overwrite(self, tmp_path, scene, caplog):
        uri, _ = scene
        out = tmp_path / "p.tif"
        predict_scene(pointwise_model(), uri, str(out), FP32, window=64)
        mtime = out.stat().st_mtime_ns
        caplog.set_level("INFO", logger="benchmark.inference.scenes")
        predict_scene(pointwise_model(), uri, str(out), FP32, window=64)
        assert out.stat().st_mtime_ns == mtime
        assert "exists: skipped" in caplog.text
        predict_scene(pointwise_model(), uri, str(out), FP32, window=64, overwrite=True)
        assert out.stat().st_mtime_ns != mtime

    def test_failed_read_leaves_no_output(self, tmp_path, monkeypatch):
        uri = write_raster(tmp_path / "s.tif", rgba(100, 100))

        def broken_read(*args, **kwargs):
            raise OSError("disk on fire")

        monkeypatch.setattr(scenes_module, "_read_padded", broken_read)
        with pytest.raises(OSError, match="disk on fire"):
            predict_scene(pointwise_model(), uri, str(tmp_path / "out.tif"), FP32, window=64)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["s.tif"]


class TestPredictResampledWindow:
    @pytest.mark.parametrize("gsd", [0.1, 0.05])  # the scene is at 7.5 cm
    def test_prediction_at_the_gsd_comes_back_on_the_window_grid(self, tmp_path, gsd):
        data = smooth_rgba(150, 200)
        scene_uri = write_raster(tmp_path / "scene.tif", data)
        labels = tmp_path / "labels.geojson"
        labels.write_text('{"type": "FeatureCollection", "features": []}')
        split = cut_scene_into_windows(
            SceneRef("kam", "s1", scene_uri, str(labels)), str(tmp_path / "split"), 100, gsd=gsd
        )
        model = pointwise_model()
        native = quantize(whole_forward(model, data[:3])).astype(int) * (data[3] == 255)
        far_from_no_data = np.ones(native.shape, dtype=bool)
        far_from_no_data[:78, :103] = False  # where resampling mixes no-data into imagery
        for i, w in enumerate(split.windows):
            window = Window(w.col_off, w.row_off, w.width, w.height)
            out = tmp_path / "pred" / f"{i}.tif"
            predict_resampled_window(model, w.uri, scene_uri, window, str(out), FP32, window=64)
            with rasterio.open(out) as prob_src, rasterio.open(scene_uri) as scene_src:
                assert prob_src.shape == (w.height, w.width)
                assert prob_src.transform.almost_equals(scene_src.window_transform(window), 1e-9)
                assert prob_src.crs == scene_src.crs and prob_src.dtypes[0] == "uint8"
                prob = prob_src.read(1).astype(int)
            rows, cols = window.toslices()
            assert not prob[data[3, rows, cols] == 0].any()  # the scene's own no-data
            far = far_from_no_data[rows, cols]
            assert np.abs(prob - native[rows, cols])[far].max() <= 8

    def test_existing_output_is_kept(self, tmp_path, scene, caplog):
        uri, _ = scene
        out = tmp_path / "p.tif"
        out.write_bytes(b"done before")
        caplog.set_level("INFO", logger="benchmark.inference.scenes")
        predict_resampled_window(pointwise_model(), uri, uri, Window(0, 0, 200, 150), str(out))
        assert out.read_bytes() == b"done before" and "exists: skipped" in caplog.text
