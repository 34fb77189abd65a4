"""``wb_scripts/bench``: the hot paths measured against their limits, on this machine.

Every figure is a ratio of two timings taken in the same run on the same data, so machine noise
mostly cancels. Writes ``out/bench/results.json`` and ``out/bench/results.md`` (the README's
table). Needs a trained bundle: the demo's (``out/demo``) when present, else it runs the quick
demo first.

- predict_overhead_ratio: folder predict wall time per chip / bare ``model(x)`` per chip (same
  prepared model, batch, threads and chips; the bare loop gets pre-decoded tensors).
- speedup_vs_rv_predict: stock ``rastervision predict`` (one call per chip, as a user would, on
  georeferenced copies of the chips) / ours, per chip, same bundle.
- cpu_fast_path_speedup / cpu_fast_path_jaccard_delta: our fast path (ONNX Runtime, or bf16
  autocast where the CPU has it) vs plain fp32 PyTorch on the same chips; Jaccard of the
  validation scene with each.
- preprocess_vs_raw_ratio: PREPROCESS throughput / a bare rasterio read-and-write of the same
  windows with the same compression. preprocess_split_speedup: ``-s 2`` vs ``-s 1``, local runner.
- train_overhead_ratio: RV's training loop per chip / a bare forward+backward+step loop on the
  same batches.
- peak_rss_mb: PREPROCESS and scene prediction on a generated 40,000 x 40,000 RGBA scene, each
  in its own process (scene prediction with a one-layer stand-in model: the memory in question is
  the pipeline's windows and strips; a real model's activations depend only on the chip size).
"""

import argparse
import json
import logging
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import rasterio
import torch
from rasterio.windows import Window

from benchmark.cli.output import log_like_rastervision
from tools.measure import REPO, describe_machine, run_rastervision

SAMPLE = REPO / "data" / "kampala_sample"
CATALOG = SAMPLE / "train_tier_1" / "catalog.json"
VALID_IMAGE = SAMPLE / "train_tier_1" / "kam" / "8a5983" / "8a5983.tif"
VALID_LABELS = SAMPLE / "train_tier_1" / "kam" / "8a5983-labels" / "8a5983.geojson"
TEST_CHIPS = sorted((SAMPLE / "test").glob("*/*.tif"))

log = logging.getLogger("tools.bench")

GOALS = {
    "predict_overhead_ratio": ("<=", 1.15),
    "speedup_vs_rv_predict": (">=", 20.0),
    "cpu_fast_path_speedup": (">=", 3.0),
    "cpu_fast_path_jaccard_delta": ("<=", 0.005),
    "preprocess_vs_raw_ratio": (">=", 0.8),
    "preprocess_split_speedup": (">=", 1.6),
    "train_overhead_ratio": ("<=", 1.2),
    "peak_rss_mb_preprocess_40k": ("<=", 2000.0),
    "peak_rss_mb_predict_40k": ("<=", 2000.0),
}


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _python(code: str, *args: str) -> tuple[float, float]:
    """Run ``code`` in a fresh interpreter: (wall seconds, its own peak RSS in MB).

    GNU time reports the child's own peak (``getrusage(RUSAGE_CHILDREN)`` would report the
    largest of all children so far).
    """
    cmd = ["/usr/bin/time", "-f", "MAXRSS_KB=%M", sys.executable, "-c", code, *args]
    start = time.perf_counter()
    result = subprocess.run(cmd, check=True, cwd=REPO, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    peak_kb = [line for line in result.stderr.splitlines() if line.startswith("MAXRSS_KB=")][-1]
    return wall, int(peak_kb.removeprefix("MAXRSS_KB=")) / 1024


def ensure_bundle(out: Path) -> Path:
    """A trained bundle: the demo's if it ran, else the quick demo's (made now)."""
    for exp in ("kampala", "kampala-TEST"):
        for root in (REPO / "out" / "demo", out / "demo"):
            bundle = root / "bundle" / exp / "model-bundle.zip"
            if bundle.exists():
                return bundle
    subprocess.run(
        [str(REPO / "wb_scripts" / "demo"), "--quick", "--out", str(out / "demo")], check=True
    )
    return out / "demo" / "bundle" / "kampala-TEST" / "model-bundle.zip"


def make_chips(out: Path, n: int, georeferenced: bool) -> list:
    """``n`` 1024 px test chips: copies of the sample's, optionally given its scene's georef."""
    from benchmark.data.stac import ChipRef

    folder = out / ("chips_georef" if georeferenced else "chips")
    shutil.rmtree(folder, ignore_errors=True)
    chips = []
    with rasterio.open(VALID_IMAGE) as ref:
        crs, transform = ref.crs, ref.transform
    for i in range(n):
        src_path = TEST_CHIPS[i % len(TEST_CHIPS)]
        dst = folder / f"chip{i:03d}" / f"chip{i:03d}.tif"
        dst.parent.mkdir(parents=True)
        with rasterio.open(src_path) as src:
            profile = src.profile
            if georeferenced:
                profile.update(crs=crs, transform=transform)
            with rasterio.open(dst, "w", **profile) as out_ds:
                out_ds.write(src.read())
        chips.append(ChipRef(dst.parent.name, str(dst)))
    return chips


def measure_predict(bundle: Path, out: Path, n_chips: int) -> dict:
    """predict_overhead_ratio, cpu_fast_path_speedup and the fast path's Jaccard delta."""
    from benchmark.data.labels import LabelRasterizer, read_building_labels
    from benchmark.evaluation.metrics import evaluate_scene
    from benchmark.inference.predict import (
        InferenceOptions,
        predict_chip_folder,
        predict_probabilities,
        predict_scene,
        prepare_model,
        select_execution,
    )
    from benchmark.pipeline.bundle import load_bundle

    network = load_bundle(str(bundle)).model
    chips = make_chips(out, n_chips, georeferenced=False)
    results: dict = {}
    per_chip = {}
    for fast in (True, False):
        options = InferenceOptions(fast=fast, batch_size=2)
        model = prepare_model(network, options)  # the fast one may run in ONNX Runtime
        plan = select_execution(options.device, options.fast)
        images = []
        for chip in chips:
            with rasterio.open(chip.uri) as src:
                images.append(src.read([1, 2, 3]))
        predict_probabilities(model, np.stack(images[:2]), options)  # warm-up

        def bare(model=model, images=images, plan=plan, options=options) -> None:
            with torch.inference_mode():
                for i in range(0, len(images), options.batch_size):
                    x = torch.from_numpy(np.stack(images[i : i + options.batch_size]))
                    x = x.float().div_(255)
                    if plan.channels_last:
                        x = x.contiguous(memory_format=torch.channels_last)
                    with torch.autocast(
                        "cpu", dtype=plan.autocast_dtype, enabled=plan.autocast_dtype is not None
                    ):
                        model(x)

        bare_s = _timed(bare)
        out_dir = out / f"masks_fast_{fast}"
        shutil.rmtree(out_dir, ignore_errors=True)
        ours_s = _timed(partial(predict_chip_folder, model, chips, str(out_dir), options))
        per_chip[fast] = ours_s / len(chips)
        results[f"bare_forward_s_per_chip_fast_{fast}"] = bare_s / len(chips)
        results[f"folder_predict_s_per_chip_fast_{fast}"] = ours_s / len(chips)
        if fast:
            results["predict_overhead_ratio"] = ours_s / bare_s
            results["fast_path"] = str(plan)
        geoms, _ = read_building_labels(str(VALID_LABELS))
        with rasterio.open(VALID_IMAGE) as src:
            rasterizer = LabelRasterizer(geoms, src.crs)
        prob_uri = str(out / f"valid_prob_fast_{fast}.tif")
        predict_scene(model, str(VALID_IMAGE), prob_uri, options, overwrite=True)
        counts = evaluate_scene(prob_uri, str(VALID_IMAGE), rasterizer.window, (0.5,))[0.5]
        results[f"valid_jaccard_fast_{fast}"] = counts.jaccard
    results["cpu_fast_path_speedup"] = per_chip[False] / per_chip[True]
    results["cpu_fast_path_jaccard_delta"] = abs(
        results["valid_jaccard_fast_True"] - results["valid_jaccard_fast_False"]
    )
    return results


def measure_rv_predict(bundle: Path, out: Path, ours_s_per_chip: float, n_chips: int) -> dict:
    """Stock ``rastervision predict``, one call per georeferenced chip, vs our folder predict."""
    chips = make_chips(out, n_chips, georeferenced=True)
    walls = [
        run_rastervision(
            "predict", str(bundle), c.uri, str(out / "rv_pred" / c.id), tmp=out / "rvtmp"
        )
        for c in chips
    ]
    rv_per_chip = sum(walls) / len(walls)
    return {
        "rv_predict_s_per_chip": rv_per_chip,
        "speedup_vs_rv_predict": rv_per_chip / ours_s_per_chip,
    }


def write_synthetic_scene(
    path: Path, size: int, block: int = 1024, compress: str | None = None
) -> None:
    """A ``size`` x ``size`` RGBA scene tiled from the sample's imagery, written block by block."""
    with rasterio.open(VALID_IMAGE) as src:
        patch = src.read(window=Window(0, 0, block, block))
        crs, res = src.crs, src.res
    patch[3] = 255
    profile = dict(
        driver="GTiff", width=size, height=size, count=4, dtype="uint8", crs=crs,
        transform=rasterio.transform.from_origin(455_000, 40_000, *res),
        tiled=True, blockxsize=512, blockysize=512, BIGTIFF="YES",
    )  # fmt: skip
    if compress:
        profile["compress"] = compress
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **profile) as dst:
        for row in range(0, size, block):
            for col in range(0, size, block):
                h, w = min(block, size - row), min(block, size - col)
                flip = (row // block + col // block) % 4
                dst.write(
                    np.rot90(patch, flip, axes=(1, 2))[:, :h, :w], window=Window(col, row, w, h)
                )


def _synthetic_catalog(out: Path, size: int) -> tuple[str, list[str]]:
    """The tiny test catalog with its two scenes replaced by ``size`` px synthetic ones."""
    sys.path.insert(0, str(REPO))
    from tests.fixtures.opencities import make_opencities_catalog

    fixture = make_opencities_catalog(out / "catalog", scene_size=(64, 64), test_chip_size=8)
    for key in fixture.train_keys + fixture.valid_keys:
        scene_id = key.split("/")[1]
        tif = Path(fixture.catalog_uri).parent / key.split("/")[0] / scene_id / f"{scene_id}.tif"
        write_synthetic_scene(tif, size, compress="deflate")
    return fixture.catalog_uri, fixture.train_keys + fixture.valid_keys


def measure_preprocess(out: Path, size: int) -> dict:
    """PREPROCESS vs bare rasterio on the same windows; ``-s 2`` vs ``-s 1`` with 2 scenes."""
    from benchmark.data.scene_windows import plan_windows, split_scene
    from benchmark.data.stac import read_training_scenes

    shutil.rmtree(out / "pre", ignore_errors=True)  # PREPROCESS would resume an earlier run
    catalog, keys = _synthetic_catalog(out / "pre", size)
    scene = read_training_scenes(catalog)[keys[0]]
    split_size = size // 2
    ours = _timed(lambda: split_scene(scene, str(out / "pre" / "ours"), split_size=split_size))

    def raw() -> None:
        with rasterio.open(scene.image_uri) as src:
            profile = src.profile | dict(
                tiled=True, blockxsize=512, blockysize=512, compress="deflate", predictor=2
            )
            for i, window in enumerate(plan_windows(src.width, src.height, split_size)):
                profile.update(
                    width=window.width, height=window.height, transform=src.window_transform(window)
                )
                with rasterio.open(out / "pre" / f"raw_{i}.tif", "w", **profile) as dst:
                    dst.write(src.read(window=window))

    raw_s = _timed(raw)
    megapixels = size * size / 1e6
    results = {
        "preprocess_mp_per_s": megapixels / ours,
        "raw_read_write_mp_per_s": megapixels / raw_s,
        "preprocess_vs_raw_ratio": raw_s / ours,
    }
    walls = {}
    for splits in (1, 2):
        walls[splits] = run_rastervision(
            "run", "local", "benchmark.experiments.split_images", "PREPROCESS",
            "-a", "root_uri", str(out / "pre" / f"s{splits}"), "-a", "train_stac_uri", catalog,
            "-a", "train_ids", keys[0], "-a", "valid_ids", keys[1],
            "-a", "split_size", str(split_size), "-s", str(splits),
            tmp=out / "rvtmp",
        )  # fmt: skip
    results["preprocess_local_s_split_1"] = walls[1]
    results["preprocess_local_s_split_2"] = walls[2]
    results["preprocess_split_speedup"] = walls[1] / walls[2]
    return results


def measure_training(bundle: Path, out: Path, steps: int) -> dict:
    """RV's ``train_epoch`` on ``steps`` batches of the demo's chips vs a bare loop on the same."""
    from torch.utils.data import DataLoader, Subset

    from benchmark.data.uris import read_json
    from benchmark.pipeline.benchmark_config import BenchmarkConfig

    run_root = bundle.parents[2]
    exp = bundle.parent.name
    cfg = BenchmarkConfig.from_dict(read_json(str(run_root / "pipeline-config" / f"{exp}.json")))
    cfg.backend.model.pretrained = False
    learner_cfg = cfg.backend.get_learner_config(cfg)
    learner_cfg.output_uri = str(out / "train")
    learner = learner_cfg.build(tmp_dir=str(out / "rvtmp"), training=True)
    batch = learner_cfg.solver.batch_sz
    # the quick demo's bundle has a handful of chips: repeat them, as epochs would, so that the
    # loop's fixed costs (workers starting, the first step) are shared by ``steps`` batches
    subset = Subset(learner.train_ds, [i % len(learner.train_ds) for i in range(steps * batch)])
    learner.train_dl = DataLoader(
        subset, batch_size=batch, shuffle=True, num_workers=learner_cfg.data.num_workers
    )
    next(iter(learner.train_dl))  # start the workers' imports before timing
    rv_s = _timed(lambda: learner.train_epoch(optimizer=learner.opt))
    batches = [(x, y) for x, y in DataLoader(subset, batch_size=batch)]
    model, loss_fn, opt = learner.model, learner.loss, learner.opt

    def bare() -> None:
        model.train()
        for x, y in batches:
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()

    bare_s = _timed(bare)
    return {
        "train_chips": len(subset),
        "train_s_per_chip": rv_s / len(subset),
        "bare_train_s_per_chip": bare_s / len(subset),
        "train_overhead_ratio": rv_s / bare_s,
    }


PREPROCESS_40K = """
import sys
from benchmark.data.scene_windows import split_scene
from benchmark.data.stac import SceneRef
split_scene(SceneRef("syn", "big", sys.argv[1], sys.argv[2]), sys.argv[3], split_size=9000)
"""

PREDICT_40K = """
import sys, torch
from benchmark.inference.predict import InferenceOptions, predict_scene
model = torch.nn.Conv2d(3, 2, 3, padding=1)  # stand-in: the pipeline's memory is what is measured
predict_scene(model, sys.argv[1], sys.argv[2], InferenceOptions(fast=False), overwrite=True)
"""


def measure_memory(out: Path, size: int) -> dict:
    """Peak RSS of PREPROCESS and of scene prediction on a ``size`` px scene, each in a process."""
    shutil.rmtree(out / "big", ignore_errors=True)  # PREPROCESS would resume an earlier run
    scene = out / "big" / "big.tif"
    labels = out / "big" / "big.geojson"
    write_synthetic_scene(scene, size)
    labels.write_text('{"type": "FeatureCollection", "features": []}')
    pre_s, pre_mb = _python(PREPROCESS_40K, str(scene), str(labels), str(out / "big" / "split"))
    pred_s, pred_mb = _python(PREDICT_40K, str(scene), str(out / "big" / "prob.tif"))
    return {
        "scene_px": size,
        "preprocess_40k_s": pre_s,
        "peak_rss_mb_preprocess_40k": pre_mb,
        "predict_40k_s": pred_s,
        "peak_rss_mb_predict_40k": pred_mb,
    }


def markdown_table(results: dict) -> str:
    """The README's table: each goal, its measured value, and whether it holds."""
    rows = ["| Measure | Goal | Measured | Holds |", "|---|---|---|---|"]
    for key, (op, goal) in GOALS.items():
        if key not in results:
            continue
        value = results[key]
        holds = value <= goal if op == "<=" else value >= goal
        rows.append(f"| `{key}` | {op} {goal:g} | {value:.3f} | {'yes' if holds else 'no'} |")
    return "\n".join(rows) + f"\n\nMachine: {results['machine']}.\n"


def main(argv: list[str] | None = None) -> int:
    """Run every measurement (or the ``--only`` ones) and write the results."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default=str(REPO / "out" / "bench"))
    parser.add_argument("--chips", type=int, default=8, help="chips for the predict measures")
    parser.add_argument("--rv-chips", type=int, default=3, help="chips for stock RV predict")
    parser.add_argument("--preprocess-px", type=int, default=8192, help="preprocess scene side")
    parser.add_argument("--memory-px", type=int, default=40_000, help="memory scene side")
    parser.add_argument("--train-steps", type=int, default=24)
    parser.add_argument(
        "--only", nargs="*", choices=["predict", "rv", "preprocess", "train", "memory"]
    )
    args = parser.parse_args(argv)
    log_like_rastervision()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() and args.only else {}
    results["machine"] = describe_machine()
    only = set(args.only or ["predict", "rv", "preprocess", "train", "memory"])
    bundle = ensure_bundle(out)
    steps = [
        ("predict", lambda: measure_predict(bundle, out, args.chips)),
        (
            "rv",
            lambda: measure_rv_predict(
                bundle, out, results["folder_predict_s_per_chip_fast_True"], args.rv_chips
            ),
        ),
        ("preprocess", lambda: measure_preprocess(out, args.preprocess_px)),
        ("train", lambda: measure_training(bundle, out, args.train_steps)),
        ("memory", lambda: measure_memory(out, args.memory_px)),
    ]
    for name, measure in steps:
        if name in only:
            log.info("measuring %s", name)
            results.update(measure())
            results_path.write_text(json.dumps(results, indent=2) + "\n")
    table = markdown_table(results)
    (out / "results.md").write_text(table)
    sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
