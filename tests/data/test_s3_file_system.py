"""The ``s3://`` file system our plugin registers: syncs that fail loudly, outages in one line.

Raster Vision 0.31 runs ``aws s3 sync`` without looking at its exit status; these go through
Raster Vision's own functions (``sync_to_dir``, ``upload_or_copy``...), which pick the file
system from the registry, as training's output sync does.
"""

import os
from pathlib import Path

import boto3
import pytest
from rastervision.aws_s3 import S3FileSystem
from rastervision.pipeline.file_system import (
    FileSystem,
    NotReadableError,
    file_to_str,
    sync_from_dir,
    sync_to_dir,
    upload_or_copy,
)

from benchmark.data.aws_errors import UNAVAILABLE, AwsError
from benchmark.data.s3_file_system import S3SyncError, checked_s3_file_system
from tools.s3_fault_proxy import FaultRule

BUCKET = "fs-checks"
URI = f"s3://{BUCKET}/train/tiny"


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def keys_under(prefix: str) -> list[str]:
    listed = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return [o["Key"] for o in listed.get("Contents", [])]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A training output folder: a few small files and a weights file."""
    root = tmp_path / "train"
    (root / "dataloaders").mkdir(parents=True)
    (root / "log.csv").write_text("epoch,loss\n0,0.8\n")
    (root / "dataloaders" / "train.png").write_bytes(os.urandom(3_000))
    (root / "last-model.pth").write_bytes(os.urandom(400_000))
    return root


@pytest.fixture
def bucket(faulty_s3) -> str:
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    return BUCKET


def test_raster_vision_picks_it_for_s3_uris():
    fs = FileSystem.get_file_system("s3://bucket/key", "w")
    assert fs is checked_s3_file_system()
    assert issubclass(fs, S3FileSystem)
    assert FileSystem.get_file_system("/a/local/path") is not fs


def test_without_the_aws_cli_a_sync_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(S3SyncError, match=rf"^{URI}: the aws CLI is not installed"):
        sync_to_dir(str(tmp_path), URI)


@pytest.mark.aws
@pytest.mark.faults
class TestSyncs:
    def test_syncs_both_ways_ride_out_faults(self, faulty_s3, bucket, tree, tmp_path):
        faulty_s3.set_rules(
            [FaultRule("reset", "PUT", agent="aws-cli", at=(1,)),
             FaultRule("slow_down", "PUT", agent="aws-cli", at=(2,)),
             FaultRule("truncate", "GET", agent="aws-cli", at=(2,)),
             FaultRule("internal_error", "GET", agent="aws-cli", at=(3,))]
        )  # fmt: skip
        sync_to_dir(str(tree), URI)
        sync_from_dir(URI, str(tmp_path / "back"))
        assert files_under(tmp_path / "back") == files_under(tree)
        assert faulty_s3.counts()["faults"] == 4

    @pytest.mark.parametrize("copy", [sync_to_dir, upload_or_copy])
    def test_a_failing_upload_is_one_line_naming_the_uri(
        self, faulty_s3, bucket, tree, monkeypatch, copy
    ):
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
        faulty_s3.set_rules([FaultRule.persistent("slow_down", "PUT|POST")])
        with pytest.raises(S3SyncError) as info:
            copy(str(tree), URI)
        message = str(info.value)
        assert message.startswith(f"{URI}: aws s3 sync {tree} {URI} failed (status 1): ")
        assert "SlowDown" in message and "\n" not in message
        assert keys_under("train/") == []  # nothing half-written, nothing at all

    def test_a_failing_download_is_one_line_and_leaves_no_partial_file(
        self, faulty_s3, bucket, tree, tmp_path, monkeypatch
    ):
        sync_to_dir(str(tree), URI)
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
        faulty_s3.set_rules([FaultRule.persistent("reset", "GET", path=r"\.pth")])
        with pytest.raises(S3SyncError, match=rf"^{URI}: aws s3 sync .* failed \(status 1\)"):
            sync_from_dir(URI, str(tmp_path / "back"))
        assert sorted(files_under(tmp_path / "back")) == ["dataloaders/train.png", "log.csv"]


@pytest.mark.aws
@pytest.mark.faults
@pytest.mark.usefixtures("few_s3_attempts")
class TestOutages:
    def test_a_read_outage_is_one_line_not_a_missing_file(self, faulty_s3, bucket):
        boto3.client("s3").put_object(Bucket=BUCKET, Key="config.json", Body=b"{}")
        faulty_s3.set_rules([FaultRule.persistent("internal_error", "GET|HEAD")])
        uri = f"s3://{BUCKET}/config.json"
        with pytest.raises(AwsError) as info:
            file_to_str(uri)
        assert info.value.kind == UNAVAILABLE and not isinstance(info.value, NotReadableError)
        assert str(info.value).startswith(f"{uri}: AWS kept failing (")
        faulty_s3.set_rules([])
        with pytest.raises(NotReadableError):  # a missing file is still Raster Vision's error
            file_to_str(f"s3://{BUCKET}/missing.json")

    def test_an_upload_outage_is_one_line_and_writes_nothing(self, faulty_s3, bucket, tree):
        faulty_s3.set_rules([FaultRule.persistent("throttle", "PUT")])
        uri = f"{URI}/log.csv"
        with pytest.raises(AwsError, match=rf"^{uri}: AWS kept failing \(.*Throttling"):
            upload_or_copy(str(tree / "log.csv"), uri)
        assert keys_under("train/") == []
