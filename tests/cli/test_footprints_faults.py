"""``benchmark-footprints`` on a read-only folder, a full disk and an image that vanishes."""

import re
from pathlib import Path

import pytest

import benchmark.cli.footprints as footprints_cli
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

pytestmark = pytest.mark.faults
IMAGES = ("east", "west")
OUTPUTS = ("_buildings.geojson", "_buildings.gpkg", "_prob.tif")


def outline(images: Path, out: Path) -> int:
    args = ["b.zip", str(images), str(out), "--no-fast", "--device", "cpu"]
    return footprints_cli.main(args, load_bundle=bundle_loader(window=64))


def outputs(*names: str) -> list[str]:
    return sorted(f"{name}{suffix}" for name in names for suffix in OUTPUTS)


@pytest.fixture
def images(tmp_path: Path) -> Path:
    for i, name in enumerate(IMAGES):
        write_raster(tmp_path / "in" / f"{name}.tif", rgba(96, 128, seed=i, notch=False))
    return tmp_path / "in"


@pytest.mark.parametrize("how", [best_way()])
def test_read_only_output_folder(tmp_path, images, capsys, how):
    with FaultyFolder(tmp_path / "out", how) as out:
        with out.read_only():
            assert outline(images, out.path) == 2  # stops: the next image would meet it too
        assert error_line(capsys.readouterr().err) == (
            f"error: {out.path}/east_buildings.gpkg: not written: Read-only file system"
        )
        assert snapshot(out.path) == {} and leftovers(out.path) == []
        assert outline(images, out.path) == 0
        assert sorted(snapshot(out.path)) == outputs(*IMAGES)


@pytest.mark.parametrize("how", HOWS)
def test_full_disk_keeps_finished_images_and_resumes(tmp_path, images, capsys, caplog, how):
    with FaultyFolder(tmp_path / "out", how) as out:
        assert outline(images, out.path) == 0
        for name in outputs("west"):
            (out.path / name).unlink()
        before = snapshot(out.path)
        with out.full():
            assert outline(images, out.path) == 2
            line = error_line(capsys.readouterr().err)
            assert re.fullmatch(
                rf"error: {out.path}/west_\w+\.\w+: not written: No space left on device", line
            )
            assert snapshot(out.path) == before
        assert leftovers(out.path) == []
        caplog.clear()
        assert outline(images, out.path) == 0
        assert "1 image(s) already outlined" in caplog.text
        assert sorted(snapshot(out.path)) == outputs(*IMAGES)


def test_an_image_that_vanishes_after_listing(tmp_path, images, capsys, caplog, monkeypatch):
    """The other image is outlined; the gone one is named, exit 1; a re-run does only it."""
    gone, aside = images / "west.tif", tmp_path / "west.tif"
    lose_after_listing(monkeypatch, footprints_cli, "list_images", gone, aside)
    out = tmp_path / "out"
    assert outline(images, out) == 1
    line = error_line(capsys.readouterr().err)
    assert line.startswith(f"error: 1 image(s) not outlined: {gone}: ")
    assert "No such file or directory" in line
    assert sorted(snapshot(out)) == outputs("east") and leftovers(out) == []
    monkeypatch.undo()
    aside.rename(gone)
    caplog.clear()
    assert outline(images, out) == 0
    assert "1 image(s) already outlined" in caplog.text
    assert sorted(snapshot(out)) == outputs(*IMAGES)
