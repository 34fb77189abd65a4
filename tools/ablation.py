"""``wb_scripts/ablation``: the baseline and each option beyond it, for the same budget.

Every variant is the baseline (the original's recipe: U-Net, ResNet-18, cross-entropy, D4 flips)
with one change, trained from scratch on random chips of the Kampala sample's training scene
drawn the same way, for the same number of steps, then predicted and scored on its validation
scene with the competition's micro Jaccard. Options that change only inference (test-time
augmentation, blended overlap, a tuned threshold) predict with the baseline's trained model
instead of training their own, so the one change is all that differs. Each variant is the real
``rastervision`` CLI (inprocess runner) in a child process, its output in
``{out}/logs/{variant}.log``. Writes ``{out}/results.json`` and ``{out}/results.md`` (the
README's table) and names the best variant.

One scene each way is a small sample, and each variant runs once with the experiment's seed
(the same chips, initial weights and batch order on a re-run, other ones with ``-- -a seed N``):
a few points of Jaccard are noise, and the tuned threshold is chosen on the scene it is scored
on.
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
from benchmark.cli.output import log_like_rastervision
from benchmark.cli.summary import describe_scores, format_duration, read_run_config
from benchmark.data.uris import read_json
from benchmark.pipeline import layout
from tools.measure import REPO, describe_machine, run_rastervision

SAMPLE_CATALOG = REPO / "data" / "kampala_sample" / "train_tier_1" / "catalog.json"
TRAIN_IDS = "kam/94f080"
VALID_IDS = "kam/8a5983"
EXPERIMENT = "benchmark.experiments.benchmark"
PREPROCESS = "benchmark.experiments.split_images"
TRAINING_COMMANDS = ("chip", "train", "predict", "eval")
INFERENCE_COMMANDS = ("predict", "eval")
# Set by the script from its own options; not accepted after ``--``.
RESERVED_ARGS = frozenset({"root_uri", "experiment_id", "train_stac_uri", "train_ids", "valid_ids"})

log = logging.getLogger("tools.ablation")

# The original benchmark's model, loss and augmentation, with the demo's chip geometry (random
# 224-320 px windows resized to 256) and lr 1e-3: from scratch (no internet here), the
# original's 1e-4 barely moves a model in a few hundred steps.
BASELINE_ARGS = {
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
}


@dataclass(frozen=True)
class Budget:
    """The training every variant gets; the fields are the experiment's argument names."""

    chips_per_scene: int
    num_epochs: int
    batch_sz: int

    def args(self) -> dict[str, str]:
        """As ``-a`` arguments."""
        return {key: str(value) for key, value in asdict(self).items()}


# About 28 minutes for the whole ablation on a 2-core CPU (estimated): per training variant
# 2 x 80 / 4 = 40 steps of ~2.2 s (more for ResNet-34 and EfficientNet), plus ~12 s of
# start-up, the bundle RV exports after training, chip, predict and eval: ~2.5 min; under a
# minute for each inference-only variant but TTA (8 passes).
DEFAULT_BUDGET = Budget(chips_per_scene=80, num_epochs=2, batch_sz=4)
TEST_BUDGET = Budget(chips_per_scene=8, num_epochs=1, batch_sz=2)
BUDGET_OPTIONS = (
    ("--chips-per-scene", "chips_per_scene"), ("--epochs", "num_epochs"),
    ("--batch-size", "batch_sz"),
)  # fmt: skip


@dataclass(frozen=True)
class Variant:
    """The baseline with one change; ``name`` is also its experiment id."""

    name: str
    change: str
    args: dict[str, str] = field(default_factory=dict)
    reuses: str | None = None  # the variant whose trained model this one predicts with


BASELINE = "baseline"
VARIANTS = (
    Variant(BASELINE, "none: U-Net, ResNet-18, cross-entropy, D4 flips (the original's)"),
    Variant("ce-dice", "loss cross-entropy + Dice", {"loss": "ce+dice"}),
    Variant("lovasz", "loss Lovasz hinge", {"loss": "lovasz"}),
    Variant("aug-color", "augmentation D4 + colour jitter", {"aug": "color"}),
    Variant("aug-scale", "augmentation D4 + colour + scale jitter", {"aug": "scale"}),
    Variant("fpn", "decoder FPN", {"model": "fpn"}),
    Variant("resnet34", "encoder ResNet-34", {"encoder": "resnet34"}),
    Variant("efficientnet-b0", "encoder EfficientNet-B0", {"encoder": "efficientnet-b0"}),
    Variant("gsd-0.1", "windows resampled to 10 cm (the sample is 7.5 cm)", {"gsd": "0.1"}),
    Variant("tta", "8-fold test-time augmentation", {"tta": "true"}, reuses=BASELINE),
    Variant(
        "overlap-256",
        "prediction windows overlap 256 px, blended",
        {"predict_overlap": "256"},
        reuses=BASELINE,
    ),
    Variant(
        "tuned-threshold",
        "threshold tuned on the validation scene",
        {"tune_threshold": "true"},
        reuses=BASELINE,
    ),
)
TEST_VARIANTS = (BASELINE, "tta")  # one trained, one reusing its model: both paths


class VariantError(Exception):
    """A variant cannot run; the message goes in the table."""


@dataclass(frozen=True)
class Setup:
    """What every variant of one ablation shares: data, budget, extra arguments, directories."""

    out: Path
    tmp: Path
    catalog: str
    train_ids: str
    valid_ids: str
    budget: Budget
    extra: dict[str, str] = field(default_factory=dict)  # -a arguments after --

    def identity(self) -> dict:
        """What results must share to sit in one table."""
        return {
            "catalog": self.catalog,
            "train_ids": self.train_ids,
            "valid_ids": self.valid_ids,
            "budget": asdict(self.budget),
            "extra": self.extra,
        }


def experiment_arg_names() -> tuple[set[str], set[str]]:
    """The arguments the benchmark and PREPROCESS experiments take, read from their classes.

    Options are added to the experiments over time (``gsd`` is one); the ablation runs only
    the variants the checkout has.
    """
    from benchmark.experiments.benchmark import BenchmarkArgs
    from benchmark.experiments.split_images import SplitImagesArgs

    return set(BenchmarkArgs.model_fields), set(SplitImagesArgs.model_fields)


def supported_variants(variants: Iterable[Variant], known_args: Collection[str]) -> list[Variant]:
    """The variants whose every argument the benchmark experiment has."""
    kept = []
    for variant in variants:
        missing = sorted(set(variant.args) - set(known_args))
        if missing:
            log.info(
                "Leaving out %s: the experiment has no -a %s", variant.name, ", ".join(missing)
            )
        else:
            kept.append(variant)
    return kept


def select_variants(
    variants: list[Variant], only: Collection[str] | None, trained: Collection[str]
) -> list[Variant]:
    """``only`` (every variant without it), in ``variants``' order, with the models they reuse.

    A variant that reuses a model not in ``trained`` (the variants an earlier run in the same
    directory finished) brings that model's variant along, ahead of it.
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


def experiment_args(setup: Setup, variant: Variant) -> dict[str, str]:
    """Every ``-a`` argument of a variant's run: baseline, budget, user's extras, its change."""
    return {
        **BASELINE_ARGS,
        **setup.budget.args(),
        **setup.extra,
        **variant.args,
        "root_uri": str(setup.out),
        "experiment_id": variant.name,
        "train_stac_uri": setup.catalog,
        "train_ids": setup.train_ids,
        "valid_ids": setup.valid_ids,
    }


def rv_flags(args: Mapping[str, str]) -> list[str]:
    """``{"k": "v"}`` -> ``["-a", "k", "v"]``."""
    return [word for key, value in args.items() for word in ("-a", key, value)]


def parse_extra_args(words: list[str]) -> dict[str, str]:
    """The ``-a KEY VALUE ...`` words after ``--``; anything else is an error."""
    if len(words) % 3 or any(word != "-a" for word in words[::3]):
        raise ValueError("after --, give experiment arguments as -a KEY VALUE ...")
    extra = dict(zip(words[1::3], words[2::3], strict=True))
    reserved = sorted(RESERVED_ARGS & extra.keys())
    if reserved:
        raise ValueError(f"-a {', '.join(reserved)}: set by the script (see its options)")
    return extra


def clear_outputs(root: Path, name: str) -> None:
    """Remove what an earlier run of this variant left.

    RV's train resumes from a checkpoint, chip adds to the chips already there and our predict
    keeps finished windows: leftovers would skip or change the work being measured.
    """
    for command in TRAINING_COMMANDS:
        path = Path(layout.command_dir(str(root), command, name))
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)


def link_trained_model(root: Path, variant: Variant) -> None:
    """Make the reused variant's training output this variant's own (a relative symlink).

    ``predict`` loads the learner's model bundle and ``eval`` plots the training log from
    there, so both run with the reused model as if this variant had trained it.
    """
    reused = layout.command_dir(str(root), "train", str(variant.reuses))
    if not Path(layout.model_bundle_uri(reused)).exists():
        raise VariantError(f"{variant.reuses} has no trained model (it failed or did not run)")
    own = Path(layout.command_dir(str(root), "train", variant.name))
    own.symlink_to(Path(reused).name, target_is_directory=True)  # relative: out/ can move


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


def train_seconds(log_csv: Path) -> float:
    """Time RV's training epochs took (its ``train_time`` column: validation excluded)."""
    rows = csv.DictReader(io.StringIO(log_csv.read_text()))
    return sum(parse_timedelta(row["train_time"]) for row in rows)


def read_scores(root: Path, variant: Variant) -> dict:
    """A finished variant's validation scores and, if it trained, its training time."""
    cfg = read_run_config(str(root), variant.name)
    report = read_json(layout.eval_report_uri(cfg["eval_uri"]))
    log.info("%s: %s", variant.name, describe_scores(report))
    overall = report["overall"]
    scores = {
        "jaccard": overall["jaccard"],
        "precision": overall["precision"],
        "recall": overall["recall"],
        "threshold": report["decision_threshold"],
    }
    if variant.reuses is None:
        scores["train_s"] = train_seconds(Path(layout.training_log_uri(cfg["train_uri"])))
    return scores


def failure_reason(exc: Exception, log_path: Path) -> str:
    """One line for the table: a failed run's last output line, else the exception."""
    if isinstance(exc, VariantError):
        return str(exc)
    lines = log_path.read_text(errors="replace").split("\n") if log_path.exists() else []
    last = next((line.strip() for line in reversed(lines) if line.strip()), "")
    return last or f"{type(exc).__name__}: {exc}"


def run_variant(setup: Setup, variant: Variant, preprocessor: Preprocessor) -> dict:
    """Run one variant through the rastervision CLI; its row of the table, failed or not."""
    args = experiment_args(setup, variant)
    log_path = setup.out / "logs" / f"{variant.name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    row: dict = {"variant": variant.name, "change": variant.change, "reuses": variant.reuses}
    log.info("Starting %s (%s); its log: %s", variant.name, variant.change, log_path)
    try:
        with log_path.open("w") as output:
            preprocessor.ensure(args, output)
            clear_outputs(setup.out, variant.name)
            commands = TRAINING_COMMANDS
            if variant.reuses is not None:
                link_trained_model(setup.out, variant)
                commands = INFERENCE_COMMANDS
            row["total_s"] = run_rastervision(
                "run", "inprocess", EXPERIMENT, *commands, *rv_flags(args),
                tmp=setup.tmp, output=output,
            )  # fmt: skip
        row.update(read_scores(setup.out, variant))
    except Exception as exc:  # any failure: record it and go on with the other variants
        row["error"] = failure_reason(exc, log_path)
        log.error("%s failed: %s (see %s)", variant.name, row["error"], log_path)
    else:
        log.info("Finished %s in %s", variant.name, format_duration(row["total_s"]))
    return row


def best_variant(rows: Mapping[str, dict]) -> str | None:
    """The variant with the highest validation Jaccard (the first of equals), if any scored."""
    scored = [row for row in rows.values() if "jaccard" in row]
    return max(scored, key=lambda row: row["jaccard"])["variant"] if scored else None


def _cell(text: str, limit: int = 160) -> str:
    """Text safe in a Markdown table cell, cut to ``limit`` characters."""
    text = text.replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def table_row(row: dict) -> str:
    """One variant's line of the table."""
    cells = [f"`{row['variant']}`", row["change"]]
    if "jaccard" in row:
        cells += [f"{row[key]:.3f}" for key in ("jaccard", "precision", "recall")]
        cells.append(f"{row['threshold']:.2f}")
    else:
        cells += [_cell(f"failed: {row.get('error', 'no scores')}"), "", "", ""]
    if row.get("reuses"):
        cells.append(f"{row['reuses']}'s model")
    else:
        cells.append(format_duration(row["train_s"]) if "train_s" in row else "")
    cells.append(format_duration(row["total_s"]) if "total_s" in row else "")
    return "| " + " | ".join(cells) + " |"


def _order(name: str) -> int:
    """Table order: the variant list's, names no longer in it last."""
    names = [v.name for v in VARIANTS]
    return names.index(name) if name in names else len(names)


def markdown_table(results: dict) -> str:
    """The README's table, what the runs shared, and the best variant."""
    setup = results["setup"]
    budget = setup["budget"]
    extra = " ".join(rv_flags(setup["extra"]))
    lines = [
        "| Variant | What changed | Validation Jaccard | Precision | Recall | Threshold "
        "| Train time | Total time |",
        "|---|---|---|---|---|---|---|---|",
        *(table_row(results["variants"][n]) for n in sorted(results["variants"], key=_order)),
        "",
        f"Every variant: train {setup['train_ids']}, validation {setup['valid_ids']} (micro "
        f"Jaccard); {budget['chips_per_scene']} random chips per training window, "
        f"{budget['num_epochs']} epoch(s) of batch {budget['batch_sz']}, from scratch"
        + (f", {extra}" if extra else "")
        + ". Train time: RV's training epochs; total time: the variant's rastervision run "
        "(start-up, chip, train, predict, eval; predict and eval only with another's model).",
        f"Best: `{results['best']}`." if results.get("best") else "Best: none scored.",
        f"Machine: {results['machine']}.",
    ]
    return "\n".join(lines) + "\n"


def load_results(setup: Setup, keep: bool) -> dict:
    """Earlier results in ``setup.out`` to add to (``keep``, same data and budget), or none."""
    path = setup.out / "results.json"
    fresh = {"setup": setup.identity(), "machine": describe_machine(), "variants": {}}
    if not (keep and path.exists()):
        return fresh
    earlier = json.loads(path.read_text())
    if earlier.get("setup") != fresh["setup"]:
        log.info("%s is from another setup (data, budget or arguments): starting afresh", path)
        return fresh
    return {**earlier, "machine": fresh["machine"]}


def write_results(out: Path, results: dict) -> None:
    """``results.json`` and ``results.md`` (the table)."""
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(markdown_table(results))


def build_parser() -> argparse.ArgumentParser:
    """The command line (``wb_scripts/ablation`` passes its arguments here)."""
    parser = argparse.ArgumentParser(
        prog="wb_scripts/ablation",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Anything after -- goes to every variant, e.g. -- -a num_workers 0.",
    )
    parser.add_argument("--out", type=Path, help="output root (default out/ablation)")
    parser.add_argument(
        "--only",
        metavar="NAME,...",
        help=f"variants to run, of {', '.join(v.name for v in VARIANTS)}",
    )
    parser.add_argument(
        "--test",
        action="store_true",
        help=f"tiny budget and only {', '.join(TEST_VARIANTS)}: checks the script in a few "
        "minutes (default out: out/ablation-test)",
    )
    for option, name in BUDGET_OPTIONS:
        parser.add_argument(
            option, type=options.count, dest=name, help=f"default {getattr(DEFAULT_BUDGET, name)}"
        )
    parser.add_argument("--catalog", default=str(SAMPLE_CATALOG), help="training STAC catalog")
    parser.add_argument("--train-ids", default=TRAIN_IDS, help=f"default {TRAIN_IDS}")
    parser.add_argument("--valid-ids", default=VALID_IDS, help=f"default {VALID_IDS}")
    parser.add_argument("rv_args", nargs="*", metavar="-- -a KEY VALUE", help=argparse.SUPPRESS)
    return parser


def make_setup(args: argparse.Namespace, extra: dict[str, str]) -> Setup:
    """The ablation's setup from the command line (``--test`` changes the defaults)."""
    default = TEST_BUDGET if args.test else DEFAULT_BUDGET
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
        budget=budget,
        extra=extra,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the selected variants, write and print the table, name the best."""
    parser = build_parser()
    args = parser.parse_args(argv)
    benchmark_args, preprocess_args = experiment_arg_names()
    try:
        extra = parse_extra_args(args.rv_args)
        unknown = sorted(extra.keys() - benchmark_args)
        if unknown:
            raise ValueError(f"the benchmark experiment has no -a {', '.join(unknown)}")
        only = args.only.split(",") if args.only else (TEST_VARIANTS if args.test else None)
        setup = make_setup(args, extra)
        results = load_results(setup, keep=only is not None)
        trained = [n for n, row in results["variants"].items() if "jaccard" in row]
        variants = select_variants(supported_variants(VARIANTS, benchmark_args), only, trained)
    except ValueError as exc:
        parser.error(str(exc))
    log_like_rastervision()
    setup.out.mkdir(parents=True, exist_ok=True)
    preprocessor = Preprocessor(setup, preprocess_args)
    log.info("Ablation of %s in %s", ", ".join(v.name for v in variants), setup.out)
    for variant in variants:
        results["variants"][variant.name] = run_variant(setup, variant, preprocessor)
        results["best"] = best_variant(results["variants"])
        write_results(setup.out, results)  # after each: a long run's progress survives
    sys.stdout.write(markdown_table(results))
    return options.EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
