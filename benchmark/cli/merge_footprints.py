"""``benchmark merge-footprints``: a footprints run on a folder -> one layer for the survey.

OUT_DIR is where ``benchmark footprints`` wrote a folder of orthomosaics' outputs
(``{name}_buildings.gpkg`` and ``{name}_prob.tif`` per image), local or ``s3://`` (a Batch
job's). ``OUT_DIR/merged/`` gets
``buildings.gpkg`` and ``buildings.parquet`` (GeoParquet): every building once, in one CRS,
those in the images' overlaps deduplicated and those cut by images' edges joined
(:mod:`benchmark.footprints.merge`), and ``prob.vrt``, the probability COGs as one mosaic.

Exit status: 0 done, 2 bad input (one line).
"""

import argparse
import sys
from collections.abc import Sequence

from benchmark.cli import options
from benchmark.cli.options import EXIT_OK, exit_status
from benchmark.console import log_like_rastervision
from benchmark.data.retries import apply_retry_defaults
from benchmark.footprints.merge import DEFAULT_MARGIN, merge_footprints


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = options.CommandParser(
        "merge-footprints",
        description="Merge the per-image footprints of a folder of overlapping orthomosaics "
        "(benchmark footprints BUNDLE FOLDER OUT_DIR) into one deduplicated layer: "
        "OUT_DIR/merged/buildings.gpkg, buildings.parquet (GeoParquet) and prob.vrt.",
    )
    parser.add_argument("out_dir", help="the footprints run's output folder (local or s3://)")
    parser.add_argument(
        "--crs", type=options.epsg_code, default=None, metavar="EPSG",
        help="the merged layer's CRS (default: the images' own, which must then be one)",
    )  # fmt: skip
    parser.add_argument(
        "--margin", type=options.non_negative, default=DEFAULT_MARGIN, metavar="METRES",
        help="buildings this close to another image's extent are checked for duplicates and "
        f"seams; farther ones are written as they are (default {DEFAULT_MARGIN:g})",
    )  # fmt: skip
    options.add_verbose_argument(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command."""
    args = build_parser().parse_args(argv)
    log_like_rastervision(args.verbose)
    apply_retry_defaults()  # S3 retries for boto3 and GDAL's /vsis3/

    def run() -> int:
        merge_footprints(args.out_dir, args.crs, args.margin)
        return EXIT_OK

    return exit_status(run)


if __name__ == "__main__":
    from benchmark.cli.main import alias

    sys.exit(alias("merge-footprints"))
