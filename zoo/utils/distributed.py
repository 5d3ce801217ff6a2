"""Distributed training helpers: process-group setup from torchrun's environment, gathers, rank-0 gating.

Launch a recipe on several processes (one per GPU, or CPU processes with gloo) with torchrun::

    torchrun --nproc_per_node 8 -m zoo.cli train recipes/k400_r2d50_hcml.yaml
    torchrun --nnodes 2 --node_rank 0 --master_addr HOST --nproc_per_node 8 -m zoo.cli train ...

Contrastive objectives whose negatives should span the global batch gather their targets with
:func:`gather_with_grad`: every rank gets all ranks' rows, and gradients flow back to the rank
that produced each row. With DDP's gradient averaging the update is the gradient of the mean of
the ranks' losses, as with one process holding the whole batch.

Momentum encoders use MoCo's shuffled BN: :func:`shuffle_batch` deals the key batch of all ranks out
anew by a random permutation before the key encoder, :func:`unshuffle_batch` gives each rank its own
rows' outputs back, so that no rank's BN statistics of its keys come from the same videos as its queries.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

__all__ = [
    "DistInfo",
    "init_distributed",
    "destroy_distributed",
    "is_distributed",
    "get_rank",
    "get_world_size",
    "is_main_process",
    "gather_with_grad",
    "all_gather_objects",
    "shuffle_batch",
    "unshuffle_batch",
    "all_reduce_mean",
    "any_rank",
    "barrier",
]


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: global rank, world size, rank on its machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_type: str, timeout_min: float = 30.0) -> DistInfo:
    """Join the process group that torchrun describes in the environment (``RANK``, ``WORLD_SIZE``, ...).

    A process started without torchrun (``WORLD_SIZE`` unset or 1) stays single-process. The
    backend is NCCL for CUDA and gloo otherwise; with CUDA, the process uses GPU ``LOCAL_RANK``.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=timeout_min))
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank)


def destroy_distributed() -> None:
    """Leave the process group, if any."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    return get_rank() == 0


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` of every rank along dim 0, keeping the autograd graph.

    Args:
        x: ``(N, ...)`` on each rank (the same shape on all ranks).

    Returns:
        ``(world_size * N, ...)``: rank 0's rows first, this rank's rows at
        ``get_rank() * N``; ``x`` itself in a single process. The backward pass sends each
        rank the gradients of its own rows, summed over all ranks' losses.
    """
    if not is_distributed():
        return x
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x), dim=0)


@torch.no_grad()
def _gather(x: torch.Tensor) -> torch.Tensor:
    """All ranks' ``x`` (the same shape on every rank), concatenated in rank order, without autograd."""
    parts = [torch.empty_like(x) for _ in range(get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


@torch.no_grad()
def shuffle_batch(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """MoCo's shuffled BN, first half: this rank's ``(N, ...)`` rows replaced by ``N`` rows of all ranks' rows
    taken in a random order (the same permutation on every rank: rank 0's, broadcast).

    Returns:
        The shuffled rows for this rank, and the inverse permutation (of all ranks' rows) that
        :func:`unshuffle_batch` needs. In a single process the permutation stays within the batch,
        which leaves BN's batch statistics unchanged (they do not depend on the order of the rows):
        there the shuffle is a no-op up to floating-point summation order, kept so that one code path
        serves both cases.
    """
    n = x.shape[0]
    if not is_distributed():
        perm = torch.randperm(n, device=x.device)
        return x[perm], torch.argsort(perm)
    gathered = _gather(x)
    perm = torch.randperm(gathered.shape[0], device=x.device)  # every rank draws, so their RNGs stay in step
    dist.broadcast(perm, src=0)
    rank = get_rank()
    return gathered[perm[rank * n:(rank + 1) * n]], torch.argsort(perm)


@torch.no_grad()
def unshuffle_batch(y: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
    """Second half of :func:`shuffle_batch`: the outputs ``y`` (this rank's ``(N, ...)`` rows, computed on the
    shuffled rows) put back in the order of this rank's original rows."""
    n = y.shape[0]
    if not is_distributed():
        return y[inverse]
    rank = get_rank()
    return _gather(y)[inverse[rank * n:(rank + 1) * n]]


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (picklable), in rank order; ``[obj]`` in a single process."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * get_world_size()
    dist.all_gather_object(out, obj)
    return out


def all_reduce_mean(value: torch.Tensor) -> torch.Tensor:
    """The mean of ``value`` over ranks (a detached copy)."""
    value = value.detach().clone()
    if is_distributed():
        dist.all_reduce(value)
        value /= get_world_size()
    return value


def any_rank(flag: bool, device: torch.device | str = "cpu") -> bool:
    """True on every rank when ``flag`` is true on any rank (e.g. a SIGTERM seen by one process)."""
    if not is_distributed():
        return flag
    t = torch.tensor([float(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def barrier() -> None:
    if is_distributed():
        dist.barrier()
