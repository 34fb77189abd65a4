"""``benchmark-predict``: a bundle and a folder of chips -> masks, packing, one-line errors."""

import subprocess
import tarfile
from pathlib import Path

import pytest

from benchmark.cli.predict import main
from tests.fixtures.models import bundle_loader, pointwise_model, record_input_sizes
from tests.fixtures.rasters import read_band, rgba, write_raster

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")


class TestPredictFolderCommand:
    @staticmethod
    def run(
        args: list[str],
        threshold: float = 0.5,
        gsd: float | None = None,
        model=None,
        window: int | None = None,
    ) -> int:
        loader = bundle_loader(model, threshold=threshold, gsd=gsd, window=window, overlap=8)
        common = ["--chip-size", "64", "--num-workers", "0", "--no-fast"]
        return main([*args, *common], load_bundle=loader)

    @pytest.fixture
    def img_dir(self, tmp_path: Path) -> Path:
        for i, chip_id in enumerate(["a1", "b2"]):
            data = rgba(64, 64, seed=i, notch=False)
            write_raster(tmp_path / "img" / chip_id / f"{chip_id}.tif", data, crs=None)
        return tmp_path / "img"

    def test_predicts_and_packs(self, tmp_path, img_dir):
        tgz = tmp_path / "submission.tgz"
        out = tmp_path / "out"
        assert self.run(["b.zip", str(img_dir), str(out), "--pack", str(tgz)]) == 0
        with tarfile.open(tgz) as tar:
            assert tar.getnames() == ["a1.tif", "b2.tif"]
        assert self.run(["b.zip", str(img_dir), str(out), "--pack", str(tgz)]) == 0  # resumes

    def test_threshold_from_the_bundle_unless_given(self, tmp_path, img_dir):
        self.run(["b.zip", str(img_dir), str(tmp_path / "low")], threshold=0.0)
        self.run(["b.zip", str(img_dir), str(tmp_path / "high"), "--threshold", "0.999"])
        assert read_band(tmp_path / "low" / "b2.tif").all()
        assert not read_band(tmp_path / "high" / "b2.tif").any()

    def test_chip_gsd_resizes_chips_to_the_bundle_gsd(self, tmp_path, img_dir):
        model = pointwise_model()
        sizes = record_input_sizes(model)
        args = ["b.zip", str(img_dir), str(tmp_path / "out"), "--chip-gsd", "0.075"]
        assert self.run(args, gsd=0.1, model=model) == 0
        assert set(sizes) == {(48, 48)}
        assert read_band(tmp_path / "out" / "a1.tif").shape == (64, 64)

    def test_a_bundle_with_a_gsd_warns_without_chip_gsd(self, tmp_path, img_dir, caplog):
        assert self.run(["b.zip", str(img_dir), str(tmp_path / "out")], gsd=0.3) == 0
        assert "works at 0.3 m per pixel" in caplog.text
        assert "--chip-gsd" in caplog.text

    def test_chips_run_in_the_bundles_windows_unless_told(self, tmp_path, img_dir):
        model = pointwise_model()
        sizes = record_input_sizes(model)
        assert self.run(["b.zip", str(img_dir), str(tmp_path / "a")], window=32, model=model) == 0
        assert set(sizes) == {(32, 32)}  # 64 px chips, 32 px windows overlapping by 8
        sizes.clear()
        args = ["b.zip", str(img_dir), str(tmp_path / "b"), "--window", "48", "--overlap", "0"]
        assert self.run(args, window=32, model=model) == 0
        assert set(sizes) == {(48, 48)}
        with pytest.raises(SystemExit):
            self.run(["b.zip", str(img_dir), str(tmp_path / "c"), "--window", "0"])

    def test_chip_gsd_needs_a_bundle_with_a_gsd(self, tmp_path, img_dir, capsys):
        args = ["b.zip", str(img_dir), str(tmp_path / "out"), "--chip-gsd", "0.075"]
        assert self.run(args) == 2
        assert capsys.readouterr().err.startswith("error: --chip-gsd: the bundle records no gsd")
        with pytest.raises(SystemExit):
            self.run(["b.zip", str(img_dir), str(tmp_path), "--chip-gsd", "-1"])

    def test_bad_chips_exit_1_and_are_listed(self, tmp_path, img_dir, capsys):
        write_raster(img_dir / "c3.tif", rgba(64, 64)[:2], crs=None)
        assert self.run(["b.zip", str(img_dir), str(tmp_path / "out")]) == 1
        last_line = capsys.readouterr().err.splitlines()[-1]  # after the progress bar
        assert last_line.startswith("error: 1 chip(s) not predicted: c3: 2 band(s)")
        tgz = str(tmp_path / "s.tgz")
        assert self.run(["b.zip", str(img_dir), str(tmp_path / "out"), "--pack", tgz]) == 2
        assert "c3.tif: missing" in capsys.readouterr().err

    def test_on_the_cpu_cuda_is_never_touched(self, tmp_path, img_dir, cuda_untouched):
        assert (
            self.run(
                [str(tmp_path / "b.zip"), str(img_dir), str(tmp_path / "out"), "--device", "cpu"]
            )
            == 0
        )
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a1.tif", "b2.tif"]

    def test_input_error_is_one_line_exit_2(self, tmp_path, capsys):
        assert self.run(["b.zip", str(tmp_path / "nope"), str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert err == f"error: {tmp_path / 'nope'}: test image directory not found\n"

    def test_threshold_must_be_a_probability(self, tmp_path):
        with pytest.raises(SystemExit) as info:
            self.run(["b.zip", str(tmp_path), str(tmp_path), "--threshold", "1.5"])
        assert info.value.code == 2

    def test_wrapper_script_help(self, repo_root):
        script = repo_root / "wb_scripts" / "predict"
        done = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True)
        assert "BUNDLE IMG_DIR OUT_DIR" in done.stdout
