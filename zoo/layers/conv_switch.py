"""Switching a module's convolutions to another forward route in place: what ``zoo.layers.weight_grad`` and
``zoo.layers.temporal_conv`` share.

A switched convolution keeps its weights, ``state_dict`` and class; only its ``_conv_forward`` (the function
``nn.Conv2d`` / ``nn.Conv3d`` call with ``(input, weight, bias)``) is replaced by a ``functools.partial`` of a
module-level function, which holds no reference to the module, so deepcopy and pickle keep working.
"""
from __future__ import annotations

import functools
from collections.abc import Callable

from torch import nn

__all__ = ["switch_conv_forwards"]


def switch_conv_forwards(module: nn.Module, applies: Callable[[nn.Module], bool],
                         forward_for: Callable[[nn.Module], functools.partial]) -> int:
    """Give every convolution ``conv`` of ``module`` with ``applies(conv)`` the forward ``forward_for(conv)``
    (a partial of a module-level ``(input, weight, bias) -> output`` function), in place; idempotent.

    Returns:
        How many convolutions are switched (already switched ones included).
    """
    count = 0
    for conv in module.modules():
        if applies(conv):
            conv._conv_forward = forward_for(conv)
            count += 1
    return count
