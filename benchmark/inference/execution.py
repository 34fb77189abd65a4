"""How the model runs: the inference options and the execution plan chosen from them.

The model is the whole bill of inference (a 1024 px chip costs seconds on a CPU, decoding it
~10 ms), so it runs in the fastest plan the machine has unless told otherwise: on a CPU, the
plan measured fastest there (:mod:`benchmark.inference.plan_choice`), where there is nothing
to measure on the CPU flags' rule (:func:`select_execution`). A plan can also be forced by name
(``--plan``, ``InferenceOptions.execution``): tests compare each reduced-precision path with
fp32 on any CPU that way, and a new path is one more name and one more entry in ``_PLANS``.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import nn

from benchmark.allocator import keep_freed_memory
from benchmark.inference.devices import check_device_name, torch_device
from benchmark.inference.folding import fold_batch_norm
from benchmark.inference.onnx_runtime import onnx_runtime_available, run_with_onnx_runtime

log = logging.getLogger(__name__)

# "auto": the machine's fastest (measured on a CPU: benchmark.inference.plan_choice; else
# select_execution's rule); the others force one plan (``--plan NAME``):
#   fp32: plain fp32 PyTorch, the network as trained (the reference; --no-fast means it);
#   fp32_channels_last: fp32 PyTorch in oneDNN's / cuDNN's preferred layout, BatchNorm folded
#     (as in bf16 and fp16; see benchmark.inference.folding);
#   bf16, fp16: channels_last + bf16 / fp16 autocast (bf16 is emulated, and slow, on CPUs
#     without AVX512-BF16 or AMX; fp16 needs a GPU);
#   onnx: the network in ONNX Runtime, fp32, on the CPU (needs ``onnxruntime``);
#   int8: the network quantized to int8 and run by ONNX Runtime on the CPU, calibrated on the
#     first batch it is given (see benchmark.inference.quantize; needs ``onnxruntime``).
ExecutionName = Literal["auto", "fp32", "fp32_channels_last", "bf16", "fp16", "onnx", "int8"]
EXECUTION_NAMES: tuple[str, ...] = get_args(ExecutionName)


@dataclass(frozen=True)
class InferenceOptions:
    """How to run the model.

    Attributes:
        device: "auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N" (see
            :mod:`benchmark.inference.devices`; one the machine lacks is refused when the
            plan is made).
        execution: the plan (``--plan``; ``--no-fast`` is ``fp32``, the plain PyTorch
            reference): "auto", the machine's fastest (measured on a CPU
            by :func:`benchmark.inference.plan_choice.prepare_measured`, else
            :func:`select_execution`'s rule), or the plan to run whatever the hardware (see
            :data:`ExecutionName`).
        batch_size: chips or windows per forward pass.
        tta: average the 8 flips/rotations of the input (8x the compute).
        num_threads: torch CPU threads; None = torch's default (all cores).
        num_workers: chip-decoding processes for folder prediction (0 = decode in the main
            process, between batches); None = 1 where a core is free of the model, else 0
            (see :func:`benchmark.inference.chips.decoding_workers`).
        num_writers: threads writing folder prediction's outputs; None = one per usable
            core on a GPU, else 1 (see :func:`benchmark.inference.chips.writer_threads`).
    """

    device: str = "auto"
    execution: ExecutionName = "auto"
    batch_size: int = 4
    tta: bool = False
    num_threads: int | None = None
    num_workers: int | None = None
    num_writers: int | None = None

    def __post_init__(self) -> None:
        """Refuse unknown devices and plans."""
        check_device_name(self.device)
        if self.execution not in EXECUTION_NAMES:
            raise ValueError(
                f"execution {self.execution!r}: expected one of {', '.join(EXECUTION_NAMES)}"
            )


@dataclass(frozen=True)
class ExecutionPlan:
    """Device, runtime, memory layout and reduced precision chosen for inference."""

    name: str  # its ExecutionName
    device: torch.device
    channels_last: bool
    autocast_dtype: torch.dtype | None
    onnx_runtime: bool = False  # the network runs in ONNX Runtime (CPU), not PyTorch
    int8: bool = False  # and quantized to int8
    fold_batch_norm: bool = False  # into the convolutions (PyTorch; ONNX Runtime folds itself)

    @property
    def is_cuda(self) -> bool:
        """Whether the model runs on a GPU (pinned memory, non-blocking copies, cuDNN)."""
        return self.device.type == "cuda"


@dataclass(frozen=True)
class _Recipe:
    """An execution plan but its device, and the devices it runs on."""

    channels_last: bool
    autocast_dtype: torch.dtype | None = None
    onnx_runtime: bool = False
    int8: bool = False
    fold_batch_norm: bool = True
    device_types: tuple[str, ...] = ("cpu", "cuda")


# Every forceable plan, by name.
_PLANS: dict[str, _Recipe] = {
    "fp32": _Recipe(channels_last=False, fold_batch_norm=False),
    "fp32_channels_last": _Recipe(channels_last=True),
    "bf16": _Recipe(channels_last=True, autocast_dtype=torch.bfloat16),
    "fp16": _Recipe(channels_last=True, autocast_dtype=torch.float16, device_types=("cuda",)),
    "onnx": _Recipe(
        channels_last=False, onnx_runtime=True, fold_batch_norm=False, device_types=("cpu",)
    ),
    "int8": _Recipe(
        channels_last=False,
        onnx_runtime=True,
        int8=True,
        fold_batch_norm=False,
        device_types=("cpu",),
    ),
}


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX).

    Without it, bf16 autocast is emulated and far slower than fp32 (a 1024 px ResNet-18 U-Net
    chip took 37 s instead of 3 s on this project's AVX2-only AMD EPYC), so the fast path
    must not use it.
    """
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def _fastest(device: torch.device, cpu_bf16: bool | None, onnx_runtime: bool | None) -> str:
    """The name of the plan the CPU flags' rule expects fastest (see :func:`select_execution`).

    A guess: Zen 4 has native bf16 but int8 ran faster there, which is why a CPU's plan is
    measured where there is data to measure on (:mod:`benchmark.inference.plan_choice`).
    """
    if device.type == "cuda":
        return "fp16"
    if cpu_has_fast_bf16() if cpu_bf16 is None else cpu_bf16:
        return "bf16"
    if onnx_runtime_available() if onnx_runtime is None else onnx_runtime:
        return "int8"
    return "fp32_channels_last"


def select_execution(
    device: str = "auto",
    fast: bool = True,
    cpu_bf16: bool | None = None,
    onnx_runtime: bool | None = None,
    execution: ExecutionName = "auto",
) -> ExecutionPlan:
    """Pick the execution plan by rule; pure given its arguments, so every branch is testable.

    ``execution`` other than "auto" forces that plan (``onnx`` or ``int8`` where ONNX Runtime is
    missing is an error). "auto" here is the rule, the fallback of the measured choice (a GPU,
    a single small chip: :mod:`benchmark.inference.plan_choice`); fast: on CUDA channels_last
    + fp16 autocast (cuDNN's fastest kernels, autotuned: :func:`cudnn_autotuning`);
    on a CPU with native bf16 channels_last + bf16 autocast; on other CPUs the network
    quantized to int8 in ONNX Runtime where it is installed (:mod:`benchmark.inference.quantize`),
    else PyTorch channels_last (oneDNN's preferred layout). ``fast=False``: plain fp32 PyTorch.

    Args:
        device: "auto", "cpu", "cuda" or "cuda:N".
        fast: use the fast path (when ``execution`` is "auto").
        cpu_bf16: whether the CPU has native bf16; None = ask the CPU.
        onnx_runtime: whether ONNX Runtime is installed; None = look for it.
        execution: "auto" or the name of the plan to force (see :data:`ExecutionName`).
    """
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if execution in ("onnx", "int8") and not (
        onnx_runtime_available() if onnx_runtime is None else onnx_runtime
    ):
        raise ValueError(f"execution {execution!r} needs onnxruntime, which is not installed")
    if execution == "auto":
        execution = _fastest(dev, cpu_bf16, onnx_runtime) if fast else "fp32"
    recipe = _PLANS[execution]
    if dev.type not in recipe.device_types:
        raise ValueError(f"execution {execution!r} runs on {' or '.join(recipe.device_types)}")
    return ExecutionPlan(
        execution,
        dev,
        recipe.channels_last,
        recipe.autocast_dtype,
        recipe.onnx_runtime,
        recipe.int8,
        recipe.fold_batch_norm,
    )


def execution_plan(options: InferenceOptions) -> ExecutionPlan:
    """The plan ``options`` ask for on this machine (an ``InputError`` for a GPU it lacks)."""
    device = str(torch_device(options.device))
    return select_execution(device, execution=options.execution)


@contextmanager
def cudnn_autotuning(plan: ExecutionPlan) -> Iterator[None]:
    """Autotuned cuDNN inside, for a plan on a GPU; the process's own setting restored after.

    Inference runs the same input sizes batch after batch, so timing every kernel once pays;
    but ``torch.backends.cudnn.benchmark`` is one switch for the whole process, and
    self-training trains and predicts in one: left on, a round's training would autotune or
    not depending on whether a prediction had run before it (a resumed round would not).
    """
    if not plan.is_cuda:
        yield
        return
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


def prepare_model(model: nn.Module, options: InferenceOptions) -> nn.Module:
    """Put ``model`` in eval mode on the chosen device, layout and runtime (idempotent).

    PyTorch's fast plans run a copy with BatchNorm folded into the convolutions
    (:mod:`benchmark.inference.folding`). Also keeps freed memory for the next batch
    (:mod:`benchmark.allocator`) and sets torch's CPU thread count (``options.num_threads``);
    cuDNN autotunes only inside the forward passes (:func:`cudnn_autotuning`). For ONNX Runtime
    the network is exported here (a few seconds), and for int8 quantized on the first batch it
    runs (a few seconds more): prepare once, predict many times.
    """
    keep_freed_memory()  # every batch allocates what the last one freed
    plan = execution_plan(options)
    if options.num_threads:
        torch.set_num_threads(options.num_threads)
    log.info("Inference on %s (threads %d)", plan, torch.get_num_threads())
    if plan.onnx_runtime:
        return run_with_onnx_runtime(model, torch.get_num_threads(), int8=plan.int8)
    model = model.eval().to(plan.device)
    if plan.fold_batch_norm:
        model = fold_batch_norm(model)
    memory_format = torch.channels_last if plan.channels_last else torch.contiguous_format
    return model.to(memory_format=memory_format)
