import json
import os

import boto3
import numpy as np
import pytest
import rasterio
from rasterio.enums import ColorInterp, Resampling
from rasterio.windows import Window

from benchmark.data.imagery import read_valid_mask
from benchmark.data.scene_windows import cut_scene_into_windows, read_scene_windows
from benchmark.data.stac import SceneRef, read_training_scenes
from benchmark.data.windows import plan_windows
from benchmark.errors import InputError
from tests.fixtures.rasters import rgba, write_scene

LABELS = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {"building": "yes"},
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[32.6, 0.35], [32.6001, 0.35], [32.6001, 0.3501], [32.6, 0.35]]],
            },
        }
    ],
}


def _scene(tmp_path, data, **raster) -> SceneRef:
    image = write_scene(tmp_path / "src" / "s1.tif", data, **raster)
    labels = tmp_path / "src" / "s1.geojson"
    labels.write_text(json.dumps(LABELS))
    return SceneRef("kam", "s1", image, str(labels))


def _window(w) -> Window:
    return Window(w.col_off, w.row_off, w.width, w.height)


def _check_windows_match_source(split, image_uri) -> np.ndarray:
    """Every window file is its window of the source; returns how often each pixel was written."""
    with rasterio.open(image_uri) as src:
        seen = np.zeros((src.height, src.width), dtype=int)
        for w in split.windows:
            with rasterio.open(w.uri) as dst:
                window = _window(w)
                np.testing.assert_array_equal(dst.read(), src.read(window=window))
                np.testing.assert_array_equal(read_valid_mask(dst), read_valid_mask(src, window))
                assert dst.transform == src.window_transform(window)
                assert (dst.crs, dst.nodata, dst.colorinterp) == (
                    src.crs, src.nodata, src.colorinterp,
                )  # fmt: skip
                assert w.valid_pixels == read_valid_mask(dst).sum()
            seen[w.row_off : w.row_off + w.height, w.col_off : w.col_off + w.width] += 1
    return seen


def _outputs(out_dir) -> list[str]:
    return sorted(os.listdir(out_dir))


class TestSplitScene:
    def test_rgba_is_pixel_exact_and_skips_empty_windows(self, tmp_path):
        data = rgba(40, 50)  # the top-left 20x25 is alpha 0: its 20 px window is empty
        data[3, 30:, 45:] = 0  # a no-data corner in a window that has imagery
        scene = _scene(tmp_path, data)
        out = tmp_path / "out"
        split = cut_scene_into_windows(scene, str(out), split_size=20, block_size=8)
        planned = plan_windows(50, 40, 20)
        assert len(split.windows) == len(planned) - 1
        assert [(w.col_off, w.row_off) for w in split.windows] == [
            (w.col_off, w.row_off) for w in planned[1:]
        ]
        assert _outputs(out) == ["manifest.json", "s1.geojson"] + [
            f"s1_{i}.tif" for i in range(len(planned) - 1)
        ]
        seen = _check_windows_match_source(split, scene.image_uri)
        valid = data[3] == 255
        assert (seen[valid] == 1).all() and seen.max() == 1
        assert split.valid_pixels == valid.sum()
        assert read_scene_windows(str(out)) == split

    def test_window_files_are_tiled_compressed_geotiffs(self, tmp_path):
        split = cut_scene_into_windows(
            _scene(tmp_path, rgba(40, 40, notch=False)), str(tmp_path / "o"), 40
        )
        with rasterio.open(split.windows[0].uri) as dst:
            assert dst.block_shapes[0] == (512, 512) and dst.compression.name == "deflate"
            assert dst.tags(ns="IMAGE_STRUCTURE")["PREDICTOR"] == "2"
            assert dst.colorinterp[3] == ColorInterp.alpha

    def test_rgb_with_nodata(self, tmp_path):
        data = rgba(30, 30, seed=1)[:3]  # top-left 15x15 is 0 in every band
        data[0, 20, 20] = 0  # one band at nodata is still imagery
        scene = _scene(tmp_path, data, nodata=0)
        split = cut_scene_into_windows(scene, str(tmp_path / "out"), split_size=15, block_size=4)
        assert [(w.col_off, w.row_off) for w in split.windows] == [(15, 0), (0, 15), (15, 15)]
        seen = _check_windows_match_source(split, scene.image_uri)
        assert split.valid_pixels == 30 * 30 - 15 * 15 == seen.sum()

    def test_rgb_without_mask_keeps_every_window(self, tmp_path):
        data = rgba(30, 30, seed=2)[:3]  # zeros are pixels like any other here
        scene = _scene(tmp_path, data)
        split = cut_scene_into_windows(scene, str(tmp_path / "out"), split_size=15, block_size=4)
        assert len(split.windows) == 4 and split.valid_pixels == 900
        assert (_check_windows_match_source(split, scene.image_uri) == 1).all()

    def test_rgb_with_internal_mask_keeps_the_mask(self, tmp_path):
        mask = np.random.default_rng(3).random((30, 30)) > 0.2
        mask[:15, :15] = False
        scene = _scene(tmp_path, rgba(30, 30, seed=3, notch=False)[:3], mask=mask)
        split = cut_scene_into_windows(scene, str(tmp_path / "out"), split_size=15, block_size=4)
        assert len(split.windows) == 3 and split.valid_pixels == mask.sum()
        _check_windows_match_source(split, scene.image_uri)

    @pytest.mark.parametrize(
        ("data", "problem"),
        [
            (np.ones((4, 8, 8), np.float32), "pixel type float32"),
            (np.ones((2, 8, 8), np.uint8), r"2 band\(s\)"),
        ],
    )
    def test_bad_imagery_is_an_input_error_and_writes_nothing(self, tmp_path, data, problem):
        scene = _scene(tmp_path, data)
        with pytest.raises(InputError, match=rf"s1\.tif: {problem}"):
            cut_scene_into_windows(scene, str(tmp_path / "out"))
        assert not (tmp_path / "out").exists()

    def test_missing_image_names_the_file(self, tmp_path):
        scene = _scene(tmp_path, rgba(8, 8))
        scene = SceneRef("kam", "s1", str(tmp_path / "gone.tif"), scene.label_uri)
        with pytest.raises(InputError, match=r"gone\.tif: cannot read as a raster"):
            cut_scene_into_windows(scene, str(tmp_path / "out"))


class TestResume:
    def test_rerun_redoes_only_what_is_missing(self, tmp_path):
        scene = _scene(tmp_path, rgba(40, 40, notch=False))
        out = tmp_path / "out"
        first = cut_scene_into_windows(scene, str(out), split_size=20)
        os.remove(out / "manifest.json")
        os.remove(first.windows[1].uri)
        kept = {w.uri: os.stat(w.uri).st_mtime_ns for w in first.windows if os.path.exists(w.uri)}
        second = cut_scene_into_windows(scene, str(out), split_size=20)
        assert second == first
        assert {uri: os.stat(uri).st_mtime_ns for uri in kept} == kept
        assert os.path.exists(first.windows[1].uri)
        _check_windows_match_source(second, scene.image_uri)
        assert not [p for p in os.listdir(out) if p.startswith(".tmp")]

    def test_a_finished_scene_is_skipped(self, tmp_path, caplog):
        scene = _scene(tmp_path, rgba(20, 20))
        out = tmp_path / "out"
        first = cut_scene_into_windows(scene, str(out), split_size=10)
        os.remove(first.windows[0].uri)
        with caplog.at_level("INFO", logger="benchmark.data.scene_windows"):
            assert cut_scene_into_windows(scene, str(out), split_size=10) == first
        assert "already split" in caplog.text
        assert not os.path.exists(first.windows[0].uri)

    def test_windows_of_another_split_size_are_rewritten(self, tmp_path):
        scene = _scene(tmp_path, rgba(40, 40))
        out = tmp_path / "out"
        cut_scene_into_windows(scene, str(out), split_size=16)
        os.remove(out / "manifest.json")
        split = cut_scene_into_windows(scene, str(out), split_size=20)
        assert [(w.width, w.height) for w in split.windows] == [(20, 20)] * 3
        _check_windows_match_source(split, scene.image_uri)

    def test_a_run_killed_mid_window_leaves_no_complete_looking_file(self, tmp_path, monkeypatch):
        scene = _scene(tmp_path, rgba(40, 40, notch=False))
        out = tmp_path / "out"
        real_write = rasterio.io.DatasetWriter.write
        calls = []

        def dying_write(self, *args, **kwargs):
            calls.append(1)
            if len(calls) == 6:  # in the middle of the second window (4 blocks each)
                raise KeyboardInterrupt
            return real_write(self, *args, **kwargs)

        monkeypatch.setattr(rasterio.io.DatasetWriter, "write", dying_write)
        with pytest.raises(KeyboardInterrupt):
            cut_scene_into_windows(scene, str(out), split_size=20, block_size=10)
        assert _outputs(out) == ["s1.geojson", "s1_0.tif"]
        monkeypatch.undo()
        split = cut_scene_into_windows(scene, str(out), split_size=20, block_size=10)
        assert len(split.windows) == 4
        _check_windows_match_source(split, scene.image_uri)


class TestSplitAtGsd:
    @pytest.mark.parametrize("gsd", [0.1, 0.05])  # 7.5 cm shrunk and enlarged
    def test_windows_are_resampled_in_place(self, tmp_path, gsd):
        data = rgba(40, 60)  # the top-left 20x30 is alpha 0
        data[3, 30:, 50:] = 0
        scene = _scene(tmp_path, data)
        out = tmp_path / "out"
        split = cut_scene_into_windows(scene, str(out), split_size=24, block_size=8, gsd=gsd)
        native = cut_scene_into_windows(scene, str(tmp_path / "native"), split_size=24)
        assert [_window(w) for w in split.windows] == [_window(w) for w in native.windows]
        assert split.gsd == gsd and read_scene_windows(str(out), gsd) == split
        with rasterio.open(scene.image_uri) as src:
            for w in split.windows:
                window = _window(w)
                shape = (round(w.height * 0.075 / gsd), round(w.width * 0.075 / gsd))
                with rasterio.open(w.uri) as dst:
                    assert dst.shape == shape and dst.res == pytest.approx((gsd, gsd))
                    assert tuple(dst.bounds) == pytest.approx(src.window_bounds(window))
                    assert (dst.crs, dst.colorinterp) == (src.crs, src.colorinterp)
                    bilinear = src.read(
                        [1, 2, 3],
                        window=window,
                        out_shape=(3, *shape),
                        resampling=Resampling.bilinear,
                    )
                    alpha = src.read(4, window=window, out_shape=shape)  # nearest
                    np.testing.assert_array_equal(dst.read([1, 2, 3]), bilinear)  # block by block
                    np.testing.assert_array_equal(dst.read(4), alpha)
                assert w.valid_pixels == (alpha == 255).sum() > 0

    def test_internal_mask_is_resampled_too(self, tmp_path):
        mask = np.random.default_rng(3).random((30, 30)) > 0.2
        mask[:15, :15] = False
        scene = _scene(tmp_path, rgba(30, 30, seed=3, notch=False)[:3], mask=mask)
        split = cut_scene_into_windows(
            scene, str(tmp_path / "out"), split_size=15, block_size=4, gsd=0.1
        )
        assert len(split.windows) == 3
        with rasterio.open(scene.image_uri) as src:
            for w in split.windows:
                expected = src.read_masks(1, window=_window(w), out_shape=(11, 11))
                with rasterio.open(w.uri) as dst:
                    np.testing.assert_array_equal(dst.read_masks(1), expected)
                assert w.valid_pixels == (expected == 255).sum()

    def test_a_split_at_another_gsd_is_refused_not_reused(self, tmp_path):
        scene = _scene(tmp_path, rgba(40, 40))
        out = tmp_path / "out"
        cut_scene_into_windows(scene, str(out), split_size=20)
        mtimes = {p: os.stat(out / p).st_mtime_ns for p in _outputs(out)}
        asked = r"manifest\.json: windows at its own resolution, not at 0\.1 m GSD as asked"
        with pytest.raises(InputError, match=asked):
            cut_scene_into_windows(scene, str(out), split_size=20, gsd=0.1)
        assert {p: os.stat(out / p).st_mtime_ns for p in _outputs(out)} == mtimes
        cut_scene_into_windows(scene, str(tmp_path / "g"), split_size=20, gsd=0.1)
        with pytest.raises(InputError, match=r"windows at 0\.1 m GSD, not at its own resolution"):
            read_scene_windows(str(tmp_path / "g"))

    def test_windows_left_at_another_gsd_are_rewritten(self, tmp_path, caplog):
        scene = _scene(tmp_path, rgba(40, 40, notch=False))
        out = tmp_path / "out"
        cut_scene_into_windows(scene, str(out), split_size=20, gsd=0.1)
        os.remove(out / "manifest.json")  # killed before the end
        with caplog.at_level("WARNING", logger="benchmark.data.scene_windows"):
            split = cut_scene_into_windows(scene, str(out), split_size=20, gsd=0.05)
        assert "s1_3.tif holds another window" in caplog.text
        for w in split.windows:
            with rasterio.open(w.uri) as dst:
                assert dst.shape == (30, 30)


@pytest.mark.parametrize("gsd", [None, 0.3, 0.05])
def test_reads_and_writes_are_bounded_by_the_block_size(tmp_path, monkeypatch, gsd):
    scene = _scene(tmp_path, rgba(64, 64))
    sizes = []

    def spy(cls, name):
        real = getattr(cls, name)

        def recorded(self, *args, window=None, **kwargs):
            assert window is not None, f"{name} of a whole {self.width}x{self.height} raster"
            sizes.append((name, int(window.height), int(window.width)))
            return real(self, *args, window=window, **kwargs)

        monkeypatch.setattr(cls, name, recorded)

    spy(rasterio.io.DatasetReader, "read")
    spy(rasterio.io.DatasetReader, "read_masks")
    spy(rasterio.io.DatasetWriter, "write")
    out = tmp_path / "out"
    cut_scene_into_windows(scene, str(out), split_size=64, block_size=16, gsd=gsd)
    os.remove(out / "manifest.json")  # the re-run reads back the existing window too
    cut_scene_into_windows(scene, str(out), split_size=64, block_size=16, gsd=gsd)
    assert {name for name, *_ in sizes} == {"read", "write"}
    assert max(h * w for _, h, w in sizes) <= 16 * 16


class TestReadSceneSplit:
    def test_missing_manifest_says_run_preprocess(self, tmp_path):
        with pytest.raises(InputError, match=r"manifest\.json missing: run PREPROCESS first"):
            read_scene_windows(str(tmp_path))

    def test_malformed_manifest(self, tmp_path):
        (tmp_path / "manifest.json").write_text('{"scene": "kam/s1"}')
        with pytest.raises(InputError, match=r"manifest\.json: not a PREPROCESS manifest"):
            read_scene_windows(str(tmp_path))


def test_real_kampala_scene_keeps_every_valid_pixel(tmp_path):
    scenes = read_training_scenes("data/kampala_sample/train_tier_1/catalog.json")
    split = cut_scene_into_windows(scenes["kam/94f080"], str(tmp_path / "out"), split_size=1024)
    assert [(w.width, w.height) for w in split.windows] == [
        (1024, 1024), (759, 1024), (1024, 1000), (759, 1000),
    ]  # fmt: skip
    valid = 0
    for w in split.windows:
        with rasterio.open(w.uri) as src:
            valid += int((src.read(4) == 255).sum())
    assert valid == split.valid_pixels == 3_219_028  # shared/data README
    assert split.crs == "EPSG:32636"
    assert len(json.loads(open(split.label_uri).read())["features"]) == 58


@pytest.fixture
def moto_s3(monkeypatch):
    """A local moto S3 server that boto3 and GDAL's /vsis3/ both talk to; yields a bucket."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_S3_ENDPOINT": f"{host}:{port}",
        "AWS_HTTPS": "NO",
        "AWS_VIRTUAL_HOSTING": "FALSE",
    }.items():
        monkeypatch.setenv(key, value)
    boto3.client("s3").create_bucket(Bucket="bench")
    yield "bench"
    server.stop()


@pytest.mark.aws
def test_s3_scene_and_output(tmp_path, moto_s3):
    local = _scene(tmp_path, rgba(40, 40))
    s3 = boto3.client("s3")
    for path in (local.image_uri, local.label_uri):
        s3.upload_file(path, moto_s3, f"in/{os.path.basename(path)}")
    scene = SceneRef("kam", "s1", f"s3://{moto_s3}/in/s1.tif", f"s3://{moto_s3}/in/s1.geojson")
    out = f"s3://{moto_s3}/split/kam/s1/"
    first = cut_scene_into_windows(scene, out, split_size=20, block_size=10)
    assert first.windows[0].uri == f"s3://{moto_s3}/split/kam/s1/s1_0.tif"
    s3.delete_object(Bucket=moto_s3, Key="split/kam/s1/manifest.json")
    s3.delete_object(Bucket=moto_s3, Key="split/kam/s1/s1_1.tif")
    assert cut_scene_into_windows(scene, out, split_size=20, block_size=10) == first
    assert read_scene_windows(out) == first
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=moto_s3, Prefix="split/")["Contents"]}
    assert keys == {f"split/kam/s1/{n}" for n in ["manifest.json", "s1.geojson"]} | {
        f"split/kam/s1/s1_{i}.tif" for i in range(3)
    }
    _check_windows_match_source(first, local.image_uri)  # rasterio reads the s3:// windows
