"""``python -m benchmark.cli.sync`` and ``wb_scripts/submit`` on a faulty S3: all, or one line."""

import os
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest

from benchmark.cli.sync import main
from benchmark.data.submission import write_mask
from tests.fixtures.opencities import make_opencities_catalog
from tools.s3_fault_proxy import FaultRule

pytestmark = [pytest.mark.aws, pytest.mark.faults]

BUCKET = "sync-faults"
SIZE = 16  # mask side
CLI_GETS = [
    FaultRule("reset", "GET", agent="aws-cli", at=(1,)),
    FaultRule("truncate", "GET", agent="aws-cli", at=(2,)),
    FaultRule("slow_down", "GET", agent="aws-cli", at=(3,)),
]


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def experiment(tmp_path, s3_upload) -> tuple[dict[str, str], Path]:
    """POSTPROCESS masks of experiment e1 on S3, and the environment wb_scripts/submit needs."""
    catalog = make_opencities_catalog(tmp_path / "data", test_chip_size=SIZE)
    masks = tmp_path / "masks"
    rng = np.random.default_rng(0)
    for chip_id in catalog.test_chip_ids:
        write_mask(rng.integers(0, 2, (SIZE, SIZE), dtype=np.uint8), f"{masks}/{chip_id}.tif")
    s3_upload(masks, f"s3://{BUCKET}/root/postprocess/e1")
    env = {"ROOT_URI": f"s3://{BUCKET}/root", "EXPERIMENT_ID": "e1"}
    return {**env, "TEST_STAC_URI": catalog.test_catalog_uri}, masks


def submit(repo_root: Path, tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(repo_root / "wb_scripts" / "submit"), "--out", str(tmp_path / "sub" / "s.tgz"),
         "--size", str(SIZE)],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=300,
    )  # fmt: skip


def test_the_sync_command_copies_everything_through_faults(faulty_s3, experiment, tmp_path):
    _, masks = experiment
    faulty_s3.set_rules(CLI_GETS)
    src = f"s3://{BUCKET}/root/postprocess/e1/"
    assert main([src, f"{tmp_path / 'down'}/", "--delete", "--exclude", ".tmp-*"]) == 0
    assert files_under(tmp_path / "down") == files_under(masks)
    assert faulty_s3.counts()["faults"] == len(CLI_GETS)


def test_the_sync_command_fails_in_one_line_exit_2(
    faulty_s3, experiment, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    faulty_s3.set_rules([FaultRule.persistent("internal_error", "GET", path=r"\.tif$")])
    src = f"s3://{BUCKET}/root/postprocess/e1/"
    assert main([src, f"{tmp_path / 'down'}/"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {src}: aws s3 sync {src} ") and err.count("\n") == 1
    assert "InternalError" in err
    assert files_under(tmp_path / "down") == {}  # the aws CLI leaves no partial download


def test_submit_through_faults_packs_the_masks_that_were_written(
    faulty_s3, experiment, tmp_path, repo_root
):
    env, masks = experiment
    faulty_s3.set_rules(CLI_GETS)
    done = submit(repo_root, tmp_path, env)
    assert done.returncode == 0, done.stderr
    with tarfile.open(tmp_path / "sub" / "s.tgz") as tar:
        packed = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    assert packed == files_under(masks)
    assert faulty_s3.counts()["faults"] == len(CLI_GETS)


def test_submit_with_s3_down_ends_in_one_line_exit_2_and_writes_nothing(
    faulty_s3, experiment, tmp_path, repo_root, monkeypatch
):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    faulty_s3.set_rules([FaultRule.persistent("slow_down", "GET")])
    done = submit(repo_root, tmp_path, experiment[0])
    assert done.returncode == 2
    last_line = done.stderr.splitlines()[-1]  # after "Downloading ... to ..."
    assert last_line.startswith(f"error: s3://{BUCKET}/root/postprocess/e1/: aws s3 sync ")
    assert not (tmp_path / "sub" / "s.tgz").exists()
