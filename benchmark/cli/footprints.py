"""``benchmark footprints``: a model bundle + orthomosaics -> building footprints.

INPUT is a GeoTIFF or COG, a folder of them, or a STAC item or catalog (local or s3://), in
any CRS and at any resolution. For each image, OUT_DIR gets ``{name}_prob.tif`` (uint8
probabilities on the image's grid, a COG), ``{name}_buildings.geojson`` (RFC 7946, lon/lat)
and ``{name}_buildings.gpkg`` (the image's CRS); every building has ``building=yes``,
``area_m2`` and ``confidence``. Memory is bounded by a strip of prediction windows and a
block of the probability raster, whatever the image's size. A re-run skips finished images.

Exit status: 0 done, 1 some images could not be outlined (listed), 2 bad input (one line).
"""

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from benchmark.cli import options
from benchmark.cli.options import EXIT_FAILED, EXIT_OK, exit_status, print_error
from benchmark.console import log_like_rastervision
from benchmark.data.retries import apply_retry_defaults
from benchmark.errors import listed_problems
from benchmark.footprints.conflation import DEFAULT_MIN_OVERLAP, ConflationRules
from benchmark.footprints.coverage import DEFAULT_CELL_SIZE
from benchmark.footprints.inputs import list_images
from benchmark.footprints.maproulette import DEFAULT_TASK_DISTANCE
from benchmark.footprints.matching import MIN_IOU
from benchmark.footprints.osm_input import DEFAULT_OVERPASS_TIMEOUT, DEFAULT_OVERPASS_URL
from benchmark.footprints.osm_outputs import ExistingSource, MappingSettings
from benchmark.footprints.osm_write import DEFAULT_SOURCE
from benchmark.footprints.outlines import DEFAULT_MIN_AREA
from benchmark.footprints.run import FootprintReport
from benchmark.inference.settings import SCENE_WINDOW

log = logging.getLogger("benchmark.cli.footprints")  # also when run as __main__

# uri -> object with .model, .threshold, .gsd, .window, .overlap (LoadedBundle)
BundleLoader = Callable[[str], Any]


def build_parser() -> argparse.ArgumentParser:
    """The command line (also ``wb_scripts/footprints``)."""
    parser = options.CommandParser(
        "footprints",
        description="Building footprints (GeoJSON, GeoPackage) and probabilities (COG) for "
        "georeferenced drone or aerial imagery, with a model bundle.",
    )
    parser.add_argument("bundle", help="model bundle (bundle/model-bundle.zip; local or s3://)")
    parser.add_argument(
        "input", help="a GeoTIFF/COG, a folder of *.tif, or a STAC item or catalog (or s3://)"
    )
    parser.add_argument("out_dir", help="where the outputs go (local or s3://)")
    parser.add_argument(
        "--min-area",
        type=options.non_negative,
        default=DEFAULT_MIN_AREA,
        metavar="M2",
        help=f"drop buildings under this many m² (default {DEFAULT_MIN_AREA:g})",
    )
    parser.add_argument(
        "--simplify",
        type=options.non_negative,
        default=None,
        metavar="M",
        help="simplification tolerance in metres, 0 = off (default: one pixel at the model's "
        "GSD, which removes the pixel staircase)",
    )
    parser.add_argument(
        "--regularize", action="store_true", help="right-angle outlines for rectilinear roofs"
    )
    options.add_model_arguments(
        parser, unit="windows", window_default=f"the bundle's, else {SCENE_WINDOW}"
    )
    parser.add_argument("--overwrite", action="store_true", help="redo finished images")
    add_osm_arguments(parser)
    return parser


def _seconds(value: str) -> float:
    """A timeout: more than 0 seconds (kept here: options.py is being reworked)."""
    number = float(value)
    if not number > 0:
        raise argparse.ArgumentTypeError(f"{value} is not a number of seconds above 0")
    return number


def add_osm_arguments(parser: argparse.ArgumentParser) -> None:
    """``--osm`` / ``--overpass`` and the conflation's thresholds (docs/footprints.md)."""
    group = parser.add_argument_group(
        "OpenStreetMap", "conflate with the buildings OSM has; write what is missing as .osm, "
        ".osc, MapRoulette tasks, a coverage grid and a review page"
    )  # fmt: skip
    source = group.add_mutually_exclusive_group()
    source.add_argument(
        "--osm", metavar="FILE", help="existing buildings: an .osm or .osm.pbf extract, "
        "GeoJSON or GeoPackage, any CRS",
    )  # fmt: skip
    source.add_argument(
        "--overpass", metavar="URL", nargs="?", const=DEFAULT_OVERPASS_URL,
        help=f"existing buildings from an Overpass API endpoint (default {DEFAULT_OVERPASS_URL})",
    )  # fmt: skip
    group.add_argument(
        "--overpass-timeout", type=_seconds, default=DEFAULT_OVERPASS_TIMEOUT,
        metavar="S", help=f"seconds to wait for Overpass (default {DEFAULT_OVERPASS_TIMEOUT:g})",
    )  # fmt: skip
    group.add_argument(
        "--match-iou", type=options.probability, default=MIN_IOU, metavar="IOU",
        help=f"a footprint is a mapped building at this IoU (default {MIN_IOU:g})",
    )  # fmt: skip
    group.add_argument(
        "--min-overlap", type=options.probability, default=DEFAULT_MIN_OVERLAP, metavar="F",
        help="a footprint overlaps a mapped building (is not new) when they share this "
        f"fraction of the smaller one (default {DEFAULT_MIN_OVERLAP:g})",
    )  # fmt: skip
    group.add_argument(
        "--task-distance", type=options.non_negative, default=DEFAULT_TASK_DISTANCE,
        metavar="M", help="new buildings this close share a MapRoulette task (default "
        f"{DEFAULT_TASK_DISTANCE:g} m)",
    )  # fmt: skip
    group.add_argument(
        "--coverage-cell", type=options.metres, default=DEFAULT_CELL_SIZE, metavar="M",
        help=f"coverage grid cell side (default {DEFAULT_CELL_SIZE:g} m)",
    )  # fmt: skip
    group.add_argument(
        "--source-tag", default=DEFAULT_SOURCE, metavar="TEXT",
        help=f"the new buildings' source=* tag (default {DEFAULT_SOURCE})",
    )  # fmt: skip


def mapping_settings(args: argparse.Namespace) -> MappingSettings | None:
    """The OSM outputs' settings from ``args``; None without ``--osm`` or ``--overpass``."""
    if not args.osm and not args.overpass:
        return None
    return MappingSettings(
        source=ExistingSource(args.osm, args.overpass, args.overpass_timeout),
        rules=ConflationRules(args.match_iou, args.min_overlap),
        task_distance=args.task_distance,
        cell_size=args.coverage_cell,
        source_tag=args.source_tag,
    )


def outline_images(args: argparse.Namespace, load_bundle: BundleLoader) -> FootprintReport:
    """Find the images, load the bundle and outline them as the parsed ``args`` say."""
    # The survey pipeline's module, which outlines as this command does: imported here, as
    # it imports Raster Vision's pipeline (``--help`` stays quick).
    from benchmark.pipeline.footprints import footprint_settings, outline_with_bundle

    inference = options.inference_options(args)  # the device checked before anything is read
    images = list_images(args.input)
    bundle = load_bundle(args.bundle)
    settings = footprint_settings(
        bundle,
        inference,
        threshold=args.threshold,
        window=args.window,
        overlap=args.overlap,
        min_area=args.min_area,
        simplify=args.simplify,
        regularize=args.regularize,
        overwrite=args.overwrite,
        mapping=mapping_settings(args),
    )
    return outline_with_bundle(bundle, images, args.out_dir, settings)


def main(argv: Sequence[str] | None = None, load_bundle: BundleLoader | None = None) -> int:
    """Run the command; ``load_bundle`` replaces :func:`~benchmark.pipeline.bundle.load_bundle`."""
    args = build_parser().parse_args(argv)
    apply_retry_defaults()  # S3 retries for every client, the aws CLI included
    log_like_rastervision(args.verbose)
    loader = load_bundle or options.bundle_loader(args.device)

    def run() -> int:
        report = outline_images(args, loader)
        if report.failed:
            listed = listed_problems([report.failed[name] for name in sorted(report.failed)])
            print_error(f"{len(report.failed)} image(s) not outlined: {listed}")
            return EXIT_FAILED
        if report.unmapped:
            problems = sorted(set(report.unmapped.values()))
            listed = "; ".join(problems[:3]) + ("; ..." if len(problems) > 3 else "")
            print_error(f"{len(report.unmapped)} image(s) without OSM outputs: {listed}")
            return EXIT_FAILED
        log.info("Done: %s", report.summary())
        return EXIT_OK

    return exit_status(run)


if __name__ == "__main__":  # the old entry point: an alias of ``benchmark footprints``
    from benchmark.cli.main import alias

    sys.exit(alias("footprints"))
