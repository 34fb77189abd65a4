"""Training that survives a kill: Raster Vision's learner with the whole state of the run saved.

AWS Batch runs ``train`` on spot instances that can be reclaimed at any moment, and re-runs the
job (``attempts``). Raster Vision 0.31 then resumes from ``last-model.pth`` and ``log.csv`` in
the train output (synced from S3 first) and steps its one-cycle schedule forward to the epoch
it resumes from. That does not continue the run that was killed:

- the optimizer starts again from nothing: Adam's moment estimates are lost;
- the next epoch's batch order and augmentation come from generators the new process started
  afresh, so the resumed epochs see other batches than the killed run would have;
- ``last-model.pth`` and ``model-bundle.zip`` are written in place: a kill while one is being
  written leaves a truncated file, which the next attempt fails to load; and a kill between
  ``log.csv`` and the weights leaves the two an epoch apart.

Here every epoch ends by writing ``train-state.pth`` atomically: the epoch, the weights, the
optimizer and schedulers, the weight average if one is kept, and the metrics of every epoch so
far. On resume it is the one source
of truth: ``log.csv`` (from which RV counts the epochs done) and ``last-model.pth`` (which RV's
bundle copies) are rewritten from it. Each epoch draws its batches and augmentation from a seed
of its own (:func:`benchmark.training.seeding.epoch_seed`), so the resumed epochs draw what the
killed run would have drawn.

With ``ema_decay`` set (:class:`benchmark.training.model_config.BenchmarkSolverConfig`) the
learner also keeps an exponential moving average of the weights, updated after every optimizer
step; validation scores it and ``last-model.pth`` (so the bundle) holds it. On a small, noisy
training set the last weights depend on the last few batches; their average much less. A
from-scratch model moves far in a few hundred steps, which an average taken naively does not
survive (measured on the demo's recipe: validation Jaccard 0.03 against 0.47): the decay is
warmed up (``min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so the random initial
weights do not linger), and before the last validation BatchNorm's statistics are measured
again for the averaged weights over the training chips (averaging the statistics of networks
that kept changing gives ones that fit none of them). The update count the decay is warmed up
with is kept on the host: ``AveragedModel`` keeps it in a tensor, which its update reads and
copies to the GPU, and each of those would make every step wait for the GPU to finish its work.

The train state is read onto the CPU whatever the device: ``load_state_dict`` moves what must
move (weights, Adam's moments) to their parameters' device and leaves what torch keeps on the
CPU there (Adam's step counters, read on the host at every step: on the GPU each read would wait
for it). A state written on a GPU so resumes on a CPU-only host and the other way round.

A network trained for an instance target (:mod:`benchmark.networks.targets`) outputs body,
border and contact logits, and its labels are bits (:mod:`benchmark.data.instance_labels`):
validation's confusion matrix and Jaccard, and the plots of chips and predictions, read the body
(the labels' body bit, the first two logits), so they compare with a binary model's.

Training runs in one process, on one device. Raster Vision starts DistributedDataParallel by
itself when it sees several GPUs (``RASTERVISION_USE_DDP``, default yes), but this learner's
state, weight average, seeded epochs and BatchNorm pass are those of one process; so with
several GPUs it trains on the first and says so (:meth:`ResumableLearner.setup_ddp_params`).
"""

import itertools
import logging
import os
import shutil
from collections.abc import Mapping
from os.path import basename, join
from typing import Any

import torch
from rastervision.pipeline.file_system import zipdir
from rastervision.pytorch_learner import SemanticSegmentationLearner
from rastervision.pytorch_learner.dataset.visualizer import SemanticSegmentationVisualizer
from rastervision.pytorch_learner.utils import compute_conf_mat, log_metrics_to_csv
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, update_bn
from torch.utils.data import DataLoader

from benchmark.allocator import keep_freed_memory
from benchmark.data.background import start_background_worker
from benchmark.data.layout import TRAIN_STATE_NAME, training_log_uri
from benchmark.data.uris import atomic_output
from benchmark.errors import InputError
from benchmark.networks.targets import Target, target_of
from benchmark.onnx_export import torchscript_exporter
from benchmark.training.losses import body_target
from benchmark.training.model_config import BenchmarkSolverConfig
from benchmark.training.seeding import epoch_seed, seed_random_generators

log = logging.getLogger(__name__)

_SCHEDULERS = ("step_scheduler", "epoch_scheduler")


class ResumableLearner(SemanticSegmentationLearner):
    """RV's semantic segmentation learner that resumes a killed run as if it had not stopped."""

    def __init__(self, *args: Any, seed: int | None = None, **kwargs: Any) -> None:
        """Take RV's learner arguments, and the run's ``seed`` (None: epochs are not seeded)."""
        # RV's constructor already sets up training (and resumes): the seed must be known.
        self.seed = seed
        self._metrics: list[dict[str, Any]] = []
        self._next_epoch = 0
        self._ema: WeightAverage | None = None
        keep_freed_memory()  # every step allocates what the last one freed
        super().__init__(*args, **kwargs)

    def setup_ddp_params(self) -> None:
        """RV's DDP settings, with DDP switched off: one process trains, on the first GPU.

        The state saved every epoch, the weight average, the epochs' seeds and the BatchNorm
        pass are this process's; under DDP RV would build the model in its workers only, and
        each rank would need them all. A train launched as one rank of several (``torchrun``
        sets ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``) cannot be made a single process here,
        so it stops before training; so does a start method RV refuses without ``WORLD_SIZE``.
        """
        try:
            super().setup_ddp_params()
        except ValueError as exc:  # RV's only one here: fork or forkserver without WORLD_SIZE
            raise InputError(
                f"{exc.args[0].rstrip('.')}; the benchmark trains in one process: "
                "unset RASTERVISION_DDP_START_METHOD"
            ) from exc
        if not self.distributed:
            return
        if self.is_ddp_process:
            raise InputError(
                f"train launched as DDP rank {self.ddp_rank} of {self.ddp_world_size} "
                "(WORLD_SIZE, RANK, LOCAL_RANK set): the benchmark trains in one process; "
                "start it without torchrun"
            )
        log.warning(
            "Training on one GPU, not DDP on %s: the benchmark's resumable learner runs in one "
            "process (set RASTERVISION_USE_DDP=no to silence this, or make one GPU visible)",
            self.ddp_world_size or "several",
        )
        self.distributed = False
        self.avoid_activating_cuda_runtime = False  # fork's reason to keep CUDA unstarted
        self.ddp_world_size = None

    @property
    def target(self) -> Target:
        """What the network outputs (binary for RV's own model config, and old configs)."""
        return target_of(self.cfg.model)

    def build_loss(self, loss_def_path: str | None = None) -> nn.Module:
        """The solver's loss for the model's target (RV's own solver: RV's loss)."""
        solver = self.cfg.solver
        if not isinstance(solver, BenchmarkSolverConfig):
            return super().build_loss(loss_def_path)
        return solver.build_loss(self.cfg.data.num_classes, target=self.target)

    def validate_step(self, batch: Any, batch_ind: int) -> dict[str, Any]:
        """RV's validation step, its confusion matrix of the body (a binary model's as RV's)."""
        x, y = batch
        out = self.post_forward(self.model(x))
        pred = self.prob_to_pred(out[:, :2]).view(-1)
        conf_mat = compute_conf_mat(pred, body_target(y).view(-1), len(self.cfg.data.class_names))
        return {"val_loss": self.loss(out, y), "conf_mat": conf_mat}

    def postprocess_model_output(
        self, out: torch.Tensor, raw_out: bool, out_shape: tuple[int, int]
    ) -> torch.Tensor:
        """RV's probabilities or classes of the body (an instance model's first two logits)."""
        return super().postprocess_model_output(out[:, :2], raw_out, out_shape)

    def get_visualizer_class(self) -> type[SemanticSegmentationVisualizer]:
        """RV's plots, of the labels' body."""
        return BodyVisualizer

    @property
    def train_state_path(self) -> str:
        """``train-state.pth`` in the local train output (RV syncs it to and from S3)."""
        return join(self.output_dir_local, TRAIN_STATE_NAME)

    def setup_training(self, loss_def_path: str | None = None) -> None:
        """RV's setup (data, loss, optimizer, schedules), then the saved state, if any."""
        state = self._read_train_state()
        if state is not None:
            # Before RV's setup: it counts the epochs done, and steps its schedule, from log.csv.
            self._metrics = state["metrics"]
            self._rewrite_log()
        super().setup_training(loss_def_path)
        self._setup_weight_average()
        if state is None:
            return
        self.model.load_state_dict(state["model"])
        if self._ema is not None and state.get("ema") is not None:
            self._ema.load_state_dict(state["ema"])
        self.opt.load_state_dict(state["optimizer"])
        for name in _SCHEDULERS:
            scheduler = getattr(self, name)
            if scheduler is not None and state[name] is not None:
                scheduler.load_state_dict(state[name])
        self.save_weights(self.last_model_weights_path)
        log.info(
            "Resuming after epoch %d of %d from %s: weights, optimizer, schedule and the "
            "seeded batch order continue",
            state["epoch"] + 1, self.cfg.solver.num_epochs, TRAIN_STATE_NAME,
        )  # fmt: skip

    def build_dataloader(self, split: str, *args: Any, **kwargs: Any) -> DataLoader:
        """RV's DataLoader, its workers (reading and augmenting chips) at background priority.

        Measured by ``tools/bench.py`` (``train_overhead_ratio``): at normal priority they
        preempt the model's threads on a small machine (:mod:`benchmark.data.background`).
        """
        if self.cfg.data.num_workers > 0:
            kwargs.setdefault("worker_init_fn", start_background_worker)
        return super().build_dataloader(split, *args, **kwargs)

    def _setup_weight_average(self) -> None:
        decay = getattr(self.cfg.solver, "ema_decay", None)  # None in RV's own solver config
        if decay is None:
            return
        self._ema = WeightAverage(self.model, decay)
        self.opt.register_step_post_hook(lambda *_: self._ema.update_parameters(self.model))
        log.info("Keeping an exponential moving average of the weights (decay %g)", decay)

    @property
    def trained_model(self) -> nn.Module:
        """What the run produces: the weight average if one is kept, else the model.

        Without DDP's wrapper (its ``module.`` key prefix is not the bundle's network).
        """
        model = self.model if self._ema is None else self._ema.module
        return model.module if isinstance(model, DistributedDataParallel) else model

    @property
    def last_metrics(self) -> dict[str, Any]:
        """The metrics of the last epoch trained (by this process or the run it resumed)."""
        return self._metrics[-1]

    def _read_train_state(self) -> dict[str, Any] | None:
        if not os.path.isfile(self.train_state_path):
            return None
        try:
            return torch.load(self.train_state_path, map_location="cpu", weights_only=False)
        except Exception as exc:  # written atomically: only a foreign or damaged file is unreadable
            raise InputError(
                f"{self.train_state_path}: unreadable ({exc.__class__.__name__}: {exc}); "
                "delete it to resume from last-model.pth alone"
            ) from exc

    def _rewrite_log(self) -> None:
        with atomic_output(training_log_uri(self.output_dir_local)) as partial:
            os.remove(partial)  # RV's writer appends, with a header only to a new file
            for metrics in self._metrics:
                log_metrics_to_csv(partial, metrics)

    def on_train_start(self) -> None:
        """Note the first epoch this process trains (0, or the one after the saved state)."""
        super().on_train_start()
        self._next_epoch = self.get_start_epoch()

    def train_epoch(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """RV's epoch, its batch order and augmentation drawn from the epoch's own seed."""
        if self.seed is not None:
            seed_random_generators(epoch_seed(self.seed, self._next_epoch))
        return super().train_epoch(*args, **kwargs)

    def on_epoch_end(self, curr_epoch: int, metrics: dict[str, Any]) -> None:
        """Save the state of the run first, then what RV writes (log, weights, S3 sync)."""
        self._metrics.append(metrics)
        state = {
            "epoch": curr_epoch,
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "metrics": self._metrics,
            "ema": None if self._ema is None else self._ema.state_dict(),
            **{name: _state_of(getattr(self, name)) for name in _SCHEDULERS},
        }
        with atomic_output(self.train_state_path) as partial:
            torch.save(state, partial)
        super().on_epoch_end(curr_epoch, metrics)
        self._next_epoch = curr_epoch + 1

    def validate_epoch(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """RV's validation, of what the run produces (the weight average, if kept)."""
        if self._ema is not None and self._next_epoch == self.cfg.solver.num_epochs - 1:
            log.info("Measuring BatchNorm statistics for the averaged weights")
            update_bn(self.train_dl, self._ema.module, self.device)
        model, self.model = self.model, self.trained_model
        try:
            return super().validate_epoch(*args, **kwargs)
        finally:
            self.model = model

    def save_weights(self, path: str) -> None:
        """What the run produces, atomically: a kill while saving leaves the old file whole."""
        with atomic_output(path) as partial:
            torch.save(self.trained_model.state_dict(), partial)

    def export_to_onnx(self, path: str, model: nn.Module | None = None, **kwargs: Any) -> None:
        """RV's ``model.onnx``, written by the TorchScript exporter (:mod:`benchmark.onnx_export`).

        Of what the run produces (:attr:`trained_model`) unless told otherwise: the bundle's
        ``model.pth`` holds the weight average, and RV exports its ``self.model``, the last
        weights. Every bundle has one; torch's default exporter took seconds to tens of
        seconds each.
        """
        model = self.trained_model if model is None else model
        with torchscript_exporter() as exporter:
            super().export_to_onnx(path, model, **{**exporter, **kwargs})

    def save_model_bundle(self, export_onnx: bool = True) -> None:
        """RV's bundle, its zip written atomically (RV's own writes it in place)."""
        log.info("Creating bundle.")
        bundle_dir = join(self.tmp_dir, "model-bundle")
        shutil.rmtree(bundle_dir, ignore_errors=True)
        os.makedirs(bundle_dir)
        self._bundle_model(bundle_dir, export_onnx=export_onnx)
        self._bundle_modules(bundle_dir)
        self._bundle_transforms(bundle_dir)
        shutil.copy(self.config_path, join(bundle_dir, "learner-config.json"))
        zip_path = join(self.output_dir_local, basename(self.model_bundle_uri))
        log.info("Saving bundle to %s.", zip_path)
        with atomic_output(zip_path) as partial:
            zipdir(bundle_dir, partial)


class BodyVisualizer(SemanticSegmentationVisualizer):
    """RV's plots of chips and predictions, an instance target's labels shown as their body."""

    def plot_batch(self, x: torch.Tensor, y: Any = None, *args: Any, **kwargs: Any) -> None:
        """RV's ``plot_batch``, with ``y`` (label bits or binary labels) as binary labels."""
        if isinstance(y, torch.Tensor):
            y = body_target(y)
        super().plot_batch(x, y, *args, **kwargs)


def _state_of(scheduler: Any) -> dict[str, Any] | None:
    return None if scheduler is None else scheduler.state_dict()


class WeightAverage(AveragedModel):
    """The weights' exponential moving average, its decay warmed up (TensorFlow's warm-up).

    ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates, counted here on the host.
    ``AveragedModel``'s own update reads its count, a tensor, twice and copies it to the
    weights' device for each dtype: wherever that tensor lives, one of those waits for the GPU
    to finish the step, every step. Its ``n_averaged`` still counts, on the CPU, for the saved
    state. Every tensor of a dtype is updated in place in one call: ``AveragedModel``'s
    per-tensor ``avg_fn`` allocates each averaged tensor again and copies it back, however small
    the step's chips. The values are the same as that out-of-place ``lerp``'s, bit for bit
    (``lerp_`` is its kernel; a test compares them).
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        """Average ``model``'s weights and buffers with ``decay`` (warmed up)."""
        super().__init__(model, use_buffers=True)
        self.decay = decay
        self.updates = 0  # n_averaged, on the host

    def update_parameters(self, model: nn.Module) -> None:
        """Move the average towards ``model`` (the first update copies it)."""
        groups: dict[tuple[torch.device, torch.dtype], tuple[list, list]] = {}
        pairs = zip(self._tensors(self.module), self._tensors(model), strict=True)
        for average, current in pairs:
            averages, currents = groups.setdefault((average.device, average.dtype), ([], []))
            averages.append(average)
            currents.append(current)
        step_decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for averages, currents in groups.values():
            # The first update, and BatchNorm's batch counts (the model's own): a copy.
            if self.updates == 0 or not averages[0].is_floating_point():
                torch._foreach_copy_(averages, currents)
            else:
                torch._foreach_lerp_(averages, currents, 1 - step_decay)
        self.updates += 1
        self.n_averaged.add_(1)  # on the CPU

    def load_state_dict(self, state_dict: Mapping[str, Any], *args: Any, **kwargs: Any) -> Any:
        """``AveragedModel``'s, and the host's count of updates from the loaded one."""
        loaded = super().load_state_dict(state_dict, *args, **kwargs)
        self.updates = int(self.n_averaged)  # once, on resume
        return loaded

    @staticmethod
    def _tensors(model: nn.Module) -> list[torch.Tensor]:
        return [t.detach() for t in itertools.chain(model.parameters(), model.buffers())]
