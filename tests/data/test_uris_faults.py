"""Outputs on a read-only folder or a full disk: one error naming the output, nothing published."""

import errno
import os
from collections.abc import Iterator

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from benchmark.data.submission import write_mask
from benchmark.data.uris import check_geotiff_complete, write_json
from benchmark.errors import OutputError, one_line_error
from tests.fixtures.faults import HOWS, FaultyFolder, leftovers, snapshot

pytestmark = [
    pytest.mark.faults,
    pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning"),
]
MASK = np.ones((64, 64), np.uint8)


@pytest.fixture(params=HOWS)
def out(request, tmp_path) -> Iterator[FaultyFolder]:
    """An output folder to fault, each way, holding one output (``old.tif``)."""
    with FaultyFolder(tmp_path / "out", request.param) as folder:
        write_mask(MASK, str(folder.path / "old.tif"))
        yield folder


def test_a_read_only_folder_names_the_output_and_keeps_what_is_there(out):
    before = snapshot(out.path)
    with out.read_only():
        for write in (
            lambda: write_mask(MASK, str(out.path / "old.tif")),
            lambda: write_json({}, str(out.path / "new.json")),
        ):
            with pytest.raises(OutputError) as caught:
                write()
            assert caught.value.errno == errno.EROFS
    assert one_line_error(caught.value) == (
        f"{out.path}/new.json: not written: Read-only file system"
    )
    assert snapshot(out.path) == before and leftovers(out.path) == []
    write_json({}, str(out.path / "new.json"))  # writable again: it works


def test_gdal_on_a_full_disk_publishes_nothing(out):
    """GDAL leaves an empty or truncated file without raising; it is caught before publishing."""
    before = snapshot(out.path)
    with out.full():
        big = np.random.default_rng(0).integers(0, 2, (512, 512), dtype=np.uint8)
        for name in ("old.tif", "new.tif"):  # over an existing output, and a new one
            with pytest.raises(OutputError) as caught:
                write_mask(big, str(out.path / name))
            assert one_line_error(caught.value) == (
                f"{out.path}/{name}: not written: No space left on device"
            )
        assert snapshot(out.path) == before
    assert leftovers(out.path) == []
    write_mask(big, str(out.path / "new.tif"))
    with rasterio.open(out.path / "new.tif") as src:
        assert np.array_equal(src.read(1), big)


def test_python_writes_on_a_full_disk_name_the_output(out):
    with out.full(), pytest.raises(OutputError) as caught:
        write_json({"big": "x" * 100_000}, str(out.path / "report.json"))
    assert caught.value.errno == errno.ENOSPC
    assert caught.value.filename == f"{out.path}/report.json"
    assert os.listdir(out.path) == ["old.tif"]


class TestIncompleteGeotiff:
    """What GDAL leaves on a failed write is told apart from a whole file, without reading it."""

    def write(self, path, sparse: bool = False) -> str:
        """A tiled GeoTIFF; ``sparse``: only its first block written, as after a failed write."""
        with rasterio.open(
            path, "w", driver="GTiff", width=200, height=100, count=1, dtype="uint8",
            tiled=True, blockxsize=64, blockysize=64, SPARSE_OK=sparse,
        ) as dst:  # fmt: skip
            if sparse:
                dst.write(np.ones((1, 64, 64), np.uint8), window=Window(0, 0, 64, 64))
            else:
                dst.write(np.arange(200 * 100, dtype=np.uint8).reshape(1, 100, 200))
        return str(path)

    def test_a_whole_file_passes(self, tmp_path):
        check_geotiff_complete(self.write(tmp_path / "ok.tif"), "s3://b/ok.tif")

    @pytest.mark.parametrize("damage", ["truncated", "empty", "missing_blocks"])
    def test_damage_is_an_output_error(self, tmp_path, damage):
        path = self.write(tmp_path / "x.tif", sparse=damage == "missing_blocks")
        if damage != "missing_blocks":
            os.truncate(path, os.path.getsize(path) // 2 if damage == "truncated" else 0)
        with pytest.raises(OutputError) as caught:
            check_geotiff_complete(path, "s3://b/x.tif")
        assert caught.value.errno == errno.EIO  # this disk is not full
        line = one_line_error(caught.value)
        assert line.startswith("s3://b/x.tif: not written: the GeoTIFF came out incomplete (")
        assert path not in line
