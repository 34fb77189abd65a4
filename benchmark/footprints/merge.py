"""The footprints of many overlapping orthomosaics as one layer, each building once.

A city's drone survey is dozens of orthomosaics overlapping at their edges, and ``benchmark
footprints`` on their folder outlines each image alone: a building in the overlap of two images
comes out twice, one cut by an image's edge comes out as a piece. Merging writes one layer for
the survey, in one CRS (the first image's, or the one asked for), by these rules:

- **Duplicates.** Two buildings of different images are the same building when their IoU is at
  least :data:`DUPLICATE_IOU` or their intersection is at least :data:`DUPLICATE_OVERLAP` of the
  smaller (a piece inside the whole). The copy kept is the one not cut by its image's edge,
  then the one whose centroid is farther from its image's edge: near an edge the model saw
  less context around the building and the orthomosaic is at its most distorted (the edge of
  the drone's coverage: fewer photos, steeper views), so the outline there is the least sure.
  Copies are taken in that order and each dropped if it is the same building as one kept.
- **Cut by an edge.** A building within :data:`~benchmark.footprints.survey.EDGE_PIXELS`
  pixels of its image's edge is *cut*: a neighbour's whole copy of it wins (the rule above).
- **Seams.** Where images only touch, the halves of a building on both sides are both cut and
  touch each other: they are joined into one polygon (their areas summed, their confidences
  averaged by area).

Memory is bounded by the buildings near the images' overlaps and seams, not by the survey:
each image's buildings farther than ``margin`` metres from every other image's extent go
straight to the output; only the others are held (in an R-tree), resolved, then written after.
The outputs are written under partial names and published whole, and a re-run writes the same
layer (the images in name order, their buildings in file order).
"""

import json
import logging
import os
from dataclasses import dataclass, field

import numpy as np
import shapely
from affine import Affine
from pyproj import CRS

from benchmark.data.uris import atomic_output
from benchmark.footprints.ground import ground_resolution
from benchmark.footprints.survey import (
    BuildingBatch,
    SurveyImage,
    find_image_outputs,
    image_crs,
    read_buildings,
    read_image,
    survey_crs,
    write_probability_vrt,
)
from benchmark.footprints.write import append_polygons

log = logging.getLogger(__name__)

DUPLICATE_IOU = 0.3
DUPLICATE_OVERLAP = 0.5
DEFAULT_MARGIN = 20.0  # metres: more than half a house, and a misregistration of a few metres
MERGED_DIR = "merged"  # in OUT_DIR: out of the way of the ``*_buildings.gpkg`` it reads
FIELDS = ["building", "area_m2", "confidence", "image"]


@dataclass(frozen=True)
class MergeOutputs:
    """Where the merged survey goes: ``{out_dir}/merged/buildings.{gpkg,parquet}``, ``prob.vrt``."""

    gpkg: str
    parquet: str
    vrt: str

    @classmethod
    def of(cls, out_dir: str) -> "MergeOutputs":
        """The outputs of merging ``out_dir``."""
        folder = os.path.join(out_dir, MERGED_DIR)
        names = ("buildings.gpkg", "buildings.parquet", "prob.vrt")
        return cls(*(os.path.join(folder, name) for name in names))


@dataclass
class MergeReport:
    """What a merge did: buildings written, duplicates dropped, halves joined, the VRT's fate."""

    images: int = 0
    written: int = 0
    duplicates: int = 0
    joined: int = 0
    vrt: bool = False

    def summary(self) -> str:
        """One line for the log."""
        return (
            f"{self.images} image(s): {self.written} buildings, {self.duplicates} duplicate(s) "
            f"dropped, {self.joined} piece(s) joined across seams"
            + ("" if self.vrt else "; no probability VRT (the COGs are in another CRS)")
        )


@dataclass
class NearBuildings:
    """The buildings held for resolving: near another image's extent, in reading order."""

    geometry: list[shapely.Geometry] = field(default_factory=list)
    area_m2: list[float] = field(default_factory=list)
    confidence: list[float] = field(default_factory=list)
    image: list[int] = field(default_factory=list)

    def add(self, batch: BuildingBatch, keep: np.ndarray, image: int) -> None:
        """Hold ``batch``'s buildings where ``keep``."""
        self.geometry.extend(batch.geometry[keep])
        self.area_m2.extend(batch.area_m2[keep])
        self.confidence.extend(batch.confidence[keep])
        self.image.extend([image] * int(keep.sum()))


class SurveyLayerWriter:
    """The merged layer, streamed to a GeoPackage and a GeoParquet file together.

    The GeoParquet is written with pyarrow (GDAL's Parquet driver is not in pyogrio's wheel),
    row group by row group, with GeoParquet 1.0's ``geo`` metadata (WKB, the CRS as PROJJSON).
    """

    def __init__(self, gpkg_path: str, parquet_path: str, crs: CRS) -> None:
        import pyarrow as pa  # only merging needs it: ``footprints`` runs without
        import pyarrow.parquet as pq

        self.pa, self.gpkg_path, self.crs_wkt = pa, gpkg_path, crs.to_wkt()
        geo = {
            "version": "1.0.0",
            "primary_column": "geometry",
            "columns": {
                "geometry": {
                    "encoding": "WKB",
                    "geometry_types": ["Polygon"],
                    "crs": crs.to_json_dict(),
                }
            },
        }
        schema = pa.schema(
            [("building", pa.string()), ("area_m2", pa.float64()),
             ("confidence", pa.float64()), ("image", pa.string()), ("geometry", pa.binary())],
            metadata={b"geo": json.dumps(geo).encode()},
        )  # fmt: skip
        self.parquet = pq.ParquetWriter(parquet_path, schema)
        self.count = 0
        self.gpkg_created = False

    def write(
        self, geometry: np.ndarray, area_m2: np.ndarray, confidence: np.ndarray, image: list[str]
    ) -> None:
        """Append these buildings to both files (the GeoPackage is created on the first call)."""
        wkb = shapely.to_wkb(geometry)
        columns = [np.full(len(wkb), "yes", object), np.asarray(area_m2, np.float64),
                   np.asarray(confidence, np.float64), np.asarray(image, object)]  # fmt: skip
        append_polygons(self.gpkg_path, wkb, columns, FIELDS, self.crs_wkt, self.gpkg_created)
        self.gpkg_created = True
        arrays = [self.pa.array(c.tolist()) for c in columns] + [self.pa.array(list(wkb))]
        self.parquet.write_table(self.pa.Table.from_arrays(arrays, schema=self.parquet.schema))
        self.count += len(wkb)

    def close(self) -> None:
        """Finish the GeoParquet file (and create an empty GeoPackage if nothing came)."""
        if not self.gpkg_created:
            self.write(np.array([], object), np.array([]), np.array([]), [])
        self.parquet.close()


def near_zones(images: list[SurveyImage], margin: float) -> list[shapely.Geometry]:
    """Per image, where its buildings may meet another image's: the others' extents + margin."""
    grown = shapely.buffer(np.array([i.extent for i in images], object), margin)
    tree = shapely.STRtree(grown)
    zones = []
    for k, image in enumerate(images):
        others = [j for j in tree.query(image.extent, predicate="intersects") if j != k]
        zone = shapely.union_all(grown[others]) if others else shapely.Polygon()
        shapely.prepare(zone)
        zones.append(zone)
    return zones


def same_building(a: shapely.Geometry, b: shapely.Geometry) -> bool:
    """Whether ``a`` and ``b`` are copies of one building (IoU or overlap of the smaller)."""
    inter = shapely.intersection(a, b).area
    smaller = min(a.area, b.area)
    union = a.area + b.area - inter
    return inter >= DUPLICATE_IOU * union or (smaller > 0 and inter >= DUPLICATE_OVERLAP * smaller)


def drop_duplicates(
    near: NearBuildings, images: list[SurveyImage]
) -> tuple[np.ndarray, np.ndarray]:
    """Which held buildings are kept (the module's duplicate rule), and which are cut by an edge."""
    geoms = np.array(near.geometry, object)
    owner = np.array(near.image, int)
    boundaries = np.array([images[i].extent.boundary for i in owner], object)
    tolerance = np.array([images[i].edge_tolerance for i in owner])
    cut = shapely.distance(geoms, boundaries) <= tolerance
    edge_distance = shapely.distance(shapely.centroid(geoms), boundaries)
    order = np.lexsort((np.arange(len(geoms)), owner, -edge_distance, cut))
    tree = shapely.STRtree(geoms)
    kept = np.zeros(len(geoms), bool)
    for k in order:
        others = tree.query(geoms[k], predicate="intersects")
        if not any(kept[j] and owner[j] != owner[k] and same_building(geoms[k], geoms[j])
                   for j in others):  # fmt: skip
            kept[k] = True
    return kept, cut


def join_seam_pieces(near: NearBuildings, kept: np.ndarray, cut: np.ndarray,
                     images: list[SurveyImage]) -> list[list[int]]:  # fmt: skip
    """The kept buildings as groups to write as one: pieces cut by touching edges joined.

    Two kept pieces of different images join when both are cut by their image's edge and
    they touch (within either image's edge tolerance); a chain of them (a building across a
    corner of four images) is one group. Groups come in the order of their first member.
    """
    geoms = np.array(near.geometry, object)
    parent = {k: k for k in np.flatnonzero(kept)}

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    pieces = np.flatnonzero(kept & cut)
    tree = shapely.STRtree(geoms[pieces])
    for a in pieces:
        reach = images[near.image[a]].edge_tolerance
        for j in tree.query(geoms[a], predicate="dwithin", distance=reach):
            b = pieces[j]
            if near.image[b] != near.image[a]:
                parent[root(max(a, b))] = root(min(a, b))
    groups: dict[int, list[int]] = {}
    for k in parent:
        groups.setdefault(root(k), []).append(int(k))
    return [groups[r] for r in sorted(groups)]


def joined(geometries: list[shapely.Geometry], gap: float) -> list[shapely.Geometry]:
    """``geometries`` as one polygon (closing gaps up to ``gap``), or as they were if not one."""
    union = shapely.union_all(geometries)
    if not isinstance(union, shapely.Polygon):
        grown = shapely.buffer(np.array(geometries, object), gap / 2, join_style="mitre")
        union = shapely.buffer(shapely.union_all(grown), -gap / 2, join_style="mitre")
    return [union] if isinstance(union, shapely.Polygon) else geometries


def write_resolved(
    near: NearBuildings, images: list[SurveyImage], writer: SurveyLayerWriter, report: MergeReport
) -> None:
    """Drop the held duplicates, join the seams' pieces and write what remains."""
    if not near.geometry:
        return
    kept, cut = drop_duplicates(near, images)
    report.duplicates = int((~kept).sum())
    rows: list[tuple[shapely.Geometry, float, float, str]] = []
    for group in join_seam_pieces(near, kept, cut, images):
        gap = max(images[near.image[k]].edge_tolerance for k in group)
        parts = [near.geometry[k] for k in group]
        outline = joined(parts, gap)
        if len(outline) == 1 and len(group) > 1:
            area = sum(near.area_m2[k] for k in group)
            mean = sum(near.area_m2[k] * near.confidence[k] for k in group) / area if area else 0
            names = "+".join(images[near.image[k]].name for k in group)
            rows.append((outline[0], round(area, 2), round(mean, 3), names))
            report.joined += len(group)
        else:
            rows.extend((near.geometry[k], near.area_m2[k], near.confidence[k],
                         images[near.image[k]].name) for k in group)  # fmt: skip
    geometry, area_m2, confidence, names = zip(*rows, strict=True)
    writer.write(np.array(geometry, object), np.array(area_m2), np.array(confidence), list(names))


def read_survey(out_dir: str, epsg: int | None) -> tuple[list[SurveyImage], CRS]:
    """The images of a footprints run in ``out_dir`` and the merged layer's CRS."""
    outputs = find_image_outputs(out_dir)
    crs_by_name = {name: image_crs(prob) for name, _, prob in outputs}
    target = survey_crs(crs_by_name, epsg)
    images = [read_image(n, g, p, crs_by_name[n], target) for n, g, p in outputs]
    return images, target


def merge_footprints(
    out_dir: str, epsg: int | None = None, margin: float = DEFAULT_MARGIN
) -> MergeReport:
    """Merge the footprints ``benchmark footprints`` wrote to ``out_dir`` into one layer.

    Args:
        out_dir: a local folder with ``{name}_buildings.gpkg`` and ``{name}_prob.tif`` per image.
        epsg: the merged layer's CRS (default: the images' one CRS).
        margin: metres from another image's extent within which a building is held to be
            resolved; farther ones are written as they are.

    Raises:
        InputError: no footprints, an image's COG missing or unreadable, mixed CRSs without
            ``epsg``.
    """
    images, target = read_survey(out_dir, epsg)
    outputs = MergeOutputs.of(out_dir)
    report = MergeReport(images=len(images))
    x, y = shapely.centroid(images[0].extent).coords[0]
    metres_per_unit, _ = ground_resolution(target, Affine.translation(x, y), 0, 0)
    zones = near_zones(images, margin / metres_per_unit)
    os.makedirs(os.path.dirname(outputs.gpkg), exist_ok=True)
    near = NearBuildings()
    with atomic_output(outputs.gpkg) as gpkg, atomic_output(outputs.parquet) as parquet:
        writer = SurveyLayerWriter(gpkg, parquet, target)
        for k, image in enumerate(images):
            for batch in read_buildings(image, target):
                close = shapely.intersects(zones[k], batch.geometry)
                near.add(batch, close, k)
                far = ~close
                if far.any():
                    writer.write(batch.geometry[far], batch.area_m2[far], batch.confidence[far],
                                 [image.name] * int(far.sum()))  # fmt: skip
        write_resolved(near, images, writer, report)
        writer.close()
        report.written = writer.count
    report.vrt = write_probability_vrt(images, target, outputs.vrt)
    if not report.vrt:
        log.warning("%s not written: the probability COGs are not all in %s", outputs.vrt, target)
    log.info("Merged %s into %s: %s", out_dir, os.path.dirname(outputs.gpkg), report.summary())
    return report
