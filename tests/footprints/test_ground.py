"""Ground metres in any CRS: UTM as it is, Web Mercator scaled, degrees measured."""

import pytest
from pyproj import CRS
from rasterio.transform import from_origin

from benchmark.footprints.ground import ground_resolution, known_epsg, measuring_crs, utm_crs


class TestGround:
    def test_utm_pixels_are_their_size(self):
        gx, gy = ground_resolution(
            CRS.from_epsg(32636), from_origin(455_000, 39_000, 0.1, 0.1), 100, 100
        )
        assert (gx, gy) == pytest.approx((0.1, 0.1), rel=2e-3)  # UTM's scale factor, 0.9996

    def test_web_mercator_pixels_shrink_with_latitude(self):
        # 60 degrees north: 3857's "metre" is half a metre on the ground
        gx, gy = ground_resolution(CRS.from_epsg(3857), from_origin(0, 8_399_737.9, 1, 1), 10, 10)
        assert (gx, gy) == pytest.approx((0.5, 0.5), rel=5e-3)

    def test_degrees_become_metres(self):
        gx, gy = ground_resolution(CRS.from_epsg(4326), from_origin(32.5, 0.3, 1e-6, 1e-6), 10, 10)
        assert gx == pytest.approx(0.1113, rel=1e-3)
        assert gy == pytest.approx(0.1106, rel=1e-3)

    @pytest.mark.parametrize(
        ("epsg", "lon", "lat", "expected"),
        [
            (32636, 32.5, 0.3, 32636),  # metric and true: kept
            (3857, 32.5, 0.3, 3857),  # Web Mercator at the equator: true to 0.003%
            (3857, 10.0, 60.0, 32632),  # at 60 degrees: 4x the area, so UTM
            (4326, 32.5, 0.3, 32636),  # degrees: UTM
            (4326, -70.0, -33.0, 32719),  # south: UTM south
        ],
    )
    def test_measuring_crs(self, epsg, lon, lat, expected):
        assert measuring_crs(CRS.from_epsg(epsg), lon, lat) == CRS.from_epsg(expected)

    def test_utm_zone_edges(self):
        assert utm_crs(180.0, 1.0) == CRS.from_epsg(32660)
        assert utm_crs(-180.0, -1.0) == CRS.from_epsg(32701)

    @pytest.mark.parametrize(
        ("value", "code"), [("32636", 32636), ("EPSG:4326", 4326), (3857, 3857)]
    )
    def test_a_known_epsg_code_is_its_number(self, value, code):
        assert known_epsg(value) == code

    @pytest.mark.parametrize("value", ["99999", "-1", "EPSG:", "utm36"])
    def test_an_unknown_epsg_code_is_one_value_error_naming_it(self, value):
        with pytest.raises(ValueError, match=f"^{value} is not a known EPSG code$"):
            known_epsg(value)
