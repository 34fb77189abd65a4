"""The test chips: from the test catalog (its items, read many at a time) or a folder.

The submission needs one ``{id}.tif`` per test chip, so a chip is its id and where its image
is; the competition's test catalog has 11,481 items, read as plain JSON rather than through
pystac (see :func:`_chips_from_catalog`).
"""

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pystac.utils import make_absolute_href
from rastervision.pipeline.file_system import list_paths

from benchmark.data.aws_errors import aws_errors
from benchmark.data.stac import IMAGE_ASSET, CatalogIO, open_catalog
from benchmark.data.uri_schemes import is_s3
from benchmark.errors import InputError

READ_THREADS = 16  # concurrent reads of test catalog items (S3 latency, not CPU)


@dataclass(frozen=True)
class ChipRef:
    """A test chip: the submission file for it is ``{id}.tif``."""

    id: str
    uri: str


def chip_uri(item: dict[str, Any], href: str) -> str:
    """The test chip an item points at: its ``image`` asset, else its only or its tif asset."""
    assets = item.get("assets") if isinstance(item.get("assets"), dict) else {}
    tifs = [k for k, a in assets.items() if str(a.get("href", "")).lower().endswith(".tif")]
    keys = [IMAGE_ASSET] if IMAGE_ASSET in assets else list(assets) if len(assets) == 1 else tifs
    if len(keys) != 1 or not isinstance(assets[keys[0]].get("href"), str):
        raise InputError(
            f"{href}: test item has no '{IMAGE_ASSET}' asset with an href "
            f"(it has: {', '.join(assets) or 'none'})"
        )
    return make_absolute_href(assets[keys[0]]["href"], href)


def _test_item_hrefs(catalog_uri: str, io: CatalogIO) -> list[str]:
    """Where the items of the test catalog (and of any sub-catalogs) are."""
    catalog = open_catalog(catalog_uri, io)
    hrefs = [link.get_absolute_href() for link in catalog.links if link.rel == "item"]
    for link in catalog.links:
        if link.rel == "child":
            hrefs += _test_item_hrefs(link.get_absolute_href(), io)
    return hrefs


def _chips_from_catalog(test_stac_uri: str, test_img_dir: str | None) -> list[ChipRef]:
    """Chips of the test catalog; its 11,481 items are read as plain JSON, many at a time.

    pystac resolves each item link with a linear scan of the catalog's links (quadratic in
    the number of items) and deep-copies every item to migrate it; we only need an id and
    an href. Threads make the 11,481 small reads from S3 bearable.
    """
    io = CatalogIO()
    hrefs = _test_item_hrefs(test_stac_uri, io)
    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        items = list(pool.map(io.read_json, hrefs))
    io.log_fixes(test_stac_uri)
    chips = []
    for href, item in zip(hrefs, items, strict=True):
        chip_id = item.get("id")
        if not isinstance(chip_id, str) or not chip_id:
            raise InputError(f"{href}: test item has no id")
        if test_img_dir:
            uri = f"{test_img_dir.rstrip('/')}/{chip_id}/{chip_id}.tif"
        else:
            uri = chip_uri(item, href)
        chips.append(ChipRef(chip_id, uri))
    return chips


def _chips_in_dir(img_dir: str) -> list[ChipRef]:
    """``*.tif`` under ``img_dir`` (``{id}/{id}.tif`` or flat), leaving out hidden temp files."""
    if is_s3(img_dir):
        with aws_errors(img_dir):
            paths = list_paths(img_dir, ext=".tif", delimiter="")  # no delimiter: recursive
    elif os.path.isdir(img_dir):
        paths = [
            os.path.join(dirpath, name)
            for dirpath, _, names in os.walk(img_dir)
            for name in names
            if name.endswith(".tif")
        ]
    else:
        raise InputError(f"{img_dir}: test image directory not found")
    names = ((p, os.path.basename(p)) for p in paths)
    return [ChipRef(name.removesuffix(".tif"), p) for p, name in names if not name.startswith(".")]


def list_test_chips(
    test_stac_uri: str | None = None, test_img_dir: str | None = None
) -> list[ChipRef]:
    """Test chips, sorted by id, from the test catalog and/or a directory of chips.

    With a catalog, chip ids come from its items; the image is ``{test_img_dir}/{id}/{id}.tif``
    when a directory is given too (the original benchmark reads the 11,481-item catalog
    locally, the images from S3), else the item's asset. With only a directory, every
    ``*.tif`` under it (``{id}/{id}.tif`` or flat ``{id}.tif``).

    Raises:
        InputError: neither is given, the catalog is unreadable, the directory is missing,
            no chip is found, or two chips have the same id.
    """
    if test_stac_uri:
        chips, source = _chips_from_catalog(test_stac_uri, test_img_dir), test_stac_uri
    elif test_img_dir:
        chips, source = _chips_in_dir(test_img_dir), test_img_dir
    else:
        raise InputError("give test_stac_uri or test_img_dir to find the test chips")
    if not chips:
        raise InputError(f"{source}: no test chips found (no items / no *.tif)")
    repeated = sorted(i for i, n in Counter(c.id for c in chips).items() if n > 1)
    if repeated:
        shown = ", ".join(repeated[:10]) + (" ..." if len(repeated) > 10 else "")
        raise InputError(f"{source}: {len(repeated)} test chip id(s) occur twice: {shown}")
    return sorted(chips, key=lambda c: c.id)
