"""Where and how a run computes: device, mixed precision, memory format, process group, batch norms.

:func:`setup_runtime` turns a recipe's ``device``, ``amp``, ``channels_last``, ``threads`` and
``deterministic`` settings into a :class:`Runtime`, with the process group torchrun describes.
"""
from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..utils.distributed import DistInfo, init_distributed

__all__ = ["Runtime", "setup_runtime", "resolve_device", "resolve_amp", "convert_batchnorm", "in_main_thread"]

_logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    """What a run computes on: the process group, the device, the autocast dtype (None: float32) and
    whether clips go channels-last."""

    dist: DistInfo = field(default_factory=DistInfo)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    amp_dtype: torch.dtype | None = None
    channels_last: bool = False

    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    def autocast(self) -> Any:
        """The autocast context of the run's precision (a null context in float32)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)


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


def setup_runtime(recipe: Any) -> Runtime:
    """The process group, device and precision a recipe asks for (see the module docstring)."""
    r = recipe
    spec_type = "cuda" if r.device.startswith("cuda") or (r.device == "auto" and torch.cuda.is_available()) \
        else "cpu"
    if spec_type == "cuda" and not torch.cuda.is_available():
        resolve_device(r.device)  # raises the clear message
    dist = init_distributed(spec_type)
    device = resolve_device(r.device, dist.local_rank)
    amp_dtype = resolve_amp(r.amp, device)
    channels_last = r.channels_last if r.channels_last is not None else device.type == "cuda"
    if r.threads:
        torch.set_num_threads(r.threads)
    if r.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return Runtime(dist, device, amp_dtype, channels_last)


def convert_batchnorm(module: nn.Module, sync: bool) -> None:
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
            convert_batchnorm(child, sync)


def in_main_thread() -> bool:
    """True in the main thread (where signal handlers can be installed)."""
    return threading.current_thread() is threading.main_thread()
