"""``benchmark summary``: where a finished benchmark run left its results (``wb_scripts/demo``).

The locations come from the run's saved pipeline config, so they stay right whatever
``*_uri`` overrides the run used.
"""

import sys

from benchmark.cli import options
from benchmark.data import layout
from benchmark.data.uris import read_json, uri_exists


def read_run_config(root_uri: str, experiment_id: str) -> dict:
    """The pipeline config a run saved: where each of its commands wrote its outputs."""
    return read_json(layout.pipeline_config_uri(root_uri, experiment_id), "pipeline config")


def describe_scores(report: dict) -> str:
    """The eval report's headline: micro Jaccard, precision, recall and threshold."""
    overall = report["overall"]
    return (
        f"validation micro Jaccard {overall['jaccard']:.4f} "
        f"(precision {overall['precision']:.3f}, recall {overall['recall']:.3f}, "
        f"threshold {report['decision_threshold']:.2f})"
    )


def describe_building_scores(report: dict) -> str | None:
    """Per-building F1, precision and recall; None for reports written before eval had them.

    The validation labels are OpenStreetMap's buildings, so the footprints that match one are
    the ones OSM has already (what ``benchmark-footprints --osm`` calls ``mapped``).
    """
    if "buildings" not in report:
        return None
    found = report["buildings"]["overall"]
    return (
        f"per-building F1 {found['f1']:.4f} at IoU >= 0.5 (precision {found['precision']:.3f}, "
        f"recall {found['recall']:.3f}: {found['tp']} of {found['tp'] + found['fn']} buildings "
        f"found, {found['fp']} false); {found['tp']} of {found['tp'] + found['fp']} found "
        "buildings are in OSM already"
    )


def format_duration(seconds: float) -> str:
    """``N min N s``: how the README reports run times."""
    whole = round(seconds)
    return f"{whole // 60} min {whole % 60} s"


def summarize(root_uri: str, experiment_id: str) -> list[str]:
    """Lines naming the bundle, the eval report with its Jaccard, the submission and PNGs."""
    cfg = read_run_config(root_uri, experiment_id)
    bundle = layout.model_bundle_uri(cfg["bundle_uri"])
    eval_json = layout.eval_report_uri(cfg["eval_uri"])
    lines = [f"model bundle:    {bundle}" + ("" if uri_exists(bundle) else "  (missing)")]
    if uri_exists(eval_json):
        report = read_json(eval_json)
        lines.append(f"eval report:     {eval_json}\n  {describe_scores(report)}")
        by_building = describe_building_scores(report)
        if by_building:
            lines.append(f"  {by_building}")
        lines.append(f"  overlays:      {layout.overlay_uri(cfg['eval_uri'], '*')}")
        if by_building:
            traced = layout.footprints_uri(cfg["eval_uri"], "*", "geojson")
            lines.append(f"  footprints:    {traced} (and .gpkg)")
    else:
        lines.append(f"eval report:     {eval_json}  (missing)")
    submission = cfg["submission_uri"]
    lines.append(
        f"submission:      {submission}" + ("" if uri_exists(submission) else "  (missing)")
    )
    return lines


def main(argv: list[str] | None = None) -> int:
    """Command line: ``benchmark summary ROOT_URI EXPERIMENT_ID [--seconds N]``."""
    parser = options.CommandParser("summary", description=__doc__)
    parser.add_argument("root_uri")
    parser.add_argument("experiment_id")
    parser.add_argument("--seconds", type=int, help="wall time of the run, to report")
    args = parser.parse_args(argv)
    return options.exit_status(
        lambda: _print_summary(args.root_uri, args.experiment_id, args.seconds)
    )


def _print_summary(root_uri: str, experiment_id: str, seconds: int | None) -> int:
    lines = summarize(root_uri, experiment_id)
    if seconds is not None:
        lines.insert(0, f"finished in {format_duration(seconds)}")
    sys.stdout.write("\n".join(lines) + "\n")
    return options.EXIT_OK


if __name__ == "__main__":  # the old entry point: an alias of ``benchmark summary``
    from benchmark.cli.main import alias

    sys.exit(alias("summary"))
