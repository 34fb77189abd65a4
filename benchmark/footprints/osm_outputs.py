"""An image's footprints into OpenStreetMap: conflated, then the files mappers load.

After an image's footprints are written, its existing buildings are read (a file, or asked
from Overpass for the image's box: :mod:`benchmark.footprints.osm_input`), the footprints read
back from their GeoPackage and conflated with them (:mod:`benchmark.footprints.conflation`),
and beside the footprint files come:

- ``{name}_new.osm`` and ``{name}_new.osc``: the new buildings, squared, as JOSM XML and as an
  OsmChange (:mod:`benchmark.footprints.osm_write`);
- ``{name}_maproulette.geojson``: a cooperative MapRoulette task per cluster of new buildings
  (:mod:`benchmark.footprints.maproulette`);
- ``{name}_conflation.gpkg``: layer ``footprints`` (every footprint with its ``status``,
  ``osm_id`` and best ``iou``) and layer ``existing`` (the existing buildings in the image's
  box, ``seen`` or ``not_seen``), both in the image's CRS;
- ``{name}_coverage.json`` and ``.png``: found and mapped buildings per grid cell
  (:mod:`benchmark.footprints.coverage`);
- ``{name}_review.html``: the offline review page (:mod:`benchmark.footprints.review`).

Each file is atomic; the review page is written last, so an image whose page exists is done.
"""

import logging
from dataclasses import dataclass, field

import geopandas as gpd
import pyogrio
import rasterio
from pyogrio.errors import DataLayerError, DataSourceError

from benchmark.data.uris import atomic_output, uri_exists
from benchmark.errors import InputError
from benchmark.footprints.conflation import (
    CHANGED,
    MAPPED,
    NEW,
    NOT_SEEN,
    ConflationRules,
    conflate,
)
from benchmark.footprints.coverage import DEFAULT_CELL_SIZE, coverage_grid, write_coverage
from benchmark.footprints.ground import WGS84
from benchmark.footprints.maproulette import DEFAULT_TASK_DISTANCE, NewBuilding, write_tasks
from benchmark.footprints.osm_input import (
    DEFAULT_OVERPASS_TIMEOUT,
    ExistingBuildings,
    fetch_overpass,
    lonlat_bounds,
    read_osm_file,
    warn_if_not_covering,
)
from benchmark.footprints.osm_write import (
    DEFAULT_SOURCE,
    building_fragments,
    osm_change,
    osm_document,
    square_outlines,
    write_text,
)
from benchmark.footprints.review import ReviewFeature, write_review_page
from benchmark.footprints.write import gpkg_under_any_name, image_output_uris

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExistingSource:
    """Where the existing buildings come from: a file or an Overpass endpoint (one of them).

    Attributes:
        osm_file: an OSM extract, GeoJSON, GeoPackage... (local path or GDAL-readable URI).
        overpass_url: an Overpass API interpreter URL, asked per image for its box.
        overpass_timeout: seconds to wait for Overpass's answer.
    """

    osm_file: str | None = None
    overpass_url: str | None = None
    overpass_timeout: float = DEFAULT_OVERPASS_TIMEOUT

    def __post_init__(self) -> None:
        """Exactly one of the two sources."""
        if bool(self.osm_file) == bool(self.overpass_url):
            raise ValueError("ExistingSource takes an osm_file or an overpass_url")

    def buildings(
        self, lonlat_box: tuple[float, float, float, float], image: str
    ) -> ExistingBuildings:
        """The existing buildings in ``lonlat_box`` (InputError when they cannot be had)."""
        if self.osm_file:
            existing = read_osm_file(self.osm_file)
            warn_if_not_covering(existing, lonlat_box, image)
            return existing.within(lonlat_box)
        return fetch_overpass(str(self.overpass_url), lonlat_box, self.overpass_timeout)


@dataclass(frozen=True)
class MappingSettings:
    """What the OSM outputs are made of and how.

    Attributes:
        source: where the existing buildings come from.
        rules: conflation thresholds.
        task_distance: metres within which new buildings share a MapRoulette task.
        cell_size: the coverage grid's cell side in metres.
        source_tag: the ``source`` tag of the new buildings.
    """

    source: ExistingSource
    rules: ConflationRules = field(default_factory=ConflationRules)
    task_distance: float = DEFAULT_TASK_DISTANCE
    cell_size: float = DEFAULT_CELL_SIZE
    source_tag: str = DEFAULT_SOURCE


@dataclass(frozen=True)
class MappingOutputs:
    """Where one image's OSM outputs go."""

    new_osm: str
    new_osc: str
    maproulette: str
    conflation: str
    coverage_json: str
    coverage_png: str
    review: str

    @classmethod
    def of(cls, out_dir: str, name: str) -> "MappingOutputs":
        """``{out_dir}/{name}_new.osm`` and the others (see the module docstring)."""
        suffixes = ("_new.osm", "_new.osc", "_maproulette.geojson", "_conflation.gpkg",
                    "_coverage.json", "_coverage.png", "_review.html")  # fmt: skip
        return cls(*image_output_uris(out_dir, name, *suffixes))

    def finished(self) -> bool:
        """Whether they were all written (the review page is last)."""
        return uri_exists(self.review)


def _write_layers(uri: str, layers: dict[str, gpd.GeoDataFrame]) -> None:
    with atomic_output(uri) as path, gpkg_under_any_name():
        for layer, frame in layers.items():
            pyogrio.write_dataframe(frame, path, layer=layer, driver="GPKG")


def write_mapping_outputs(
    image_uri: str,
    name: str,
    footprints_gpkg: str,
    outputs: MappingOutputs,
    settings: MappingSettings,
) -> dict[str, int]:
    """Conflate one image's footprints and write its OSM outputs; the count of each status.

    Raises:
        InputError: the existing buildings cannot be had (file, Overpass), or the image's
            footprints cannot be read; nothing written.
    """
    with rasterio.open(image_uri) as src:
        crs, lonlat_box = src.crs, lonlat_bounds(src.crs, tuple(src.bounds))
    existing = settings.source.buildings(lonlat_box, image_uri)
    try:
        found = pyogrio.read_dataframe(footprints_gpkg)
    except (DataSourceError, DataLayerError) as exc:
        raise InputError(f"{footprints_gpkg}: footprints not read ({exc})") from None
    lonlat = list(found.geometry.to_crs(WGS84).values)
    result = conflate(lonlat, existing, settings.rules)
    found = found.assign(status=result.status, osm_id=result.osm_id, iou=result.iou)
    known = gpd.GeoDataFrame(
        {"osm_id": list(existing.osm_ids), "status": result.existing_status},
        geometry=list(existing.polygons),
        crs=WGS84,
    ).to_crs(crs)

    new_rows = [i for i, status in enumerate(result.status) if status == NEW]
    squared = square_outlines([lonlat[i] for i in new_rows])
    fragments = building_fragments(squared, settings.source_tag)
    write_text(osm_document(fragments), outputs.new_osm)
    write_text(osm_change(fragments), outputs.new_osc)
    properties = [
        {
            "area_m2": float(found.area_m2.iloc[i]),
            "confidence": float(found.confidence.iloc[i]),
            "osm_id": result.osm_id[i],
        }
        for i in range(len(found))
    ]
    new = [
        NewBuilding(outline, fragment, {"building": "yes", **properties[i]})
        for i, outline, fragment in zip(new_rows, squared, fragments, strict=True)
    ]
    tasks = write_tasks(new, settings.task_distance, outputs.maproulette)
    _write_layers(outputs.conflation, {"footprints": found, "existing": known})
    grid = coverage_grid(lonlat, result.status, lonlat_box, settings.cell_size)
    write_coverage(grid, outputs.coverage_json, outputs.coverage_png, name)

    by_row = dict(zip(new_rows, range(len(new)), strict=True))
    page = [
        ReviewFeature(new[by_row[i]].lonlat, NEW, properties[i], new[by_row[i]].fragment)
        if i in by_row
        else ReviewFeature(lonlat[i], result.status[i], properties[i])
        for i in range(len(found))
    ]
    page += [
        ReviewFeature(polygon, NOT_SEEN, {"osm_id": osm_id})
        for polygon, osm_id, status in zip(
            existing.polygons, existing.osm_ids, result.existing_status, strict=True
        )
        if status == NOT_SEEN
    ]
    write_review_page(name, image_uri, page, outputs.review)
    counts = {s: result.status.count(s) for s in (NEW, MAPPED, CHANGED)}
    counts[NOT_SEEN] = result.existing_status.count(NOT_SEEN)
    counts["tasks"] = tasks
    log.info("%s: %s -> %s", name, counts, outputs.review)
    return counts
