"""Folder prediction: a folder of test chips in, one mask (or probability) GeoTIFF per chip out.

The model is the whole bill, so the code around it must add almost nothing: chips are decoded in
DataLoader workers while the model runs where cores are free for them (else between batches:
:func:`decoding_workers`), and outputs are written by background threads at a low scheduling
priority (:func:`writer_threads`); beside a GPU, as many of each as there are cores. Chips at
another GSD than the model's are resized for it
(:func:`~benchmark.inference.forward.probabilities_at_scale`); chips larger than the model's
``window`` run in windows blended like a scene's (:mod:`benchmark.inference.blending`).
"""

import logging
import os
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import rasterio
import torch
from rastervision.pipeline.file_system import list_paths
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from benchmark.data.background import run_in_background, start_background_worker
from benchmark.data.constants import CHIP_SIZE, DEFAULT_THRESHOLD
from benchmark.data.imagery import open_scene_checked, read_rgb_and_valid
from benchmark.data.submission import write_mask, write_probabilities
from benchmark.data.uri_schemes import is_local, is_s3
from benchmark.data.uris import TMP_PREFIX
from benchmark.errors import listed_problems
from benchmark.inference.blending import windowed_probabilities
from benchmark.inference.execution import ExecutionPlan, InferenceOptions, execution_plan
from benchmark.inference.forward import (
    bands_for,
    batch_probabilities,
    probabilities_at_scale,
    probability_to_mask,
    quantize_on_device,
)
from benchmark.inference.plan_choice import prepare_measured
from benchmark.inference.settings import PredictionSettings

log = logging.getLogger(__name__)

# Chip outputs waiting for the writer thread, in batches: bounds memory if writing stalls.
MAX_PENDING_BATCHES = 2


class ChipLike(Protocol):
    """What folder prediction needs of a chip: a ``ChipRef`` or a config's test chip, as is."""

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
            line += f" [{self._bad_listed()}]"
        return line

    def not_predicted(self) -> str:
        """The bad chips in one line for an error: how many, the first few with why."""
        return f"{len(self.bad)} chip(s) not predicted: {self._bad_listed()}"

    def _bad_listed(self) -> str:
        return listed_problems([f"{k}: {v}" for k, v in sorted(self.bad.items())])


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
    """Decodes chips (in a DataLoader worker); a bad chip yields its problem, not an error.

    ``threads``: GDAL threads decompressing a local chip's blocks; more than one only where
    decoding has the cores to itself (between batches: a 1024 px DEFLATE chip took ~20 ms on
    one core of a 2-core Xeon and ~13 ms on two, ``wb_scripts/bench --only chip_io``). Chips
    on S3 are read on one thread: with more, GDAL 3.10 read a block S3 answered with an HTTP
    500 or 503 (which it retries on one thread) as zeros, silently: a wrong mask, no error
    (``tests/cli/test_predict_s3_faults.py``).
    """

    def __init__(self, chips: Sequence[ChipLike], expected_size: int, threads: int = 1) -> None:
        self.uris = [chip.uri for chip in chips]
        self.expected_size = expected_size
        self.threads = threads

    def __len__(self) -> int:
        return len(self.uris)

    def _read(self, uri: str) -> tuple[np.ndarray, np.ndarray]:
        size = self.expected_size
        threads = self.threads if is_local(uri) else 1
        with (
            rasterio.Env(GDAL_NUM_THREADS=threads),  # not an open option: JPEG, PNG ignore it
            open_scene_checked(uri, require_georef=False) as src,
        ):
            if src.count not in (3, 4):
                raise ValueError(f"{src.count} bands, expected 3 (RGB) or 4 (RGBA)")
            if (src.height, src.width) != (size, size):
                raise ValueError(f"{src.width}x{src.height} px, expected {size}x{size}")
            return read_rgb_and_valid(src)

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


def decoding_workers(options: InferenceOptions, plan: ExecutionPlan) -> int:
    """Chip-decoding processes: ``options.num_workers``, or where it is None, by the hardware.

    On a GPU, one per usable core: the cores' only work is then around the model, and a GPU
    runs a 1024 px chip in a few ms while decoding one takes a core ~20 ms, so a single
    decoder would leave the GPU waiting most of the time. On a CPU, 1 where a core is free of
    the model (it has fewer threads than the process has cores), else 0: when every core runs
    the model, a decoding process beside it preempts one of the model's threads, and every
    multi-threaded operator then waits for that thread. Decoding between batches costs only
    its own time, a few percent of a 1024 px chip's forward pass on a CPU
    (``predict_overhead_ratio`` in ``wb_scripts/bench``: 1.275 with a worker, 0.98 without,
    on a 2-core Xeon; docs/results.md).
    """
    if options.num_workers is not None:
        return options.num_workers
    if plan.is_cuda:
        return usable_cores()
    return 1 if (options.num_threads or torch.get_num_threads()) < usable_cores() else 0


def writer_threads(options: InferenceOptions, plan: ExecutionPlan) -> int:
    """Threads writing outputs: ``options.num_writers``, or one per usable core on a GPU, else 1.

    Compressing and writing a chip's output takes a core several ms (GDAL releases the GIL,
    so threads write in parallel); on a CPU that is a small share beside the model and one
    background thread keeps up, but beside a GPU's few ms per chip one thread would be the
    bottleneck.
    """
    if options.num_writers is not None:
        return options.num_writers
    return usable_cores() if plan.is_cuda else 1


def usable_cores() -> int:
    """Cores this process may run on (its affinity, where the OS says)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return cores or 1


def _on_host(probs_u8: torch.Tensor, plan: ExecutionPlan) -> np.ndarray:
    """A batch's uint8 probabilities as numpy: from a GPU, one copy into page-locked memory.

    A copy into pageable memory (``.cpu()``) goes through CUDA's staging buffer piece by
    piece; into page-locked memory it is one DMA transfer, issued without blocking and waited
    for once, as the writers need it whole. They then take each chip's slice without copying.
    """
    if not plan.is_cuda:
        return probs_u8.numpy()
    host = torch.empty(probs_u8.shape, dtype=torch.uint8, pin_memory=True)
    host.copy_(probs_u8, non_blocking=True)
    torch.cuda.current_stream(plan.device).synchronize()
    return host.numpy()


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
    prob_u8: np.ndarray, valid: np.ndarray, threshold: float | None, uri: str
) -> None:
    """Threshold one chip's uint8 probabilities (or not), zero outside its imagery, write."""
    prob_u8[~valid] = 0
    if threshold is None:
        write_probabilities(prob_u8, uri)
    else:
        write_mask(probability_to_mask(prob_u8, threshold), uri)


def _chip_probabilities(
    model: nn.Module,
    images: torch.Tensor,
    plan: ExecutionPlan,
    settings: PredictionSettings,
    scale: float,
) -> torch.Tensor:
    """P(building) (B, H, W) of uint8 chips: resized by ``scale``, whole or in windows.

    An instance model's P(body): a test chip's output is P(building), whatever the model.
    """
    tta = settings.options.tta

    def probabilities(batch: torch.Tensor) -> torch.Tensor:
        if settings.window is None:
            probs = batch_probabilities(model, batch, plan, tta)
        else:
            window, overlap = settings.window, settings.overlap
            probs = windowed_probabilities(model, batch, plan, tta, window, overlap)
        return bands_for(probs, "binary")

    return probabilities_at_scale(images, plan, scale, probabilities)[:, 0]


def predict_chip_folder(
    model: nn.Module,
    chips: Sequence[ChipLike],
    out_dir: str,
    settings: PredictionSettings | None = None,
    threshold: float | None = DEFAULT_THRESHOLD,
    expected_size: int = CHIP_SIZE,
    chip_gsd: float | None = None,
    overwrite: bool = False,
) -> ChipFolderReport:
    """Write ``{out_dir}/{id}.tif`` for every chip: its 0/1 building mask.

    Chips are decoded in DataLoader processes while the model runs (or between batches, see
    :func:`decoding_workers`) and outputs are written by a background thread, so the wall time
    stays close to the model's. Pixels outside the imagery (alpha 0) are 0.

    Args:
        model: the network (prepared here with ``settings.options``).
        chips: ``ChipRef``-like objects with ``.id`` and ``.uri``.
        out_dir: output directory (local or s3://).
        settings: the prediction settings (defaults if None): chips larger than
            ``settings.window`` (after resizing) run in windows blended like a scene's (see
            :mod:`benchmark.inference.blending`); with no window, whole.
        threshold: building when P > threshold; None writes uint8 probabilities
            ``round(255 * P)`` instead (for a threshold chosen later).
        expected_size: chips must be this many pixels square.
        chip_gsd: the chips' metres per pixel: with ``settings.gsd`` they are resized to it
            for the model (see :func:`benchmark.data.gsd.gsd_scale`), outputs keep the chips'
            size; None: predicted as they are.
        overwrite: redo chips whose output exists; otherwise they are skipped, which resumes an
            interrupted run (outputs are atomic, so an existing one is complete).

    Returns:
        What was written, skipped and refused (bad chips: unreadable, not 3/4 bands, wrong
        size), with timings.
    """
    start = time.perf_counter()
    settings = settings or PredictionSettings()
    options, input_scale = settings.options, settings.input_scale(chip_gsd)
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

    plan = execution_plan(options)  # its device; the model is prepared on the first batch
    workers = decoding_workers(options, plan)
    loader = DataLoader(
        _ChipDataset(todo, expected_size, threads=1 if workers else usable_cores()),
        batch_size=options.batch_size,
        num_workers=workers,
        collate_fn=_collate_chips,
        pin_memory=plan.is_cuda,
        prefetch_factor=2 if workers else None,
        worker_init_fn=start_background_worker,
    )
    pending: deque[Future] = deque()
    prepared = False
    with (
        ThreadPoolExecutor(
            max_workers=writer_threads(options, plan),
            thread_name_prefix="chip-writer",
            initializer=run_in_background,
        ) as writer,
        tqdm(total=len(todo), desc="Predicting chips", unit="chip") as bar,
    ):
        for batch in loader:
            for i, problem in batch.bad:
                report.bad[todo[i].id] = problem
                log.warning("%s: %s (not predicted)", todo[i].uri, problem)
            if batch.indices:
                if not prepared:  # for the plan chosen on this batch, where "auto" asks
                    work = len(todo) * expected_size**2
                    decision = DEFAULT_THRESHOLD if threshold is None else threshold
                    model, options = prepare_measured(model, options, batch.images, work, decision)
                    plan, prepared = execution_plan(options), True
                t0 = time.perf_counter()
                probs = _chip_probabilities(model, batch.images, plan, settings, input_scale)
                probs = _on_host(quantize_on_device(probs), plan)  # not in the writers
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
