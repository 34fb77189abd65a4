"""Seam picture: the seam measure, and the command's crop, PNG and JSON."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from tests.fixtures.models import conv_model
from tests.fixtures.rasters import png_shape, rgba, write_raster
from tools.seam_picture import main, measure_seams


def ramp_with_step() -> np.ndarray:
    """8 x 12 map rising 0.01 a column, with a 0.3 step between columns 5 and 6."""
    prob = np.tile(0.01 * np.arange(12), (8, 1))
    prob[:, 6:] += 0.3
    return prob


class TestMeasureSeams:
    def test_a_known_jump_on_the_edge(self):
        measure = measure_seams(ramp_with_step(), row_edges=[], col_edges=[6])
        assert measure.edge_jump == pytest.approx(0.31)
        # Elsewhere: 10 column boundaries x 8 rows of 0.01, 7 row boundaries x 12 columns of 0.
        assert measure.other_jump == pytest.approx(0.01 * 80 / (80 + 84))
        assert measure.ratio == pytest.approx(0.31 / (0.8 / 164))

    def test_no_jump_elsewhere_has_no_ratio(self):
        flat = np.zeros((8, 12))
        flat[:, 6:] = 0.5
        measure = measure_seams(flat, row_edges=[4], col_edges=[6])
        assert measure.edge_jump == pytest.approx(0.5 * 8 / (8 + 12))
        assert measure.other_jump == 0
        assert measure.ratio is None

    def test_pairs_outside_the_imagery_are_left_out(self):
        prob = ramp_with_step()
        prob[:, 0] = 0.9  # whatever is there: no imagery
        valid = np.ones(prob.shape, dtype=bool)
        valid[:, 0] = False
        assert measure_seams(prob, [], [6], valid) == measure_seams(prob[:, 1:], [], [5])

    def test_no_edge_is_an_error(self):
        with pytest.raises(ValueError, match="no pixel pairs"):
            measure_seams(ramp_with_step(), [], [])


class TestCommand:
    @staticmethod
    def run(scene: str, png: str, *args: str) -> int:
        bundle = SimpleNamespace(model=conv_model())
        common = ["--window", "32", "--overlap", "16", "--device", "cpu"]
        return main(["b.zip", scene, png, *common, *args], load_bundle=lambda uri: bundle)

    @pytest.fixture
    def scene(self, tmp_path) -> str:
        return write_raster(tmp_path / "scene.tif", rgba(100, 140, seed=5, notch=False))

    def test_writes_the_picture_and_the_measure(self, tmp_path, scene, capsys):
        png = tmp_path / "out" / "seams.png"
        assert self.run(scene, str(png)) == 0
        assert png_shape(png)[2] in (3, 4)
        report = json.loads((tmp_path / "out" / "seams.json").read_text())
        assert report["crop"] == {"col_off": 6, "row_off": 2, "width": 128, "height": 96}
        assert [(k, run["overlap"]) for k, run in report["runs"].items()] == [
            ("no_overlap", 0),
            ("blended", 16),
        ]
        for run in report["runs"].values():
            assert run["edge_jump"] >= 0
            assert run["other_jump"] > 0
        assert capsys.readouterr().out.startswith("no_overlap: mean jump ")

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--overlap", "20"], "overlap 20 must be between 1 and half the window"),
            (["--region", "50", "0", "64", "64"], "is not inside the 140x100 scene"),
            (["--region", "0", "0", "60", "140"], "it needs at least 64 px"),
        ],
    )
    def test_bad_input_is_one_line_exit_2(self, tmp_path, scene, capsys, args, message):
        assert self.run(scene, str(tmp_path / "s.png"), *args) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err
        assert err.count("\n") == 1
