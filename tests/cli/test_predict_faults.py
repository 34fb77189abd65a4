"""``benchmark-predict`` on a read-only folder, a full disk and a chip that vanishes mid-run."""

import tarfile
from pathlib import Path

import pytest

import benchmark.cli.predict as predict_cli
from tests.fixtures.faults import (
    HOWS,
    FaultyFolder,
    best_way,
    error_line,
    leftovers,
    lose_after_listing,
    snapshot,
)
from tests.fixtures.models import bundle_loader
from tests.fixtures.rasters import rgba, write_raster

pytestmark = [
    pytest.mark.faults,
    pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning"),
]
CHIPS = ("a1", "b2", "c3")


def predict(img_dir: Path, out: Path, *more: str) -> int:
    args = [str(img_dir), str(out), "--chip-size", "64", "--num-workers", "0", "--no-fast", *more]
    return predict_cli.main(["b.zip", *args], load_bundle=bundle_loader())


@pytest.fixture
def img_dir(tmp_path: Path) -> Path:
    for i, chip_id in enumerate(CHIPS):
        write_raster(tmp_path / "img" / chip_id / f"{chip_id}.tif", rgba(64, 64, seed=i), crs=None)
    return tmp_path / "img"


@pytest.mark.parametrize("how", [best_way()])
def test_read_only_output_folder(tmp_path, img_dir, capsys, how):
    with FaultyFolder(tmp_path / "out", how) as out:
        with out.read_only():
            assert predict(img_dir, out.path) == 2
        line = error_line(capsys.readouterr().err)
        assert line == f"error: {out.path}/a1.tif: not written: Read-only file system"
        assert snapshot(out.path) == {} and leftovers(out.path) == []
        assert predict(img_dir, out.path) == 0  # writable again
        assert sorted(snapshot(out.path)) == ["a1.tif", "b2.tif", "c3.tif"]


@pytest.mark.parametrize("how", HOWS)
def test_full_disk_keeps_the_masks_written_and_resumes(tmp_path, img_dir, capsys, caplog, how):
    with FaultyFolder(tmp_path / "out", how) as out:
        assert predict(img_dir, out.path) == 0
        (out.path / "c3.tif").unlink()  # as if the disk had filled up before c3
        before = snapshot(out.path)
        with out.full():
            assert predict(img_dir, out.path) == 2
            assert error_line(capsys.readouterr().err) == (
                f"error: {out.path}/c3.tif: not written: No space left on device"
            )
            assert snapshot(out.path) == before  # nothing lost, nothing half-written
        assert leftovers(out.path) == []
        caplog.clear()
        assert predict(img_dir, out.path) == 0
        assert "2 chip(s) already predicted" in caplog.text  # only c3 was redone
        tgz = out.path / "submission.tgz"
        with out.full():  # every mask there: packing is what fills the disk
            assert predict(img_dir, out.path, "--pack", str(tgz)) == 2
            assert error_line(capsys.readouterr().err) == (
                f"error: {tgz}: not written: No space left on device"
            )
        assert not tgz.exists() and leftovers(out.path) == []
        assert predict(img_dir, out.path, "--pack", str(tgz)) == 0
        with tarfile.open(tgz) as tar:
            assert tar.getnames() == ["a1.tif", "b2.tif", "c3.tif"]


def test_a_chip_that_vanishes_after_listing(tmp_path, img_dir, capsys, caplog, monkeypatch):
    """The other chips are predicted; the gone one is named, exit 1; a re-run does only it."""
    gone, aside = img_dir / "b2" / "b2.tif", tmp_path / "b2.tif"
    lose_after_listing(monkeypatch, predict_cli, "list_test_chips", gone, aside)
    out = tmp_path / "out"
    assert predict(img_dir, out) == 1
    line = error_line(capsys.readouterr().err)
    assert line.startswith("error: 1 chip(s) not predicted: b2: ") and str(gone) in line
    assert "No such file or directory" in line
    assert sorted(snapshot(out)) == ["a1.tif", "c3.tif"] and leftovers(out) == []
    monkeypatch.undo()
    aside.rename(gone)
    caplog.clear()
    assert predict(img_dir, out) == 0
    assert "2 chip(s) already predicted" in caplog.text
    assert sorted(snapshot(out)) == ["a1.tif", "b2.tif", "c3.tif"]
