"""Building footprints for orthomosaics: probabilities, then outlines, image by image.

For each image: its probability raster on its own grid at the model's GSD
(:mod:`benchmark.footprints.probabilities`, a temporary tiled GeoTIFF), traced block by block
(:mod:`benchmark.footprints.vectorize`), made into footprints
(:mod:`benchmark.footprints.outlines`) and written as it goes
(:mod:`benchmark.footprints.write`); the probability raster is published as a COG last. Every
output is atomic, so an image whose three outputs exist is finished and a re-run skips it. An
image that cannot be read (not georeferenced, truncated, not 8-bit RGB, gone) is reported in
one line and the others go on; an output that cannot be written (read-only folder, full disk:
:class:`~benchmark.errors.OutputError`) stops the run, as every next image would meet it too.

With ``settings.mapping`` (``--osm``, ``--overpass``), each image's footprints are then
conflated with OpenStreetMap's buildings and the files mappers load are written beside them
(:mod:`benchmark.footprints.osm_outputs`). When the existing buildings cannot be had (a file
that cannot be read, Overpass down), that is one warning and the image keeps its footprints;
a re-run makes the OSM outputs of images that lack them without tracing them again.
"""

import logging
import os
import tempfile
from dataclasses import dataclass, field

import rasterio
from rasterio.errors import RasterioError
from shapely.errors import GEOSException
from torch import nn

from benchmark.data.uris import TMP_PREFIX, uri_exists
from benchmark.errors import InputError, OutputError
from benchmark.footprints.inputs import ImageRef
from benchmark.footprints.osm_outputs import MappingOutputs, MappingSettings, write_mapping_outputs
from benchmark.footprints.outlines import DEFAULT_MIN_AREA, OutlineOptions, footprints_of_raster
from benchmark.footprints.probabilities import ImageGrid, predict_on_image_grid, write_cog
from benchmark.footprints.write import image_output_uris, write_footprints
from benchmark.inference.settings import PredictionSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FootprintSettings:
    """Everything but the model that decides an image's footprints.

    Attributes:
        threshold: a pixel is a building when P > threshold.
        simplify: tolerance in metres; None: one pixel of the model's GSD (of the image's own
            ground resolution for a bundle without one), which removes the pixel staircase.
        regularize: square the outlines.
        min_area: drop footprints under this many m².
        prediction: how the probability raster is predicted (device, plan, windows, the
            model's GSD: None, each image's own).
        overwrite: redo images whose outputs exist.
        mapping: conflate with OpenStreetMap and write the OSM outputs (None: not).
    """

    threshold: float
    simplify: float | None = None
    regularize: bool = False
    min_area: float = DEFAULT_MIN_AREA
    prediction: PredictionSettings = field(default_factory=PredictionSettings)
    overwrite: bool = False
    mapping: MappingSettings | None = None


@dataclass(frozen=True)
class FootprintOutputs:
    """Where one image's outputs go."""

    prob: str
    geojson: str
    gpkg: str

    @classmethod
    def of(cls, out_dir: str, name: str) -> "FootprintOutputs":
        """``{out_dir}/{name}_prob.tif``, ``_buildings.geojson`` and ``_buildings.gpkg``."""
        return cls(
            *image_output_uris(out_dir, name, "_prob.tif", "_buildings.geojson", "_buildings.gpkg")
        )

    def all_exist(self) -> bool:
        """Whether the image is finished (outputs are atomic)."""
        return all(uri_exists(u) for u in (self.prob, self.geojson, self.gpkg))


@dataclass
class FootprintReport:
    """What a run did, image by image."""

    written: dict[str, int] = field(default_factory=dict)  # image name -> footprints
    skipped: list[str] = field(default_factory=list)  # finished by an earlier run
    failed: dict[str, str] = field(default_factory=dict)  # image name -> one-line problem
    mapped: dict[str, dict[str, int]] = field(default_factory=dict)  # name -> status counts
    unmapped: dict[str, str] = field(default_factory=dict)  # name -> why no OSM outputs

    def summary(self) -> str:
        """One line for the log."""
        buildings = sum(self.written.values())
        line = (
            f"{len(self.written)} image(s) outlined ({buildings} buildings), "
            f"{len(self.skipped)} already done, {len(self.failed)} failed"
        )
        if self.mapped or self.unmapped:
            new = sum(counts["new"] for counts in self.mapped.values())
            line += (
                f"; OSM outputs for {len(self.mapped)} ({new} new buildings), "
                f"{len(self.unmapped)} without"
            )
        return line


def footprints_for_image(
    model: nn.Module,
    image: ImageRef,
    out_dir: str,
    settings: FootprintSettings,
    tmp_dir: str | None = None,
) -> int:
    """Write one image's three outputs to ``out_dir``; the number of footprints.

    ``tmp_dir`` holds the probability raster until it is published (system default).
    """
    outputs = FootprintOutputs.of(out_dir, image.name)
    grid = ImageGrid.of(image.uri)
    simplify = settings.simplify
    if simplify is None:
        simplify = settings.prediction.gsd or sum(grid.ground_res) / 2
    with tempfile.TemporaryDirectory(prefix=TMP_PREFIX, dir=tmp_dir) as work_dir:
        prob = os.path.join(work_dir, "prob.tif")
        predict_on_image_grid(model, image.uri, prob, settings.prediction, grid)
        with rasterio.open(prob) as src:
            crs_wkt = src.crs.to_wkt()
        options = OutlineOptions(simplify, settings.regularize, settings.min_area)
        found = footprints_of_raster(prob, settings.threshold, options)
        count = write_footprints(found, outputs.geojson, outputs.gpkg, crs_wkt)
        write_cog(prob, outputs.prob)
    log.info("%s: %d buildings -> %s", image.uri, count, outputs.geojson)
    return count


def footprints_for_images(
    model: nn.Module,
    images: list[ImageRef],
    out_dir: str,
    settings: FootprintSettings,
    tmp_dir: str | None = None,
) -> FootprintReport:
    """Outline every image in turn; finished ones are skipped, failures reported by name."""
    report = FootprintReport()
    to_trace, to_map = [], []
    for image in images:
        traced = not settings.overwrite and FootprintOutputs.of(out_dir, image.name).all_exist()
        mapped = not settings.mapping or (
            not settings.overwrite and MappingOutputs.of(out_dir, image.name).finished()
        )
        if traced and mapped:
            report.skipped.append(image.name)
        elif not traced:
            to_trace.append(image)
        else:
            to_map.append(image)
    if report.skipped:
        log.info("%d image(s) already outlined in %s: skipped", len(report.skipped), out_dir)
    for image in [*to_trace, *to_map]:
        try:
            if image in to_trace:
                report.written[image.name] = footprints_for_image(
                    model, image, out_dir, settings, tmp_dir
                )
            if settings.mapping:
                _map_image(image, out_dir, settings.mapping, report)
        except OutputError:
            raise
        except (InputError, RasterioError, OSError) as exc:
            problem = " ".join(str(exc).split())
            report.failed[image.name] = (
                problem if image.uri in problem else f"{image.uri}: {problem}"
            )
            log.error("%s (not outlined)", report.failed[image.name])
    log.info("%s: %s", out_dir, report.summary())
    return report


def _map_image(image: ImageRef, out_dir: str, mapping: MappingSettings, report: FootprintReport):
    """Write ``image``'s OSM outputs; existing buildings not to be had: a warning, no outputs."""
    footprints = FootprintOutputs.of(out_dir, image.name).gpkg
    try:
        report.mapped[image.name] = write_mapping_outputs(
            image.uri, image.name, footprints, MappingOutputs.of(out_dir, image.name), mapping
        )
    except (InputError, GEOSException) as exc:
        report.unmapped[image.name] = " ".join(str(exc).split())
        log.warning("%s: no OSM outputs (its footprints are written): %s", image.name, exc)
