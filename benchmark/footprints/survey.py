"""A footprints run on a folder, read back as one survey: its images, extents and buildings.

``benchmark footprints`` leaves, per image, ``{name}_buildings.gpkg`` (the buildings, in the
image's CRS) and ``{name}_prob.tif`` (the probability COG on the image's grid). The COG tells
where the image is: its bounds, cut down to its valid-data mask when it carries one (a nodata
value, an internal mask or an alpha band). Today's COGs carry none (0 outside the imagery is
also P = 0 inside it), so an image's extent is its bounds. Each COG is opened once: its CRS,
grid and extent are all the merge and the probability VRT need of it. The buildings are read
in batches, so a survey of any size is never in memory at once.

The folder is local or on S3 (``s3://``, as a Batch job leaves it): COGs are read through
GDAL's ``/vsis3/`` (their header, and the mask's overview when there is one), and an image's
GeoPackage is downloaded to a temporary folder while its buildings are read (SQLite reads a
file by random access, one HTTP request each over ``/vsis3/``), then removed.

A folder may hold more than one survey's footprints (an earlier run on other images into the
same root): the survey pipeline names its images, and only theirs are read.
"""

import logging
import os
import posixpath
import tempfile
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
from rastervision.pipeline.file_system import download_if_needed

from benchmark.data.aws_errors import aws_errors
from benchmark.data.layout import join_uri
from benchmark.data.uri_schemes import S3_PREFIX, is_s3
from benchmark.data.uris import TMP_PREFIX, atomic_output, file_names
from benchmark.errors import InputError, listed_problems
from benchmark.footprints.write import GPKG_LAYER

log = logging.getLogger(__name__)

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
class ProbabilityGrid:
    """What an image's probability COG says of it, read in one opening.

    Attributes:
        crs: the image's CRS.
        bounds: the COG's (left, bottom, right, top) in ``crs``.
        width: its width in pixels.
        height: its height in pixels.
        valid: where it has imagery, in ``crs`` (its bounds, or its valid-data mask).
        mask_pixel: the side of a pixel of the mask read, in ``crs``'s units.
    """

    crs: CRS
    bounds: tuple[float, float, float, float]
    width: int
    height: int
    valid: shapely.Geometry
    mask_pixel: float


@dataclass(frozen=True)
class SurveyImage:
    """One image of the survey, its extent in the survey's CRS.

    Attributes:
        name: the image's name (its outputs' prefix).
        gpkg: its buildings' GeoPackage (local or ``s3://``).
        prob: its probability COG (local or ``s3://``).
        grid: what the COG says of the image, in its own CRS.
        extent: where it has imagery, in the survey's CRS.
        edge_tolerance: :data:`EDGE_PIXELS` of the mask read, in the survey CRS's units.
    """

    name: str
    gpkg: str
    prob: str
    grid: ProbabilityGrid
    extent: shapely.Polygon
    edge_tolerance: float

    @property
    def crs(self) -> CRS:
        """The image's own CRS."""
        return self.grid.crs


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


def _file_names(out_dir: str) -> list[str]:
    """The names of the files in ``out_dir`` (local folder or ``s3://`` prefix), none hidden.

    Raises:
        InputError: a local ``out_dir`` is not a folder; S3 cannot be listed (one line).
    """
    if not is_s3(out_dir) and not os.path.isdir(out_dir):
        raise InputError(f"{out_dir}: not a local folder of footprints (nor an s3:// prefix)")
    with aws_errors(out_dir):
        return file_names(out_dir)


def find_image_outputs(
    out_dir: str, names: Collection[str] | None = None
) -> list[tuple[str, str, str]]:
    """``(name, gpkg, prob)`` of every image ``footprints`` wrote to ``out_dir``, by name.

    Args:
        out_dir: the footprints folder (local or ``s3://``).
        names: only these images (a survey's); the folder's others are left out, with one
            warning saying how many. None: every image in the folder.

    Raises:
        InputError: ``out_dir`` is not a folder (local or ``s3://``), holds no footprints, or
            not those of an image of ``names``, or an image's COG is missing (without it the
            image's extent is unknown).
    """
    files = set(_file_names(out_dir))
    found = sorted(n.removesuffix(BUILDINGS_SUFFIX) for n in files if n.endswith(BUILDINGS_SUFFIX))
    if names is not None:
        wanted = set(names)
        missing = sorted(wanted.difference(found))
        if missing:
            raise InputError(
                f"{out_dir}: no footprints of {len(missing)} image(s) of the survey: "
                f"{listed_problems(missing)}"
            )
        others = [name for name in found if name not in wanted]
        if others:
            log.warning(
                "%s: %d other image(s)' footprints left out of the merge (not this survey's: "
                "an earlier run's?)",
                out_dir, len(others),
            )  # fmt: skip
        found = [name for name in found if name in wanted]
    outputs = []
    for name in found:
        prob = join_uri(out_dir, name + PROB_SUFFIX)
        if name + PROB_SUFFIX not in files:
            raise InputError(
                f"{prob}: missing: the probability COG of {name}{BUILDINGS_SUFFIX} is its extent"
            )
        outputs.append((name, join_uri(out_dir, name + BUILDINGS_SUFFIX), prob))
    if not outputs:
        raise InputError(
            f"{out_dir}: no footprints (*{BUILDINGS_SUFFIX}) to merge: run benchmark footprints "
            "on a folder of images first"
        )
    return outputs


def read_probability_grid(prob: str) -> ProbabilityGrid:
    """The :class:`ProbabilityGrid` of the COG at ``prob`` (local or ``s3://``).

    Raises:
        InputError: the COG cannot be read or is not georeferenced (an
            :class:`~benchmark.data.aws_errors.AwsError` when S3 says why).
    """
    try:
        with aws_errors(prob), rasterio.open(prob) as src:
            if src.crs is None:
                raise InputError(f"{prob}: not georeferenced")
            valid, pixel = _valid_extent(src)
            bounds = (src.bounds.left, src.bounds.bottom, src.bounds.right, src.bounds.top)
            crs = CRS.from_user_input(src.crs)
            return ProbabilityGrid(crs, bounds, src.width, src.height, valid, pixel)
    except RasterioError as exc:
        raise InputError(f"{prob}: not a readable probability COG ({exc})") from exc


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
            f"the images are in {len(distinct)} CRSs ({listed}): choose one with "
            "--crs (-a crs in the survey pipeline)"
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


def read_image(name: str, gpkg: str, prob: str, grid: ProbabilityGrid, target: CRS) -> SurveyImage:
    """The :class:`SurveyImage` of one image's outputs, its extent in ``target``."""
    extent = grid.valid
    project = projector(grid.crs, target)
    tolerance = EDGE_PIXELS * grid.mask_pixel
    if project:
        size = max(extent.bounds[2] - extent.bounds[0], extent.bounds[3] - extent.bounds[1])
        dense = shapely.segmentize(extent, size / EXTENT_DENSITY)
        projected = shapely.make_valid(project(dense))
        tolerance *= (projected.area / extent.area) ** 0.5 if extent.area else 1.0
        extent = projected
    return SurveyImage(name, gpkg, prob, grid, extent, tolerance)


@contextmanager
def local_copy(uri: str) -> Iterator[str]:
    """A local path to ``uri``'s content: itself, or a download removed at the end."""
    if not is_s3(uri):
        yield uri
        return
    with tempfile.TemporaryDirectory(prefix=TMP_PREFIX) as tmp_dir:
        with aws_errors(uri):
            path = download_if_needed(uri, tmp_dir, use_cache=False)
        yield path


def read_buildings(image: SurveyImage, target: CRS) -> Iterator[BuildingBatch]:
    """``image``'s buildings in ``target``, in their order, :data:`READ_BATCH` at a time."""
    project = projector(image.crs, target)
    skip = 0
    with local_copy(image.gpkg) as gpkg:
        while True:
            try:
                _, _, wkb, fields = pyogrio.raw.read(
                    gpkg,
                    layer=GPKG_LAYER,
                    columns=["area_m2", "confidence"],
                    skip_features=skip,
                    max_features=READ_BATCH,
                )
            except DataSourceError as exc:
                raise InputError(
                    f"{image.gpkg}: not a readable footprints GeoPackage ({exc})"
                ) from exc
            if not len(wkb):
                return
            geometry = shapely.from_wkb(wkb)
            yield BuildingBatch(
                project(geometry) if project else geometry,
                np.asarray(fields[0], np.float64),
                np.asarray(fields[1], np.float64),
            )
            skip += len(wkb)


def relative_uri(uri: str, vrt_uri: str) -> str:
    """``uri`` relative to the folder of ``vrt_uri`` (both local, or both on S3)."""
    if is_s3(vrt_uri):
        start = posixpath.dirname(vrt_uri.removeprefix(S3_PREFIX))
        return posixpath.relpath(uri.removeprefix(S3_PREFIX), start)
    return os.path.relpath(uri, os.path.dirname(os.path.abspath(vrt_uri)))


def probability_vrt(images: list[SurveyImage], target: CRS, vrt_uri: str) -> str | None:
    """VRT XML mosaicking the images' COGs (``gdalbuildvrt``'s), or None if not all in ``target``.

    The mosaic's pixels are the finest of the COGs' (``-resolution highest``); the COGs are
    drawn in the images' order with 0 transparent, so an image's empty margin never hides its
    neighbour's probabilities. COGs are named relative to the VRT, so it works where it is,
    locally or on S3 (GDAL resolves ``../`` under ``/vsis3/`` too), and the folder can move.
    A VRT cannot mix CRSs without warping each source; then there is none (the caller says so).
    """
    if any(image.grid.crs != target for image in images):
        return None
    grids = [image.grid for image in images]
    res_x = min((g.bounds[2] - g.bounds[0]) / g.width for g in grids)
    res_y = min((g.bounds[3] - g.bounds[1]) / g.height for g in grids)
    left = min(g.bounds[0] for g in grids)
    top = max(g.bounds[3] for g in grids)
    width = round((max(g.bounds[2] for g in grids) - left) / res_x)
    height = round((top - min(g.bounds[1] for g in grids)) / res_y)
    sources = []
    for image, grid in zip(images, grids, strict=True):
        x0, y0, x1, y1 = grid.bounds
        sources.append(
            "<ComplexSource>"
            f'<SourceFilename relativeToVRT="1">{escape(relative_uri(image.prob, vrt_uri))}'
            "</SourceFilename>"
            "<SourceBand>1</SourceBand>"
            f'<SrcRect xOff="0" yOff="0" xSize="{grid.width}" ySize="{grid.height}"/>'
            f'<DstRect xOff="{(x0 - left) / res_x!r}" yOff="{(top - y1) / res_y!r}" '
            f'xSize="{(x1 - x0) / res_x!r}" ySize="{(y1 - y0) / res_y!r}"/>'
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
