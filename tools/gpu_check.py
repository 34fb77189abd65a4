"""``wb_scripts/gpu_check``: what to run the first time a GPU is at hand, before the GPU queue.

Nothing in this project has run on a GPU (docs/docker.md, "GPU"). This runs what the GPU jobs
do, on the Kampala sample in ``data/``, and gives each step a one-line verdict, ``ok`` or
``FAILED: why`` (``skipped: why`` when it cannot run):

- ``device``: the GPU torch sees (name, compute capability, memory), a convolution in fp16
  on it, and whether torch has kernels for it (:func:`has_kernels`);
- ``average_without_sync``: the weight average's update after a training step
  (:class:`benchmark.training.learner.WeightAverage`) under
  ``torch.cuda.set_sync_debug_mode("error")``: it must not make the step wait for the GPU;
- ``preprocess``, ``chip``: PREPROCESS at 30 cm and chip, through the ``rastervision`` CLI
  as a Batch job runs them (each command is printed, its output kept in ``logs/``);
- ``train_killed``, ``train_resumed``: the quick train (``-a test true``: one epoch from an
  untrained encoder, with a weight average), SIGKILLed as soon as it has saved its state, as a
  reclaimed spot instance; then started again, it must resume from that state and finish;
- ``predict_to_postprocess``: predict, eval, bundle and POSTPROCESS: ``eval.json`` and
  ``submission.tgz``;
- ``predict_measure``: :func:`tools.bench.measure_predict` on the device with the bundle
  (``--bundle``, default the one made above), whose figures the next two steps read:
- ``fast_vs_fp32_jaccard``: the validation scene's Jaccard with the device's fast plan (fp16
  on a GPU) and with fp32; FAILED when they differ by more than the bench's goal;
- ``folder_predict``: folder predict's chips per second with the I/O around the model and
  the bare ``model(x)`` loop's on the same chips.

A bundle trained for a few steps predicts near 0.5 almost everywhere, where fp16's rounding
flips pixels: for a Jaccard comparison that means something, pass a trained bundle (the
demo's). ``--device cpu`` rehearses the same steps on the CPU (hiding any GPU from the
``rastervision`` commands), the GPU-only step skipped. Writes ``{out}/results.json`` (the
verdicts, their figures, the machine and the date); exits 1 when a step failed, and 2 with
one line when there is no CUDA device and ``--device cpu`` was not given.
"""

import argparse
import json
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmark.cli import options
from benchmark.console import log_like_rastervision
from benchmark.data import layout
from benchmark.data.uris import read_json
from benchmark.errors import InputError
from tools import bench
from tools.ablation import TRAIN_IDS, VALID_IDS
from tools.measure import REPO, describe_machine, rastervision_command

EXPERIMENT = "benchmark.experiments.benchmark"
EXPERIMENT_ID = "gpu-check-TEST"  # "gpu-check", and -a test true adds -TEST
GSD = "0.3"  # the demo's: a 128 px chip sees what 512 px see at the sample's 7.5 cm
SCENE_ARGS = (
    "-a", "train_stac_uri", str(bench.CATALOG), "-a", "train_ids", TRAIN_IDS,
    "-a", "valid_ids", VALID_IDS, "-a", "gsd", GSD,
)  # fmt: skip
QUICK_ARGS = (
    "-a", "experiment_id", "gpu-check", "-a", "test", "true", "-a", "pretrained", "false",
    "-a", "test_img_dir", str(bench.SAMPLE / "test"), "-a", "test_chip_gsd", "0.075",
    "-a", "chip_sz", "128", "-a", "predict_window", "128", "-a", "ema_decay", "0.99",
)  # fmt: skip
RESUMED = "Resuming after epoch 1 of 1"  # what the learner logs when it resumes
JACCARD_TOLERANCE = bench.GOALS["cpu_fast_path_jaccard_delta"][1]
POLL_S = 0.02  # how often the killed train's state is looked for

log = logging.getLogger("tools.gpu_check")


class CheckFailed(Exception):
    """A step ran and found something wrong; the message is its verdict's reason."""


@dataclass(frozen=True)
class Step:
    """One check: its name, what it runs (its figures), the steps it needs, GPU only or not."""

    name: str
    run: Callable[[], dict]
    needs: tuple[str, ...] = ()
    gpu_only: bool = False


class GpuCheck:
    """The checks on ``device`` ("cuda" or "cpu"), writing under ``out``."""

    def __init__(
        self,
        device: str,
        out: Path,
        bundle: Path | None = None,
        chips: int = 16,
        repeats: int = 2,
        rv_args: tuple[str, ...] = (),
    ) -> None:
        """``bundle`` for the predict measure (None: the one the quick pipeline makes).

        ``chips`` and ``repeats``: the predict measure's; ``rv_args``: more ``-a`` arguments
        of the quick benchmark (e.g. a smaller encoder).
        """
        self.device, self.out, self.chips, self.repeats = device, out, chips, repeats
        self.root = out / "run"
        self.rv_args = rv_args
        self.own_bundle = bundle is None
        bundle_dir = layout.command_dir(str(self.root), "bundle", EXPERIMENT_ID)
        self.bundle = Path(layout.model_bundle_uri(bundle_dir)) if bundle is None else bundle
        self.figures: dict[str, dict] = {}

    def steps(self) -> list[Step]:
        """Every check, in order."""
        pipeline = ("preprocess", "chip", "train_killed", "train_resumed")
        made_bundle = ("predict_to_postprocess",) if self.own_bundle else ()
        return [
            Step("device", self.describe_device),
            Step("average_without_sync", self.average_without_sync, gpu_only=True),
            Step("preprocess", self.preprocess),
            Step("chip", lambda: self.benchmark("chip", "chip"), needs=pipeline[:1]),
            Step("train_killed", self.train_killed, needs=pipeline[:2]),
            Step("train_resumed", self.train_resumed, needs=pipeline[:3]),
            Step("predict_to_postprocess", self.predict_to_postprocess, needs=pipeline),
            Step("predict_measure", self.predict_measure, needs=made_bundle),
            Step("fast_vs_fp32_jaccard", self.fast_vs_fp32_jaccard, needs=("predict_measure",)),
            Step("folder_predict", self.folder_predict, needs=("predict_measure",)),
        ]

    def describe_device(self) -> dict:
        """The device, and an fp16 convolution on it; FAILED where torch has no kernels for it."""
        if self.device == "cpu":
            return {"cpu_threads": torch.get_num_threads()}
        props = torch.cuda.get_device_properties(0)
        figures = {
            "name": props.name,
            "capability": f"{props.major}.{props.minor}",
            "memory_gb": round(props.total_memory / 1e9, 1),
            "gpus": torch.cuda.device_count(),
            "torch_cuda": torch.version.cuda,
            "torch_arch_list": torch.cuda.get_arch_list(),
        }
        if not has_kernels((props.major, props.minor), figures["torch_arch_list"]):
            kernels = " ".join(figures["torch_arch_list"])
            raise CheckFailed(
                f"{props.name} has compute capability {figures['capability']}; "
                f"torch {torch.__version__} has kernels for {kernels} only"
            )
        x = torch.rand(1, 3, 64, 64, device="cuda", dtype=torch.float16)
        conv = torch.nn.functional.conv2d(x, torch.ones(2, 3, 3, 3, device="cuda").half())
        if not torch.isfinite(conv).all():
            raise CheckFailed("an fp16 convolution gave non-finite values")
        return figures

    def average_without_sync(self) -> dict:
        """A few updates of the weight average on the GPU, any wait for it an error."""
        from benchmark.training.learner import WeightAverage

        model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8)).cuda()
        average = WeightAverage(model, 0.99)
        average.update_parameters(model)  # the first copies
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            for _ in range(3):
                average.update_parameters(model)
        except RuntimeError as exc:
            raise CheckFailed(f"the update waits for the GPU: {_first_line(exc)}") from exc
        finally:
            torch.cuda.set_sync_debug_mode("default")
        return {"updates": 4}

    def rastervision(self, step: str, *args: str) -> None:
        """Run a ``rastervision`` command (printed), its output in ``logs/{step}.log``."""
        cmd = rastervision_command(*args, tmp=self.out / "rvtmp")
        log.info("%s: rastervision %s", step, shlex.join(cmd[3:]))
        with self._log(step).open("w") as output:
            done = subprocess.run(cmd, cwd=REPO, stdout=output, stderr=subprocess.STDOUT)
        if done.returncode:
            raise CheckFailed(f"exit {done.returncode}: {self._last_line(step)}")

    def preprocess(self) -> dict:
        """PREPROCESS the sample at 30 cm."""
        args = ("-a", "root_uri", str(self.root), *SCENE_ARGS)
        split_images = "benchmark.experiments.split_images"
        command = ("run", "inprocess", split_images, "PREPROCESS", *args)
        self.rastervision("preprocess", *command)
        return {}

    def benchmark_args(self, *commands: str) -> list[str]:
        """``run inprocess`` of the quick benchmark's ``commands``."""
        root = ("-a", "root_uri", str(self.root))
        return ["run", "inprocess", EXPERIMENT, *commands, *root, *SCENE_ARGS, *QUICK_ARGS,
                *self.rv_args]  # fmt: skip

    def benchmark(self, step: str, *commands: str) -> dict:
        """The quick benchmark's ``commands``, as ``step`` (no figures: its time is the step's)."""
        self.rastervision(step, *self.benchmark_args(*commands))
        return {}

    @property
    def train_dir(self) -> Path:
        """The quick train's output."""
        return Path(layout.command_dir(str(self.root), "train", EXPERIMENT_ID))

    def train_killed(self) -> dict:
        """Train, SIGKILLed as soon as its state is saved (RV's log, weights, bundle to come)."""
        state = self.train_dir / layout.TRAIN_STATE_NAME
        cmd = rastervision_command(*self.benchmark_args("train"), tmp=self.out / "rvtmp")
        log.info("train_killed: rastervision %s", shlex.join(cmd[3:]))
        with self._log("train_killed").open("w") as output:
            train = subprocess.Popen(cmd, cwd=REPO, stdout=output, stderr=subprocess.STDOUT)
            while train.poll() is None and not state.exists():
                time.sleep(POLL_S)
            train.send_signal(signal.SIGKILL)
            status = train.wait()
        if status != -signal.SIGKILL:
            ended = self._last_line("train_killed")
            raise CheckFailed(f"train ended by itself (exit {status}) before the kill: {ended}")
        return {"state_saved": state.exists()}

    def train_resumed(self) -> dict:
        """Train again: it resumes from the killed train's state, and finishes."""
        self.benchmark("train_resumed", "train")
        if RESUMED not in self._log("train_resumed").read_text():
            raise CheckFailed(f"no {RESUMED!r} in {self._log('train_resumed')}")
        if not Path(layout.model_bundle_uri(str(self.train_dir))).exists():
            raise CheckFailed("no model bundle after the resumed train")
        return {}

    def predict_to_postprocess(self) -> dict:
        """Predict, eval, bundle, POSTPROCESS: the eval report's Jaccard, the submission."""
        commands = ("predict", "eval", "bundle", "POSTPROCESS")
        self.benchmark("predict_to_postprocess", *commands)
        eval_dir = layout.command_dir(str(self.root), "eval", EXPERIMENT_ID)
        report = read_json(layout.eval_report_uri(eval_dir))
        submission = layout.submission_uri(str(self.root), EXPERIMENT_ID)
        if not Path(submission).exists():
            raise CheckFailed(f"POSTPROCESS wrote no {submission}")
        return {"valid_jaccard": report["overall"]["jaccard"]}

    def predict_measure(self) -> dict:
        """The bench's predict measure on the device (see :func:`tools.bench.measure_predict`)."""
        folder = self.out / "predict"
        folder.mkdir(parents=True, exist_ok=True)
        figures = bench.measure_predict(self.bundle, folder, self.chips, self.repeats, self.device)
        return {"bundle": str(self.bundle), **figures}

    def fast_vs_fp32_jaccard(self) -> dict:
        """The validation scene's Jaccard with the fast plan and with fp32."""
        measured = self.figures["predict_measure"]
        fast = measured["fast_path"]
        figures = {
            "fast_plan": fast,
            "valid_jaccard_fp32": measured["valid_jaccard_fp32"],
            "valid_jaccard_fast": measured[f"valid_jaccard_{fast}"],
            "jaccard_delta": measured[f"plan_jaccard_delta_{fast}"],
        }
        if figures["jaccard_delta"] > JACCARD_TOLERANCE:
            raise CheckFailed(
                f"{fast} scores {figures['valid_jaccard_fast']:.4f}, fp32 "
                f"{figures['valid_jaccard_fp32']:.4f}: more than {JACCARD_TOLERANCE} apart"
            )
        return figures

    def folder_predict(self) -> dict:
        """Chips per second: folder predict (I/O and model) and the bare loop (model alone)."""
        measured = self.figures["predict_measure"]
        fast = measured["fast_path"]
        return {
            "fast_plan": fast,
            "chips_per_s_with_io": 1 / measured[f"plan_s_per_chip_{fast}"],
            "chips_per_s_model_alone": 1 / measured["bare_forward_s_per_chip_fast_True"],
            "chips_per_s_with_io_fp32": 1 / measured["plan_s_per_chip_fp32"],
            "overhead_ratio": measured["predict_overhead_ratio"],
        }

    def _log(self, step: str) -> Path:
        return self.out / "logs" / f"{step}.log"

    def _last_line(self, step: str) -> str:
        lines = [line for line in self._log(step).read_text().splitlines() if line.strip()]
        return (lines[-1] if lines else "no output") + f" (see {self._log(step)})"

    def run(self) -> dict:
        """Every step, its verdict printed as it ends; the results, also in ``results.json``."""
        shutil.rmtree(self.out, ignore_errors=True)  # a run left here would be resumed
        (self.out / "logs").mkdir(parents=True)
        date = time.strftime("%Y-%m-%d")
        results: dict = {"device": self.device, "machine": describe_machine(), "date": date}
        results["steps"] = {}
        path = self.out / "results.json"
        for step in self.steps():
            verdict, seconds = self._verdict(step, results["steps"]), None
            if verdict is None:
                start = time.perf_counter()
                try:
                    self.figures[step.name] = step.run()
                    verdict = "ok"
                except CheckFailed as exc:
                    verdict = f"FAILED: {exc}"
                except Exception as exc:  # a check's own failure is one line too
                    log.exception("%s failed", step.name)
                    verdict = f"FAILED: {exc.__class__.__name__}: {_first_line(exc)}"
                seconds = round(time.perf_counter() - start, 1)
            figures = self.figures.get(step.name, {})
            results["steps"][step.name] = {"verdict": verdict, "seconds": seconds, **figures}
            path.write_text(json.dumps(results, indent=2) + "\n")
            sys.stdout.write(f"{step.name}: {verdict}\n")
            sys.stdout.flush()
        sys.stdout.write(f"results: {path}\n")
        return results

    def _verdict(self, step: Step, done: dict) -> str | None:
        """``skipped: why`` for a step that cannot run here, else None."""
        if step.gpu_only and self.device == "cpu":
            return "skipped: needs a GPU"
        failed = [name for name in step.needs if done[name]["verdict"] != "ok"]
        return f"skipped: {', '.join(failed)} did not pass" if failed else None


def has_kernels(capability: tuple[int, int], arch_list: list[str]) -> bool:
    """Whether torch built for ``arch_list`` runs on a GPU of compute ``capability``.

    Binary kernels (``sm_XY``) run on the same major version at minor Y or above (an L4, 8.9,
    runs ``sm_86``); PTX (``compute_XY``) is compiled for any GPU from X.Y up.
    """
    for arch in arch_list:
        kind, _, number = arch.partition("_")
        digits = number.rstrip("abf")  # sm_90a, sm_100f: the family-specific variants
        built = (int(digits[:-1]), int(digits[-1]))
        if kind == "sm" and built[0] == capability[0] and built[1] <= capability[1]:
            return True
        if kind == "compute" and built <= capability:
            return True
    return False


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else exc.__class__.__name__


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse, in one line, what the checks cannot do: too few chips, no bundle, a bundle in --out.

    A new check empties ``--out`` first: a bundle from an earlier check there would be deleted.
    """
    fewest = max(bench.OVERHEAD_PAIR_CHIPS, args.repeats)
    if args.chips < fewest:
        raise InputError(f"--chips {args.chips}: at least {fewest} (--repeats groups, and pairs "
                         f"of {bench.OVERHEAD_PAIR_CHIPS} chips)")  # fmt: skip
    if args.bundle is not None and not args.bundle.is_file():
        raise InputError(f"--bundle {args.bundle}: no such file")
    if args.bundle is not None and args.bundle.resolve().is_relative_to(args.out.resolve()):
        raise InputError(
            f"--bundle {args.bundle}: inside --out {args.out}, which the check empties first: "
            "copy it elsewhere, or give another --out"
        )


def check_device(device: str) -> None:
    """Refuse ``cuda`` where torch sees no CUDA device (one line, naming ``--device cpu``).

    ``cpu`` hides any GPU from the ``rastervision`` commands this runs, which pick one
    whenever they see it.
    """
    if device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    elif not torch.cuda.is_available():
        raise InputError(
            f"no CUDA device: torch {torch.__version__} (CUDA {torch.version.cuda}) sees none "
            "(driver, docker/run --gpu?); --device cpu rehearses these checks on the CPU"
        )


def main(argv: list[str] | None = None) -> int:
    """Run the checks; 0 if every one passed, 1 if one failed, 2 without a CUDA device."""
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)  # after it: -a arguments
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--device", choices=("cuda", "cpu"), default="cuda", help="cpu: a rehearsal on the CPU"
    )
    parser.add_argument(
        "--out", type=Path, default=REPO / "out" / "gpu_check", help="emptied, then written"
    )
    parser.add_argument(
        "--bundle", type=Path, help="model bundle for predict_measure (default: the check's own)"
    )
    parser.add_argument(
        "--chips", type=options.count, default=16, help="chips predict_measure times"
    )
    parser.add_argument("--repeats", type=options.count, default=2, help="groups they are timed in")
    args = parser.parse_args(argv[:split])
    rv_args = tuple(argv[split + 1 :])

    def run() -> int:
        check_arguments(args)
        check_device(args.device)
        check = GpuCheck(args.device, args.out, args.bundle, args.chips, args.repeats, rv_args)
        results = check.run()
        verdicts = [step["verdict"] for step in results["steps"].values()]
        failed = any(verdict.startswith("FAILED") for verdict in verdicts)
        return options.EXIT_FAILED if failed else options.EXIT_OK

    log_like_rastervision(also=("tools",))
    return options.exit_status(run)


if __name__ == "__main__":
    sys.exit(main())
