"""PREPROCESS's work on one scene: cut it into windows small enough to chip in memory.

Windows tile the scene exactly (the original dropped the last row and column of every scene);
windows without a single valid pixel are not written. Pixels are copied block by block with
windowed reads, so memory is bounded by the block size whatever the scene or window size.
With a ``gsd`` each window is written resampled to it, block by block as well (see
:mod:`benchmark.data.gsd`); the manifest records the GSD, and reading it back for another GSD is
an error, so windows at one GSD are never taken for another.
The scene's labels are cleaned once (see :mod:`benchmark.data.labels`) and written beside the
windows. ``manifest.json`` is written last and marks the scene complete; window files are
written atomically, so a re-run after a kill redoes only what is missing.
"""

import logging
from dataclasses import asdict, dataclass, field

import numpy as np
import rasterio
from rasterio.windows import Window
from tqdm.auto import tqdm

from benchmark.data import layout
from benchmark.data.gsd import GridMap, describe_gsd, read_bands, read_mask
from benchmark.data.imagery import has_dataset_mask, open_scene_checked, read_valid_mask
from benchmark.data.labels import read_building_labels, write_labels_geojson
from benchmark.data.stac import SceneRef
from benchmark.data.uris import atomic_geotiff, read_json, uri_exists, write_json
from benchmark.data.windows import plan_windows
from benchmark.errors import InputError

log = logging.getLogger(__name__)

# Internal tiling of the written windows; block_size should be a multiple of it.
TILE_SIZE = 512


@dataclass
class WindowFile:
    """One written window: where it is, where it sits in the scene, its valid pixels.

    The position is in scene pixels whatever GSD the file was written at; ``valid_pixels``
    counts the file's own.
    """

    uri: str
    col_off: int
    row_off: int
    width: int
    height: int
    valid_pixels: int


@dataclass
class SceneWindows:
    """What PREPROCESS made of one scene (the content of its ``manifest.json``)."""

    scene: str
    image_uri: str
    source_label_uri: str
    label_uri: str
    crs: str
    width: int
    height: int
    split_size: int
    valid_pixels: int
    label_report: str
    gsd: float | None = None  # metres per pixel of the windows; None: the scene's own
    windows: list[WindowFile] = field(default_factory=list)


def _blocks(grid: GridMap, block: int) -> list[tuple[Window, Window]]:
    """``grid`` cut into blocks: (block in grid pixels, the scene window it covers)."""
    return [(b, grid.source_window(b)) for b in plan_windows(grid.width, grid.height, block)]


def _has_valid_pixel(src: rasterio.DatasetReader, window: Window, block: int) -> bool:
    """Whether ``window`` holds imagery; stops reading at the first block that does."""
    native = GridMap.at_gsd(src, window, None)
    return any(read_valid_mask(src, b).any() for _, b in _blocks(native, block))


def _count_valid(src: rasterio.DatasetReader, block: int) -> int:
    """Valid pixels of a whole raster, counted block by block."""
    blocks = plan_windows(src.width, src.height, block)
    return sum(int(np.count_nonzero(read_valid_mask(src, b))) for b in blocks)


def _window_profile(src: rasterio.DatasetReader, grid: GridMap) -> dict:
    profile = src.profile.copy()
    profile.update(
        driver="GTiff",
        width=grid.width,
        height=grid.height,
        transform=grid.transform(src),
        tiled=True,
        blockxsize=TILE_SIZE,
        blockysize=TILE_SIZE,
        compress="deflate",
        predictor=2,
        interleave="pixel",
        BIGTIFF="IF_SAFER",
    )
    return profile


def _copy_window(
    src: rasterio.DatasetReader, grid: GridMap, uri: str, block: int, bar: tqdm
) -> int:
    """Write ``grid`` of ``src`` (all bands, mask and band meanings) to ``uri``.

    Returns:
        The window's valid pixel count: counted from the scene blocks the GDAL cache already
        holds for a plain copy, from the file written for a resampled one (its mask was
        resampled too).
    """
    valid = 0
    copy_mask = has_dataset_mask(src)
    with atomic_geotiff(uri) as path:
        with (
            rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True),
            rasterio.open(path, "w", **_window_profile(src, grid)) as dst,
        ):
            dst.colorinterp = src.colorinterp
            for window_block, scene_block in _blocks(grid, grid.block_side(block)):
                shape = (int(window_block.height), int(window_block.width))
                dst.write(read_bands(src, scene_block, shape), window=window_block)
                if copy_mask:
                    dst.write_mask(read_mask(src, scene_block, shape), window=window_block)
                if grid.is_identity:
                    valid += int(np.count_nonzero(read_valid_mask(src, scene_block)))
                bar.update(round(scene_block.width * scene_block.height))
        if not grid.is_identity:
            with rasterio.open(path) as written:
                valid = _count_valid(written, block)
    return valid


def _count_existing_window(
    src: rasterio.DatasetReader, grid: GridMap, uri: str, block: int
) -> int | None:
    """Valid pixels of a window file an earlier run wrote, or None if it is not this window.

    Files are written atomically, so one that exists is complete; but a run with another
    ``split_size`` or ``gsd`` writes other windows under the same names, so its grid is checked.
    """
    with rasterio.open(uri) as old:
        same = (
            (old.width, old.height, old.count) == (grid.width, grid.height, src.count)
            and old.crs == src.crs
            and old.transform.almost_equals(grid.transform(src))
        )
        return _count_valid(old, block) if same else None


def _write_or_keep_window(
    src: rasterio.DatasetReader, grid: GridMap, uri: str, block: int, bar: tqdm
) -> int:
    """Valid pixel count of the window file ``uri``, written unless an earlier run did."""
    if uri_exists(uri):
        valid = _count_existing_window(src, grid, uri, block)
        if valid is not None:
            log.info("%s exists (earlier run), kept", uri)
            bar.update(int(grid.source.width * grid.source.height))
            return valid
        log.warning("%s holds another window (other split_size or gsd?), rewriting it", uri)
    valid = _copy_window(src, grid, uri, block, bar)
    log.info("wrote %s", uri)
    return valid


def read_scene_windows(out_dir: str, gsd: float | None = None) -> SceneWindows:
    """The manifest PREPROCESS wrote in ``out_dir`` for windows at ``gsd``.

    Missing means the scene is not split yet. Windows at another GSD are refused: training or
    scoring on them would silently change the scale the model sees.
    """
    uri = layout.manifest_uri(out_dir)
    if not uri_exists(uri):
        raise InputError(f"{uri} missing: run PREPROCESS first")
    data = read_json(uri)
    try:
        windows = [WindowFile(**w) for w in data["windows"]]
        split = SceneWindows(**{**data, "windows": windows})
    except (KeyError, TypeError) as exc:
        raise InputError(f"{uri}: not a PREPROCESS manifest ({exc})") from None
    if split.gsd != gsd:
        raise InputError(
            f"{uri}: windows {describe_gsd(split.gsd)}, not {describe_gsd(gsd)} as asked: "
            "PREPROCESS and the benchmark need the same -a gsd (or another -a split_dir)"
        )
    return split


def cut_scene_into_windows(
    scene: SceneRef,
    out_dir: str,
    split_size: int = 9000,
    block_size: int = 1024,
    gsd: float | None = None,
) -> SceneWindows:
    """Write ``{out_dir}/{id}_{i}.tif`` windows, ``{id}.geojson`` labels and the manifest.

    ``i`` counts the windows holding imagery, in row-major plan order. If the manifest exists
    the scene is done and only read back (an :class:`InputError` if it was split at another
    GSD); otherwise window files already there are kept if they are the same windows.

    Args:
        scene: the scene (image and labels) from the STAC catalog.
        out_dir: the scene's output directory (local or ``s3://``).
        split_size: maximum window side in the scene's pixels.
        block_size: side of the scene blocks read at a time: bounds memory.
        gsd: metres per pixel to resample the windows to; None keeps the scene's own.
    """
    out_dir = out_dir.rstrip("/")
    manifest_uri = layout.manifest_uri(out_dir)
    if uri_exists(manifest_uri):
        log.info("%s: already split (%s exists), skipping", scene.key, manifest_uri)
        return read_scene_windows(out_dir, gsd)

    with open_scene_checked(scene.image_uri) as src:
        geoms, report = read_building_labels(scene.label_uri)
        label_uri = layout.window_labels_uri(out_dir, scene.id)
        write_labels_geojson(geoms, label_uri)
        log.info("%s: labels: %s", scene.key, report.summary())

        windows = plan_windows(src.width, src.height, split_size)
        log.info(
            "%s: %dx%d px in %d window(s) of at most %d px, written %s",
            scene.key, src.width, src.height, len(windows), split_size, describe_gsd(gsd),
        )  # fmt: skip
        split = SceneWindows(
            scene=scene.key,
            image_uri=scene.image_uri,
            source_label_uri=scene.label_uri,
            label_uri=label_uri,
            crs=src.crs.to_string(),
            width=src.width,
            height=src.height,
            split_size=split_size,
            valid_pixels=0,
            label_report=report.summary(),
            gsd=gsd,
        )
        with tqdm(
            total=src.width * src.height, desc=f"PREPROCESS {scene.key}", unit="px", unit_scale=True
        ) as bar:
            for n, window in enumerate(windows, start=1):
                if not _has_valid_pixel(src, window, block_size):
                    log.info("%s: window %d/%d has no imagery", scene.key, n, len(windows))
                    bar.update(int(window.width * window.height))
                    continue
                uri = layout.window_file_uri(out_dir, scene.id, len(split.windows))
                grid = GridMap.at_gsd(src, window, gsd)
                valid = _write_or_keep_window(src, grid, uri, block_size, bar)
                split.windows.append(
                    WindowFile(
                        uri=uri,
                        col_off=int(window.col_off),
                        row_off=int(window.row_off),
                        width=int(window.width),
                        height=int(window.height),
                        valid_pixels=valid,
                    )
                )
                split.valid_pixels += valid
    write_json(asdict(split), manifest_uri)
    log.info(
        "%s: %d of %d window(s), %d valid px, in %s",
        scene.key, len(split.windows), len(windows), split.valid_pixels, out_dir,
    )  # fmt: skip
    return split
