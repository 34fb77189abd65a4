"""``python -m tools.fault_table``: S3 faults against each S3 client, measured, as a docs table.

Starts moto (``moto_server`` on 127.0.0.1: nothing reaches AWS) behind the proxy of
:mod:`tools.s3_fault_proxy` and, with the retry defaults of :mod:`benchmark.data.retries`,
measures each client the pipeline reaches S3 with:

- ``boto3``: our outputs and Raster Vision's downloads: 4 objects downloaded, uploaded back;
- ``aws CLI``: ``aws s3 sync``, training's output sync: the same 4 objects synced both ways;
- ``GDAL /vsis3/``: pixel reads: 4 tiled GeoTIFFs read whole with rasterio.

For each fault kind, ``--runs`` runs with every other request of the transfer (its objects,
not listings) failing that way, against as many runs without faults: faults injected, retries
seen (requests beyond the fault-free runs'), time cost (median against median) and outputs
lost (objects missing or different afterwards, or a run that failed; the goal is none). Then
a ``SlowDown`` that never ends, once per client: how long until it gives up, how many attempts
it made, and the one-line error our code turns it into.

Writes the table between the markers of ``docs/faults.md`` (``## S3 faults``) and everything
measured to ``docs/s3_faults.json``. About 5 minutes, most of it the persistent faults.
"""

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import boto3
import numpy as np
import rasterio

from benchmark.data.retries import RETRY_DEFAULTS, apply_retry_defaults
from tools.s3_fault_proxy import (
    CUT_FAULTS,
    FAULT_KINDS,
    FaultRule,
    S3FaultProxy,
    fake_aws_environment,
)

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "faults.md"
JSON_OUT = REPO / "docs" / "s3_faults.json"
START, END = "<!-- s3-fault-table:start -->", "<!-- s3-fault-table:end -->"
BUCKET = "fault-table"
OBJECTS = 4
CLIENTS = {"boto3": "^Boto3/", "aws CLI": "^aws-cli/", "GDAL /vsis3/": "^GDAL/"}
COMMAND = "python -m tools.fault_table"

Transfer = Callable[[str, Path], int]  # (prefix, scratch dir) -> outputs lost


def _prefix(*parts: object) -> str:
    """A run's key prefix: its fault, client and number, in URL-safe characters."""
    return "/".join(re.sub(r"[^a-z0-9_]+", "-", str(part).lower()).strip("-") for part in parts)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_moto() -> tuple[subprocess.Popen, str]:
    """A ``moto_server`` on a free local port, and its URL."""
    port = _free_port()
    moto = Path(sys.executable).with_name("moto_server")
    process = subprocess.Popen(
        [str(moto), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=5).read()
            return process, url
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto_server did not start on {url}") from None
            time.sleep(0.2)


def use_fake_aws(proxy_url: str, scratch: Path) -> None:
    """Send the AWS clients of this process to the proxy (:func:`fake_aws_environment`)."""
    os.environ.update(
        {
            **fake_aws_environment(proxy_url, scratch),
            "NO_ALBUMENTATIONS_UPDATE": "1",  # imported with our code: no version check
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        }
    )
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", *RETRY_DEFAULTS):
        os.environ.pop(name, None)
    apply_retry_defaults()


class Objects:
    """The objects each run transfers, put on moto directly (not through the proxy)."""

    def __init__(self, moto_url: str) -> None:
        self.s3 = boto3.client("s3", endpoint_url=moto_url)
        self.s3.create_bucket(Bucket=BUCKET)
        rng = np.random.default_rng(0)
        self.blobs = [rng.bytes(256_000) for _ in range(OBJECTS)]
        self.rasters = [rng.integers(0, 256, (4, 256, 256), dtype=np.uint8) for _ in self.blobs]
        self.tifs = []
        for i, pixels in enumerate(self.rasters):
            path = Path(tempfile.mkdtemp()) / f"{i}.tif"
            with rasterio.open(
                path, "w", driver="GTiff", width=256, height=256, count=4, dtype="uint8",
                tiled=True, blockxsize=64, blockysize=64, crs="EPSG:32636",
                transform=rasterio.transform.from_origin(455_000, 39_000, 0.075, 0.075),
            ) as dst:  # fmt: skip
                dst.write(pixels)
            self.tifs.append(path.read_bytes())

    def put(self, prefix: str) -> None:
        """Put a run's objects under ``{prefix}/in/``."""
        for i, (blob, tif) in enumerate(zip(self.blobs, self.tifs, strict=True)):
            self.s3.put_object(Bucket=BUCKET, Key=f"{prefix}/in/{i}.bin", Body=blob)
            self.s3.put_object(Bucket=BUCKET, Key=f"{prefix}/in/{i}.tif", Body=tif)

    def lost_copies(self, prefix: str) -> int:
        """Uploaded copies (``{prefix}/out/{i}.bin``) missing or different."""
        lost = 0
        for i, blob in enumerate(self.blobs):
            try:
                got = self.s3.get_object(Bucket=BUCKET, Key=f"{prefix}/out/{i}.bin")
                lost += got["Body"].read() != blob
            except self.s3.exceptions.NoSuchKey:
                lost += 1
        return lost


def boto3_transfer(objects: Objects) -> Transfer:
    """Download each blob and upload it back, as RV downloads and our outputs are written."""

    def run(prefix: str, scratch: Path) -> int:
        s3 = boto3.client("s3")
        for i in range(OBJECTS):
            s3.download_file(BUCKET, f"{prefix}/in/{i}.bin", str(scratch / f"{i}.bin"))
            s3.upload_file(str(scratch / f"{i}.bin"), BUCKET, f"{prefix}/out/{i}.bin")
        return objects.lost_copies(prefix)

    return run


def cli_transfer(objects: Objects) -> Transfer:
    """``aws s3 sync`` the blobs down and back up, as training's output sync does."""

    def run(prefix: str, scratch: Path) -> int:
        for src, dst in ((f"s3://{BUCKET}/{prefix}/in", scratch),
                         (scratch, f"s3://{BUCKET}/{prefix}/out")):  # fmt: skip
            command = ["aws", "s3", "sync", str(src), str(dst), "--exclude", "*.tif"]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(done.stderr.strip().splitlines()[-1])
        return objects.lost_copies(prefix)

    return run


def gdal_transfer(objects: Objects) -> Transfer:
    """Read each GeoTIFF whole through ``/vsis3/`` and compare its pixels."""

    def run(prefix: str, scratch: Path) -> int:
        lost = 0
        for i, pixels in enumerate(objects.rasters):
            with rasterio.open(f"s3://{BUCKET}/{prefix}/in/{i}.tif") as src:
                lost += not np.array_equal(src.read(), pixels)
        return lost

    return run


def rules_for(kind: str, client: str, prefix: str, persistent: bool = False) -> list[FaultRule]:
    """``kind`` on every other request (or every one) of ``client`` for a run's objects."""
    gdal = client.startswith("GDAL")
    method = "GET" if gdal else "GET|PUT|HEAD"  # a cut POST (multipart) is not retryable
    path = f"^/{BUCKET}/{prefix}/.*" + (r"\.tif$" if gdal else r"\.bin$")
    return [FaultRule(kind, method, path, CLIENTS[client], every=1 if persistent else 2)]


def one_run(proxy: S3FaultProxy, transfer: Transfer, objects: Objects, prefix: str) -> dict:
    """One transfer under the proxy's current rules: time, outputs lost, error, counts."""
    objects.put(prefix)
    proxy.reset()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        try:
            lost, error = transfer(prefix, Path(scratch)), None
        except Exception as exc:
            lost, error = OBJECTS, f"{type(exc).__name__}: {exc}".splitlines()[0][:160]
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "lost": lost, "error": error, **proxy.counts()}


def measure_transient(
    proxy: S3FaultProxy, transfers: dict[str, Transfer], objects: Objects, runs: int
) -> list[dict]:
    """A row per fault kind and client: runs with the fault against runs without."""
    rows = []
    for client, transfer in transfers.items():
        proxy.set_rules([])
        clean = [
            one_run(proxy, transfer, objects, _prefix("clean", client, r)) for r in range(runs)
        ]
        base_s = statistics.median(r["seconds"] for r in clean)
        base_requests = statistics.median(r["requests"] for r in clean)
        for kind in FAULT_KINDS:
            done = []
            for r in range(runs):
                prefix = _prefix(kind, client, r)
                proxy.set_rules(rules_for(kind, client, prefix))
                done.append(one_run(proxy, transfer, objects, prefix))
            faulty_s = statistics.median(r["seconds"] for r in done)
            rows.append(
                {
                    "kind": kind,
                    "client": client,
                    "runs": runs,
                    "faults": sum(r["faults"] for r in done),
                    "retries": round(sum(r["requests"] for r in done) - runs * base_requests),
                    "seconds": faulty_s,
                    "clean_seconds": base_s,
                    "failed_runs": sum(r["error"] is not None for r in done),
                    "lost": sum(r["lost"] for r in done),
                    "errors": sorted({r["error"] for r in done if r["error"]}),
                }
            )
            print(f"{kind:15s} {client:13s} {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def one_line_error(client: str, prefix: str) -> Callable[[], None]:
    """The call of our code that reaches S3 with ``client``; it raises the one-line error."""
    from benchmark.data.imagery import open_scene_checked
    from benchmark.data.s3_file_system import aws_sync
    from benchmark.data.uris import read_json

    uri = f"s3://{BUCKET}/{prefix}/in"
    if client == "boto3":
        return lambda: read_json(f"{uri}/0.bin")
    if client == "aws CLI":
        return lambda: aws_sync(uri, tempfile.mkdtemp(), exclude=["*.tif"])
    return lambda: open_scene_checked(f"{uri}/0.tif").read()


def measure_persistent(proxy: S3FaultProxy, objects: Objects) -> list[dict]:
    """A ``SlowDown`` on every request, once per client, through our code's own calls."""
    rows = []
    for client in CLIENTS:
        prefix = _prefix("persistent", client)
        objects.put(prefix)
        proxy.reset()
        if client.startswith("GDAL"):  # our code asks boto3 why GDAL failed: it fails too
            proxy.set_rules([FaultRule.persistent("slow_down", "GET", f"^/{BUCKET}/{prefix}/")])
        else:
            proxy.set_rules(rules_for("slow_down", client, prefix, persistent=True))
        start = time.perf_counter()
        try:
            one_line_error(client, prefix)()
            message = "no error"
        except Exception as exc:
            message = str(exc)
        counts = proxy.counts()
        rows.append(
            {
                "kind": "slow_down (persistent)",
                "client": client,
                "seconds": time.perf_counter() - start,
                "requests": counts["requests"],
                "message": message,
                "one_line": "\n" not in message and message.startswith("s3://"),
            }
        )
        print(f"persistent     {client:13s} {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def cpu_name() -> str:
    """The CPU model (``/proc/cpuinfo``) and the number of cores."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        name = next(line.split(":", 1)[1].strip() for line in lines if "model name" in line)
    except (OSError, StopIteration):
        name = "unknown CPU"
    return f"{name}, {os.cpu_count()} cores"


def _lost(row: dict) -> str:
    if not row["failed_runs"] and not row["lost"]:
        return "none"
    if row["kind"] in CUT_FAULTS and row["client"].startswith("GDAL"):
        return (
            f"none written; {row['failed_runs']} of {row['runs']} runs stopped with a read "
            "error (not retried by GDAL)"
        )
    return f"{row['lost']} objects, {row['failed_runs']} runs failed: {row['errors'][:1]}"


def _retries(row: dict) -> str:
    return "none" if row["failed_runs"] == row["runs"] else str(max(row["retries"], 0))


def markdown(results: dict) -> str:
    """The table (and the persistent-fault lines) that go between the markers."""
    intro = (
        f"Measured {results['date']} on {results['machine']} (`/proc/cpuinfo`), `{COMMAND}`: "
        f"{results['runs']} runs of each, {OBJECTS} objects a run, every other request for them "
        f"failing; times are the median run's; {results['retry_settings']}."
    )
    lines = [
        *textwrap.wrap(intro, width=100, break_long_words=False, break_on_hyphens=False),
        "",
        "| Fault | Client (path) | Runs | Faults injected | Retries seen | "
        "Time vs fault-free | Outputs lost |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in results["transient"]:
        cost = row["seconds"] - row["clean_seconds"]
        lines.append(
            f"| {row['kind']} | {row['client']} | {row['runs']} | {row['faults']} | "
            f"{_retries(row)} | {row['clean_seconds']:.2f} s -> {row['seconds']:.2f} s "
            f"({cost:+.2f} s) | {_lost(row)} |"
        )
    lines += ["", "A `SlowDown` that never ends (one run each):", ""]
    for row in results["persistent"]:
        shown = row["message"][:150]
        lines.append(
            f"- {row['client']}: gave up after {row['seconds']:.0f} s and {row['requests']} "
            f"requests; {'one line' if row['one_line'] else 'NOT one line'}: `{shown}…`"
        )
    return "\n".join(lines)


def write_doc(text: str, doc: Path) -> None:
    """Put ``text`` between the markers of ``doc`` (which must have them)."""
    current = doc.read_text()
    if START not in current or END not in current:
        raise SystemExit(f"{doc}: the markers {START} and {END} are missing")
    before, rest = current.split(START, 1)
    after = rest.split(END, 1)[1]
    doc.write_text(f"{before}{START}\n{text}\n{END}{after}")


def main(argv: list[str] | None = None) -> int:
    """Measure, then write the table and the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each fault and client")
    parser.add_argument("--doc", type=Path, default=DOC, help="the Markdown file to update")
    parser.add_argument("--json", type=Path, default=JSON_OUT, help="where the figures go")
    parser.add_argument(
        "--render", action="store_true", help="measure nothing: write the table from --json"
    )
    args = parser.parse_args(argv)
    if args.render:
        write_doc(markdown(json.loads(args.json.read_text())), args.doc)
        return 0
    moto, moto_url = start_moto()
    try:
        with S3FaultProxy(moto_url) as proxy, tempfile.TemporaryDirectory() as scratch:
            use_fake_aws(proxy.url, Path(scratch))
            objects = Objects(moto_url)
            transfers = {
                "boto3": boto3_transfer(objects),
                "aws CLI": cli_transfer(objects),
                "GDAL /vsis3/": gdal_transfer(objects),
            }
            results = {
                "date": time.strftime("%Y-%m-%d"),
                "machine": cpu_name(),
                "runs": args.runs,
                "retry_settings": ", ".join(f"{k}={os.environ[k]}" for k in RETRY_DEFAULTS),
                "transient": measure_transient(proxy, transfers, objects, args.runs),
                "persistent": measure_persistent(proxy, objects),
            }
    finally:
        moto.terminate()
        moto.wait(timeout=10)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    write_doc(markdown(results), args.doc)
    print(f"{args.doc}, {args.json}: written", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
