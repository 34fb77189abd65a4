"""Imports every module that registers a Raster Vision config (run by the plugin shim)."""

import benchmark.aux.preprocess_config
import benchmark.data_config
import benchmark.label_source
import benchmark.model_config
import benchmark.pipeline_config  # noqa: F401
