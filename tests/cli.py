"""Running the real ``rastervision`` CLI from tests: PREPROCESS and the six benchmark commands."""

import os
import subprocess
import sys
from pathlib import Path

from tests.data.opencities import FixtureCatalog, cli_args

CHIP = 64  # test chip side in the generated catalogs
EXPERIMENT = "tiny"


def rastervision(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run the rastervision CLI of this venv; fail the test with its output if it fails."""
    cmd = [sys.executable, "-m", "rastervision.pipeline.cli", "--tmpdir", str(tmp_path / "rvtmp")]
    result = subprocess.run([*cmd, *args], capture_output=True, text=True, env=dict(os.environ))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


def run_whole_pipeline(catalog: FixtureCatalog, root: str, tmp_path: Path, **uris: str) -> None:
    """PREPROCESS, then chip train predict eval bundle POSTPROCESS, tiny settings, inprocess.

    ``uris`` may override ``train_stac_uri`` and ``test_stac_uri`` (e.g. with s3:// copies).
    """
    scene_args = cli_args(catalog.scene_args(root, uris.get("train_stac_uri")))
    rastervision(
        "run", "inprocess", "benchmark.experiments.split_images", "PREPROCESS",
        *scene_args, "-a", "split_size", "64", tmp_path=tmp_path,
    )  # fmt: skip
    rastervision(
        "run", "inprocess", "benchmark.experiments.benchmark",
        "chip", "train", "predict", "eval", "bundle", "POSTPROCESS",
        *scene_args,
        "-a", "experiment_id", EXPERIMENT,
        "-a", "test_stac_uri", uris.get("test_stac_uri", catalog.test_catalog_uri),
        "-a", "test_chip_size", str(CHIP),
        "-a", "pretrained", "false",
        "-a", "chip_sz", "32", "-a", "batch_sz", "2", "-a", "num_epochs", "1",
        "-a", "predict_chip_sz", "48", "-a", "num_workers", "0",
        tmp_path=tmp_path,
    )  # fmt: skip
