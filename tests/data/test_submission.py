"""Submission format: writing masks, every kind of malformed set, packing."""

import tarfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.enums import Compression
from rasterio.io import MemoryFile

from benchmark.data.submission import (
    pack_submission,
    validate_submission,
    write_mask,
    write_probabilities,
)
from benchmark.errors import InputError
from tests.fixtures.rasters import write_raster

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")

SIZE = 32
IDS = ["a1", "b2", "c3"]


def mask(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2, (SIZE, SIZE), dtype=np.uint8)


def probabilities() -> np.ndarray:
    return (np.arange(SIZE * SIZE) % 256).astype(np.uint8).reshape(SIZE, SIZE)


@pytest.fixture
def good_dir(tmp_path: Path) -> Path:
    out = tmp_path / "sub"
    for i, chip_id in enumerate(IDS):
        write_mask(mask(i), str(out / f"{chip_id}.tif"))
    return out


@pytest.mark.parametrize(
    ("write", "raster", "compression"),
    [
        (write_mask, mask(), Compression.packbits),
        (write_probabilities, probabilities(), Compression.deflate),
    ],
)
def test_write_format(tmp_path, write, raster, compression):
    path = tmp_path / "x" / "m.tif"
    write(raster, str(path))
    with rasterio.open(path) as src:
        assert (src.count, src.dtypes[0], src.shape) == (1, "uint8", (SIZE, SIZE))
        assert src.crs is None
        assert src.compression == compression
        np.testing.assert_array_equal(src.read(1), raster)
    assert [p.name for p in path.parent.iterdir()] == ["m.tif"]  # no temporary left


def test_write_mask_refuses_a_stack(tmp_path):
    with pytest.raises(ValueError, match=r"expected a \(H, W\) raster"):
        write_mask(np.zeros((2, SIZE, SIZE), np.uint8), str(tmp_path / "m.tif"))


class TestValidateSubmission:
    def test_a_good_set_has_no_problems(self, good_dir):
        assert validate_submission(str(good_dir), IDS, size=SIZE) == []

    def test_missing_and_extra_files(self, good_dir):
        (good_dir / "b2.tif").unlink()
        write_mask(mask(), str(good_dir / "zz.tif"))
        (good_dir / "notes.txt").write_text("hi")
        assert validate_submission(str(good_dir), IDS, size=SIZE) == [
            "b2.tif: missing",
            "notes.txt: not a test chip's mask (extra file)",
            "zz.tif: not a test chip's mask (extra file)",
        ]

    def test_a_missing_directory_misses_everything(self, tmp_path):
        problems = validate_submission(str(tmp_path / "nope"), IDS, size=SIZE)
        assert problems == [f"{i}.tif: missing" for i in IDS]

    @pytest.mark.parametrize(
        ("write", "problem"),
        [
            (lambda p: p.write_bytes(b"not a tiff"), "a1.tif: unreadable"),
            (
                lambda p: write_raster(p, np.zeros((2, SIZE, SIZE), np.uint8), crs=None),
                "a1.tif: 2 bands, expected 1",
            ),
            (
                lambda p: write_raster(p, np.zeros((1, SIZE, SIZE), np.float32), crs=None),
                "a1.tif: pixel type float32, expected uint8",
            ),
            (
                lambda p: write_mask(np.zeros((SIZE, SIZE + 1), np.uint8), str(p)),
                "a1.tif: 33x32 px, expected 32x32",
            ),
            (
                lambda p: write_mask(np.full((SIZE, SIZE), 255, np.uint8), str(p)),
                "a1.tif: values [255] outside {0, 1}",
            ),
        ],
        ids=["unreadable", "bands", "dtype", "shape", "values"],
    )
    def test_malformed_mask(self, good_dir, write, problem):
        path = good_dir / "a1.tif"
        path.unlink()
        write(path)
        problems = validate_submission(str(good_dir), IDS, size=SIZE)
        assert len(problems) == 1
        assert problems[0].startswith(problem)
        assert "\n" not in problems[0]


class TestPackSubmission:
    def test_archive_holds_every_mask_at_its_root(self, good_dir, tmp_path):
        tgz = tmp_path / "out" / "submission.tgz"
        pack_submission(str(good_dir), IDS, str(tgz), size=SIZE)
        with tarfile.open(tgz, "r:gz") as tar:
            assert tar.getnames() == [f"{i}.tif" for i in IDS]
            # Member by member: extractall's safe filter= needs Python >= 3.11.4.
            unpacked = {name: tar.extractfile(name).read() for name in tar.getnames()}
        for i, chip_id in enumerate(IDS):
            with MemoryFile(unpacked[f"{chip_id}.tif"]) as memfile, memfile.open() as src:
                np.testing.assert_array_equal(src.read(1), mask(i))

    def test_archive_inside_the_directory_is_not_an_extra_file(self, good_dir):
        tgz = good_dir / "submission.tgz"
        pack_submission(str(good_dir), IDS, str(tgz), size=SIZE)
        pack_submission(str(good_dir), IDS, str(tgz), size=SIZE)  # again, with it present
        assert tgz.stat().st_size > 0

    def test_refuses_an_incomplete_set(self, good_dir, tmp_path):
        (good_dir / "c3.tif").unlink()
        tgz = tmp_path / "submission.tgz"
        with pytest.raises(InputError, match=r"1 problem\(s\): c3.tif: missing$"):
            pack_submission(str(good_dir), IDS, str(tgz), size=SIZE)
        assert not tgz.exists()

    def test_lists_the_first_ten_problems_and_counts_the_rest(self, good_dir, tmp_path):
        ids = IDS + [f"m{i:02d}" for i in range(12)]
        with pytest.raises(InputError, match="12 problem") as info:
            pack_submission(str(good_dir), ids, str(tmp_path / "s.tgz"), size=SIZE)
        message = str(info.value)
        assert "m09.tif: missing" in message
        assert "m10.tif" not in message
        assert message.endswith("; and 2 more")
        assert "\n" not in message
