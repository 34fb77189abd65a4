"""Config of the PREPROCESS pipeline (``benchmark.experiments.split_images``).

This module is imported while Raster Vision loads its plugins, so it must not import library
modules that import Raster Vision themselves (``benchmark.data.stac``): that would be a cycle when a
user imports such a module first.
"""

from typing import TYPE_CHECKING

from rastervision.pipeline.config import Config, Field, register_config
from rastervision.pipeline.pipeline import Pipeline
from rastervision.pipeline.pipeline_config import PipelineConfig

from benchmark import PLUGIN
from benchmark.data import layout
from benchmark.pipeline import dry_run

if TYPE_CHECKING:
    from benchmark.data.stac import SceneRef


@register_config("benchmark_scene_source", plugin=PLUGIN)
class SceneSourceConfig(Config):
    """One training-catalog scene: its imagery and building labels."""

    area: str = Field(..., description="City/area code, the STAC collection id (e.g. acc).")
    id: str = Field(..., description="Scene id, the STAC image item id (e.g. d41d81).")
    image_uri: str = Field(..., description="The scene's GeoTIFF.")
    label_uri: str = Field(..., description="The scene's building footprints (GeoJSON).")

    @classmethod
    def from_ref(cls, ref: "SceneRef") -> "SceneSourceConfig":
        """Config for a scene read from the STAC catalog."""
        return cls(area=ref.area, id=ref.id, image_uri=ref.image_uri, label_uri=ref.label_uri)

    def to_ref(self) -> "SceneRef":
        """Back to the plain STAC scene reference the library functions take."""
        from benchmark.data.stac import SceneRef

        return SceneRef(
            area=self.area, id=self.id, image_uri=self.image_uri, label_uri=self.label_uri
        )

    @property
    def key(self) -> str:
        """``area/id``, as scenes are named in ``-a train_ids``."""
        return f"{self.area}/{self.id}"


@register_config("benchmark_split_images", plugin=PLUGIN)
class SplitImagesConfig(PipelineConfig):
    """Configure PREPROCESS: cut each scene into windows small enough to chip in memory."""

    scenes: list[SceneSourceConfig] = Field(..., description="Scenes to cut into windows.")
    split_dir: str = Field(
        ..., description="The windows folder: {split_dir}/{area}/{id}/{id}_{i}.tif and more."
    )
    split_size: int = Field(
        9000, gt=0, description="The window side: at most this many scene pixels (original's)."
    )
    gsd: float | None = Field(
        None,
        gt=0,
        description="Metres per pixel to resample the windows to; None keeps each scene's own.",
    )

    def get_config_uri(self) -> str:
        """Apart from the benchmark's config in a shared root (in a dry run: local)."""
        return dry_run.config_uri(layout.preprocess_config_uri(self.root_uri))

    def build(self, tmp_dir: str) -> Pipeline:
        """The PREPROCESS pipeline (see :func:`~benchmark.console.as_rastervision_runs_it`)."""
        from benchmark import console
        from benchmark.pipeline.preprocess import SplitImages

        return console.as_rastervision_runs_it(SplitImages(self, tmp_dir))
