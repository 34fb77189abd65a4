"""Which kind of place a URI names (S3, this machine), decided once for every layer.

It sits below :mod:`~benchmark.data.uris` because :mod:`~benchmark.data.aws_errors`, which
``uris`` imports, needs the same test: kept in ``uris`` it would be an import cycle, copied it
would drift (the three copies there were did not agree on GDAL's ``/vsis3/`` paths).
"""

S3_PREFIX = "s3://"
# How GDAL names an S3 object (``/vsis3/bucket/key``); rasterio errors quote URIs this way.
VSIS3_PREFIX = "/vsis3/"
HTTP_PREFIXES = ("http://", "https://")


def is_s3(uri: str, vsis3: bool = False) -> bool:
    """Whether ``uri`` names an S3 object (``s3://``; with ``vsis3``, GDAL's ``/vsis3/`` too)."""
    return uri.startswith((S3_PREFIX, VSIS3_PREFIX) if vsis3 else S3_PREFIX)


def is_local(uri: str) -> bool:
    """Whether ``uri`` is a file on this machine (not a URL nor a GDAL virtual file system)."""
    return "://" not in uri and not uri.startswith("/vsi")


def is_remote(uri: str) -> bool:
    """Whether ``uri`` can be read from any machine, as an AWS Batch job reads it (S3, HTTP(S))."""
    return is_s3(uri) or uri.startswith(HTTP_PREFIXES)
