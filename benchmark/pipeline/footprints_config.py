"""Config of the survey footprints pipeline (``benchmark.experiments.footprints``).

Registered by :mod:`benchmark.pipeline.registered_configs` (the registry imports it on its first
type-hint look-up). The pipeline itself (:mod:`benchmark.pipeline.footprints`) is imported
only when the config is built: it loads Raster Vision's learner.
"""

from rastervision.pipeline.config import Config, Field, register_config
from rastervision.pipeline.pipeline import Pipeline
from rastervision.pipeline.pipeline_config import PipelineConfig

from benchmark import PLUGIN
from benchmark.data import layout
from benchmark.footprints.merge import DEFAULT_MARGIN
from benchmark.footprints.outlines import DEFAULT_MIN_AREA
from benchmark.inference.execution import ExecutionName
from benchmark.pipeline import dry_run


@register_config("benchmark_footprint_image", plugin=PLUGIN)
class FootprintImageConfig(Config):
    """One image of the survey and the name its outputs take."""

    name: str = Field(
        ..., description="The image's file name without its suffix: {name}_buildings.gpkg..."
    )
    image_uri: str = Field(..., description="The image: a georeferenced GeoTIFF or COG.")


@register_config("benchmark_footprints", plugin=PLUGIN)
class FootprintsConfig(PipelineConfig):
    """Configure OUTLINE (each image's footprints) and MERGE (the survey's one layer)."""

    bundle_uri: str = Field(
        ..., description="The model bundle (bundle/model-bundle.zip; local or s3://)."
    )
    listed_from: str = Field(
        ...,
        description="Where the images were listed from (-a input_uri: a GeoTIFF, a folder, a "
        "STAC item or catalog), a record: the jobs read the images in images, never this.",
    )
    images: list[FootprintImageConfig] = Field(
        ...,
        description="The images to outline, listed once when the config was built, sorted by "
        "name, so every split shares one list.",
    )
    threshold: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="A pixel is a building when P(building) is above this (default: the "
        "threshold the bundle's eval chose).",
    )
    min_area: float = Field(
        DEFAULT_MIN_AREA, ge=0, description="Drop buildings under this many m²."
    )
    simplify: float | None = Field(
        None,
        ge=0,
        description="Simplification tolerance in metres, 0 = off (default: one pixel at the "
        "model's GSD, which removes the pixel staircase).",
    )
    regularize: bool = Field(False, description="Right-angle outlines for rectilinear roofs.")
    window: int | None = Field(
        None, gt=0, description="Prediction window side in pixels (default: the bundle's)."
    )
    overlap: int | None = Field(
        None, ge=0, description="Prediction windows' overlap in pixels (default: the bundle's)."
    )
    plan: ExecutionName = Field(
        "auto",
        description="How the model runs (benchmark.inference.execution): auto (the machine's "
        "fastest), fp32 (plain PyTorch, the reference), fp32_channels_last, bf16, fp16 (with "
        "gpu only), onnx or int8 (without gpu only).",
    )
    threads: int | None = Field(
        None,
        gt=0,
        description="CPU threads of each OUTLINE split's model (default: all the machine's "
        "cores, right on AWS Batch where each split has its own). The local runner runs the "
        "-s splits at once on one machine: give each its share of the cores "
        "(wb_scripts/survey --runner local does).",
    )
    gpu: bool = Field(
        False,
        description="Outline on a GPU (the GPU queue on AWS Batch); false: on the CPU, even on "
        "a machine with a GPU.",
    )
    crs: int | None = Field(
        None,
        gt=0,
        description="EPSG code of the merged layer, 32636 or EPSG:32636 (default: the images' "
        "one CRS).",
    )
    margin: float = Field(
        DEFAULT_MARGIN,
        ge=0,
        description="Metres from another image's extent within which MERGE resolves a building "
        "(duplicates, seams); farther ones are written as they are.",
    )
    overwrite: bool = Field(
        False,
        description="Outline again images whose outputs exist: every re-run, and every AWS "
        "Batch retry of a split, then redoes the split's whole share, not just what is left.",
    )

    @property
    def footprints_dir(self) -> str:
        """Where OUTLINE writes each image's outputs, and MERGE its ``merged/`` folder."""
        return layout.survey_footprints_dir(self.root_uri)

    def get_config_uri(self) -> str:
        """Apart from the other pipelines' configs in a shared root (in a dry run: local)."""
        return dry_run.config_uri(layout.survey_config_uri(self.root_uri))

    def build(self, tmp_dir: str) -> Pipeline:
        """The pipeline (see :func:`~benchmark.console.as_rastervision_runs_it`)."""
        from benchmark import console
        from benchmark.pipeline.footprints import SurveyFootprints

        return console.as_rastervision_runs_it(SurveyFootprints(self, tmp_dir))
