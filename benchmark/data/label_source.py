"""Training labels that know where the imagery is: no-data pixels are background.

Raster Vision reads the RGB bands of a scene and rasterizes its building polygons over the
whole window, so a footprint that runs past the edge of the imagery (OpenStreetMap maps whole
neighbourhoods; drone strips end mid-street) becomes "building" over black no-data pixels, and
the model is trained to call black a building. This label source reads the image's valid mask
(alpha 255, or pixels that are not the nodata value; :func:`benchmark.data.imagery.read_valid_mask`)
and makes every other pixel background, the class every output gets there anyway.

:class:`InstanceLabelSource` (``-a target instance``) adds each building's border and the
contact between buildings as bits of the same band (:mod:`benchmark.data.instance_labels`),
background too where there is no imagery.
"""

import numpy as np
from rasterio.windows import Window
from rastervision.core.box import Box
from rastervision.core.data import (
    ClassConfig,
    SemanticSegmentationLabelSource,
    SemanticSegmentationLabelSourceConfig,
)
from rastervision.core.data.raster_source import RasterizedSource, RasterSource
from rastervision.pipeline.config import Field, register_config
from shapely.geometry import box

from benchmark import PLUGIN
from benchmark.data.constants import BODY_BIT, BORDER_BIT, BUILDING, CONTACT_BIT
from benchmark.data.imagery import open_scene_checked, read_valid_mask
from benchmark.data.instance_labels import instance_bits, instance_reach, pixel_metres


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
        labels[~self.valid_mask(window)] = self.class_config.null_class_id
        return labels

    def valid_mask(self, window: Box) -> np.ndarray:
        """True where ``window`` has imagery (False beyond the scene)."""
        valid = np.zeros((window.height, window.width), dtype=bool)
        inside = window.intersection(self.extent)
        if inside.area > 0:
            with open_scene_checked(self.image_uri) as src:
                read = Window(inside.xmin, inside.ymin, inside.width, inside.height)
                top, left = inside.ymin - window.ymin, inside.xmin - window.xmin
                valid[top : top + inside.height, left : left + inside.width] = read_valid_mask(
                    src, read
                )
        return valid


class InstanceLabelSource(NoDataAsBackgroundLabelSource):
    """Body, border and contact bits (:mod:`benchmark.data.instance_labels`), no-data aware.

    The body is the binary label, as :class:`NoDataAsBackgroundLabelSource` reads it; border
    and contact are rasterized from each polygon of the window's labels, on the same grid.
    Where there is no imagery, or beyond the scene, every bit is 0 (background).
    """

    def __init__(
        self,
        raster_source: RasterizedSource,
        class_config: ClassConfig,
        image_uri: str,
        border_px: float,
        contact_px: float,
    ) -> None:
        """``border_px``, ``contact_px``: the bands' widths in pixels of ``image_uri``'s grid."""
        super().__init__(raster_source, class_config, image_uri)
        self.border_px = border_px
        self.contact_px = contact_px

    def get_label_arr(self, window: Box | None = None) -> np.ndarray:
        """uint8 label bits of ``window`` (``BODY_BIT | BORDER_BIT | CONTACT_BIT``)."""
        window = window or self.extent
        valid = self.valid_mask(window)  # no imagery, or beyond the scene: background
        body = (SemanticSegmentationLabelSource.get_label_arr(self, window) == BUILDING) & valid
        source = self.raster_source
        grid = window.to_global_coords(source.bbox)  # the polygons' pixel coordinates
        reach = instance_reach(self.border_px, self.contact_px)
        reached = box(grid.xmin - reach, grid.ymin - reach, grid.xmax + reach, grid.ymax + reach)
        near = source.df[source.df.intersects(reached)]
        shifted = near.translate(xoff=-grid.xmin, yoff=-grid.ymin)
        bits = instance_bits(
            shifted, (window.height, window.width), self.border_px, self.contact_px
        )
        bits &= BORDER_BIT | CONTACT_BIT
        bits[~valid] = 0
        return bits | np.where(body, BODY_BIT, 0).astype(np.uint8)


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


@register_config("benchmark_instance_label_source", plugin=PLUGIN)
class InstanceLabelSourceConfig(NoDataAsBackgroundLabelSourceConfig):
    """Configure an :class:`InstanceLabelSource` (the labels of ``-a target instance``)."""

    border_width: float = Field(
        0.6,
        gt=0,
        description="Instance target: width of the border band inside each building's outline, "
        "in metres (0.6: 2 px at 0.3 m GSD).",
    )
    contact_width: float = Field(
        1.2,
        gt=0,
        description="Instance target: width of the contact band between two buildings, in "
        "metres; buildings closer than this have contact pixels between them (1.2: 4 px at "
        "0.3 m GSD).",
    )

    def build(self, class_config, crs_transformer, bbox=None, tmp_dir=None) -> InstanceLabelSource:
        """Label bits over ``raster_source``'s polygons, the widths in ``image_uri``'s pixels.

        The labels are rasterized on ``image_uri``'s grid (resampled to ``-a gsd`` by
        PREPROCESS, or the scene's own), so its pixel size converts the widths; in its CRS's
        units, metres for the projected CRSs of the Open Cities scenes, as PREPROCESS's GSD.
        """
        source = super().build(class_config, crs_transformer, bbox, tmp_dir)
        with open_scene_checked(self.image_uri) as src:
            metres = pixel_metres(src)
        return InstanceLabelSource(
            source.raster_source,
            class_config,
            self.image_uri,
            border_px=self.border_width / metres,
            contact_px=self.contact_width / metres,
        )
