"""A seeded run repeats itself: RV's chip draws the same random windows for the same seed."""

import json
import random
import zipfile
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from rastervision.core.rv_pipeline import SemanticSegmentation
from rastervision.pipeline.config import build_config

from benchmark.experiments import benchmark, split_images
from benchmark.pipeline import benchmark_pipeline
from tests.fixtures.opencities import make_opencities_catalog


@pytest.fixture(scope="module")
def seeded_config(tmp_path_factory):
    """The benchmark's config on the tiny catalog, random chips, after PREPROCESS."""
    tmp_path = tmp_path_factory.mktemp("seeding")
    catalog = make_opencities_catalog(tmp_path / "data", test_chip_size=64)
    scene_args = catalog.scene_args(str(tmp_path / "out"))
    split_images.get_config("inprocess", **scene_args).build(str(tmp_path)).PREPROCESS()
    cfg = benchmark.get_config(
        "inprocess", **scene_args, seed="3", pretrained="false", chip_method="random",
        chip_sz="16", chips_per_scene="6", random_sz_min="12", random_sz_max="24",
    )  # fmt: skip
    cfg.update()
    return build_config(json.loads(cfg.json())), tmp_path  # as every runner rebuilds it


def _chip_arrays(cfg, tmp_path, name: str, split_ind: int = 0, num_splits: int = 1) -> list:
    """Run RV's chip (through the pipeline) into its own directory; the random chips' pixels."""
    cfg = build_config(json.loads(cfg.json()))
    cfg.chip_uri = str(tmp_path / "chips" / name)
    cfg.build(str(tmp_path)).chip(split_ind, num_splits)
    arrays = []
    for archive in sorted((tmp_path / "chips" / name).rglob("*.zip")):
        with zipfile.ZipFile(archive) as zf:
            for member in sorted(n for n in zf.namelist() if n.startswith("train/img/")):
                with zf.open(member) as f:
                    arrays.append(np.asarray(Image.open(f)))
    assert arrays
    return arrays


def test_the_same_seed_draws_the_same_chips(seeded_config):
    cfg, tmp_path = seeded_config
    first = _chip_arrays(cfg, tmp_path, "first")
    again = _chip_arrays(cfg, tmp_path, "again")
    assert len(first) == len(again)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)


def _draws() -> tuple:
    return random.random(), np.random.rand(), torch.rand(1).item()


def test_each_split_and_train_start_from_their_seed(seeded_config, monkeypatch):
    cfg, tmp_path = seeded_config
    draws = []
    monkeypatch.setattr(SemanticSegmentation, "chip", lambda self, *split: draws.append(_draws()))
    # What train draws first: the learner it builds initializes the weights.
    learner = SimpleNamespace(main=lambda: draws.append(_draws()))
    monkeypatch.setattr(benchmark_pipeline, "ResumableLearner", lambda *args, **kwargs: learner)
    pipeline = cfg.build(str(tmp_path))
    pipeline.chip(0, 2)
    pipeline.chip(1, 2)
    pipeline.train()
    pipeline.train()
    split_0, split_1, train, train_again = draws
    assert split_0 == train == train_again  # seed 3
    assert split_1 != split_0  # seed 3 + 1
