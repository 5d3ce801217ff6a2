"""The MoCo pieces MSCL and MCL share: momentum encoders, the key queue, the projection head, and which
of the model's parameters a self-supervised objective trains and how it pools features.

The momentum follows the official MSCL code (:func:`cosine_momentum`); the queue is MoCo's ring
buffer of L2-normalised keys, its keys gathered from every process under DDP.

Batch statistics (:func:`encode_in_groups`, :func:`encode_keys`): MoCo's shuffled BN deals each key batch out
in a random order over the processes, so that a process's BN statistics of its keys come from other videos
than those of its queries (otherwise the statistics leak which key belongs to which query). In a single
process that shuffle changes nothing (BN's statistics do not depend on the order of the rows); MoCo's
one-GPU answer, ``SplitBatchNorm``, is ``bn_groups``: the queries are encoded in ``bn_groups`` consecutive
groups of the batch and the shuffled keys likewise, each group with its own statistics, as if the batch were
spread over ``bn_groups`` processes. (BN's running statistics are then updated once per group.)
"""
from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..utils.distributed import gather_with_grad, is_distributed, shuffle_batch, unshuffle_batch

__all__ = [
    "cosine_momentum",
    "momentum_update",
    "momentum_copy",
    "MomentumQueue",
    "ProjectionMLP",
    "logit_stats",
    "trainable_model_parameters",
    "pooled_features",
    "check_bn_groups",
    "encode_in_groups",
    "encode_keys",
]


def cosine_momentum(step: int, total_steps: int, base: float = 0.994) -> float:
    """The official MSCL momentum after ``step`` of ``total_steps``: ``1 - (1 - base)(cos(pi s / S) + 1) / 2``."""
    progress = min(max(step / max(total_steps, 1), 0.0), 1.0)
    return 1.0 - 0.5 * (1.0 - base) * (math.cos(math.pi * progress) + 1.0)


@torch.no_grad()
def momentum_update(online: nn.Module, target: nn.Module, momentum: float) -> None:
    """``target <- momentum * target + (1 - momentum) * online``, parameter by parameter (buffers untouched)."""
    for p_online, p_target in zip(online.parameters(), target.parameters()):
        p_target.mul_(momentum).add_(p_online.detach(), alpha=1.0 - momentum)


def momentum_copy(module: nn.Module) -> nn.Module:
    """A frozen copy of ``module`` to serve as its momentum (key) encoder."""
    copied = copy.deepcopy(module)
    for p in copied.parameters():
        p.requires_grad_(False)
    return copied


class MomentumQueue(nn.Module):
    """A MoCo queue: the latest ``size`` L2-normalised keys of dimension ``dim``, a ring buffer.

    It starts with random unit vectors (as MoCo's does). :meth:`push` writes keys (gathered from
    every process under DDP) after the newest ones, overwriting the oldest.
    """

    def __init__(self, size: int, dim: int):
        super().__init__()
        if size < 1 or dim < 1:
            raise ValueError(f"queue size and dim must be >= 1, got {size}, {dim}")
        self.register_buffer("keys", F.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))
        self.register_buffer("written", torch.zeros((), dtype=torch.long))  # keys pushed so far (all processes)

    @property
    def size(self) -> int:
        return self.keys.shape[0]

    @property
    def fill(self) -> float:
        """The share of the queue holding real keys (the rest are the initial random vectors), in ``[0, 1]``."""
        return min(int(self.written), self.size) / self.size

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # A queue saved before ``written`` existed: count it as full (it was trained), so that strict loads work.
        if prefix + "keys" in state_dict and prefix + "written" not in state_dict:
            state_dict[prefix + "written"] = torch.tensor(state_dict[prefix + "keys"].shape[0], dtype=torch.long)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    @torch.no_grad()
    def push(self, keys: torch.Tensor) -> None:
        """Enqueue ``(N, dim)`` keys (normalised here)."""
        keys = F.normalize(gather_with_grad(keys.detach()).float(), dim=1)[-self.size:]
        slots = (self.pointer + torch.arange(keys.shape[0], device=keys.device)) % self.size
        self.keys.index_copy_(0, slots, keys.to(self.keys.dtype))
        self.pointer.copy_((self.pointer + keys.shape[0]) % self.size)
        self.written.add_(keys.shape[0])

    def with_batch(self, batch_keys: torch.Tensor) -> torch.Tensor:
        """``cat([batch_keys, queue])``: the keys of a query whose positive is ``batch_keys[i]`` (target ``i``)."""
        return torch.cat([batch_keys.detach(), self.keys.to(batch_keys.dtype)])

    def extra_repr(self) -> str:
        return f"size={self.size}, dim={self.keys.shape[1]}"


@torch.no_grad()
def logit_stats(query: torch.Tensor, positives: torch.Tensor, queue: MomentumQueue) -> dict[str, torch.Tensor]:
    """What MoCo training is judged by, without grad, as cosines (the logits before the temperature): ``pos``, the
    mean of ``q_i . k_i``, and ``neg``, the mean of ``q_i`` with its real negatives (the batch's other keys and the
    queue's written keys, not its initial random vectors).

    When MoCo learns, ``pos`` rises well above ``neg``. The loss itself may rise meanwhile: while the queue holds
    random vectors (cosine about 0) a query only has to beat the batch's few other keys; as real keys replace them,
    the negatives number the queue's size and, early in training, are about as close to the query as its positive.
    """
    q = F.normalize(query.detach().float(), dim=1)
    k = F.normalize(positives.detach().float(), dim=1)
    batch = q @ k.t()
    b = batch.shape[0]
    off = batch[~torch.eye(b, dtype=torch.bool, device=batch.device)]
    written = min(int(queue.written), queue.size)
    queued = (q @ queue.keys[:written].float().t()).flatten() if written else off.new_zeros(0)
    negatives = torch.cat([off, queued])
    neg = negatives.mean() if negatives.numel() else batch.new_zeros(())
    return {"pos": batch.diagonal().mean(), "neg": neg}


class ProjectionMLP(nn.Sequential):
    """MoCo v2's projection: ``Linear(d, d) - ReLU - Linear(d, out)``."""

    def __init__(self, in_features: int, out_features: int = 128):
        super().__init__(nn.Linear(in_features, in_features), nn.ReLU(inplace=True),
                         nn.Linear(in_features, out_features))


def trainable_model_parameters(model: nn.Module) -> Iterator[nn.Parameter]:
    """The model's parameters that self-supervised objectives train: all but the classifier (never used) and
    an HCML side branch."""
    head = getattr(model, "get_classifier", lambda: None)()
    skip = {id(p) for p in head.parameters()} if isinstance(head, nn.Module) else set()
    for name, p in model.named_parameters():
        if id(p) not in skip and not name.startswith("hcml."):
            yield p


def pooled_features(model: nn.Module, feature_map: torch.Tensor) -> torch.Tensor:
    """The model's pooled ``(B, C)`` features of a ``(B, C, T, H, W)`` map (its head, before the classifier)."""
    if hasattr(model, "forward_head"):
        return model.forward_head(feature_map, pre_logits=True)
    return feature_map.mean(dim=(2, 3, 4))


def check_bn_groups(bn_groups: int) -> int:
    """``bn_groups`` as an int >= 1, or a ValueError naming it."""
    if isinstance(bn_groups, bool) or not isinstance(bn_groups, int) or bn_groups < 1:
        raise ValueError(f"bn_groups must be an int >= 1 (the groups of a batch with their own BN statistics), "
                         f"got {bn_groups!r}")
    return bn_groups


def encode_in_groups(encode: Callable[[torch.Tensor], Any], x: torch.Tensor, groups: int) -> Any:
    """``encode`` over ``groups`` equal, consecutive groups of ``x``'s rows, its outputs (a tensor of rows, or a
    tuple of them) concatenated in order: in train mode each group gets its own BN batch statistics
    (``SplitBatchNorm``, module docstring). ``groups=1`` is ``encode(x)``.

    Raises:
        ValueError: ``groups`` does not divide the rows of ``x``.
    """
    if groups == 1:
        return encode(x)
    if x.shape[0] % groups:
        raise ValueError(f"bn_groups={groups} must divide this process's batch of {x.shape[0]} clips")
    outputs = [encode(chunk) for chunk in x.chunk(groups)]
    if isinstance(outputs[0], torch.Tensor):
        return torch.cat(outputs)
    return tuple(torch.cat(parts) for parts in zip(*outputs))


@torch.no_grad()
def encode_keys(encode: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, shuffle: bool, groups: int = 1
                ) -> torch.Tensor:
    """Keys ``encode(x)`` ((N, ...) rows to (N, D) rows, no grad) through MoCo's shuffled BN: with ``shuffle``,
    the rows are dealt out in a random order (over all processes under DDP,
    :func:`~zoo.utils.distributed.shuffle_batch`), encoded in ``groups`` groups (:func:`encode_in_groups`) and
    put back in order. A shuffle that cannot change the statistics (one process, one group) is skipped."""
    if not shuffle or (groups == 1 and not is_distributed()):
        return encode_in_groups(encode, x, groups)
    shuffled, inverse = shuffle_batch(x)
    return unshuffle_batch(encode_in_groups(encode, shuffled, groups), inverse)
