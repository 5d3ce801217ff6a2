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
import csv
import fnmatch
import json
import logging
import math
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm.auto import tqdm

from .checkpoint import get_rng_state, init_weights_from, load_training_checkpoint, save_checkpoint, set_rng_state
from .distributed import (
    DistInfo,
    all_gather_objects,
    all_reduce_mean,
    any_rank,
    barrier,
    init_distributed,
)
from .evaluate import (
    confusion_matrix,
    efficacy_score,
    knn_accuracy,
    knn_recall,
    linear_probe_accuracy,
    predict,
    topk_accuracy,
)
from .plots import plot_confusion_matrix, plot_curves, read_metrics
from .recipe import Recipe, load_recipe, recipe_to_dict, recipe_to_yaml

__all__ = [
    "Trainer",
    "RunResult",
    "TrainingInterrupted",
    "MetricsLogger",
    "ResumableSampler",
    "WarmupCosine",
    "train",
    "evaluate_checkpoint",
    "resolve_device",
    "resolve_amp",
    "build_model_from_checkpoint",
    "recipe_dataset",
]

_logger = logging.getLogger(__name__)

# Kinds whose class names say a direction: their default transform does not flip (see zoo.data).
_DIRECTIONAL_KINDS = ("ssv1", "ssv2", "moving_digits")


class TrainingInterrupted(Exception):
    """A run stopped on request (SIGTERM, SIGINT) after saving a checkpoint; run it again to resume."""

    def __init__(self, checkpoint: Path, signal_name: str):
        super().__init__(f"interrupted by {signal_name}; checkpoint saved to {checkpoint}; "
                         "run the same command again to resume")
        self.checkpoint = checkpoint


@dataclass
class RunResult:
    """What a finished run reports: its final metrics and where its files are."""

    name: str
    run_dir: Path
    checkpoint: Path
    metrics: dict[str, Any]
    plots: list[Path] = field(default_factory=list)
    wall_time_s: float = 0.0


# ---------------------------------------------------------------------------------------------
# Devices, precision


def resolve_device(spec: str, local_rank: int = 0) -> torch.device:
    """``'auto'`` (CUDA when present), ``'cpu'``, ``'cuda'`` or ``'cuda:N'``; CUDA asked for but absent raises."""
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(spec)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={spec!r} asked for CUDA, but torch sees no GPU "
                             f"(torch {torch.__version__}, CUDA build {torch.version.cuda}); use device=cpu")
        if device.index is None:
            device = torch.device("cuda", local_rank)
    elif device.type != "cpu":
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N; got {spec!r}")
    return device


def resolve_amp(spec: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``amp`` on ``device``: bf16/fp16 on CUDA, None (full precision) on CPU."""
    if device.type != "cuda" or spec == "none":
        if spec in ("bf16", "fp16") and device.type != "cuda":
            _logger.info("amp=%s applies to CUDA only; training in float32 on %s", spec, device)
        return None
    if spec == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[spec]


# ---------------------------------------------------------------------------------------------
# Data order and per-clip randomness that survive an interruption


class _SeededItems(Dataset):
    """A dataset read with ``(index, seed)`` keys: each item's random choices (clip position, crop,
    flip, replacement of a bad file) come from a generator seeded with ``seed``, not from the
    process's global RNG, which stays untouched."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        index, seed = key
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.dataset[index]


class ResumableSampler(DistributedSampler):
    """torch's ``DistributedSampler`` (this rank's share of a shuffled epoch), yielding
    ``(index, seed)`` keys for :class:`_SeededItems`, and able to start partway through an epoch.

    Args:
        dataset: the dataset (its length).
        num_replicas, rank: the process group's size and this rank.
        seed: the run's seed; the order of epoch e is drawn from ``seed + e``.
        shuffle: shuffle every epoch (training) or keep the order (evaluation).
    """

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, seed: int, shuffle: bool = True):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=False)
        self.start = 0

    def set_start(self, start: int) -> None:
        """Skip this rank's first ``start`` items of the current epoch (resuming mid-epoch)."""
        self.start = start

    def __iter__(self) -> Iterator[tuple[int, int]]:
        indices = list(super().__iter__())
        for position in range(self.start, len(indices)):
            seed = np.random.SeedSequence([self.seed, self.epoch, self.rank, position]).generate_state(1)[0]
            yield indices[position], int(seed)

    def __len__(self) -> int:
        return super().__len__() - self.start


class WarmupCosine:
    """Learning-rate factor of a linear warm-up then a cosine decay, per optimizer step.

    Args:
        total_steps: optimizer steps of the stage.
        warmup_steps: steps of the linear warm-up (from ``start_factor`` to 1).
        start_factor: factor at step 0 of the warm-up.
        min_factor: factor at the last step.
    """

    def __init__(self, total_steps: int, warmup_steps: int, start_factor: float = 0.01, min_factor: float = 0.0):
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps
        self.start_factor = start_factor
        self.min_factor = min_factor

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.start_factor + (1.0 - self.start_factor) * step / self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        return self.min_factor + (1.0 - self.min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))


# ---------------------------------------------------------------------------------------------
# Metrics


class MetricsLogger:
    """Writes training records to ``metrics.jsonl`` (and TensorBoard when installed), epoch rows to
    ``metrics.csv``. Only rank 0 writes; other ranks hold a disabled logger."""

    def __init__(self, run_dir: Path, enabled: bool, tensorboard: bool = True):
        self.path = run_dir / "metrics.jsonl"
        self.csv_path = run_dir / "metrics.csv"
        self.enabled = enabled
        self.writer = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(run_dir / "tensorboard"))
            except ImportError:  # tensorboard is optional
                self.writer = None

    def truncate(self, step: int) -> None:
        """Drop records after optimizer step ``step`` (written by a run that was then interrupted)."""
        if not self.enabled:
            return
        kept = [r for r in read_metrics(self.path) if r["step"] <= step]
        with open(self.path, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in kept)

    def log(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key not in ("step", "epoch"):
                    self.writer.add_scalar(f"{record['kind']}/{key}", value, record["step"])
        if record["kind"] == "epoch":
            self.write_csv()

    def write_csv(self) -> None:
        rows = [r for r in read_metrics(self.path) if r["kind"] == "epoch"]
        columns = list(dict.fromkeys(k for r in rows for k in r))
        with open(self.csv_path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


# ---------------------------------------------------------------------------------------------
# Model helpers


def _convert_batchnorm(module: nn.Module, sync: bool) -> None:
    """Swap BatchNorm layers for SyncBatchNorm (``sync``) or back, in place, keeping their tensors."""
    for name, child in module.named_children():
        target = None
        if sync and isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(child, nn.SyncBatchNorm):
            target = nn.SyncBatchNorm.convert_sync_batchnorm(child)
        elif not sync and isinstance(child, nn.SyncBatchNorm):
            target = nn.BatchNorm3d(child.num_features, child.eps, child.momentum, child.affine,
                                    child.track_running_stats)
            target.load_state_dict(child.state_dict())
            target.to(child.weight.device if child.affine else child.running_mean.device)
            target.train(child.training)
        if target is not None:
            setattr(module, name, target)
        else:
            _convert_batchnorm(child, sync)


def recipe_dataset(recipe: Recipe, split: str | None, train: bool, n_clips: int = 1, n_crops: int = 1) -> Any:
    """The dataset of a recipe's ``split`` as a run reads it (its transform, sampling, reader)."""
    from ..data import create_dataset, create_video_transform

    d = recipe.data
    transform = None
    if any(v is not None for v in (d.train_short_side, d.test_short_side, d.mean, d.std)):
        input_size = d.input_size or 224
        hflip = d.hflip if d.hflip is not None else d.kind not in _DIRECTIONAL_KINDS
        short_side = tuple(d.train_short_side) if train and d.train_short_side else (
            d.test_short_side if not train else None)
        extra = {k: tuple(v) for k, v in (("mean", d.mean), ("std", d.std)) if v is not None}
        transform = create_video_transform(train, input_size=input_size, short_side=short_side,
                                           n_crops=1 if train else n_crops, hflip=hflip, **extra)
    return create_dataset(
        d.kind, d.root, split=split, num_frames=d.num_frames, frame_stride=d.frame_stride, train=train,
        reader=d.reader, strict=d.strict, transform=transform, sampling=d.sampling, n_clips=n_clips,
        n_crops=n_crops, input_size=d.input_size, hflip=d.hflip, temporal_jitter=d.temporal_jitter and train,
        **d.options,
    )


class _CallableObjective(nn.Module):
    """An ``nn.Module`` face for an objective that is a plain callable (so that DDP can wrap it)."""

    def __init__(self, model: nn.Module, objective: Callable[..., dict[str, torch.Tensor]]):
        super().__init__()
        self.model = model
        self.objective = objective

    def forward(self, clips: torch.Tensor, labels: torch.Tensor | None = None, **extra: Any
                ) -> dict[str, torch.Tensor]:
        return self.objective(clips, labels, **extra)

    def train(self, mode: bool = True) -> _CallableObjective:
        """Train/eval modes as the objective sets them (its frozen parts stay in eval mode)."""
        super().train(mode)
        if hasattr(self.objective, "train"):
            self.objective.train(mode)
        return self


def _matches(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def build_model_from_checkpoint(ckpt: dict[str, Any]) -> nn.Module:
    """A model built from a training checkpoint's ``model_name`` and ``model_args``, its weights loaded."""
    from .. import create_model

    model = create_model(ckpt["model_name"], num_classes=ckpt["num_classes"], **ckpt["model_args"])
    model.load_state_dict(ckpt["model"])
    return model


# ---------------------------------------------------------------------------------------------
# The trainer


@dataclass
class _Stage:
    """What one stage trains with."""

    index: int
    name: str
    objective: nn.Module
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
        self.dist: DistInfo = DistInfo()
        self.device = torch.device("cpu")
        self.amp_dtype: torch.dtype | None = None
        self.channels_last = False
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
        return self.dist.is_main

    def _print(self, *args: Any) -> None:
        if self.is_main:
            print(*args, flush=True)

    def _setup_runtime(self) -> None:
        r = self.recipe
        spec_type = "cuda" if r.device.startswith("cuda") or (r.device == "auto" and torch.cuda.is_available()) \
            else "cpu"
        if spec_type == "cuda" and not torch.cuda.is_available():
            resolve_device(r.device)  # raises the clear message
        self.dist = init_distributed(spec_type)
        self.device = resolve_device(r.device, self.dist.local_rank)
        self.amp_dtype = resolve_amp(r.amp, self.device)
        self.channels_last = r.channels_last if r.channels_last is not None else self.device.type == "cuda"
        if r.threads:
            torch.set_num_threads(r.threads)
        if r.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        elif self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True

    def _dataset(self, split: str, train: bool, n_clips: int = 1, n_crops: int = 1) -> Any:
        return recipe_dataset(self.recipe, split, train, n_clips, n_crops)

    def _loader(self, dataset: Dataset, train: bool, batch_size: int, seed: int = 0) -> DataLoader:
        from ..data import video_collate

        sampler = ResumableSampler(dataset, self.dist.world_size, self.dist.rank, seed=seed, shuffle=train)
        workers = self.recipe.data.num_workers
        # Its own generator: starting an iterator then draws the workers' base seed from it, not from the
        # global RNG (which a resumed run restores and must not see consumed an extra time).
        return DataLoader(
            _SeededItems(dataset), batch_size=batch_size, sampler=sampler, num_workers=workers,
            generator=torch.Generator().manual_seed(seed),
            collate_fn=video_collate, pin_memory=self.device.type == "cuda", drop_last=train,
            persistent_workers=workers > 0, prefetch_factor=2 if workers > 0 else None,
        )

    def _data_cfg(self) -> dict[str, Any]:
        """What a user of the trained weights needs to feed them: the pretrained-cfg fields of the data."""
        from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD

        d = self.recipe.data
        c, t, h, w = self.val_set[0]["video"].shape[-4:]
        return {"input_size": [int(c), int(t), int(h), int(w)], "frame_stride": d.frame_stride,
                "mean": list(d.mean or IMAGENET_MEAN), "std": list(d.std or IMAGENET_STD), "dataset": d.kind}

    def model_args(self) -> dict[str, Any]:
        """The keyword arguments of ``create_model``, besides the name and ``num_classes``, that rebuild this
        run's model."""
        m = self.recipe.model
        args = {k: v for k, v in m.kwargs.items() if v is not None}
        if m.adapter:
            args.update(adapter=m.adapter, adapter_cfg=dict(m.adapter_cfg))
        return args

    def _build_model(self) -> nn.Module:
        from .. import create_model

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
            model.to(memory_format=torch.channels_last_3d)
        return model

    # -- stages ---------------------------------------------------------------------------------

    def _build_stage(self, index: int) -> _Stage:
        from ..methods import create_objective

        r, cfg = self.recipe, self.recipe.stages[index]
        distributed = self.dist.world_size > 1
        sync_bn = cfg.global_bn and distributed and self.device.type == "cuda"
        if cfg.global_bn and distributed and not sync_bn:
            self._print(f"stage {cfg.name}: global_bn needs CUDA (SyncBatchNorm); BN statistics stay per process")
        _convert_batchnorm(self.model, sync=sync_bn)

        for p in self.model.parameters():
            p.requires_grad_(True)
        raw = create_objective(cfg.objective, self.model, **cfg.objective_cfg)
        # An objective drawing its own views (MSCL, MCL: clips with their optical flow) wraps the training set.
        train_data = raw.wrap_train_set(self.train_set) if hasattr(raw, "wrap_train_set") else self.train_set
        if self.train_loader.dataset.dataset is not train_data:
            seed = self.train_loader.sampler.seed
            self.train_loader = self._loader(train_data, train=True, batch_size=r.data.batch_size)
            self.train_loader.sampler.seed = seed
        objective = raw if isinstance(raw, nn.Module) else _CallableObjective(self.model, raw)
        objective.to(self.device)
        candidates = list(raw.trainable_parameters()) if hasattr(raw, "trainable_parameters") \
            else [p for p in objective.parameters() if p.requires_grad]
        chosen = {id(p) for p in candidates}
        self._recipe_frozen: set[str] = set()
        for name, p in self.model.named_parameters():
            frozen = _matches(name, cfg.freeze) or (cfg.trainable is not None and not _matches(name, cfg.trainable))
            if frozen:
                self._recipe_frozen.add(name)
                chosen.discard(id(p))
        for p in objective.parameters():
            p.requires_grad_(id(p) in chosen)
        params = [(n, p) for n, p in objective.named_parameters() if p.requires_grad]
        if not params:
            raise ValueError(f"stage {cfg.name!r}: nothing to train (its objective and freeze/trainable "
                             "patterns leave no parameter trainable)")

        global_batch = r.data.batch_size * self.dist.world_size * r.optim.accum_steps
        lr = (cfg.lr if cfg.lr is not None else r.optim.lr) * global_batch / r.optim.base_batch_size
        decay = [p for n, p in params if p.ndim > 1 or r.optim.decay_norm_and_bias]
        no_decay = [p for n, p in params if not (p.ndim > 1 or r.optim.decay_norm_and_bias)]
        groups = [{"params": decay, "weight_decay": r.optim.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        groups = [g for g in groups if g["params"]]
        if r.optim.name == "sgd":
            optimizer = torch.optim.SGD(groups, lr=lr, momentum=r.optim.momentum, nesterov=r.optim.nesterov)
        else:
            optimizer = torch.optim.AdamW(groups, lr=lr, betas=tuple(r.optim.betas))

        epochs = min(cfg.epochs, r.max_epochs) if r.max_epochs else cfg.epochs
        batches = len(self.train_loader.sampler) // r.data.batch_size
        steps_per_epoch = batches // r.optim.accum_steps
        if r.max_steps_per_epoch:
            steps_per_epoch = min(steps_per_epoch, r.max_steps_per_epoch)
        if steps_per_epoch < 1:
            raise ValueError(
                f"the training split has {len(self.train_set)} videos: fewer than one step of "
                f"{r.data.batch_size} x {r.optim.accum_steps} clips per process; lower data.batch_size")
        total = epochs * steps_per_epoch
        warmup = round(cfg.warmup_epochs * steps_per_epoch) if epochs == cfg.epochs else \
            round(cfg.warmup_epochs / cfg.epochs * total)
        schedule = WarmupCosine(total, warmup, r.optim.warmup_start_factor, r.optim.min_lr_factor)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)

        forward: nn.Module = objective
        if distributed:
            forward = DistributedDataParallel(
                objective, device_ids=[self.device.index] if self.device.type == "cuda" else None,
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
        if stage is not None:
            payload.update(optimizer=stage.optimizer.state_dict(), scheduler=stage.scheduler.state_dict(),
                           scaler=stage.scaler.state_dict(), optimizer_stage=stage.index)
            extra = {k: v for k, v in stage.objective.state_dict().items() if not k.startswith("model.")}
            if extra:
                payload["objective"] = extra
        return payload

    def save(self, stage: _Stage | None, finished: bool = False, metrics: dict[str, Any] | None = None,
             also: str | None = None) -> Path:
        """Write ``last.pt`` (and ``also``, e.g. ``stage_joint.pt``) on rank 0; every rank takes part."""
        payload = self._payload(stage, finished, metrics or {})
        path = self.run_dir / "last.pt"
        if self.is_main:
            save_checkpoint(payload, path)
            if also:
                _link_or_copy(path, self.run_dir / also)
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
        self._setup_runtime()
        r = self.recipe
        self.train_set = self._dataset(r.data.train_split, train=True)
        self.classes = list(self.train_set.classes)
        self.num_classes = r.model.num_classes or len(self.classes)
        self.val_set = self._dataset(r.eval.split or r.data.val_split, train=False)
        self.data_cfg = self._data_cfg()
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "recipe.yaml").write_text(recipe_to_yaml(r))
        self.logger = MetricsLogger(self.run_dir, enabled=self.is_main)
        self.model = self._build_model()

        ckpt = load_training_checkpoint(self.resume_from) if self.resume_from else None
        self.step = self.epoch = self.stage_index = self.step_in_epoch = 0
        self.best_top1 = -1.0
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
            self._print(f"resuming {self.resume_from}: stage {ckpt['stage_name']!r}, epoch {self.epoch}, "
                        f"step {self.step}")

        self.train_loader = self._loader(self.train_set, train=True, batch_size=r.data.batch_size)
        eval_batch = r.eval.batch_size or r.data.batch_size
        self.val_loader = self._loader(self.val_set, train=False, batch_size=eval_batch)
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
        in_main_thread = _in_main_thread()
        if in_main_thread:
            for sig in previous:
                signal.signal(sig, self._on_signal)
        try:
            for index in range(self.stage_index, len(r.stages)):
                self._train_stage(index, ckpt if ckpt is not None and index == ckpt["stage"] else None)
            metrics = self.final_metrics if self.final_metrics is not None else self.final_evaluation()
            path = self.save(None, finished=True, metrics=metrics)
        finally:
            if in_main_thread:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
            self.logger.close()
        plots = plot_curves(read_metrics(self.logger.path), self.run_dir, title=r.name) if self.is_main else []
        if self.is_main and (self.run_dir / "confusion_matrix.png").is_file():
            plots.append(self.run_dir / "confusion_matrix.png")
        return RunResult(r.name, self.run_dir, path, metrics, plots, time.perf_counter() - start_time)

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
                self.final_metrics = self.final_evaluation()
                if r.eval.accuracy:
                    record.update({f"val_{k}": self.final_metrics[k] for k in ("top1", "top5", "loss")})
            elif cfg.evaluate and (last_epoch or (every and (epoch + 1) % every == 0)):
                record.update(self.validate())
            if "val_top1" in record:
                self.best_top1 = max(self.best_top1, record["val_top1"])
            self.logger.log(record)
            bad = self.train_set.report_bad_files(reset=True)
            if bad and self.is_main:
                self._print(f"{len(bad)} unreadable videos were replaced this epoch (listed in the log above)")
            if last_epoch:
                self.stage_index, self.epoch = index + 1, 0
            path = self.save(stage, also=f"stage_{cfg.name}.pt" if last_epoch else None)
            if last_epoch:
                self.stage_index = index
            if self._stop_requested() and not (last_epoch and index == len(r.stages) - 1):
                raise TrainingInterrupted(path, self._stop_signal or "another rank's stop")

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
        bar = tqdm(total=stage.steps_per_epoch, initial=self.step_in_epoch, unit="step", leave=False,
                   desc=f"{stage.name} {self.epoch + 1}/{stage.epochs}", disable=not (self.is_main and r.progress))
        try:
            while self.step_in_epoch < stage.steps_per_epoch:
                values = self._optimizer_step(stage, [next(batches) for _ in range(accum)])
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
                  "lr": stage.scheduler.get_last_lr()[0], "epoch_time_s": time.perf_counter() - epoch_start_time}
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
        autocast = torch.autocast(self.device.type, dtype=self.amp_dtype) if self.amp_dtype is not None \
            else contextlib.nullcontext()
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
        if hasattr(stage.objective, "after_step"):  # per-step updates of the objective (momentum encoders)
            stage.objective.after_step(self.epoch * stage.steps_per_epoch + self.step_in_epoch + 1,
                                       stage.epochs * stage.steps_per_epoch, stage.steps_per_epoch)
        return totals

    # -- evaluation -----------------------------------------------------------------------------

    def validate(self) -> dict[str, float]:
        """Single-view validation: top-1, top-5 (percent) and the loss of the averaged softmax."""
        out = predict(self.model, self.val_loader, self.device, self.amp_dtype, self.channels_last,
                      progress=self.recipe.progress, desc="val")
        acc = topk_accuracy(out["scores"], out["labels"])
        return {"val_top1": acc["top1"], "val_top5": acc["top5"], "val_loss": _nll(out)}

    def final_evaluation(self) -> dict[str, Any]:
        """Evaluate the trained model as the recipe's ``eval`` section asks; write ``eval.json``."""
        metrics = evaluate_model(self.model, self.recipe, self, self.classes, self.run_dir)
        return metrics


def _link_or_copy(source: Path, target: Path) -> None:
    """Make ``target`` a hard link to ``source`` (no second write; ``last.pt`` is later replaced, not
    rewritten in place, so the link keeps this version), or a copy where links are not supported."""
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


# ---------------------------------------------------------------------------------------------
# Evaluation of a trained model (end of training, and `zoo eval`)


def evaluate_model(model: nn.Module, recipe: Recipe, trainer: Trainer, classes: Sequence[str],
                   out_dir: Path) -> dict[str, Any]:
    """Single-view and multi-view accuracy, confusion matrix, kNN recall and efficacy, as ``recipe.eval`` asks.

    Writes ``eval.json`` (and ``confusion_matrix.png``) to ``out_dir`` on rank 0 and returns the metrics.
    """
    e = recipe.eval
    split = e.split or recipe.data.val_split
    eval_batch = e.batch_size or recipe.data.batch_size
    want_features = bool(e.knn) or e.efficacy
    run = dict(device=trainer.device, amp_dtype=trainer.amp_dtype, channels_last=trainer.channels_last,
               progress=recipe.progress)
    single = predict(model, trainer.val_loader, features=e.features if want_features else False,
                     desc=f"eval {split}", **run)
    metrics: dict[str, Any] = {"split": split, "videos": len(single["labels"])}
    if e.accuracy:
        metrics.update(topk_accuracy(single["scores"], single["labels"]), loss=_nll(single))
    final = single
    views = e.n_clips * e.n_crops
    if views > 1 and e.accuracy:
        multi_set = trainer._dataset(split, train=False, n_clips=e.n_clips, n_crops=e.n_crops)
        loader = trainer._loader(multi_set, train=False, batch_size=max(1, eval_batch // views))
        final = predict(model, loader, desc=f"eval {split} {e.n_clips}x{e.n_crops} views", **run)
        multi = topk_accuracy(final["scores"], final["labels"])
        metrics.update({f"multiview_{k}": v for k, v in multi.items()}, views=f"{e.n_clips}x{e.n_crops}")
    if want_features:
        gallery_set = trainer._dataset(recipe.data.train_split, train=False)
        gallery_loader = trainer._loader(gallery_set, train=False, batch_size=eval_batch)
        gallery = predict(model, gallery_loader, features=e.features, desc="features of the training split", **run)
        if e.knn:
            metrics.update({f"knn_{k}": v for k, v in knn_recall(
                single["features"], single["labels"], gallery["features"], gallery["labels"], e.knn).items()})
            metrics[f"knn_top1@{max(e.knn)}"] = knn_accuracy(
                single["features"], single["labels"], gallery["features"], gallery["labels"], max(e.knn))
        if e.efficacy:
            train_acc, test_acc = linear_probe_accuracy(gallery["features"], gallery["labels"],
                                                        single["features"], single["labels"])
            metrics.update(probe_train_top1=train_acc, probe_val_top1=test_acc,
                           efficacy=efficacy_score(train_acc, test_acc))
    if trainer.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        saved = _json_safe(metrics)
        if e.confusion_matrix and e.accuracy:
            matrix = confusion_matrix(final["scores"].argmax(1), final["labels"], final["scores"].shape[1])
            names = list(classes) + [str(i) for i in range(len(classes), matrix.shape[0])]
            top1 = metrics.get("multiview_top1", metrics["top1"])
            plot_confusion_matrix(matrix, names, out_dir / "confusion_matrix.png",
                                  title=f"{recipe.name}: {split}, top-1 {top1:.1f}%")
            saved["confusion_matrix"] = matrix.tolist()  # rows: true class, columns: predicted; counts
        (out_dir / "eval.json").write_text(json.dumps(saved, indent=2) + "\n")
    return metrics


def _nll(predictions: dict[str, torch.Tensor]) -> float:
    """Mean negative log-likelihood of the true class under the (view-averaged) softmax."""
    p = predictions["scores"].gather(1, predictions["labels"][:, None])
    return -p.clamp(min=1e-12).log().mean().item()


def _json_safe(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}


def evaluate_checkpoint(recipe: Recipe, checkpoint: str | os.PathLike | None = None) -> dict[str, Any]:
    """``zoo eval``: evaluate a checkpoint (default: the run folder's ``last.pt``) as ``recipe.eval`` asks.

    The model is rebuilt from the checkpoint's ``model_name`` and ``model_args``; the data and
    evaluation settings come from the recipe. Writes ``eval.json`` beside the checkpoint.
    """
    trainer = Trainer(recipe, resume=None)
    path = Path(checkpoint or recipe.checkpoint or trainer.run_dir / "last.pt")
    if path.is_dir():
        path = path / "last.pt"
    ckpt = load_training_checkpoint(path)
    trainer._setup_runtime()
    model = build_model_from_checkpoint(ckpt).to(trainer.device)
    if trainer.channels_last:
        model.to(memory_format=torch.channels_last_3d)
    classes = ckpt.get("label_names") or []
    split = recipe.eval.split or recipe.data.val_split
    trainer.val_set = trainer._dataset(split, train=False)
    if classes and list(trainer.val_set.classes) != list(classes):
        raise ValueError(f"{path} was trained on classes {classes[:5]}...; the recipe's {split} split has "
                         f"{list(trainer.val_set.classes)[:5]}...: not the same dataset")
    trainer.val_loader = trainer._loader(trainer.val_set, train=False,
                                         batch_size=recipe.eval.batch_size or recipe.data.batch_size)
    metrics = evaluate_model(model, recipe, trainer, classes or trainer.val_set.classes, path.parent)
    metrics["checkpoint"] = str(path)
    return metrics


def train(recipe: Recipe | str | os.PathLike, overrides: Sequence[str] = (), resume: str | os.PathLike | None = None,
          callbacks: Sequence[Callable[[Trainer], None]] = ()) -> RunResult:
    """Train a recipe (a :class:`Recipe` or a YAML path, with ``key=value`` overrides); see :class:`Trainer`."""
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe, overrides)
    elif overrides:
        raise ValueError("overrides apply to a recipe file; edit the Recipe object instead")
    return Trainer(recipe, resume=resume, callbacks=callbacks).run()
