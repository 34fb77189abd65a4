"""Typed, documented ``-a key value`` arguments of the experiments.

Raster Vision passes every ``-a`` value as a string (``true``/``false`` become booleans). A
pydantic model per experiment turns them into typed values, rejects unknown keys (a typo in
``-a split_sz 512`` would otherwise be silently ignored) and gives one-line errors.
"""

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from benchmark.cli import output
from benchmark.data.constants import TRAIN_IDS, VALID_IDS
from benchmark.data.stac import parse_scene_ids
from benchmark.errors import InputError

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
        description="Where PREPROCESS writes scene windows (default {root_uri}/split_images, "
        "or {root_uri}/split_images_gsd{gsd} with a gsd).",
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
        """The scene-window directory, by default ``{root_uri}/split_images[_gsd{gsd}]``.

        Windows at different GSDs get different default directories, so a run at one GSD
        never finds (and refuses) the windows of a run at another.
        """
        if self.split_dir:
            return self.split_dir
        suffix = "" if self.gsd is None else f"_gsd{self.gsd:g}"
        return f"{self.root_uri.rstrip('/')}/split_images{suffix}"


def parse_args(model: type[ArgsT], args: dict[str, Any]) -> ArgsT:
    """Validate CLI args into ``model``; any problem becomes one :class:`InputError` line.

    The first thing every experiment does, so it also installs our terminal output (one-line
    errors, our log lines through RV's handler) for the rest of the ``rastervision run``.
    """
    output.install()
    try:
        return model(**args)
    except ValidationError as exc:
        problems = "; ".join(
            f"-a {'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise InputError(f"bad experiment arguments: {problems}") from None
