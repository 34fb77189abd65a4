"""Imports every module that registers a Raster Vision config (run by the plugin shim)."""
