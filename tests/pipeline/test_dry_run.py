"""The dry run without AWS access: the whole job graph, and one line per thing it assumed.

Issue #17: ``ROOT_URI=s3://... ./wb_scripts/benchmark --dry-run`` without AWS credentials
stopped at the first S3 read. The CLI tests run ``rastervision run batch`` as the wrapper does,
on the moto server with the credentials taken away, with the repository's profile template.
"""

import json
import logging
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from rastervision.pipeline import rv_config_

from benchmark.data import layout
from benchmark.data.aws_errors import NO_CREDENTIALS, AwsAccessError, AwsError
from benchmark.errors import InputError
from benchmark.experiments.args import DEFAULT_TRAIN_STAC_URI
from benchmark.pipeline.dry_run import (
    DRY_RUN_ENV,
    config_uri,
    read_or_assume,
    submitted_config_uri,
)
from tests.fixtures.aws import parse_dry_run

pytestmark = pytest.mark.aws

REPO = Path(__file__).resolve().parents[2]
ROOT = "s3://my-bucket/oc"
TEST_CATALOG = "s3://drivendata-competition-building-segmentation/test/catalog.json"
BENCHMARK_COMMANDS = ["chip", "train", "predict", "eval", "bundle", "POSTPROCESS"]
NO_CREDENTIALS_LINE = (
    "no AWS credentials found: run `aws configure` (or set AWS_PROFILE, or AWS_ACCESS_KEY_ID "
    "and AWS_SECRET_ACCESS_KEY), then wb_scripts/check_aws"
)


def refused(uri: str) -> None:
    raise AwsAccessError(f"{uri}: {NO_CREDENTIALS_LINE}", NO_CREDENTIALS)


class TestReadOrAssume:
    URI = "s3://bucket/catalog.json"

    def test_dry_run_assumes_and_says_so(self, monkeypatch, caplog):
        monkeypatch.setenv(DRY_RUN_ENV, "1")
        with caplog.at_level(logging.WARNING, logger="benchmark"):
            assert read_or_assume(lambda: refused(self.URI), self.URI, "no scenes", []) == []
        assert caplog.messages == [
            f"dry run: cannot read {self.URI} (no credentials); the job graph assumes no scenes"
        ]

    def test_outside_a_dry_run_raises(self, monkeypatch):
        monkeypatch.delenv(DRY_RUN_ENV, raising=False)
        with pytest.raises(AwsAccessError, match="no AWS credentials"):
            read_or_assume(lambda: refused(self.URI), self.URI, "no scenes", [])

    @pytest.mark.parametrize(
        "error",
        [InputError("s3://bucket/catalog.json: STAC catalog not found"), AwsError("x", "other")],
    )
    def test_other_errors_are_raised_in_a_dry_run(self, monkeypatch, error):
        monkeypatch.setenv(DRY_RUN_ENV, "1")

        def read() -> None:
            raise error

        with pytest.raises(InputError) as raised:
            read_or_assume(read, self.URI, "no scenes", [])
        assert raised.value is error


class TestConfigUri:
    def test_dry_run_saves_s3_configs_locally(self, monkeypatch, tmp_path):
        monkeypatch.setenv(DRY_RUN_ENV, "1")
        rv_config_.set_tmp_dir_root(str(tmp_path))
        try:
            s3_config = layout.pipeline_config_uri(ROOT, "unet")
            local = config_uri(s3_config)
            assert local == str(
                tmp_path / "benchmark-dry-run/my-bucket/oc/pipeline-config/unet.json"
            )
            assert submitted_config_uri(local) == s3_config
        finally:
            rv_config_.set_tmp_dir_root()

    def test_local_roots_and_real_runs_are_unchanged(self, monkeypatch):
        s3_config = layout.preprocess_config_uri(ROOT)
        monkeypatch.setenv(DRY_RUN_ENV, "1")
        assert config_uri("/data/oc/split_images-config.json").startswith("/data/oc/")
        monkeypatch.delenv(DRY_RUN_ENV)
        assert config_uri(s3_config) == s3_config
        assert submitted_config_uri(s3_config) == s3_config


# ---- the real CLI, without credentials ------------------------------------------------------


@pytest.fixture
def no_credentials(aws_env, monkeypatch):
    """The moto setup with no AWS credentials anywhere (no keys, no files, no profile)."""
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    return aws_env


def run_batch(tmp_path: Path, *args: str, dry_run: bool) -> subprocess.CompletedProcess:
    """``rastervision run batch ARGS -s 4`` as ``wb_scripts`` runs it, with the repo's profile."""
    env = {
        **os.environ,
        "RV_CONFIG_DIR": str(REPO / ".rastervision"),
        "NO_ALBUMENTATIONS_UPDATE": "1",  # its version check online warns on stderr
    }
    env.pop(DRY_RUN_ENV, None)
    if dry_run:
        env[DRY_RUN_ENV] = "1"
    cli = [sys.executable, "-m", "rastervision.pipeline.cli", "-p", "wbbenchmark"]
    return subprocess.run(
        [*cli, "--tmpdir", str(tmp_path / "rv-tmp"), "run", "batch", *args, "-s", "4"],
        capture_output=True, text=True, env=env, cwd=REPO,
    )  # fmt: skip


def dry_run_lines(stderr: str) -> list[str]:
    """What the dry run said it could not read or check, one entry per line."""
    said = []
    for line in stderr.splitlines():
        for start in ("dry run: cannot read", "No AWS credentials: not checked"):
            if start in line:
                said.append(line[line.index(start) :])
    return said


def assert_nothing_written(server) -> None:
    writes = [r for r in server.recorded_requests() if r["method"] in ("PUT", "POST")]
    assert not writes, f"a dry run wrote to AWS: {writes}"


BENCHMARK_ARGS = [
    "benchmark.experiments.benchmark", *BENCHMARK_COMMANDS,
    "-a", "root_uri", ROOT, "-a", "experiment_id", "unet", "-a", "test_stac_uri", TEST_CATALOG,
]  # fmt: skip
PREPROCESS_ARGS = ["benchmark.experiments.split_images", "PREPROCESS", "-a", "root_uri", ROOT]


def test_benchmark_prints_the_whole_graph(no_credentials, tmp_path):
    result = run_batch(tmp_path, *BENCHMARK_ARGS, dry_run=True)
    assert result.returncode == 0, result.stderr[-5000:]
    jobs = parse_dry_run(result.stdout)
    assert [j["step"] for j in jobs] == BENCHMARK_COMMANDS
    assert [j["array_size"] for j in jobs] == ["4", "-", "4", "-", "-", "-"]
    assert [j["depends_on"] for j in jobs] == ["-"] + [f"dry-run-{n}" for n in range(1, 6)]
    config = f"{ROOT}/pipeline-config/unet.json"
    for job in jobs:
        command = shlex.split(job["command"])
        assert command[:5] == ["python", "-m", "rastervision.pipeline.cli", "run_command", config]
        assert command[5] == job["step"]
    manifests = f"{ROOT}/split_images/{{area}}/{{id}}/manifest.json"
    said = dry_run_lines(result.stderr)
    assert said[:3] == [
        f"dry run: cannot read {DEFAULT_TRAIN_STAC_URI} (no credentials); the job graph assumes "
        "the scenes are -a train_ids and -a valid_ids as given",
        f"dry run: cannot read {manifests} (no credentials); the job graph assumes one window "
        "per scene, {area}/{id}/{id}_0.tif",
        f"dry run: cannot read {TEST_CATALOG} (no credentials); the job graph assumes no test "
        "chips",
    ]
    assert len(said) == 4 and said[3].startswith("No AWS credentials: not checked")
    assert_nothing_written(no_credentials)
    saved = tmp_path / "rv-tmp/benchmark-dry-run/my-bucket/oc/pipeline-config/unet.json"
    assert json.loads(saved.read_text())["root_uri"] == ROOT


def test_preprocess_prints_the_whole_graph(no_credentials, tmp_path):
    result = run_batch(tmp_path, *PREPROCESS_ARGS, dry_run=True)
    assert result.returncode == 0, result.stderr[-5000:]
    (job,) = parse_dry_run(result.stdout)
    assert job["step"] == "PREPROCESS" and job["array_size"] == "4"
    assert shlex.split(job["command"])[4:] == [
        f"{ROOT}/split_images-config.json", "PREPROCESS", "--runner", "batch", "--num-splits", "4"
    ]  # fmt: skip
    said = dry_run_lines(result.stderr)
    assert said[0] == (
        f"dry run: cannot read {DEFAULT_TRAIN_STAC_URI} (no credentials); the job graph assumes "
        "the scenes are -a train_ids and -a valid_ids as given"
    )
    assert len(said) == 2 and said[1].startswith("No AWS credentials: not checked")
    assert_nothing_written(no_credentials)
    saved = tmp_path / "rv-tmp/benchmark-dry-run/my-bucket/oc/split_images-config.json"
    scenes = json.loads(saved.read_text())["scenes"]
    catalog_dir = DEFAULT_TRAIN_STAC_URI.rsplit("/", 1)[0]
    assert scenes[0]["image_uri"] == (
        f"{catalog_dir}/{scenes[0]['area']}/{scenes[0]['id']}/{scenes[0]['id']}.tif"
    )


@pytest.mark.parametrize("args", [BENCHMARK_ARGS, PREPROCESS_ARGS], ids=["benchmark", "preprocess"])
def test_a_real_run_without_credentials_is_one_line(no_credentials, tmp_path, args):
    result = run_batch(tmp_path, *args, dry_run=False)
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"error: {DEFAULT_TRAIN_STAC_URI}: {NO_CREDENTIALS_LINE}\n"
    assert_nothing_written(no_credentials)


def test_a_local_catalog_is_refused_before_the_graph(no_credentials, tmp_path):
    """Issue #29: the sample's scenes are on this machine, where no Batch job can read them."""
    args = [
        *PREPROCESS_ARGS, "-a", "train_stac_uri", "data/kampala_sample/train_tier_1/catalog.json",
        "-a", "train_ids", "kam/8a5983", "-a", "valid_ids", "kam/94f080",
    ]  # fmt: skip
    result = run_batch(tmp_path, *args, dry_run=True)
    assert result.returncode == 2, result.stderr
    # Before it, reading the catalog logs how many scenes it has: the error is the last line.
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.stderr.endswith(line + "\n")
    scene = REPO / "data/kampala_sample/train_tier_1/kam/8a5983"
    assert line.startswith(
        "error: 4 local paths, but batch jobs run on AWS and cannot reach this machine's files: "
        f"scenes[8a5983].image_uri {scene}/8a5983.tif (from -a train_stac_uri); "
    )
    assert line.endswith("give their s3:// URIs (nothing was submitted)")
    assert not parse_dry_run(result.stdout)
    assert_nothing_written(no_credentials)
