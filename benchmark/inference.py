"""Running the model: batched chips, windowed scenes, and the fast paths that matter.

The model is the whole bill (a 1024 px chip costs seconds on a CPU, reading it ~10 ms), so the
code around it must add almost nothing: chips are decoded in a DataLoader worker while the
model runs, outputs are written by a background thread, and the model runs in the fastest
mode the hardware has (see :func:`plan_execution`). Scenes are predicted window by window,
one strip of windows at a time, so memory is bounded by the strip, not the scene.

Probabilities are stored as uint8 ``round(255 * P(building))``; a pixel is a building when
that value exceeds ``255 * threshold`` (:func:`probability_to_mask`), everywhere: folder
predict, POSTPROCESS and eval use that one rule.
"""

import logging
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import rasterio
import torch
from rasterio.windows import Window
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from benchmark.imagery import open_scene_checked, read_rgb, read_valid_mask
from benchmark.stac import ChipRef
from benchmark.submission import write_mask
from benchmark.uris import atomic_output, uri_exists

log = logging.getLogger(__name__)


def probability_to_mask(prob_u8: np.ndarray, threshold: float) -> np.ndarray:
    """uint8 building mask (1 = building) from uint8 probabilities."""
    return (prob_u8 > round(255 * threshold, 6)).astype(np.uint8)


def quantize(prob: np.ndarray) -> np.ndarray:
    """Float probabilities in [0, 1] -> uint8 ``round(255 * P)``."""
    return np.rint(np.clip(prob, 0.0, 1.0) * 255).astype(np.uint8)


@dataclass
class InferenceOptions:
    """How to run the model."""

    device: str = "auto"  # "auto": CUDA when available, else CPU
    fast: bool = True  # the hardware's fast path (see plan_execution); False = plain fp32
    batch_size: int = 4
    tta: bool = False  # average the 8 flips/rotations of the input (8x the compute)
    num_threads: int | None = None  # torch CPU threads; None = all cores


@dataclass(frozen=True)
class ExecutionPlan:
    """Device, memory layout and reduced precision chosen for inference."""

    device: torch.device
    channels_last: bool
    autocast_dtype: torch.dtype | None


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX).

    Without it, autocast to bf16 is emulated and several times slower than fp32 (measured
    here on an AVX2-only AMD EPYC), so the fast path must not use it.
    """
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def plan_execution(
    device: str = "auto", fast: bool = True, cpu_bf16: bool | None = None
) -> ExecutionPlan:
    """Pick the execution mode: a pure function of the hardware, so it is testable anywhere.

    CUDA, fast: channels_last + fp16 autocast (cudnn.benchmark is set when the model is
    prepared). CPU, fast: channels_last (oneDNN's preferred layout) + bf16 autocast only where
    the CPU has native bf16. ``fast=False``: plain fp32, contiguous.
    """
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if not fast:
        return ExecutionPlan(dev, channels_last=False, autocast_dtype=None)
    if dev.type == "cuda":
        return ExecutionPlan(dev, channels_last=True, autocast_dtype=torch.float16)
    has_bf16 = cpu_has_fast_bf16() if cpu_bf16 is None else cpu_bf16
    return ExecutionPlan(
        dev, channels_last=True, autocast_dtype=torch.bfloat16 if has_bf16 else None
    )


def _d4_transforms() -> list[tuple[int, bool]]:
    """The 8 symmetries of a square: (quarter turns, flip)."""
    return [(k, flip) for k in range(4) for flip in (False, True)]


class Predictor:
    """A model prepared for inference: uint8 images in, building probabilities out."""

    def __init__(self, model: nn.Module, options: InferenceOptions | None = None) -> None:
        self.options = options or InferenceOptions()
        if self.options.num_threads:
            torch.set_num_threads(self.options.num_threads)
        self.plan = plan_execution(self.options.device, self.options.fast)
        model = model.eval().to(self.plan.device)
        if self.plan.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if self.plan.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.model = model
        log.info("Inference plan: %s", self.plan)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.plan.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        dtype = self.plan.autocast_dtype
        autocast = torch.autocast(self.plan.device.type, dtype=dtype) if dtype else nullcontext()
        with autocast:
            logits = self.model(x)
        return logits.float().softmax(dim=1)[:, 1]

    @torch.inference_mode()
    def probabilities(self, images: np.ndarray | torch.Tensor) -> np.ndarray:
        """float32 (B, H, W) P(building) for uint8 (B, 3, H, W) images."""
        x = torch.as_tensor(images)
        x = x.to(self.plan.device, non_blocking=True).float().div_(255)
        if not self.options.tta:
            return self._forward(x).cpu().numpy()
        total = torch.zeros(x.shape[0], *x.shape[2:], device=x.device)
        for k, flip in _d4_transforms():
            t = torch.rot90(x, k, dims=(2, 3))
            t = torch.flip(t, dims=(3,)) if flip else t
            p = self._forward(t)
            p = torch.flip(p, dims=(2,)) if flip else p
            total += torch.rot90(p, -k, dims=(1, 2))
        return (total / 8).cpu().numpy()


# ----------------------------------------------------------------------------- test chips


@dataclass
class ChipFolderReport:
    """What folder prediction did, chip by chip."""

    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # output already complete (resume)
    bad: dict[str, str] = field(default_factory=dict)  # chip id -> problem

    def summary(self) -> str:
        """One line for the log."""
        line = f"{len(self.written)} written, {len(self.skipped)} already done, {len(self.bad)} bad"
        if self.bad:
            shown = "; ".join(f"{k}: {v}" for k, v in list(self.bad.items())[:5])
            line += f" ({shown}{'; ...' if len(self.bad) > 5 else ''})"
        return line


class _ChipDataset(Dataset):
    """Decodes chips (in a DataLoader worker); a bad chip yields its problem, not an error."""

    def __init__(self, chips: Sequence[ChipRef], expected_size: int) -> None:
        self.chips = list(chips)
        self.expected_size = expected_size

    def __len__(self) -> int:
        return len(self.chips)

    def __getitem__(self, index: int) -> tuple[int, np.ndarray | None, np.ndarray | None, str]:
        chip = self.chips[index]
        try:
            with open_scene_checked(chip.uri, require_georef=False) as src:
                size = self.expected_size
                if (src.height, src.width) != (size, size):
                    return index, None, None, f"{src.width}x{src.height}, expected {size}x{size}"
                if src.count not in (3, 4):
                    return index, None, None, f"{src.count} bands, expected 3 or 4"
                return index, read_rgb(src), read_valid_mask(src), ""
        except Exception as exc:  # reported by name; the rest of the set still predicts
            return index, None, None, str(exc).removeprefix(f"{chip.uri}: ")


def _collate(items: list) -> list:
    return items


def _batches(
    dataset: _ChipDataset, batch_size: int, num_workers: int
) -> Iterator[list[tuple[int, np.ndarray | None, np.ndarray | None, str]]]:
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=_collate,
        prefetch_factor=2 if num_workers else None,
    )
    yield from loader


def predict_chip_folder(
    model: nn.Module | Predictor,
    chips: Sequence[ChipRef],
    out_dir: str,
    options: InferenceOptions | None = None,
    threshold: float | None = 0.5,
    expected_size: int = 1024,
    overwrite: bool = False,
    num_workers: int = 1,
) -> ChipFolderReport:
    """Write ``{out_dir}/{id}.tif`` for every chip: a 0/1 mask, or probabilities if no threshold.

    Chips whose output exists are skipped (outputs are written atomically, so an existing one
    is complete) unless ``overwrite``. Bad chips are listed in the report and the log.
    """
    predictor = model if isinstance(model, Predictor) else Predictor(model, options)
    report = ChipFolderReport()
    out_dir = out_dir.rstrip("/")
    todo = []
    for chip in chips:
        if not overwrite and uri_exists(f"{out_dir}/{chip.id}.tif"):
            report.skipped.append(chip.id)
        else:
            todo.append(chip)
    if report.skipped:
        log.info("%d chip(s) already predicted in %s: skipped", len(report.skipped), out_dir)

    dataset = _ChipDataset(todo, expected_size)
    pending: list[Future] = []
    with (
        ThreadPoolExecutor(max_workers=1) as writer,
        tqdm(total=len(todo), desc="Predicting chips", unit="chip") as bar,
    ):
        for batch in _batches(dataset, predictor.options.batch_size, num_workers):
            good = [(i, img, valid) for i, img, valid, problem in batch if not problem]
            for i, _, _, problem in batch:
                if problem:
                    report.bad[todo[i].id] = problem
                    log.warning("%s: %s (skipped)", todo[i].uri, problem)
            if good:
                probs = predictor.probabilities(np.stack([img for _, img, _ in good]))
                for (i, _, valid), prob in zip(good, probs, strict=True):
                    out = quantize(prob) * valid
                    if threshold is not None:
                        out = probability_to_mask(out, threshold)
                    uri = f"{out_dir}/{todo[i].id}.tif"
                    pending.append(writer.submit(write_mask, out, uri))
                    report.written.append(todo[i].id)
            bar.update(len(batch))
        for future in pending:
            future.result()
    log.info("%s: %s", out_dir, report.summary())
    return report


# ----------------------------------------------------------------------------- scenes


def _blend_weights(size: int, overlap: int) -> np.ndarray:
    """1-D weights: 1 in the middle, ramping down across the overlap at each end.

    Neighbouring windows' ramps sum to a constant across their overlap, so blending leaves no
    seam; the floor keeps image borders (where no neighbour exists) well defined.
    """
    w = np.ones(size, dtype=np.float32)
    if overlap > 0:
        ramp = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
        w[:overlap] = ramp
        w[size - overlap :] = ramp[::-1]
    return np.maximum(w, 1e-3)


def _starts(length: int, size: int, stride: int) -> list[int]:
    """Window origins along one axis: every pixel covered, the last window flush with the end."""
    if length <= size:
        return [0]
    starts = list(range(0, length - size, stride))
    return [*starts, length - size]


def _read_padded(src: rasterio.DatasetReader, row: int, col: int, size: int) -> np.ndarray:
    """(3, size, size) uint8 window, zero-padded where it passes the raster's edge."""
    win = Window(col, row, min(size, src.width - col), min(size, src.height - row))
    out = np.zeros((3, size, size), dtype=np.uint8)
    out[:, : int(win.height), : int(win.width)] = read_rgb(src, win)
    return out


def predict_scene(
    model: nn.Module | Predictor,
    image_uri: str,
    out_uri: str,
    options: InferenceOptions | None = None,
    chip_sz: int = 1024,
    overlap: int = 0,
    overwrite: bool = False,
) -> None:
    """Write a georeferenced uint8 probability raster for a scene, window by window.

    Args:
        model: the network (or a ready :class:`Predictor`).
        image_uri: the scene (RGBA/RGB GeoTIFF, local or s3://).
        out_uri: where to write (skipped if it exists, unless ``overwrite``).
        options: inference options.
        chip_sz: window side in pixels.
        overlap: pixels shared by neighbouring windows, blended with linear ramps.
        overwrite: redo an existing output.
    """
    if not overwrite and uri_exists(out_uri):
        log.info("%s exists: skipped", out_uri)
        return
    if overlap < 0:
        raise ValueError(f"overlap {overlap} must not be negative")
    predictor = model if isinstance(model, Predictor) else Predictor(model, options)
    with open_scene_checked(image_uri) as src:
        height, width = src.height, src.width
        # Small scenes: one window of the scene's size, not a mostly-padding chip_sz window.
        chip_sz = min(chip_sz, max(height, width))
        overlap = min(overlap, chip_sz // 2)
        stride = chip_sz - overlap
        weight_1d = _blend_weights(chip_sz, overlap)
        weight = np.outer(weight_1d, weight_1d)
        rows, cols = _starts(height, chip_sz, stride), _starts(width, chip_sz, stride)
        profile = {
            "driver": "GTiff",
            "width": width,
            "height": height,
            "count": 1,
            "dtype": "uint8",
            "crs": src.crs,
            "transform": src.transform,
            "tiled": True,
            "blockxsize": 256,
            "blockysize": 256,
            "compress": "deflate",
        }
        with atomic_output(out_uri) as path, rasterio.open(path, "w", **profile) as dst:
            # Accumulators for the rows [row, row + chip_sz) of the current strip.
            acc = np.zeros((chip_sz, width), dtype=np.float32)
            wsum = np.zeros((chip_sz, width), dtype=np.float32)
            bar = tqdm(
                total=len(rows) * len(cols), desc=f"Predicting {os.path.basename(image_uri)}"
            )
            for r_i, row in enumerate(rows):
                batch_size = predictor.options.batch_size
                for c0 in range(0, len(cols), batch_size):
                    batch_cols = cols[c0 : c0 + batch_size]
                    images = np.stack([_read_padded(src, row, c, chip_sz) for c in batch_cols])
                    probs = predictor.probabilities(images)
                    for col, prob in zip(batch_cols, probs, strict=True):
                        w = min(chip_sz, width - col)
                        h = min(chip_sz, height - row)
                        acc[:h, col : col + w] += prob[:h, :w] * weight[:h, :w]
                        wsum[:h, col : col + w] += weight[:h, :w]
                    bar.update(len(batch_cols))
                last = r_i == len(rows) - 1
                done = min(chip_sz, height - row) if last else rows[r_i + 1] - row
                window = Window(0, row, width, done)
                prob = np.divide(
                    acc[:done], wsum[:done], out=np.zeros_like(acc[:done]), where=wsum[:done] > 0
                )
                dst.write(quantize(prob) * read_valid_mask(src, window), 1, window=window)
                # Carry the overlap rows into the next strip's accumulators.
                for buf in (acc, wsum):
                    buf[: chip_sz - done] = buf[done:].copy()
                    buf[chip_sz - done :] = 0
            bar.close()
    log.info("Wrote %s", out_uri)
