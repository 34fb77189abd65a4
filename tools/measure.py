"""What the measuring scripts share (``wb_scripts/bench``, ``wb_scripts/ablation``).

Both time the real ``rastervision`` CLI in child processes, as a user runs it, and say which
machine their numbers come from.
"""

import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parents[1]


def rastervision_command(*args: str, tmp: Path) -> list[str]:
    """``rastervision --tmpdir TMP ARGS...`` with this interpreter's Raster Vision."""
    return [sys.executable, "-m", "rastervision.pipeline.cli", "--tmpdir", str(tmp), *args]


def run_rastervision(*args: str, tmp: Path, output: IO[str] | None = None) -> float:
    """Run ``rastervision --tmpdir TMP ARGS...`` in a child process; its wall time in seconds.

    A child process gives each run RV's real start-up, plugin loading and a clean state.
    Its stdout and stderr go to ``output`` (discarded without one). A failing run raises
    :class:`subprocess.CalledProcessError`.
    """
    cmd = rastervision_command(*args, tmp=tmp)
    sink = output if output is not None else subprocess.DEVNULL
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=REPO, stdout=sink, stderr=subprocess.STDOUT)
    return time.perf_counter() - start


# What decides the CPU fast path and its speed (cloud CPUs are often all "Intel Xeon").
CPU_FLAGS = ("amx_bf16", "amx_int8", "avx512_bf16", "avx512_vnni", "avx2")


def cpu_description(cpuinfo: str) -> str:
    """The CPU's model name and its telling flags, from the text of ``/proc/cpuinfo``."""
    cpu, flags = platform.processor() or platform.machine(), set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            cpu = value.strip()
        elif key.strip() == "flags":
            flags = set(value.split())
            break
    telling = [flag for flag in CPU_FLAGS if flag in flags]
    return cpu + (f" ({' '.join(telling)})" if telling else "")


def describe_machine() -> str:
    """One line about where the numbers come from: CPU (see :func:`cpu_description`), GPU, torch."""
    import torch

    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        cpuinfo = ""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu_description(cpuinfo)}, {os.cpu_count()} cores, {gpu}, torch {torch.__version__}"


def python_in_child(code: str, *args: str) -> tuple[float, float]:
    """Run ``code`` in a fresh interpreter: (seconds, its own peak RSS in MB).

    The seconds are the wall time, or the ``WORK_S=`` the code prints to stderr (its work
    without the imports, which are most of the wall time on a small scene). GNU time reports
    the child's own peak (``getrusage(RUSAGE_CHILDREN)`` would report the largest of all
    children so far).
    """
    cmd = ["/usr/bin/time", "-f", "MAXRSS_KB=%M", sys.executable, "-c", code, *args]
    start = time.perf_counter()
    result = subprocess.run(cmd, check=True, cwd=REPO, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    lines = result.stderr.splitlines()
    peak = [line for line in lines if line.startswith("MAXRSS_KB=")][-1]
    work = [float(line.removeprefix("WORK_S=")) for line in lines if line.startswith("WORK_S=")]
    return (work[-1] if work else wall), int(peak.removeprefix("MAXRSS_KB=")) / 1024
