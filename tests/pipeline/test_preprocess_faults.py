"""PREPROCESS on a read-only folder, a full disk and a scene that vanishes after the config.

Each works on a copy of the session's finished run (its catalog and configs): the fault run
must end with one error line naming the file, keep every complete window, and a re-run once
the fault is gone must end with the windows a clean run wrote.
"""

from pathlib import Path

import pytest

from benchmark.errors import InputError, OutputError, one_line_error
from tests.fixtures.faults import HOWS, FaultyFolder, best_way, error_line, leftovers, snapshot
from tests.fixtures.runs import build_pipeline, copy_run, differences, run_command

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def preprocess(root: Path, tmp_path: Path) -> None:
    build_pipeline(root, preprocess=True, tmp_path=tmp_path).PREPROCESS()


def test_read_only_windows_folder(finished_run, tmp_path):
    with FaultyFolder(tmp_path / "out" / "split_images", best_way()) as out:
        root = copy_run(finished_run, tmp_path)
        with out.read_only():
            prefix = out.injection("read-only") if out.how == "inject" else None
            done = run_command(root, "PREPROCESS", tmp_path, prefix=prefix)
        assert done.returncode == 2, done.stderr[-3000:]
        assert error_line(done.stderr) == (
            f"error: {out.path}/kam/aaa111/aaa111.geojson: not written: Read-only file system"
        )
        assert snapshot(out.path) == {} and leftovers(out.path) == []
        preprocess(root, tmp_path)
        assert differences(root, finished_run, "split_images") == []


@pytest.mark.parametrize("how", HOWS)
def test_full_disk_keeps_the_windows_written(finished_run, tmp_path, how, caplog):
    with FaultyFolder(tmp_path / "out" / "split_images", how) as out:
        root = copy_run(finished_run, tmp_path, "split_images")
        scene = out.path / "kam" / "bbb222"
        for name in ("manifest.json", "bbb222_2.tif", "bbb222_3.tif"):  # cut short by a kill
            (scene / name).unlink()
        before = snapshot(out.path)
        with out.full(), pytest.raises(OutputError) as caught:
            preprocess(root, tmp_path)
        assert one_line_error(caught.value).startswith(f"{scene}/bbb222")
        assert one_line_error(caught.value).endswith(": not written: No space left on device")
        assert snapshot(out.path) == before and leftovers(out.path) == []
        caplog.clear()
        preprocess(root, tmp_path)
        assert f"{scene}/bbb222_1.tif exists (earlier run), kept" in caplog.text
        assert differences(root, finished_run, "split_images") == []


def test_a_scene_that_vanishes_after_the_config_was_made(finished_run, tmp_path):
    root = copy_run(finished_run, tmp_path)
    image = tmp_path / "data" / "train_tier_1" / "kam" / "bbb222" / "bbb222.tif"
    aside = tmp_path / "bbb222.tif"
    image.rename(aside)
    with pytest.raises(InputError) as caught:
        preprocess(root, tmp_path)
    line = one_line_error(caught.value)
    assert line.startswith(f"{image}: cannot read as a raster (") and "No such file" in line
    scene = root / "split_images" / "kam" / "aaa111"
    assert (scene / "manifest.json").exists()  # the scene before it is complete and kept
    aside.rename(image)
    preprocess(root, tmp_path)
    assert differences(root, finished_run, "split_images") == []
