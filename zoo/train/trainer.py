"""The training engine: stages of objectives over one model, with DDP, AMP, exact resume and evaluation.

A run trains the recipe's stages in order (HCML: ``level1 -> level2 -> level3 -> joint``; a
fine-tune: one ``classification`` stage). Each stage builds its objective
(``zoo.methods.create_objective``), freezes what the objective and the recipe freeze, and has its
own optimizer and warm-up + cosine schedule over its epochs. The run folder holds::

    recipe.yaml              the resolved recipe (overrides applied)
    last.pt                  the latest checkpoint (every epoch, at a stage's end, on SIGTERM)
    stage_<name>.pt          the checkpoint at the end of each stage
    metrics.jsonl / .csv     training records every ``log_every`` steps, one row per epoch
    loss.png, accuracy.png   curves, redrawn at the end of the run
    confusion_matrix.png     of the final evaluation
    eval.json                the final evaluation (single- and multi-view top-1/top-5, kNN, efficacy)
    tensorboard/             when TensorBoard is installed

Starting a run whose folder holds ``last.pt`` resumes it exactly: model, optimizer, scheduler,
grad scaler, every rank's RNG states, stage, epoch and step (within the epoch too). Data order
and augmentation do not depend on how a run was cut: each epoch's order is drawn from
``(seed, stage, epoch)`` and each clip's random choices from ``(seed, stage, epoch, position)``.

>>> from zoo.train import train
>>> result = train('recipes/quickstart.yaml', ['max_epochs=1'])
>>> result.metrics['top1'], result.checkpoint
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .._checkpoint import load_training_checkpoint
from .._factory import create_model
from ..data import kind_defaults
from ..methods import Objective, create_objective
from ..utils.distributed import DistInfo, all_gather_objects, all_reduce_mean, any_rank, barrier
from .checkpoint import get_rng_state, init_weights_from, link_or_copy, save_checkpoint, set_rng_state
from .evaluate import predict, topk_accuracy
from .evaluator import evaluate_model, nll, recipe_eval_loaders
from .loaders import (
    ResumableSampler,
    data_state,
    first_item,
    is_stream,
    load_data_state,
    make_loader,
    pretrained_data_cfg,
    recipe_dataset,
    source_dataset,
)
from .logger import BadFileReport, MetricsLogger, TimeSplit, epoch_line, time_line
from .optim import build_optimizer, build_scheduler, scaled_lr, select_parameters, stage_schedule
from .plots import plot_curves, read_metrics
from .recipe import Recipe, load_recipe, recipe_to_dict, recipe_to_yaml
from .run_folder import RunFolderMismatch, RunResult, TrainingInterrupted, check_run_folder, run_identity
from .runtime import (
    CompiledObjective,
    Runtime,
    conv3d_precision_warning,
    convert_batchnorm,
    in_main_thread,
    setup_runtime,
    to_channels_last,
)

__all__ = ["Trainer", "RunResult", "TrainingInterrupted", "RunFolderMismatch", "check_run_folder", "run_identity",
           "train", "link_or_copy"]


@dataclass
class _Stage:
    """What one stage trains with."""

    index: int
    name: str
    objective: Objective
    forward: nn.Module  # the objective, or DDP around it
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    epochs: int
    steps_per_epoch: int
    lr: float


class Trainer:
    """Trains a :class:`~zoo.train.recipe.Recipe` (see the module docstring for the run folder).

    Args:
        recipe: the resolved recipe.
        resume: a checkpoint (or run folder) to resume from; by default the run folder's
            ``last.pt`` when it exists.
        callbacks: ``fn(trainer)`` called after every optimizer step (``trainer.step``,
            ``trainer.stage_index``, ``trainer.epoch`` tell where the run is).
    """

    def __init__(self, recipe: Recipe, resume: str | os.PathLike | None = None,
                 callbacks: Sequence[Callable[[Trainer], None]] = ()):
        self.recipe = recipe
        self.callbacks = list(callbacks)
        self.runtime = Runtime()
        self.run_dir = Path(recipe.output_dir or Path("runs") / recipe.name)
        self.resume_from = self._find_resume(resume)
        self.step = 0
        self.stage_index = 0
        self.epoch = 0
        self._stop_signal: str | None = None
        self.model: nn.Module
        self.classes: list[str] = []
        self.logger: MetricsLogger

    # -- setup ----------------------------------------------------------------------------------

    def _find_resume(self, resume: str | os.PathLike | None) -> Path | None:
        if resume is None:
            if not self.recipe.resume:
                return None
            check_run_folder(self.recipe)
            last = self.run_dir / "last.pt"
            return last if last.is_file() else None
        path = Path(resume)
        if path.is_dir():
            path = path / "last.pt"
        if not path.is_file():
            raise FileNotFoundError(f"nothing to resume: {path} does not exist")
        return path

    def request_stop(self, reason: str = "a stop request") -> None:
        """Stop after the current optimizer step, saving a checkpoint (what SIGTERM does)."""
        self._stop_signal = reason

    def _on_signal(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self._stop_signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C does not wait for the checkpoint
        self.request_stop(name)

    @property
    def is_main(self) -> bool:
        return self.runtime.is_main

    @property
    def dist(self) -> DistInfo:
        return self.runtime.dist

    @property
    def device(self) -> torch.device:
        return self.runtime.device

    @property
    def amp_dtype(self) -> torch.dtype | None:
        return self.runtime.amp_dtype

    @property
    def channels_last(self) -> bool:
        return self.runtime.channels_last

    @property
    def _bars(self) -> bool:
        """Progress bars: on rank 0, when the recipe asks for progress and stderr is a terminal (in a log file
        a bar's redraws are noise: a plain line every ``log_every`` steps stands in for it)."""
        return self.is_main and self.recipe.progress and sys.stderr.isatty()

    def _print(self, *args: Any) -> None:
        if self.is_main:
            print(*args, flush=True)

    def _loader(self, dataset: Dataset, train: bool, batch_size: int, seed: int = 0) -> DataLoader:
        return make_loader(dataset, self.runtime, self.recipe.data.num_workers, train, batch_size, seed)

    def _data_cfg(self) -> dict[str, Any]:
        """What a user of the trained weights needs to feed them: the pretrained-cfg fields of the data."""
        d = self.recipe.data
        c, t, h, w = first_item(self.val_set)["video"].shape[-4:]
        kind = kind_defaults(d.kind)
        weights = pretrained_data_cfg(self.recipe) or {}  # a pretrained tag's normalisation, as the loaders apply it
        mean, std = d.mean or weights.get("mean") or kind.mean, d.std or weights.get("std") or kind.std
        return {"input_size": [int(c), int(t), int(h), int(w)], "frame_stride": d.frame_stride,
                "mean": list(mean), "std": list(std), "dataset": d.kind}

    def model_args(self) -> dict[str, Any]:
        """The keyword arguments of ``create_model``, besides the name and ``num_classes``, that rebuild this
        run's model."""
        return {k: v for k, v in self.recipe.model.kwargs.items() if v is not None}

    def _build_model(self) -> nn.Module:
        m = self.recipe.model
        torch.manual_seed(self.recipe.seed)  # the same initial weights on every rank
        model = create_model(m.name, pretrained=m.pretrained, num_classes=self.num_classes, **self.model_args())
        if m.checkpoint:
            missing = init_weights_from(model, m.checkpoint)
            if missing:
                self._print(f"initialised from {m.checkpoint}; {len(missing)} tensors keep their fresh values "
                            f"({', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''})")
        if m.grad_checkpointing:
            model.set_grad_checkpointing(True)
        model.to(self.device)
        if self.channels_last:
            to_channels_last(model)  # channels_last_3d for 3-D convs, channels_last for 2-D ones (flow heads)
        warning = conv3d_precision_warning(model, self.runtime)
        if warning:
            self._print(f"warning: {warning}")
        return model

    # -- stages ---------------------------------------------------------------------------------

    def _build_stage(self, index: int) -> _Stage:
        r, cfg = self.recipe, self.recipe.stages[index]
        distributed = self.dist.world_size > 1
        sync_bn = cfg.global_bn and distributed and self.device.type == "cuda"
        if cfg.global_bn and distributed and not sync_bn:
            self._print(f"stage {cfg.name}: global_bn needs CUDA (SyncBatchNorm); BN statistics stay per process")
        convert_batchnorm(self.model, sync=sync_bn)

        for p in self.model.parameters():
            p.requires_grad_(True)
        objective = create_objective(cfg.objective, self.model, **cfg.objective_cfg)
        # An objective drawing its own views (MSCL, MCL: clips with their optical flow) wraps the training set.
        if is_stream(self.train_set) and type(objective).wrap_train_set is not Objective.wrap_train_set:
            raise ValueError(f"stage {cfg.name!r}: objective {cfg.objective!r} draws its own views of indexed videos; "
                             f"it cannot read a stream (data.kind {r.data.kind!r}): use a folder/csv/... layout")
        train_data = objective.wrap_train_set(self.train_set)
        if source_dataset(self.train_loader) is not train_data:
            seed = self.train_loader.sampler.seed
            self.train_loader = self._loader(train_data, train=True, batch_size=r.data.batch_size)
            self.train_loader.sampler.seed = seed
        objective.to(self.device)
        self.runtime.switch_weight_grads(objective)  # CPU: weight gradients as convolutions where faster
        self.runtime.switch_temporal_convs(objective)  # CPU: kt x 1 x 1 convolutions through oneDNN's 2-D kernel
        params, self._recipe_frozen = select_parameters(objective, self.model, cfg.freeze, cfg.trainable, cfg.name)

        global_batch = r.data.batch_size * self.dist.world_size * r.optim.accum_steps
        lr = scaled_lr(cfg.lr if cfg.lr is not None else r.optim.lr, global_batch, r.optim.base_batch_size)
        optimizer = build_optimizer(params, r.optim, lr)

        epochs, steps_per_epoch, warmup = stage_schedule(r, cfg, len(self.train_loader.sampler), len(self.train_set))
        scheduler = build_scheduler(optimizer, r.optim, epochs * steps_per_epoch, warmup)
        scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)

        forward: nn.Module = objective
        if r.compile:  # the objective (model + loss) as one graph; falls back to eager, saying why
            forward = CompiledObjective(objective, r.compile_mode, r.compile_backend, r.compile_recompile_limit,
                                        label=f"stage {cfg.name!r}", log=self._print)
        if distributed:
            forward = DistributedDataParallel(
                forward, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=True)
        n_train = sum(p.numel() for _, p in params)
        self._print(f"stage {index + 1}/{len(r.stages)} {cfg.name!r}: objective {cfg.objective!r}, "
                    f"{n_train / 1e6:.2f}M trainable parameters, {epochs} epochs x {steps_per_epoch} steps, "
                    f"lr {lr:.4g} (global batch {global_batch}), warm-up {warmup} steps")
        return _Stage(index, cfg.name, objective, forward, optimizer, scheduler, scaler, epochs, steps_per_epoch, lr)

    def _set_train_mode(self, stage: _Stage) -> None:
        stage.objective.train()
        # Batch norms the recipe froze keep their statistics (a linear probe sees fixed features).
        for name, module in self.model.named_modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.affine:
                if all(f"{name}.{p}" in self._recipe_frozen for p in ("weight", "bias")):
                    module.eval()

    # -- checkpoints ----------------------------------------------------------------------------

    def _payload(self, stage: _Stage | None, finished: bool, metrics: dict[str, Any]) -> dict[str, Any]:
        rng_states = all_gather_objects(get_rng_state())
        payload: dict[str, Any] = {
            "model": self.model.state_dict(),
            "model_name": self.recipe.model.name,
            "model_args": self.model_args(),
            "num_classes": self.num_classes,
            "label_names": list(self.classes),
            "recipe": recipe_to_dict(self.recipe),
            "pretrained_cfg": self.data_cfg,
            "rng": rng_states,
            "epoch": self.epoch,
            "step": self.step,
            "step_in_epoch": self.step_in_epoch,
            "epoch_sums": dict(self.epoch_sums),
            "stage": self.stage_index,
            "stage_name": self.recipe.stages[min(self.stage_index, len(self.recipe.stages) - 1)].name,
            "finished": finished,
            "metrics": metrics,
            "best_top1": self.best_top1,
        }
        if is_stream(self.train_set):  # the stream readers' positions, for an exact resume (zoo.train.streaming)
            payload["data_state"] = all_gather_objects(data_state(self.train_loader))
        if stage is not None:
            payload.update(optimizer=stage.optimizer.state_dict(), scheduler=stage.scheduler.state_dict(),
                           scaler=stage.scaler.state_dict(), optimizer_stage=stage.index)
            extra = {k: v for k, v in stage.objective.state_dict().items() if not k.startswith("model.")}
            if extra:
                payload["objective"] = extra
        return payload

    def save(self, stage: _Stage | None, finished: bool = False, metrics: dict[str, Any] | None = None,
             also: Sequence[str] = ()) -> Path:
        """Write ``last.pt`` (and the names in ``also``, e.g. ``stage_joint.pt``, ``best.pt``) on rank 0; every
        rank takes part."""
        with self.times.timed("checkpoint_s"):
            payload = self._payload(stage, finished, metrics or {})
            path = self.run_dir / "last.pt"
            if self.is_main:
                save_checkpoint(payload, path)
                for name in also:
                    link_or_copy(path, self.run_dir / name)
            barrier()
        return path

    def _restore(self, ckpt: dict[str, Any], stage: _Stage) -> None:
        """Load the optimizer, scheduler and scaler of ``stage`` (when the checkpoint was taken in it) and the RNG."""
        if ckpt.get("optimizer_stage") == stage.index:
            stage.optimizer.load_state_dict(ckpt["optimizer"])
            stage.scheduler.load_state_dict(ckpt["scheduler"])
            stage.scaler.load_state_dict(ckpt["scaler"])
            if "objective" in ckpt:
                stage.objective.load_state_dict(ckpt["objective"], strict=False)
        states = ckpt["rng"]
        if len(states) != self.dist.world_size:
            self._print(f"resuming {len(states)} processes' RNG states on {self.dist.world_size} processes")
        set_rng_state(states[self.dist.rank % len(states)])

    # -- the loop -------------------------------------------------------------------------------

    def run(self) -> RunResult:
        """Train every stage (resuming where a previous run stopped), evaluate, plot; return the result."""
        start_time = time.perf_counter()
        self.times = TimeSplit()
        r = self.recipe
        self.runtime = setup_runtime(r)
        self.train_set = recipe_dataset(r, r.data.train_split, train=True)
        self.classes = list(self.train_set.classes)
        self.num_classes = r.model.num_classes or len(self.classes)
        self.val_set = recipe_dataset(r, r.eval.split or r.data.val_split, train=False)
        self.data_cfg = self._data_cfg()
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "recipe.yaml").write_text(recipe_to_yaml(r))
        self.logger = MetricsLogger(self.run_dir, enabled=self.is_main)
        self.model = self._build_model()

        ckpt = load_training_checkpoint(self.resume_from) if self.resume_from else None
        self.step = self.epoch = self.stage_index = self.step_in_epoch = 0
        self.best_top1 = -1.0
        self.bad_files = BadFileReport()
        self.epoch_sums: dict[str, float] = {}
        self.final_metrics: dict[str, Any] | None = None
        if ckpt is not None:
            self.model.load_state_dict(ckpt["model"])
            self.step, self.epoch, self.stage_index = ckpt["step"], ckpt["epoch"], ckpt["stage"]
            self.step_in_epoch, self.best_top1 = ckpt["step_in_epoch"], ckpt.get("best_top1", -1.0)
            self.epoch_sums = dict(ckpt.get("epoch_sums", {}))
            self.logger.truncate(self.step)
            if ckpt["finished"]:
                self._print(f"{self.run_dir} holds a finished run; its results are reported below "
                            f"(set output_dir=... for a new run)")
                return RunResult(r.name, self.run_dir, self.resume_from, ckpt["metrics"],
                                 sorted(self.run_dir.glob("*.png")), 0.0)
            self._print(f"resuming {self.resume_from}: stage {ckpt['stage_name']!r} at epoch {self.epoch + 1} "
                        f"(epochs counted from 1), step {self.step}")

        self.train_loader = self._loader(self.train_set, train=True, batch_size=r.data.batch_size)
        if ckpt is not None and ckpt.get("data_state"):
            states = ckpt["data_state"]
            load_data_state(self.train_loader, states[self.dist.rank] if len(states) == self.dist.world_size else None)
        eval_batch = r.eval.batch_size or r.data.batch_size
        self.val_loader = self._loader(self.val_set, train=False, batch_size=eval_batch)
        self.times.seconds["setup_s"] = time.perf_counter() - start_time
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
        main_thread = in_main_thread()
        if main_thread:
            for sig in previous:
                signal.signal(sig, self._on_signal)
        try:
            for index in range(self.stage_index, len(r.stages)):
                self._train_stage(index, ckpt if ckpt is not None and index == ckpt["stage"] else None)
            metrics = self.final_metrics if self.final_metrics is not None else self.final_evaluation()
            self._report_all_bad_files()
            path = self.save(None, finished=True, metrics=metrics)
            with self.times.timed("plots_s"):
                plots = plot_curves(read_metrics(self.logger.path), self.run_dir, title=r.name) if self.is_main else []
            if self.is_main and (self.run_dir / "confusion_matrix.png").is_file():
                plots.append(self.run_dir / "confusion_matrix.png")
            wall_time_s = time.perf_counter() - start_time
            split = self.times.finish(wall_time_s)
            self.logger.log({"kind": "time", "step": self.step, "wall_time_s": round(wall_time_s, 2), **split})
        finally:
            if main_thread:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
            self.logger.close()  # also when the run stops early (its TensorBoard file complete)
        self._print(time_line(wall_time_s, split))
        return RunResult(r.name, self.run_dir, path, metrics, plots, wall_time_s, split)

    def _train_stage(self, index: int, ckpt: dict[str, Any] | None) -> None:
        r = self.recipe
        cfg = r.stages[index]
        self.stage_index = index
        stage_seed = r.seed + 1000 * index
        self.train_loader.sampler.seed = stage_seed
        stage = self._build_stage(index)
        if ckpt is None:
            self.epoch = self.step_in_epoch = 0
        else:
            self._restore(ckpt, stage)
        if self.epoch == 0 and self.step_in_epoch == 0:
            torch.manual_seed(stage_seed + self.dist.rank)  # dropout & co. of this stage, per rank
        for epoch in range(self.epoch, stage.epochs):
            self.epoch = epoch
            record = self._train_epoch(stage)
            self.epoch, self.step_in_epoch = epoch + 1, 0
            last_epoch = epoch + 1 == stage.epochs
            every = r.eval.every
            if cfg.evaluate and last_epoch and index == len(r.stages) - 1:
                # The end of the run: the final evaluation gives this epoch's validation numbers too.
                self.final_metrics = self.final_evaluation()  # (timed as final_eval_s)
                if r.eval.accuracy:
                    record.update({f"val_{k}": self.final_metrics[k] for k in ("top1", "top5", "loss")})
            elif cfg.evaluate and (last_epoch or (every and (epoch + 1) % every == 0)):
                val_start = time.perf_counter()
                record.update(self.validate())
                record["val_time_s"] = time.perf_counter() - val_start
                self.times.seconds["val_s"] += record["val_time_s"]
            also = [f"stage_{cfg.name}.pt"] if last_epoch and r.save_stage_checkpoints else []
            if "val_top1" in record:
                if record["val_top1"] > self.best_top1:
                    also.append("best.pt")  # the best validation top-1 so far (this epoch's weights)
                self.best_top1 = max(self.best_top1, record["val_top1"])
            self.logger.log(record)
            self._print_epoch(stage, record)
            self._report_new_bad_files()
            if last_epoch:
                self.stage_index, self.epoch = index + 1, 0
            path = self.save(stage, also=also)
            if last_epoch:
                self.stage_index = index
            if self._stop_requested() and not (last_epoch and index == len(r.stages) - 1):
                raise TrainingInterrupted(path, self._stop_signal or "another rank's stop")

    def _print_epoch(self, stage: _Stage, record: dict[str, Any]) -> None:
        clips = stage.steps_per_epoch * self.recipe.optim.accum_steps * self.recipe.data.batch_size * \
            self.dist.world_size
        self._print(epoch_line(stage.name, stage.epochs, record, clips))

    def _report_new_bad_files(self) -> None:
        line = self.bad_files.update(self.train_set)
        if line:
            self._print(line)

    def _report_all_bad_files(self) -> None:
        if self.is_main and self.bad_files.files:
            self._print(self.bad_files.summary())

    def _stop_requested(self) -> bool:
        """A stop requested on any rank (every rank must call this at the same point)."""
        return any_rank(self._stop_signal is not None, self.device)

    def _train_epoch(self, stage: _Stage) -> dict[str, Any]:
        r = self.recipe
        accum = r.optim.accum_steps
        sampler: ResumableSampler = self.train_loader.sampler
        sampler.set_epoch(self.epoch)
        sampler.set_start(self.step_in_epoch * accum * r.data.batch_size)
        self._set_train_mode(stage)
        batches = iter(self.train_loader)
        sums: dict[str, float] = {}
        if self.step_in_epoch == 0:
            self.epoch_sums = {}
        clips_seen, window_start, window_steps = 0, time.perf_counter(), 0
        epoch_start_time = time.perf_counter()
        data_wait_s = 0.0  # time the loop waited for batches (data loading that did not overlap the steps)
        bar = tqdm(total=stage.steps_per_epoch, initial=self.step_in_epoch, unit="step", leave=False,
                   desc=f"{stage.name} {self.epoch + 1}/{stage.epochs}", disable=not self._bars)
        try:
            while self.step_in_epoch < stage.steps_per_epoch:
                wait_start = time.perf_counter()
                micro_batches = [next(batches) for _ in range(accum)]
                data_wait_s += time.perf_counter() - wait_start
                values = self._optimizer_step(stage, micro_batches)
                clips_seen += accum * r.data.batch_size * self.dist.world_size
                self.step += 1
                self.step_in_epoch += 1
                window_steps += 1
                for k, v in values.items():
                    sums[k] = sums.get(k, 0.0) + v
                    self.epoch_sums[k] = self.epoch_sums.get(k, 0.0) + v
                elapsed = time.perf_counter() - window_start
                bar.update()
                bar.set_postfix(loss=f"{values['loss']:.4f}", clips_s=f"{clips_seen / max(elapsed, 1e-9):.1f}",
                                lr=f"{stage.scheduler.get_last_lr()[0]:.3g}", refresh=False)
                if self.step % r.log_every == 0 or self.step_in_epoch == stage.steps_per_epoch:
                    means = self._mean_over_ranks({k: v / window_steps for k, v in sums.items()})
                    self.logger.log({"kind": "train", "stage": stage.name, "epoch": self.epoch, "step": self.step,
                                     "lr": stage.scheduler.get_last_lr()[0], **means,
                                     "clips_per_s": clips_seen / max(elapsed, 1e-9)})
                    if r.progress and not self._bars:  # a log file, not a terminal: a plain line instead of a bar
                        self._print(f"  {stage.name} epoch {self.epoch + 1}/{stage.epochs} step "
                                    f"{self.step_in_epoch}/{stage.steps_per_epoch}: loss {means.get('loss', 0.0):.4f}, "
                                    f"{clips_seen / max(elapsed, 1e-9):.1f} clips/s")
                    sums, clips_seen, window_start, window_steps = {}, 0, time.perf_counter(), 0
                for callback in self.callbacks:
                    callback(self)
                # A stop at the epoch's last step waits for the epoch's end (validation, checkpoint).
                if self.step_in_epoch < stage.steps_per_epoch and self._stop_requested():
                    bar.close()
                    raise TrainingInterrupted(self.save(stage), self._stop_signal or "another rank's stop")
        finally:
            bar.close()
        means = self._mean_over_ranks({k: v / stage.steps_per_epoch for k, v in self.epoch_sums.items()})
        record = {"kind": "epoch", "stage": stage.name, "epoch": self.epoch + 1, "step": self.step,
                  "lr": stage.scheduler.get_last_lr()[0], "epoch_time_s": time.perf_counter() - epoch_start_time,
                  "data_wait_s": data_wait_s}
        self.times.seconds["train_s"] += record["epoch_time_s"]
        self.times.seconds["data_wait_s"] += data_wait_s
        record.update({f"train_{k}": v for k, v in means.items()})
        return record

    def _mean_over_ranks(self, values: dict[str, float]) -> dict[str, float]:
        if self.dist.world_size == 1 or not values:
            return values
        keys = sorted(values)
        means = all_reduce_mean(torch.tensor([values[k] for k in keys], dtype=torch.float64, device=self.device))
        return dict(zip(keys, means.tolist()))

    def _optimizer_step(self, stage: _Stage, batches: list[dict[str, Any]]) -> dict[str, float]:
        r = self.recipe
        accum = len(batches)
        autocast = self.runtime.autocast()
        totals: dict[str, float] = {}
        for i, batch in enumerate(batches):
            clips = batch["video"].to(self.device, non_blocking=True)
            if self.channels_last:
                clips = clips.contiguous(memory_format=torch.channels_last_3d)
            labels = batch["label"].to(self.device, non_blocking=True)
            # A per-video target drawn with the views (MCL: which half of the video the anchor comes from).
            extra = {"view_target": batch["view_target"].to(self.device, non_blocking=True)} \
                if "view_target" in batch else {}
            sync = i == accum - 1 or not isinstance(stage.forward, DistributedDataParallel)
            with (contextlib.nullcontext() if sync else stage.forward.no_sync()), autocast:
                out = stage.forward(clips, labels, **extra)
            loss = out["loss"]
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"stage {stage.name!r}: the loss is {loss.item()} at step {self.step + 1}; "
                    "lower optim.lr, set optim.clip_grad, or use amp=bf16 instead of fp16")
            stage.scaler.scale(loss / accum).backward()
            for k, v in out.items():
                if torch.is_tensor(v) and v.numel() == 1:
                    totals[k] = totals.get(k, 0.0) + float(v.detach()) / accum
        if r.optim.clip_grad:
            stage.scaler.unscale_(stage.optimizer)
            params = [p for g in stage.optimizer.param_groups for p in g["params"]]
            totals["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(params, r.optim.clip_grad))
        stage.scaler.step(stage.optimizer)
        stage.scaler.update()
        stage.optimizer.zero_grad(set_to_none=True)
        stage.scheduler.step()
        # per-step updates of the objective (momentum encoders)
        stage.objective.after_step(self.epoch * stage.steps_per_epoch + self.step_in_epoch + 1,
                                   stage.epochs * stage.steps_per_epoch, stage.steps_per_epoch)
        return totals

    # -- evaluation -----------------------------------------------------------------------------

    def validate(self) -> dict[str, float]:
        """Single-view validation: top-1, top-5 (percent) and the loss of the averaged softmax."""
        out = predict(self.model, self.val_loader, self.device, self.amp_dtype, self.channels_last,
                      progress=self._bars, desc="val")
        acc = topk_accuracy(out["scores"], out["labels"])
        return {"val_top1": acc["top1"], "val_top5": acc["top5"], "val_loss": nll(out)}

    def final_evaluation(self) -> dict[str, Any]:
        """Evaluate the trained model as the recipe's ``eval`` section asks; write ``eval.json``."""
        r = self.recipe
        with self.times.timed("final_eval_s"):
            return evaluate_model(self.model, recipe_eval_loaders(r, self.runtime, self.val_loader), r.eval,
                                  self.runtime, split=r.eval.split or r.data.val_split, classes=self.classes,
                                  out_dir=self.run_dir, title=r.name, progress=self._bars)


def train(recipe: Recipe | str | os.PathLike, overrides: Sequence[str] = (), resume: str | os.PathLike | None = None,
          callbacks: Sequence[Callable[[Trainer], None]] = ()) -> RunResult:
    """Train a recipe (a :class:`Recipe` or a YAML path, with ``key=value`` overrides); see :class:`Trainer`."""
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe, overrides)
    elif overrides:
        raise ValueError("overrides apply to a recipe file; edit the Recipe object instead")
    return Trainer(recipe, resume=resume, callbacks=callbacks).run()
