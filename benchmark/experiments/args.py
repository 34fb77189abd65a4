"""Typed, documented ``-a key value`` arguments of the experiments.

Raster Vision passes every ``-a`` value as a string (``true``/``false`` become booleans). A
pydantic model per experiment turns them into typed values, rejects unknown keys (a typo in
``-a split_sz 512`` would otherwise be silently ignored) and gives one-line errors. An argument
that was renamed keeps working under its old name, with a warning (:func:`rename_deprecated`);
so do old booleans now said as the value of another argument (:func:`respell_deprecated`).
"""

import copy
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from benchmark import console
from benchmark.data import layout
from benchmark.data.constants import TRAIN_IDS, VALID_IDS
from benchmark.data.stac import SceneRef, parse_scene_ids, read_training_scenes, select_scenes
from benchmark.errors import InputError
from benchmark.pipeline.dry_run import read_or_assume

log = logging.getLogger(__name__)

# Where the competition hosts the training catalog (requester pays is not needed for it).
DEFAULT_TRAIN_STAC_URI = (
    "s3://drivendata-competition-building-segmentation/train_tier_1/catalog.json"
)

ArgsT = TypeVar("ArgsT", bound=BaseModel)


class SceneArgs(BaseModel):
    """Arguments shared by PREPROCESS and the benchmark: where the scenes are and which to use."""

    model_config = ConfigDict(extra="forbid")

    root_uri: str = Field(..., description="Directory (local or s3://) for every output.")
    train_stac_uri: str = Field(
        DEFAULT_TRAIN_STAC_URI, description="The train_tier_1 STAC catalog.json (local or s3://)."
    )
    train_ids: list[str] = Field(
        list(TRAIN_IDS), description="Training scenes as area/id,area/id,... (default: original's)."
    )
    valid_ids: list[str] = Field(
        list(VALID_IDS), description="Validation scenes as area/id,... (default: original's)."
    )
    split_dir: str | None = Field(
        None,
        description="The windows folder: where PREPROCESS writes the windows it cuts scenes "
        "into and the benchmark reads them (default {root_uri}/split_images, or "
        "{root_uri}/split_images_gsd{gsd} with a gsd; the name is the original benchmark's).",
    )
    gsd: float | None = Field(
        None,
        gt=0,
        description="Ground sample distance (metres per pixel) to resample every scene window "
        "to, for training and prediction (default: each scene's own, as the original).",
    )

    @field_validator("train_ids", "valid_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: Any) -> list[str]:
        return parse_scene_ids(value)

    def get_split_dir(self) -> str:
        """The windows folder: ``-a split_dir``, else the layout's default for ``gsd``."""
        return self.split_dir or layout.default_windows_dir(self.root_uri, self.gsd)

    def read_scenes(self, *id_lists: list[str]) -> list[list[SceneRef]]:
        """The catalog's scenes for each list of ``area/id`` keys, their files checked.

        In a dry run that may not read the catalog, the scenes are the keys as given, their
        files where the Open Cities layout puts them (:func:`layout.catalog_scene_uris`).

        Raises:
            InputError: a key is not a usable scene of the catalog (see
                :func:`~benchmark.data.stac.select_scenes`), or the catalog is unreadable.
        """
        uri = self.train_stac_uri

        def read() -> list[list[SceneRef]]:
            catalog = read_training_scenes(uri)
            return [select_scenes(catalog, ids, uri) for ids in id_lists]

        def assumed(key: str) -> SceneRef:
            area, scene_id = key.split("/")
            return SceneRef(area, scene_id, *layout.catalog_scene_uris(uri, area, scene_id))

        return read_or_assume(
            read,
            uri,
            "the scenes are -a train_ids and -a valid_ids as given",
            [[assumed(key) for key in ids] for ids in id_lists],
        )


def config_field(config: type[BaseModel], name: str) -> Any:
    """An ``-a`` argument that sets a field of a Raster Vision config of ours as it is.

    Its default, bounds and description are stated once, in the config.
    """
    return copy.deepcopy(config.model_fields[name])


def rename_deprecated(args: Any, renamed: Mapping[str, str]) -> Any:
    """``args`` with each old name in ``renamed`` (old -> new) replaced by its new name.

    For a model validator (``mode="before"``): a run script written for an earlier version
    keeps working and says, once, what to write instead. Both names at once is an error.
    """
    if not isinstance(args, Mapping) or not renamed.keys() & args.keys():
        return args
    args = dict(args)
    for old, new in renamed.items():
        if old not in args:
            continue
        if new in args:
            raise ValueError(f"{old} is the old name of {new}: give only -a {new}")
        log.warning("-a %s is deprecated: it is now -a %s", old, new)
        args[new] = args.pop(old)
    return args


@dataclass(frozen=True)
class Respelled:
    """Old booleans said as a value of another argument: ``-a fast false`` is ``-a plan fp32``."""

    old: tuple[str, ...]  # the old arguments
    new: str  # the argument that replaced them
    value: Callable[..., str]  # the new argument's value, from the old ones' booleans by name


def respell_deprecated(args: Any, respelled: Sequence[Respelled]) -> Any:
    """``args`` with each :class:`Respelled`'s old arguments replaced by the value they meant.

    For a model validator (``mode="before"``), like :func:`rename_deprecated`: a run script
    written for an earlier version keeps working and says, in one warning, what to write
    instead. The old and the new spelling at once is an error.
    """
    if not isinstance(args, Mapping):
        return args
    for spelling in respelled:
        given = [name for name in spelling.old if name in args]
        if not given:
            continue
        if spelling.new in args:
            raise ValueError(
                f"{given[0]} is the old spelling of {spelling.new}: give only -a {spelling.new}"
            )
        args = dict(args)
        flags = {name: _boolean(name, args.pop(name), spelling.new) for name in given}
        args[spelling.new] = spelling.value(**flags)
        old = " and ".join(f"-a {name}" for name in given)
        said = "is deprecated: it is" if len(given) == 1 else "are deprecated: together they are"
        log.warning("%s %s now -a %s %s", old, said, spelling.new, args[spelling.new])
    return args


def _boolean(name: str, value: Any, new: str) -> bool:
    """An old boolean argument's value, as Raster Vision passes it (a string) or typed."""
    if str(value).lower() not in ("true", "false"):
        raise ValueError(f"-a {name} {value}: expected true or false (now -a {new})")
    return str(value).lower() == "true"


def parse_args(model: type[ArgsT], args: dict[str, Any]) -> ArgsT:
    """Validate CLI args into ``model``; any problem becomes one :class:`InputError` line.

    The first thing every experiment does, so it also routes our log lines through RV's
    handler for the rest of the ``rastervision run`` (:mod:`benchmark.console`).
    """
    console.install()
    try:
        return model(**args)
    except ValidationError as exc:
        problems = "; ".join(_describe(err) for err in exc.errors())
        raise InputError(f"bad experiment arguments: {problems}") from None


def _describe(error: Any) -> str:
    """One pydantic error as a user reads it: the argument, if it is one, and the problem."""
    where = ".".join(str(part) for part in error["loc"])
    problem = str(error["msg"]).removeprefix("Value error, ")
    return f"-a {where}: {problem}" if where else problem
