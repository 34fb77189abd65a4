"""Shared fixtures: the repository root, off-screen matplotlib, and moto standing in for AWS.

Helpers that are plain functions (tiny rasters, stand-in models, building boxes) live in
``tests/fixtures/`` and are imported from there; test modules never import each other.

Tests that talk to "AWS" use ``aws_env`` and the ``aws`` marker. Every AWS client in the test
and in any subprocess it starts (boto3, the aws CLI, GDAL's /vsis3/, Raster Vision) then talks
to moto on 127.0.0.1, with fake credentials; HTTPS, which every real AWS endpoint needs, goes
to a closed local port, so nothing can reach real AWS even by mistake.
"""

import base64
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from benchmark.data.retries import RETRY_DEFAULTS
from tests.fixtures.cli import CHIP, run_whole_pipeline
from tests.fixtures.opencities import make_opencities_catalog
from tools.s3_fault_proxy import S3FaultProxy, client_environment, fake_aws_environment

# Credential and endpoint sources that could point a client at a real account.
AWS_LEAKS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_NO_SIGN_REQUEST",
)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one worker per core, at most 4.

    Every worker starts its own session fixtures (moto, the end-to-end run of ``finished_run``),
    so beyond a few workers they cost more than the parallelism gains.
    """
    return max(1, min(len(os.sched_getaffinity(0)), 4))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository's root directory (scripts, ``wb_scripts/``, ``pyproject.toml``)."""
    return Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _offscreen_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test (or subprocess of one) opens a window or needs a display."""
    monkeypatch.setenv("MPLBACKEND", "agg")


@pytest.fixture(autouse=True)
def _quiet_by_default() -> Iterator[None]:
    """Each test starts without ``-v`` (ours or Raster Vision's): one test's -v leaks no traceback
    into the one-line errors another test checks in the same worker process."""
    from rastervision.pipeline import rv_config_
    from rastervision.pipeline.verbosity import Verbosity

    from benchmark import console

    console.set_verbose(False)
    rv_config_.set_verbosity(Verbosity.NORMAL)
    yield


@pytest.fixture(autouse=True)
def plan_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The measured plans' cache of every test (and its subprocesses): never the user's."""
    from benchmark.inference.plan_choice import CACHE_ENV  # torch: after the session starts

    folder = tmp_path / "plan-cache"
    monkeypatch.setenv(CACHE_ENV, str(folder))
    return folder / "plans.json"


@pytest.fixture
def fake_gpus(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """``fake_gpus(n)``: ``torch.cuda`` reports ``n`` GPUs (0: no CUDA), whatever is here.

    Only what is asked changes: nothing can run on them.
    """
    import torch  # after the session starts, as above

    def have(n: int) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)

    return have


@pytest.fixture
def cuda_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any use of ``torch.cuda`` (asking for a GPU, initialising CUDA) fails the test."""
    import torch

    def touched(*_: object, **__: object) -> None:
        raise AssertionError("torch.cuda was touched")

    for name in ("is_available", "device_count", "init", "_lazy_init", "current_device"):
        monkeypatch.setattr(torch.cuda, name, touched)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class MotoServer:
    """A ``moto_server`` process on 127.0.0.1 that records the requests it is sent."""

    host: str
    port: int

    @property
    def url(self) -> str:
        """The endpoint URL AWS clients are pointed at."""
        return f"http://{self.host}:{self.port}"

    def moto_api(self, path: str, payload: dict | None = None) -> bytes:
        """POST to moto's own control API (``/moto-api/...``)."""
        data = json.dumps(payload or {}).encode()
        request = urllib.request.Request(f"{self.url}/moto-api/{path}", data=data, method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read()

    def reset(self) -> None:
        """Forget every bucket, job queue, job... and every recorded request."""
        self.moto_api("reset")
        self.moto_api("recorder/reset-recording")

    def recorded_requests(self) -> list[dict]:
        """The AWS requests sent since the last reset, oldest first (method, url, body text)."""
        with urllib.request.urlopen(f"{self.url}/moto-api/recorder/download-recording") as resp:
            lines = resp.read().decode().splitlines()
        requests = [json.loads(line) for line in lines if line.strip()]
        for request in requests:
            if request.pop("body_encoded"):
                request["body"] = base64.b64decode(request["body"]).decode(errors="replace")
        return requests


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """Start ``moto_server`` once for the session; stop it at the end.

    A separate process, so moto's request recorder writes to a file of ours and moto's state
    cannot leak into the tests' own imports. Batch jobs are only recorded, never run (there is
    no Docker engine here, and the benchmark's jobs need a GPU anyway).
    """
    server = MotoServer("127.0.0.1", _free_port())
    recording = tmp_path_factory.mktemp("moto") / "requests.jsonl"
    env = {**os.environ, "MOTO_RECORDER_FILEPATH": str(recording)}
    moto = Path(sys.executable).with_name("moto_server")
    process = subprocess.Popen(
        [str(moto), "-H", server.host, "-p", str(server.port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                server.moto_api("config", {"batch": {"use_docker": False}})
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start on {server.url}") from None
                time.sleep(0.2)
        server.moto_api("recorder/start-recording")
        yield server
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, moto_server: MotoServer, tmp_path: Path) -> MotoServer:
    """Point every AWS client at a freshly reset moto server, with fake credentials."""
    moto_server.reset()
    for name in AWS_LEAKS:
        monkeypatch.delenv(name, raising=False)
    settings = fake_aws_environment(moto_server.url, tmp_path)
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    return moto_server


@pytest.fixture
def faulty_s3(aws_env: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3FaultProxy]:
    """``aws_env`` through a proxy that fails the S3 requests its rules pick (none at first).

    Every client (boto3, this venv's aws CLI, GDAL) goes through ``tools/s3_fault_proxy.py``
    with the retry defaults of ``benchmark.data.retries``; a test sets ``proxy.set_rules``.
    """
    with S3FaultProxy(aws_env.url) as proxy:
        for name, value in {**RETRY_DEFAULTS, **client_environment(proxy.url)}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
        yield proxy


@pytest.fixture
def s3_upload(aws_env: MotoServer) -> Callable[[Path, str], str]:
    """A function copying a local directory tree to ``s3://bucket/prefix`` (made if needed)."""
    s3 = boto3.client("s3")

    def upload(local_dir: Path, uri: str) -> str:
        bucket, _, prefix = uri.removeprefix("s3://").rstrip("/").partition("/")
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=bucket)
        for path in sorted(Path(local_dir).rglob("*")):
            if path.is_file():
                key = str(Path(prefix, path.relative_to(local_dir)))
                s3.upload_file(str(path), bucket, key)
        return uri.rstrip("/")

    return upload


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """PREPROCESS and the six benchmark commands on a tiny catalog (about a minute).

    Returns:
        ``root``: the run's root (a Path); ``catalog``: the generated catalog.
    """
    tmp_path = tmp_path_factory.mktemp("e2e")
    catalog = make_opencities_catalog(tmp_path / "data", test_chip_size=CHIP)
    root = tmp_path / "out"
    run_whole_pipeline(catalog, str(root), tmp_path)
    return {"root": root, "catalog": catalog}


@pytest.fixture
def few_s3_attempts(faulty_s3: S3FaultProxy, monkeypatch: pytest.MonkeyPatch) -> S3FaultProxy:
    """``faulty_s3`` with two attempts per request (boto3, aws CLI) and one GDAL retry.

    For faults meant to outlast the retries: they give up in seconds, not minutes.
    """
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "1")
    return faulty_s3
