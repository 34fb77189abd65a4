"""A batch run's inputs and outputs must be on S3 (or the web): local paths are refused up front.

A batch job runs in a container on an AWS instance, which cannot see the submitting machine's
files: a local path in the pipeline config (scenes of a catalog on this machine, test chips in
``data/``, an ensemble bundle on disk) is only found missing once an instance has started, after
the jobs before it have run and been paid for. :func:`require_remote_uris` finds every such path
in the config the jobs read and refuses the run in one line, before anything is submitted.

The config is walked whole rather than listed field by field, so a field added later is checked
without anyone remembering to: Raster Vision names its places ``*_uri`` and ``*_uris``, as we
do, plus ``split_dir``; the few that are not named so are in ``PLACES_NAMED_OTHERWISE``.

A local catalog is fine (docs/aws-batch.md recommends reading the test catalog locally): the
experiments read it on this machine while building the config, and only what it points to (the
scenes' files, the test chips) is in the config, where it is checked.
"""

from collections.abc import Iterator

from pydantic import BaseModel

from benchmark.data.uri_schemes import is_remote
from benchmark.errors import InputError, listed_problems

# A field whose name ends so holds a URI, or a list or dict of them.
PLACE_SUFFIXES = ("uri", "uris", "_dir")
# Fields holding URIs whose names do not say so: our ensemble bundles, RV's initial weights.
PLACES_NAMED_OTHERWISE = frozenset({"ensemble", "init_weights"})
# The -a argument the URIs under a top-level field come from, where it is named otherwise:
# the user wrote that argument, not the field the experiment filled from it.
ARGUMENT_OF = {
    "scenes": "train_stac_uri",
    "native_windows": "train_stac_uri",
    "dataset": "split_dir",
    "test_chips": "test_img_dir or test_stac_uri",
    "self_training": "self_train_images",
    "inference": "ensemble",
    "images": "input_uri",
}
WHY = "batch jobs run on AWS and cannot reach this machine's files"


def _names_a_place(field: str) -> bool:
    return field.endswith(PLACE_SUFFIXES) or field in PLACES_NAMED_OTHERWISE


def _item_label(item: object, index: int) -> str:
    """How a list item is named in a field path: its ``id`` or ``name``, else its index.

    A scene or a chip has an ``id``, a survey's image a ``name``.
    """
    for attribute in ("id", "name"):
        label = getattr(item, attribute, None)
        if isinstance(label, str):
            return label
    return str(index)


def _places(value: object, path: str, is_place: bool) -> Iterator[tuple[str, str]]:
    """Every (field path, URI) under ``value``, such as ``test_chips[c0ffee].uri``."""
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            child = f"{path}.{name}" if path else name
            yield from _places(getattr(value, name), child, _names_a_place(name))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _places(item, f"{path}[{_item_label(item, index)}]", is_place)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _places(item, f"{path}[{key}]", is_place)
    elif is_place and isinstance(value, str):
        yield path, value


def local_uris(config: BaseModel) -> list[tuple[str, str]]:
    """Every (field path, URI) of ``config`` that is not on S3 or the web, in field order."""
    return [(field, uri) for field, uri in _places(config, "", False) if not is_remote(uri)]


def _named(field: str, uri: str) -> str:
    top = field.partition(".")[0].partition("[")[0]
    origin = f" (from -a {ARGUMENT_OF[top]})" if top in ARGUMENT_OF else ""
    return f"{field} {uri}{origin}"


def require_remote_uris(config: BaseModel) -> None:
    """Refuse a batch run whose jobs would read or write a path on this machine.

    Raises:
        InputError: one line naming each such field and path (the first ten, then how many
            more: :func:`~benchmark.errors.listed_problems`) and what to do instead.
    """
    local = [_named(field, uri) for field, uri in local_uris(config)]
    if len(local) == 1:
        raise InputError(
            f"{local[0]}: a local path, but {WHY}: put it on S3 (aws s3 sync) and give its "
            "s3:// URI (nothing was submitted)"
        )
    if local:
        raise InputError(
            f"{len(local)} local paths, but {WHY}: {listed_problems(local)}: put them on S3 "
            "(aws s3 sync) and give their s3:// URIs (nothing was submitted)"
        )
