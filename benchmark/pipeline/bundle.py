"""Model bundles: what ``bundle`` writes and what folder prediction loads.

The bundle is Raster Vision's ``bundle/model-bundle.zip`` (the learner's own bundle with the
weights and the learner config, plus ``pipeline-config.json``) with one more member,
``benchmark.json``: the decision threshold chosen by ``eval``, what the model is, the GSD
it works at (``-a gsd``), the prediction windows (``-a predict_window``, ``-a
predict_overlap``) and how its probabilities become buildings (``decoding``: ``components``
for a binary model, ``watershed`` for an instance one; see :mod:`benchmark.networks.targets`).
A bundle made without eval (or by plain RV) still loads, with threshold 0.5, no GSD and
whole-chip prediction.

What the network was trained for is its learner config's ``model.target``: bundles from
before the field are binary (:func:`learner_bundle_target`).

An ensemble's bundle (``-a ensemble``) holds the other members' learner bundles too, as
``ensemble-{i}-model-bundle.zip`` listed under ``"ensemble"`` in ``benchmark.json``; loading it
gives one :class:`~benchmark.inference.ensemble.EnsembleModel`.
"""

import json
import logging
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from functools import cache
from os.path import join
from typing import IO, Any

import torch
from rastervision.pipeline.file_system import download_if_needed, file_exists
from torch import nn

from benchmark.data.constants import DEFAULT_THRESHOLD
from benchmark.data.layout import BUNDLE_INFO_NAME, MODEL_BUNDLE_NAME
from benchmark.data.uris import atomic_output
from benchmark.errors import InputError
from benchmark.inference.devices import torch_device
from benchmark.inference.ensemble import EnsembleModel
from benchmark.inference.execution import InferenceOptions
from benchmark.inference.settings import PredictionSettings
from benchmark.networks.targets import DECODINGS, Target, checked_target

log = logging.getLogger(__name__)

# The learner config in a learner bundle (RV's ``Learner.save_model_bundle`` writes it).
LEARNER_CONFIG_NAME = "learner-config.json"


@dataclass
class LoadedBundle:
    """A model ready for inference and what the bundle says about it."""

    model: nn.Module
    threshold: float = DEFAULT_THRESHOLD
    gsd: float | None = None  # metres per pixel the model was trained at; None: scenes' own
    window: int | None = None  # the pipeline's prediction window side; None: whole chips
    overlap: int = 0  # and the windows' overlap
    target: Target = "binary"  # what the network was trained for (its probability bands)
    info: dict[str, Any] = field(default_factory=dict)

    def prediction(
        self, options: InferenceOptions, window: int | None = None, overlap: int | None = None
    ) -> PredictionSettings:
        """Predict as the bundle's pipeline did: its GSD, window, overlap and target.

        A command's own ``window`` and ``overlap``, where given, win.
        """
        return PredictionSettings(
            options,
            window=self.window if window is None else window,
            overlap=self.overlap if overlap is None else overlap,
            gsd=self.gsd,
            target=self.target,
        )


def learner_bundle_target(learner_bundle: str | IO[bytes]) -> Target:
    """What a learner bundle's network was trained for: its learner config's ``model.target``.

    Binary where the config has no such field (every bundle before the instance target), or
    where the bundle holds no learner config to say otherwise: loading the network is RV's to
    judge, not this reading's.
    """
    try:
        with zipfile.ZipFile(learner_bundle) as zf:
            config = json.loads(zf.read(LEARNER_CONFIG_NAME))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError):
        return "binary"
    return checked_target((config.get("model") or {}).get("target", "binary"), LEARNER_CONFIG_NAME)


@cache
def _learner_on_device() -> type:
    """RV's segmentation learner, loading its network onto the device it is given.

    RV 0.31's ``Learner`` picks its own device: CUDA whenever ``torch.cuda`` says a GPU is
    there, and then the current one, so ``cpu`` still opened a CUDA context and ``cuda:1``
    loaded onto GPU 0. ``from_model_bundle`` passes extra arguments to a subclass's
    constructor: this one takes ``device``, skips RV's probe of ``torch.cuda`` (its switch
    for not touching the CUDA runtime) and sets the device before RV builds the network,
    moves it and maps the weights onto it (``torch.load(map_location=...)``). Made on first
    use: importing RV's learner is slow.
    """
    from rastervision.pytorch_learner import SemanticSegmentationLearner  # registers RV's configs

    class LearnerOnDevice(SemanticSegmentationLearner):
        def __init__(self, *args: Any, device: torch.device, **kwargs: Any) -> None:
            self.load_device = device
            super().__init__(*args, **kwargs)

        def setup_ddp_params(self) -> None:
            super().setup_ddp_params()
            self.avoid_activating_cuda_runtime = True  # no torch.cuda call choosing a device

        def setup_model(self, *args: Any, **kwargs: Any) -> None:
            self.device = self.load_device
            super().setup_model(*args, **kwargs)

    return LearnerOnDevice


def load_learner_model(learner_bundle_uri: str, tmp_dir: str, device: str = "auto") -> nn.Module:
    """The network from a learner bundle (``train/model-bundle.zip``), in eval mode.

    Args:
        learner_bundle_uri: the learner's bundle (local or s3://).
        tmp_dir: where it is unpacked.
        device: where the network is loaded ("auto", "cpu", "cuda", "cuda:N"; see
            :func:`~benchmark.inference.devices.torch_device`): straight there, weights and
            all; "cpu" never touches CUDA.
    """
    learner = _learner_on_device().from_model_bundle(
        learner_bundle_uri, tmp_dir, training=False, device=torch_device(device)
    )
    return learner.model.eval()


def load_learner_models(
    learner_bundle_uris: list[str], tmp_dir: str, device: str = "auto"
) -> nn.Module:
    """One network per learner bundle, on ``device``; several are averaged (an ensemble)."""
    models = []
    for index, uri in enumerate(learner_bundle_uris):
        unpack_dir = join(tmp_dir, f"member-{index}")  # RV unpacks into {dir}/model-bundle
        os.makedirs(unpack_dir, exist_ok=True)
        models.append(load_learner_model(uri, unpack_dir, device))
    if len(models) == 1:
        return models[0]
    log.info("Averaging the probabilities of %d models", len(models))
    return EnsembleModel(models).eval()


def load_bundle(bundle_uri: str, tmp_dir: str | None = None, device: str = "auto") -> LoadedBundle:
    """Load ``bundle/model-bundle.zip`` (local or s3://) for inference.

    Args:
        bundle_uri: the bundle written by the ``bundle`` command.
        tmp_dir: where to unpack it (a fresh temporary directory if None; it must outlive
            nothing: the model is loaded into memory).
        device: where the model is loaded (see :func:`load_learner_model`).
    """
    if not file_exists(bundle_uri):
        raise InputError(f"{bundle_uri}: model bundle not found")
    with tempfile.TemporaryDirectory(dir=tmp_dir) as work_dir:
        local = download_if_needed(bundle_uri, work_dir)
        try:
            with zipfile.ZipFile(local) as zf:
                names = set(zf.namelist())
                if MODEL_BUNDLE_NAME not in names:
                    raise InputError(
                        f"{bundle_uri}: not a benchmark model bundle (no {MODEL_BUNDLE_NAME})"
                    )
                info = json.loads(zf.read(BUNDLE_INFO_NAME)) if BUNDLE_INFO_NAME in names else {}
                members = [MODEL_BUNDLE_NAME, *info.get("ensemble", [])]
                missing = [name for name in members if name not in names]
                if missing:
                    raise InputError(f"{bundle_uri}: ensemble member {missing[0]} is missing")
                for name in members:
                    zf.extract(name, work_dir)
        except zipfile.BadZipFile:
            raise InputError(f"{bundle_uri}: not a zip file") from None
        uris = [join(work_dir, name) for name in members]
        targets = {learner_bundle_target(uri) for uri in uris}
        if len(targets) > 1:
            raise InputError(
                f"{bundle_uri}: ensemble members trained for different targets "
                f"({', '.join(sorted(targets))}): their probabilities cannot be averaged"
            )
        model = load_learner_models(uris, work_dir, device)
    loaded = LoadedBundle(
        model=model,
        threshold=float(info.get("threshold", DEFAULT_THRESHOLD)),
        gsd=info.get("gsd"),
        window=info.get("predict_window"),
        overlap=int(info.get("predict_overlap", 0)),
        target=targets.pop(),
        info=info,
    )
    log.info(
        "Loaded %s (%s model, threshold %.3f, gsd %s, prediction window %s, overlap %d)",
        bundle_uri, loaded.target, loaded.threshold, loaded.gsd, loaded.window, loaded.overlap,
    )  # fmt: skip
    return loaded


def add_bundle_info(
    bundle_uri: str, info: dict[str, Any], tmp_dir: str, members: dict[str, str] | None = None
) -> None:
    """Add (or replace) ``benchmark.json``, and ensemble ``members``, in a bundle, atomically.

    ``benchmark.json`` says ``info`` and how the bundle's model is decoded (``decoding``, from
    its learner config's target: :func:`learner_bundle_target`).

    Args:
        bundle_uri: the bundle RV's ``bundle`` wrote.
        info: what ``benchmark.json`` says (its ``"ensemble"`` lists the members' names).
        tmp_dir: where to download the bundle and the members.
        members: member name in the bundle -> URI of a learner bundle.
    """
    local = download_if_needed(bundle_uri, tmp_dir)
    members = members or {}
    added = {BUNDLE_INFO_NAME, *members}
    with atomic_output(bundle_uri) as out_path:
        with zipfile.ZipFile(local) as src, zipfile.ZipFile(out_path, "w") as dst:
            with src.open(MODEL_BUNDLE_NAME) as model_bundle:
                target = learner_bundle_target(model_bundle)
            info = {**info, "decoding": DECODINGS[target]}
            for item in src.infolist():
                if item.filename not in added:
                    dst.writestr(item, src.read(item.filename))
            for name, uri in members.items():
                dst.write(download_if_needed(uri, tmp_dir), name)
            dst.writestr(BUNDLE_INFO_NAME, json.dumps(info, indent=2))
