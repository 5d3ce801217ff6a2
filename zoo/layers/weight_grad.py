"""The weight gradient of a convolution computed as a convolution, for the CPUs where oneDNN's own is slow.

The gradient of a stride-1 convolution's weight is itself a convolution: of the input with the output's
gradient, batch and channel dimensions swapped (``dW[o, c] = sum_n x[n, c] * dY[n, o]``, a correlation).
PyTorch's CPU backend (oneDNN) computes it with its own backward-weights kernel; on a CPU without AVX-512
(measured: an AVX2 AMD EPYC, torch 2.14 with oneDNN 3.12) that kernel is a GEMM-based one that runs
several times slower than oneDNN's forward convolution on the same work once the output has many channels
and few positions: a ResNet's last stages at the small inputs of CPU training, such as the 512-channel
3x3 convs of R2D-18 at 48 px (``benchmarks/conv_weight_grad.py`` measures every convolution of the featured
models both ways, ``benchmarks/results/conv_weight_grad_cpu.json``).

:func:`use_weight_grad_as_conv` switches the convolutions of a module for which the forward route was
measured faster (:func:`weight_grad_as_conv_applies`: 2-D and 3-D, stride 1, no dilation, one group, a
kernel at least 3 x 3 in space, ``in_channels * kernel volume >= 1728``, inputs of at most 4096 positions per
sample; strided, 1 x 1, temporal-only and grouped convolutions, and large inputs, keep oneDNN's kernel,
which was faster for them; what each gains depends on the shapes and on the thread count, which the
benchmark varies). A switched convolution computes its input gradient with PyTorch's own kernel and its
weight gradient as a convolution; forward outputs are unchanged, gradients agree with PyTorch's to float32
rounding (a different order of summation).
``train.conv_weight_grad`` (``auto``: switched on CPUs whose PyTorch capability is AVX2, where it was
measured) makes the engine do it for every stage.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .conv_switch import switch_conv_forwards

__all__ = ["conv_weight_grad", "weight_grad_as_conv_applies", "use_weight_grad_as_conv", "default_weight_grad_mode"]

_MIN_REDUCTION = 1728  # in_channels * kernel volume: 64 x 3 x 3 x 3, 192 x 3 x 3 (the measured crossover)
_MAX_POSITIONS = 4096  # input positions per sample (T x H x W): R3D-18's 8 x 56 x 56 layer1 was slower switched


def _small_input(shape: Sequence[int]) -> bool:
    """At most :data:`_MAX_POSITIONS` positions per sample in an ``(N, C, *spatial)`` input."""
    return math.prod(shape[2:]) <= _MAX_POSITIONS


def conv_weight_grad(input: torch.Tensor, grad_output: torch.Tensor, kernel_size: Sequence[int],
                     padding: Sequence[int]) -> torch.Tensor:
    """The weight gradient of a stride-1, one-group convolution, computed as a forward convolution.

    Args:
        input: the convolution's input, ``(N, C, *spatial)`` (2 or 3 spatial dimensions).
        grad_output: the gradient of its output, ``(N, O, *spatial_out)``.
        kernel_size: the weight's spatial size.
        padding: the convolution's padding, per spatial dimension.

    Returns:
        ``(O, C, *kernel_size)``: the weight's gradient, in the input's dtype.
    """
    conv = F.conv3d if input.ndim == 5 else F.conv2d
    # Batch becomes channels: the input as C "images" of N channels, the output gradient as O "filters" of N.
    grad = conv(input.transpose(0, 1), grad_output.transpose(0, 1), None, 1, list(padding))
    grad = grad[(slice(None), slice(None), *(slice(0, k) for k in kernel_size))]
    return grad.transpose(0, 1).contiguous()


class _ConvWithWeightGradAsConv(torch.autograd.Function):
    """A stride-1, one-group convolution whose weight gradient is :func:`conv_weight_grad`."""

    @staticmethod
    def forward(ctx, input, weight, bias, padding):
        ctx.save_for_backward(input, weight)
        ctx.padding = padding
        ctx.has_bias = bias is not None
        conv = F.conv3d if input.ndim == 5 else F.conv2d
        return conv(input, weight, bias, 1, padding)

    @staticmethod
    def backward(ctx, grad_output):
        input, weight = ctx.saved_tensors
        grad_input = grad_weight = grad_bias = None
        ones, zeros = [1] * (input.ndim - 2), [0] * (input.ndim - 2)
        if ctx.needs_input_grad[0]:
            grad_input = torch.ops.aten.convolution_backward(
                grad_output, input, weight, None, ones, list(ctx.padding), ones, False, zeros, 1,
                [True, False, False])[0]
        if ctx.needs_input_grad[1]:
            grad_weight = conv_weight_grad(input, grad_output, weight.shape[2:], ctx.padding)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad_output.sum(dim=[0, *range(2, grad_output.ndim)])
        return grad_input, grad_weight, grad_bias, None


def weight_grad_as_conv_applies(conv: nn.Module, input_shape: Sequence[int] | None = None) -> bool:
    """Whether ``conv`` is a convolution whose weight gradient was measured faster as a convolution (module
    docstring): an ``nn.Conv2d`` or ``nn.Conv3d`` with stride 1, dilation 1, one group, zero (numeric) padding,
    a kernel at least 3 x 3 in its last two dimensions and ``in_channels * kernel volume >= 1728``; with
    ``input_shape`` (``(N, C, *spatial)``), also at most 4096 input positions per sample (``T x H x W``: a
    switched convolution takes PyTorch's kernel on larger inputs, where that was faster)."""
    if not isinstance(conv, (nn.Conv2d, nn.Conv3d)) or isinstance(conv.padding, str):
        return False
    kernel = tuple(conv.kernel_size)
    if input_shape is not None and not _small_input(input_shape):
        return False
    return (conv.groups == 1 and conv.padding_mode == "zeros" and all(s == 1 for s in conv.stride)
            and all(d == 1 for d in conv.dilation) and min(kernel[-2:]) >= 3
            and conv.in_channels * math.prod(kernel) >= _MIN_REDUCTION)


def _conv_forward(input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, *,
                  padding: tuple[int, ...]) -> torch.Tensor:
    """A switched convolution's ``_conv_forward`` (stride 1, one group, zero padding): the weight gradient as a
    convolution when one will be taken on the CPU (grad enabled, the weight trainable, no autocast) of an input
    of at most 4096 positions per sample, the plain convolution otherwise."""
    if (input.device.type == "cpu" and torch.is_grad_enabled() and weight.requires_grad
            and not torch.is_autocast_enabled("cpu") and _small_input(input.shape)):
        return _ConvWithWeightGradAsConv.apply(input, weight, bias, padding)
    return (F.conv3d if input.ndim == 5 else F.conv2d)(input, weight, bias, 1, padding)


def use_weight_grad_as_conv(module: nn.Module) -> int:
    """Switch every convolution of ``module`` that :func:`weight_grad_as_conv_applies` to computing its weight
    gradient as a convolution, in place (weights, outputs and ``state_dict`` unchanged; idempotent).

    Returns:
        How many convolutions are switched (already switched ones included).
    """
    return switch_conv_forwards(module, weight_grad_as_conv_applies,
                                lambda conv: functools.partial(_conv_forward, padding=tuple(conv.padding)))


def default_weight_grad_mode(device: torch.device | str) -> str:
    """What ``train.conv_weight_grad: auto`` resolves to: ``conv`` on a CPU whose PyTorch capability is AVX2
    (where :func:`use_weight_grad_as_conv` was measured faster), ``native`` elsewhere (CUDA, AVX-512, ARM)."""
    if torch.device(device).type != "cpu":
        return "native"
    return "conv" if torch.backends.cpu.get_cpu_capability() == "AVX2" else "native"
