"""The ablation's results (``tools.ablation``): seeds aggregated, the best variant, the table.

A variant's row in ``results.json`` keeps what each of its seeds gave (scores, or the error
that stopped it) under ``seeds`` and, beside them, aggregates over the seeds that scored: the
mean, worst and spread of validation Jaccard, because one seed can move a variant by more
than the gap between two variants; the mean and worst per-building F1; the means of the
rest. Everything here works on the JSON alone, so a table can be rewritten from an earlier
``results.json``.
"""

from collections.abc import Iterable, Mapping, Sequence
from statistics import fmean

from benchmark.cli.demo import rv_flags
from benchmark.cli.summary import format_duration

SCORE_COLUMNS = (
    "Jaccard mean", "Worst", "Spread", "F1 mean", "F1 worst", "Precision", "Recall", "Threshold",
)  # fmt: skip
HEADER = ("Variant", "What changed", *SCORE_COLUMNS, "Train time", "Total time", "Seeds")


def _values(runs: Iterable[dict], key: str) -> list[float]:
    """``key`` of each run that has it (F1 needs an eval that scored buildings)."""
    return [run[key] for run in runs if key in run]


def aggregate_seeds(seeds: Mapping[str, dict]) -> dict:
    """Means, worst and spread over the seeds that scored; failed ones count only in ``runs``."""
    scored = [run for run in seeds.values() if "jaccard" in run]
    aggregate: dict = {"runs": len(seeds), "scored": len(scored)}
    if not scored:
        return aggregate
    jaccards = _values(scored, "jaccard")
    aggregate |= {
        "jaccard_mean": fmean(jaccards),
        "jaccard_worst": min(jaccards),
        "jaccard_spread": max(jaccards) - min(jaccards),
    }
    f1s = _values(scored, "f1")
    if f1s:
        aggregate |= {"f1_mean": fmean(f1s), "f1_worst": min(f1s)}
    for key in ("precision", "recall", "train_s", "total_s"):
        values = _values(scored, key)
        if values:
            aggregate[f"{key}_mean"] = fmean(values)
    return aggregate


def variant_row(name: str, change: str, reuses: str | None, seeds: Mapping[str, dict]) -> dict:
    """A variant's entry in ``results.json``: its runs by seed (in order) and their aggregates."""
    ordered = {seed: seeds[seed] for seed in sorted(seeds, key=int)}
    return {
        "variant": name, "change": change, "reuses": reuses, "seeds": ordered,
        **aggregate_seeds(ordered),
    }  # fmt: skip


def best_variant(rows: Mapping[str, dict]) -> str | None:
    """The variant with the highest mean validation Jaccard (the first of equals), if any."""
    scored = [row for row in rows.values() if row["scored"]]
    return max(scored, key=lambda row: row["jaccard_mean"])["variant"] if scored else None


def _cut(text: str, limit: int = 160) -> str:
    """Text safe in a Markdown table cell, cut to ``limit`` characters."""
    text = text.replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _failures(row: dict) -> list[tuple[str, str]]:
    """``(seed, error)`` of each failed run of a variant."""
    return [(seed, run["error"]) for seed, run in row["seeds"].items() if "error" in run]


def _threshold(row: dict) -> str:
    """The decision threshold, or its range when the seeds' differ (a tuned one)."""
    thresholds = _values(row["seeds"].values(), "threshold")
    low, high = min(thresholds), max(thresholds)
    return f"{low:.2f}" if low == high else f"{low:.2f}-{high:.2f}"


def _score_cells(row: dict) -> list[str]:
    """The score columns of a variant that scored at least once."""
    cells = [f"{row[key]:.3f}" for key in ("jaccard_mean", "jaccard_worst", "jaccard_spread")]
    cells += [f"{row[key]:.3f}" if key in row else "" for key in ("f1_mean", "f1_worst")]
    cells += [f"{row[key]:.3f}" for key in ("precision_mean", "recall_mean")]
    return [*cells, _threshold(row)]


def table_row(row: dict) -> str:
    """One variant's line of the table; if no seed scored, the first one's error instead."""
    cells = [f"`{row['variant']}`", row["change"]]
    if row["scored"]:
        cells += _score_cells(row)
    else:
        _, error = _failures(row)[0]
        cells += [_cut(f"failed: {error}"), *[""] * (len(SCORE_COLUMNS) - 1)]
    if row.get("reuses"):
        cells.append(f"{row['reuses']}'s model")
    else:
        cells.append(format_duration(row["train_s_mean"]) if "train_s_mean" in row else "")
    cells.append(format_duration(row["total_s_mean"]) if "total_s_mean" in row else "")
    runs = row["runs"]
    cells.append(str(runs) if row["scored"] == runs else f"{row['scored']} of {runs}")
    return "| " + " | ".join(cells) + " |"


def failure_lines(rows: Iterable[dict]) -> list[str]:
    """A line for each failed run its variant's row does not show (a row shows one)."""
    lines = []
    for row in rows:
        failures = _failures(row)
        for seed, error in failures if row["scored"] else failures[1:]:
            lines.append(f"`{row['variant']}` seed {seed} failed: {_cut(error)}")
    return lines


def describe_seeds(rows: Iterable[dict]) -> str:
    """Which seeds the variants ran with: one list, or a list per group of variants."""
    groups: dict[str, list[str]] = {}
    for row in rows:
        groups.setdefault(", ".join(row["seeds"]), []).append(f"`{row['variant']}`")
    if len(groups) == 1:
        (seeds,) = groups
        return f"Seeds: {seeds}, every variant"
    return "Seeds: " + "; ".join(f"{seeds} ({', '.join(names)})" for seeds, names in groups.items())


def markdown_table(results: dict, order: Sequence[str]) -> str:
    """The README's table, what the runs shared, their seeds and the best variant.

    Args:
        results: ``results.json``'s content.
        order: variant names in table order; names not in it come last.
    """
    setup = results["setup"]
    budget = setup["budget"]
    recipe = setup["recipe"]
    extra = " ".join(rv_flags(setup["extra"]))
    rows = sorted(
        results["variants"].values(),
        key=lambda row: order.index(row["variant"]) if row["variant"] in order else len(order),
    )
    best = results.get("best")
    lines = [
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
        *(table_row(row) for row in rows),
        "",
        *failure_lines(rows),
        f"Every variant: train {setup['train_ids']}, validation {setup['valid_ids']}; the "
        f"baseline is the `{recipe['name']}` recipe ({' '.join(rv_flags(recipe['args']))}), "
        f"{budget['chips_per_scene']} random chips per training window, "
        f"{budget['num_epochs']} epoch(s) of batch {budget['batch_sz']}"
        + (f", with {extra}" if extra else "")
        + ", and each variant changes one thing of it.",
        "Jaccard: micro, on the validation scene; F1: per building (matched one-to-one at IoU "
        ">= 0.5). Means over the seeds that scored; worst: the lowest; spread: highest minus "
        "lowest. Train time: RV's training epochs; total time: the run (start-up, chip, train, "
        "predict, eval; predict and eval only with another's model).",
        describe_seeds(rows) + " (`-a seed N`, experiment id `{variant}-seed{N}`).",
        f"Best (highest mean Jaccard): `{best}`." if best else "Best: none scored.",
        f"Machine: {results['machine']}.",
    ]
    return "\n".join(lines) + "\n"
