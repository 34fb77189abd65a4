"""``wb_scripts/ablation``: the baseline and each option beyond it, for the same budget and seeds.

Every variant is a recipe's baseline with one change. ``--recipe original`` (the default) is
the original benchmark's (U-Net, ResNet-18, cross-entropy, D4 flips) at the sample's 7.5 cm for
a small budget; ``--recipe demo`` is ``wb_scripts/demo``'s, read from its one copy in
``benchmark/experiments/demo_recipe.py`` (30 cm, 128 px chips, Lovasz, about 300 steps of batch
8). Each variant is trained from scratch on random chips of the Kampala sample's training scene
drawn the same way, for the same number of steps, then predicted and scored on its validation
scene: the competition's micro Jaccard and per-building F1. Options
that change only inference (test-time augmentation, blended overlap, a tuned threshold)
predict with the baseline's model of the same seed instead of training their own, so the one
change is all that differs.

Each variant runs once per seed of ``--seeds`` (default 0, the experiment's default): the real
``rastervision`` CLI (inprocess runner) in a child process with ``-a seed N`` and experiment id
``{variant}-seed{N}``, its output in ``{out}/logs/{variant}-seed{N}.log``. Writes
``{out}/results.json`` (every seed's scores or error, and their aggregates) and
``{out}/results.md`` (the README's table: mean, worst and spread of Jaccard over the seeds that
scored) and names the variant with the best mean Jaccard.

One scene each way is a small sample: a seed fixes the chips, initial weights and batch order,
and another seed moved one variant by 0.08 Jaccard at the demo's budget, more than most gaps
between variants. Hence several seeds, with the worst and the spread beside the mean. The tuned
threshold is chosen on the scene it is scored on.
"""

import argparse
import csv
import io
import json
import logging
import os
import shutil
import sys
from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

from benchmark.cli import options
from benchmark.cli.demo import rv_flags
from benchmark.cli.summary import (
    describe_building_scores,
    describe_scores,
    format_duration,
    read_run_config,
)
from benchmark.console import log_like_rastervision
from benchmark.data import layout
from benchmark.data.uris import read_json
from benchmark.experiments import demo_recipe
from benchmark.experiments.demo_recipe import TRAIN_IDS, TRAIN_STAC_URI, VALID_IDS
from tools.ablation_table import best_variant, markdown_table, variant_row
from tools.measure import REPO, describe_machine, run_rastervision

EXPERIMENT = "benchmark.experiments.benchmark"
PREPROCESS = "benchmark.experiments.split_images"
TRAINING_COMMANDS = ("chip", "train", "predict", "eval")
INFERENCE_COMMANDS = ("predict", "eval")
# Set by the script from its own options; not accepted after ``--``.
RESERVED_ARGS = frozenset(
    {"root_uri", "experiment_id", "train_stac_uri", "train_ids", "valid_ids", "seed"}
)
DEFAULT_SEEDS = (0,)  # the benchmark experiment's default -a seed: one run, as before --seeds

log = logging.getLogger("tools.ablation")


@dataclass(frozen=True)
class Budget:
    """The training every variant gets; the fields are the experiment's argument names."""

    chips_per_scene: int
    num_epochs: int
    batch_sz: int

    def args(self) -> dict[str, str]:
        """As ``-a`` arguments."""
        return {key: str(value) for key, value in asdict(self).items()}


@dataclass(frozen=True)
class Recipe:
    """A baseline for the variants to change one thing of: its ``-a`` arguments and budget."""

    name: str
    summary: str  # for --help
    args: dict[str, str]
    budget: Budget


ORIGINAL = Recipe(
    "original",
    "the original benchmark's model, loss and augmentation at the sample's 7.5 cm, random "
    "224-320 px windows resized to 256, lr 1e-3",
    # From scratch (no internet here), the original's lr 1e-4 barely moves a model in a few
    # hundred steps.
    {
        "model": "unet",
        "encoder": "resnet18",
        "loss": "ce",
        "aug": "d4",
        "pretrained": "false",
        "lr": "1e-3",
        "chip_method": "random",
        "chip_sz": "256",
        "random_sz_min": "224",
        "random_sz_max": "320",
    },
    # About 28 minutes for every variant on a 2-core CPU (estimated): per training variant
    # 2 x 80 / 4 = 40 steps of ~2.2 s (more for ResNet-34 and EfficientNet), plus ~12 s of
    # start-up, the bundle RV exports after training, chip, predict and eval: ~2.5 min; under a
    # minute for each inference-only variant but TTA (8 passes).
    Budget(chips_per_scene=80, num_epochs=2, batch_sz=4),
)
# ~300 steps: about 7 minutes per training variant and seed on 2 cores, 25 s per
# inference-only one (measured, 2026-12-02).
DEMO_BUDGET = Budget(
    chips_per_scene=int(demo_recipe.ARGS["chips_per_scene"]),
    num_epochs=int(demo_recipe.ARGS["num_epochs"]),
    batch_sz=8,  # the experiment's default, which the demo keeps
)
DEMO = Recipe(
    "demo",
    "wb_scripts/demo's: 30 cm, random 112-160 px windows resized to 128, Lovasz hinge, "
    "an average of the weights (decay 0.99), predicted in 128 px windows blended over 64, "
    "thresholded to predict the training chips' building share",
    # The demo's recipe at its GSD, the budget apart (a variant may change the GSD).
    {
        "gsd": demo_recipe.GSD,
        **{k: v for k, v in demo_recipe.ARGS.items() if k not in asdict(DEMO_BUDGET)},
    },
    DEMO_BUDGET,
)
RECIPES = {recipe.name: recipe for recipe in (ORIGINAL, DEMO)}
TEST_BUDGET = Budget(chips_per_scene=8, num_epochs=1, batch_sz=2)
BUDGET_OPTIONS = (
    ("--chips-per-scene", "chips_per_scene"), ("--epochs", "num_epochs"),
    ("--batch-size", "batch_sz"),
)  # fmt: skip


@dataclass(frozen=True)
class Variant:
    """The baseline with one change; ``name`` is also the start of its experiment ids."""

    name: str
    change: str
    args: dict[str, str] = field(default_factory=dict)
    reuses: str | None = None  # the variant whose trained model this one predicts with
    recipes: tuple[str, ...] = ()  # the recipes it makes sense for; empty: every one


BASELINE = "baseline"
VARIANTS = (
    Variant(BASELINE, "none: the recipe (below the table)"),
    Variant("ce-dice", "loss cross-entropy + Dice", {"loss": "ce+dice"}),
    Variant("lovasz", "loss Lovasz hinge", {"loss": "lovasz"}),
    Variant("ce-lovasz", "loss cross-entropy + Lovasz hinge", {"loss": "ce+lovasz"}),
    Variant("aug-color", "augmentation D4 + colour jitter", {"aug": "color"}),
    Variant("aug-scale", "augmentation D4 + colour + scale jitter", {"aug": "scale"}),
    Variant("fpn", "decoder FPN", {"model": "fpn"}),
    Variant("resnet34", "encoder ResNet-34", {"encoder": "resnet34"}),
    Variant("efficientnet-b0", "encoder EfficientNet-B0", {"encoder": "efficientnet-b0"}),
    Variant("gsd-0.1", "windows resampled to 10 cm (the sample is 7.5 cm)", {"gsd": "0.1"}),
    Variant(
        "ema",
        "exponential moving average of the weights (decay 0.99), validated and bundled",
        {"ema_decay": "0.99"},
    ),
    Variant(
        "self-train",
        "one self-training round (2 epochs) on pseudo-labels of the test chips (pass them: "
        "-- -a test_img_dir DIR -a test_chip_gsd M)",
        {"self_train_rounds": "1"},
    ),
    Variant(
        "instance",
        "instance target: body, border and contact outputs (1 / 0.25 / 0.1), decoded by a "
        "marker watershed",
        {"target": "instance"},
    ),
    Variant("tta", "8-fold test-time augmentation", {"tta": "true"}, reuses=BASELINE),
    Variant(
        "overlap-256",
        "prediction windows overlap 256 px, blended",
        {"predict_overlap": "256"},
        reuses=BASELINE,
        recipes=(ORIGINAL.name,),  # at most half a window: the demo's are 128 px
    ),
    Variant(
        "tuned-threshold",
        "threshold tuned on the validation scene",
        {"threshold": "tune"},
        reuses=BASELINE,
    ),
    Variant(
        "train-threshold",
        "threshold chosen on the training chips (no validation label read)",
        {"threshold": "train"},
        reuses=BASELINE,
    ),
    Variant(
        "threshold-0.5",
        "threshold 0.5, not the one predicting the training chips' building share",
        {"threshold": "fixed"},
        reuses=BASELINE,
        recipes=(DEMO.name,),  # the original recipe's baseline is at 0.5 already
    ),
    Variant(
        "share-threshold",
        "threshold predicting the training chips' building share (no validation label read)",
        {"threshold": "share"},
        reuses=BASELINE,
    ),
)
VARIANT_ORDER = tuple(v.name for v in VARIANTS)  # the table's
TEST_VARIANTS = (BASELINE, "tta")  # one trained, one reusing its model: both paths


class VariantError(Exception):
    """A variant cannot run; the message goes in the table."""


@dataclass(frozen=True)
class Setup:
    """What every run of one ablation shares: data, recipe, budget, extra arguments, folders."""

    out: Path
    tmp: Path
    catalog: str
    train_ids: str
    valid_ids: str
    recipe: Recipe
    budget: Budget
    extra: dict[str, str] = field(default_factory=dict)  # -a arguments after --

    def identity(self) -> dict:
        """What results must share to sit in one table (the seeds need not)."""
        return {
            "catalog": self.catalog,
            "train_ids": self.train_ids,
            "valid_ids": self.valid_ids,
            "recipe": {"name": self.recipe.name, "args": self.recipe.args},
            "budget": asdict(self.budget),
            "extra": self.extra,
        }

    def baseline_args(self) -> dict[str, str]:
        """The baseline's ``-a`` arguments: the recipe's, the budget, the user's extras."""
        return {**self.recipe.args, **self.budget.args(), **self.extra}


def run_id(name: str, seed: int) -> str:
    """The experiment id of a variant's run with one seed."""
    return f"{name}-seed{seed}"


def experiment_arg_names() -> tuple[set[str], set[str]]:
    """The arguments the benchmark and PREPROCESS experiments take, read from their classes.

    Options are added to the experiments over time (``gsd`` is one); the ablation runs only
    the variants the checkout has.
    """
    from benchmark.experiments.benchmark_args import BenchmarkArgs
    from benchmark.experiments.split_images import SplitImagesArgs

    return set(BenchmarkArgs.model_fields), set(SplitImagesArgs.model_fields)


def why_left_out(variant: Variant, known_args: Collection[str], setup: Setup) -> str | None:
    """Why ``variant`` cannot run in ``setup``, or None if it can.

    An argument the experiment lacks, a recipe it is not for, or a change the baseline already
    has (the demo recipe's Lovasz hinge), which would only run the baseline again.
    """
    missing = sorted(set(variant.args) - set(known_args))
    if missing:
        return f"the experiment has no -a {', '.join(missing)}"
    if variant.recipes and setup.recipe.name not in variant.recipes:
        return f"it is for the {' and '.join(variant.recipes)} recipe only"
    baseline = setup.baseline_args()
    if variant.args and all(baseline.get(key) == value for key, value in variant.args.items()):
        return f"the baseline already has {' '.join(rv_flags(variant.args))}"
    return None


def supported_variants(
    variants: Iterable[Variant],
    known_args: Collection[str],
    setup: Setup,
    only: Collection[str] | None = None,
) -> list[Variant]:
    """The variants that can run in ``setup``; asking for one that cannot (``only``) is an error."""
    kept = []
    for variant in variants:
        reason = why_left_out(variant, known_args, setup)
        if reason is None:
            kept.append(variant)
        elif only and variant.name in only:
            raise ValueError(f"cannot run {variant.name}: {reason}")
        else:
            log.info("Leaving out %s: %s", variant.name, reason)
    return kept


def select_variants(
    variants: list[Variant], only: Collection[str] | None, trained: Collection[str]
) -> list[Variant]:
    """``only`` (every variant without it), in ``variants``' order, with the models they reuse.

    A variant that reuses a model not in ``trained`` (the variants an earlier run in the same
    directory finished, with the same seed) brings that model's variant along, ahead of it.
    """
    by_name = {v.name: v for v in variants}
    unknown = sorted(set(only or ()) - by_name.keys())
    if unknown:
        raise ValueError(f"unknown variant {', '.join(unknown)}: choose from {', '.join(by_name)}")
    wanted = set(only or by_name)
    wanted |= {
        by_name[name].reuses
        for name in wanted
        if by_name[name].reuses and by_name[name].reuses not in trained
    }
    return [v for v in variants if v.name in wanted]


def plan_runs(
    variants: list[Variant],
    only: Collection[str] | None,
    seeds: Iterable[int],
    rows: Mapping[str, dict],
) -> list[tuple[Variant, int]]:
    """Each selected variant with each seed, seed by seed: every variant has a score early.

    ``rows`` are earlier results kept: a model one of them trained with a seed is reused for
    that seed instead of being trained again.
    """
    runs = []
    for seed in seeds:
        trained = [
            name for name, row in rows.items() if "jaccard" in row["seeds"].get(str(seed), {})
        ]
        runs += [(variant, seed) for variant in select_variants(variants, only, trained)]
    return runs


def experiment_args(setup: Setup, variant: Variant, seed: int) -> dict[str, str]:
    """Every ``-a`` argument of a variant's run: baseline, its change, the seed, the data."""
    return {
        **setup.baseline_args(),
        **variant.args,
        "seed": str(seed),
        "root_uri": str(setup.out),
        "experiment_id": run_id(variant.name, seed),
        "train_stac_uri": setup.catalog,
        "train_ids": setup.train_ids,
        "valid_ids": setup.valid_ids,
    }


def parse_extra_args(words: list[str]) -> dict[str, str]:
    """The ``-a KEY VALUE ...`` words after ``--``; anything else is an error."""
    if len(words) % 3 or any(word != "-a" for word in words[::3]):
        raise ValueError("after --, give experiment arguments as -a KEY VALUE ...")
    extra = dict(zip(words[1::3], words[2::3], strict=True))
    reserved = sorted(RESERVED_ARGS & extra.keys())
    if reserved:
        raise ValueError(f"-a {', '.join(reserved)}: set by the script (see its options)")
    return extra


def seed_list(value: str) -> list[int]:
    """``--seeds``: distinct whole numbers >= 0, comma-separated; in increasing order."""
    try:
        seeds = [int(word) for word in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value} is not a list such as 0,1,2") from None
    if min(seeds) < 0 or len(set(seeds)) < len(seeds):
        raise argparse.ArgumentTypeError(f"{value}: seeds are distinct whole numbers >= 0")
    return sorted(seeds)


def clear_outputs(root: Path, experiment_id: str) -> None:
    """Remove what an earlier run with this experiment id left.

    RV's train resumes from a checkpoint, chip adds to the chips already there and our predict
    keeps finished windows: leftovers would skip or change the work being measured.
    """
    for command in TRAINING_COMMANDS:
        path = Path(layout.command_dir(str(root), command, experiment_id))
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)


def link_trained_model(root: Path, variant: Variant, seed: int) -> None:
    """Make the reused variant's chips and training output with ``seed`` this run's own.

    ``predict`` loads the learner's model bundle and ``eval`` plots the training log from
    there (and, with ``threshold train``, predicts the training chips), so both run with the
    reused model as if this variant had trained it. Symlinks, relative: ``out/`` can move.
    """
    reused_id, own_id = run_id(str(variant.reuses), seed), run_id(variant.name, seed)
    reused = layout.command_dir(str(root), "train", reused_id)
    if not Path(layout.model_bundle_uri(reused)).exists():
        raise VariantError(
            f"{variant.reuses} has no trained model with seed {seed} (it failed or did not run)"
        )
    for command in ("chip", "train"):
        own = Path(layout.command_dir(str(root), command, own_id))
        own.parent.mkdir(parents=True, exist_ok=True)
        own.symlink_to(reused_id, target_is_directory=True)


class Preprocessor:
    """Runs PREPROCESS once for each distinct set of its arguments (scenes, and a ``gsd``)."""

    def __init__(self, setup: Setup, arg_names: Collection[str]) -> None:
        self.setup = setup
        self.arg_names = set(arg_names)
        self.done: set[tuple[tuple[str, str], ...]] = set()

    def ensure(self, args: Mapping[str, str], output: IO[str]) -> None:
        """Run PREPROCESS with the part of ``args`` it takes, unless it ran with it already."""
        own = {key: value for key, value in args.items() if key in self.arg_names}
        key = tuple(sorted(own.items()))
        if key in self.done:
            return
        log.info("PREPROCESS %s", " ".join(rv_flags(own)))
        run_rastervision(
            "run", "inprocess", PREPROCESS, "PREPROCESS", *rv_flags(own),
            tmp=self.setup.tmp, output=output,
        )  # fmt: skip
        self.done.add(key)


def parse_timedelta(text: str) -> float:
    """Seconds in ``str(datetime.timedelta)`` of less than a day (``H:MM:SS[.ffffff]``)."""
    hours, minutes, seconds = text.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def train_seconds(train_dir: Path) -> float:
    """Time RV's training epochs took (its ``train_time`` column: validation excluded).

    Self-training's earlier rounds count too (each round's learner logs its own epochs).
    """
    rounds = train_dir.glob(f"{layout.SELF_TRAINING_DIR}/round-*/{layout.TRAINING_LOG_NAME}")
    total = 0.0
    for log_csv in [train_dir / layout.TRAINING_LOG_NAME, *rounds]:
        rows = csv.DictReader(io.StringIO(log_csv.read_text()))
        total += sum(parse_timedelta(row["train_time"]) for row in rows)
    return total


def read_scores(root: Path, variant: Variant, seed: int) -> dict:
    """A finished run's validation scores and, if it trained, its training time.

    Per-building F1 only from an eval that scored buildings (older reports lack it).
    """
    experiment_id = run_id(variant.name, seed)
    cfg = read_run_config(str(root), experiment_id)
    report = read_json(layout.eval_report_uri(cfg["eval_uri"]))
    by_building = describe_building_scores(report)
    log.info("%s: %s; %s", experiment_id, describe_scores(report), by_building or "no F1")
    overall = report["overall"]
    scores = {
        "jaccard": overall["jaccard"],
        "precision": overall["precision"],
        "recall": overall["recall"],
        "threshold": report["decision_threshold"],
    }
    if by_building:
        scores["f1"] = report["buildings"]["overall"]["f1"]
    if variant.reuses is None:
        scores["train_s"] = train_seconds(Path(cfg["train_uri"]))
    return scores


def failure_reason(exc: Exception, log_path: Path) -> str:
    """One line for the table: a failed run's last output line, else the exception."""
    if isinstance(exc, VariantError):
        return str(exc)
    lines = log_path.read_text(errors="replace").split("\n") if log_path.exists() else []
    last = next((line.strip() for line in reversed(lines) if line.strip()), "")
    return last or f"{type(exc).__name__}: {exc}"


def run_variant(setup: Setup, variant: Variant, seed: int, preprocessor: Preprocessor) -> dict:
    """Run a variant with one seed through the rastervision CLI: its scores, or its error."""
    args = experiment_args(setup, variant, seed)
    experiment_id = args["experiment_id"]
    log_path = setup.out / "logs" / f"{experiment_id}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    outcome: dict = {}
    log.info("Starting %s (%s); its log: %s", experiment_id, variant.change, log_path)
    try:
        with log_path.open("w") as output:
            preprocessor.ensure(args, output)
            clear_outputs(setup.out, experiment_id)
            commands = TRAINING_COMMANDS
            if variant.reuses is not None:
                link_trained_model(setup.out, variant, seed)
                commands = INFERENCE_COMMANDS
            outcome["total_s"] = run_rastervision(
                "run", "inprocess", EXPERIMENT, *commands, *rv_flags(args),
                tmp=setup.tmp, output=output,
            )  # fmt: skip
        outcome.update(read_scores(setup.out, variant, seed))
    except Exception as exc:  # any failure: record it and go on with the other runs
        outcome = {"error": failure_reason(exc, log_path)}
        log.error("%s failed: %s (see %s)", experiment_id, outcome["error"], log_path)
    else:
        log.info("Finished %s in %s", experiment_id, format_duration(outcome["total_s"]))
    return outcome


def record_run(results: dict, variant: Variant, seed: int, outcome: dict) -> None:
    """Put a run's outcome in its variant's row (keeping its other seeds) and rename the best."""
    earlier = results["variants"].get(variant.name, {}).get("seeds", {})
    results["variants"][variant.name] = variant_row(
        variant.name, variant.change, variant.reuses, {**earlier, str(seed): outcome}
    )
    results["best"] = best_variant(results["variants"])


def load_results(setup: Setup, keep: bool) -> dict:
    """Earlier results in ``setup.out`` to add to (``keep``, the same setup), or none."""
    path = setup.out / "results.json"
    fresh = {"setup": setup.identity(), "machine": describe_machine(), "variants": {}}
    if not (keep and path.exists()):
        return fresh
    earlier = json.loads(path.read_text())
    if earlier.get("setup") != fresh["setup"]:
        log.info(
            "%s is from another setup (data, recipe, budget or arguments): starting afresh", path
        )
        return fresh
    return {**earlier, "machine": fresh["machine"]}


def write_results(out: Path, results: dict) -> None:
    """``results.json`` and ``results.md`` (the table)."""
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(markdown_table(results, VARIANT_ORDER))


def build_parser() -> argparse.ArgumentParser:
    """The command line (``wb_scripts/ablation`` passes its arguments here)."""
    parser = argparse.ArgumentParser(
        prog="wb_scripts/ablation",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Anything after -- goes to every run, e.g. -- -a num_workers 0.",
    )
    parser.add_argument("--out", type=Path, help="output root (default out/ablation)")
    parser.add_argument(
        "--only",
        metavar="NAME,...",
        help=f"variants to run, of {', '.join(VARIANT_ORDER)}; adds to the table of an earlier "
        "run with the same setup in --out",
    )
    parser.add_argument(
        "--recipe",
        choices=RECIPES,
        default=ORIGINAL.name,
        help="the baseline: "
        + "; ".join(f"{r.name}, {r.summary}" for r in RECIPES.values())
        + f" (default {ORIGINAL.name})",
    )
    parser.add_argument(
        "--seeds",
        type=seed_list,
        default=list(DEFAULT_SEEDS),
        metavar="N,...",
        help="run every variant once with each (-a seed N); the table gives the mean, worst "
        f"and spread (default {','.join(map(str, DEFAULT_SEEDS))})",
    )
    parser.add_argument(
        "--test",
        action="store_true",
        help=f"tiny budget and only {', '.join(TEST_VARIANTS)}: checks the script in a few "
        "minutes (default out: out/ablation-test)",
    )
    for option, name in BUDGET_OPTIONS:
        defaults = ", ".join(f"{getattr(r.budget, name)} ({r.name})" for r in RECIPES.values())
        parser.add_argument(option, type=options.count, dest=name, help=f"default {defaults}")
    # By default the scenes of the demo's sample.
    parser.add_argument("--catalog", default=str(TRAIN_STAC_URI), help="training STAC catalog")
    parser.add_argument("--train-ids", default=TRAIN_IDS, help=f"default {TRAIN_IDS}")
    parser.add_argument("--valid-ids", default=VALID_IDS, help=f"default {VALID_IDS}")
    parser.add_argument("rv_args", nargs="*", metavar="-- -a KEY VALUE", help=argparse.SUPPRESS)
    return parser


def make_setup(args: argparse.Namespace, extra: dict[str, str]) -> Setup:
    """The ablation's setup from the command line (``--test`` changes the defaults)."""
    recipe = RECIPES[args.recipe]
    default = TEST_BUDGET if args.test else recipe.budget
    budget = Budget(
        **{name: getattr(args, name) or getattr(default, name) for name in asdict(default)}
    )
    out = (args.out or REPO / "out" / ("ablation-test" if args.test else "ablation")).resolve()
    return Setup(
        out=out,
        tmp=Path(os.environ.get("RV_TMP_DIR") or out / "tmp"),
        catalog=str(Path(args.catalog).resolve()),
        train_ids=args.train_ids,
        valid_ids=args.valid_ids,
        recipe=recipe,
        budget=budget,
        extra=extra,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the selected variants with each seed, write and print the table, name the best."""
    parser = build_parser()
    args = parser.parse_args(argv)
    log_like_rastervision(also=("tools",))
    benchmark_args, preprocess_args = experiment_arg_names()
    try:
        extra = parse_extra_args(args.rv_args)
        unknown = sorted(extra.keys() - benchmark_args)
        if unknown:
            raise ValueError(f"the benchmark experiment has no -a {', '.join(unknown)}")
        only = args.only.split(",") if args.only else (TEST_VARIANTS if args.test else None)
        setup = make_setup(args, extra)
        results = load_results(setup, keep=only is not None)
        variants = supported_variants(VARIANTS, benchmark_args, setup, only)
        runs = plan_runs(variants, only, args.seeds, results["variants"])
    except ValueError as exc:
        parser.error(str(exc))
    setup.out.mkdir(parents=True, exist_ok=True)
    preprocessor = Preprocessor(setup, preprocess_args)
    log.info(
        "Ablation of %s with seed(s) %s, recipe %s, in %s",
        ", ".join(dict.fromkeys(variant.name for variant, _ in runs)),
        ", ".join(map(str, args.seeds)), setup.recipe.name, setup.out,
    )  # fmt: skip
    for variant, seed in runs:
        record_run(results, variant, seed, run_variant(setup, variant, seed, preprocessor))
        write_results(setup.out, results)  # after each: a long run's progress survives
    sys.stdout.write(markdown_table(results, VARIANT_ORDER))
    return options.EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
