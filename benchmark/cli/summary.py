"""Print where a finished benchmark run left its results (used by ``wb_scripts/demo``).

The locations come from the run's saved pipeline config, so they stay right whatever
``*_uri`` overrides the run used.
"""

import argparse
import sys

from benchmark.data.uris import read_json, uri_exists


def read_run_config(root_uri: str, experiment_id: str) -> dict:
    """The pipeline config a run saved: where each of its commands wrote its outputs."""
    return read_json(f"{root_uri.rstrip('/')}/pipeline-config/{experiment_id}.json")


def describe_scores(report: dict) -> str:
    """The eval report's headline: micro Jaccard, precision, recall and threshold."""
    overall = report["overall"]
    return (
        f"validation micro Jaccard {overall['jaccard']:.4f} "
        f"(precision {overall['precision']:.3f}, recall {overall['recall']:.3f}, "
        f"threshold {report['decision_threshold']:.2f})"
    )


def format_duration(seconds: float) -> str:
    """``N min N s``: how the README reports run times."""
    whole = round(seconds)
    return f"{whole // 60} min {whole % 60} s"


def summarize(root_uri: str, experiment_id: str) -> list[str]:
    """Lines naming the bundle, the eval report with its Jaccard, the submission and PNGs."""
    cfg = read_run_config(root_uri, experiment_id)
    bundle = f"{cfg['bundle_uri']}/model-bundle.zip"
    eval_json = f"{cfg['eval_uri']}/eval.json"
    lines = [f"model bundle:    {bundle}" + ("" if uri_exists(bundle) else "  (missing)")]
    if uri_exists(eval_json):
        report = read_json(eval_json)
        lines.append(f"eval report:     {eval_json}\n  {describe_scores(report)}")
        lines.append(f"  overlays:      {cfg['eval_uri']}/*.png")
    else:
        lines.append(f"eval report:     {eval_json}  (missing)")
    submission = cfg["submission_uri"]
    lines.append(
        f"submission:      {submission}" + ("" if uri_exists(submission) else "  (missing)")
    )
    return lines


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m benchmark.cli.summary ROOT_URI EXPERIMENT_ID [--seconds N]``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root_uri")
    parser.add_argument("experiment_id")
    parser.add_argument("--seconds", type=int, help="wall time of the run, to report")
    args = parser.parse_args(argv)
    lines = summarize(args.root_uri, args.experiment_id)
    if args.seconds is not None:
        lines.insert(0, f"finished in {format_duration(args.seconds)}")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
