"""Reading the Open Cities STAC catalogs: the training scenes (test chips: :mod:`.chips`).

Raster Vision's own STAC reader fetches schemas from the internet, so we read the catalogs
with pystac directly, through RV's file system (local paths and ``s3://`` alike, passed to
pystac as its ``stac_io``, never patched in globally). The competition catalogs are STAC
0.8.1; 1.x catalogs of the same shape read too. What pystac would choke on but we do not need
(a missing ``type`` in 1.x, an unreadable ``datetime``) is fixed up before parsing and logged.

Training catalog: ``catalog.json`` -> one collection per city/area -> image items (asset
``image``) and label items (asset ``labels``), paired by the label item's ``source`` link or,
as in the real files that have none, by id (``{id}`` and ``{id}-labels``). A scene that cannot
be paired is logged and skipped, and is only an error when a run selects it: a run over the
whole competition catalog must go on past the odd broken scene.
"""

import logging
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pystac
from pystac.stac_io import DefaultStacIO
from pystac.utils import str_to_datetime
from rastervision.pipeline.file_system import file_to_str

from benchmark.data.aws_errors import aws_errors
from benchmark.data.uris import read_json, uri_exists
from benchmark.errors import InputError

log = logging.getLogger(__name__)

IMAGE_ASSET = "image"
LABELS_ASSET = "labels"
LABEL_SUFFIX = "-labels"
# Stands in for a datetime pystac cannot parse: nothing here uses dates, pystac requires one.
PLACEHOLDER_DATETIME = "1970-01-01T00:00:00Z"


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


class TrainingScenes(dict[str, SceneRef]):
    """The complete scenes of a catalog keyed ``area/id``, and what is wrong with the others.

    A plain dict to its users; :func:`select_scenes` also uses ``unusable`` (key -> why, naming
    the STAC item) and ``item_uris`` (key -> (image item, label item)) for its messages.
    """

    def __init__(
        self,
        scenes: dict[str, SceneRef],
        unusable: dict[str, str],
        item_uris: dict[str, tuple[str, str]],
    ) -> None:
        super().__init__(scenes)
        self.unusable = unusable
        self.item_uris = item_uris


def _one_line(exc: Exception) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def _has_datetime(properties: dict[str, Any]) -> bool:
    """Whether pystac can read the item's date (a datetime, or a start and an end)."""
    if properties.get("datetime") is None:
        return "start_datetime" in properties and "end_datetime" in properties
    try:
        str_to_datetime(properties["datetime"])
    except (TypeError, ValueError, OverflowError):
        return False
    return True


class CatalogIO(DefaultStacIO):
    """pystac's reads through RV's file systems; every problem an InputError naming the file.

    ``fixes`` holds the files each kind of fix-up was made to, so that a catalog of 11,000
    items logs one line per kind.
    """

    def __init__(self) -> None:
        super().__init__()
        self.fixes: dict[str, set[str]] = {}

    def read_text(self, source: Any, *args: Any, **kwargs: Any) -> str:
        """A file's text through RV's file system (local or s3://)."""
        uri = str(os.fspath(source))
        with aws_errors(uri):
            return file_to_str(uri)

    def read_json(self, source: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """A STAC file's JSON, fixed up where pystac would choke on what we do not need."""
        href = str(os.fspath(source))
        return self._fix_up(read_json(href, what="STAC file"), href)

    def stac_object_from_dict(  # noqa: D102 (pystac's, with the fix-ups above)
        self,
        d: dict[str, Any],
        href: Any = None,
        root: pystac.Catalog | None = None,
        preserve_dict: bool = True,
    ) -> pystac.STACObject:
        try:
            return super().stac_object_from_dict(d, href, root, preserve_dict)
        except InputError:
            raise
        except Exception as exc:
            raise InputError(f"{href}: not a readable STAC object ({_one_line(exc)})") from None

    def _fix_up(self, data: Any, href: str) -> dict[str, Any]:
        """Check ``data`` is STAC and mend what pystac would refuse but we do not use."""
        missing = [
            k for k in ("stac_version", "links") if not isinstance(data, dict) or k not in data
        ]
        if missing or not isinstance(data["links"], list):
            raise InputError(f"{href}: not a STAC file (no {' or '.join(missing) or 'links list'})")
        if "type" not in data and not str(data["stac_version"]).startswith("0."):
            # 1.x requires it (0.8 had none); pystac cannot tell the kind without it.
            data["type"] = "Collection" if "extent" in data else "Catalog"
            self._fixed("STAC 1.x catalog or collection without 'type': type inferred", href)
        if data.get("type") == "Feature":
            properties = data.get("properties")
            if not isinstance(properties, dict):
                data["properties"] = properties = {}
            if not _has_datetime(properties):
                properties["datetime"] = PLACEHOLDER_DATETIME
                self._fixed("item datetime missing or unreadable: ignored (not used)", href)
        return data

    def _fixed(self, kind: str, href: str) -> None:
        self.fixes.setdefault(kind, set()).add(href)

    def log_fixes(self, uri: str) -> None:
        """One warning per kind of fix-up made while reading the catalog at ``uri``."""
        for kind, hrefs in self.fixes.items():
            log.warning("%s: %d STAC file(s) (e.g. %s): %s", uri, len(hrefs), min(hrefs), kind)


def open_catalog(uri: str, io: CatalogIO) -> pystac.Catalog:
    """The catalog (or collection) at ``uri``, read through ``io``."""
    data = io.read_json(uri)
    if data.get("type") == "Feature":
        raise InputError(f"{uri}: a STAC item, not a catalog")
    is_collection = data.get("type") == "Collection" or "extent" in data
    kind = pystac.Collection if is_collection else pystac.Catalog
    try:
        return kind.from_file(uri, stac_io=io)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{uri}: not a readable STAC catalog ({_one_line(exc)})") from None


def _linked(parent: pystac.Catalog, objects: Iterable) -> list:
    """Resolve ``parent``'s links; a broken one names the file that links to it."""
    try:
        return list(objects)
    except (InputError, pystac.STACError) as exc:
        # pystac wraps what our reader raised in a STACError saying only "does not resolve".
        cause = exc if isinstance(exc, InputError) else exc.__cause__
        problem = cause if isinstance(cause, InputError) else _one_line(exc)
        raise InputError(f"{problem} (linked from {parent.get_self_href()})") from None


def _area_items(catalog: pystac.Catalog) -> list[tuple[str, pystac.Item]]:
    """(area, item): items under each child are that child's area (its id, e.g. ``kam``).

    Items directly in the root (e.g. when ``catalog_uri`` is one area's collection) belong
    to the root's area.
    """
    found = [(catalog.id, item) for item in _linked(catalog, catalog.get_items())]
    for child in _linked(catalog, catalog.get_children()):
        found += [(child.id, item) for item in _linked(child, child.get_items(recursive=True))]
    return found


def _asset_href(item: pystac.Item, key: str) -> str:
    return item.assets[key].get_absolute_href() or item.assets[key].href


def _source_href(item: pystac.Item) -> str | None:
    link = next((link for link in item.links if link.rel == "source"), None)
    return None if link is None else link.get_absolute_href()


@dataclass
class _Pairing:
    """Image and label items by scene key (``area/id``), and what is wrong with which scene."""

    images: dict[str, pystac.Item] = field(default_factory=dict)
    labels: dict[str, pystac.Item] = field(default_factory=dict)
    problems: dict[str, list[str]] = field(default_factory=dict)
    paired_by_id: int = 0  # label items without a source link

    def problem(self, key: str, why: str) -> None:
        self.problems.setdefault(key, []).append(why)

    def add(self, found: dict[str, pystac.Item], key: str, item: pystac.Item) -> None:
        if key in found:
            kind = "image" if found is self.images else "label"
            self.problem(
                key, f"two {kind} items: {found[key].get_self_href()} and {item.get_self_href()}"
            )
        found[key] = item


def _pair(items: list[tuple[str, pystac.Item]]) -> _Pairing:
    """Pair label items with image items: by ``source`` link, else by id."""
    pairing = _Pairing()
    image_keys = {}  # image item href -> key, for the source links
    for area, item in items:
        if IMAGE_ASSET in item.assets and LABELS_ASSET not in item.assets:
            pairing.add(pairing.images, f"{area}/{item.id}", item)
            image_keys[item.get_self_href()] = f"{area}/{item.id}"
    for area, item in items:
        key, href = f"{area}/{item.id.removesuffix(LABEL_SUFFIX)}", item.get_self_href()
        if LABELS_ASSET in item.assets:
            source = _source_href(item)
            if source is None:
                pairing.paired_by_id += 1
            elif source in image_keys:
                key = image_keys[source]
            else:
                pairing.problem(
                    key,
                    f"label item {href}: its source link {source} is not an image item "
                    "of the catalog",
                )
                continue
            pairing.add(pairing.labels, key, item)
        elif IMAGE_ASSET not in item.assets:
            assets = ", ".join(item.assets) or "none"
            pairing.problem(
                key,
                f"item {href} has no '{IMAGE_ASSET}' or '{LABELS_ASSET}' asset (it has: {assets})",
            )
    for key in pairing.images.keys() - pairing.labels.keys() - pairing.problems.keys():
        pairing.problem(key, f"image item {pairing.images[key].get_self_href()} has no label item")
    for key in pairing.labels.keys() - pairing.images.keys() - pairing.problems.keys():
        pairing.problem(key, f"label item {pairing.labels[key].get_self_href()} has no image item")
    return pairing


def read_training_scenes(catalog_uri: str) -> TrainingScenes:
    """All complete scenes of a ``train_tier_1``-style catalog, keyed ``area/id``.

    Files are not checked here (the real catalog has scenes whose imagery is elsewhere):
    :func:`select_scenes` checks the scenes a run uses. Each scene that cannot be used is
    logged as a warning and kept in ``TrainingScenes.unusable`` with the reason.

    Raises:
        InputError: the catalog, or a collection or item it links to, is missing or is not
            STAC JSON.
    """
    io = CatalogIO()
    pairing = _pair(_area_items(open_catalog(catalog_uri, io)))
    io.log_fixes(catalog_uri)
    if pairing.paired_by_id:
        log.info(
            "%s: %d label item(s) without a 'source' link, paired by id ({id}, {id}-labels)",
            catalog_uri,
            pairing.paired_by_id,
        )
    unusable = {key: "; ".join(why) for key, why in sorted(pairing.problems.items())}
    for key, why in unusable.items():
        log.warning("%s: scene %s skipped: %s", catalog_uri, key, why)
    scenes, item_uris = {}, {}
    for key in sorted(pairing.images.keys() & pairing.labels.keys() - unusable.keys()):
        area, scene_id = key.split("/", 1)
        image, label = pairing.images[key], pairing.labels[key]
        scenes[key] = SceneRef(
            area, scene_id, _asset_href(image, IMAGE_ASSET), _asset_href(label, LABELS_ASSET)
        )
        item_uris[key] = (image.get_self_href(), label.get_self_href())
    log.info("%s: %d complete scenes", catalog_uri, len(scenes))
    return TrainingScenes(scenes, unusable, item_uris)


def parse_scene_ids(value: str | Sequence[str]) -> list[str]:
    """``"mon/401175,acc/d41d81"`` (or a list) -> ``["mon/401175", "acc/d41d81"]``."""
    ids = value.split(",") if isinstance(value, str) else list(value)
    ids = [i.strip() for i in ids if i.strip()]
    for scene_id in ids:
        parts = scene_id.split("/")
        if len(parts) != 2 or not all(parts) or any(c.isspace() for c in scene_id):
            raise InputError(f"scene id {scene_id!r} is not of the form area/id (e.g. acc/d41d81)")
    repeated = sorted(i for i, n in Counter(ids).items() if n > 1)
    if repeated:
        raise InputError(f"scene id(s) given more than once: {', '.join(repeated)}")
    return ids


def select_scenes(
    scenes: dict[str, SceneRef], ids: Sequence[str], catalog_uri: str
) -> list[SceneRef]:
    """The scenes ``ids`` (``area/id``), checking that their image and labels exist.

    Raises:
        InputError: an id is not in the catalog (the message lists those that are), its
            scene is incomplete, or its image or label file does not exist.
    """
    unusable = scenes.unusable if isinstance(scenes, TrainingScenes) else {}
    for scene_id in ids:
        if scene_id in unusable:
            raise InputError(
                f"{catalog_uri}: scene {scene_id} cannot be used: {unusable[scene_id]}"
            )
    unknown = [i for i in ids if i not in scenes]
    if unknown:
        raise InputError(
            f"{catalog_uri}: no scene {', '.join(unknown)}; "
            f"the catalog has: {', '.join(sorted(scenes)) or 'no complete scenes'}"
        )
    selected = [scenes[i] for i in ids]
    item_uris = scenes.item_uris if isinstance(scenes, TrainingScenes) else {}
    for scene in selected:
        items = item_uris.get(scene.key)
        for i, (asset, uri) in enumerate(
            ((IMAGE_ASSET, scene.image_uri), (LABELS_ASSET, scene.label_uri))
        ):
            if not uri_exists(uri):
                where = f" (asset '{asset}' of {items[i]})" if items else ""
                raise InputError(
                    f"{catalog_uri}: scene {scene.key}: {asset} {uri} does not exist{where}"
                )
    return selected
