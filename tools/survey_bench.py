"""``python -m tools.survey_bench``: a survey's footprints through ``rastervision``, at scale.

Generates a survey of ``--grid`` x ``--grid`` orthomosaics overlapping by ``--overlap`` (default
4 x 4, 20 %), cut from a ``--side`` px scene tiled from the Kampala sample's 7.5 cm imagery
(:func:`tools.bench.write_synthetic_scene`; 12,000 px: 0.81 km²), then outlines and merges it
with the footprints experiment as a user runs it::

    rastervision run local benchmark.experiments.footprints OUTLINE MERGE \
        -a root_uri OUT -a bundle_uri BUNDLE -a input_uri TILES -s S

once for each ``S`` of ``--splits`` (default 1 and 2: RV's ``local`` runner runs the splits as
parallel processes, each given its share of the cores with ``-a threads``, as
``wb_scripts/survey --runner local`` does), each into a fresh root. Reports wall and CPU
seconds (the children's user + sys: start-up, the bundle's loading and the merge included), km²
of survey per CPU-hour and per hour of wall time, and the ``-s`` speed-up; then the CPU work
that a GPU cannot take over (reading, resampling, blending, writing, tracing: the same outline
with :class:`tools.bench.GpuStandIn` at 0 ms in place of the network, in this process), from
which the AWS estimate per 100 km² is made (``docs/aws-batch.md``):

- CPU queue: vCPU-hours = 100 km² / (km² per CPU-hour), on c5 instances at the list price
  below;
- GPU queue: the network's time is not measured here (no GPU); the estimate is a floor: the
  CPU work left beside the GPU, spread over the instance's vCPUs, assuming the GPU keeps up
  (``tools/gpu_check.py`` measures that on a GPU host).

Writes ``{out}/results.json``, ``results.md`` and ``survey_bench.png``.
"""

import argparse
import logging
import os
import resource
import shutil
import time
from dataclasses import replace
from pathlib import Path

import pyogrio
from matplotlib.figure import Figure

from benchmark.console import log_like_rastervision
from benchmark.data.layout import survey_footprints_dir
from benchmark.data.uris import atomic_output, write_json
from benchmark.footprints.merge import MergeOutputs
from tools.bench import GpuStandIn, write_synthetic_scene
from tools.footprints_picture import DEMO_BUNDLE
from tools.measure import REPO, describe_machine, run_rastervision
from tools.survey_measure import cut_survey, scene_area_km2

log = logging.getLogger("tools.survey_bench")

COMMAND = "python -m tools.survey_bench"
EXPERIMENT = "benchmark.experiments.footprints"
# On-demand list prices, us-east-1, Linux, USD per instance-hour (https://aws.amazon.com/ec2/pricing/).
PRICES_DATE = "2025 list prices"
INSTANCES = {
    "cpu": [("c5.2xlarge", 8, 0.34), ("c6i.2xlarge", 8, 0.34)],
    "gpu": [("g4dn.xlarge", 4, 0.526), ("g4dn.2xlarge", 8, 0.752), ("p3.2xlarge", 8, 3.06)],
}
PER_KM2 = 100.0  # the estimate's survey size


def children_cpu_seconds() -> float:
    """User + sys seconds of every finished child so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def own_cpu_seconds() -> float:
    """User + sys seconds of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_survey(bundle: Path, tiles: Path, root: Path, splits: int, log_path: Path) -> dict:
    """OUTLINE MERGE of the tiles with ``-s splits``: wall and CPU seconds."""
    shutil.rmtree(root, ignore_errors=True)
    before = children_cpu_seconds()
    with open(log_path, "w") as sink:
        wall = run_rastervision(
            "run", "local", EXPERIMENT, "OUTLINE", "MERGE",
            "-a", "root_uri", str(root), "-a", "bundle_uri", str(bundle),
            "-a", "input_uri", str(tiles), "-s", str(splits),
            *(("-a", "threads", str(max(1, os.cpu_count() // splits))) if splits > 1 else ()),
            tmp=root.parent / f"tmp-s{splits}", output=sink,
        )  # fmt: skip
    return {"wall_s": round(wall, 2), "cpu_s": round(children_cpu_seconds() - before, 2)}


def cpu_side_seconds(bundle: Path, tiles: Path, out: Path) -> float:
    """CPU seconds of outlining the tiles with a 0 ms stand-in network (the non-model work).

    The stand-in has a binary network's two logits, so the bundle's other settings (GSD,
    threshold, windows) are used with the binary target: an instance bundle's watershed is left
    out of this floor.
    """
    from benchmark.footprints.inputs import list_images
    from benchmark.footprints.run import footprints_for_images
    from benchmark.inference.execution import InferenceOptions
    from benchmark.pipeline.bundle import load_bundle
    from benchmark.pipeline.footprints import footprint_settings

    binary = replace(load_bundle(str(bundle)), target="binary")
    settings = footprint_settings(binary, InferenceOptions(), overwrite=True)
    before = own_cpu_seconds()
    footprints_for_images(GpuStandIn(0.0), list_images(str(tiles)), str(out), settings)
    return own_cpu_seconds() - before


def aws_estimate(km2_per_cpu_hour: float, cpu_side_km2_per_cpu_hour: float) -> list[dict]:
    """Instance-hours and dollars per :data:`PER_KM2` km² on each queue's instances."""
    rows = []
    for queue, rate in (("cpu", km2_per_cpu_hour), ("gpu", cpu_side_km2_per_cpu_hour)):
        vcpu_hours = PER_KM2 / rate
        for name, vcpus, price in INSTANCES[queue]:
            hours = vcpu_hours / vcpus
            rows.append(
                {
                    "queue": queue,
                    "instance": name,
                    "vcpus": vcpus,
                    "usd_per_hour": price,
                    "instance_hours": round(hours, 2),
                    "usd": round(hours * price, 2),
                    "floor": queue == "gpu",
                }
            )
    return rows


def markdown(results: dict) -> str:
    """The tables docs/aws-batch.md quotes."""
    runs = results["runs"]
    lines = [
        f"Survey: {results['images']} images ({results['grid']} x {results['grid']}, overlap "
        f"{results['overlap']:.0%}) over {results['area_km2']:.3f} km², "
        f"{results['buildings']} buildings merged. {results['machine']}, {results['date']}.",
        "",
        "| `-s` | wall s | CPU s | km² per CPU-hour | km² per hour |",
        "|---|---|---|---|---|",
    ]
    for splits, run in runs.items():
        lines.append(
            f"| {splits} | {run['wall_s']:.1f} | {run['cpu_s']:.1f} | "
            f"{run['km2_per_cpu_hour']:.2f} | {run['km2_per_hour']:.2f} |"
        )
    lines += [
        "",
        f"Per {PER_KM2:g} km² ({PRICES_DATE}, on demand, us-east-1):",
        "",
        "| Queue | Instance | vCPUs | $/h | instance-hours | $ |",
        "|---|---|---|---|---|---|",
    ]
    for row in results["aws_estimate"]:
        floor = " (floor)" if row["floor"] else ""
        lines.append(
            f"| {row['queue']} | {row['instance']} | {row['vcpus']} | {row['usd_per_hour']:.3f} | "
            f"{row['instance_hours']:.1f}{floor} | {row['usd']:.2f}{floor} |"
        )
    return "\n".join(lines) + "\n"


def draw(results: dict, path: Path) -> None:
    """Wall and CPU seconds per ``-s``, and the CPU work a GPU leaves."""
    runs = results["runs"]
    labels = [f"-s {s}" for s in runs]
    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    x = range(len(labels))
    ax.bar([i - 0.2 for i in x], [r["wall_s"] for r in runs.values()], 0.4, label="wall s")
    ax.bar([i + 0.2 for i in x], [r["cpu_s"] for r in runs.values()], 0.4, label="CPU s")
    ax.axhline(results["cpu_side_s"], color="grey", ls="--", label="CPU s beside a GPU")
    ax.set_xticks(list(x), labels)
    ax.set_title(f"{results['images']} orthomosaics, {results['area_km2']:.2f} km²")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def measure(args: argparse.Namespace) -> dict:
    """Generate, outline with each ``-s``, measure the CPU side; the results."""
    out = Path(args.out)
    scene = out / "scene.tif"
    if not scene.exists():
        write_synthetic_scene(scene, args.side, compress="deflate")
    tiles = cut_survey(scene, out / "tiles", args.grid, args.overlap)
    area = scene_area_km2(scene)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    runs = {}
    for splits in args.splits:
        run = run_survey(
            args.bundle, out / "tiles", out / f"s{splits}", splits, out / "logs" / f"s{splits}.log"
        )
        run["km2_per_cpu_hour"] = round(area / (run["cpu_s"] / 3600), 3)
        run["km2_per_hour"] = round(area / (run["wall_s"] / 3600), 3)
        runs[splits] = run
        log.info("-s %d: %.1f s wall, %.1f s CPU", splits, run["wall_s"], run["cpu_s"])
    merged = MergeOutputs.of(survey_footprints_dir(str(out / f"s{args.splits[0]}"))).gpkg
    cpu_side = cpu_side_seconds(args.bundle, out / "tiles", out / "stand-in")
    results = {
        "command": COMMAND,
        "date": time.strftime("%Y-%m-%d"),
        "machine": describe_machine(),
        "bundle": str(args.bundle),
        "side_px": args.side,
        "images": len(tiles),
        "grid": args.grid,
        "overlap": args.overlap,
        "area_km2": round(area, 4),
        "buildings": pyogrio.read_info(merged)["features"],
        "cpu_time": "children's user + sys (getrusage RUSAGE_CHILDREN), start-up included",
        "runs": runs,
        "cpu_side_s": round(cpu_side, 2),
        "cpu_side_km2_per_cpu_hour": round(area / (cpu_side / 3600), 3),
    }
    if len(runs) > 1:
        first = runs[args.splits[0]]["wall_s"]
        results["speedup"] = {s: round(first / r["wall_s"], 3) for s, r in runs.items()}
    results["aws_estimate"] = aws_estimate(
        runs[args.splits[0]]["km2_per_cpu_hour"], results["cpu_side_km2_per_cpu_hour"]
    )
    return results


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m tools.survey_bench [--bundle B] [--out DIR] [--side PX] ...``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bundle", type=Path, default=DEMO_BUNDLE, help="model bundle")
    parser.add_argument("--out", default=str(REPO / "out" / "survey_bench"))
    parser.add_argument("--side", type=int, default=12_000, help="scene side in px (7.5 cm)")
    parser.add_argument("--grid", type=int, default=4, help="images per side (default 4)")
    parser.add_argument("--overlap", type=float, default=0.2, help="share of an image overlapped")
    parser.add_argument(
        "--splits", type=lambda s: [int(v) for v in s.split(",")], default=[1, 2],
        help="the -s values to run, comma separated (default 1,2)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    log_like_rastervision(False)
    results = measure(args)
    out = Path(args.out)
    write_json(results, str(out / "results.json"))
    with atomic_output(str(out / "results.md")) as path:
        Path(path).write_text(markdown(results))
    draw(results, out / "survey_bench.png")
    print(markdown(results))
    print(f"Results: {out / 'results.json'}, {out / 'results.md'}, {out / 'survey_bench.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
