"""The benchmark's predict and POSTPROCESS on a read-only folder, a full disk, vanished inputs.

Each works on a copy of the session's finished run: the fault run must end with one error line
naming the file, keep every complete output, and a re-run once the fault is gone must end with
the outputs the clean run wrote. POSTPROCESS on a real full disk goes through ``rastervision
run_command`` (what the user sees); the others build the pipeline in this process, the model
loaded once (``test_preprocess_faults.py`` runs PREPROCESS's read-only case through the CLI).
"""

import copy
import json
import tarfile
from pathlib import Path

import pytest
from torch import nn

import benchmark.pipeline.postprocess as postprocess
from benchmark.errors import InputError, OutputError, one_line_error
from benchmark.pipeline.benchmark_pipeline import BenchmarkPipeline
from benchmark.pipeline.bundle import load_learner_model
from tests.fixtures.cli import EXPERIMENT
from tests.fixtures.faults import HOWS, FaultyFolder, best_way, error_line, leftovers, snapshot
from tests.fixtures.runs import build_pipeline, copy_run, differences, run_command

pytestmark = [
    pytest.mark.faults,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning"),
]
MODEL = f"train/{EXPERIMENT}/model-bundle.zip"
# What predict reads besides the model: the validation windows; POSTPROCESS: eval's threshold.
PREDICT_INPUTS = ("split_images", MODEL)
POSTPROCESS_INPUTS = (f"predict/{EXPERIMENT}", f"eval/{EXPERIMENT}/eval.json")
PREDICTIONS = f"predict/{EXPERIMENT}"


@pytest.fixture(scope="module")
def model(finished_run, tmp_path_factory) -> nn.Module:
    """The finished run's network, loaded once for the module's in-process predicts."""
    bundle = str(finished_run["root"] / MODEL)
    return load_learner_model(bundle, str(tmp_path_factory.mktemp("model")))


@pytest.fixture
def pipeline_with(model, monkeypatch):
    """``pipeline_with(root, tmp_path)``: the copy's benchmark pipeline, with the loaded model."""
    monkeypatch.setattr(BenchmarkPipeline, "_load_model", lambda self: copy.deepcopy(model))
    return lambda root, tmp_path: build_pipeline(root, preprocess=False, tmp_path=tmp_path)


class TestPredict:
    def test_read_only_predictions_folder(self, finished_run, tmp_path, pipeline_with):
        with FaultyFolder(tmp_path / "out" / "predict", best_way()) as out:
            root = copy_run(finished_run, tmp_path, *PREDICT_INPUTS)
            with out.read_only(), pytest.raises(OutputError) as caught:
                pipeline_with(root, tmp_path).predict()
            first = out.path / EXPERIMENT / "bbb222_0.tif"
            assert one_line_error(caught.value) == f"{first}: not written: Read-only file system"
            assert snapshot(out.path) == {} and leftovers(out.path) == []
            pipeline_with(root, tmp_path).predict()
            assert differences(root, finished_run, PREDICTIONS, tolerance=1) == []

    @pytest.mark.parametrize("how", HOWS)
    def test_full_disk_keeps_the_predictions_written(
        self, finished_run, tmp_path, pipeline_with, how
    ):
        with FaultyFolder(tmp_path / "out" / "predict", how) as out:
            root = copy_run(finished_run, tmp_path, *PREDICT_INPUTS, f"predict/{EXPERIMENT}")
            predictions = out.path / EXPERIMENT
            for name in ("bbb222_2.tif", "bbb222_3.tif", "test/decade.tif"):  # not done yet
                (predictions / name).unlink()
            before = snapshot(out.path)
            with out.full(), pytest.raises(OutputError) as caught:
                pipeline_with(root, tmp_path).predict()
            assert one_line_error(caught.value) == (
                f"{predictions}/bbb222_2.tif: not written: No space left on device"
            )
            assert snapshot(out.path) == before and leftovers(out.path) == []
            pipeline_with(root, tmp_path).predict()
            assert differences(root, finished_run, PREDICTIONS, tolerance=1) == []

    def test_a_test_chip_that_vanishes_after_the_config(
        self, finished_run, tmp_path, pipeline_with
    ):
        """The windows and the other chip are predicted, the gone one named; a re-run ends it."""
        root = copy_run(finished_run, tmp_path, *PREDICT_INPUTS)
        chip = tmp_path / "data" / "test" / "decade" / "decade.tif"
        aside = tmp_path / "decade.tif"
        chip.rename(aside)
        with pytest.raises(InputError) as caught:
            pipeline_with(root, tmp_path).predict()
        line = one_line_error(caught.value)
        assert line.startswith("predict: test 1 chip(s) not predicted: decade: cannot read")
        assert str(chip) in line and "No such file or directory" in line
        predictions = root / "predict" / EXPERIMENT
        assert sorted(snapshot(predictions)) == [
            *(f"bbb222_{i}.tif" for i in range(4)),
            "test/c0ffee.tif",
        ]
        aside.rename(chip)
        pipeline_with(root, tmp_path).predict()
        assert differences(root, finished_run, PREDICTIONS, tolerance=1) == []


class TestPostprocess:
    def full_disk_run(self, root: Path, tmp_path: Path, out: FaultyFolder) -> str:
        """POSTPROCESS on the full disk; its error line (from the CLI for a real disk)."""
        if out.how == "mount":
            done = run_command(root, "POSTPROCESS", tmp_path)
            assert done.returncode == 2, done.stderr[-3000:]
            return error_line(done.stderr)
        with pytest.raises(OutputError) as caught:
            build_pipeline(root, preprocess=False, tmp_path=tmp_path).POSTPROCESS()
        return f"error: {one_line_error(caught.value)}"

    @pytest.mark.parametrize("how", HOWS)
    def test_full_disk_keeps_the_masks_written(self, finished_run, tmp_path, how):
        with FaultyFolder(tmp_path / "out" / "postprocess", how) as out:
            root = copy_run(finished_run, tmp_path, *POSTPROCESS_INPUTS, "postprocess")
            (out.path / EXPERIMENT / "decade.tif").unlink()
            before = snapshot(out.path)
            with out.full():
                line = self.full_disk_run(root, tmp_path, out)
            assert line == (
                f"error: {out.path}/{EXPERIMENT}/decade.tif: not written: No space left on device"
            )
            assert snapshot(out.path) == before and leftovers(out.path) == []
            build_pipeline(root, preprocess=False, tmp_path=tmp_path).POSTPROCESS()
            assert differences(root, finished_run, "postprocess") == []
            with tarfile.open(root / "submission" / EXPERIMENT / "submission.tgz") as tar:
                assert tar.getnames() == ["c0ffee.tif", "decade.tif"]

    def test_read_only_masks_folder(self, finished_run, tmp_path):
        with FaultyFolder(tmp_path / "out" / "postprocess", best_way()) as out:
            root = copy_run(finished_run, tmp_path, *POSTPROCESS_INPUTS)
            with out.read_only(), pytest.raises(OutputError) as caught:
                build_pipeline(root, preprocess=False, tmp_path=tmp_path).POSTPROCESS()
            assert one_line_error(caught.value) == (
                f"{out.path}/{EXPERIMENT}.json: not written: Read-only file system"
            )
            assert snapshot(out.path) == {} and leftovers(out.path) == []
            build_pipeline(root, preprocess=False, tmp_path=tmp_path).POSTPROCESS()
            assert differences(root, finished_run, "postprocess") == []

    def test_a_probability_that_vanishes_after_listing(self, finished_run, tmp_path, monkeypatch):
        root = copy_run(finished_run, tmp_path, *POSTPROCESS_INPUTS)
        prob = root / "predict" / EXPERIMENT / "test" / "decade.tif"
        aside = tmp_path / "decade.tif"
        real_exists = postprocess.uri_exists

        def exists_then_gone(uri: str) -> bool:
            found = real_exists(uri)
            if uri == str(prob) and found:
                prob.rename(aside)
            return found

        monkeypatch.setattr(postprocess, "uri_exists", exists_then_gone)
        with pytest.raises(InputError) as caught:
            build_pipeline(root, preprocess=False, tmp_path=tmp_path).POSTPROCESS()
        line = one_line_error(caught.value)
        assert line.startswith(f"{prob}: cannot read (") and "No such file" in line
        marker = json.loads((root / "postprocess" / f"{EXPERIMENT}.json").read_text())
        assert marker == {"threshold": None}  # no mask set is recorded as complete
        monkeypatch.undo()
        aside.rename(prob)
        build_pipeline(root, preprocess=False, tmp_path=tmp_path).POSTPROCESS()
        assert differences(root, finished_run, "postprocess") == []
