"""The GSD round trip: a window seen at the model's GSD is predicted there, then brought back.

A model trained at a common GSD (``-a gsd``, see :mod:`benchmark.data.gsd`) sees every
image at that GSD, and every probability raster keeps its image's own grid: ``eval`` scores a
validation window at its original resolution, footprints are traced on the orthomosaic's
pixels. The view at the GSD is the caller's: the window PREPROCESS resampled (the pipeline's
validation windows) or a VRT over the image (:mod:`benchmark.footprints.probabilities`). The
way there and back is this module's, so both give the same raster for the same view.
"""

import logging
import os
import tempfile

import rasterio
from rasterio.windows import Window
from torch import nn

from benchmark.data.gsd import GridMap, read_bands
from benchmark.data.imagery import open_scene_checked, read_valid_mask, window_of_window
from benchmark.data.uris import TMP_PREFIX, atomic_geotiff
from benchmark.data.windows import plan_windows
from benchmark.inference.scenes import (
    name_bands,
    output_exists,
    predict_scene,
    probability_profile,
)
from benchmark.inference.settings import PredictionSettings

log = logging.getLogger(__name__)

# Source pixels a side of the blocks probabilities are resampled in: bounds the memory.
RESAMPLE_BLOCK = 1024


def resample_probabilities_onto(
    prob_uri: str, scene_uri: str, scene_window: Window, out_uri: str
) -> None:
    """Write ``prob_uri`` onto the grid of ``scene_window`` of ``scene_uri``, 0 off its imagery.

    ``prob_uri`` covers exactly the ground of ``scene_window``. Probabilities are resampled
    bilinearly, every band alike, block by block, so memory is bounded by a block whatever the
    scene's size; the valid pixels are the scene's own.
    """
    with rasterio.open(prob_uri) as prob_src, open_scene_checked(scene_uri) as scene:
        bands = prob_src.count
        source = Window(0, 0, prob_src.width, prob_src.height)
        back = GridMap(source, int(scene_window.width), int(scene_window.height))
        with (
            atomic_geotiff(out_uri) as path,
            rasterio.open(path, "w", **probability_profile(scene, scene_window, bands)) as dst,
        ):
            name_bands(dst)
            for block in plan_windows(back.width, back.height, back.block_side(RESAMPLE_BLOCK)):
                shape = (int(block.height), int(block.width))
                prob = read_bands(prob_src, back.source_window(block), shape)
                valid = read_valid_mask(scene, window_of_window(scene_window, block))
                dst.write(prob * valid, window=block)
    log.info("Wrote %s (resampled from %s)", out_uri, prob_uri)


def predict_resampled_window(
    model: nn.Module,
    image_uri: str,
    scene_uri: str,
    scene_window: Window,
    out_uri: str,
    settings: PredictionSettings | None = None,
    overwrite: bool = False,
    tmp_dir: str | None = None,
) -> None:
    """Predict a view of a scene window at the model's GSD; write it on the window's own grid.

    The model runs on ``image_uri`` as it is (:func:`~benchmark.inference.scenes.
    predict_scene`, into a temporary file) and the probabilities are resampled back onto
    ``scene_window`` of ``scene_uri``, 0 outside the scene's imagery: the output has the grid
    :func:`~benchmark.inference.scenes.predict_scene` gives the window itself.

    Args:
        model: the network (prepared with ``settings.options``).
        image_uri: the window at the model's GSD (PREPROCESS's resampled window, or a VRT).
        scene_uri: the scene it shows.
        scene_window: where it sits in the scene, in scene pixels.
        out_uri: where to write; skipped if it exists, unless ``overwrite``.
        settings: the prediction settings (defaults if None); windows in the model's pixels.
        overwrite: redo an existing output.
        tmp_dir: where the prediction at the GSD is kept until resampled (system default).
    """
    if output_exists(out_uri, overwrite):
        return
    with tempfile.TemporaryDirectory(prefix=TMP_PREFIX, dir=tmp_dir) as work_dir:
        at_gsd = os.path.join(work_dir, "at_gsd.tif")
        predict_scene(model, image_uri, at_gsd, settings, overwrite=True)
        resample_probabilities_onto(at_gsd, scene_uri, scene_window, out_uri)
