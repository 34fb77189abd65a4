"""A drone survey's building footprints: each image outlined, then merged into one layer.

Run with::

    rastervision run local benchmark.experiments.footprints OUTLINE MERGE \
        -a root_uri OUT -a bundle_uri BUNDLE.zip -a input_uri FOLDER|STAC.json|s3://prefix \
        [-a threshold 0.4] [-a min_area 4] [-a simplify M] [-a regularize true] \
        [-a window N] [-a overlap N] [-a plan fp32] [-a gpu true] [-a crs 32636] \
        [-a margin 20] [-a overwrite true] [-s N]

OUTLINE writes each image's footprints and probabilities to ``{root_uri}/footprints/``, ``-s N``
sharing the images among N splits; MERGE writes the survey's one layer to
``{root_uri}/footprints/merged/`` (:mod:`benchmark.pipeline.footprints`). The images are listed
here, once, so every split (every AWS Batch job) shares one list.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from benchmark.console import one_line_errors
from benchmark.data.uris import make_output_root, uri_exists
from benchmark.errors import InputError
from benchmark.experiments.args import config_field, parse_args
from benchmark.footprints.ground import known_epsg
from benchmark.footprints.inputs import ImageRef, list_images
from benchmark.inference.execution import ExecutionName, select_execution
from benchmark.pipeline.dry_run import read_or_assume
from benchmark.pipeline.footprints_config import FootprintImageConfig, FootprintsConfig


class FootprintsArgs(BaseModel):
    """Arguments of ``benchmark.experiments.footprints``."""

    model_config = ConfigDict(extra="forbid")

    root_uri: str = Field(..., description="Directory (local or s3://) for every output.")
    bundle_uri: str = config_field(FootprintsConfig, "bundle_uri")
    input_uri: str = Field(
        ...,
        description="The survey's images: a GeoTIFF/COG, a folder of *.tif (searched "
        "recursively), or a STAC item or catalog (local or s3://).",
    )
    threshold: float | None = config_field(FootprintsConfig, "threshold")
    min_area: float = config_field(FootprintsConfig, "min_area")
    simplify: float | None = config_field(FootprintsConfig, "simplify")
    regularize: bool = config_field(FootprintsConfig, "regularize")
    window: int | None = config_field(FootprintsConfig, "window")
    overlap: int | None = config_field(FootprintsConfig, "overlap")
    plan: ExecutionName = config_field(FootprintsConfig, "plan")
    threads: int | None = config_field(FootprintsConfig, "threads")
    gpu: bool = config_field(FootprintsConfig, "gpu")
    crs: int | None = config_field(FootprintsConfig, "crs")
    margin: float = config_field(FootprintsConfig, "margin")
    overwrite: bool = config_field(FootprintsConfig, "overwrite")

    @field_validator("crs", mode="before")
    @classmethod
    def _known_crs(cls, value: Any) -> Any:
        """Refuse an EPSG code pyproj does not know now, not after every image is outlined."""
        return None if value is None else known_epsg(value)

    @model_validator(mode="after")
    def _plan_runs_on_the_device(self) -> "FootprintsArgs":
        """Refuse a plan the jobs' device cannot run (fp16 on a CPU, onnx or int8 on a GPU).

        By the plans' rule alone (:func:`~benchmark.inference.execution.select_execution`, as
        ``--plan`` is checked): the jobs may run on another machine than this one, so its CPU
        is not asked, and ONNX Runtime is assumed (a requirement of the package).
        """
        device = "cuda" if self.gpu else "cpu"
        try:
            select_execution(device, cpu_bf16=False, onnx_runtime=True, execution=self.plan)
        except ValueError as exc:
            gpu = str(self.gpu).lower()
            raise ValueError(f"-a plan {self.plan} cannot run with -a gpu {gpu} ({exc})") from None
        return self

    def read_images(self) -> list[ImageRef]:
        """The images ``input_uri`` names (in a dry run that may not read it: none).

        Raises:
            InputError: nothing found there, or two images with one name.
        """
        return read_or_assume(
            lambda: list_images(self.input_uri),
            self.input_uri,
            "no images (a real run lists them before it submits the jobs)",
            [],
        )

    def check_bundle(self) -> None:
        """Refuse a bundle that is not there now, not once the images wait for it.

        Raises:
            InputError: ``bundle_uri`` does not exist.
        """

        def check() -> None:
            if not uri_exists(self.bundle_uri):
                raise InputError(f"{self.bundle_uri}: model bundle not found (-a bundle_uri)")

        read_or_assume(check, self.bundle_uri, "the bundle is there", None)


@one_line_errors()
def get_config(runner: str, **kwargs: Any) -> FootprintsConfig:
    """Build the survey footprints config from ``-a`` arguments (see :class:`FootprintsArgs`).

    Args:
        runner: RV runner name (unused: the same config serves every runner).
        **kwargs: the ``-a`` arguments: ``root_uri``, ``bundle_uri`` and ``input_uri``
            (required), ``threshold``, ``min_area``, ``simplify``, ``regularize``, ``window``,
            ``overlap``, ``plan``, ``threads``, ``gpu``, ``crs``, ``margin``, ``overwrite``.
    """
    args = parse_args(FootprintsArgs, kwargs)
    args.check_bundle()
    images = args.read_images()
    make_output_root(args.root_uri)
    options = args.model_dump(exclude={"root_uri", "bundle_uri", "input_uri"})
    return FootprintsConfig(
        root_uri=args.root_uri,
        bundle_uri=args.bundle_uri,
        listed_from=args.input_uri,
        images=[FootprintImageConfig(name=i.name, image_uri=i.uri) for i in images],
        **options,
    )
