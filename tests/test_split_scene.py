import os

import numpy as np
import pytest
import rasterio

from benchmark.errors import InputError
from benchmark.split_scene import plan_windows, read_scene_split, split_scene
from benchmark.stac import SceneRef, read_training_scenes
from tests.rasters import rgba, write_raster

LABELS = '{"type": "FeatureCollection", "features": []}'


@pytest.mark.parametrize("width", [1, 7, 64, 65, 100])
@pytest.mark.parametrize("height", [1, 9, 64, 130])
@pytest.mark.parametrize("size", [1, 8, 64, 1000])
def test_windows_cover_every_pixel_exactly_once(width, height, size):
    cover = np.zeros((height, width), dtype=int)
    for w in plan_windows(width, height, size):
        assert 0 < w.width <= size and 0 < w.height <= size
        cover[w.row_off : w.row_off + w.height, w.col_off : w.col_off + w.width] += 1
    assert (cover == 1).all()


def _scene(tmp_path, data) -> SceneRef:
    image = write_raster(tmp_path / "src" / "s1.tif", data)
    labels = tmp_path / "src" / "s1.geojson"
    labels.write_text(LABELS)
    return SceneRef("kam", "s1", image, str(labels))


def test_split_is_pixel_exact_and_skips_empty_windows(tmp_path):
    data = rgba(
        40, 50
    )  # the top-left 20x25 is alpha 0: with 20 px windows, windows there are empty
    split = split_scene(_scene(tmp_path, data), str(tmp_path / "out"), split_size=20, block_size=8)
    assert len(split.windows) == len(plan_windows(50, 40, 20)) - 1
    seen = np.zeros((40, 50), dtype=int)
    with rasterio.open(tmp_path / "src" / "s1.tif") as src:
        for w in split.windows:
            with rasterio.open(w.uri) as dst:
                window = rasterio.windows.Window(w.col_off, w.row_off, w.width, w.height)
                assert np.array_equal(dst.read(), src.read(window=window))
                assert dst.transform == src.window_transform(window)
                assert dst.crs == src.crs
            seen[w.row_off : w.row_off + w.height, w.col_off : w.col_off + w.width] += 1
    assert (seen[data[3] == 255] == 1).all()
    assert read_scene_split(str(tmp_path / "out")).windows == split.windows


def test_rerun_redoes_only_what_is_missing(tmp_path):
    scene = _scene(tmp_path, rgba(40, 40, notch=False))
    out = tmp_path / "out"
    first = split_scene(scene, str(out), split_size=20)
    os.remove(out / "manifest.json")
    os.remove(first.windows[1].uri)
    kept = os.stat(first.windows[0].uri).st_mtime_ns
    second = split_scene(scene, str(out), split_size=20)
    assert second.windows == first.windows
    assert os.stat(first.windows[0].uri).st_mtime_ns == kept
    assert os.path.exists(first.windows[1].uri)
    assert not [p for p in os.listdir(out) if p.startswith(".tmp")]


def test_reads_are_bounded_by_the_block_size(tmp_path, monkeypatch):
    scene = _scene(tmp_path, rgba(64, 64, notch=False))
    sizes = []
    real_read = rasterio.io.DatasetReader.read

    def spy(self, *args, window=None, **kwargs):
        sizes.append(
            (window.height, window.width) if window is not None else (self.height, self.width)
        )
        return real_read(self, *args, window=window, **kwargs)

    monkeypatch.setattr(rasterio.io.DatasetReader, "read", spy)
    split_scene(scene, str(tmp_path / "out"), split_size=64, block_size=16)
    assert sizes and max(h * w for h, w in sizes) <= 16 * 16


def test_missing_manifest_says_run_preprocess(tmp_path):
    with pytest.raises(InputError, match="run PREPROCESS first"):
        read_scene_split(str(tmp_path))


def test_real_kampala_scene_keeps_every_valid_pixel(tmp_path):
    scenes = read_training_scenes("data/kampala_sample/train_tier_1/catalog.json")
    split = split_scene(scenes["kam/94f080"], str(tmp_path / "out"), split_size=1024)
    valid = 0
    for w in split.windows:
        with rasterio.open(w.uri) as src:
            valid += int((src.read(4) == 255).sum())
    assert valid == 3_219_028  # shared/data README
