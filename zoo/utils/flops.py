"""Model statistics: parameters and FLOPs."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_params", "count_flops"]


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


@torch.no_grad()
def count_flops(model: nn.Module, input_size: Sequence[int], batch_size: int = 1) -> dict[str, float]:
    """Count the multiply-adds of one forward pass on a zero clip of ``(C, T, H, W)`` = ``input_size``.

    Uses ``torch.utils.flop_counter``, which counts 2 FLOPs per multiply-add. Video papers (the
    HCML paper's Table 3 among them) call multiply-adds "FLOPs"; ``gflops`` here follows them:
    it is ``macs / 1e9`` per clip, and ``gflops_2x`` the count with 2 FLOPs per multiply-add.
    Operators the counter has no formula for (elementwise ops, pooling) count 0, as in fvcore.

    Returns:
        ``{'macs': ..., 'gflops': ..., 'gflops_2x': ..., 'params': ..., 'by_op': {op: flops}}``.
    """
    if len(input_size) != 4:
        raise ValueError(f"input_size must be (C, T, H, W), got {tuple(input_size)}")
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        x = torch.zeros(batch_size, *input_size, device=device)
        counter = FlopCounterMode(display=False)
        with counter:
            model(x)
    finally:
        model.train(was_training)
    flops = counter.get_total_flops() / batch_size
    by_op = {str(op): n / batch_size for op, n in counter.get_flop_counts().get("Global", {}).items()}
    return {
        "macs": flops / 2,
        "gflops": flops / 2 / 1e9,
        "gflops_2x": flops / 1e9,
        "params": count_params(model),
        "by_op": by_op,
    }
