"""``benchmark sync SRC DST``: ``aws s3 sync`` with our retries, failing in one line.

What ``benchmark submit`` downloads the masks with. The aws CLI alone retries as little as
its defaults say and, when a file still fails, prints a line per file and exits 1 like any
other failure; this sets the retry defaults (:mod:`benchmark.data.retries`), runs the same
sync (:func:`~benchmark.data.s3_file_system.aws_sync`) and, if it fails, prints one
``error: <S3 URI>: ...`` line and exits 2 (:mod:`benchmark.cli.options`). It does not import
Raster Vision, so it starts in a fraction of a second.
"""

import sys
from collections.abc import Sequence

from benchmark.cli import options
from benchmark.cli.options import EXIT_OK, exit_status
from benchmark.data.retries import apply_retry_defaults
from benchmark.data.s3_file_system import aws_sync


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sync; 0 when everything was copied, 2 (one error line) when not."""
    parser = options.CommandParser(
        "sync",
        description="Copy a folder to or from S3 (aws s3 sync), retrying what S3 fails.",
    )
    parser.add_argument("src", help="local folder or s3:// prefix")
    parser.add_argument("dst", help="local folder or s3:// prefix")
    parser.add_argument("--delete", action="store_true", help="delete what SRC does not have")
    parser.add_argument(
        "--exclude", action="append", default=[], metavar="PATTERN", help="skip these (repeat)"
    )
    args = parser.parse_args(argv)
    apply_retry_defaults()

    def run() -> int:
        aws_sync(args.src, args.dst, delete=args.delete, exclude=args.exclude, quiet=True)
        return EXIT_OK

    return exit_status(run)


if __name__ == "__main__":  # the old entry point: an alias of ``benchmark sync``
    from benchmark.cli.main import alias

    sys.exit(alias("sync"))
