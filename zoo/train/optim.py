"""Optimizers and the learning-rate schedule of a stage: SGD or AdamW with decay groups, linear warm-up
then cosine decay, the learning rate scaled linearly with the global batch."""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

__all__ = ["WarmupCosine", "scaled_lr", "build_optimizer", "build_scheduler"]


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


def scaled_lr(lr: float, global_batch: int, base_batch_size: int) -> float:
    """The linear scaling rule: ``lr`` given for ``base_batch_size`` clips, at ``global_batch`` clips."""
    return lr * global_batch / base_batch_size


def build_optimizer(params: Sequence[tuple[str, nn.Parameter]], optim_cfg: Any, lr: float) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov) or AdamW over ``(name, parameter)`` pairs: weight decay on weights, none on
    norms and biases (1-D parameters) unless ``optim_cfg.decay_norm_and_bias``."""
    o = optim_cfg
    decay = [p for _, p in params if p.ndim > 1 or o.decay_norm_and_bias]
    no_decay = [p for _, p in params if not (p.ndim > 1 or o.decay_norm_and_bias)]
    groups = [{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    if o.name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=o.momentum, nesterov=o.nesterov)
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(o.betas))


def build_scheduler(optimizer: torch.optim.Optimizer, optim_cfg: Any, total_steps: int, warmup_steps: int
                    ) -> torch.optim.lr_scheduler.LambdaLR:
    """The per-step :class:`WarmupCosine` schedule of a stage."""
    schedule = WarmupCosine(total_steps, warmup_steps, optim_cfg.warmup_start_factor, optim_cfg.min_lr_factor)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
