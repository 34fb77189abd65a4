"""``benchmark predict``: a model bundle + a folder of test chips -> submission masks.

Runs without Raster Vision's pipeline: load ``bundle/model-bundle.zip``, predict every
``*.tif`` under the image folder (``{id}/{id}.tif`` or flat) into ``{OUT_DIR}/{id}.tif``
(single band uint8, 1 = building), optionally validate and pack ``submission.tgz``. A re-run
skips chips already predicted, so an interrupted run resumes. Test chips carry no
georeferencing, so their GSD is not known here: ``--chip-gsd`` gives it, and a bundle trained
at a GSD (``-a gsd``) then sees each chip resized to its GSD, as the pipeline's predict does.

Exit status: 0 done, 1 some chips could not be predicted (listed), 2 bad input (one line).
"""

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from benchmark.cli import options
from benchmark.console import log_like_rastervision
from benchmark.data.chips import list_test_chips
from benchmark.data.constants import CHIP_SIZE
from benchmark.data.gsd import gsd_scale
from benchmark.data.retries import apply_retry_defaults
from benchmark.data.submission import pack_submission
from benchmark.errors import InputError
from benchmark.inference.chips import ChipFolderReport, predict_chip_folder

log = logging.getLogger("benchmark.cli.predict")  # also when run as __main__

# uri -> object with .model (nn.Module), .threshold, .gsd, .window, .overlap (LoadedBundle)
BundleLoader = Callable[[str], Any]


def _chip_scale(chip_gsd: float | None, model_gsd: float | None) -> float:
    """Resize factor of the chips for the model; ``--chip-gsd`` needs a bundle with a GSD."""
    if chip_gsd is not None and model_gsd is None:
        raise InputError(
            "--chip-gsd: the bundle records no gsd (its model was trained at each scene's own "
            "resolution), so there is no GSD to resize the chips to"
        )
    return gsd_scale(chip_gsd, model_gsd)


def build_parser() -> argparse.ArgumentParser:
    """The command line (also ``wb_scripts/predict``)."""
    parser = options.CommandParser(
        "predict",
        description="Predict building masks for a folder of test chips with a model bundle.",
    )
    parser.add_argument("bundle", help="model bundle (bundle/model-bundle.zip; local or s3://)")
    parser.add_argument("img_dir", help="test chips: {id}/{id}.tif or {id}.tif (local or s3://)")
    parser.add_argument("out_dir", help="where {id}.tif masks go (local or s3://)")
    parser.add_argument("--overwrite", action="store_true", help="redo chips already predicted")
    parser.add_argument(
        "--pack", metavar="TGZ", default=None, help="validate the masks and write this archive"
    )
    parser.add_argument(
        "--num-workers",
        type=int,
        help="chip-decoding processes (default: one per core beside a GPU; on a CPU 1 where a "
        "core is free of the model, else 0)",
    )
    parser.add_argument(
        "--chip-size",
        type=options.side,
        default=CHIP_SIZE,
        help=f"chips' side in px (default {CHIP_SIZE})",
    )
    parser.add_argument(
        "--chip-gsd",
        type=options.metres,
        default=None,
        metavar="M",
        help="the chips' metres per pixel: a bundle trained at a gsd sees them resized to it, "
        "masks keep the chip size (default: chips as they are)",
    )
    options.add_model_arguments(
        parser,
        unit="chips",
        window_default="the bundle's prediction window; whole chips for a bundle that records none",
    )
    return parser


def predict_folder(args: argparse.Namespace, load_bundle: BundleLoader) -> ChipFolderReport:
    """Predict (and pack) as the parsed ``args`` say."""
    inference = options.inference_options(args, num_workers=args.num_workers)  # device first
    chips = list_test_chips(test_img_dir=args.img_dir)
    bundle = load_bundle(args.bundle)
    threshold = bundle.threshold if args.threshold is None else args.threshold
    scale = _chip_scale(args.chip_gsd, bundle.gsd)
    if bundle.gsd is not None and args.chip_gsd is None:
        log.warning(
            "The bundle's model works at %g m per pixel and the chips are predicted as they "
            "are: give their resolution with --chip-gsd M to resize them to the model's",
            bundle.gsd,
        )
    log.info(
        "%d test chips in %s; threshold %.3f; resized x%.3f for the model",
        len(chips), args.img_dir, threshold, scale,
    )  # fmt: skip
    settings = bundle.prediction(inference, args.window, args.overlap)
    report = predict_chip_folder(
        bundle.model,
        chips,
        args.out_dir,
        settings,
        threshold=threshold,
        expected_size=args.chip_size,
        chip_gsd=args.chip_gsd,
        overwrite=args.overwrite,
    )
    if args.pack:
        pack_submission(args.out_dir, [c.id for c in chips], args.pack, size=args.chip_size)
    return report


def main(argv: Sequence[str] | None = None, load_bundle: BundleLoader | None = None) -> int:
    """Run the command; ``load_bundle`` replaces :func:`~benchmark.pipeline.bundle.load_bundle`."""
    args = build_parser().parse_args(argv)
    apply_retry_defaults()  # S3 retries for every client, the aws CLI included
    log_like_rastervision(args.verbose)
    loader = load_bundle or options.bundle_loader(args.device)
    return options.exit_status(lambda: _outcome(predict_folder(args, loader)))


def _outcome(report: ChipFolderReport) -> int:
    """``EXIT_FAILED`` with the chips not predicted listed (ten at most), else ``EXIT_OK``."""
    if report.bad:
        options.print_error(report.not_predicted())
        return options.EXIT_FAILED
    log.info("Done: %s", report.summary())
    return options.EXIT_OK


if __name__ == "__main__":  # the old entry point: an alias of ``benchmark predict``
    from benchmark.cli.main import alias

    sys.exit(alias("predict"))
