"""``-s 2``: two splits writing into the same folders at once leave what one process writes.

Raster Vision's ``local`` runner starts the splits of a command together (``make -j`` on a
Makefile whose split jobs share their prerequisites); the Batch runner as an array job. Here
the two splits of PREPROCESS and of predict run as two ``run_command`` processes, held at a
barrier until both know their share (:mod:`tests.fixtures.splits`), so their writes overlap:
into one windows folder, one predictions folder and its ``.partial`` folder. Their outputs
must be those of the session's single-process run: nothing overwritten, nothing missing, no
partial file left.
"""

import subprocess
import sys
from pathlib import Path

import pytest
from rastervision.pipeline.runner.local_runner import LocalRunner

from benchmark.pipeline.benchmark_pipeline import BenchmarkPipeline
from benchmark.pipeline.preprocess import SplitImages
from tests.fixtures.cli import EXPERIMENT
from tests.fixtures.runs import command_line, copy_run, differences

pytestmark = [
    pytest.mark.faults,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning"),
]


def split_options(split_ind: int, num_splits: int) -> list[str]:
    """What the ``local`` runner's Makefile passes a split job."""
    return ["--num-splits", str(num_splits), "--split-ind", str(split_ind)]


def run_splits_together(root: Path, command: str, tmp_path: Path, splits: int = 2) -> None:
    """Start every split of ``command`` at once; fail with their output if one fails."""
    barrier = tmp_path / f"barrier-{command}"
    wait_at_barrier = [sys.executable, "-m", "tests.fixtures.splits", str(barrier), "--"]
    processes = [
        subprocess.Popen(
            [*wait_at_barrier, *command_line(root, command, tmp_path, *split_options(i, splits))],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(splits)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in processes]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output[-3000:]
    assert sorted(p.name for p in barrier.iterdir()) == [str(i) for i in range(splits)]


@pytest.mark.parametrize(
    ("pipeline", "command"), [(SplitImages, "PREPROCESS"), (BenchmarkPipeline, "predict")]
)
def test_the_local_runner_starts_the_splits_together(pipeline, command, tmp_path, monkeypatch):
    """Both split jobs wait on the same jobs only (none here), and ``make -j`` starts them."""
    started = []
    monkeypatch.setattr(LocalRunner, "run_command", lambda self, cmd: started.append(cmd))
    assert command in pipeline.split_commands
    LocalRunner().run(str(tmp_path / "cfg.json"), pipeline, [command], num_splits=2)
    assert started == [["make", "-j", "-f", str(tmp_path / "Makefile")]]
    makefile = (tmp_path / "Makefile").read_text()
    assert [line for line in makefile.splitlines() if line[:1].isdigit()] == ["0: ", "1: "]
    assert " ".join(split_options(0, 2)) in makefile and " ".join(split_options(1, 2)) in makefile


def test_preprocess_splits_at_once_write_what_one_process_writes(finished_run, tmp_path):
    root = copy_run(finished_run, tmp_path)
    run_splits_together(root, "PREPROCESS", tmp_path)
    assert differences(root, finished_run, "split_images") == []


def test_predict_splits_at_once_write_what_one_process_writes(finished_run, tmp_path):
    root = copy_run(finished_run, tmp_path, "split_images", f"train/{EXPERIMENT}/model-bundle.zip")
    run_splits_together(root, "predict", tmp_path)
    assert differences(root, finished_run, f"predict/{EXPERIMENT}", tolerance=1) == []
