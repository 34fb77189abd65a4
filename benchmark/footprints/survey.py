"""A footprints run on a folder, read back as one survey: its images, extents and buildings.

``benchmark footprints`` leaves, per image, ``{name}_buildings.gpkg`` (the buildings, in the
image's CRS) and ``{name}_prob.tif`` (the probability COG on the image's grid). The COG tells
where the image is: its bounds, cut down to its valid-data mask when it carries one (a nodata
value, an internal mask or an alpha band). Today's COGs carry none (0 outside the imagery is
also P = 0 inside it), so an image's extent is its bounds. The buildings are read in batches,
so a survey of any size is never in memory at once.
"""

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
import pyogrio.raw
import rasterio
import rasterio.features
import shapely
from pyogrio.errors import DataSourceError
from pyproj import CRS, Transformer
from rasterio.enums import MaskFlags
from rasterio.errors import RasterioError

from benchmark.data.uris import atomic_output
from benchmark.errors import InputError
from benchmark.footprints.write import GPKG_LAYER

BUILDINGS_SUFFIX = "_buildings.gpkg"
PROB_SUFFIX = "_prob.tif"
READ_BATCH = 5000  # buildings read from an image's GeoPackage at a time
# The valid-data mask is read at most this many pixels a side (an overview of a huge COG).
MAX_MASK_SIDE = 4096
# A building within this many pixels (of the mask read) of its image's edge was cut by it.
EDGE_PIXELS = 2
# Points per side of an extent when it is reprojected (its edges bend in another CRS).
EXTENT_DENSITY = 64


@dataclass(frozen=True)
class SurveyImage:
    """One image of the survey, its extent in the survey's CRS.

    Attributes:
        name: the image's name (its outputs' prefix).
        gpkg: its buildings' GeoPackage.
        prob: its probability COG.
        crs: the image's own CRS.
        extent: where it has imagery, in the survey's CRS.
        edge_tolerance: :data:`EDGE_PIXELS` of the mask read, in the survey CRS's units.
    """

    name: str
    gpkg: str
    prob: str
    crs: CRS
    extent: shapely.Polygon
    edge_tolerance: float


@dataclass(frozen=True)
class BuildingBatch:
    """Buildings of one image in the survey's CRS, with the fields ``footprints`` wrote."""

    geometry: np.ndarray
    area_m2: np.ndarray
    confidence: np.ndarray


Projector = Callable[[Any], Any]  # shapely geometries (one or an array) -> the same, reprojected


def projector(source: CRS, target: CRS) -> Projector | None:
    """``f(geometries) -> geometries`` from ``source`` to ``target``; None when they are one."""
    if source == target:
        return None
    transformer = Transformer.from_crs(source, target, always_xy=True)

    def project(geometry: Any) -> Any:
        return shapely.transform(geometry, lambda xy: np.column_stack(transformer.transform(*xy.T)))

    return project


def find_image_outputs(out_dir: str) -> list[tuple[str, str, str]]:
    """``(name, gpkg, prob)`` of every image ``footprints`` wrote to ``out_dir``, by name.

    Raises:
        InputError: ``out_dir`` is not a local folder, holds no footprints, or an image's COG
            is missing (without it the image's extent is unknown).
    """
    folder = Path(out_dir)
    if not folder.is_dir():
        raise InputError(f"{out_dir}: not a local folder of footprints")
    outputs = []
    for gpkg in sorted(folder.glob(f"*{BUILDINGS_SUFFIX}")):
        name = gpkg.name.removesuffix(BUILDINGS_SUFFIX)
        prob = gpkg.with_name(name + PROB_SUFFIX)
        if not prob.is_file():
            raise InputError(f"{prob}: missing: the probability COG of {gpkg.name} is its extent")
        outputs.append((name, str(gpkg), str(prob)))
    if not outputs:
        raise InputError(
            f"{out_dir}: no footprints (*{BUILDINGS_SUFFIX}) to merge: run benchmark footprints "
            "on a folder of images first"
        )
    return outputs


def image_crs(prob: str) -> CRS:
    """The CRS of the COG at ``prob``."""
    try:
        with rasterio.open(prob) as src:
            crs = src.crs
    except RasterioError as exc:
        raise InputError(f"{prob}: not a readable probability COG ({exc})") from exc
    if crs is None:
        raise InputError(f"{prob}: not georeferenced")
    return CRS.from_user_input(crs)


def survey_crs(crs_by_name: dict[str, CRS], epsg: int | None) -> CRS:
    """The merged layer's CRS: EPSG:``epsg`` if given, else the images' one CRS.

    Raises:
        InputError: the images are in more than one CRS and no ``epsg`` says which to use.
    """
    if epsg is not None:
        return CRS.from_epsg(epsg)
    distinct = {crs.to_string(): name for name, crs in reversed(crs_by_name.items())}
    if len(distinct) > 1:
        listed = ", ".join(f"{name}: {crs}" for crs, name in sorted(distinct.items()))
        raise InputError(
            f"the images are in {len(distinct)} CRSs ({listed}): choose one with --crs"
        )
    return next(iter(crs_by_name.values()))


def _valid_extent(src: rasterio.DatasetReader) -> tuple[shapely.Geometry, float]:
    """Where ``src`` has data, in its CRS, and the size of a pixel of the mask read."""
    pixel = max(abs(src.transform.a), abs(src.transform.e))
    if all(MaskFlags.all_valid in flags for flags in src.mask_flag_enums):
        return shapely.box(*src.bounds), pixel
    scale = max(1.0, max(src.width, src.height) / MAX_MASK_SIDE)
    shape = (max(1, round(src.height / scale)), max(1, round(src.width / scale)))
    mask = src.dataset_mask(out_shape=shape)
    transform = src.transform * src.transform.scale(src.width / shape[1], src.height / shape[0])
    parts = [
        shapely.geometry.shape(geometry)
        for geometry, value in rasterio.features.shapes(mask, mask > 0, transform=transform)
        if value
    ]
    return shapely.union_all(parts), pixel * scale


def read_image(name: str, gpkg: str, prob: str, crs: CRS, target: CRS) -> SurveyImage:
    """The :class:`SurveyImage` of one image's outputs, its extent in ``target``."""
    with rasterio.open(prob) as src:
        extent, pixel = _valid_extent(src)
    project = projector(crs, target)
    tolerance = EDGE_PIXELS * pixel
    if project:
        size = max(extent.bounds[2] - extent.bounds[0], extent.bounds[3] - extent.bounds[1])
        dense = shapely.segmentize(extent, size / EXTENT_DENSITY)
        projected = shapely.make_valid(project(dense))
        tolerance *= (projected.area / extent.area) ** 0.5 if extent.area else 1.0
        extent = projected
    return SurveyImage(name, gpkg, prob, crs, extent, tolerance)


def read_buildings(image: SurveyImage, target: CRS) -> Iterator[BuildingBatch]:
    """``image``'s buildings in ``target``, in their order, :data:`READ_BATCH` at a time."""
    project = projector(image.crs, target)
    skip = 0
    while True:
        try:
            _, _, wkb, fields = pyogrio.raw.read(
                image.gpkg,
                layer=GPKG_LAYER,
                columns=["area_m2", "confidence"],
                skip_features=skip,
                max_features=READ_BATCH,
            )
        except DataSourceError as exc:
            raise InputError(f"{image.gpkg}: not a readable footprints GeoPackage ({exc})") from exc
        if not len(wkb):
            return
        geometry = shapely.from_wkb(wkb)
        yield BuildingBatch(
            project(geometry) if project else geometry,
            np.asarray(fields[0], np.float64),
            np.asarray(fields[1], np.float64),
        )
        skip += len(wkb)


def probability_vrt(images: list[SurveyImage], target: CRS, vrt_path: str) -> str | None:
    """VRT XML mosaicking the images' COGs (``gdalbuildvrt``'s), or None if not all in ``target``.

    The mosaic's pixels are the finest of the COGs' (``-resolution highest``); the COGs are
    drawn in the images' order with 0 transparent, so an image's empty margin never hides its
    neighbour's probabilities. COGs are named relative to the VRT, so the folder can move. A
    VRT cannot mix CRSs without warping each source; then there is none (the caller says so).
    """
    grids = []
    for image in images:
        with rasterio.open(image.prob) as src:
            if CRS.from_user_input(src.crs) != target:
                return None
            grids.append((image.prob, src.bounds, src.width, src.height))
    res_x = min((b.right - b.left) / w for _, b, w, _ in grids)
    res_y = min((b.top - b.bottom) / h for _, b, _, h in grids)
    left = min(b.left for _, b, _, _ in grids)
    top = max(b.top for _, b, _, _ in grids)
    width = round((max(b.right for _, b, _, _ in grids) - left) / res_x)
    height = round((top - min(b.bottom for _, b, _, _ in grids)) / res_y)
    sources = []
    for prob, bounds, w, h in grids:
        relative = escape(os.path.relpath(prob, os.path.dirname(os.path.abspath(vrt_path))))
        sources.append(
            "<ComplexSource>"
            f'<SourceFilename relativeToVRT="1">{relative}</SourceFilename>'
            "<SourceBand>1</SourceBand>"
            f'<SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>'
            f'<DstRect xOff="{(bounds.left - left) / res_x!r}" '
            f'yOff="{(top - bounds.top) / res_y!r}" '
            f'xSize="{(bounds.right - bounds.left) / res_x!r}" '
            f'ySize="{(bounds.top - bounds.bottom) / res_y!r}"/>'
            "<NODATA>0</NODATA></ComplexSource>"
        )
    geotransform = ", ".join(repr(v) for v in (left, res_x, 0.0, top, 0.0, -res_y))
    return (
        f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">'
        f'<SRS dataAxisToSRSAxisMapping="1,2">{escape(target.to_wkt())}</SRS>'
        f"<GeoTransform>{geotransform}</GeoTransform>"
        '<VRTRasterBand dataType="Byte" band="1"><NoDataValue>0</NoDataValue>'
        f"{''.join(sources)}</VRTRasterBand></VRTDataset>"
    )


def write_probability_vrt(images: list[SurveyImage], target: CRS, vrt_uri: str) -> bool:
    """Write :func:`probability_vrt` to ``vrt_uri`` atomically; False if the CRSs differ."""
    xml = probability_vrt(images, target, vrt_uri)
    if xml is None:
        return False
    with atomic_output(vrt_uri) as path, open(path, "w") as out:
        out.write(xml + "\n")
    return True
