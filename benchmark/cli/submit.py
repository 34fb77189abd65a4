"""``benchmark submit``: POSTPROCESS's masks of a run, checked and packed into submission.tgz.

Takes the masks POSTPROCESS wrote under ROOT_URI for EXPERIMENT_ID (downloaded next to the
archive, into ``masks/``, with ``aws s3 sync`` and our retries when ROOT_URI is on S3; a local
folder is used in place), checks that every test chip (from the test catalog and/or folder)
has exactly one valid mask ({id}.tif, single band uint8 0/1, N x N px) and nothing else is
there, and writes the archive for the competition's submission page. Nothing is written if a
mask is missing or malformed: the problems are listed in one line.

Exit status: 0 written, 2 bad input (one line).
"""

import os
import sys
from collections.abc import Sequence

from benchmark.cli import options
from benchmark.data import layout
from benchmark.data.chips import list_test_chips
from benchmark.data.retries import apply_retry_defaults
from benchmark.data.s3_file_system import aws_sync
from benchmark.data.submission import pack_submission
from benchmark.data.uri_schemes import is_s3
from benchmark.data.uris import TMP_PREFIX
from benchmark.errors import InputError


def local_masks(root_uri: str, experiment_id: str, out: str) -> str:
    """The folder of the run's masks on this machine, downloaded beside ``out`` from S3.

    Raises:
        InputError: POSTPROCESS wrote no masks there.
    """
    masks = layout.postprocess_dir(root_uri, experiment_id)
    if is_s3(masks):
        download = os.path.join(os.path.dirname(out), "masks")
        os.makedirs(download, exist_ok=True)
        sys.stderr.write(f"Downloading {masks}/ to {download}/\n")
        # --delete: masks left from an earlier download must not slip into this submission.
        aws_sync(f"{masks}/", f"{download}/", delete=True, exclude=[f"{TMP_PREFIX}*"], quiet=True)
        masks = download
    if not os.path.isdir(masks):
        raise InputError(f"{masks}: no such directory (has POSTPROCESS run for {experiment_id}?)")
    return masks


def build_parser() -> options.CommandParser:
    """The command line (``wb_scripts/submit`` passes its environment here)."""
    parser = options.CommandParser("submit", description=__doc__)
    parser.add_argument("root_uri", help="the experiment root given to the benchmark")
    parser.add_argument("experiment_id", help="the experiment's id")
    parser.add_argument(
        "--out",
        help="the archive (default: out/submission/EXPERIMENT_ID/submission.tgz)",
    )
    parser.add_argument(
        "--size", type=options.side, default=1024, help="every mask's side in px (default 1024)"
    )
    parser.add_argument("--test-stac-uri", help="the test catalog.json: the expected chip ids")
    parser.add_argument("--test-img-dir", help="the test chips' folder (with or instead of it)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Check and pack; print where the archive is."""
    args = build_parser().parse_args(argv)
    apply_retry_defaults()  # S3 retries for the aws CLI's download
    out = os.path.abspath(args.out or layout.submission_uri("out", args.experiment_id))

    def run() -> int:
        chips = list_test_chips(args.test_stac_uri, args.test_img_dir)
        masks = local_masks(args.root_uri, args.experiment_id, out)
        pack_submission(masks, [chip.id for chip in chips], out, size=args.size)
        sys.stdout.write(
            f"{out}: {len(chips)} masks; upload it on the competition's submission page\n"
        )
        return options.EXIT_OK

    return options.exit_status(run)


if __name__ == "__main__":  # as ``benchmark submit``
    from benchmark.cli.main import alias

    sys.exit(alias("submit"))
