"""Checked scene opening and valid-pixel masks, on tiny generated GeoTIFFs."""

import numpy as np
import pytest
import rasterio
from rasterio.enums import ColorInterp
from rasterio.windows import Window

from benchmark.data.imagery import (
    alpha_band,
    open_scene_checked,
    read_rgb,
    read_rgb_and_valid,
    read_valid_mask,
)
from benchmark.errors import InputError
from tests.fixtures.rasters import write_scene

CRS = "EPSG:32636"


def random_pixels(bands: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Seeded uint8 (bands, H, W) with no zeros, so nodata=0 marks only what a test sets."""
    return np.random.default_rng(seed).integers(1, 256, (bands, height, width), dtype=np.uint8)


RGBA = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]


class TestOpenSceneChecked:
    def test_opens_a_georeferenced_rgba_scene(self, tmp_path):
        uri = write_scene(tmp_path / "s.tif", random_pixels(4, 8, 8))
        with open_scene_checked(uri) as src:
            assert src.count == 4 and src.crs.to_string() == CRS

    def test_any_crs_is_accepted(self, tmp_path):
        uri = write_scene(tmp_path / "s.tif", random_pixels(3, 8, 8), crs="EPSG:4326")
        open_scene_checked(uri).close()

    @pytest.mark.parametrize(
        ("data", "crs", "problem"),
        [
            (np.zeros((3, 4, 4), np.float32), CRS, "pixel type float32, expected uint8"),
            (np.zeros((3, 4, 4), np.uint16), CRS, "pixel type uint16"),
            (np.zeros((2, 4, 4), np.uint8), CRS, r"2 band\(s\), expected RGB or RGBA"),
            (np.zeros((3, 4, 4), np.uint8), None, "no CRS"),
        ],
    )
    def test_rejects_with_one_line_naming_the_file(self, tmp_path, data, crs, problem):
        uri = write_scene(tmp_path / "bad.tif", data, crs=crs)
        with pytest.raises(InputError, match=rf"^{tmp_path}/bad\.tif: {problem}") as err:
            open_scene_checked(uri)
        assert "\n" not in str(err.value)

    def test_missing_and_non_raster_files(self, tmp_path):
        with pytest.raises(InputError, match=r"nope\.tif: cannot read as a raster"):
            open_scene_checked(str(tmp_path / "nope.tif"))
        (tmp_path / "text.tif").write_text("not a tiff")
        with pytest.raises(InputError, match=r"text\.tif: cannot read as a raster"):
            open_scene_checked(str(tmp_path / "text.tif"))

    def test_chips_need_no_crs_and_dtypes_can_be_allowed(self, tmp_path):
        chip = write_scene(tmp_path / "chip.tif", random_pixels(4, 8, 8), crs=None)
        open_scene_checked(chip, require_georef=False).close()
        wide = write_scene(tmp_path / "wide.tif", np.zeros((3, 4, 4), np.uint16))
        open_scene_checked(wide, allow_dtypes=("uint8", "uint16")).close()


class TestReadValidMask:
    def test_rgba_alpha_255_is_valid(self, tmp_path):
        data = random_pixels(4, 6, 10)
        data[3] = 255
        data[3, :2, :3] = 0
        data[3, 5, 9] = 128  # partly transparent is not imagery
        uri = write_scene(tmp_path / "s.tif", data, colorinterp=RGBA)
        with rasterio.open(uri) as src:
            assert alpha_band(src) == 4
            np.testing.assert_array_equal(read_valid_mask(src), data[3] == 255)
            window = Window(2, 1, 5, 4)
            np.testing.assert_array_equal(read_valid_mask(src, window), (data[3] == 255)[1:5, 2:7])

    def test_four_bands_count_as_rgba_and_alpha_can_be_elsewhere(self, tmp_path):
        data = random_pixels(5, 4, 4)
        data[4] = 0
        data[4, 0, 0] = 255
        uri = write_scene(
            tmp_path / "a.tif",
            data,
            colorinterp=[*RGBA[:3], ColorInterp.undefined, ColorInterp.alpha],
        )
        with rasterio.open(uri) as src:
            assert alpha_band(src) == 5
            assert read_valid_mask(src).sum() == 1
        uri = write_scene(tmp_path / "b.tif", data[:4])
        with rasterio.open(uri) as src:
            assert alpha_band(src) == 4

    def test_rgb_with_nodata_is_invalid_only_where_every_band_is_nodata(self, tmp_path):
        data = random_pixels(3, 5, 5)
        data[:, 0, 0] = 0
        data[0, 1, 1] = 0  # one band at nodata: still imagery
        uri = write_scene(tmp_path / "s.tif", data, nodata=0)
        with rasterio.open(uri) as src:
            assert alpha_band(src) is None
            expected = np.ones((5, 5), bool)
            expected[0, 0] = False
            np.testing.assert_array_equal(read_valid_mask(src), expected)

    def test_rgb_with_internal_mask(self, tmp_path):
        valid = np.random.default_rng(1).random((6, 7)) > 0.3
        uri = write_scene(tmp_path / "s.tif", random_pixels(3, 6, 7), mask=valid)
        with rasterio.open(uri) as src:
            np.testing.assert_array_equal(read_valid_mask(src), valid)

    def test_rgb_without_mask_is_all_valid(self, tmp_path):
        uri = write_scene(tmp_path / "s.tif", random_pixels(3, 6, 7))
        with rasterio.open(uri) as src:
            assert read_valid_mask(src).all() and read_valid_mask(src).shape == (6, 7)
            assert read_valid_mask(src, Window(5, 4, 2, 2)).shape == (2, 2)


def test_read_rgb_drops_alpha(tmp_path):
    data = random_pixels(4, 5, 6)
    uri = write_scene(tmp_path / "s.tif", data, colorinterp=RGBA)
    with rasterio.open(uri) as src:
        np.testing.assert_array_equal(read_rgb(src), data[:3])
        np.testing.assert_array_equal(read_rgb(src, Window(1, 2, 3, 3)), data[:3, 2:5, 1:4])


@pytest.mark.parametrize(
    ("bands", "options"),
    [
        (4, {"colorinterp": RGBA}),  # alpha: one read
        (5, {"colorinterp": [*RGBA[:3], ColorInterp.undefined, ColorInterp.alpha]}),
        (3, {"nodata": 0}),
        (3, {}),
    ],
)
def test_read_rgb_and_valid_reads_what_the_two_reads_do(tmp_path, bands, options):
    data = random_pixels(bands, 6, 7)
    data[-1, :2, :3] = 0
    data[-1, 3:, :] = 255
    uri = write_scene(tmp_path / "s.tif", data, **options)
    with rasterio.open(uri) as src:
        for window in (None, Window(1, 2, 4, 3)):
            rgb, valid = read_rgb_and_valid(src, window)
            np.testing.assert_array_equal(rgb, read_rgb(src, window))
            np.testing.assert_array_equal(valid, read_valid_mask(src, window))
