"""PREPROCESS's work on one scene: cut it into windows small enough to chip in memory.

Windows tile the scene exactly (the original dropped the last row and column of every scene);
windows without a single valid pixel are skipped. Pixels are copied block by block with
windowed reads, so memory is bounded by the block size whatever the scene or window size.
The scene's labels are cleaned once (see :mod:`benchmark.labels`) and written beside the
windows. ``manifest.json`` is written last and marks the scene complete; window files are
written atomically, so a re-run after a kill redoes only what is missing.
"""

import logging
from dataclasses import asdict, dataclass, field

import rasterio
from rasterio.windows import Window
from tqdm.auto import tqdm

from benchmark.errors import InputError
from benchmark.imagery import open_scene_checked, read_valid_mask
from benchmark.labels import read_building_labels, write_labels_geojson
from benchmark.stac import SceneRef
from benchmark.uris import atomic_output, read_json, uri_exists, write_json

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
# Internal tiling of the written windows (and the unit of copying).
BLOCK_SIZE = 512


@dataclass
class WindowFile:
    """One written window: where it is and where it sits in the scene (pixels)."""

    uri: str
    col_off: int
    row_off: int
    width: int
    height: int


@dataclass
class SceneSplit:
    """What PREPROCESS made of one scene (the content of its ``manifest.json``)."""

    scene: str
    image_uri: str
    source_label_uri: str
    label_uri: str
    crs: str
    windows: list[WindowFile] = field(default_factory=list)
    label_report: str = ""


def plan_windows(width: int, height: int, size: int) -> list[Window]:
    """Row-major windows of at most ``size`` pixels that cover every pixel exactly once."""
    if min(width, height, size) <= 0:
        raise ValueError(f"bad window plan: {width}x{height} in windows of {size}")
    return [
        Window(col, row, min(size, width - col), min(size, height - row))
        for row in range(0, height, size)
        for col in range(0, width, size)
    ]


def _blocks(window: Window, block: int) -> list[tuple[Window, Window]]:
    """``window`` cut into blocks: (block in window coordinates, same block in the scene)."""
    return [
        (b, Window(window.col_off + b.col_off, window.row_off + b.row_off, b.width, b.height))
        for b in plan_windows(int(window.width), int(window.height), block)
    ]


def _has_valid_pixel(src: rasterio.DatasetReader, window: Window, block: int) -> bool:
    for _, scene_block in _blocks(window, block):
        if read_valid_mask(src, scene_block).any():
            return True
    return False


def _write_window(src: rasterio.DatasetReader, window: Window, uri: str, block: int) -> None:
    profile = src.profile.copy()
    profile.update(
        driver="GTiff",
        width=int(window.width),
        height=int(window.height),
        transform=src.window_transform(window),
        tiled=True,
        blockxsize=BLOCK_SIZE,
        blockysize=BLOCK_SIZE,
        compress="deflate",
        predictor=2,
        BIGTIFF="IF_SAFER",
    )
    with atomic_output(uri) as path, rasterio.open(path, "w", **profile) as dst:
        dst.colorinterp = src.colorinterp
        for window_block, scene_block in _blocks(window, block):
            dst.write(src.read(window=scene_block), window=window_block)


def read_scene_split(out_dir: str) -> SceneSplit:
    """The manifest PREPROCESS wrote in ``out_dir``; missing means the scene is not split yet."""
    uri = f"{out_dir.rstrip('/')}/{MANIFEST_NAME}"
    if not uri_exists(uri):
        raise InputError(
            f"{uri} missing: run PREPROCESS first (benchmark.experiments.split_images)"
        )
    data = read_json(uri)
    data["windows"] = [WindowFile(**w) for w in data["windows"]]
    return SceneSplit(**data)


def split_scene(
    scene: SceneRef, out_dir: str, split_size: int = 9000, block_size: int = 2048
) -> SceneSplit:
    """Write ``{out_dir}/{id}_{i}.tif`` windows, ``{id}.geojson`` labels and the manifest.

    Args:
        scene: the scene (image and labels) from the STAC catalog.
        out_dir: the scene's output directory (local or ``s3://``).
        split_size: maximum window side in pixels.
        block_size: side of the blocks copied at a time: bounds memory.
    """
    out_dir = out_dir.rstrip("/")
    manifest_uri = f"{out_dir}/{MANIFEST_NAME}"
    if uri_exists(manifest_uri):
        log.info("%s: already split (%s exists), skipping", scene.key, manifest_uri)
        return read_scene_split(out_dir)

    geoms, report = read_building_labels(scene.label_uri)
    label_uri = f"{out_dir}/{scene.id}.geojson"
    write_labels_geojson(geoms, label_uri)

    with open_scene_checked(scene.image_uri) as src:
        windows = plan_windows(src.width, src.height, split_size)
        split = SceneSplit(
            scene=scene.key,
            image_uri=scene.image_uri,
            source_label_uri=scene.label_uri,
            label_uri=label_uri,
            crs=src.crs.to_string(),
            label_report=report.summary(),
        )
        skipped = 0
        for window in tqdm(windows, desc=f"PREPROCESS {scene.key}", unit="window"):
            if not _has_valid_pixel(src, window, block_size):
                continue
            uri = f"{out_dir}/{scene.id}_{len(split.windows)}.tif"
            if uri_exists(uri):
                skipped += 1
            else:
                _write_window(src, window, uri, block_size)
            split.windows.append(
                WindowFile(
                    uri,
                    int(window.col_off),
                    int(window.row_off),
                    int(window.width),
                    int(window.height),
                )
            )
    if skipped:
        log.info("%s: %d window(s) were already written, kept them", scene.key, skipped)
    write_json(asdict(split), manifest_uri)
    log.info(
        "%s: %d window(s) of %d written to %s", scene.key, len(split.windows), len(windows), out_dir
    )
    return split
