"""The footprints of many overlapping orthomosaics as one layer, each building once.

A city's drone survey is dozens of orthomosaics overlapping at their edges, and ``benchmark
footprints`` on their folder outlines each image alone: a building in the overlap of two images
comes out twice, one cut by an image's edge comes out as a piece. Merging writes one layer for
the survey, in one CRS (the first image's, or the one asked for), by these rules:

- **Duplicates.** Two buildings of different images are copies of one building when their IoU
  is at least :data:`DUPLICATE_IOU` or their intersection is at least
  :data:`DUPLICATE_OVERLAP` of the smaller (a piece inside the whole): :func:`duplicate_pairs`.
  Copies are taken whole first, then farther from their image's edge (near an edge the model
  saw less context around the building and the orthomosaic is at its most distorted: the edge
  of the drone's coverage, fewer photos, steeper views), and each is dropped if it is a copy of
  one kept, with one exception below.
- **Cut by an edge.** A building within :data:`~benchmark.footprints.survey.EDGE_PIXELS`
  pixels of its image's edge is *cut*: a neighbour's whole copy of it wins (the rule above).
- **Cut everywhere.** When no image holds a building whole (it is wider than the images'
  overlap), each cut copy is the part of it one image saw: a cut copy whose kept copies are all
  cut is kept too, and they are written as their union (``area_m2`` the union's, ``confidence``
  averaged by the copies' areas, ``image`` the images joined by ``+``), where keeping the
  larger piece alone lost the rest of the house.
- **Seams.** Where images only touch, the halves of a building on both sides are both cut and
  touch each other: they are joined into one polygon the same way.
- **Two stay two.** A group joined so holds at most one building of each image, and a cut
  copy that overlaps (:data:`SPANNING_SHARE` of the smaller) a building one of its copies'
  images saw apart is dropped: in a small tile the model runs neighbouring roofs together, and
  that blob must not glue two houses another image outlined apart. Copies are taken in the
  order above, so the image that saw a building from farther inside decides.

Memory is bounded by the buildings near the images' overlaps and seams, not by the survey:
each image's buildings farther than ``margin`` metres from every other image's extent go
straight to the output; only the others are held (in an R-tree), resolved, then written after.
The outputs are written under partial names and published whole, and a re-run writes the same
layer (the images in name order, their buildings in file order). Both layer files are written
together, then published one after the other: ``buildings.parquet`` first, then
``buildings.gpkg``, then ``prob.vrt`` is written and published. A merge that fails while
writing publishes neither layer file (the GeoParquet writer is closed either way); one stopped
between two publications (killed, an upload refused) leaves those published new and the others
as the last merge left them, or absent; a re-run publishes all three again.

A folder may hold more than this survey's footprints (an earlier run on other images): given
the survey's image names, only theirs are merged (:func:`~benchmark.footprints.survey.
find_image_outputs`); ``benchmark merge-footprints`` merges the whole folder.

The folder may be on S3 (a Batch job's outputs): the COGs' headers are read through GDAL's
``/vsis3/``, each image's GeoPackage is downloaded while it is read, and the outputs are
written locally and uploaded whole (:func:`~benchmark.data.uris.atomic_output`); the VRT names
the COGs relative to itself, so it opens where it is. S3 retries are
:mod:`benchmark.data.retries`' (the command applies them).
"""

import logging
import os
from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np
import shapely
from affine import Affine
from pyproj import CRS

from benchmark.data.layout import join_uri
from benchmark.data.uris import atomic_output
from benchmark.footprints.ground import ground_resolution
from benchmark.footprints.matching import intersecting_ious
from benchmark.footprints.survey import (
    BuildingBatch,
    SurveyImage,
    find_image_outputs,
    read_buildings,
    read_image,
    read_probability_grid,
    survey_crs,
    write_probability_vrt,
)
from benchmark.footprints.survey_layer import SurveyLayerWriter

log = logging.getLogger(__name__)

DUPLICATE_IOU = 0.3
DUPLICATE_OVERLAP = 0.5
# A cut copy overlapping this share of a building it is not a copy of runs into it.
SPANNING_SHARE = 0.1
DEFAULT_MARGIN = 20.0  # metres: more than half a house, and a misregistration of a few metres
MERGED_DIR = "merged"  # in OUT_DIR: out of the way of the ``*_buildings.gpkg`` it reads


@dataclass(frozen=True)
class MergeOutputs:
    """Where the merged survey goes: ``{out_dir}/merged/buildings.{gpkg,parquet}``, ``prob.vrt``."""

    gpkg: str
    parquet: str
    vrt: str

    @classmethod
    def of(cls, out_dir: str) -> "MergeOutputs":
        """The outputs of merging ``out_dir`` (local or ``s3://``)."""
        names = ("buildings.gpkg", "buildings.parquet", "prob.vrt")
        return cls(*(join_uri(out_dir, MERGED_DIR, name) for name in names))


@dataclass
class MergeReport:
    """What a merge did: buildings written, duplicates dropped, pieces joined, the VRT's fate."""

    images: int = 0
    written: int = 0
    duplicates: int = 0
    joined: int = 0
    vrt: bool = False

    def summary(self) -> str:
        """One line for the log."""
        return (
            f"{self.images} image(s): {self.written} buildings, {self.duplicates} duplicate(s) "
            f"dropped, {self.joined} cut piece(s) joined"
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


def overlapping_pairs(geoms: np.ndarray) -> tuple[np.ndarray, ...]:
    """Pairs ``(i, j, IoU, share)``, i < j, of ``geoms`` that intersect.

    ``share`` is their intersection over the smaller one's area.
    """
    i, j, iou = intersecting_ious(geoms, geoms)
    i, j, iou = i[i < j], j[i < j], iou[i < j]
    area_i, area_j = shapely.area(geoms[i]), shapely.area(geoms[j])
    inter = iou * (area_i + area_j) / (1 + iou)  # IoU = I / (A + B - I)
    smaller = np.minimum(area_i, area_j)
    share = np.divide(inter, smaller, out=np.zeros_like(inter), where=smaller > 0)
    return i, j, iou, share


def duplicate_pairs(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs ``(i, j, IoU)``, i < j, of ``geoms`` that are copies of one building.

    The module's rule: IoU at least :data:`DUPLICATE_IOU`, or an intersection at least
    :data:`DUPLICATE_OVERLAP` of the smaller (a piece inside the whole). The merge resolves
    them; ``tools/survey_measure.py`` counts those a merged layer still holds.
    """
    i, j, iou, share = overlapping_pairs(geoms)
    same = copies_of_one(iou, share)
    return i[same], j[same], iou[same]


def copies_of_one(iou: np.ndarray, share: np.ndarray) -> np.ndarray:
    """Whether pairs of buildings with this IoU and share of the smaller are one building."""
    return (iou >= DUPLICATE_IOU) | (share >= DUPLICATE_OVERLAP)


def neighbours(count: int, i: np.ndarray, j: np.ndarray) -> list[list[int]]:
    """Per index below ``count``, the others it is paired with by ``(i, j)``, in pair order."""
    found: list[list[int]] = [[] for _ in range(count)]
    for a, b in zip(i.tolist(), j.tolist(), strict=True):
        found[a].append(b)
        found[b].append(a)
    return found


class PieceGroups:
    """Kept buildings joined into groups, at most one building of each image in a group.

    An image that outlined two buildings saw two buildings: a piece of another image that
    overlaps or touches both (the model ran two roofs together in a small tile) never glues
    them into one. A union-find; each root knows its group's images.
    """

    def __init__(self, owner: np.ndarray) -> None:
        self.owner = owner
        self.parent: dict[int, int] = {}
        self.images: dict[int, set[int]] = {}

    def add(self, k: int) -> None:
        """Make ``k`` a group of its own."""
        self.parent[k], self.images[k] = k, {int(self.owner[k])}

    def root(self, k: int) -> int:
        """The first member of ``k``'s group (its representative)."""
        while self.parent[k] != k:
            self.parent[k] = self.parent[self.parent[k]]
            k = self.parent[k]
        return k

    def spans(self, overlapping: list[int], held: list[int]) -> bool:
        """Whether a copy of ``held`` that overlaps ``overlapping`` runs into a second building.

        It does when it overlaps a building of one of ``held``'s groups' images that is not in
        those groups: that image saw two buildings where this copy has one.
        """
        roots = {self.root(k) for k in held}
        images = set().union(*(self.images[r] for r in roots))
        return any(self.root(m) not in roots and self.owner[m] in images for m in overlapping)

    def can_join(self, members: list[int]) -> bool:
        """Whether the groups of ``members`` (a new one: alone) hold two buildings of no image."""
        images = [self.images[r] for r in {self.root(k) for k in members if k in self.parent}]
        images += [{int(self.owner[k])} for k in members if k not in self.parent]
        return sum(map(len, images)) == len(set().union(*images))

    def join(self, members: list[int]) -> bool:
        """Join the groups of ``members`` (a new one added) if :meth:`can_join`; whether joined."""
        if not self.can_join(members):
            return False
        for k in members:
            if k not in self.parent:
                self.add(k)
        roots = sorted({self.root(k) for k in members})
        for r in roots[1:]:
            self.parent[r] = roots[0]
            self.images[roots[0]] |= self.images.pop(r)
        return True

    def groups(self) -> list[list[int]]:
        """The groups, each in reading order, in the order of their first member."""
        found: dict[int, list[int]] = {}
        for k in sorted(self.parent):
            found.setdefault(self.root(k), []).append(k)
        return list(found.values())


@dataclass
class Resolution:
    """What becomes of the held buildings: kept or not, cut or not, and the cut copies joined."""

    kept: np.ndarray
    cut: np.ndarray
    groups: PieceGroups


def resolve_duplicates(near: NearBuildings, images: list[SurveyImage]) -> Resolution:
    """Which held buildings are kept (the module's duplicate rule), cut, and joined as copies.

    Copies are taken whole first, then farther from their image's edge, then by image and
    reading order. One that is the same building as a kept copy of another image is dropped,
    unless it is cut and so are all those kept copies: then it is the part of the building its
    image saw, kept and joined to them (if that joins no two buildings of one image).
    """
    geoms = np.array(near.geometry, object)
    owner = np.array(near.image, int)
    boundaries = np.array([images[i].extent.boundary for i in owner], object)
    tolerance = np.array([images[i].edge_tolerance for i in owner])
    cut = shapely.distance(geoms, boundaries) <= tolerance
    edge_distance = shapely.distance(shapely.centroid(geoms), boundaries)
    order = np.lexsort((np.arange(len(geoms)), owner, -edge_distance, cut))
    i, j, iou, share = overlapping_pairs(geoms)
    across = owner[i] != owner[j]
    same, touching = across & copies_of_one(iou, share), across & (share >= SPANNING_SHARE)
    copies = neighbours(len(geoms), i[same], j[same])
    overlaps = neighbours(len(geoms), i[touching], j[touching])
    kept = np.zeros(len(geoms), bool)
    groups = PieceGroups(owner)
    for k in order.tolist():
        held = [c for c in copies[k] if kept[c]]
        if not held:
            groups.add(k)
        elif not (cut[k] and cut[held].all()):  # a whole copy, or this one is whole
            continue
        elif groups.spans([m for m in overlaps[k] if kept[m]], held):
            continue  # it runs into a building that one of its copies' images saw apart
        elif not groups.join([k, *held]):  # it would glue buildings an image kept apart
            continue
        kept[k] = True
    return Resolution(kept, cut, groups)


def join_pieces(
    near: NearBuildings, resolution: Resolution, images: list[SurveyImage]
) -> list[list[int]]:
    """The kept buildings as groups to write as one: cut copies and seams' pieces joined.

    Two kept pieces of different images also join when both are cut by their image's edge and
    they touch (within either image's edge tolerance), if that joins no two buildings of one
    image; a chain of them (a building across a corner of four images) is one group. Groups
    come in the order of their first member.
    """
    geoms = np.array(near.geometry, object)
    kept, cut, groups = resolution.kept, resolution.cut, resolution.groups
    pieces = np.flatnonzero(kept & cut)
    reach = np.array([images[near.image[k]].edge_tolerance for k in pieces])
    tree = shapely.STRtree(geoms[pieces])
    left, right = tree.query(geoms[pieces], predicate="dwithin", distance=reach.max(initial=0))
    owner = np.array(near.image, int)[pieces]
    distance = shapely.distance(geoms[pieces[left]], geoms[pieces[right]])
    close = (distance <= np.maximum(reach[left], reach[right])) & (owner[left] != owner[right])
    for a, b in sorted(
        zip(pieces[left[close]].tolist(), pieces[right[close]].tolist(), strict=True)
    ):
        if a < b:
            groups.join([a, b])
    return groups.groups()


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
    """Drop the held duplicates, join cut copies and the seams' pieces, write what remains."""
    if not near.geometry:
        return
    resolution = resolve_duplicates(near, images)
    report.duplicates = int((~resolution.kept).sum())
    rows: list[tuple[shapely.Geometry, float, float, str]] = []
    for group in join_pieces(near, resolution, images):
        gap = max(images[near.image[k]].edge_tolerance for k in group)
        parts = [near.geometry[k] for k in group]
        outline = joined(parts, gap)
        if len(outline) == 1 and len(group) > 1:
            # The union's area in m², at the pieces' own ratio of m² to the CRS's units.
            area_m2 = [near.area_m2[k] for k in group]
            units = sum(part.area for part in parts)
            area = outline[0].area * sum(area_m2) / units if units else 0.0
            weights = sum(area_m2)
            mean = sum(a * near.confidence[k] for a, k in zip(area_m2, group, strict=True))
            names = "+".join(dict.fromkeys(images[near.image[k]].name for k in group))
            rows.append((outline[0], round(area, 2), round(mean / weights if weights else 0, 3),
                         names))  # fmt: skip
            report.joined += len(group)
        else:
            rows.extend((near.geometry[k], near.area_m2[k], near.confidence[k],
                         images[near.image[k]].name) for k in group)  # fmt: skip
    geometry, area_m2, confidence, names = zip(*rows, strict=True)
    writer.write(np.array(geometry, object), np.array(area_m2), np.array(confidence), list(names))


def read_survey(
    out_dir: str, epsg: int | None, names: Collection[str] | None = None
) -> tuple[list[SurveyImage], CRS]:
    """The images of a footprints run in ``out_dir`` (only ``names``, if given), the layer's CRS."""
    outputs = find_image_outputs(out_dir, names)
    grids = {name: read_probability_grid(prob) for name, _, prob in outputs}
    target = survey_crs({name: grid.crs for name, grid in grids.items()}, epsg)
    images = [read_image(n, g, p, grids[n], target) for n, g, p in outputs]
    return images, target


def merge_footprints(
    out_dir: str,
    epsg: int | None = None,
    margin: float = DEFAULT_MARGIN,
    names: Collection[str] | None = None,
) -> MergeReport:
    """Merge the footprints ``benchmark footprints`` wrote to ``out_dir`` into one layer.

    Args:
        out_dir: a folder with ``{name}_buildings.gpkg`` and ``{name}_prob.tif`` per image,
            local or ``s3://`` (the outputs go there too).
        epsg: the merged layer's CRS (default: the images' one CRS).
        margin: metres from another image's extent within which a building is held to be
            resolved; farther ones are written as they are.
        names: merge only these images' footprints (a survey's: others may be in ``out_dir``
            from an earlier run; one warning says how many are left out); None: all of them.

    Raises:
        InputError: no footprints (or none of an image of ``names``), an image's COG missing
            or unreadable, mixed CRSs without ``epsg``; S3 unreachable or refusing (an
            ``AwsError``, one line).
        OutputError: an output cannot be written.
    """
    images, target = read_survey(out_dir, epsg, names)
    outputs = MergeOutputs.of(out_dir)
    report = MergeReport(images=len(images))
    x, y = shapely.centroid(images[0].extent).coords[0]
    metres_per_unit, _ = ground_resolution(target, Affine.translation(x, y), 0, 0)
    zones = near_zones(images, margin / metres_per_unit)
    near = NearBuildings()
    with atomic_output(outputs.gpkg) as gpkg, atomic_output(outputs.parquet) as parquet:
        with SurveyLayerWriter(gpkg, parquet, target) as writer:
            for k, image in enumerate(images):
                for batch in read_buildings(image, target):
                    close = shapely.intersects(zones[k], batch.geometry)
                    near.add(batch, close, k)
                    far = ~close
                    if far.any():
                        writer.write(
                            batch.geometry[far], batch.area_m2[far], batch.confidence[far],
                            [image.name] * int(far.sum()),
                        )  # fmt: skip
            write_resolved(near, images, writer, report)
        report.written = writer.count
    report.vrt = write_probability_vrt(images, target, outputs.vrt)
    if not report.vrt:
        log.warning("%s not written: the probability COGs are not all in %s", outputs.vrt, target)
    log.info("Merged %s into %s: %s", out_dir, os.path.dirname(outputs.gpkg), report.summary())
    return report
