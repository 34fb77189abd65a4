"""docker/: one-line errors (exit 2) where the machine cannot build or run the image; dry runs.

No Docker engine is needed: ``docker`` is a fake on PATH whose answers each test chooses (or
there is none at all), so nothing is built or run. docker/check itself, which builds and runs
the image, is opt-in (docs/docker.md).
"""

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
IMAGE = "raster-vision-wb-africa"
DEFAULT_BASE = "python:3.11-slim-bookworm"
APP = "/opt/src/open-cities-benchmark"
# What the scripts use besides docker: a PATH of only these has no docker client.
TOOLS = (
    "bash", "env", "dirname", "basename", "cat", "cut", "tr", "ls", "mkdir", "realpath",
    "sha256sum", "id", "seq", "sleep", "date", "awk", "sed", "head", "mktemp", "rm", "timeout",
    "find", "sort", "tar", "git", "cp", "wc",
)  # fmt: skip
SETTINGS = ("BENCHMARK_IMAGE", "DOCKER_HOST", "RASTER_VISION_DEBUG", "AWS_PROFILE")


def pins() -> list[tuple[str, str]]:
    """The name==version pins of requirements.txt."""
    found = []
    for line in (REPO / "requirements.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)==([^\s;#]+)", line.strip())
        if match:
            found.append((match[1], match[2]))
    return found


@pytest.fixture
def tools_only(tmp_path) -> Path:
    """A bin directory with the scripts' tools but no docker, mmdebstrap or dockerd."""
    bin_dir = tmp_path / "tools"
    bin_dir.mkdir()
    for tool in TOOLS:
        # git is optional (docker/check only names the commit); the image has none.
        found = shutil.which(tool)
        assert found or tool == "git", tool
        if found:
            (bin_dir / tool).symlink_to(found)
    return bin_dir


@pytest.fixture
def fake_docker(tools_only, tmp_path):
    """Install a fake ``docker``: ``fake_docker(**exit_codes)`` sets the status per subcommand.

    Keys are the first word(s) of a call with spaces as underscores (``version``,
    ``image_inspect``, ``pull``, ``build``, ``run``); unlisted calls succeed. Returns a function
    reading the calls made.
    """
    log = tmp_path / "docker.log"

    def install(**codes: int):
        cases = "\n".join(
            f'    "{key.replace("_", " ")}"*) exit {code} ;;' for key, code in codes.items()
        )
        script = (
            f'#!/usr/bin/env bash\necho "docker $*" >>"{log}"\ncase "$*" in\n{cases}\n'
            "    *) exit 0 ;;\nesac\n"
        )
        path = tools_only / "docker"
        path.write_text(script)
        path.chmod(0o755)
        return lambda: log.read_text().splitlines() if log.exists() else []

    return install


def run(script: str, *args: str, path: Path | None = None, **env: str):
    environ = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    if path is not None:
        environ["PATH"] = str(path)
    return subprocess.run(
        [str(REPO / script), *args],
        capture_output=True,
        text=True,
        env={**environ, **env},
        timeout=60,
    )


def one_line_error(result, status: int, *words: str) -> None:
    assert result.returncode == status, (result.stdout, result.stderr)
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def make_wheelhouse(directory: Path, skip: str | None = None) -> Path:
    """Empty files named as pip names wheels and sdists, one per pin (but ``skip``)."""
    directory.mkdir()
    for number, (name, version) in enumerate(pins()):
        if name == skip:
            continue
        # Wheels name the project with underscores and often lower case; a few are sdists.
        if number % 7 == 3:
            (directory / f"{name}-{version}.tar.gz").touch()
        else:
            wheel_name = re.sub(r"[-.]+", "_", name)
            wheel_name = wheel_name.lower() if number % 2 else wheel_name
            (directory / f"{wheel_name}-{version}-py3-none-any.whl").touch()
    return directory


class TestNoDocker:
    @pytest.mark.parametrize(
        "script",
        ["docker/build", "docker/run", "docker/check", "docker/local_base"],
    )
    def test_no_client(self, script, tools_only):
        result = run(script, path=tools_only)
        one_line_error(result, 2, "no docker client on PATH", "install Docker")

    @pytest.mark.parametrize("script", ["docker/build", "docker/local_base"])
    def test_no_daemon(self, script, fake_docker, tools_only):
        calls = fake_docker(version=1)
        result = run(script, path=tools_only, DOCKER_HOST="unix:///nowhere.sock")
        one_line_error(result, 2, "no Docker daemon answers at unix:///nowhere.sock")
        assert not [c for c in calls() if not c.startswith("docker version")]

    def test_check_without_daemon_or_dockerd(self, fake_docker, tools_only):
        # No daemon answers and there is no dockerd to start a private one.
        fake_docker(version=1)
        result = run("docker/check", path=tools_only)
        one_line_error(result, 2, "no Docker daemon answers")

    def test_run_without_daemon(self, fake_docker, tools_only):
        # docker run fails before the command (125); the reason is then found and named.
        fake_docker(run=125, version=1)
        result = run("docker/run", "true", path=tools_only, HOME=str(tools_only))
        one_line_error(result, 2, "no Docker daemon answers")


class TestMissingImages:
    def test_base_image_not_there(self, fake_docker, tools_only):
        calls = fake_docker(image_inspect=1, pull=1)
        result = run("docker/build", "--base", "nowhere/python:3.11", path=tools_only)
        one_line_error(result, 2, "base image nowhere/python:3.11", "docker/local_base")
        assert not [c for c in calls() if c.startswith("docker build")]

    def test_base_image_pulled(self, fake_docker, tools_only):
        calls = fake_docker(image_inspect=1)
        result = run("docker/build", path=tools_only)
        assert result.returncode == 0, result.stderr
        assert f"docker pull --quiet {DEFAULT_BASE}" in calls()
        assert calls()[-1].startswith(f"docker build --build-arg BASE_IMAGE={DEFAULT_BASE} ")

    def test_check_with_missing_base(self, fake_docker, tools_only):
        fake_docker(image_inspect=1, pull=1)
        result = run("docker/check", "--base", "gone:1", path=tools_only)
        one_line_error(result, 2, "base image gone:1")

    def test_run_without_image(self, fake_docker, tools_only):
        fake_docker(run=125, image_inspect=1)
        result = run("docker/run", "--image", "gone", "true", path=tools_only, HOME=str(tools_only))
        assert result.returncode == 2
        assert result.stderr.splitlines()[-1].startswith("error: no image gone")

    def test_run_passes_the_command_status(self, fake_docker, tools_only):
        fake_docker(run=3)
        result = run("docker/run", "false", path=tools_only, HOME=str(tools_only))
        assert result.returncode == 3
        assert not result.stderr


class TestWheelhouse:
    def test_missing_pin(self, tmp_path, fake_docker, tools_only):
        calls = fake_docker()
        wheels = make_wheelhouse(tmp_path / "wheels", skip="torch")
        torch = dict(pins())["torch"]
        result = run("docker/build", "--wheelhouse", str(wheels), path=tools_only)
        one_line_error(result, 2, f"has no torch=={torch}", f"docker/wheelhouse {wheels}")
        assert not calls()

    def test_missing_directory(self, tmp_path):
        result = run("docker/build", "--dry-run", "--wheelhouse", str(tmp_path / "none"))
        one_line_error(result, 2, "does not exist", "docker/wheelhouse")

    def test_check_with_incomplete_wheelhouse(self, tmp_path, fake_docker, tools_only):
        fake_docker()
        wheels = make_wheelhouse(tmp_path / "wheels", skip="numpy")
        result = run("docker/check", "--base", "b", "--wheelhouse", str(wheels), path=tools_only)
        one_line_error(result, 2, "has no numpy==")

    def test_offline_build_dry_run(self, tmp_path):
        wheels = make_wheelhouse(tmp_path / "wheels")
        result = run("docker/build", "--dry-run", "--wheelhouse", str(wheels), "--base", "b:1")
        assert result.returncode == 0, result.stderr
        wheels_build, build = (shlex.split(line) for line in result.stdout.splitlines())
        tag = wheels_build[wheels_build.index("--tag") + 1]
        assert tag.startswith("open-cities-wheelhouse:")
        assert wheels_build[-3:] == ["--file", f"{REPO}/docker/Dockerfile.wheels", str(wheels)]
        assert "BASE_IMAGE=b:1" in wheels_build
        assert build[:6] == ["docker", "build", "--build-arg", "BASE_IMAGE=b:1", "--tag", IMAGE]
        assert f"WHEELS_IMAGE={tag}" in build and "PIP_OFFLINE=true" in build
        assert build[-1] == str(REPO)

    def test_wheels_image_made_once(self, tmp_path, fake_docker, tools_only):
        calls = fake_docker()  # every image is there
        wheels = make_wheelhouse(tmp_path / "wheels")
        result = run("docker/build", "--wheelhouse", str(wheels), path=tools_only)
        assert result.returncode == 0, result.stderr
        builds = [c for c in calls() if c.startswith("docker build")]
        assert len(builds) == 1 and "PIP_OFFLINE=true" in builds[0]

    def test_download_dry_run(self, tmp_path):
        result = run("docker/wheelhouse", "--dry-run", str(tmp_path / "w"))
        assert result.returncode == 0, result.stderr
        (cmd,) = (shlex.split(line) for line in result.stdout.splitlines())
        assert cmd[1:5] == ["-m", "pip", "download", "--disable-pip-version-check"]
        assert ["--dest", str(tmp_path / "w")] == cmd[5:7]
        assert "--only-binary=:all:" in cmd and "manylinux2014_x86_64" in cmd
        assert cmd[-2:] == ["-r", f"{REPO}/requirements.txt"]
        assert not (tmp_path / "w").exists()


class TestDryRuns:
    def test_build_default_base(self):
        result = run("docker/build", "--dry-run")
        assert result.returncode == 0, result.stderr
        assert shlex.split(result.stdout) == [
            "docker", "build", "--build-arg", f"BASE_IMAGE={DEFAULT_BASE}", "--tag", IMAGE,
            "--file", f"{REPO}/docker/Dockerfile", str(REPO),
        ]  # fmt: skip

    def test_build_other_context(self, tmp_path):
        result = run("docker/build", "--dry-run", "--context", str(tmp_path))
        one_line_error(result, 1, "is not a copy of this repository")
        (tmp_path / "requirements.txt").write_text("six==1.17.0\n")
        result = run("docker/build", "--dry-run", "--context", str(tmp_path))
        assert shlex.split(result.stdout)[-1] == str(tmp_path)

    def test_run_as_me_offline_with_tests(self, tmp_path):
        (tmp_path / ".rastervision").mkdir()
        result = run(
            "docker/run", "--dry-run", "--as-me", "--offline", "--tests", "pytest",
            HOME=str(tmp_path),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        cmd = shlex.split(result.stdout)
        text = " ".join(cmd)
        assert f"--user {os.getuid()}:{os.getgid()}" in text
        assert f"-e HOME={APP}/out/tmp/home" in text
        assert "--network none" in text
        assert f"-v {tmp_path}/.rastervision:/opt/rastervision:ro -e RV_CONFIG_DIR=" in text
        assert f"-v {REPO}/tests:{APP}/tests:ro" in text
        assert f"-v {REPO}/docker:{APP}/docker:ro" in text
        assert cmd[-2:] == [IMAGE, "pytest"]

    def test_local_base_dry_run(self):
        result = run("docker/local_base", "--dry-run", "--tag", "base:x")
        assert result.returncode == 0, result.stderr
        mmdebstrap, move, load = (shlex.split(line) for line in result.stdout.splitlines())
        assert mmdebstrap[:3] == ["mmdebstrap", "--variant=minbase", "--format=tar"]
        assert "python3,python3-venv,ca-certificates,netbase,tzdata" in mmdebstrap[3]
        assert "bookworm" in mmdebstrap
        assert move[0] == "mv"
        assert load[:2] == ["docker", "import"] and load[-1] == "base:x"


class TestBadOptions:
    @pytest.mark.parametrize(
        ("script", "args", "message"),
        [
            ("docker/check", ["--step-timeout", "soon"], "--step-timeout must be a whole number"),
            ("docker/check", ["--out", "/tmp/x"], "--out must be under"),
            ("docker/check", ["--frobnicate"], "unknown option --frobnicate"),
            ("docker/dockerd", [], "start, stop or status?"),
            ("docker/dockerd", ["start", "stop"], "one of start, stop, status"),
            ("docker/dockerd", ["--timeout", "0", "status"], "--timeout must be a whole number"),
            ("docker/wheelhouse", ["a", "b"], "one DIR only"),
            ("docker/local_base", ["--tag"], "--tag needs a value"),
        ],
    )
    def test_one_line(self, script, args, message, fake_docker, tools_only):
        calls = fake_docker()
        result = run(script, *args, path=tools_only)
        one_line_error(result, 1, message)
        assert not calls()


class TestLint:
    def test_hadolint_wheels_dockerfile(self):
        result = subprocess.run(
            [str(REPO / ".venv/bin/hadolint"), "docker/Dockerfile.wheels"],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stdout

    def test_check_is_opt_in(self):
        # docker/check builds images for many minutes: the test suite never runs it.
        for path in [REPO / "wb_scripts" / "test", REPO / ".ci" / "run"]:
            # (In the image, where docker/check runs this file, there is no .ci/.)
            assert not path.exists() or "docker/check" not in path.read_text()
