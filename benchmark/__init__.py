"""Open Cities AI Challenge benchmark building segmentation on Raster Vision 0.31."""

__version__ = "1.0.0"
# The name Raster Vision knows us by: the namespace module it finds (rastervision/benchmark) and
# the ``plugin`` of every config we register, recorded in saved configs with our plugin version.
PLUGIN = "rastervision.benchmark"
