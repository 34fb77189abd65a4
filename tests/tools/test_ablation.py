"""``wb_scripts/ablation`` (``tools.ablation``): variants, runs, scores and the table.

The unit tests fake the rastervision runs and their outputs; the slow test runs ``--test``
(the baseline and TTA with its model, through the real CLI) on the tiny generated catalog.
"""

import json
import subprocess
from pathlib import Path

import pytest

from benchmark.data.uris import write_json
from benchmark.evaluation.metrics import ConfusionCounts, build_eval_report
from benchmark.experiments.benchmark import BenchmarkArgs
from benchmark.pipeline import layout
from tests.fixtures.cli import TINY_MODEL_ARGS
from tests.fixtures.opencities import make_opencities_catalog
from tools import ablation
from tools.ablation import (
    BASELINE,
    BASELINE_ARGS,
    VARIANTS,
    Budget,
    Preprocessor,
    Setup,
)

BY_NAME = {v.name: v for v in VARIANTS}
# Small enough for the 96 x 80 px scenes of the generated catalog.
TINY_ARGS = [
    "-a", "chip_sz", "32", "-a", "random_sz_min", "24", "-a", "random_sz_max", "40",
    "-a", "predict_window", "48", "-a", "num_workers", "0", *TINY_MODEL_ARGS,
]  # fmt: skip


def make_setup(tmp_path: Path, **extra: str) -> Setup:
    return Setup(
        out=tmp_path / "out",
        tmp=tmp_path / "tmp",
        catalog="cat.json",
        train_ids="kam/aaa111",
        valid_ids="kam/bbb222",
        budget=Budget(chips_per_scene=8, num_epochs=2, batch_sz=4),
        extra=extra,
    )


def fake_eval(root: Path, name: str, counts: ConfusionCounts, threshold: float = 0.5) -> None:
    """What a finished variant's eval leaves: its saved config and eval.json."""
    eval_uri = layout.command_dir(str(root), "eval", name)
    train_uri = layout.command_dir(str(root), "train", name)
    write_json(
        {"eval_uri": eval_uri, "train_uri": train_uri},
        layout.pipeline_config_uri(str(root), name),
    )
    report = build_eval_report({"kam/bbb222": counts}) | {"decision_threshold": threshold}
    write_json(report, layout.eval_report_uri(eval_uri))


def fake_training(root: Path, name: str) -> None:
    """What a finished variant's train leaves: RV's log.csv (two epochs, 2 min) and a bundle."""
    train_uri = layout.command_dir(str(root), "train", name)
    Path(train_uri).mkdir(parents=True, exist_ok=True)
    Path(layout.training_log_uri(train_uri)).write_text(
        "epoch,train_loss,train_time,val_loss\n0,0.9,0:01:00.500000,1.0\n1,0.7,0:00:59.500000,0.9\n"
    )
    Path(layout.model_bundle_uri(train_uri)).write_bytes(b"zip")


class TestVariants:
    def test_names_are_unique_and_the_baseline_comes_first(self):
        assert VARIANTS[0].name == BASELINE and not VARIANTS[0].args
        assert len(BY_NAME) == len(VARIANTS)

    def test_each_variant_changes_one_known_argument(self):
        known = set(BenchmarkArgs.model_fields)
        for variant in VARIANTS[1:]:
            ((key, value),) = variant.args.items()
            assert key in known | {"gsd"}, variant.name
            assert BASELINE_ARGS.get(key) != value, variant.name

    def test_the_asked_options_are_there(self):
        args = {k: v for variant in VARIANTS for k, v in variant.args.items()}
        assert {"model", "encoder", "aug", "gsd", "tta", "predict_overlap"} <= args.keys()
        assert {v.args.get("loss") for v in VARIANTS} >= {"ce+dice", "lovasz"}
        assert {v.args.get("encoder") for v in VARIANTS} >= {"resnet34", "efficientnet-b0"}
        assert {v.args.get("aug") for v in VARIANTS} >= {"color", "scale"}

    def test_baseline_is_the_originals_recipe(self):
        assert {k: BASELINE_ARGS[k] for k in ("model", "encoder", "loss", "aug")} == {
            "model": "unet",
            "encoder": "resnet18",
            "loss": "ce",
            "aug": "d4",
        }

    def test_only_inference_options_reuse_the_baselines_model(self):
        reusing = {v.name for v in VARIANTS if v.reuses}
        assert reusing == {"tta", "overlap-256", "tuned-threshold"}
        assert {v.reuses for v in VARIANTS if v.reuses} == {BASELINE}


class TestGsdDetection:
    def test_gsd_left_out_when_the_experiment_lacks_it(self):
        known = set(BenchmarkArgs.model_fields) - {"gsd"}
        names = [v.name for v in ablation.supported_variants(VARIANTS, known)]
        assert "gsd-0.1" not in names
        assert names == [v.name for v in VARIANTS if v.name != "gsd-0.1"]

    def test_gsd_kept_when_the_experiment_has_it(self):
        known = set(BenchmarkArgs.model_fields) | {"gsd"}
        assert "gsd-0.1" in [v.name for v in ablation.supported_variants(VARIANTS, known)]

    def test_read_from_the_args_classes(self):
        benchmark_args, preprocess_args = ablation.experiment_arg_names()
        assert benchmark_args == set(BenchmarkArgs.model_fields)
        assert {"root_uri", "train_ids", "split_size"} <= preprocess_args
        assert ("gsd" in benchmark_args) == ("gsd" in BenchmarkArgs.model_fields)


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


class TestArguments:
    def test_layers_baseline_budget_extra_change(self, tmp_path):
        setup = make_setup(tmp_path, loss="dice", num_workers="0")
        args = ablation.experiment_args(setup, BY_NAME["lovasz"])
        assert args["loss"] == "lovasz"  # the variant's change wins over the extra
        assert args["num_workers"] == "0"
        assert (args["chips_per_scene"], args["num_epochs"], args["batch_sz"]) == ("8", "2", "4")
        assert args["encoder"] == "resnet18" and args["pretrained"] == "false"
        assert (args["experiment_id"], args["root_uri"]) == ("lovasz", str(setup.out))
        baseline = ablation.experiment_args(setup, BY_NAME[BASELINE])
        assert baseline["loss"] == "dice"  # the extra changes the baseline for every variant

    def test_rv_flags(self):
        assert ablation.rv_flags({"a": "1", "b": "x"}) == ["-a", "a", "1", "-a", "b", "x"]

    def test_extra_args(self):
        assert ablation.parse_extra_args(["-a", "k", "v", "-a", "n", "1"]) == {"k": "v", "n": "1"}
        assert ablation.parse_extra_args([]) == {}

    @pytest.mark.parametrize(
        "words, message",
        [
            (["-a", "k"], "as -a KEY VALUE"),
            (["--x", "k", "v"], "as -a KEY VALUE"),
            (["-a", "experiment_id", "e"], "-a experiment_id: set by the script"),
        ],
    )
    def test_bad_extra_args(self, words, message):
        with pytest.raises(ValueError, match=message):
            ablation.parse_extra_args(words)

    def test_test_run_defaults(self):
        args = ablation.build_parser().parse_args(["--test", "--epochs", "3"])
        setup = ablation.make_setup(args, {})
        assert setup.budget == Budget(chips_per_scene=8, num_epochs=3, batch_sz=2)
        assert setup.out.name == "ablation-test"

    def test_budget_must_be_positive(self, capsys):
        with pytest.raises(SystemExit) as exit_info:
            ablation.build_parser().parse_args(["--epochs", "0"])
        assert exit_info.value.code == 2
        assert "--epochs: 0 is not a whole number above 0" in capsys.readouterr().err


class TestScores:
    def test_train_time_from_rv_log(self, tmp_path):
        fake_training(tmp_path, BASELINE)
        assert ablation.train_seconds(tmp_path / "train" / BASELINE / "log.csv") == 120.0
        assert ablation.parse_timedelta("1:02:03.5") == 3723.5

    def test_read_scores(self, tmp_path):
        fake_training(tmp_path, BASELINE)
        fake_eval(tmp_path, BASELINE, ConfusionCounts(tp=60, fp=20, fn=20, tn=900))
        fake_eval(tmp_path, "tta", ConfusionCounts(tp=1), threshold=0.35)
        scores = ablation.read_scores(tmp_path, BY_NAME[BASELINE])
        assert scores == {
            "jaccard": 0.6, "precision": 0.75, "recall": 0.75, "threshold": 0.5, "train_s": 120.0,
        }  # fmt: skip
        tta = ablation.read_scores(tmp_path, BY_NAME["tta"])
        assert "train_s" not in tta and tta["threshold"] == 0.35

    def test_best_is_the_highest_jaccard_of_those_scored(self):
        rows = {
            "a": {"variant": "a", "jaccard": 0.4},
            "b": {"variant": "b", "error": "boom"},
            "c": {"variant": "c", "jaccard": 0.5},
            "d": {"variant": "d", "jaccard": 0.5},
        }
        assert ablation.best_variant(rows) == "c"
        assert ablation.best_variant({"b": rows["b"]}) is None


class TestTable:
    @pytest.fixture
    def results(self, tmp_path) -> dict:
        setup = make_setup(tmp_path, num_workers="0")
        row = {"jaccard": 0.61234, "precision": 0.8, "recall": 0.7, "threshold": 0.5}
        variants = {
            "tta": {**row, "variant": "tta", "change": "TTA", "reuses": BASELINE, "total_s": 61},
            "lovasz": {"variant": "lovasz", "change": "Lovasz", "error": "error: a | b"},
            BASELINE: {**row, "variant": BASELINE, "change": "none", "train_s": 90, "total_s": 185},
        }
        return {"setup": setup.identity(), "machine": "a CPU", "variants": variants, "best": "tta"}

    def test_rows_in_variant_order_with_scores_times_and_failures(self, results):
        lines = ablation.markdown_table(results).splitlines()
        assert lines[0].startswith("| Variant | What changed | Validation Jaccard | Precision |")
        assert (
            lines[2]
            == "| `baseline` | none | 0.612 | 0.800 | 0.700 | 0.50 | 1 min 30 s | 3 min 5 s |"
        )
        assert lines[3] == "| `lovasz` | Lovasz | failed: error: a \\| b |  |  |  |  |  |"
        assert (
            lines[4]
            == "| `tta` | TTA | 0.612 | 0.800 | 0.700 | 0.50 | baseline's model | 1 min 1 s |"
        )

    def test_says_what_the_runs_shared_and_the_best(self, results):
        table = ablation.markdown_table(results)
        assert "8 random chips per training window, 2 epoch(s) of batch 4" in table
        assert "-a num_workers 0" in table
        assert "Best: `tta`." in table and "Machine: a CPU." in table

    def test_long_errors_are_cut(self, results):
        results["variants"]["lovasz"]["error"] = "x" * 500
        (row,) = [r for r in ablation.markdown_table(results).splitlines() if "lovasz" in r]
        assert len(row) < 250 and "x..." in row


class TestRunVariant:
    def test_failure_is_recorded_and_the_table_goes_on(self, tmp_path, monkeypatch):
        def failing_rastervision(*args, tmp, output):
            output.write("lots of output\nerror: bad experiment arguments: -a loss\n\n")
            raise subprocess.CalledProcessError(1, "rastervision")

        monkeypatch.setattr(ablation, "run_rastervision", failing_rastervision)
        setup = make_setup(tmp_path)
        preprocessor = Preprocessor(setup, {"root_uri"})
        row = ablation.run_variant(setup, BY_NAME["lovasz"], preprocessor)
        assert row["error"] == "error: bad experiment arguments: -a loss"
        assert "jaccard" not in row

    def test_reusing_a_model_that_is_missing(self, tmp_path, monkeypatch):
        monkeypatch.setattr(ablation, "run_rastervision", lambda *a, tmp, output: 1.0)
        setup = make_setup(tmp_path)
        row = ablation.run_variant(setup, BY_NAME["tta"], Preprocessor(setup, {"root_uri"}))
        assert row["error"] == "baseline has no trained model (it failed or did not run)"

    def test_reuse_links_the_model_and_clears_old_outputs(self, tmp_path, monkeypatch):
        setup = make_setup(tmp_path)
        root = setup.out
        calls = []

        def fake_rastervision(*args, tmp, output):
            calls.append(args)
            if "eval" in args:
                fake_eval(root, "tta", ConfusionCounts(tp=3, fp=1))
            return 5.0

        monkeypatch.setattr(ablation, "run_rastervision", fake_rastervision)
        fake_training(root, BASELINE)
        stale = root / "predict" / "tta" / "window_0.tif"
        stale.parent.mkdir(parents=True)
        stale.write_bytes(b"old")
        (root / "train" / "tta").mkdir()
        row = ablation.run_variant(setup, BY_NAME["tta"], Preprocessor(setup, {"root_uri"}))
        assert (root / "train" / "tta").resolve() == (root / "train" / BASELINE).resolve()
        assert not stale.exists()
        assert (row["jaccard"], row["total_s"]) == (0.75, 5.0)
        assert calls[-1][:5] == ("run", "inprocess", ablation.EXPERIMENT, "predict", "eval")
        assert "chip" not in calls[-1] and "train" not in calls[-1]

    def test_preprocess_runs_once_per_distinct_arguments(self, tmp_path, monkeypatch):
        calls = []
        monkeypatch.setattr(
            ablation, "run_rastervision", lambda *a, tmp, output: calls.append(a) or 1.0
        )
        setup = make_setup(tmp_path)
        preprocessor = Preprocessor(setup, {"root_uri", "train_ids", "gsd"})
        for name in (BASELINE, "lovasz", "gsd-0.1", "fpn"):
            args = ablation.experiment_args(setup, BY_NAME[name])
            preprocessor.ensure(args, output=None)
        assert len(calls) == 2
        assert calls[0][:4] == ("run", "inprocess", ablation.PREPROCESS, "PREPROCESS")
        assert "gsd" not in calls[0]
        assert " -a gsd 0.1 " in " ".join(calls[1]) + " "
        assert "loss" not in calls[0]  # only what PREPROCESS takes


class TestResults:
    def test_kept_only_for_the_same_setup(self, tmp_path):
        setup = make_setup(tmp_path)
        setup.out.mkdir(parents=True)
        earlier = {"setup": setup.identity(), "machine": "m", "variants": {"a": {}}}
        (setup.out / "results.json").write_text(json.dumps(earlier))
        assert ablation.load_results(setup, keep=True)["variants"] == {"a": {}}
        assert ablation.load_results(setup, keep=False)["variants"] == {}
        other = make_setup(tmp_path, loss="dice")
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
        assert "error" not in row, row
        assert 0.0 <= row["jaccard"] <= 1.0 and row["total_s"] > 0
    assert results["variants"][BASELINE]["train_s"] > 0
    assert results["best"] in (BASELINE, "tta")
    table = capsys.readouterr().out
    assert table == (out / "results.md").read_text()
    assert "| `tta` | 8-fold test-time augmentation |" in table
    assert (out / "train" / "tta").is_symlink()
