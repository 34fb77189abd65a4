"""``benchmark locate NAME ROOT_URI EXPERIMENT_ID``: print where a run writes NAME.

For the shell scripts and tools, so that no location is spelled outside
:mod:`benchmark.data.layout`. Fast: it imports neither Raster Vision nor torch.
"""

import sys
from collections.abc import Callable, Sequence

from benchmark.cli import options
from benchmark.data import layout

LOCATIONS: dict[str, Callable[[str, str], str]] = {
    "config": layout.pipeline_config_uri,
    "postprocess": layout.postprocess_dir,
    "submission": layout.submission_uri,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Print the location on stdout."""
    parser = options.CommandParser("locate", description=__doc__)
    parser.add_argument("name", choices=sorted(LOCATIONS), help="what to locate")
    parser.add_argument("root_uri", help="the run's root (local or s3://)")
    parser.add_argument("experiment_id", help="the run's experiment id")
    args = parser.parse_args(argv)
    sys.stdout.write(LOCATIONS[args.name](args.root_uri, args.experiment_id) + "\n")
    return options.EXIT_OK


if __name__ == "__main__":  # the old entry point: an alias of ``benchmark locate``
    from benchmark.cli.main import alias

    sys.exit(alias("locate"))
