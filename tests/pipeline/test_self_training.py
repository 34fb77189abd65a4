"""Self-training: unlabeled imagery predicted (no model), then rounds through train (slow).

The slow tests run the pipeline's train: rounds, pseudo-labels, resume, eval's record.
"""

import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from benchmark.data import layout
from benchmark.data.constants import BUILDING, IGNORE_LABEL, NO_BUILDING
from benchmark.data.scene_windows import read_scene_windows
from benchmark.data.uris import read_json
from benchmark.errors import InputError
from benchmark.inference.chips import ChipFolderReport
from benchmark.inference.settings import PredictionSettings
from benchmark.pipeline import self_training
from benchmark.pipeline.benchmark_config import SelfTrainingConfig
from benchmark.pipeline.self_training import SelfTrainingRun
from benchmark.training.learner import ResumableLearner
from tests.fixtures.cli import EXPERIMENT
from tests.fixtures.runs import build_pipeline, copy_run


def test_an_unreadable_test_chip_is_left_out_not_fatal(monkeypatch, tmp_path):
    chips = [SimpleNamespace(id=name, uri=f"/chips/{name}.tif") for name in ("good", "broken")]
    run = SelfTrainingRun(
        SelfTrainingConfig(), PredictionSettings(), str(tmp_path), str(tmp_path), 0, chips, 1024
    )
    report = ChipFolderReport(written=["good"], bad={"broken": "not a GeoTIFF"})
    monkeypatch.setattr(self_training, "load_learner_models", lambda *_: None)
    monkeypatch.setattr(self_training, "predict_chip_folder", lambda *_, **__: report)

    images = self_training._predict_unlabeled(run, "model", str(tmp_path), str(tmp_path))

    assert [image.name for image in images] == ["good"]


def _label_values(chips_zip: str) -> set[int]:
    from matplotlib.image import imread

    values = set()
    with zipfile.ZipFile(chips_zip) as archive:
        for name in archive.namelist():
            if name.startswith("train/labels/"):
                with archive.open(name) as f:
                    values |= set(np.unique(np.rint(imread(f, format="png") * 255)).astype(int))
    return values


def _weights(path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.mark.slow
def test_self_training_rounds_resume_and_reach_eval(finished_run, tmp_path, monkeypatch):
    save = ResumableLearner.save_model_bundle  # without ONNX: most of a tiny round's time
    monkeypatch.setattr(
        ResumableLearner, "save_model_bundle", lambda self, **_: save(self, export_onnx=False)
    )
    root = copy_run(
        finished_run, tmp_path, "split_images", f"chip/{EXPERIMENT}", f"predict/{EXPERIMENT}"
    )
    pipeline = build_pipeline(root, preprocess=False, tmp_path=tmp_path)
    cfg = pipeline.config
    area, scene = finished_run["catalog"].train_keys[0].split("/")
    image, _ = layout.catalog_scene_uris(finished_run["catalog"].catalog_uri, area, scene)
    # An untrained tiny model is unsure everywhere: a thin margin keeps some pixels.
    cfg.self_training = SelfTrainingConfig(
        rounds=1, epochs=1, margin=0.02, min_known=0.0, image_uris=[image]
    )
    pipeline.train()

    train_dir = root / "train" / EXPERIMENT
    round_0 = train_dir / "self-training" / "round-0"
    assert (round_0 / "model-bundle.zip").is_file() and (round_0 / "round.json").is_file()
    assert (train_dir / "model-bundle.zip").is_file()
    chips = layout.pseudo_chips_uri(str(train_dir))
    assert _label_values(chips) <= {NO_BUILDING, BUILDING, IGNORE_LABEL}
    test_chips = {c.id for c in cfg.test_chips}
    probabilities = layout.pseudo_probability_dir(str(train_dir))
    assert {p.stem for p in Path(probabilities).glob("*.tif")} == test_chips | {scene}

    rounds = read_json(layout.self_training_record_uri(str(train_dir)))["rounds"]
    assert [r["round"] for r in rounds] == [0, 1]
    assert [r["seed"] for r in rounds] == [cfg.seed, cfg.seed + 1]
    assert rounds[0]["pseudo_labels"] is None
    assert rounds[1]["pseudo_labels"]["images"] == len(test_chips) + 1
    assert rounds[1]["pseudo_labels"]["chips"] > 0
    # Each round finds some buildings (all background would score 0 on both); a tiny round is
    # not asked to beat all building, which one epoch does not (test_end_to_end.py).
    assert all(r["validation_chips"]["precision"] > 0 for r in rounds)
    assert all(r["validation_chips"]["recall"] > 0 for r in rounds)

    # Killed after round 0: round 1 is done again, the same (seeded); round 0 is not.
    final = _weights(train_dir / "last-model.pth")
    round_0_bundle = (round_0 / "model-bundle.zip").stat().st_mtime_ns
    for name in ("self-training.json", "model-bundle.zip", "last-model.pth", "log.csv",
                 "train-state.pth", "pseudo-chips.zip"):  # fmt: skip
        (train_dir / name).unlink()
    pipeline.train()
    assert (round_0 / "model-bundle.zip").stat().st_mtime_ns == round_0_bundle
    again = _weights(train_dir / "last-model.pth")
    assert all(torch.equal(final[k], again[k]) for k in final)
    assert read_json(layout.self_training_record_uri(str(train_dir)))["rounds"] == rounds

    pipeline.eval()
    report = read_json(layout.eval_report_uri(cfg.eval_uri))
    assert report["self_training"] == rounds


def _config(finished_run: dict, **args: str):
    from benchmark.experiments import benchmark

    catalog = finished_run["catalog"]
    scene_args = catalog.scene_args(str(finished_run["root"]))
    return benchmark.get_config("inprocess", **scene_args, **args)


@pytest.mark.slow
def test_self_training_is_off_by_default_and_needs_unlabeled_imagery(finished_run):
    assert _config(finished_run).self_training is None
    with pytest.raises(InputError, match="self_train_rounds needs unlabeled imagery"):
        _config(finished_run, self_train_rounds="1")
    test_uri = finished_run["catalog"].test_catalog_uri
    cfg = _config(finished_run, self_train_rounds="2", test_stac_uri=test_uri)
    assert cfg.self_training == SelfTrainingConfig(rounds=2, test_chips=True)


@pytest.mark.slow
def test_self_training_never_learns_from_validation_imagery(finished_run):
    catalog = finished_run["catalog"]
    area, scene = catalog.valid_keys[0].split("/")
    split_dir = layout.default_windows_dir(str(finished_run["root"]))
    image = read_scene_windows(layout.scene_windows_dir(split_dir, area, scene), None).image_uri
    with pytest.raises(InputError, match=f"{image}: validation scene {area}/{scene}'s image"):
        _config(finished_run, self_train_rounds="1", self_train_images=f"a.tif,{image}")


@pytest.mark.slow
def test_an_unusable_image_is_refused_before_any_training(finished_run, tmp_path):
    root = copy_run(finished_run, tmp_path, "split_images", f"chip/{EXPERIMENT}")
    pipeline = build_pipeline(root, preprocess=False, tmp_path=tmp_path)
    chip = pipeline.config.test_chips[0].uri  # no CRS: its buildings cannot be placed
    pipeline.config.self_training = SelfTrainingConfig(image_uris=[chip])
    with pytest.raises(InputError, match=f"{chip}: not georeferenced"):
        pipeline.train()
    assert not (root / "train").exists()
