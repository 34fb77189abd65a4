"""``wb_scripts/ablation`` (``tools.ablation``, ``tools.ablation_table``): recipes, variants,
seeds, runs, scores, their aggregates and the table.

The unit tests fake the rastervision runs and their outputs; the slow test runs ``--test``
(the baseline and TTA with its model, through the real CLI) on the tiny generated catalog.
"""

import json
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import IO

import pytest

from benchmark.data import layout
from benchmark.data.uris import write_json
from benchmark.evaluation.buildings import BuildingCounts, build_building_report
from benchmark.evaluation.metrics import ConfusionCounts, build_eval_report
from benchmark.experiments import demo_recipe
from benchmark.experiments.benchmark_args import BenchmarkArgs
from tests.fixtures.cli import TINY_MODEL_ARGS
from tests.fixtures.opencities import make_opencities_catalog
from tools import ablation, ablation_table
from tools.ablation import (
    BASELINE,
    DEMO,
    ORIGINAL,
    RECIPES,
    VARIANTS,
    Budget,
    Preprocessor,
    Recipe,
    Setup,
)

BY_NAME = {v.name: v for v in VARIANTS}
KNOWN_ARGS = frozenset(BenchmarkArgs.model_fields)
# Small enough for the 96 x 80 px scenes of the generated catalog.
TINY_ARGS = [
    "-a", "chip_sz", "32", "-a", "random_sz_min", "24", "-a", "random_sz_max", "40",
    "-a", "predict_window", "48", "-a", "num_workers", "0", *TINY_MODEL_ARGS,
]  # fmt: skip
FOUND = BuildingCounts(tp=3, fp=1, fn=1)  # per-building F1 0.75
# A 100-pixel validation scene scored ``j`` % Jaccard: tp j, the rest split into fp and fn.
GOOD, FAIR, POOR = (
    ConfusionCounts(tp=j, fp=(100 - j) // 2, fn=(100 - j + 1) // 2) for j in (60, 50, 40)
)


def make_setup(tmp_path: Path, recipe: Recipe = ORIGINAL, **extra: str) -> Setup:
    return Setup(
        out=tmp_path / "out",
        tmp=tmp_path / "tmp",
        catalog="cat.json",
        train_ids="kam/aaa111",
        valid_ids="kam/bbb222",
        recipe=recipe,
        budget=Budget(chips_per_scene=8, num_epochs=2, batch_sz=4),
        extra=extra,
    )


def fake_eval(
    root: Path,
    experiment_id: str,
    counts: ConfusionCounts,
    threshold: float = 0.5,
    buildings: BuildingCounts | None = FOUND,
) -> None:
    """What a finished run's eval leaves: its saved config and eval.json."""
    eval_uri = layout.command_dir(str(root), "eval", experiment_id)
    train_uri = layout.command_dir(str(root), "train", experiment_id)
    write_json(
        {"eval_uri": eval_uri, "train_uri": train_uri},
        layout.pipeline_config_uri(str(root), experiment_id),
    )
    report = build_eval_report({"kam/bbb222": counts}) | {"decision_threshold": threshold}
    if buildings is not None:
        report["buildings"] = build_building_report({"kam/bbb222": buildings})
    write_json(report, layout.eval_report_uri(eval_uri))


def fake_training(root: Path, experiment_id: str) -> None:
    """What a finished run's train leaves: RV's log.csv (two epochs, 2 min) and a bundle."""
    train_uri = layout.command_dir(str(root), "train", experiment_id)
    Path(train_uri).mkdir(parents=True, exist_ok=True)
    Path(layout.training_log_uri(train_uri)).write_text(
        "epoch,train_loss,train_time,val_loss\n0,0.9,0:01:00.500000,1.0\n1,0.7,0:00:59.500000,0.9\n"
    )
    Path(layout.model_bundle_uri(train_uri)).write_bytes(b"zip")


def run_args(call: tuple[str, ...]) -> dict[str, str]:
    """The ``-a`` arguments of a faked rastervision call."""
    return {call[i + 1]: call[i + 2] for i, word in enumerate(call) if word == "-a"}


def outcome(counts: ConfusionCounts, **more: float) -> dict:
    """A scored run's entry under a row's ``seeds``."""
    return {
        "jaccard": counts.jaccard, "precision": counts.precision, "recall": counts.recall,
        "threshold": 0.5, "f1": 0.75, "total_s": 180.0, **more,
    }  # fmt: skip


class FakeRastervision:
    """Stands in for ``run_rastervision``: leaves what train and eval would, or fails.

    Each run scores ``scores[experiment_id]`` (GOOD if not given); runs in ``failing`` fail as
    a real one does, with an error line in its log.
    """

    def __init__(self, root: Path, scores: dict[str, ConfusionCounts], failing: Iterable[str]):
        self.root = root
        self.scores = scores
        self.failing = set(failing)
        self.calls: list[tuple[str, ...]] = []

    def run_ids(self) -> list[str]:
        """The experiment ids of the benchmark runs, in order (PREPROCESS has none)."""
        return [run_args(c)["experiment_id"] for c in self.calls if "experiment_id" in run_args(c)]

    def __call__(self, *args: str, tmp: Path, output: IO[str]) -> float:
        self.calls.append(args)
        experiment_id = run_args(args).get("experiment_id")
        if experiment_id in self.failing:
            output.write("error: out of memory\n")
            raise subprocess.CalledProcessError(1, "rastervision")
        if "train" in args:
            fake_training(self.root, experiment_id)
        if "eval" in args:
            fake_eval(self.root, experiment_id, self.scores.get(experiment_id, GOOD))
        return 60.0


@pytest.fixture
def ablate(tmp_path, monkeypatch, capsys):
    """Run ``main`` with faked rastervision runs; returns the fake and ``results.json``."""
    out = tmp_path / "out"
    monkeypatch.setattr(ablation, "describe_machine", lambda: "a CPU")
    monkeypatch.setattr(ablation, "log_like_rastervision", lambda **routing: None)
    monkeypatch.setenv("RV_TMP_DIR", str(tmp_path / "rvtmp"))

    def run(
        *argv: str, scores: dict[str, ConfusionCounts] | None = None, failing: Iterable[str] = ()
    ) -> tuple[FakeRastervision, dict]:
        fake = FakeRastervision(out, scores or {}, failing)
        monkeypatch.setattr(ablation, "run_rastervision", fake)
        assert ablation.main(["--out", str(out), "--catalog", "cat.json", *argv]) == 0
        assert capsys.readouterr().out == (out / "results.md").read_text()
        return fake, json.loads((out / "results.json").read_text())

    return run


class TestVariants:
    def test_names_are_unique_and_the_baseline_comes_first(self):
        assert VARIANTS[0].name == BASELINE and not VARIANTS[0].args
        assert len(BY_NAME) == len(VARIANTS)

    def test_each_variant_changes_one_known_argument(self):
        for variant in VARIANTS[1:]:
            ((key, value),) = variant.args.items()
            assert key in KNOWN_ARGS, variant.name
            assert ORIGINAL.args.get(key) != value, variant.name

    def test_the_asked_options_are_there(self):
        args = {k: v for variant in VARIANTS for k, v in variant.args.items()}
        assert {"model", "encoder", "aug", "gsd", "tta", "predict_overlap"} <= args.keys()
        assert {v.args.get("loss") for v in VARIANTS} >= {"ce+dice", "lovasz"}
        assert {v.args.get("encoder") for v in VARIANTS} >= {"resnet34", "efficientnet-b0"}
        assert {v.args.get("aug") for v in VARIANTS} >= {"color", "scale"}

    def test_ema_trains_its_own_averaged_model(self):
        ema = BY_NAME["ema"]
        assert ema.args == {"ema_decay": "0.99"} and ema.reuses is None
        assert BenchmarkArgs(root_uri="r", ema_decay=ema.args["ema_decay"]).ema_decay == 0.99

    def test_only_inference_options_reuse_the_baselines_model(self):
        reusing = {v.name for v in VARIANTS if v.reuses}
        assert reusing == {
            "tta",
            "overlap-256",
            "tuned-threshold",
            "train-threshold",
            "threshold-0.5",
            "share-threshold",
        }
        assert {v.reuses for v in VARIANTS if v.reuses} == {BASELINE}


def supported_names(setup: Setup, known_args: frozenset[str] = KNOWN_ARGS) -> list[str]:
    """The variants that can run in ``setup``, by name."""
    return [v.name for v in ablation.supported_variants(VARIANTS, known_args, setup)]


class TestRecipes:
    def test_original_is_the_originals_model_loss_and_augmentation(self):
        assert {k: ORIGINAL.args[k] for k in ("model", "encoder", "loss", "aug")} == {
            "model": "unet",
            "encoder": "resnet18",
            "loss": "ce",
            "aug": "d4",
        }
        assert ORIGINAL.budget == Budget(chips_per_scene=80, num_epochs=2, batch_sz=4)

    def test_demo_is_the_demo_recipe(self):
        """The baseline is benchmark/experiments/demo_recipe.py's, which wb_scripts/demo runs."""
        baseline = {**DEMO.args, **DEMO.budget.args()}
        assert DEMO.budget.batch_sz == BenchmarkArgs.model_fields["batch_sz"].default
        del baseline["batch_sz"]  # the demo leaves it at the experiment's default
        assert baseline == {"gsd": demo_recipe.GSD, **demo_recipe.ARGS}

    def test_the_scenes_default_to_the_demos_sample(self):
        args = ablation.build_parser().parse_args([])
        assert Path(args.catalog) == demo_recipe.TRAIN_STAC_URI
        assert (args.train_ids, args.valid_ids) == (demo_recipe.TRAIN_IDS, demo_recipe.VALID_IDS)

    @pytest.mark.parametrize("recipe", RECIPES.values(), ids=RECIPES)
    def test_is_valid_experiment_arguments(self, recipe):
        args = BenchmarkArgs(root_uri="r", **recipe.args, **recipe.budget.args())
        assert args.pretrained is False and args.chip_method == "random"

    def test_a_change_the_baseline_has_is_left_out(self, tmp_path, caplog):
        caplog.set_level("INFO", logger="tools.ablation")
        demo = supported_names(make_setup(tmp_path, DEMO))
        assert "lovasz" not in demo and "ema" not in demo and "share-threshold" not in demo
        assert "ce-dice" in demo and "threshold-0.5" in demo
        assert "Leaving out lovasz: the baseline already has -a loss lovasz" in caplog.text
        original = supported_names(make_setup(tmp_path))
        assert original == [v.name for v in VARIANTS if v.name != "threshold-0.5"]
        # An extra argument is part of the baseline too.
        assert "aug-color" not in supported_names(make_setup(tmp_path, aug="color"))

    def test_a_variant_for_one_recipe_only(self, tmp_path, caplog):
        caplog.set_level("INFO", logger="tools.ablation")
        assert "overlap-256" not in supported_names(make_setup(tmp_path, DEMO))
        assert "Leaving out overlap-256: it is for the original recipe only" in caplog.text
        assert "threshold-0.5" not in supported_names(make_setup(tmp_path))
        assert "Leaving out threshold-0.5: it is for the demo recipe only" in caplog.text

    def test_asking_for_a_left_out_variant_is_an_error(self, tmp_path):
        setup = make_setup(tmp_path, DEMO)
        with pytest.raises(ValueError, match="cannot run lovasz: the baseline already has"):
            ablation.supported_variants(VARIANTS, KNOWN_ARGS, setup, ["lovasz"])


class TestGsdDetection:
    def test_gsd_left_out_when_the_experiment_lacks_it(self, tmp_path):
        names = supported_names(make_setup(tmp_path), KNOWN_ARGS - {"gsd"})
        assert names == [v.name for v in VARIANTS if v.name not in ("gsd-0.1", "threshold-0.5")]

    def test_read_from_the_args_classes(self):
        benchmark_args, preprocess_args = ablation.experiment_arg_names()
        assert benchmark_args == KNOWN_ARGS
        assert {"root_uri", "train_ids", "split_size"} <= preprocess_args
        assert {"gsd", "ema_decay"} <= benchmark_args


class TestSelection:
    def test_all_by_default(self):
        assert ablation.select_variants(list(VARIANTS), None, []) == list(VARIANTS)

    def test_brings_the_model_a_variant_reuses(self):
        chosen = ablation.select_variants(list(VARIANTS), ["tta", "lovasz"], [])
        assert [v.name for v in chosen] == [BASELINE, "lovasz", "tta"]

    def test_not_when_an_earlier_run_trained_it(self):
        chosen = ablation.select_variants(list(VARIANTS), ["tta"], [BASELINE])
        assert [v.name for v in chosen] == ["tta"]

    def test_unknown_name(self):
        with pytest.raises(ValueError, match="unknown variant nope: choose from baseline, "):
            ablation.select_variants(list(VARIANTS), ["nope"], [])

    def test_seed_by_seed_reusing_only_a_model_of_the_same_seed(self):
        rows = {BASELINE: {"seeds": {"0": outcome(GOOD), "1": {"error": "boom"}}}}
        runs = ablation.plan_runs(list(VARIANTS), ["tta"], [0, 1, 2], rows)
        assert [(v.name, seed) for v, seed in runs] == [
            ("tta", 0), (BASELINE, 1), ("tta", 1), (BASELINE, 2), ("tta", 2),
        ]  # fmt: skip


class TestArguments:
    def test_layers_recipe_budget_extra_change_seed(self, tmp_path):
        setup = make_setup(tmp_path, loss="dice", num_workers="0")
        args = ablation.experiment_args(setup, BY_NAME["lovasz"], 2)
        assert args["loss"] == "lovasz"  # the variant's change wins over the extra
        assert args["num_workers"] == "0"
        assert (args["chips_per_scene"], args["num_epochs"], args["batch_sz"]) == ("8", "2", "4")
        assert args["encoder"] == "resnet18" and args["pretrained"] == "false"
        assert (args["experiment_id"], args["seed"]) == ("lovasz-seed2", "2")
        assert args["root_uri"] == str(setup.out)
        baseline = ablation.experiment_args(setup, BY_NAME[BASELINE], 0)
        assert baseline["loss"] == "dice"  # the extra changes the baseline for every variant

    def test_a_change_on_top_of_the_demo_recipe(self, tmp_path):
        args = ablation.experiment_args(make_setup(tmp_path, DEMO), BY_NAME["ema"], 0)
        assert (args["gsd"], args["loss"], args["ema_decay"]) == ("0.3", "lovasz", "0.99")

    def test_extra_args(self):
        assert ablation.parse_extra_args(["-a", "k", "v", "-a", "n", "1"]) == {"k": "v", "n": "1"}
        assert ablation.parse_extra_args([]) == {}

    @pytest.mark.parametrize(
        "words, message",
        [
            (["-a", "k"], "as -a KEY VALUE"),
            (["--x", "k", "v"], "as -a KEY VALUE"),
            (["-a", "experiment_id", "e"], "-a experiment_id: set by the script"),
            (["-a", "seed", "1"], "-a seed: set by the script"),
        ],
    )
    def test_bad_extra_args(self, words, message):
        with pytest.raises(ValueError, match=message):
            ablation.parse_extra_args(words)

    def test_seeds(self):
        parser = ablation.build_parser()
        assert parser.parse_args([]).seeds == [0] == [BenchmarkArgs.model_fields["seed"].default]
        assert parser.parse_args(["--seeds", "2,0,1"]).seeds == [0, 1, 2]

    @pytest.mark.parametrize(
        "value, message",
        [("0,x", "0,x is not a list such as 0,1,2"), ("1,1", "distinct"), ("-1", "distinct")],
    )
    def test_bad_seeds(self, value, message, capsys):
        with pytest.raises(SystemExit):
            ablation.build_parser().parse_args(["--seeds", value])
        assert message in capsys.readouterr().err

    def test_test_run_defaults(self):
        args = ablation.build_parser().parse_args(["--test", "--epochs", "3"])
        setup = ablation.make_setup(args, {})
        assert setup.budget == Budget(chips_per_scene=8, num_epochs=3, batch_sz=2)
        assert setup.out.name == "ablation-test" and setup.recipe is ORIGINAL

    def test_the_recipe_brings_its_budget(self):
        args = ablation.build_parser().parse_args(["--recipe", "demo", "--epochs", "3"])
        setup = ablation.make_setup(args, {})
        assert setup.recipe is DEMO
        assert setup.budget == Budget(chips_per_scene=600, num_epochs=3, batch_sz=8)

    def test_budget_must_be_positive(self, capsys):
        with pytest.raises(SystemExit) as exit_info:
            ablation.build_parser().parse_args(["--epochs", "0"])
        assert exit_info.value.code == 2
        assert "--epochs: 0 is not a whole number above 0" in capsys.readouterr().err


class TestScores:
    def test_train_time_from_rv_log(self, tmp_path):
        fake_training(tmp_path, "baseline-seed0")
        train_dir = tmp_path / "train" / "baseline-seed0"
        assert ablation.train_seconds(train_dir) == 120.0
        assert ablation.parse_timedelta("1:02:03.5") == 3723.5
        # Self-training's earlier rounds are training time too.
        round_0 = Path(layout.self_training_round_dir(str(train_dir), 0))
        round_0.mkdir(parents=True)
        shutil.copy(train_dir / "log.csv", round_0 / "log.csv")
        assert ablation.train_seconds(train_dir) == 240.0

    def test_read_scores(self, tmp_path):
        fake_training(tmp_path, "baseline-seed1")
        fake_eval(tmp_path, "baseline-seed1", ConfusionCounts(tp=60, fp=20, fn=20, tn=900))
        fake_eval(tmp_path, "tta-seed1", ConfusionCounts(tp=1), threshold=0.35, buildings=None)
        scores = ablation.read_scores(tmp_path, BY_NAME[BASELINE], 1)
        assert scores == {
            "jaccard": 0.6, "precision": 0.75, "recall": 0.75, "threshold": 0.5, "f1": 0.75,
            "train_s": 120.0,
        }  # fmt: skip
        tta = ablation.read_scores(tmp_path, BY_NAME["tta"], 1)
        assert "train_s" not in tta and "f1" not in tta and tta["threshold"] == 0.35


class TestAggregates:
    def test_mean_worst_and_spread_over_the_seeds(self):
        row = ablation_table.variant_row(
            "a", "A", None,
            {
                "1": outcome(POOR, f1=0.5, train_s=100.0, total_s=200.0),
                "0": outcome(GOOD, f1=0.7, train_s=140.0, total_s=100.0),
            },
        )  # fmt: skip
        assert list(row["seeds"]) == ["0", "1"]
        assert (row["runs"], row["scored"]) == (2, 2)
        assert row["jaccard_mean"] == pytest.approx(0.5)
        assert row["jaccard_worst"] == pytest.approx(0.4)
        assert row["jaccard_spread"] == pytest.approx(0.2)
        assert (row["f1_mean"], row["f1_worst"]) == (pytest.approx(0.6), 0.5)
        assert row["precision_mean"] == pytest.approx((GOOD.precision + POOR.precision) / 2)
        assert (row["train_s_mean"], row["total_s_mean"]) == (120.0, 150.0)

    def test_a_failed_seed_is_kept_and_the_others_aggregate(self):
        row = ablation_table.variant_row(
            "a", "A", None, {"0": outcome(GOOD), "1": {"error": "boom"}, "2": outcome(POOR)}
        )
        assert (row["runs"], row["scored"]) == (3, 2)
        assert row["seeds"]["1"] == {"error": "boom"}
        assert (row["jaccard_worst"], row["jaccard_mean"]) == (0.4, pytest.approx(0.5))

    def test_none_scored(self):
        row = ablation_table.variant_row("a", "A", None, {"0": {"error": "boom"}})
        assert (row["runs"], row["scored"]) == (1, 0) and "jaccard_mean" not in row

    def test_no_f1_from_an_eval_without_buildings(self):
        seeds = {"0": {k: v for k, v in outcome(GOOD).items() if k != "f1"}}
        assert "f1_mean" not in ablation_table.variant_row("a", "A", None, seeds)

    def test_best_is_the_highest_mean_not_the_luckiest_seed(self):
        lucky = {
            "0": outcome(ConfusionCounts(tp=9, fn=1)),
            "1": outcome(ConfusionCounts(tp=3, fn=7)),
        }
        steady = {"0": outcome(ConfusionCounts(tp=7, fn=3)), "1": outcome(GOOD)}
        rows = {
            "lucky": ablation_table.variant_row("lucky", "", None, lucky),  # 0.9, 0.3: mean 0.6
            "steady": ablation_table.variant_row("steady", "", None, steady),  # 0.7, 0.6: 0.65
            "failed": ablation_table.variant_row("failed", "", None, {"0": {"error": "boom"}}),
        }
        assert ablation_table.best_variant(rows) == "steady"
        assert ablation_table.best_variant({"failed": rows["failed"]}) is None


class TestTable:
    @pytest.fixture
    def results(self, tmp_path) -> dict:
        setup = make_setup(tmp_path, num_workers="0")
        tuned = {"0": outcome(GOOD, threshold=0.3, total_s=61.0), "1": outcome(GOOD, total_s=61.0)}
        variants = {
            "tta": ablation_table.variant_row("tta", "TTA", BASELINE, tuned),
            "lovasz": ablation_table.variant_row(
                "lovasz", "Lovasz", None, {"0": {"error": "error: a | b"}, "1": {"error": "other"}}
            ),
            BASELINE: ablation_table.variant_row(
                BASELINE,
                "none",
                None,
                {
                    "0": outcome(GOOD, train_s=90.0, total_s=186.0),
                    "1": outcome(POOR, f1=0.55, train_s=120.0),
                },
            ),
        }
        return {"setup": setup.identity(), "machine": "a CPU", "variants": variants, "best": "tta"}

    def lines(self, results: dict) -> list[str]:
        return ablation_table.markdown_table(results, ablation.VARIANT_ORDER).splitlines()

    def test_rows_in_variant_order_with_aggregates_times_and_failures(self, results):
        lines = self.lines(results)
        assert lines[0] == (
            "| Variant | What changed | Jaccard mean | Worst | Spread | F1 mean | F1 worst "
            "| Precision | Recall | Threshold | Train time | Total time | Seeds |"
        )
        assert lines[1] == "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
        precision = (GOOD.precision + POOR.precision) / 2
        recall = (GOOD.recall + POOR.recall) / 2
        assert lines[2] == (
            f"| `baseline` | none | 0.500 | 0.400 | 0.200 | 0.650 | 0.550 | {precision:.3f} "
            f"| {recall:.3f} | 0.50 | 1 min 45 s | 3 min 3 s | 2 |"
        )
        assert (
            lines[3]
            == "| `lovasz` | Lovasz | failed: error: a \\| b |  |  |  |  |  |  |  |  |  | 0 of 2 |"
        )
        assert lines[4] == (
            f"| `tta` | TTA | 0.600 | 0.600 | 0.000 | 0.750 | 0.750 | {GOOD.precision:.3f} "
            f"| {GOOD.recall:.3f} | 0.30-0.50 | baseline's model | 1 min 1 s | 2 |"
        )

    def test_one_seed_has_its_score_as_worst_and_no_spread(self):
        row = ablation_table.variant_row("a", "A", None, {"0": outcome(GOOD)})
        cells = ablation_table.table_row(row).split(" | ")
        assert cells[2:5] == ["0.600", "0.600", "0.000"] and cells[-1] == "1 |"

    def test_failed_seeds_of_a_scored_variant_are_listed_below(self, results):
        results["variants"][BASELINE]["seeds"]["2"] = {"error": "killed"}
        row = ablation_table.variant_row(
            BASELINE, "none", None, results["variants"][BASELINE]["seeds"]
        )
        results["variants"][BASELINE] = row
        lines = self.lines(results)
        assert lines[2].endswith("| 2 of 3 |")
        assert "`baseline` seed 2 failed: killed" in lines
        assert "`lovasz` seed 1 failed: other" in lines  # its seed 0's error is in its row
        assert not any(line.startswith("`lovasz` seed 0") for line in lines)

    def test_says_what_the_runs_shared_their_seeds_and_the_best(self, results):
        table = ablation_table.markdown_table(results, ablation.VARIANT_ORDER)
        assert "the baseline is the `original` recipe (-a model unet -a encoder resnet18" in table
        assert (
            "8 random chips per training window, 2 epoch(s) of batch 4, with -a num_workers 0"
            in table
        )
        assert (
            "Seeds: 0, 1, every variant (`-a seed N`, experiment id `{variant}-seed{N}`)." in table
        )
        assert "Best (highest mean Jaccard): `tta`." in table and "Machine: a CPU." in table

    def test_says_which_variants_ran_with_which_seeds(self, results):
        results["variants"]["tta"] = ablation_table.variant_row(
            "tta", "TTA", BASELINE, {"2": outcome(GOOD)}
        )
        table = ablation_table.markdown_table(results, ablation.VARIANT_ORDER)
        assert "Seeds: 0, 1 (`baseline`, `lovasz`); 2 (`tta`) (`-a seed N`" in table

    def test_long_errors_are_cut(self, results):
        results["variants"]["lovasz"]["seeds"]["0"]["error"] = "x" * 500
        (row,) = [r for r in self.lines(results) if r.startswith("| `lovasz`")]
        assert len(row) < 250 and "x..." in row


class TestRunVariant:
    def test_failure_is_recorded(self, tmp_path, monkeypatch):
        setup = make_setup(tmp_path)
        monkeypatch.setattr(
            ablation, "run_rastervision", FakeRastervision(setup.out, {}, ["lovasz-seed3"])
        )
        result = ablation.run_variant(
            setup, BY_NAME["lovasz"], 3, Preprocessor(setup, {"root_uri"})
        )
        assert result == {"error": "error: out of memory"}
        assert (setup.out / "logs" / "lovasz-seed3.log").exists()

    def test_reusing_a_model_that_is_missing(self, tmp_path, monkeypatch):
        monkeypatch.setattr(ablation, "run_rastervision", lambda *a, tmp, output: 1.0)
        setup = make_setup(tmp_path)
        fake_training(setup.out, "baseline-seed0")  # another seed's model is no use
        result = ablation.run_variant(setup, BY_NAME["tta"], 1, Preprocessor(setup, {"root_uri"}))
        assert result == {
            "error": "baseline has no trained model with seed 1 (it failed or did not run)"
        }

    def test_reuse_links_the_same_seeds_model_and_clears_old_outputs(self, tmp_path, monkeypatch):
        setup = make_setup(tmp_path)
        root = setup.out
        fake = FakeRastervision(root, {"tta-seed1": FAIR}, [])
        monkeypatch.setattr(ablation, "run_rastervision", fake)
        fake_training(root, "baseline-seed0")
        fake_training(root, "baseline-seed1")
        stale = root / "predict" / "tta-seed1" / "window_0.tif"
        stale.parent.mkdir(parents=True)
        stale.write_bytes(b"old")
        (root / "train" / "tta-seed1").mkdir()
        result = ablation.run_variant(setup, BY_NAME["tta"], 1, Preprocessor(setup, {"root_uri"}))
        for command in ("chip", "train"):  # eval's -a threshold train predicts the chips
            own, reused = root / command / "tta-seed1", root / command / "baseline-seed1"
            assert own.resolve() == reused.resolve()
        assert not stale.exists()
        assert (result["jaccard"], result["f1"], result["total_s"]) == (0.5, 0.75, 60.0)
        assert fake.calls[-1][:5] == ("run", "inprocess", ablation.EXPERIMENT, "predict", "eval")
        assert run_args(fake.calls[-1])["seed"] == "1"

    def test_preprocess_runs_once_per_distinct_arguments(self, tmp_path, monkeypatch):
        calls = []
        monkeypatch.setattr(
            ablation, "run_rastervision", lambda *a, tmp, output: calls.append(a) or 1.0
        )
        setup = make_setup(tmp_path)
        preprocessor = Preprocessor(setup, {"root_uri", "train_ids", "gsd"})
        for name, seed in ((BASELINE, 0), ("lovasz", 0), ("gsd-0.1", 0), ("fpn", 0), (BASELINE, 1)):
            preprocessor.ensure(ablation.experiment_args(setup, BY_NAME[name], seed), output=None)
        assert len(calls) == 2
        assert calls[0][:4] == ("run", "inprocess", ablation.PREPROCESS, "PREPROCESS")
        assert "gsd" not in calls[0]
        assert " -a gsd 0.1 " in " ".join(calls[1]) + " "
        assert "loss" not in calls[0] and "seed" not in calls[0]  # only what PREPROCESS takes


class TestMain:
    def test_each_seed_runs_every_variant_reusing_that_seeds_model(self, ablate, tmp_path):
        scores = {"baseline-seed1": POOR, "tta-seed1": FAIR}
        fake, results = ablate("--seeds", "0,1", "--only", "tta", scores=scores)
        assert fake.run_ids() == ["baseline-seed0", "tta-seed0", "baseline-seed1", "tta-seed1"]
        seeds = [run_args(call)["seed"] for call in fake.calls if "seed" in run_args(call)]
        assert seeds == ["0", "0", "1", "1"]
        train = tmp_path / "out" / "train"
        assert (train / "tta-seed1").resolve() == (train / "baseline-seed1").resolve()
        baseline, tta = results["variants"][BASELINE], results["variants"]["tta"]
        assert list(baseline["seeds"]) == ["0", "1"]
        assert (baseline["jaccard_mean"], baseline["jaccard_worst"]) == (pytest.approx(0.5), 0.4)
        assert tta["jaccard_mean"] == pytest.approx(0.55)
        assert tta["jaccard_spread"] == pytest.approx(0.1)
        assert results["best"] == "tta"

    def test_without_seeds_one_run_with_the_experiments_default(self, ablate):
        fake, results = ablate("--only", "lovasz")
        assert fake.run_ids() == ["lovasz-seed0"]
        assert list(results["variants"]["lovasz"]["seeds"]) == ["0"]

    def test_a_failed_seed_is_recorded_and_the_others_aggregate(self, ablate, tmp_path):
        fake, results = ablate("--seeds", "0,1,2", "--only", "tta", failing=["baseline-seed1"])
        assert fake.run_ids() == [  # tta-seed1 stops before its rastervision run: no model
            "baseline-seed0", "tta-seed0", "baseline-seed1", "baseline-seed2", "tta-seed2",
        ]  # fmt: skip
        baseline, tta = results["variants"][BASELINE], results["variants"]["tta"]
        assert baseline["seeds"]["1"] == {"error": "error: out of memory"}
        assert tta["seeds"]["1"]["error"].startswith("baseline has no trained model with seed 1")
        assert (baseline["runs"], baseline["scored"], tta["scored"]) == (3, 2, 2)
        assert baseline["jaccard_mean"] == pytest.approx(0.6)
        table = (tmp_path / "out" / "results.md").read_text()
        assert "| 2 of 3 |" in table and "`baseline` seed 1 failed: error: out of memory" in table

    def test_only_adds_seeds_and_variants_to_the_same_setups_results(self, ablate):
        ablate("--seeds", "0", "--only", "baseline,tta", scores={"baseline-seed0": POOR})
        fake, results = ablate("--seeds", "1", "--only", "baseline,lovasz")
        assert fake.run_ids() == ["baseline-seed1", "lovasz-seed1"]
        assert list(results["variants"][BASELINE]["seeds"]) == ["0", "1"]
        assert results["variants"][BASELINE]["seeds"]["0"]["jaccard"] == 0.4  # kept, not rerun
        assert list(results["variants"]["tta"]["seeds"]) == ["0"]
        fake, _ = ablate("--seeds", "0", "--only", "tta")
        assert fake.run_ids() == ["tta-seed0"]  # the kept seed-0 baseline model is reused

    def test_another_recipe_starts_afresh(self, ablate):
        ablate("--only", "baseline")
        _, results = ablate("--recipe", "demo", "--only", "fpn")
        assert list(results["variants"]) == ["fpn"]
        assert results["setup"]["recipe"] == {"name": "demo", "args": DEMO.args}

    def test_a_left_out_variant_asked_for_is_a_usage_error(self, ablate, capsys):
        with pytest.raises(SystemExit) as exit_info:
            ablate("--recipe", "demo", "--only", "lovasz")
        assert exit_info.value.code == 2
        assert (
            "cannot run lovasz: the baseline already has -a loss lovasz" in capsys.readouterr().err
        )


class TestResults:
    def test_kept_only_for_the_same_setup(self, tmp_path):
        setup = make_setup(tmp_path)
        setup.out.mkdir(parents=True)
        earlier = {"setup": setup.identity(), "machine": "m", "variants": {"a": {}}}
        (setup.out / "results.json").write_text(json.dumps(earlier))
        assert ablation.load_results(setup, keep=True)["variants"] == {"a": {}}
        assert ablation.load_results(setup, keep=False)["variants"] == {}
        for other in (make_setup(tmp_path, loss="dice"), make_setup(tmp_path, DEMO)):
            assert ablation.load_results(other, keep=True)["variants"] == {}


@pytest.mark.slow
def test_test_run_on_the_tiny_catalog(tmp_path, monkeypatch, capsys):
    """The whole script through the real CLI: PREPROCESS, the baseline, TTA with its model."""
    catalog = make_opencities_catalog(tmp_path / "data", test_chip_size=64)
    monkeypatch.setenv("RV_TMP_DIR", str(tmp_path / "rvtmp"))
    out = tmp_path / "out"
    argv = [
        "--test", "--out", str(out), "--catalog", catalog.catalog_uri,
        "--train-ids", catalog.train_keys[0], "--valid-ids", catalog.valid_keys[0],
        # RV pads random windows past the edges of a 96 px scene and drops chips that are
        # mostly padding (unseeded): draw enough that a batch of 2 always remains.
        "--chips-per-scene", "32",
        "--", *TINY_ARGS,
    ]  # fmt: skip
    assert ablation.main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert list(results["variants"]) == [BASELINE, "tta"]
    for row in results["variants"].values():
        (run,) = row["seeds"].values()
        assert "error" not in run, run
        assert 0.0 <= run["jaccard"] <= 1.0 and run["total_s"] > 0 and 0.0 <= run["f1"] <= 1.0
        assert row["jaccard_worst"] == row["jaccard_mean"] and row["jaccard_spread"] == 0
    assert results["variants"][BASELINE]["train_s_mean"] > 0
    assert results["best"] in (BASELINE, "tta")
    table = capsys.readouterr().out
    assert table == (out / "results.md").read_text()
    assert "| `tta` | 8-fold test-time augmentation |" in table
    assert (out / "train" / "tta-seed0").is_symlink()
