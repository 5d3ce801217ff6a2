"""Temporal convolutions (a ``kt x 1 x 1`` kernel) computed as 2-D convolutions, for CPU training.

A 3-D convolution whose kernel and stride are 1 x 1 in space mixes frames only: over a ``(B, C, T, H, W)``
clip it is the 2-D convolution of the ``(B, C, T, H * W)`` view with the ``kt x 1`` kernel, the same sums
(a different order of summation: outputs and gradients agree to float32 rounding). PyTorch's CPU backend
sends such 3-D convolutions (and every stride-1 3-D convolution with a 1 x 1 spatial kernel) to its
``slow_conv3d`` im2col path rather than to oneDNN, while the 2-D convolution of the view takes oneDNN's
kernel: a whole R(2+1)D-18 training step (8 x 112 x 112, batch 4, one thread, an AVX2 AMD EPYC) took 0.76x
the time, S3D's (16 x 112 x 112, batch 2) 0.99x (``benchmarks/train_step.py``'s ``temporal_conv`` group,
``benchmarks/results/train_step_cpu.json``). Pointwise ``1 x 1 x 1`` convolutions are left alone: their 2-D
form also takes PyTorch's slow path (``slow_conv2d``), so the route gains them little.

:func:`use_conv2d_for_temporal_convs` switches the ``nn.Conv3d`` layers of a module for which
:func:`temporal_conv_as_conv2d_applies` (``kt >= 2``, kernel and stride 1 in space, no spatial padding or
dilation, zero padding). A switched convolution takes the 2-D route on a CPU for a contiguous input and
``conv3d`` otherwise (CUDA, where cuDNN serves 3-D convolutions, and channels-last inputs, whose
``(T, H * W)`` view is not free). Weights, ``state_dict`` and outputs are unchanged. ``temporal_conv``
(``auto``: switched on a CPU) makes the engine do it for every stage.
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from .conv_switch import switch_conv_forwards

__all__ = ["temporal_conv_as_conv2d_applies", "use_conv2d_for_temporal_convs", "TEMPORAL_CONV_MODES",
           "default_temporal_conv_mode"]

TEMPORAL_CONV_MODES = ("auto", "conv2d", "native")
"""``temporal_conv`` values: ``conv2d`` switches (:func:`use_conv2d_for_temporal_convs`), ``native`` keeps
PyTorch's ``conv3d``, ``auto`` is ``conv2d`` on a CPU and ``native`` on CUDA."""


def temporal_conv_as_conv2d_applies(conv: nn.Module) -> bool:
    """Whether ``conv`` is an ``nn.Conv3d`` that :func:`use_conv2d_for_temporal_convs` switches: a temporal kernel
    of at least 2 frames, kernel and stride 1 x 1 in space, spatial padding and dilation 0 and 1, numeric zero
    padding (any groups, temporal stride, padding and dilation, with or without bias)."""
    if not isinstance(conv, nn.Conv3d) or isinstance(conv.padding, str) or conv.padding_mode != "zeros":
        return False
    kernel, stride = tuple(conv.kernel_size), tuple(conv.stride)
    return (kernel[0] >= 2 and kernel[1:] == (1, 1) and stride[1:] == (1, 1)
            and tuple(conv.padding[1:]) == (0, 0) and tuple(conv.dilation[1:]) == (1, 1))


def _conv_forward(input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, *, stride: int,
                  padding: int, dilation: int, groups: int) -> torch.Tensor:
    """A switched convolution's ``_conv_forward``: the ``(B, C, T, H * W)`` view through ``conv2d`` with the
    ``kt x 1`` kernel for a contiguous 5-D input on a CPU, ``conv3d`` otherwise."""
    if input.device.type == "cpu" and input.ndim == 5 and input.is_contiguous():
        b, c, t, h, w = input.shape
        out = F.conv2d(input.view(b, c, t, h * w), weight.reshape(*weight.shape[:3], 1), bias, (stride, 1),
                       (padding, 0), (dilation, 1), groups)
        return out.view(b, out.shape[1], out.shape[2], h, w)
    return F.conv3d(input, weight, bias, (stride, 1, 1), (padding, 0, 0), (dilation, 1, 1), groups)


def use_conv2d_for_temporal_convs(module: nn.Module) -> int:
    """Switch every convolution of ``module`` that :func:`temporal_conv_as_conv2d_applies` to the 2-D route, in
    place (weights, outputs and ``state_dict`` unchanged; idempotent; deepcopy and pickle keep working).

    Returns:
        How many convolutions are switched (already switched ones included).
    """
    return switch_conv_forwards(module, temporal_conv_as_conv2d_applies, lambda conv: functools.partial(
        _conv_forward, stride=conv.stride[0], padding=conv.padding[0], dilation=conv.dilation[0], groups=conv.groups))


def default_temporal_conv_mode(device: torch.device | str) -> str:
    """What ``temporal_conv: auto`` resolves to: ``conv2d`` on a CPU, ``native`` elsewhere."""
    return "conv2d" if torch.device(device).type == "cpu" else "native"
