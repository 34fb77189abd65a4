"""Training labels that know where the imagery is: no-data pixels are background.

Raster Vision reads the RGB bands of a scene and rasterizes its building polygons over the
whole window, so a footprint that runs past the edge of the imagery (OpenStreetMap maps whole
neighbourhoods; drone strips end mid-street) becomes "building" over black no-data pixels, and
the model is trained to call black a building. This label source reads the image's valid mask
(alpha 255, or pixels that are not the nodata value; :func:`benchmark.data.imagery.read_valid_mask`)
and makes every other pixel background, the class every output gets there anyway.
"""

import numpy as np
from rasterio.windows import Window
from rastervision.core.box import Box
from rastervision.core.data import (
    ClassConfig,
    SemanticSegmentationLabelSource,
    SemanticSegmentationLabelSourceConfig,
)
from rastervision.core.data.raster_source import RasterSource
from rastervision.pipeline.config import Field, register_config

from benchmark import PLUGIN
from benchmark.data.imagery import open_scene_checked, read_valid_mask


class NoDataAsBackgroundLabelSource(SemanticSegmentationLabelSource):
    """RV's semantic segmentation labels, background wherever ``image_uri`` has no imagery."""

    def __init__(
        self, raster_source: RasterSource, class_config: ClassConfig, image_uri: str
    ) -> None:
        """``image_uri``: the scene (same pixel grid as the labels) whose mask applies."""
        super().__init__(raster_source, class_config)
        # A path, not an open dataset: RV may pickle label sources into DataLoader workers.
        self.image_uri = image_uri

    def get_label_arr(self, window: Box | None = None) -> np.ndarray:
        """Labels of ``window`` (pixels beyond the scene are the null class, as in RV)."""
        window = window or self.extent
        labels = super().get_label_arr(window)
        valid = np.zeros(labels.shape, dtype=bool)
        inside = window.intersection(self.extent)
        if inside.area > 0:
            with open_scene_checked(self.image_uri) as src:
                read = Window(inside.xmin, inside.ymin, inside.width, inside.height)
                top, left = inside.ymin - window.ymin, inside.xmin - window.xmin
                valid[top : top + inside.height, left : left + inside.width] = read_valid_mask(
                    src, read
                )
        labels[~valid] = self.class_config.null_class_id
        return labels


@register_config("benchmark_no_data_as_background_label_source", plugin=PLUGIN)
class NoDataAsBackgroundLabelSourceConfig(SemanticSegmentationLabelSourceConfig):
    """Configure a :class:`NoDataAsBackgroundLabelSource`."""

    image_uri: str = Field(..., description="The scene whose no-data pixels are background.")

    def build(
        self, class_config, crs_transformer, bbox=None, tmp_dir=None
    ) -> NoDataAsBackgroundLabelSource:
        """RV's label source over ``raster_source``, masked by ``image_uri``."""
        source = super().build(class_config, crs_transformer, bbox, tmp_dir)
        return NoDataAsBackgroundLabelSource(source.raster_source, class_config, self.image_uri)
