"""Orthomosaics with known buildings: bright boxes on a dark ground, in UTM, 3857 and 4326.

The stand-in model (``tests.fixtures.models.pointwise_model``) calls a pixel a building when
it is bright, so the boxes are the buildings to find, whatever CRS or resolution the scene has.
All three grids have pixels of about 10 cm on the ground near Kampala.
"""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from rasterio.transform import from_origin

from tests.fixtures.rasters import write_raster

GRIDS = {
    "utm": ("EPSG:32636", from_origin(455_000.0, 39_000.0, 0.1, 0.1)),
    "webmercator": ("EPSG:3857", from_origin(3_617_000.0, 33_400.0, 0.1, 0.1)),
    "lonlat": ("EPSG:4326", from_origin(32.5, 0.3, 0.9e-6, 0.9e-6)),
}
GROUND, ROOF = 25, 230
# (row0, col0, row1, col1) pixel boxes: two buildings of 80 x 140 and 60 x 50 px.
BUILDINGS = [(50, 60, 130, 200), (200, 250, 260, 300)]

SceneMaker = Callable[..., str]


def scene_pixels(
    height: int = 300,
    width: int = 400,
    boxes: list[tuple[int, int, int, int]] = BUILDINGS,
    alpha_off: tuple[int, int, int, int] | None = None,
) -> np.ndarray:
    """RGBA: dark ground, bright ``boxes``, alpha 0 (and RGB 0) in ``alpha_off`` if given."""
    data = np.full((4, height, width), GROUND, np.uint8)
    data[3] = 255
    for r0, c0, r1, c1 in boxes:
        data[:3, r0:r1, c0:c1] = ROOF
    if alpha_off:
        r0, c0, r1, c1 = alpha_off
        data[:, r0:r1, c0:c1] = 0
    return data


@pytest.fixture
def make_scene(tmp_path: Path) -> SceneMaker:
    """``make_scene(name, grid="utm", data=None, **pixels)``: a GeoTIFF under ``tmp_path/in``."""

    def make(
        name: str,
        grid: str = "utm",
        data: np.ndarray | None = None,
        transform: Affine | None = None,
        **pixels,
    ) -> str:
        crs, grid_transform = GRIDS[grid]
        return write_raster(
            tmp_path / "in" / f"{name}.tif",
            scene_pixels(**pixels) if data is None else data,
            crs=crs,
            transform=transform or grid_transform,
            tiled=True,
            blockxsize=256,
            blockysize=256,
        )

    return make
