"""The shell scripts in docker/ and wb_scripts/: lint, help, one-line errors and dry runs.

``docker`` and ``aws`` are fakes on PATH that log their calls (and answer ``sts
get-caller-identity`` with a made-up account), so nothing here builds, pushes or reaches AWS.
"""

import os
import shlex
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest

from benchmark.data.submission import write_mask
from tests.fixtures.opencities import make_opencities_catalog

REPO = Path(__file__).resolve().parents[1]
SCRIPT_DIRS = ("docker", "wb_scripts")
ACCOUNT = "123456789012"
IMAGE = "raster-vision-wb-africa"
APP = "/opt/src/open-cities-benchmark"
# Settings a developer's shell may have that would change what the scripts do.
SCRIPT_SETTINGS = (
    "ROOT_URI",
    "EXPERIMENT_ID",
    "TRAIN_STAC_URI",
    "TEST_STAC_URI",
    "TEST_IMG_DIR",
    "TRAIN_IDS",
    "VALID_IDS",
    "SPLITS",
    "PROFILE",
    "COMMANDS",
    "BENCHMARK_IMAGE",
    "ECR_CPU_REPO",
    "ECR_GPU_REPO",
    "ECR_IMAGE_TAG",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "RASTER_VISION_DEBUG",
    "RV_TMP_DIR",
)


def _is_bash(path: Path) -> bool:
    first_line = path.read_text(errors="replace").partition("\n")[0]
    return (first_line.startswith("#!") and "bash" in first_line) or first_line.startswith(
        "# shellcheck shell=bash"
    )


SHELL_FILES = sorted(
    p for d in SCRIPT_DIRS for p in (REPO / d).iterdir() if p.is_file() and _is_bash(p)
)
SCRIPTS = [p for p in SHELL_FILES if p.read_text().startswith("#!")]


def ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(REPO)) for p in paths]


@pytest.fixture
def fakes(tmp_path, monkeypatch):
    """Fake ``docker`` and ``aws`` first on PATH; returns a function reading their call log."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    script = (
        '#!/usr/bin/env bash\necho "$(basename "$0") $*" >>"{log}"\n'
        'if [ "$1 $2" = "sts get-caller-identity" ]; then echo {account}; fi\n'
    )
    for name in ("docker", "aws"):
        path = bin_dir / name
        path.write_text(script.format(log=log, account=ACCOUNT))
        path.chmod(0o755)
    for name in SCRIPT_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return lambda: log.read_text().splitlines() if log.exists() else []


def run(script: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(REPO / script), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )


def dry_run_commands(result: subprocess.CompletedProcess) -> list[list[str]]:
    assert result.returncode == 0, result.stderr
    return [shlex.split(line) for line in result.stdout.splitlines()]


def has_run(words: list[str], part: list[str]) -> bool:
    """Whether ``part`` appears in ``words`` as consecutive words."""
    return any(words[i : i + len(part)] == part for i in range(len(words)))


class TestLint:
    def test_finds_the_scripts(self):
        names = set(ids(SHELL_FILES))
        assert {"docker/build", "docker/run", "docker/publish_image"} <= names
        assert {"wb_scripts/preprocess", "wb_scripts/benchmark", "wb_scripts/submit"} <= names
        assert "wb_scripts/_args.sh" in names

    @pytest.mark.parametrize("path", SHELL_FILES, ids=ids(SHELL_FILES))
    def test_shellcheck(self, path):
        shellcheck = REPO / ".venv" / "bin" / "shellcheck"
        result = subprocess.run(
            [str(shellcheck), "-x", str(path.relative_to(REPO))],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stdout

    def test_hadolint(self):
        hadolint = REPO / ".venv" / "bin" / "hadolint"
        result = subprocess.run(
            [str(hadolint), "docker/Dockerfile"], cwd=REPO, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout

    @pytest.mark.parametrize("path", SCRIPTS, ids=ids(SCRIPTS))
    def test_strict_mode_and_debug_switch(self, path):
        text = path.read_text()
        assert text.startswith("#!/usr/bin/env bash\n")
        assert "set -euo pipefail" in text
        assert "RASTER_VISION_DEBUG" in text


class TestHelp:
    @pytest.mark.parametrize("path", SCRIPTS, ids=ids(SCRIPTS))
    def test_help(self, path, fakes):
        result = run(str(path.relative_to(REPO)), "--help")
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"Usage: {path.name}")
        assert not fakes()

    @pytest.mark.parametrize(
        "script", ["docker/build", "docker/run", "docker/publish_image", "wb_scripts/benchmark"]
    )
    def test_unknown_option(self, script, fakes):
        result = run(script, "--frobnicate")
        assert result.returncode != 0
        assert result.stderr == "error: unknown option --frobnicate (see --help)\n"
        assert not fakes()


class TestTestRuns:
    """The tiny run that checks a setup has one name, ``test``, as ``-a test true`` has."""

    @pytest.mark.parametrize("script", ["wb_scripts/demo", "wb_scripts/ablation"])
    def test_help_offers_test(self, script, fakes):
        result = run(script, "--help")
        assert "[--test]" in result.stdout
        assert "--quick" not in result.stdout and "--smoke" not in result.stdout

    def test_demo_takes_the_old_name_with_a_warning(self, fakes):
        result = run("wb_scripts/demo", "--quick", "--frobnicate")  # stops before running
        assert result.returncode == 2
        assert result.stderr == (
            "warning: --quick is deprecated: it is now --test\n"
            "error: unknown option --frobnicate (see --help)\n"
        )


BENCHMARK_ENV = {"ROOT_URI": "s3://b/r", "EXPERIMENT_ID": "e", "TEST_STAC_URI": "t.json"}
SUBMIT_ENV = BENCHMARK_ENV
PUBLISH_ENV = {"ECR_CPU_REPO": "rv-cpu", "ECR_GPU_REPO": "rv-gpu", "AWS_REGION": "eu-west-1"}


class TestMissingSettings:
    @pytest.mark.parametrize(
        ("script", "env", "missing"),
        [
            ("wb_scripts/preprocess", {}, "ROOT_URI"),
            *[
                (script, {k: v for k, v in BENCHMARK_ENV.items() if k != name}, name)
                for script in ("wb_scripts/benchmark", "wb_scripts/submit")
                for name in ("ROOT_URI", "EXPERIMENT_ID")
            ],
            ("wb_scripts/benchmark", {"ROOT_URI": "r", "EXPERIMENT_ID": "e"}, "TEST_STAC_URI"),
            ("wb_scripts/submit", {"ROOT_URI": "r", "EXPERIMENT_ID": "e"}, "TEST_IMG_DIR"),
            *[
                ("docker/publish_image", {k: v for k, v in PUBLISH_ENV.items() if k != name}, name)
                for name in PUBLISH_ENV
            ],
        ],
    )
    def test_one_line_error_before_anything_runs(self, script, env, missing, fakes):
        result = run(script, **env)
        assert result.returncode == 1
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
        assert missing in result.stderr
        assert not result.stdout
        assert not fakes()

    def test_run_needs_home(self, fakes):
        result = subprocess.run(
            [str(REPO / "docker/run"), "--dry-run"],
            capture_output=True,
            text=True,
            env={k: v for k, v in os.environ.items() if k != "HOME"},
        )
        assert result.returncode == 1
        assert result.stderr.startswith("error: HOME is not set")

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--runner", "sagemaker"], "--runner must be batch, local or inprocess"),
            (["--runner", "local", "--dry-run"], "--dry-run shows the AWS Batch jobs"),
            (["--splits", "0"], "SPLITS must be a whole number above 0"),
            (["--splits"], "--splits needs a value"),
        ],
    )
    def test_bad_options(self, args, message, fakes):
        result = run("wb_scripts/preprocess", *args, ROOT_URI="s3://b/r")
        assert result.returncode == 1
        assert result.stderr.startswith(f"error: {message}") and result.stderr.count("\n") == 1


class TestDockerBuild:
    def test_dry_run_with_options(self, fakes):
        (cmd,) = dry_run_commands(
            run("docker/build", "--dry-run", "--tag", "me/bench:1", "--base", "rv", "--", "--pull")
        )
        assert cmd[2:6] == ["--build-arg", "BASE_IMAGE=rv", "--tag", "me/bench:1"]
        assert cmd[-2:] == ["--pull", str(REPO)]

    def test_builds(self, fakes):
        (printed,) = dry_run_commands(run("docker/build", "--dry-run"))
        assert run("docker/build").returncode == 0
        assert fakes()[-1] == " ".join(printed)  # after the daemon and base image checks


class TestDockerRun:
    BASE_MOUNTS = [
        "-v", f"{REPO}/data:/opt/data",
        "-v", f"{REPO}/data:{APP}/data",
        "-v", f"{REPO}/out:{APP}/out",
        "-e", f"TMPDIR={APP}/out/tmp",
        "-e", f"RV_TMP_DIR={APP}/out/tmp",
    ]  # fmt: skip

    def test_dry_run_default(self, fakes):
        (cmd,) = dry_run_commands(run("docker/run", "--dry-run"))
        assert cmd == [
            "docker",
            "run",
            "--rm",
            "--ipc=host",
            "-i",
            *self.BASE_MOUNTS,
            IMAGE,
            "bash",
        ]
        assert not fakes()

    @pytest.mark.parametrize(
        ("flags", "expected"),
        [
            (["--gpu"], ["--gpus", "all"]),
            (["--tensorboard"], ["-p", "6006:6006"]),
            (["--name", "bench"], ["--name", "bench"]),
            (
                ["--debug"],
                [
                    word
                    for d in ("benchmark", "rastervision", "wb_scripts")
                    for word in ("-v", f"{REPO}/{d}:{APP}/{d}")
                ],
            ),
        ],
    )
    def test_dry_run_flags(self, flags, expected, fakes):
        (cmd,) = dry_run_commands(run("docker/run", "--dry-run", *flags))
        assert has_run(cmd, expected), cmd
        assert cmd[-2:] == [IMAGE, "bash"]

    def test_aws_forwards_credentials_read_only(self, fakes):
        aws_dir = Path(os.environ["HOME"]) / ".aws"
        aws_dir.mkdir()
        (cmd,) = dry_run_commands(
            run("docker/run", "--dry-run", "--aws", AWS_PROFILE="dev", AWS_ACCESS_KEY_ID="AKIA1")
        )
        assert has_run(cmd, ["-e", "AWS_PROFILE=dev", "-v", f"{aws_dir}:/root/.aws:ro"])
        # Keys are named, not spelled out: docker copies their values from the environment.
        assert has_run(cmd, ["-e", "AWS_ACCESS_KEY_ID"])
        assert "AKIA1" not in " ".join(cmd)

    def test_without_aws_no_credentials(self, fakes):
        (Path(os.environ["HOME"]) / ".aws").mkdir()
        (cmd,) = dry_run_commands(run("docker/run", "--dry-run", AWS_ACCESS_KEY_ID="AKIA1"))
        assert not [w for w in cmd if "AWS" in w or ".aws" in w]

    def test_mounts_rastervision_profiles_and_runs_the_command(self, fakes):
        profiles = Path(os.environ["HOME"]) / ".rastervision"
        profiles.mkdir()
        (cmd,) = dry_run_commands(
            run("docker/run", "--dry-run", "--image", "mine", "wb_scripts/benchmark", "--help")
        )
        assert f"{profiles}:/root/.rastervision" in cmd
        assert cmd[-3:] == ["mine", "wb_scripts/benchmark", "--help"]

    def test_runs_docker(self, fakes):
        assert run("docker/run", "--gpu", "nvidia-smi").returncode == 0
        (call,) = fakes()
        assert call.startswith("docker run --rm --ipc=host -i --gpus all -v ")
        assert call.endswith(f"{IMAGE} nvidia-smi")


class TestPublishImage:
    REGISTRY = f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com"

    def test_dry_run(self, fakes):
        result = run("docker/publish_image", "--dry-run", **PUBLISH_ENV)
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [
            "aws ecr get-login-password --region eu-west-1 | docker login --username AWS "
            f"--password-stdin {self.REGISTRY}",
            f"docker tag {IMAGE} {self.REGISTRY}/rv-cpu:world-bank-challenge",
            f"docker push {self.REGISTRY}/rv-cpu:world-bank-challenge",
            f"docker tag {IMAGE} {self.REGISTRY}/rv-gpu:world-bank-challenge",
            f"docker push {self.REGISTRY}/rv-gpu:world-bank-challenge",
        ]
        # Only the read-only account lookup ran.
        assert fakes() == ["aws sts get-caller-identity --query Account --output text"]

    def test_flags_one_repo_and_no_lookup(self, fakes):
        result = run(
            "docker/publish_image", "--dry-run", "--account", "210987654321",
            "--cpu-repo", "rv", "--gpu-repo", "rv", "--region", "us-east-1", "--tag", "v2",
            "--image", "mine",
        )  # fmt: skip
        registry = "210987654321.dkr.ecr.us-east-1.amazonaws.com"
        assert result.stdout.splitlines()[1:] == [
            f"docker tag mine {registry}/rv:v2",
            f"docker push {registry}/rv:v2",
        ]
        assert not fakes()

    def test_bad_account(self, fakes):
        result = run("docker/publish_image", "--dry-run", "--account", "12", **PUBLISH_ENV)
        assert result.returncode == 1
        assert result.stderr == "error: '12' is not a 12-digit AWS account id\n"

    def test_publishes(self, fakes):
        assert run("docker/publish_image", **PUBLISH_ENV).returncode == 0
        calls = fakes()
        assert calls[:2] == [
            f"docker image inspect {IMAGE}",
            "aws sts get-caller-identity --query Account --output text",
        ]
        # The two sides of the login pipe run at the same time.
        assert sorted(calls[2:4]) == [
            "aws ecr get-login-password --region eu-west-1",
            f"docker login --username AWS --password-stdin {self.REGISTRY}",
        ]
        assert calls[4:] == [
            f"docker tag {IMAGE} {self.REGISTRY}/rv-cpu:world-bank-challenge",
            f"docker push {self.REGISTRY}/rv-cpu:world-bank-challenge",
            f"docker tag {IMAGE} {self.REGISTRY}/rv-gpu:world-bank-challenge",
            f"docker push {self.REGISTRY}/rv-gpu:world-bank-challenge",
        ]


class TestRastervisionWrappers:
    """The command the wrappers run (rastervision itself is a fake here)."""

    @pytest.fixture
    def fake_rastervision(self, fakes, tmp_path, monkeypatch):
        """A repo copy of wb_scripts without .venv, so the fake rastervision on PATH is used."""
        repo = tmp_path / "repo"
        (repo / "wb_scripts").mkdir(parents=True)
        for name in ("_args.sh", "preprocess", "benchmark"):
            target = repo / "wb_scripts" / name
            target.write_text((REPO / "wb_scripts" / name).read_text())
            target.chmod(0o755)
        fake = tmp_path / "fake-bin" / "rastervision"
        fake.write_text(
            '#!/usr/bin/env bash\nprintf "%s\\n" "dry_run=${BENCHMARK_BATCH_DRY_RUN:-}" "$@"\n'
        )
        fake.chmod(0o755)
        return repo

    def wrapper(self, repo: Path, script: str, *args: str, **env: str) -> list[str]:
        result = subprocess.run(
            [str(repo / "wb_scripts" / script), *args],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
        )
        assert result.returncode == 0, result.stderr
        assert result.stderr.startswith("+ rastervision ")
        return result.stdout.splitlines()

    def test_preprocess(self, fake_rastervision):
        words = self.wrapper(
            fake_rastervision, "preprocess", "--dry-run", "-v", "--", "split_size=6000", "-a",
            "x", "y", ROOT_URI="s3://b/root", TRAIN_IDS="kam/a,kam/b",
        )  # fmt: skip
        assert words == [
            "dry_run=1", "-p", "wbbenchmark", "-v", "run", "batch",
            "benchmark.experiments.split_images", "PREPROCESS",
            "-a", "root_uri", "s3://b/root", "-a", "train_ids", "kam/a,kam/b",
            "-s", "8", "-a", "split_size", "6000", "-a", "x", "y",
        ]  # fmt: skip

    def test_benchmark_locally(self, fake_rastervision):
        words = self.wrapper(
            fake_rastervision, "benchmark", "--runner", "inprocess", "--splits", "2",
            ROOT_URI="out/r", EXPERIMENT_ID="e1", TEST_IMG_DIR="data/test",
            COMMANDS="predict eval", RV_TMP_DIR="/tmp/rv",
        )  # fmt: skip
        assert words == [
            "dry_run=", "--tmpdir", "/tmp/rv", "run", "inprocess",
            "benchmark.experiments.benchmark", "predict", "eval",
            "-a", "root_uri", "out/r", "-a", "experiment_id", "e1",
            "-a", "test_img_dir", "data/test", "-s", "2",
        ]  # fmt: skip

    def test_benchmark_profile_for_local_runs_only_when_asked(self, fake_rastervision):
        env = {**BENCHMARK_ENV, "PROFILE": "mine"}
        words = self.wrapper(fake_rastervision, "benchmark", "--runner", "local", **env)
        assert words[1:3] == ["-p", "mine"] and words[-2:] == ["-s", "10"]


class TestSubmit:
    SIZE = 16

    @pytest.fixture
    def experiment(self, tmp_path):
        """A test catalog and an experiment root whose POSTPROCESS wrote every mask."""
        catalog = make_opencities_catalog(tmp_path / "data", test_chip_size=self.SIZE)
        masks = tmp_path / "root" / "postprocess" / "e1"
        rng = np.random.default_rng(0)
        for chip_id in catalog.test_chip_ids:
            write_mask(
                rng.integers(0, 2, (self.SIZE, self.SIZE), dtype=np.uint8), f"{masks}/{chip_id}.tif"
            )
        env = {
            "ROOT_URI": str(tmp_path / "root"),
            "EXPERIMENT_ID": "e1",
            "TEST_STAC_URI": catalog.test_catalog_uri,
        }
        return catalog, masks, env

    def submit(self, tmp_path, env) -> tuple[subprocess.CompletedProcess, Path]:
        out = tmp_path / "sub" / "submission.tgz"
        result = run("wb_scripts/submit", "--out", str(out), "--size", str(self.SIZE), **env)
        return result, out

    def test_packs_local_masks(self, experiment, tmp_path):
        catalog, _, env = experiment
        result, out = self.submit(tmp_path, env)
        assert result.returncode == 0, result.stderr
        with tarfile.open(out) as tar:
            assert sorted(tar.getnames()) == sorted(f"{i}.tif" for i in catalog.test_chip_ids)
        assert result.stdout == f"{out}: 2 masks; upload it on the competition's submission page\n"

    def test_missing_mask_is_one_line_and_no_archive(self, experiment, tmp_path):
        catalog, masks, env = experiment
        (masks / f"{catalog.test_chip_ids[0]}.tif").unlink()
        result, out = self.submit(tmp_path, env)
        assert result.returncode == 2  # bad input: benchmark submit's one error path
        assert result.stderr.count("\n") == 1
        assert f"{catalog.test_chip_ids[0]}.tif: missing" in result.stderr
        assert not out.exists()

    def test_no_postprocess_output(self, experiment, tmp_path):
        _, _, env = experiment
        result, _ = self.submit(tmp_path, {**env, "EXPERIMENT_ID": "other"})
        assert result.returncode == 2
        assert "postprocess/other: no such directory" in result.stderr

    @pytest.mark.aws
    def test_downloads_masks_from_s3(self, experiment, tmp_path, s3_upload):
        catalog, masks, env = experiment
        root = s3_upload(masks, "s3://bench-submit/root/postprocess/e1").removesuffix(
            "/postprocess/e1"
        )
        result, out = self.submit(tmp_path, {**env, "ROOT_URI": root})
        assert result.returncode == 0, result.stderr
        downloaded = sorted(p.name for p in (out.parent / "masks").iterdir())
        assert downloaded == sorted(f"{i}.tif" for i in catalog.test_chip_ids)
        with tarfile.open(out) as tar:
            assert len(tar.getnames()) == len(catalog.test_chip_ids)
