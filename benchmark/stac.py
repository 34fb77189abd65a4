"""Reading the Open Cities STAC catalogs: training scenes and test chips.

Raster Vision's own STAC reader fetches schemas from the internet, so we read the catalogs
with pystac directly, through RV's file system (local paths and ``s3://`` alike). The
competition catalogs are STAC 0.8.1; 1.x catalogs of the same shape read too.

Training catalog: ``catalog.json`` -> one collection per city/area -> image items (asset
``image``) and label items (asset ``labels``), paired by the label item's ``source`` link or,
as in the real files that have none, by id (``{id}`` and ``{id}-labels``).
"""

import json
import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pystac
from pystac.stac_io import DefaultStacIO
from rastervision.pipeline.file_system import (
    NotReadableError,
    file_exists,
    file_to_str,
    list_paths,
)

from benchmark.errors import InputError
from benchmark.uris import read_json

log = logging.getLogger(__name__)

IMAGE_ASSET = "image"
LABELS_ASSET = "labels"
LABEL_SUFFIX = "-labels"


@dataclass(frozen=True)
class SceneRef:
    """A training scene: its imagery and its building labels."""

    area: str
    id: str
    image_uri: str
    label_uri: str

    @property
    def key(self) -> str:
        """``area/id``, how scenes are named in ``-a train_ids``."""
        return f"{self.area}/{self.id}"


@dataclass(frozen=True)
class ChipRef:
    """A test chip: the submission file for it is ``{id}.tif``."""

    id: str
    uri: str


class _RVStacIO(DefaultStacIO):
    """pystac I/O through Raster Vision's file systems (so ``s3://`` works, offline too)."""

    def read_text(self, source: Any, *args: Any, **kwargs: Any) -> str:
        return file_to_str(str(source))


def _open_catalog(uri: str) -> pystac.Catalog:
    data = read_json(uri, what="STAC catalog")
    if not isinstance(data, dict) or "stac_version" not in data or "links" not in data:
        raise InputError(f"{uri}: not a STAC catalog (no stac_version/links)")
    try:
        return pystac.Catalog.from_file(uri, stac_io=_RVStacIO())
    except Exception as exc:
        raise InputError(f"{uri}: not a readable STAC catalog ({exc})") from None


def _walk_items(catalog: pystac.Catalog, uri: str) -> list[tuple[str, pystac.Item]]:
    """(area, item) for every item under the catalog's children."""
    found = []
    try:
        for child in catalog.get_children():
            found.extend((child.id, item) for item in child.get_items())
    except (FileNotFoundError, NotReadableError, pystac.STACError) as exc:
        raise InputError(f"{uri}: a link does not resolve ({exc})") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{uri}: a linked STAC file is not JSON ({exc})") from None
    return found


def _asset_href(item: pystac.Item, key: str) -> str | None:
    asset = item.assets.get(key)
    return asset.get_absolute_href() if asset is not None else None


def _source_id(item: pystac.Item) -> str:
    """The image item id a label item belongs to: its ``source`` link, else its id."""
    for link in item.links:
        if link.rel == "source":
            target = os.path.basename(link.get_absolute_href() or "")
            return target.removesuffix(".json")
    return item.id.removesuffix(LABEL_SUFFIX)


def read_training_scenes(catalog_uri: str) -> dict[str, SceneRef]:
    """All scenes of a ``train_tier_1``-style catalog, keyed ``area/id``.

    Files are not checked here (the real catalog has scenes whose imagery is elsewhere):
    :func:`select_scenes` checks the scenes a run uses. Quirks are logged as warnings.
    """
    catalog = _open_catalog(catalog_uri)
    images: dict[str, tuple[str, pystac.Item]] = {}
    labels: dict[str, str] = {}
    for area, item in _walk_items(catalog, catalog_uri):
        if LABELS_ASSET in item.assets:
            labels[f"{area}/{_source_id(item)}"] = _asset_href(item, LABELS_ASSET)
        elif IMAGE_ASSET in item.assets:
            images[f"{area}/{item.id}"] = (area, item)
        else:
            log.warning("%s: item %s has neither an image nor a labels asset", catalog_uri, item.id)
    scenes = {}
    for key, (area, item) in images.items():
        if key not in labels:
            log.warning("%s: scene %s has no label item", catalog_uri, key)
            continue
        scenes[key] = SceneRef(area, item.id, _asset_href(item, IMAGE_ASSET), labels[key])
    for key in labels.keys() - images.keys():
        log.warning("%s: label item for %s has no image item", catalog_uri, key)
    log.info("%s: %d scenes", catalog_uri, len(scenes))
    return scenes


def parse_scene_ids(value: str | Sequence[str]) -> list[str]:
    """``"mon/401175,acc/d41d81"`` (or a list) -> ``["mon/401175", "acc/d41d81"]``."""
    ids = value.split(",") if isinstance(value, str) else list(value)
    ids = [i.strip() for i in ids if i.strip()]
    for scene_id in ids:
        parts = scene_id.split("/")
        if len(parts) != 2 or not all(parts):
            raise InputError(f"scene id {scene_id!r} is not of the form area/id (e.g. acc/d41d81)")
    return ids


def select_scenes(
    scenes: dict[str, SceneRef], ids: Sequence[str], catalog_uri: str
) -> list[SceneRef]:
    """The scenes ``ids`` (``area/id``), checking that their image and labels exist."""
    unknown = [i for i in ids if i not in scenes]
    if unknown:
        raise InputError(
            f"{catalog_uri}: no scene {', '.join(unknown)}; "
            f"the catalog has: {', '.join(sorted(scenes)) or 'no complete scenes'}"
        )
    selected = [scenes[i] for i in ids]
    for scene in selected:
        for what, uri in (("image", scene.image_uri), ("labels", scene.label_uri)):
            if not file_exists(uri):
                raise InputError(f"{catalog_uri}: scene {scene.key}: {what} {uri} does not exist")
    return selected


def _chip_id_from_path(path: str) -> str:
    return os.path.basename(path).removesuffix(".tif")


def _list_tifs(img_dir: str) -> list[str]:
    if img_dir.startswith("s3://"):
        return list_paths(img_dir, ext=".tif", delimiter="")  # "" lists recursively
    if not os.path.isdir(img_dir):
        raise InputError(f"{img_dir}: test image directory not found")
    return [
        os.path.join(dirpath, name)
        for dirpath, _, names in os.walk(img_dir)
        for name in names
        if name.endswith(".tif") and not name.startswith(".")
    ]


def list_test_chips(
    test_stac_uri: str | None = None, test_img_dir: str | None = None
) -> list[ChipRef]:
    """Test chips, sorted by id, from the test catalog and/or a directory of chips.

    With a catalog, chip ids come from its items; the image is ``{test_img_dir}/{id}/{id}.tif``
    when a directory is given too (read the catalog locally, the images from S3), else the
    item's asset. With only a directory, every ``*.tif`` under it (``{id}/{id}.tif`` or flat).
    """
    if test_stac_uri:
        catalog = _open_catalog(test_stac_uri)
        chips = []
        for item in catalog.get_all_items():
            if test_img_dir:
                uri = f"{test_img_dir.rstrip('/')}/{item.id}/{item.id}.tif"
            else:
                href = next(iter(item.assets.values()), None)
                if href is None:
                    raise InputError(f"{test_stac_uri}: test item {item.id} has no asset")
                uri = href.get_absolute_href()
            chips.append(ChipRef(item.id, uri))
        source = test_stac_uri
    elif test_img_dir:
        chips = [ChipRef(_chip_id_from_path(p), p) for p in _list_tifs(test_img_dir)]
        source = test_img_dir
    else:
        raise InputError("give test_stac_uri or test_img_dir to find the test chips")
    duplicates = sorted(i for i, n in Counter(c.id for c in chips).items() if n > 1)
    if duplicates:
        raise InputError(f"{source}: duplicate test chip ids {', '.join(duplicates[:10])}")
    if not chips:
        raise InputError(f"{source}: no test chips (*.tif) found")
    return sorted(chips, key=lambda c: c.id)
