"""The fastest plan on the CPU at hand, chosen by measuring it: what ``--plan auto`` runs.

CPU flags do not say which plan wins. A Zen 4 has native bf16, which the flags' rule
(:func:`~benchmark.inference.execution.select_execution`) picks, yet it runs AVX-512 on 256-bit
units and int8 in ONNX Runtime beat bf16 there (``plan_speedup_<plan>`` in ``wb_scripts/bench``);
the CPUs of a cloud queue cannot be listed in advance. So on first use of a network on a
machine, :func:`prepare_measured` times every plan the machine can run
(:func:`candidate_plans`) on crops of the first batch of real images, keeps those whose masks
stay within ``tolerance`` of fp32's, and takes the fastest. The choice is logged in one line
and cached in ``plans.json`` in the user's cache directory (:func:`cache_path`), keyed by CPU
model, network digest, torch and onnxruntime versions and thread count (:func:`cache_key`):
later runs on that machine pay nothing.

The tolerance bounds the Jaccard distance (1 - IoU) between a plan's mask and fp32's at the
threshold in use. Jaccard distance is a metric, so on the crops compared a plan's Jaccard score
against any labels differs from fp32's by at most that distance; elsewhere it is an estimate
(int8 is calibrated on other crops of the batch than those compared, so it is not flattered).
The bound is loose: the pixels a plan flips lie near the threshold and go both ways, so the
score moves far less than the masks differ. The bench checks the score itself
(``cpu_fast_path_jaccard_delta``, goal 0.005) on the whole validation scene.

What it costs, bounded by construction rather than by a clock: ``CROPS`` crops of
``CROP_SIDE`` px (together an eighth of a 1024 px chip) run ``REPEATS + 1`` times per plan, the
first untimed (a warm-up), the best of the others kept: for five plans about two chips' worth
of compute. On top come what preparing a plan costs anyway, once: the ONNX exports (onnx,
int8) and int8's calibration on ``CALIBRATION_CROPS`` crops of ``CALIBRATION_SIDE`` px,
seconds each, logged by their modules; the bench reports the total (``plan_choice_s``), and
nothing is timed against a clock (a loaded machine takes longer, it does not choose worse
for being cut short). It never runs for less work than
``MIN_WORK_PIXELS`` (a single small chip: the measure would cost more than it saves), on a
GPU, or on a network already in ONNX Runtime: the flags' rule decides there.
"""

import copy
import hashlib
import importlib.metadata
import json
import logging
import os
import platform
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from benchmark.data.constants import DEFAULT_THRESHOLD
from benchmark.data.uris import atomic_output
from benchmark.inference.execution import (
    InferenceOptions,
    cpu_has_fast_bf16,
    execution_plan,
    prepare_model,
)
from benchmark.inference.forward import batch_probabilities, probability_to_mask, quantize
from benchmark.inference.onnx_runtime import OnnxRuntimeNetwork, onnx_runtime_available
from benchmark.inference.quantize import CALIBRATION_CROPS, calibration_crops

log = logging.getLogger(__name__)

# The largest Jaccard distance from fp32's mask a plan may have: four times the bench's goal
# for the score (cpu_fast_path_jaccard_delta 0.005), as the distance bounds the score's change
# loosely (see the module's docstring). At 0.005 the int8 plan was refused on a Xeon for a mask
# distance of 0.0052, where its score moved by less than the goal.
TOLERANCE = 0.02
# Crops each plan is timed on, and their side: small enough that the runs of every plan
# together cost a few chips' worth, large enough that a 256 px crop runs the encoder's deepest
# level on 8 x 8 cells.
CROPS = 2
CROP_SIDE = 256
# int8's calibration crops: as many as it takes from a batch, smaller (activation ranges do not
# depend on the crop size, and the calibrating call also predicts them).
CALIBRATION_SIDE = 128
# Timed runs per plan after the warm-up; the fastest is kept (noise only ever adds time).
REPEATS = 2
# No measure for less work than this (four 1024 px chips): the flags' choice runs it.
MIN_WORK_PIXELS = 4 * 1024 * 1024
# Where the choices are cached: this variable's directory, else the user's cache directory.
CACHE_ENV = "OPEN_CITIES_BENCHMARK_CACHE"
CACHE_FILE = "plans.json"

# Networks prepared in this process, so the pipeline's scenes and chips prepare (and measure)
# once: the network given -> {options: _Prepared}. Only prepared copies are kept (a network
# prepared in place, plain fp32, would keep its own entry alive), and a copy handed back is
# known by _COPIES, whose values do not refer to it (else it could never be freed).
_PREPARED: "weakref.WeakKeyDictionary[nn.Module, dict[InferenceOptions, _Prepared]]" = (
    weakref.WeakKeyDictionary()
)
_COPIES: "weakref.WeakKeyDictionary[nn.Module, dict[InferenceOptions, InferenceOptions]]" = (
    weakref.WeakKeyDictionary()
)


@dataclass(frozen=True)
class _Prepared:
    """A network prepared for its plan, the options naming it, and whether it was measured.

    ``measured`` False: the flags' rule, for want of work or content to measure on; a later
    call that has both measures (the first image of a folder may be small, or blank).
    """

    model: nn.Module
    options: InferenceOptions
    measured: bool


def candidate_plans(cpu_bf16: bool, onnx_runtime: bool) -> list[str]:
    """The CPU plans worth timing on this machine; fp32, the reference, first.

    bf16 only where the CPU computes it natively: emulated, it is 5-17x slower than fp32 and
    timing it would cost more than the rest together.
    """
    plans = ["fp32", "fp32_channels_last"]
    plans += ["onnx", "int8"] if onnx_runtime else []
    return plans + (["bf16"] if cpu_bf16 else [])


def fastest_within_tolerance(
    seconds: Mapping[str, float], distances: Mapping[str, float], tolerance: float = TOLERANCE
) -> str:
    """The fastest plan whose Jaccard distance from fp32 is at most ``tolerance`` (fp32 always is).

    Args:
        seconds: each measured plan's time on the same crops.
        distances: each plan's Jaccard distance from fp32's mask (fp32's own is 0).
        tolerance: the largest distance allowed.
    """
    kept = [name for name in seconds if name == "fp32" or distances[name] <= tolerance]
    return min(kept, key=lambda name: seconds[name])


def jaccard_distance(mask: np.ndarray, reference: np.ndarray) -> float:
    """1 - IoU of two 0/1 masks; 0 when both are empty."""
    union = np.count_nonzero(mask | reference)
    return 0.0 if union == 0 else 1.0 - np.count_nonzero(mask & reference) / union


def cpu_model() -> str:
    """The CPU's model name (Linux's ``/proc/cpuinfo``; else what ``platform`` says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def network_digest(model: nn.Module) -> str:
    """A digest of ``model``'s weights: the same network in any bundle or layout, one digest."""
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in model.state_dict().items():
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "none"


def cache_key(model: nn.Module, num_threads: int) -> str:
    """What a choice depends on: CPU model, network, torch and onnxruntime versions, threads."""
    return (
        f"{cpu_model()} | network {network_digest(model)} | torch {torch.__version__}"
        f" | onnxruntime {_version('onnxruntime')} | {num_threads} threads"
    )


def cache_path() -> Path:
    """``plans.json`` in ``$OPEN_CITIES_BENCHMARK_CACHE``, else ``$XDG_CACHE_HOME`` or ~/.cache."""
    folder = os.environ.get(CACHE_ENV)
    if not folder:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        folder = str(Path(base) / "open-cities-benchmark")
    return Path(folder) / CACHE_FILE


def read_cache(path: Path) -> dict:
    """The cached choices; a missing file is empty, a corrupt one ignored with a warning."""
    try:
        cached = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("%s: ignored, not a readable plan cache (%s)", path, exc)
        return {}
    if not isinstance(cached, dict):
        log.warning("%s: ignored, not a readable plan cache (not a JSON object)", path)
        return {}
    return cached


def write_cache(path: Path, key: str, entry: dict) -> None:
    """Add ``entry`` under ``key``, atomically; a cache that cannot be written is only a warning.

    Two processes choosing at once may each write their own entry over the other's: the lost
    one is measured again next time.
    """
    cached = read_cache(path)
    cached[key] = entry
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(str(path)) as partial:
            Path(partial).write_text(json.dumps(cached, indent=2, sort_keys=True) + "\n")
    except OSError as exc:
        log.warning("%s: plan choice not cached (%s)", path, exc)


def _crops(images: np.ndarray | torch.Tensor, count: int, side: int, seed: int) -> torch.Tensor:
    """uint8 (count, 3, s, s) crops of the uint8 (B, 3, H, W) batch with the most content."""
    crops = calibration_crops(np.asarray(images), count, side, seed)
    return torch.from_numpy(np.concatenate(crops).astype(np.uint8))


def _time_plan(
    model: nn.Module, options: InferenceOptions, crops: torch.Tensor, calibration: torch.Tensor,
    threshold: float,
) -> tuple[nn.Module, float, np.ndarray]:  # fmt: skip
    """``model`` prepared for ``options``' plan, its best time on ``crops``, and their masks.

    The first run warms the plan up, untimed; int8 calibrates on ``calibration`` before, other
    crops than those its masks are compared on, as it calibrates on one batch and predicts all.
    """
    prepared = prepare_model(copy.deepcopy(model), options)  # preparing may change it in place
    plan = execution_plan(options)
    if plan.int8:
        batch_probabilities(prepared, calibration, plan, False)
    timings = []
    for _ in range(REPEATS + 1):
        start = time.perf_counter()
        probabilities = batch_probabilities(prepared, crops, plan, False)
        timings.append(time.perf_counter() - start)
    # P(building): an instance model's border and contact bands are not compared
    building = quantize(probabilities[:, 0])
    return prepared, min(timings[1:]), probability_to_mask(building, threshold)


def measure_plans(
    model: nn.Module,
    options: InferenceOptions,
    images: np.ndarray | torch.Tensor,
    threshold: float,
    plans: list[str],
) -> tuple[dict[str, float], dict[str, float], dict[str, nn.Module]]:
    """Each of ``plans`` (fp32 first) on crops of ``images``: seconds, distance, prepared model."""
    crops = _crops(images, CROPS, CROP_SIDE, seed=0)
    calibration = _crops(images, CALIBRATION_CROPS, CALIBRATION_SIDE, seed=1)
    seconds, distances, prepared = {}, {}, {}
    reference = None
    for name in plans:
        forced = replace(options, execution=name)
        prepared[name], seconds[name], masks = _time_plan(
            model, forced, crops, calibration, threshold
        )
        reference = masks if reference is None else reference
        distances[name] = jaccard_distance(masks.astype(bool), reference.astype(bool))
    return seconds, distances, prepared


def _in_onnx_runtime(model: nn.Module) -> bool:
    return any(isinstance(module, OnnxRuntimeNetwork) for module in model.modules())


def _has_content(images: np.ndarray | torch.Tensor) -> bool:
    """Whether the images show anything (on blank ones all masks agree, int8 calibrates badly)."""
    images = torch.as_tensor(images)
    return images.numel() > 0 and bool(images.float().std() > 0)


def _worth_measuring(images: np.ndarray | torch.Tensor, work_pixels: int) -> bool:
    """Whether the work pays for a measure and the images show something to measure on."""
    return work_pixels >= MIN_WORK_PIXELS and _has_content(images)


def _choose(
    model: nn.Module, options: InferenceOptions, images: np.ndarray | torch.Tensor,
    work_pixels: int, threshold: float,
) -> _Prepared:  # fmt: skip
    """The cached, measured or flags' plan for ``options`` "auto" on a CPU (see the module)."""
    if options.num_threads:
        torch.set_num_threads(options.num_threads)
    plans = candidate_plans(cpu_has_fast_bf16(), onnx_runtime_available())
    path, key = cache_path(), cache_key(model, torch.get_num_threads())
    entry = read_cache(path).get(key, {})
    if entry.get("plan") in plans and entry.get("tolerance") == TOLERANCE:
        log.info("Plan %s: measured the fastest on this CPU before (%s)", entry["plan"], path)
        chosen = replace(options, execution=entry["plan"])
        return _Prepared(prepare_model(model, chosen), chosen, measured=True)
    if not _worth_measuring(images, work_pixels):
        log.debug("%d px to predict: the plan from CPU flags, not measured", work_pixels)
        return _Prepared(prepare_model(model, options), options, measured=False)
    start = time.perf_counter()
    seconds, distances, candidates = measure_plans(model, options, images, threshold, plans)
    name = fastest_within_tolerance(seconds, distances)
    entry = {
        "plan": name,
        "seconds": seconds,
        "jaccard_distance": distances,
        "tolerance": TOLERANCE,
    }
    write_cache(path, key, entry)
    log.info(
        "Plan %s: the fastest within Jaccard %g of fp32 here, measured in %.1f s (%s)",
        name, TOLERANCE, time.perf_counter() - start,
        "; ".join(f"{p} {seconds['fp32'] / seconds[p]:.2f}x, {distances[p]:.4f}" for p in plans),
    )  # fmt: skip
    return _Prepared(candidates[name], replace(options, execution=name), measured=True)


def prepare_measured(
    model: nn.Module,
    options: InferenceOptions,
    images: np.ndarray | torch.Tensor,
    work_pixels: int,
    threshold: float = DEFAULT_THRESHOLD,
) -> tuple[nn.Module, InferenceOptions]:
    """``model`` prepared for its plan, and ``options`` naming it: "auto" chosen by measuring.

    What folder and scene prediction call on their first batch, in place of
    :func:`prepare_model`. A forced plan, a GPU or a network already in ONNX
    Runtime: the plan asked for (or the flags' rule). Otherwise the plan cached for this machine
    and network, else the fastest measured on ``images`` where ``work_pixels`` make it pay,
    else the flags' rule. Once per network and options in a process: the pipeline's scenes and
    chips share one network, prepared by the first of them.

    Args:
        model: the network (prepared here).
        options: inference options; ``execution`` "auto" is resolved.
        images: the first batch, uint8 (B, 3, H, W).
        work_pixels: pixels the caller is about to predict (whether a measure pays).
        threshold: the decision threshold masks are compared at.
    """
    if options in _COPIES.get(model, {}):  # prepared here before
        return model, _COPIES[model][options]
    known = _PREPARED.get(model, {}).get(options)
    if known is not None and (known.measured or not _worth_measuring(images, work_pixels)):
        return known.model, known.options
    if options.execution != "auto" or execution_plan(options).is_cuda or _in_onnx_runtime(model):
        result = _Prepared(prepare_model(model, options), options, measured=True)
    else:
        result = _choose(model, options, images, work_pixels, threshold)
    if result.model is not model:
        _PREPARED.setdefault(model, {})[options] = result
        _COPIES.setdefault(result.model, {})[options] = result.options
    return result.model, result.options
