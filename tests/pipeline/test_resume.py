"""Killing a real PREPROCESS run mid-way never leaves a window a re-run would trust."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import rasterio

from benchmark.data.scene_windows import read_scene_windows
from tests.fixtures.opencities import cli_args, make_opencities_catalog

pytestmark = pytest.mark.slow


def _preprocess(catalog, root, tmp_path) -> subprocess.Popen:
    cmd = [
        sys.executable, "-m", "rastervision.pipeline.cli", "--tmpdir", str(tmp_path / "rv"),
        "run", "inprocess", "benchmark.experiments.split_images", "PREPROCESS",
        *cli_args(catalog.scene_args(str(root))), "-a", "split_size", "64",
    ]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_sigkill_then_rerun_completes_from_where_it_stopped(tmp_path):
    catalog = make_opencities_catalog(tmp_path / "data", scene_size=(1500, 1400), test_chip_size=8)
    root = tmp_path / "out"
    first_dir = root / "split_images" / catalog.train_keys[0]
    proc = _preprocess(catalog, root, tmp_path)
    deadline = time.time() + 120
    while not list(first_dir.glob("*_3.tif")):  # a few windows are done: kill it mid-scene
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        assert time.time() < deadline, "PREPROCESS wrote no window in 2 minutes"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (first_dir / "manifest.json").exists()
    done_before = {p.name: p.stat().st_mtime_ns for p in first_dir.glob("*_*.tif")}

    rerun = _preprocess(catalog, root, tmp_path)
    output = rerun.communicate(timeout=300)[0]
    assert rerun.returncode == 0, output[-3000:]
    assert "(earlier run), kept" in output  # it says what it reused

    for key in (catalog.train_keys[0], catalog.valid_keys[0]):
        split = read_scene_windows(str(root / "split_images" / key))
        with rasterio.open(split.image_uri) as src:
            for w in split.windows:
                window = rasterio.windows.Window(w.col_off, w.row_off, w.width, w.height)
                with rasterio.open(w.uri) as out:
                    assert np.array_equal(out.read(), src.read(window=window)), w.uri
    # The killed run's partial window was removed by the re-run, not left to a glob or a sync.
    assert [p for p in (root / "split_images").rglob("*.partial") if p.is_file()] == []
    for name, mtime in done_before.items():  # complete windows were kept, not redone
        assert (first_dir / name).stat().st_mtime_ns == mtime
