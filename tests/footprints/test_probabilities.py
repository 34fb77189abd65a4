"""Probabilities on the image's grid, the model shown the image at its GSD through a VRT."""

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from benchmark.data.gsd import read_bands
from benchmark.errors import InputError
from benchmark.footprints.probabilities import (
    ImageGrid,
    predict_on_image_grid,
    resampled_vrt,
    write_cog,
)
from benchmark.inference.gsd_round_trip import predict_resampled_window
from benchmark.inference.settings import PredictionSettings
from benchmark.networks.targets import INSTANCE_BANDS
from tests.fixtures.models import FP32, conv_model, pointwise_instance_model, pointwise_model
from tests.fixtures.rasters import write_raster


class TestImageGrid:
    def test_at_the_gsd_already_it_is_left_alone(self, make_scene):
        grid = ImageGrid.of(make_scene("s"))
        assert grid.size_at(0.1) is None
        assert grid.size_at(None) is None
        assert grid.size_at(0.3) == (133, 100)

    def test_no_georeferencing_points_to_chip_prediction(self, tmp_path):
        chip = write_raster(tmp_path / "chip.tif", np.zeros((3, 8, 8), np.uint8), crs=None)
        with pytest.raises(InputError, match=r"chip\.tif: not georeferenced.*--chip-gsd"):
            ImageGrid.of(chip)


class TestResampledVrt:
    @pytest.mark.parametrize("grid", ["utm", "lonlat"])
    def test_reads_what_preprocess_reads(self, make_scene, tmp_path, grid):
        uri = make_scene("s", grid)
        vrt = tmp_path / "s.vrt"
        vrt.write_text(resampled_vrt(uri, 133, 100))
        with rasterio.open(vrt) as at_gsd, rasterio.open(uri) as src:
            assert at_gsd.crs == src.crs
            assert at_gsd.bounds == pytest.approx(src.bounds)
            expected = read_bands(src, Window(0, 0, src.width, src.height), (100, 133))
            np.testing.assert_array_equal(at_gsd.read(), expected)
            part = at_gsd.read(window=Window(40, 30, 50, 40))  # windows resample on the fly
            np.testing.assert_array_equal(part, expected[:, 30:70, 40:90])


class TestPredictOnImageGrid:
    @pytest.mark.parametrize("gsd", [None, 0.3])
    def test_output_is_on_the_input_grid_and_off_imagery_is_zero(self, make_scene, tmp_path, gsd):
        uri = make_scene("s", "webmercator", alpha_off=(0, 0, 40, 40))
        out = str(tmp_path / "prob.tif")
        settings = PredictionSettings(FP32, window=64, overlap=16, gsd=gsd)
        predict_on_image_grid(pointwise_model(), uri, out, settings)
        with rasterio.open(out) as prob, rasterio.open(uri) as src:
            assert (prob.crs, prob.transform, prob.shape) == (src.crs, src.transform, src.shape)
            p = prob.read(1)
        assert (p[:40, :40] == 0).all()
        assert p[60:120, 70:190].min() > 200  # inside the first building
        assert p[150:190, 20:200].max() < 30  # ground

    def test_at_a_gsd_it_is_the_pipelines_round_trip_of_the_vrt(self, make_scene, tmp_path):
        """One way there and back: the raster the pipeline's windows get from the same view."""
        uri = make_scene("s", alpha_off=(0, 0, 40, 40))
        settings = PredictionSettings(FP32, window=64, overlap=16, gsd=0.3)
        out, expected = tmp_path / "prob.tif", tmp_path / "expected.tif"
        predict_on_image_grid(conv_model(), uri, str(out), settings)

        vrt = tmp_path / "s.vrt"
        vrt.write_text(resampled_vrt(uri, *ImageGrid.of(uri).size_at(0.3)))
        full = Window(0, 0, 400, 300)
        predict_resampled_window(conv_model(), str(vrt), uri, full, str(expected), settings)
        with rasterio.open(out) as got, rasterio.open(expected) as want:
            assert (got.transform, got.shape) == (want.transform, want.shape)
            np.testing.assert_array_equal(got.read(1), want.read(1))


class TestInstanceProbabilities:
    """An instance model's raster and COG: P(body), P(border), P(contact); band 1 unchanged."""

    @pytest.mark.parametrize("gsd", [None, 0.3])
    def test_the_cog_has_three_bands_band_one_the_binary_models(self, make_scene, tmp_path, gsd):
        uri = make_scene("s", alpha_off=(0, 0, 40, 40))
        binary = PredictionSettings(FP32, window=64, overlap=16, gsd=gsd)
        instance = PredictionSettings(FP32, window=64, overlap=16, gsd=gsd, target="instance")
        predict_on_image_grid(pointwise_model(), uri, str(tmp_path / "binary.tif"), binary)
        predict_on_image_grid(
            pointwise_instance_model(), uri, str(tmp_path / "instance.tif"), instance
        )
        write_cog(str(tmp_path / "instance.tif"), str(tmp_path / "cog.tif"))
        with rasterio.open(tmp_path / "cog.tif") as cog, rasterio.open(uri) as src:
            assert cog.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
            assert (cog.count, cog.transform, cog.shape) == (3, src.transform, src.shape)
            assert cog.descriptions == INSTANCE_BANDS
            probs = cog.read()
        with rasterio.open(tmp_path / "binary.tif") as src:
            np.testing.assert_array_equal(probs[0], src.read(1))
        with rasterio.open(tmp_path / "instance.tif") as src:
            np.testing.assert_array_equal(probs, src.read())  # every band published
        assert (probs[:, :40, :40] == 0).all()
        assert (probs[1] != probs[0]).any()  # border is its own band
