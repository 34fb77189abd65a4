"""``benchmark check-catalog CATALOG``: what a training catalog holds and lacks.

Reads every scene of a ``train_tier_1``-style STAC catalog without downloading imagery: says
which scenes are complete, which image or label files are missing, and what reading each
label file repaired or dropped. Run it before PREPROCESS on new data; it goes on past every
problem and exits 1 only if no scene is usable.
"""

import logging
import sys

from rastervision.pipeline.file_system import file_exists

from benchmark.cli import options
from benchmark.data.labels import read_building_labels
from benchmark.data.stac import read_training_scenes
from benchmark.errors import InputError

log = logging.getLogger(__name__)


def check_catalog(catalog_uri: str) -> tuple[list[str], list[str]]:
    """(usable scene keys, one line per problem found)."""
    usable, problems = [], []
    for key, scene in sorted(read_training_scenes(catalog_uri).items()):
        missing = [
            f"{what} {uri} does not exist"
            for what, uri in (("image", scene.image_uri), ("labels", scene.label_uri))
            if not file_exists(uri)
        ]
        if missing:
            problems += [f"{key}: {m}" for m in missing]
            if any(m.startswith("labels") for m in missing):
                continue
        try:
            _, report = read_building_labels(scene.label_uri)
        except InputError as exc:
            problems.append(f"{key}: {exc}")
            continue
        line = f"{key}: labels: {report.summary()}"
        sys.stdout.write(line + "\n")
        if not missing:
            usable.append(key)
    return usable, problems


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = options.CommandParser("check-catalog", description=__doc__)
    parser.add_argument("catalog_uri", help="train_tier_1 catalog.json (local or s3://)")
    args = parser.parse_args(argv)
    ours = logging.getLogger("benchmark")
    level = ours.level
    ours.setLevel(logging.WARNING)  # the report is on stdout; as a function, leave it as found
    try:
        return options.exit_status(lambda: report(args.catalog_uri))
    finally:
        ours.setLevel(level)


def report(catalog_uri: str) -> int:
    """Print what :func:`check_catalog` found; ``EXIT_FAILED`` if no scene is usable."""
    usable, problems = check_catalog(catalog_uri)
    for problem in problems:
        sys.stdout.write(f"problem: {problem}\n")
    sys.stdout.write(f"{len(usable)} usable scene(s): {', '.join(usable) or 'none'}\n")
    return options.EXIT_OK if usable else options.EXIT_FAILED


if __name__ == "__main__":  # the old entry point: an alias of ``benchmark check-catalog``
    from benchmark.cli.main import alias

    sys.exit(alias("check-catalog"))
