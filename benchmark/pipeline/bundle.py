"""Model bundles: what ``bundle`` writes and what folder prediction loads.

The bundle is Raster Vision's ``bundle/model-bundle.zip`` (the learner's own bundle with the
weights and the learner config, plus ``pipeline-config.json``) with one more member,
``benchmark.json``: the decision threshold chosen by ``eval``, what the model is, the GSD
it works at (``-a gsd``) and the prediction windows (``-a predict_window``, ``-a
predict_overlap``). A bundle made without eval (or by plain RV) still loads, with threshold
0.5, no GSD and whole-chip prediction.

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
from os.path import join
from typing import Any

from rastervision.pipeline.file_system import download_if_needed, file_exists
from torch import nn

from benchmark.data.uris import atomic_output
from benchmark.errors import InputError
from benchmark.inference.ensemble import EnsembleModel
from benchmark.pipeline.layout import BUNDLE_INFO_NAME, MODEL_BUNDLE_NAME

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.5


@dataclass
class LoadedBundle:
    """A model ready for inference and what the bundle says about it."""

    model: nn.Module
    threshold: float = DEFAULT_THRESHOLD
    gsd: float | None = None  # metres per pixel the model was trained at; None: scenes' own
    window: int | None = None  # the pipeline's prediction window side; None: whole chips
    overlap: int = 0  # and the windows' overlap
    info: dict[str, Any] = field(default_factory=dict)


def load_learner_model(learner_bundle_uri: str, tmp_dir: str) -> nn.Module:
    """The network from a learner bundle (``train/model-bundle.zip``), in eval mode."""
    import rastervision.pytorch_learner  # noqa: F401  (registers RV's configs)
    from rastervision.pytorch_learner import Learner

    learner = Learner.from_model_bundle(learner_bundle_uri, tmp_dir, training=False)
    return learner.model.eval()


def load_learner_models(learner_bundle_uris: list[str], tmp_dir: str) -> nn.Module:
    """One network per learner bundle; several are averaged (an ensemble)."""
    models = []
    for index, uri in enumerate(learner_bundle_uris):
        unpack_dir = join(tmp_dir, f"member-{index}")  # RV unpacks into {dir}/model-bundle
        os.makedirs(unpack_dir, exist_ok=True)
        models.append(load_learner_model(uri, unpack_dir))
    if len(models) == 1:
        return models[0]
    log.info("Averaging the probabilities of %d models", len(models))
    return EnsembleModel(models).eval()


def load_bundle(bundle_uri: str, tmp_dir: str | None = None) -> LoadedBundle:
    """Load ``bundle/model-bundle.zip`` (local or s3://) for inference.

    Args:
        bundle_uri: the bundle written by the ``bundle`` command.
        tmp_dir: where to unpack it (a fresh temporary directory if None; it must outlive
            nothing: the model is loaded into memory).
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
        model = load_learner_models([join(work_dir, name) for name in members], work_dir)
    loaded = LoadedBundle(
        model=model,
        threshold=float(info.get("threshold", DEFAULT_THRESHOLD)),
        gsd=info.get("gsd"),
        window=info.get("predict_window"),
        overlap=int(info.get("predict_overlap", 0)),
        info=info,
    )
    log.info(
        "Loaded %s (threshold %.3f, gsd %s, prediction window %s, overlap %d)",
        bundle_uri, loaded.threshold, loaded.gsd, loaded.window, loaded.overlap,
    )  # fmt: skip
    return loaded


def add_bundle_info(
    bundle_uri: str, info: dict[str, Any], tmp_dir: str, members: dict[str, str] | None = None
) -> None:
    """Add (or replace) ``benchmark.json``, and ensemble ``members``, in a bundle, atomically.

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
            for item in src.infolist():
                if item.filename not in added:
                    dst.writestr(item, src.read(item.filename))
            for name, uri in members.items():
                dst.write(download_if_needed(uri, tmp_dir), name)
            dst.writestr(BUNDLE_INFO_NAME, json.dumps(info, indent=2))
