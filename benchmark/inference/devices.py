"""The device the model runs on: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``, checked on this machine.

Train and predict jobs run on a GPU queue, on machines nobody has looked at, so a device the
machine lacks (``cuda:7`` on one GPU, ``cuda`` on a CPU-only host) stops the command with one
line naming it before the bundle is loaded, rather than with a traceback from deep inside
PyTorch. ``cpu`` asks ``torch.cuda`` nothing at all: a job told to run on the CPU never
initialises the CUDA driver nor opens a context on a GPU another job may be using.
"""

import re

import torch

from benchmark.errors import InputError

DEVICE_NAMES = "auto, cpu, cuda or cuda:N"
_DEVICE_NAME = re.compile(r"auto|cpu|cuda(:\d+)?")


def check_device_name(name: str) -> str:
    """``name`` itself if it is one of :data:`DEVICE_NAMES`, else a ``ValueError`` saying so."""
    if not _DEVICE_NAME.fullmatch(name):
        raise ValueError(f"device {name!r}: expected {DEVICE_NAMES}")
    return name


def torch_device(name: str) -> torch.device:
    """The device ``name`` means here: "auto" is the GPU where there is one, else the CPU.

    Raises:
        InputError: ``name`` is a GPU this machine does not have (one line: the device and
            the GPUs there are).
    """
    check_device_name(name)
    if name == "cpu":
        return torch.device("cpu")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if (device.index or 0) >= gpus:
        there = "no CUDA GPU" if gpus == 0 else f"cuda:0 to cuda:{gpus - 1}"
        raise InputError(f"device {name}: not available (this machine has {there})")
    return device
