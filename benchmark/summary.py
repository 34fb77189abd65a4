"""Print where a finished benchmark run left its results (used by ``wb_scripts/demo``).

The locations come from the run's saved pipeline config, so they stay right whatever
``*_uri`` overrides the run used.
"""

import argparse
import sys

from benchmark.uris import read_json, uri_exists


def summarize(root_uri: str, experiment_id: str) -> list[str]:
    """Lines naming the bundle, the eval report with its Jaccard, the submission and PNGs."""
    cfg = read_json(f"{root_uri.rstrip('/')}/pipeline-config/{experiment_id}.json")
    bundle = f"{cfg['bundle_uri']}/model-bundle.zip"
    eval_json = f"{cfg['eval_uri']}/eval.json"
    lines = [f"model bundle:    {bundle}" + ("" if uri_exists(bundle) else "  (missing)")]
    if uri_exists(eval_json):
        report = read_json(eval_json)
        overall = report["overall"]
        lines.append(
            f"eval report:     {eval_json}\n"
            f"  validation micro Jaccard {overall['jaccard']:.4f} "
            f"(precision {overall['precision']:.3f}, recall {overall['recall']:.3f}, "
            f"threshold {report['decision_threshold']:.2f})"
        )
        lines.append(f"  overlays:      {cfg['eval_uri']}/*.png")
    else:
        lines.append(f"eval report:     {eval_json}  (missing)")
    submission = cfg["submission_uri"]
    lines.append(
        f"submission:      {submission}" + ("" if uri_exists(submission) else "  (missing)")
    )
    return lines


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m benchmark.summary ROOT_URI EXPERIMENT_ID [--seconds N]``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root_uri")
    parser.add_argument("experiment_id")
    parser.add_argument("--seconds", type=int, help="wall time of the run, to report")
    args = parser.parse_args(argv)
    lines = summarize(args.root_uri, args.experiment_id)
    if args.seconds is not None:
        lines.insert(0, f"finished in {args.seconds // 60} min {args.seconds % 60} s")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
