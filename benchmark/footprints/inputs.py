"""What ``benchmark-footprints`` is given: one image, a folder of them, or a STAC item/catalog.

Outputs are named after each image's file name without its suffix, so two images with one
name would overwrite each other's outputs: that is refused up front.
"""

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import PurePosixPath

from benchmark.data.chips import chip_uri, list_test_chips
from benchmark.data.uri_schemes import is_s3
from benchmark.data.uris import read_json, uri_exists
from benchmark.errors import InputError

RASTER_SUFFIXES = (".tif", ".tiff")


@dataclass(frozen=True)
class ImageRef:
    """An image to outline and the name its outputs take."""

    name: str
    uri: str


def image_name(uri: str) -> str:
    """``uri``'s file name without its suffix (``s3://b/a/kam.tif`` -> ``kam``)."""
    return PurePosixPath(uri.rstrip("/")).stem


def _from_stac(uri: str) -> list[str]:
    """The image of a STAC item, or those of every item under a catalog."""
    data = read_json(uri, what="STAC file")
    if isinstance(data, dict) and data.get("type") == "Feature":
        return [chip_uri(data, uri)]
    return [chip.uri for chip in list_test_chips(test_stac_uri=uri)]


def list_images(input_uri: str) -> list[ImageRef]:
    """The images ``input_uri`` names, sorted by name.

    Args:
        input_uri: a GeoTIFF/COG, a folder of ``*.tif`` (searched recursively), or a STAC
            item or catalog (``*.json``), local or s3://.

    Raises:
        InputError: nothing found, or two images with one name.
    """
    lower = input_uri.lower()
    if lower.endswith(".json"):
        uris = _from_stac(input_uri)
    elif os.path.isdir(input_uri) or (is_s3(input_uri) and not lower.endswith(RASTER_SUFFIXES)):
        uris = [chip.uri for chip in list_test_chips(test_img_dir=input_uri)]
    elif uri_exists(input_uri):
        uris = [input_uri]
    else:
        raise InputError(f"{input_uri}: no such image, folder or STAC file")
    images = sorted((ImageRef(image_name(u), u) for u in uris), key=lambda i: i.name)
    repeated = sorted(n for n, k in Counter(i.name for i in images).items() if k > 1)
    if repeated:
        raise InputError(
            f"{input_uri}: {len(repeated)} image name(s) occur twice, and outputs are named "
            f"after images: {', '.join(repeated[:10])}"
        )
    return images
