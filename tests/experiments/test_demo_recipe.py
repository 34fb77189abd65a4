"""``benchmark.experiments.demo_recipe``: valid experiment arguments, a sample that is there.

The demo and the ablation both read it, so a key the experiment does not know (a renamed
argument) or a sample file moved away shows here, not minutes into a run.
"""

import pytest

from benchmark.data.chips import list_test_chips
from benchmark.experiments import demo_recipe
from benchmark.experiments.benchmark_args import BenchmarkArgs


@pytest.fixture(scope="module")
def recipe() -> BenchmarkArgs:
    """Everything the demo's benchmark run takes from the recipe, typed."""
    return BenchmarkArgs(
        root_uri="out",
        train_stac_uri=str(demo_recipe.TRAIN_STAC_URI),
        train_ids=demo_recipe.TRAIN_IDS,
        valid_ids=demo_recipe.VALID_IDS,
        gsd=demo_recipe.GSD,
        test_img_dir=str(demo_recipe.TEST_IMG_DIR),
        test_chip_gsd=demo_recipe.TEST_CHIP_GSD,
        **demo_recipe.ARGS,
    )


def test_is_valid_benchmark_arguments(recipe):
    assert (recipe.gsd, recipe.test_chip_gsd) == (0.3, 0.075)
    assert (recipe.chip_method, recipe.chip_sz, recipe.lr) == ("random", 128, 1e-3)
    assert recipe.pretrained is False and recipe.ema_decay == 0.99


def test_names_the_sample_scenes(recipe):
    train, valid = recipe.read_scenes(recipe.train_ids, recipe.valid_ids)  # checks their files
    assert [f"{s.area}/{s.id}" for s in (*train, *valid)] == ["kam/94f080", "kam/8a5983"]


def test_names_the_sample_test_chips(recipe):
    assert [chip.id for chip in list_test_chips(test_img_dir=recipe.test_img_dir)] == [
        "ed3e4d",
        "f5f40e",
    ]
