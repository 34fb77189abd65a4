"""Running the model: batched test chips, windowed scenes, and the fast paths that matter.

The model is the whole bill (a 1024 px chip costs seconds on a CPU, decoding it ~10 ms), so the
code around it must add almost nothing: chips are decoded in a DataLoader worker and scene
windows in a reader thread while the model runs, outputs are quantized and written by a
background thread, and the model runs in the fastest mode the hardware has (see
:func:`select_execution`). Scenes are predicted one strip of windows at a time, so memory is
bounded by a strip, not the scene. A model trained at a common GSD (``-a gsd``, see
:mod:`benchmark.data.gsd`) predicts at that GSD, and its outputs come back on the input's own grid.

Probabilities are stored as uint8 ``round(255 * P(building))``; a pixel is a building when
that value exceeds ``255 * threshold`` (:func:`probability_to_mask`), everywhere: folder
predict, POSTPROCESS, eval and the plots use that one rule.
"""

import logging
import os
import queue
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import numpy as np
import rasterio
import torch
import torch.nn.functional as F
from rasterio.windows import Window
from rastervision.pipeline.file_system import list_paths
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from benchmark.data.gsd import GridMap, read_bands
from benchmark.data.imagery import open_scene_checked, read_rgb, read_valid_mask, window_of_window
from benchmark.data.scene_windows import plan_windows
from benchmark.data.submission import write_mask
from benchmark.data.uris import TMP_PREFIX, atomic_output, is_s3, uri_exists
from benchmark.inference.onnx_runtime import onnx_runtime_available, run_with_onnx_runtime

log = logging.getLogger(__name__)

# Output tiles of scene probability rasters; strips are written in multiples of it, so no
# compressed tile is ever written twice.
SCENE_BLOCK = 256
# Columns normalized and written at a time when a strip of scene rows is final.
WRITE_COLUMNS = 16 * SCENE_BLOCK
# U-Net-style encoders downsample 5 times: window sides must be multiples of 2 ** 5.
SIZE_MULTIPLE = 32
# Chip outputs waiting for the writer thread, in batches: bounds memory if writing stalls.
MAX_PENDING_BATCHES = 2
# Scheduling priority (nice) of the chip decoder and writer, which run beside the model.
BACKGROUND_NICENESS = 10

T = TypeVar("T")


def probability_to_mask(prob_u8: np.ndarray, threshold: float) -> np.ndarray:
    """uint8 building mask (1 = building) from uint8 probabilities."""
    return (prob_u8 > round(255 * threshold, 6)).astype(np.uint8)


def quantize(prob: np.ndarray) -> np.ndarray:
    """Float probabilities in [0, 1] -> uint8 ``round(255 * P)``."""
    return np.rint(np.clip(prob, 0.0, 1.0) * 255).astype(np.uint8)


@dataclass(frozen=True)
class InferenceOptions:
    """How to run the model.

    Attributes:
        device: "auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N".
        fast: the hardware's fast path (see :func:`select_execution`); False = plain fp32.
        batch_size: chips or windows per forward pass.
        tta: average the 8 flips/rotations of the input (8x the compute).
        num_threads: torch CPU threads; None = torch's default (all cores).
        num_workers: chip-decoding processes for folder prediction (0 = decode in the main
            process, without overlap).
    """

    device: str = "auto"
    fast: bool = True
    batch_size: int = 4
    tta: bool = False
    num_threads: int | None = None
    num_workers: int = 1


@dataclass(frozen=True)
class ExecutionPlan:
    """Device, runtime, memory layout and reduced precision chosen for inference."""

    device: torch.device
    channels_last: bool
    autocast_dtype: torch.dtype | None
    onnx_runtime: bool = False  # the network runs in ONNX Runtime (CPU), not PyTorch

    @property
    def is_cuda(self) -> bool:
        """Whether the model runs on a GPU (pinned memory, non-blocking copies, cuDNN)."""
        return self.device.type == "cuda"


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX).

    Without it, bf16 autocast is emulated and far slower than fp32 (a 1024 px ResNet-18 U-Net
    chip took 37 s instead of 3 s on this project's AVX2-only AMD EPYC), so the fast path
    must not use it.
    """
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def select_execution(
    device: str = "auto",
    fast: bool = True,
    cpu_bf16: bool | None = None,
    onnx_runtime: bool | None = None,
) -> ExecutionPlan:
    """Pick the execution mode; pure given its arguments, so every branch is testable on a CPU.

    CUDA, fast: channels_last + fp16 autocast (cuDNN's fastest kernels; cudnn.benchmark is set
    by :func:`prepare_model`). CPU with native bf16, fast: channels_last + bf16 autocast. Other
    CPUs, fast: ONNX Runtime in fp32 where it is installed
    (:mod:`benchmark.inference.onnx_runtime`),
    else PyTorch channels_last (oneDNN's preferred layout). ``fast=False``: plain fp32 PyTorch.

    Args:
        device: "auto", "cpu", "cuda" or "cuda:N".
        fast: use the fast path.
        cpu_bf16: whether the CPU has native bf16; None = ask the CPU.
        onnx_runtime: whether ONNX Runtime is installed; None = look for it.
    """
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if not fast:
        return ExecutionPlan(dev, channels_last=False, autocast_dtype=None)
    if dev.type == "cuda":
        return ExecutionPlan(dev, channels_last=True, autocast_dtype=torch.float16)
    if cpu_has_fast_bf16() if cpu_bf16 is None else cpu_bf16:
        return ExecutionPlan(dev, channels_last=True, autocast_dtype=torch.bfloat16)
    if onnx_runtime_available() if onnx_runtime is None else onnx_runtime:
        return ExecutionPlan(dev, channels_last=False, autocast_dtype=None, onnx_runtime=True)
    return ExecutionPlan(dev, channels_last=True, autocast_dtype=None)


def prepare_model(model: nn.Module, options: InferenceOptions) -> nn.Module:
    """Put ``model`` in eval mode on the chosen device, layout and runtime (idempotent).

    Also sets torch's CPU thread count (``options.num_threads``) and cuDNN autotuning. For ONNX
    Runtime the network is exported here (a few seconds): prepare once, predict many times.
    """
    plan = select_execution(options.device, options.fast)
    if options.num_threads:
        torch.set_num_threads(options.num_threads)
    if plan.is_cuda:
        torch.backends.cudnn.benchmark = True  # fixed input sizes: autotune once, reuse
    log.info("Inference on %s (threads %d)", plan, torch.get_num_threads())
    if plan.onnx_runtime:
        return run_with_onnx_runtime(model, torch.get_num_threads())
    model = model.eval().to(plan.device)
    memory_format = torch.channels_last if plan.channels_last else torch.contiguous_format
    return model.to(memory_format=memory_format)


def _forward_probabilities(model: nn.Module, x: torch.Tensor, plan: ExecutionPlan) -> torch.Tensor:
    """float32 (B, H, W) P(building) for float (B, 3, H, W) input already on the device."""
    if plan.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    dtype = plan.autocast_dtype
    autocast = torch.autocast(plan.device.type, dtype=dtype) if dtype else nullcontext()
    with autocast:
        logits = model(x)
    return logits.float().softmax(dim=1)[:, 1]


def _d4_transforms() -> list[tuple[int, bool]]:
    """The 8 symmetries of a square: (quarter turns, then a left-right flip)."""
    return [(k, flip) for k in range(4) for flip in (False, True)]


@torch.inference_mode()
def _probabilities(
    model: nn.Module, images: torch.Tensor, plan: ExecutionPlan, tta: bool
) -> torch.Tensor:
    """P(building) (B, H, W) on the device for uint8 (B, 3, H, W) images."""
    x = images.to(plan.device, non_blocking=plan.is_cuda).float().div_(255)
    if not tta:
        return _forward_probabilities(model, x, plan)
    total = torch.zeros(x.shape[0], *x.shape[2:], device=x.device)
    for k, flip in _d4_transforms():
        t = torch.rot90(x, k, dims=(2, 3))
        t = torch.flip(t, dims=(3,)) if flip else t
        p = _forward_probabilities(model, t, plan)
        p = torch.flip(p, dims=(2,)) if flip else p
        total += torch.rot90(p, -k, dims=(1, 2))
    return total / 8


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of float (B, C, H, W) to ``size`` (antialiased when shrinking)."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def _probabilities_at_scale(
    model: nn.Module,
    images: torch.Tensor,
    plan: ExecutionPlan,
    tta: bool,
    scale: float,
    window: int | None = None,
    overlap: int = 0,
) -> torch.Tensor:
    """P(building) (B, H, W) for uint8 images, the model run on them resized by ``scale``.

    How chips at one GSD meet a model trained at another: each chip is resized to the model's
    GSD and the probabilities back to the chip's own size, so outputs keep the chip's grid
    (1024 x 1024 in the competition) whatever the scale.
    """

    def run(batch: torch.Tensor) -> torch.Tensor:
        if window is None:
            return _probabilities(model, batch, plan, tta)
        return _windowed_probabilities(model, batch, plan, tta, window, overlap)

    if scale == 1.0:
        return run(images)
    size = (images.shape[-2], images.shape[-1])
    scaled = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
    x = images.to(plan.device, non_blocking=plan.is_cuda).float()
    resized = _resize(x, scaled).round_().clamp_(0, 255).to(torch.uint8)
    probs = run(resized)
    return _resize(probs[:, None], size)[:, 0].clamp_(0, 1)


def predict_probabilities(
    model: nn.Module, images_uint8: np.ndarray | torch.Tensor, options: InferenceOptions
) -> np.ndarray:
    """float32 (B, H, W) P(building) for uint8 RGB images (B, 3, H, W).

    ``model`` must have been through :func:`prepare_model` with the same options. Runs
    ``options.batch_size`` images per forward pass.
    """
    plan = select_execution(options.device, options.fast)
    images = torch.as_tensor(images_uint8)
    if images.ndim != 4 or images.shape[1] != 3 or images.dtype != torch.uint8:
        raise ValueError(f"expected uint8 (B, 3, H, W) images, got {images.dtype} {images.shape}")
    parts = [
        _probabilities(model, batch, plan, options.tta).cpu()
        for batch in images.split(options.batch_size)
    ]
    return torch.cat(parts).numpy()


# ----------------------------------------------------------------------------- windows


def _starts(length: int, size: int, stride: int) -> list[int]:
    """Window origins on one axis: every pixel covered, the last window flush with the end."""
    if length <= size:
        return [0]
    return [*range(0, length - size, stride), length - size]


def _axis_weights(starts: list[int], length: int, size: int, overlap: int) -> list[np.ndarray]:
    """Each window's 1-D blend weights on one axis, clipped to the scene.

    A raised-cosine ramp across the overlap fades out a window's edges toward its neighbours
    (where a CNN's zero padding makes it least accurate) and sums with the neighbour's ramp
    to 1, so the blend has no seam. Edges on the scene border keep full weight: there the
    padding is the same as for the whole scene, and no other window covers them.
    """
    ramp = np.sin(0.5 * np.pi * (np.arange(overlap, dtype=np.float32) + 0.5) / max(overlap, 1))
    ramp **= 2
    weights = []
    for i, start in enumerate(starts):
        w = np.ones(size, dtype=np.float32)
        if overlap and i > 0:
            w[:overlap] = ramp
        if overlap and i < len(starts) - 1:
            w[size - overlap :] = ramp[::-1]
        weights.append(w[: min(size, length - start)])
    return weights


def _coverage(length: int, starts: list[int], weights: list[np.ndarray]) -> np.ndarray:
    """Sum of the windows' 1-D weights over each pixel of one axis (the blend's normalizer)."""
    total = np.zeros(length, dtype=np.float32)
    for start, w in zip(starts, weights, strict=True):
        total[start : start + len(w)] += w
    return total


@dataclass(frozen=True)
class _BlendGrid:
    """Overlapping ``size`` px windows over a raster, with their blend weights per axis.

    Attributes:
        row_weights, col_weights: the windows' origins on each axis, in order, and each
            origin's 1-D weights (clipped to the raster).
        row_cover, col_cover: the weights' sum over each pixel; their outer product
            normalizes the blend.
    """

    row_weights: dict[int, np.ndarray]
    col_weights: dict[int, np.ndarray]
    row_cover: np.ndarray
    col_cover: np.ndarray

    @classmethod
    def over(cls, height: int, width: int, size: int, overlap: int) -> "_BlendGrid":
        """Windows of ``size`` px sharing ``overlap`` px (at most half a window)."""
        overlap = min(overlap, size // 2)
        rows, cols = _starts(height, size, size - overlap), _starts(width, size, size - overlap)
        row_weights = _axis_weights(rows, height, size, overlap)
        col_weights = _axis_weights(cols, width, size, overlap)
        return cls(
            row_weights=dict(zip(rows, row_weights, strict=True)),
            col_weights=dict(zip(cols, col_weights, strict=True)),
            row_cover=_coverage(height, rows, row_weights),
            col_cover=_coverage(width, cols, col_weights),
        )

    @property
    def rows(self) -> list[int]:
        """The windows' row origins, top to bottom."""
        return list(self.row_weights)

    @property
    def cols(self) -> list[int]:
        """The windows' column origins, left to right."""
        return list(self.col_weights)


@torch.inference_mode()
def _windowed_probabilities(
    model: nn.Module, images: torch.Tensor, plan: ExecutionPlan, tta: bool, size: int, overlap: int
) -> torch.Tensor:
    """P(building) (B, H, W) of uint8 images run in ``size`` px windows, blended as scenes are.

    A model trained on small chips can be best at that size: run on a whole 1024 px chip it
    sees more context than it ever learned from. Images no larger than ``size`` run whole.
    """
    height, width = images.shape[-2:]
    if max(height, width) <= size:
        return _probabilities(model, images, plan, tta)
    grid = _BlendGrid.over(height, width, size, overlap)
    total = torch.zeros(images.shape[0], height, width, device=plan.device)
    for row, wy in grid.row_weights.items():
        for col, wx in grid.col_weights.items():
            h, w = len(wy), len(wx)
            prob = _probabilities(model, images[:, :, row : row + h, col : col + w], plan, tta)
            weight = torch.from_numpy(wy[:, None] * wx).to(plan.device)
            total[:, row : row + h, col : col + w] += prob * weight
    cover = np.outer(grid.row_cover, grid.col_cover)
    return total / torch.from_numpy(cover).to(plan.device)


# ----------------------------------------------------------------------------- test chips


class ChipLike(Protocol):
    """What folder prediction needs of a chip (``benchmark.data.stac.ChipRef``)."""

    id: str
    uri: str


@dataclass
class ChipFolderReport:
    """What folder prediction did, chip by chip, and where the time went."""

    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # output already complete (resume)
    bad: dict[str, str] = field(default_factory=dict)  # chip id -> problem
    wall_seconds: float = 0.0  # the whole call
    model_seconds: float = 0.0  # inside the forward passes (the floor for wall_seconds)

    def summary(self) -> str:
        """One line for the log."""
        line = f"{len(self.written)} written, {len(self.skipped)} already done, {len(self.bad)} bad"
        if self.written:
            line += (
                f", {self.wall_seconds / len(self.written):.3f} s/chip"
                f" ({self.model_seconds / len(self.written):.3f} s in the model)"
            )
        if self.bad:
            shown = "; ".join(f"{k}: {v}" for k, v in list(self.bad.items())[:5])
            line += f" [{shown}{'; ...' if len(self.bad) > 5 else ''}]"
        return line


@dataclass
class _ChipBatch:
    """Decoded chips of one batch; bad chips carry their problem instead of pixels."""

    indices: list[int]
    images: torch.Tensor  # uint8 (n, 3, H, W)
    valid: torch.Tensor  # bool (n, H, W)
    bad: list[tuple[int, str]]

    def pin_memory(self) -> "_ChipBatch":
        """Page-locked copies, for asynchronous copies to the GPU (DataLoader calls this)."""
        return _ChipBatch(self.indices, self.images.pin_memory(), self.valid, self.bad)


class _ChipDataset(Dataset):
    """Decodes chips (in a DataLoader worker); a bad chip yields its problem, not an error."""

    def __init__(self, chips: Sequence[ChipLike], expected_size: int) -> None:
        self.uris = [chip.uri for chip in chips]
        self.expected_size = expected_size

    def __len__(self) -> int:
        return len(self.uris)

    def _read(self, uri: str) -> tuple[np.ndarray, np.ndarray]:
        size = self.expected_size
        with open_scene_checked(uri, require_georef=False) as src:
            if src.count not in (3, 4):
                raise ValueError(f"{src.count} bands, expected 3 (RGB) or 4 (RGBA)")
            if (src.height, src.width) != (size, size):
                raise ValueError(f"{src.width}x{src.height} px, expected {size}x{size}")
            return read_rgb(src), read_valid_mask(src)

    def __getitem__(self, index: int) -> tuple[int, np.ndarray | None, np.ndarray | None, str]:
        uri = self.uris[index]
        try:
            image, valid = self._read(uri)
        except Exception as exc:  # reported by name; the rest of the set still predicts
            return index, None, None, str(exc).removeprefix(f"{uri}: ")
        return index, image, valid, ""


def _collate_chips(items: list[tuple[int, np.ndarray | None, np.ndarray | None, str]]):
    """Stack the good chips (tensors cross from the worker through shared memory)."""
    good = [(i, img, valid) for i, img, valid, problem in items if not problem]
    bad = [(i, problem) for i, _, _, problem in items if problem]
    if not good:
        empty = torch.empty(0, dtype=torch.uint8)
        return _ChipBatch([], empty, empty.bool(), bad)
    return _ChipBatch(
        indices=[i for i, _, _ in good],
        images=torch.from_numpy(np.stack([img for _, img, _ in good])),
        valid=torch.from_numpy(np.stack([valid for _, _, valid in good])),
        bad=bad,
    )


def _run_in_background() -> None:
    """Lower the calling thread's scheduling priority (Linux: per thread; elsewhere: no-op).

    Decoding and writing chips costs ~0.08 s of CPU per 1024 px chip, yet on a machine whose
    cores all run the model it slowed the model by ~0.25 s per chip: each preemption stalls
    a multi-threaded operator until its last thread is back. At a low priority the decoder
    and writer run in the gaps the model's threads leave.
    """
    try:
        thread = threading.get_native_id()
        niceness = os.getpriority(os.PRIO_PROCESS, thread) + BACKGROUND_NICENESS
        os.setpriority(os.PRIO_PROCESS, thread, min(niceness, 19))
    except (AttributeError, OSError):  # not Linux, or not permitted: run at normal priority
        pass


def _start_decoder(worker_id: int) -> None:
    """DataLoader worker start-up: chip decoding is background work."""
    _run_in_background()


def _existing_outputs(out_dir: str) -> set[str]:
    """Names of finished ``.tif`` files in ``out_dir``: one listing, not a request per chip."""
    if is_s3(out_dir):
        names = [os.path.basename(p) for p in list_paths(out_dir, ext=".tif")]
    elif os.path.isdir(out_dir):
        names = os.listdir(out_dir)
    else:
        return set()
    return {n for n in names if n.endswith(".tif") and not n.startswith(TMP_PREFIX)}


def _write_chip_output(
    prob: np.ndarray, valid: np.ndarray, threshold: float | None, uri: str
) -> None:
    """Quantize (and threshold) one chip's probabilities, zero outside its imagery, write."""
    out = quantize(prob)
    if threshold is not None:
        out = probability_to_mask(out, threshold)
    out[~valid] = 0
    write_mask(out, uri)


def predict_chip_folder(
    model: nn.Module,
    chips: Sequence[ChipLike],
    out_dir: str,
    options: InferenceOptions | None = None,
    threshold: float | None = 0.5,
    expected_size: int = 1024,
    overwrite: bool = False,
    input_scale: float = 1.0,
    window_sz: int | None = None,
    overlap: int = 0,
) -> ChipFolderReport:
    """Write ``{out_dir}/{id}.tif`` for every chip: its 0/1 building mask.

    Chips are decoded in ``options.num_workers`` DataLoader processes while the model runs
    and outputs are written by a background thread, so the wall time stays close to the
    model's. Pixels outside the imagery (alpha 0) are 0.

    Args:
        model: the network (prepared here with ``options``).
        chips: ``ChipRef``-like objects with ``.id`` and ``.uri``.
        out_dir: output directory (local or s3://).
        options: inference options (defaults if None).
        threshold: building when P > threshold; None writes uint8 probabilities
            ``round(255 * P)`` instead (for a threshold chosen later).
        expected_size: chips must be this many pixels square.
        overwrite: redo chips whose output exists; otherwise they are skipped, which resumes an
            interrupted run (outputs are atomic, so an existing one is complete).
        input_scale: resize factor of the chips for the model (chip GSD / the model's GSD,
            see :func:`benchmark.data.gsd.gsd_scale`); outputs keep the chips' size.
        window_sz: run chips larger than this (after resizing) in windows of this side,
            blended like a scene's (see :func:`predict_scene`); None runs whole chips.
        overlap: pixels shared by neighbouring windows.

    Returns:
        What was written, skipped and refused (bad chips: unreadable, not 3/4 bands, wrong
        size), with timings.
    """
    start = time.perf_counter()
    options = options or InferenceOptions()
    out_dir = out_dir.rstrip("/")
    report = ChipFolderReport()
    done = set() if overwrite else _existing_outputs(out_dir)
    todo = []
    for chip in chips:
        if f"{chip.id}.tif" in done:
            report.skipped.append(chip.id)
        else:
            todo.append(chip)
    if report.skipped:
        log.info("%d chip(s) already predicted in %s: skipped", len(report.skipped), out_dir)
    if not todo:
        report.wall_seconds = time.perf_counter() - start
        return report

    model = prepare_model(model, options)
    plan = select_execution(options.device, options.fast)
    loader = DataLoader(
        _ChipDataset(todo, expected_size),
        batch_size=options.batch_size,
        num_workers=options.num_workers,
        collate_fn=_collate_chips,
        pin_memory=plan.is_cuda,
        prefetch_factor=2 if options.num_workers else None,
        worker_init_fn=_start_decoder,
    )
    pending: deque[Future] = deque()
    with (
        ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="chip-writer", initializer=_run_in_background
        ) as writer,
        tqdm(total=len(todo), desc="Predicting chips", unit="chip") as bar,
    ):
        for batch in loader:
            for i, problem in batch.bad:
                report.bad[todo[i].id] = problem
                log.warning("%s: %s (not predicted)", todo[i].uri, problem)
            if batch.indices:
                t0 = time.perf_counter()
                probs = _probabilities_at_scale(
                    model, batch.images, plan, options.tta, input_scale, window_sz, overlap
                )
                probs = probs.cpu().numpy()
                report.model_seconds += time.perf_counter() - t0
                for i, prob, valid in zip(batch.indices, probs, batch.valid.numpy(), strict=True):
                    uri = f"{out_dir}/{todo[i].id}.tif"
                    pending.append(writer.submit(_write_chip_output, prob, valid, threshold, uri))
                    report.written.append(todo[i].id)
            while len(pending) > MAX_PENDING_BATCHES * options.batch_size:
                pending.popleft().result()  # also surfaces a write error early
            bar.update(len(batch.indices) + len(batch.bad))
        for future in pending:
            future.result()
    report.wall_seconds = time.perf_counter() - start
    log.info("%s: %s", out_dir, report.summary())
    return report


# ----------------------------------------------------------------------------- scenes


def _read_padded(src: rasterio.DatasetReader, row: int, col: int, size: int) -> np.ndarray:
    """(3, size, size) uint8 window, zero-padded where it passes the raster's edge."""
    win = Window(col, row, min(size, src.width - col), min(size, src.height - row))
    out = np.zeros((3, size, size), dtype=np.uint8)
    out[:, : int(win.height), : int(win.width)] = read_rgb(src, win)
    return out


def _prefetched(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Iterate ``items`` in a background thread, ``depth`` items ahead (reads overlap compute).

    An exception in the producer is re-raised here; leaving the loop early stops the producer.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((end, None))
        except BaseException as exc:
            put((end, exc))

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, exc = q.get()
            if exc is not None:
                raise exc
            if item is end:
                return
            yield item
    finally:
        stop.set()
        thread.join()


def _scene_batches(
    image_uri: str, rows: list[int], cols: list[int], size: int, batch_size: int
) -> Iterator[tuple[int, list[int], np.ndarray]]:
    """(row, cols, uint8 (n, 3, size, size) windows), strip by strip, left to right."""
    with rasterio.open(image_uri) as src:
        for row in rows:
            for c0 in range(0, len(cols), batch_size):
                batch_cols = cols[c0 : c0 + batch_size]
                yield (
                    row,
                    batch_cols,
                    np.stack([_read_padded(src, row, c, size) for c in batch_cols]),
                )


def _probability_profile(src: rasterio.DatasetReader, window: Window | None = None) -> dict:
    """GeoTIFF profile of a probability raster on ``src``'s grid (or ``window`` of it)."""
    window = window or Window(0, 0, src.width, src.height)
    return {
        "driver": "GTiff",
        "width": int(window.width),
        "height": int(window.height),
        "count": 1,
        "dtype": "uint8",
        "crs": src.crs,
        "transform": src.window_transform(window),
        "tiled": True,
        "blockxsize": SCENE_BLOCK,
        "blockysize": SCENE_BLOCK,
        "compress": "deflate",
        "predictor": 2,
    }


def _output_exists(out_uri: str, overwrite: bool) -> bool:
    """Whether ``out_uri`` is done already (outputs are atomic) and is to be kept."""
    if not overwrite and uri_exists(out_uri):
        log.info("%s exists: skipped", out_uri)
        return True
    return False


def _write_final_rows(
    src: rasterio.DatasetReader,
    dst: rasterio.io.DatasetWriter,
    acc: np.ndarray,
    top: int,
    n: int,
    row_cover: np.ndarray,
    col_cover: np.ndarray,
) -> None:
    """Write the first ``n`` rows of ``acc`` (scene rows from ``top``), then shift the rest up.

    The rows are normalized by the window coverage and masked by the scene's imagery. Works
    in column blocks: on a 40,000 px wide scene a whole strip's float temporaries (division,
    clipping, rounding, validity mask) would cost several hundred MB at once.
    """
    for col in range(0, acc.shape[1], WRITE_COLUMNS):
        cols = slice(col, col + WRITE_COLUMNS)
        window = Window(col, top, acc[:n, cols].shape[1], n)
        prob = acc[:n, cols] / (row_cover[top : top + n, None] * col_cover[None, cols])
        dst.write(quantize(prob) * read_valid_mask(src, window), 1, window=window)
        acc[:-n, cols] = acc[n:, cols]  # numpy buffers the overlapping copy, one block at a time
        acc[-n:, cols] = 0


def predict_scene(
    model: nn.Module,
    image_uri: str,
    out_uri: str,
    options: InferenceOptions | None = None,
    chip_sz: int = 1024,
    overlap: int = 0,
    overwrite: bool = False,
) -> None:
    """Write a georeferenced uint8 probability raster (``round(255 * P)``) for a scene.

    The scene is predicted in windows of ``chip_sz``, batched within strips of windows; each
    finished strip is blended, masked (0 outside the imagery) and written, so memory holds
    one strip. The output has the input's grid, CRS and transform, 256 px tiles, DEFLATE.

    Args:
        model: the network (prepared here with ``options``).
        image_uri: the scene (RGBA or RGB GeoTIFF, local or s3://).
        out_uri: where to write; skipped if it exists, unless ``overwrite``.
        options: inference options (defaults if None).
        chip_sz: window side in pixels (rounded up to a multiple of 32 for small scenes).
        overlap: pixels shared by neighbouring windows, blended with linear ramps so window
            edges leave no seam (at most half a window).
        overwrite: redo an existing output.
    """
    if overlap < 0:
        raise ValueError(f"overlap {overlap} must not be negative")
    if _output_exists(out_uri, overwrite):
        return
    options = options or InferenceOptions()
    model = prepare_model(model, options)
    plan = select_execution(options.device, options.fast)
    with open_scene_checked(image_uri) as src:
        height, width = src.height, src.width
        # A small scene gets one window of about its size, not a mostly-padding chip_sz one.
        longest = -(-max(height, width) // SIZE_MULTIPLE) * SIZE_MULTIPLE
        size = min(chip_sz, longest)
        grid = _BlendGrid.over(height, width, size, overlap)
        rows, cols = grid.rows, grid.cols
        profile = _probability_profile(src)
        batches = _prefetched(_scene_batches(image_uri, rows, cols, size, options.batch_size))
        with (
            atomic_output(out_uri) as path,
            rasterio.open(path, "w", **profile) as dst,
            tqdm(total=len(rows) * len(cols), desc=os.path.basename(image_uri), unit="win") as bar,
        ):
            # Weighted sums for scene rows [top, top + len(acc)); rows above top are written.
            acc = np.zeros((size + SCENE_BLOCK, width), dtype=np.float32)
            top = 0
            for row, batch_cols, images in batches:
                probs = _probabilities(model, torch.from_numpy(images), plan, options.tta)
                wy = grid.row_weights[row]
                for col, prob in zip(batch_cols, probs.cpu().numpy(), strict=True):
                    wx = grid.col_weights[col]
                    h, w = len(wy), len(wx)
                    acc[row - top : row - top + h, col : col + w] += prob[:h, :w] * wy[:, None] * wx

                bar.update(len(batch_cols))
                if batch_cols[-1] != cols[-1]:
                    continue  # the strip is not finished
                next_row = rows[rows.index(row) + 1] if row != rows[-1] else None
                # Rows above the next strip are final; write whole tiles of them.
                end = (
                    height
                    if next_row is None
                    else top + (next_row - top) // SCENE_BLOCK * SCENE_BLOCK
                )
                if end == top:
                    continue
                _write_final_rows(src, dst, acc, top, end - top, grid.row_cover, grid.col_cover)
                top = end
    log.info("Wrote %s", out_uri)


def resample_probabilities_onto(
    prob_uri: str, scene_uri: str, window: Window, out_uri: str, block_size: int = 1024
) -> None:
    """Write ``prob_uri`` onto the grid of ``window`` of ``scene_uri``, 0 outside its imagery.

    ``prob_uri`` covers exactly the ground of the window (a resampled PREPROCESS window's
    prediction, see :mod:`benchmark.data.gsd`). Probabilities are resampled bilinearly, block by
    block, so memory is bounded by a block; the valid pixels are the scene's own.
    """
    with rasterio.open(prob_uri) as prob_src, open_scene_checked(scene_uri) as scene:
        source = Window(0, 0, prob_src.width, prob_src.height)
        back = GridMap(source, int(window.width), int(window.height))
        with (
            atomic_output(out_uri) as path,
            rasterio.open(path, "w", **_probability_profile(scene, window)) as dst,
        ):
            for block in plan_windows(back.width, back.height, back.block_side(block_size)):
                shape = (int(block.height), int(block.width))
                prob = read_bands(prob_src, back.source_window(block), shape)[0]
                valid = read_valid_mask(scene, window_of_window(window, block))
                dst.write(prob * valid, 1, window=block)
    log.info("Wrote %s (resampled from %s)", out_uri, prob_uri)


def predict_resampled_window(
    model: nn.Module,
    image_uri: str,
    scene_uri: str,
    window: Window,
    out_uri: str,
    options: InferenceOptions | None = None,
    chip_sz: int = 1024,
    overlap: int = 0,
    overwrite: bool = False,
    tmp_dir: str | None = None,
) -> None:
    """Predict a window PREPROCESS resampled to a GSD; write it on the window's own grid.

    The model runs on ``image_uri`` at its GSD (:func:`predict_scene`, into a temporary file)
    and the probabilities are resampled back onto ``window`` of ``scene_uri``, 0 outside the
    scene's imagery: the output has the grid :func:`predict_scene` gives the native window,
    so ``eval`` scores it at the original resolution.

    Args:
        model: the network (prepared with ``options``).
        image_uri: the resampled window (from PREPROCESS with ``-a gsd``).
        scene_uri: the scene it was cut from.
        window: where it sits in the scene, in scene pixels.
        out_uri: where to write; skipped if it exists, unless ``overwrite``.
        options: inference options (defaults if None).
        chip_sz: prediction window side, in resampled pixels.
        overlap: pixels shared by neighbouring prediction windows (resampled pixels).
        overwrite: redo an existing output.
        tmp_dir: where the prediction at the GSD is kept until resampled (system default).
    """
    if _output_exists(out_uri, overwrite):
        return
    with tempfile.TemporaryDirectory(prefix=TMP_PREFIX, dir=tmp_dir) as work_dir:
        at_gsd = os.path.join(work_dir, "at_gsd.tif")
        predict_scene(model, image_uri, at_gsd, options, chip_sz, overlap, overwrite=True)
        resample_probabilities_onto(at_gsd, scene_uri, window, out_uri)
