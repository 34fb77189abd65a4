"""The probability raster of an orthomosaic, on its own grid, at the model's ground resolution.

Scene prediction (:func:`~benchmark.inference.scenes.predict_scene`) runs on a raster's own
pixels. For a model trained at a GSD the image is shown to it through a VRT: a virtual raster
over the same ground with pixels of the model's GSD in metres on the ground (measured
geodesically, so a UTM, Web Mercator or longitude/latitude grid all work). GDAL resamples
whatever window scene prediction reads, the way PREPROCESS resampled the training windows
(bilinear imagery, nearest alpha: :func:`benchmark.data.gsd.read_bands`), so there is never a
resampled copy of the scene. The probabilities come back onto the image's grid, 0 outside its
imagery, block by block (:mod:`benchmark.inference.gsd_round_trip`, the way the pipeline's
validation windows come back), and the result is published as a Cloud Optimized GeoTIFF
(tiled, overviews, DEFLATE) that QGIS streams. It has the bands of the prediction's target
(``PredictionSettings.target``): P(building) alone, or an instance model's P(body), P(border)
and P(contact), each band resampled and published alike; band 1 is P(building) either way.
"""

import logging
import os
import tempfile
from dataclasses import dataclass
from xml.sax.saxutils import escape

import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.enums import ColorInterp
from rasterio.windows import Window
from torch import nn

from benchmark.data.gsd import resampled_length
from benchmark.data.imagery import alpha_band, open_scene_checked
from benchmark.data.uri_schemes import HTTP_PREFIXES, S3_PREFIX, VSIS3_PREFIX, is_s3
from benchmark.data.uris import TMP_PREFIX, atomic_geotiff
from benchmark.errors import InputError
from benchmark.footprints.ground import ground_resolution
from benchmark.inference.gsd_round_trip import predict_resampled_window
from benchmark.inference.scenes import predict_scene
from benchmark.inference.settings import PredictionSettings

log = logging.getLogger(__name__)

# The image is predicted as it is when its ground pixel is within 1% of the model's GSD.
GSD_TOLERANCE = 0.01
# DEFLATE level 3 on every core, not GDAL's level 6 on one: with per-building sums over building
# pixels only, footprints / the raster alone went from 1.60 to 1.24 (docs/footprints.md).
COG_OPTIONS = {
    "compress": "DEFLATE",
    "level": 3,
    "num_threads": "ALL_CPUS",
    "predictor": "YES",
    "blocksize": 512,
    "overview_resampling": "AVERAGE",
    "bigtiff": "IF_SAFER",
}


@dataclass(frozen=True)
class ImageGrid:
    """What prediction needs to know of an image: its size and its ground resolution."""

    width: int
    height: int
    ground_res: tuple[float, float]  # metres on the ground per pixel, along x and y

    @classmethod
    def of(cls, image_uri: str) -> "ImageGrid":
        """Open ``image_uri`` (an :class:`~benchmark.errors.InputError` if not a scene)."""
        with open_scene_checked(image_uri, require_georef=False) as src:
            if src.crs is None:
                raise InputError(
                    f"{image_uri}: not georeferenced (no CRS), so its buildings cannot be placed; "
                    "for un-georeferenced chips use wb_scripts/predict BUNDLE DIR OUT --chip-gsd M"
                )
            res = ground_resolution(src.crs, src.transform, src.width, src.height)
            return cls(src.width, src.height, res)

    def size_at(self, gsd: float | None) -> tuple[int, int] | None:
        """(width, height) at ``gsd`` metres, or None when the image is at it already."""
        if gsd is None or all(abs(r / gsd - 1) <= GSD_TOLERANCE for r in self.ground_res):
            return None
        return (
            resampled_length(self.width, self.ground_res[0], gsd),
            resampled_length(self.height, self.ground_res[1], gsd),
        )


def gdal_path(uri: str) -> str:
    """How GDAL names ``uri`` inside a VRT (``s3://`` is ``/vsis3/``)."""
    if is_s3(uri):
        return VSIS3_PREFIX + uri.removeprefix(S3_PREFIX)
    if uri.startswith(HTTP_PREFIXES):
        return "/vsicurl/" + uri
    return os.path.abspath(uri)


def resampled_vrt(image_uri: str, width: int, height: int) -> str:
    """VRT XML showing all of ``image_uri`` as ``width`` x ``height`` pixels (same CRS).

    Bands keep their colour interpretation and nodata value, so the VRT's valid pixels are the
    image's (alpha, nodata).
    """
    with rasterio.open(image_uri) as src:
        alpha = alpha_band(src)
        transform = src.transform * Affine.scale(src.width / width, src.height / height)
        source = escape(gdal_path(image_uri))
        bands = []
        for band, interp in zip(src.indexes, src.colorinterp, strict=True):
            interp = ColorInterp.alpha if band == alpha else interp
            nodata = "" if src.nodata is None else f"<NoDataValue>{src.nodata}</NoDataValue>"
            resampling = "nearest" if band == alpha else "bilinear"
            bands.append(
                f'<VRTRasterBand dataType="Byte" band="{band}">'
                f"<ColorInterp>{interp.name.capitalize()}</ColorInterp>{nodata}"
                f'<SimpleSource resampling="{resampling}">'
                f'<SourceFilename relativeToVRT="0">{source}</SourceFilename>'
                f"<SourceBand>{band}</SourceBand>"
                f'<SrcRect xOff="0" yOff="0" xSize="{src.width}" ySize="{src.height}"/>'
                f'<DstRect xOff="0" yOff="0" xSize="{width}" ySize="{height}"/>'
                "</SimpleSource></VRTRasterBand>"
            )
        geotransform = ", ".join(repr(v) for v in transform.to_gdal())
        return (
            f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">'
            f'<SRS dataAxisToSRSAxisMapping="1,2">{escape(src.crs.to_wkt())}</SRS>'
            f"<GeoTransform>{geotransform}</GeoTransform>{''.join(bands)}</VRTDataset>"
        )


def predict_on_image_grid(
    model: nn.Module,
    image_uri: str,
    out_path: str,
    settings: PredictionSettings,
    grid: ImageGrid | None = None,
) -> None:
    """Write the uint8 probabilities of ``image_uri`` on its own grid to the local ``out_path``.

    One band per probability of ``settings.target`` (see :mod:`benchmark.inference.scenes`).

    Args:
        model: the network (prepared for ``settings.options``' plan on the first window).
        image_uri: a georeferenced RGB(A) uint8 raster (local or s3://).
        out_path: a local tiled GeoTIFF (overwritten).
        settings: the prediction settings; the image is shown to the model at ``settings.gsd``
            (None: as it is), in windows of its pixels.
        grid: ``ImageGrid.of(image_uri)`` if the caller has it.
    """
    grid = grid or ImageGrid.of(image_uri)
    size = grid.size_at(settings.gsd)
    if size is None:
        predict_scene(model, image_uri, out_path, settings, overwrite=True)
        return
    log.info(
        "%s: %.3f x %.3f m pixels, predicted at %g m (%d x %d px)",
        image_uri, *grid.ground_res, settings.gsd, *size,
    )  # fmt: skip
    with tempfile.TemporaryDirectory(
        prefix=TMP_PREFIX, dir=os.path.dirname(os.path.abspath(out_path))
    ) as work_dir:
        vrt = os.path.join(work_dir, "at_gsd.vrt")
        with open(vrt, "w") as f:
            f.write(resampled_vrt(image_uri, *size))
        full = Window(0, 0, grid.width, grid.height)
        predict_resampled_window(
            model, vrt, image_uri, full, out_path, settings, overwrite=True, tmp_dir=work_dir
        )


def write_cog(tiff_path: str, out_uri: str) -> None:
    """Publish the GeoTIFF at ``tiff_path`` (every band) as a COG at ``out_uri``, atomically.

    GDAL's COG driver builds the overviews in a temporary file through its block cache, so
    memory stays bounded on a city-scale raster.
    """
    with atomic_geotiff(out_uri) as path:
        rasterio.shutil.copy(tiff_path, path, driver="COG", **COG_OPTIONS)
    log.info("Wrote %s", out_uri)
