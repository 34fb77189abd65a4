"""The execution plan predict ran, recorded beside its outputs, and the one eval reruns it with.

A threshold is applied to predict's probabilities, so one chosen on probabilities eval
computes itself (``-a threshold train``: the training chips predicted by the model) must come
from the same numbers. But predict runs on the GPU queue, in fp16, and eval on the CPU queue,
whose own fast plan (bf16 or int8) rounds differently, near the threshold too. So predict
records the plan it ran (:func:`record_plan`), and eval runs that plan where this machine can
(:func:`replay_options`); where it cannot (fp16 on a CPU, ONNX Runtime missing), it runs
fp32, the reference every plan approximates and the nearest to fp16 a CPU has, and says so in
one line. The share threshold (``-a threshold share``) needs nothing of the kind: it reads
predict's own validation probabilities.
"""

import logging
from dataclasses import replace

import torch

from benchmark.data.uris import read_json, uri_exists, write_json
from benchmark.inference.execution import ExecutionPlan, InferenceOptions, select_execution

log = logging.getLogger(__name__)

# What eval runs where the recorded plan cannot run here.
NEAREST_EVERYWHERE = "fp32"


def record_plan(plan: ExecutionPlan, uri: str) -> None:
    """Write which plan ran, and on what kind of device, to ``uri`` (JSON)."""
    write_json({"execution": plan.name, "device": plan.device.type}, uri)


def _runs_here(name: str, device: str) -> bool:
    """Whether plan ``name`` runs on ``device`` of this machine."""
    if device == "cuda" and not torch.cuda.is_available():
        return False
    try:
        select_execution(device, execution=name)  # type: ignore[arg-type]
    except ValueError:  # a plan for another device, or ONNX Runtime missing
        return False
    return True


def replay_options(options: InferenceOptions, uri: str) -> InferenceOptions:
    """``options`` running the plan recorded at ``uri``, or the nearest this machine runs.

    Without a record (predict did not run, or predates it), ``options`` as they are, with a
    warning: their plan is this machine's.
    """
    if not uri_exists(uri):
        log.warning("%s not found: the model runs this machine's own plan", uri)
        return options
    record = read_json(uri, "predict's execution plan")
    name, device = record["execution"], record["device"]
    if _runs_here(name, device):
        log.info("Running %s on %s, as predict did", name, device)
        return replace(options, device=device, execution=name)
    log.info(
        "Predict ran %s on %s, which this machine cannot: running %s on cpu, the nearest it has",
        name, device, NEAREST_EVERYWHERE,
    )  # fmt: skip
    return replace(options, device="cpu", execution=NEAREST_EVERYWHERE)
