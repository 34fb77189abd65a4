"""From traced pixel outlines to building footprints: placed, simplified, squared, measured.

Each traced building (:mod:`benchmark.footprints.vectorize`: a connected component of a binary
model's mask, or a building an instance model's three bands separate from its neighbours) is
placed with the raster's transform, then simplified, squared and measured in metres true near
the image (:func:`~benchmark.footprints.ground.measuring_crs`), filtered by area and returned in
the image's CRS and in longitude/latitude, the two CRSs the files are written in.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import rasterio
import shapely
import shapely.affinity
from affine import Affine
from pyproj import CRS, Transformer

from benchmark.footprints.ground import WGS84, centre_lonlat, measuring_crs
from benchmark.footprints.instances import InstanceOptions
from benchmark.footprints.regularize import regularize
from benchmark.footprints.vectorize import PixelBuilding, vectorize_probabilities

DEFAULT_MIN_AREA = 4.0  # m²: a small shed; smaller blobs are noise


@dataclass(frozen=True)
class OutlineOptions:
    """How traced outlines become footprints.

    Attributes:
        simplify: Douglas-Peucker tolerance in metres (0: keep every pixel corner).
        regularize: square the outlines (:mod:`benchmark.footprints.regularize`).
        min_area: drop footprints smaller than this many m².
    """

    simplify: float = 0.0
    regularize: bool = False
    min_area: float = DEFAULT_MIN_AREA


@dataclass(frozen=True)
class Footprint:
    """One building, in the image's CRS and in EPSG:4326 lon/lat."""

    polygon: shapely.Polygon
    lonlat: shapely.Polygon
    area_m2: float
    confidence: float


def _projector(src: CRS, dst: CRS):
    """A function moving shapely geometries from ``src`` to ``dst`` (None: the same CRS)."""
    if src.equals(dst):
        return None
    transformer = Transformer.from_crs(src, dst, always_xy=True)

    def project(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))

    return lambda geom: shapely.transform(geom, project)


class OutlineMaker:
    """Turns a raster's traced buildings into :class:`Footprint` s (one raster, one maker)."""

    def __init__(
        self, crs: object, transform: Affine, width: int, height: int, options: OutlineOptions
    ) -> None:
        """``crs`` and ``transform``: the probability raster's (rasterio's or pyproj's CRS)."""
        image_crs = CRS.from_user_input(crs)
        lon, lat = centre_lonlat(image_crs, transform, width, height)
        metric = measuring_crs(image_crs, lon, lat)
        self.options = options
        self.pixel_to_image = transform.to_shapely()
        self.to_metric = _projector(image_crs, metric)
        self.to_image = _projector(metric, image_crs)
        self.to_lonlat = _projector(metric, WGS84)

    def _in_metres(self, building: PixelBuilding) -> shapely.Geometry:
        placed = shapely.affinity.affine_transform(building.polygon, self.pixel_to_image)
        return self.to_metric(placed) if self.to_metric else placed

    def footprints(self, buildings: Iterable[PixelBuilding]) -> Iterator[Footprint]:
        """The footprints of ``buildings``, in order, without those under ``min_area``."""
        opts = self.options
        for building in buildings:
            outline = self._in_metres(building)
            if opts.simplify > 0:
                outline = outline.simplify(opts.simplify, preserve_topology=True)
            parts = outline.geoms if isinstance(outline, shapely.MultiPolygon) else [outline]
            for part in parts:
                if opts.regularize and not part.is_empty:
                    part = regularize(part)
                if part.is_empty or part.area < opts.min_area:
                    continue
                yield Footprint(
                    polygon=self.to_image(part) if self.to_image else part,
                    lonlat=self.to_lonlat(part) if self.to_lonlat else part,
                    area_m2=float(part.area),
                    confidence=building.confidence,
                )


def footprints_of_raster(
    prob_uri: str,
    threshold: float,
    options: OutlineOptions,
    block_size: int | None = None,
    instances: InstanceOptions | None = None,
) -> Iterator[Footprint]:
    """The footprints of a uint8 probability raster (local or s3://), block by block.

    One band (P(building)) or an instance model's three (P(body), P(border), P(contact),
    decoded with ``instances``): see :func:`vectorize_probabilities`.
    """
    with rasterio.open(prob_uri) as src:
        maker = OutlineMaker(src.crs, src.transform, src.width, src.height, options)
    buildings = vectorize_probabilities(prob_uri, threshold, block_size, instances)
    yield from maker.footprints(buildings)
