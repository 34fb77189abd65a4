"""Open Cities AI Challenge benchmark building segmentation on Raster Vision 0.31."""

__version__ = "1.0.0"
