"""``benchmark.cli.check_aws`` and ``wb_scripts/check_aws`` against the local moto server."""

import os
import subprocess
from pathlib import Path

import boto3
import pytest
from rastervision.pipeline import rv_config_

from benchmark.cli.check_aws import NOT_CHECKED, NOT_READY, READY, check_setup, main
from tests.fixtures.aws import iam_enforced, iam_user_keys, make_batch_resources

pytestmark = pytest.mark.aws

BUCKET = "bench-check"
ROOT = f"s3://{BUCKET}/root"
CATALOG = f"s3://{BUCKET}/data/catalog.json"
QUEUES = {"cpu": "check-cpu-queue", "gpu": "check-gpu-queue"}
JOB_DEFS = {"cpu": "check-cpu-def", "gpu": "check-gpu-def"}
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/rv:world-bank-challenge"


@pytest.fixture
def account(aws_env, tmp_path, monkeypatch):
    """A bucket with a catalog, Batch queues and job definitions, and a profile naming them."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="data/catalog.json", Body=b'{"links": [{"rel": "child"}]}')
    make_batch_resources(list(QUEUES.values()), {d: IMAGE for d in JOB_DEFS.values()})
    (tmp_path / "check").write_text(
        "[BATCH]\n" + "".join(f"{d}_job_queue = {q}\n" for d, q in QUEUES.items())
        + "".join(f"{d}_job_def = {j}\n" for d, j in JOB_DEFS.items())
    )  # fmt: skip
    monkeypatch.setenv("RV_CONFIG_DIR", str(tmp_path))
    for name in ("ECR_CPU_REPO", "ECR_GPU_REPO", "ECR_IMAGE_TAG", "RV_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    yield aws_env
    monkeypatch.delenv("RV_CONFIG_DIR")
    rv_config_.set_everett_config()


def rows(**images: str) -> dict[str, tuple[str, str]]:
    """Check name (its first three words) -> (status, detail)."""
    checks = check_setup(ROOT, CATALOG, "check", {"cpu": None, "gpu": None, **images})
    return {" ".join(c.name.split()[:3]): (c.status, c.detail) for c in checks}


def test_all_ready(account, capsys):
    assert main(["--root-uri", ROOT, "--train-stac-uri", CATALOG, "--profile", "check"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 9
    assert out[0].startswith("AWS credentials ") and ":123456789012:" in out[0]
    assert all(f" {READY} " in line for line in out[:-1]), out
    assert out[-1].startswith("all 8 checks ready")
    assert not boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="root/").get("Contents")


def test_image_compared_with_the_ecr_repository(account, monkeypatch):
    monkeypatch.setenv("ECR_CPU_REPO", "rv")
    monkeypatch.setenv("ECR_GPU_REPO", "other")
    found = rows()
    assert found["CPU job definition"] == (READY, f"revision 1, image {IMAGE}")
    status, detail = found["GPU job definition"]
    assert status == NOT_READY
    assert detail.startswith(f"revision 1 runs {IMAGE}, not 123456789012.dkr.ecr.us-east-1.")


def test_no_credentials(account, monkeypatch, capsys):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    assert main(["--root-uri", ROOT, "--train-stac-uri", CATALOG, "--profile", "check"]) == 2
    out = capsys.readouterr().out.splitlines()
    assert NOT_READY in out[0] and "no AWS credentials found: run `aws configure`" in out[0]
    assert sum(NOT_CHECKED in line for line in out) == 6  # all that asks AWS
    assert out[-1].startswith("1 of 8 checks ready")  # the profile


def test_denied_bucket_missing_and_disabled_queues(account, monkeypatch):
    boto3.client("batch").update_job_queue(jobQueue=QUEUES["gpu"], state="DISABLED")
    profile = Path(os.environ["RV_CONFIG_DIR"], "check")
    profile.write_text(profile.read_text().replace(QUEUES["cpu"], "RasterVisionCpuJobQueue"))
    boto3.client("s3").create_bucket(Bucket="bench-other")
    key_id, secret = iam_user_keys("checker", ["bench-other"])
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    with iam_enforced(account.url):
        found = rows()
    assert found["AWS credentials"][0] == READY
    status, detail = found[f"read/write {ROOT}"]
    assert status == NOT_READY
    assert detail.startswith(f"{ROOT}/.check_aws-") and "access denied (AccessDenied)" in detail
    assert found["training catalog"] == (
        NOT_READY,
        f"{CATALOG}: access denied (AccessDenied): your AWS identity needs s3:GetObject on "
        f"arn:aws:s3:::{BUCKET}/data/* and s3:ListBucket on {BUCKET} (or use other "
        "credentials); if the bucket is requester-pays, set requester_pays = True under [AWS_S3]",
    )
    status, detail = found["CPU job queue"]
    assert status == NOT_READY
    assert detail.startswith("does not exist in region us-east-1: deploy Raster Vision's")
    assert "set [BATCH] cpu_job_queue" in detail
    assert found["GPU job queue"] == (
        NOT_READY,
        f"DISABLED: enable it (aws batch update-job-queue --job-queue {QUEUES['gpu']} "
        "--state ENABLED)",
    )
    assert found["CPU job definition"][0] == READY


def test_wrapper_needs_root_uri(repo_root):
    env = {k: v for k, v in os.environ.items() if k != "ROOT_URI"}
    result = subprocess.run(
        [str(repo_root / "wb_scripts" / "check_aws")], capture_output=True, text=True, env=env
    )
    assert result.returncode == 1
    assert result.stderr == (
        "error: ROOT_URI is not set (the runs' root, e.g. s3://my-bucket/open-cities; see --help)\n"
    )


def test_wrapper_runs_the_check(account, repo_root):
    env = {**os.environ, "ROOT_URI": ROOT, "TRAIN_STAC_URI": CATALOG, "PROFILE": "check"}
    env["NO_ALBUMENTATIONS_UPDATE"] = "1"
    result = subprocess.run(
        [str(repo_root / "wb_scripts" / "check_aws")], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].startswith("all 8 checks ready")
