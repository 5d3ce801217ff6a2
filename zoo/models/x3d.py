"""X3D (Feichtenhofer 2020, "X3D: Expanding Architectures for Efficient Video Recognition"): XS, S, M and L,
with pytorchvideo's Kinetics weights.

Source: ``pytorchvideo.models.x3d.create_x3d`` as pytorchvideo's hub entrypoints configure it
(``pytorchvideo/models/hub/x3d.py``, pytorchvideo 0.1.5, Apache-2.0): width factor 2.0, depth factor 2.2
(XS, S, M) or 5.0 (L), bottleneck factor 2.25, SE ratio 1/16 in every other block, swish, a 2048-wide
head. The network, at ``T x S x S`` (every stride is spatial):

- stem (``blocks.0``): a 1x3x3 conv of spatial stride 2 to 24 channels, a depthwise 5x1x1 conv, BN,
  ReLU. pytorchvideo names the spatial conv ``conv.conv_t`` and the temporal one ``conv.conv_xy``
  (``create_x3d_stem`` passes them swapped to ``Conv2plus1d``); we keep the names, so keys match.
- res2..res5 (``blocks.1..4``): 24/48/96/192 channels at S/4 .. S/32, 3/5/11/7 blocks (L: 5/10/25/15). A
  block is 1x1x1 -> BN -> ReLU -> depthwise 3x3x3 (spatial stride 2 in the first block) -> BN -> SE (the
  1st, 3rd, ... block of a stage) -> swish -> 1x1x1 -> BN, plus the shortcut, then ReLU.
- ``conv_5``: 1x1x1 conv to 2.25 x 192 = 432 channels, BN, ReLU (pytorchvideo's ``head.pool.pre_conv``,
  ``pre_norm``): the unpooled map ``forward_features`` returns.
- head: average over stride-1 windows of pytorchvideo's fixed pool kernel (``T x ceil(crop/32)^2`` of
  the hub's training crop: XS ``(4, 5, 5)``, S ``(13, 5, 5)``, M ``(16, 7, 7)``, L ``(16, 10, 10)``),
  ``lin_5`` (1x1x1 conv 432 -> 2048, no BN) and ReLU on every window, the windows averaged, dropout 0.5,
  the linear classifier.

What is ours:

- SE: :class:`SqueezeExcite3d` is fvcore's ``SqueezeExcitation(is_3d=True)`` (mean over T, H, W; 1x1x1
  conv with bias; ReLU; 1x1x1 conv with bias; sigmoid; scale), with fvcore's key names (``block.0``,
  ``block.2``) and pytorchvideo's rounding of the reduced width. timm's ``SqueezeExcite`` is 2-D only.
- swish is ``nn.SiLU`` (``x * sigmoid(x)``, pytorchvideo's ``Swish`` without its custom autograd).
- The head: pytorchvideo classifies every window and averages the per-window outputs; we average the
  ``lin_5`` features over the windows first and classify once. The classifier is affine, so the logits
  are the same; the window is clipped to the map, so clips smaller than the kernel run (a global
  average). At the hub's eval crops (182/256/356, larger than the training crops) pytorchvideo and we
  both average several windows.
- No softmax: pytorchvideo's X3D heads end in ``nn.Softmax`` (``create_x3d``'s default
  ``head_activation``, kept by the hub entrypoints), applied per window before the window average. Ours
  returns logits; where pytorchvideo's map has one window, its output is ``softmax(ours)``.
- ``num_features`` is 432 (``conv_5``'s width, the map of ``forward_features``); ``head_hidden_size``
  is 2048 (``lin_5``'s width, ``forward_head(x, pre_logits=True)``), timm's MobileNetV3 convention.

HCML levels (:func:`zoo.adapters.attach_hcml`: level ``l`` is ``feature_info[len - 5 + l]``): levels 1, 2, 3 are
the outputs of res2, res3, res4 (``blocks.1``, ``blocks.2``, ``blocks.3``), ``(B, 24 | 48 | 96, T, H/4 | H/8 |
H/16, W/..)`` (X3D has no temporal stride: every level keeps all T frames). The wrapped stage returns ``Z = F +
g(P)`` in place of ``F``, so the next stage (and ``conv_5`` after res5) reads the fused map.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from .._builder import build_model_with_cfg
from .._features import FeatureInfo
from .._registry import register_model
from ..layers import feature_take_indices
from ._base import VideoModel
from .pv_resnet import (
    PV_MODEL_ZOO,
    ResBlock,
    ResStage,
    WindowedPoolHead,
    init_pytorchvideo_weights,
    pytorchvideo_cfg,
)
from .pv_resnet import checkpoint_filter_fn as _pv_filter_fn

__all__ = ["X3D", "X3DBottleneck", "X3DHead", "X3DStem", "SqueezeExcite3d", "checkpoint_filter_fn"]


def round_width(width: float, multiplier: float, min_width: int = 8, divisor: int = 8) -> int:
    """pytorchvideo's ``round_width``: ``width * multiplier`` to a multiple of ``divisor`` (at least
    ``min_width``), rounded up once more when rounding lost over 10%."""
    if not multiplier:
        return int(width)
    width *= multiplier
    out = max(min_width, int(width + divisor / 2) // divisor * divisor)
    if out < 0.9 * width:
        out += divisor
    return int(out)


def round_repeats(repeats: int, multiplier: float) -> int:
    """pytorchvideo's ``round_repeats``: ``ceil(multiplier * repeats)``."""
    return int(math.ceil(multiplier * repeats)) if multiplier else repeats


class SqueezeExcite3d(nn.Module):
    """fvcore's 3-D ``SqueezeExcitation``: ``x * sigmoid(conv(relu(conv(mean_THW(x)))))`` (keys ``block.0``,
    ``block.2``; both 1x1x1 convs with bias)."""

    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv3d(channels, reduced, 1, bias=True),
            nn.ReLU(),
            nn.Conv3d(reduced, channels, 1, bias=True),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.block(x.mean(dim=(2, 3, 4), keepdim=True))


class X3DStem(nn.Module):
    """``conv.conv_t`` (1x3x3, stride 1x2x2: spatial, despite its name) -> ``conv.conv_xy`` (depthwise
    5x1x1: temporal) -> ``norm`` -> ReLU. ``(B, C, T, H, W)`` -> ``(B, out_chans, T, H/2, W/2)``."""

    def __init__(self, in_chans: int, out_chans: int, temporal_kernel: int = 5) -> None:
        super().__init__()
        self.conv = nn.Module()
        self.conv.conv_t = nn.Conv3d(in_chans, out_chans, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), bias=False)
        self.conv.conv_xy = nn.Conv3d(
            out_chans,
            out_chans,
            (temporal_kernel, 1, 1),
            padding=(temporal_kernel // 2, 0, 0),
            groups=out_chans,
            bias=False,
        )
        self.norm = nn.BatchNorm3d(out_chans)
        self.activation = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.norm(self.conv.conv_xy(self.conv.conv_t(x))))


class X3DBottleneck(nn.Module):
    """``conv_a`` 1x1x1 -> BN -> ReLU -> ``conv_b`` depthwise 3x3x3 -> ``norm_b`` (BN, then SE or identity) ->
    swish -> ``conv_c`` 1x1x1 -> BN (pytorchvideo's ``create_x3d_bottleneck_block``)."""

    def __init__(self, dim_in: int, dim_inner: int, dim_out: int, stride: tuple[int, int, int], se_ratio: float):
        super().__init__()
        self.conv_a = nn.Conv3d(dim_in, dim_inner, 1, bias=False)
        self.norm_a = nn.BatchNorm3d(dim_inner)
        self.act_a = nn.ReLU(inplace=True)
        self.conv_b = nn.Conv3d(dim_inner, dim_inner, 3, stride=stride, padding=1, groups=dim_inner, bias=False)
        se = SqueezeExcite3d(dim_inner, round_width(dim_inner, se_ratio)) if se_ratio > 0 else nn.Identity()
        self.norm_b = nn.Sequential(nn.BatchNorm3d(dim_inner), se)
        self.act_b = nn.SiLU()
        self.conv_c = nn.Conv3d(dim_inner, dim_out, 1, bias=False)
        self.norm_c = nn.BatchNorm3d(dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act_a(self.norm_a(self.conv_a(x)))
        x = self.act_b(self.norm_b(self.conv_b(x)))
        return self.norm_c(self.conv_c(x))


class X3DHead(WindowedPoolHead):
    """Stride-1 windowed average (clipped) -> ``lin_5`` (1x1x1 conv, no bias) -> ReLU on every window -> the
    windows' mean -> dropout -> ``fc``. ``in_features`` is ``lin_5``'s output width (the pre-logits).

    ``global_pool='max'``: the global max instead of the windows; ``''``: the map passes through unchanged.
    """

    def __init__(
        self,
        dim_in: int,
        hidden_size: int,
        num_classes: int,
        pool_size: Sequence[int] | None,
        global_pool: str = "avg",
        drop_rate: float = 0.5,
    ) -> None:
        super().__init__(hidden_size, num_classes, pool_size, global_pool, drop_rate)
        self.lin_5 = nn.Conv3d(dim_in, hidden_size, 1, bias=False)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if not self.global_pool:
            return x
        x = self.window_pool(x) if self.global_pool == "avg" else x.amax(dim=(2, 3, 4), keepdim=True)
        x = self.drop(self.act(self.lin_5(x)).mean(dim=(2, 3, 4)))
        return x if pre_logits else self.fc(x)


class X3D(VideoModel):
    """X3D over clips ``(B, C, T, H, W)`` (see the module docstring).

    Args:
        depth_factor: stage depths ``ceil(depth_factor * (1, 2, 5, 3))``.
        width_factor: channel multiplier of the stem and stages (12, 12, 24, 48, 96 base widths).
        bottleneck_factor: inner width of the blocks (and of ``conv_5``) over their output width.
        se_ratio: SE width over the block's inner width (0: no SE).
        head_dim: ``lin_5``'s width.
        head_pool_size: pytorchvideo's fixed head window (``(T, ceil(crop/32), ceil(crop/32))``).
        num_classes: classifier size (0: pooled features out).
        in_chans: input channels.
        drop_rate: dropout before the classifier (pytorchvideo: 0.5).
        global_pool: ``'avg'`` (windowed), ``'max'`` or ``''``.

    Attributes:
        feature_info: level 0 the stem (``blocks.0``), levels 1..4 res2..res5 (``blocks.1..4``),
            spatial reductions 2, 4, 8, 16, 32, no temporal reduction.
        num_features: ``conv_5``'s width (432); ``head_hidden_size``: ``head_dim`` (2048).
    """

    def __init__(
        self,
        depth_factor: float = 2.2,
        width_factor: float = 2.0,
        bottleneck_factor: float = 2.25,
        se_ratio: float = 0.0625,
        head_dim: int = 2048,
        head_pool_size: tuple[int, int, int] | None = (13, 5, 5),
        num_classes: int = 400,
        in_chans: int = 3,
        drop_rate: float = 0.5,
        global_pool: str = "avg",
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.grad_checkpointing = False

        stem_dim = round_width(12, width_factor)
        blocks: list[nn.Module] = [X3DStem(in_chans, stem_dim)]
        feature_info = [dict(num_chs=stem_dim, reduction=2, temporal_reduction=1, module="blocks.0")]
        dim_in, reduction = stem_dim, 2
        base = 12
        for i, depth in enumerate((1, 2, 5, 3)):
            dim_out = round_width(base, width_factor)
            dim_inner = int(bottleneck_factor * dim_out)
            res_blocks = []
            for j in range(round_repeats(depth, depth_factor)):
                stride = (1, 2, 2) if j == 0 else (1, 1, 1)
                block_in = dim_in if j == 0 else dim_out
                branch2 = X3DBottleneck(block_in, dim_inner, dim_out, stride, se_ratio if j % 2 == 0 else 0.0)
                res_blocks.append(ResBlock(branch2, block_in, dim_out, stride, norm_on_stride_only=False))
            blocks.append(ResStage(res_blocks))
            reduction *= 2
            feature_info.append(
                dict(num_chs=dim_out, reduction=reduction, temporal_reduction=1, module=f"blocks.{i + 1}")
            )
            dim_in = dim_out
            base = round_width(base, 2.0, divisor=8)
        self.blocks = nn.ModuleList(blocks)
        self.feature_info = FeatureInfo(feature_info)
        self.conv_5 = nn.Sequential()
        self.conv_5.add_module("conv", nn.Conv3d(dim_in, dim_inner, 1, bias=False))
        self.conv_5.add_module("norm", nn.BatchNorm3d(dim_inner))
        self.conv_5.add_module("act", nn.ReLU(inplace=True))
        self.min_frames = 1
        self.num_features = dim_inner
        self.head = X3DHead(dim_inner, head_dim, num_classes, head_pool_size, global_pool, drop_rate)
        init_pytorchvideo_weights(self)

    def _run_block(self, index: int, x: torch.Tensor) -> torch.Tensor:
        block = self.blocks[index]  # looked up each call, so a wrapped block is the one that runs
        if self.grad_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(block, x, use_reentrant=False)
        return block(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` -> the unpooled ``(B, 432, T, H/32, W/32)`` map of ``conv_5``."""
        self.check_input(x)
        for index in range(len(self.blocks)):
            x = self._run_block(index, x)
        return self.conv_5(x)

    def forward_intermediates(self, x: torch.Tensor, indices: int | Sequence[int] | None = None) -> list[torch.Tensor]:
        """The ``(B, C, T, H, W)`` maps of the ``feature_info`` levels ``indices``, in that order; stages after
        the last needed level are not run."""
        take = feature_take_indices(len(self.feature_info), indices)
        self.check_input(x)
        maps = {}
        for index in range(max(take) + 1):
            x = self._run_block(index, x)
            maps[index] = x
        return [maps[i] for i in take]

    def prune_intermediate_layers(self, last_index: int) -> None:
        """Drop the stages after level ``last_index``, ``conv_5`` and the classifier (``features_only`` use)."""
        for index in range(last_index + 1, len(self.blocks)):
            self.blocks[index] = nn.Identity()
        self.conv_5 = nn.Identity()
        self.reset_classifier(0, "")


_PV_HEAD = {
    "blocks.5.pool.pre_conv.": "conv_5.conv.",
    "blocks.5.pool.pre_norm.": "conv_5.norm.",
    "blocks.5.pool.post_conv.": "head.lin_5.",
}


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: X3D) -> dict[str, torch.Tensor]:
    """pytorchvideo's X3D keys -> ours: the head's ``pool.pre_conv`` / ``pre_norm`` -> ``conv_5``,
    ``pool.post_conv`` -> ``head.lin_5``, ``proj`` -> ``head.fc`` (the trunk's keys are pytorchvideo's)."""
    out = {}
    for key, value in _pv_filter_fn(state_dict, model).items():
        for old, new in _PV_HEAD.items():
            if key.startswith(old):
                key = new + key[len(old) :]
                break
        out[key] = value
    return out


def _head_pool_size(frames: int, crop: int) -> tuple[int, int, int]:
    """pytorchvideo's ``create_x3d`` head kernel for its ``input_clip_length`` and ``input_crop_size``."""
    side = int(math.ceil(crop / 32))
    return (frames, side, side)


def _create_x3d(variant: str, pretrained: bool = False, **kwargs: Any) -> X3D:
    return build_model_with_cfg(X3D, variant, pretrained, pretrained_filter_fn=checkpoint_filter_fn, **kwargs)


_PAPER = "https://arxiv.org/abs/2004.04730"
_RECIPES = "https://github.com/facebookresearch/SlowFast/blob/main/configs/Kinetics/pytorchvideo"
_NOTES = (
    "pytorchvideo's checkpoint (weights under 'model_state'); pytorchvideo publishes no hash for it (hash_prefix "
    "None: the sha256 is recorded on first use). Eval transform of pytorchvideo's hub page and PySlowFast's 3-crop "
    "test (short side = crop = TEST_CROP_SIZE, larger than the {train} training crop). pytorchvideo's hub model ends "
    "in a softmax; ours returns the logits. Metrics, GFLOPs and params as pytorchvideo's model zoo table states them."
)


def _cfg(frames: int, stride: int, crop: int, train_crop: int, **kwargs: Any):
    defaults = dict(
        input_size=(3, frames, crop, crop),
        frame_stride=stride,
        resize_size=crop,
        first_conv="blocks.0.conv.conv_t",
        paper=_PAPER,
    )
    if kwargs.get("url"):
        defaults["notes"] = _NOTES.format(train=train_crop)
    return pytorchvideo_cfg(**dict(defaults, **kwargs))


def _tag(
    name: str,
    file: str,
    top1: float,
    top5: float,
    gflops: float,
    params: int,
    frames: int,
    stride: int,
    crop: int,
    train_crop: int,
) -> dict[str, Any]:
    return {
        name: _cfg(frames, stride, crop, train_crop),
        f"{name}.pv_k400": _cfg(
            frames,
            stride,
            crop,
            train_crop,
            url=f"{PV_MODEL_ZOO}/kinetics/{file}",
            metrics=dict(top1=top1, top5=top5, views="10x3", clip_len=frames, frame_stride=stride),
            gflops=gflops,
            num_params=params,
            recipe=f"{_RECIPES}/{file.split('.')[0]}.yaml",
        ),
    }


default_cfgs = {
    **_tag("x3d_xs", "X3D_XS.pyth", 69.12, 88.63, 0.91, 3_790_000, 4, 12, 182, 160),
    **_tag("x3d_s", "X3D_S.pyth", 73.33, 91.27, 2.96, 3_790_000, 13, 6, 182, 160),
    **_tag("x3d_m", "X3D_M.pyth", 75.94, 92.72, 6.72, 3_790_000, 16, 5, 256, 224),
    **_tag("x3d_l", "X3D_L.pyth", 77.44, 93.31, 26.64, 6_150_000, 16, 5, 356, 312),
}


@register_model
def x3d_xs(pretrained: bool = False, **kwargs: Any) -> X3D:
    """X3D-XS, pytorchvideo's hub ``x3d_xs`` (4 frames, head window for a 160 crop): layout, keys and logits."""
    model_args = dict(depth_factor=2.2, head_pool_size=_head_pool_size(4, 160))
    return _create_x3d("x3d_xs", pretrained, **dict(model_args, **kwargs))


@register_model
def x3d_s(pretrained: bool = False, **kwargs: Any) -> X3D:
    """X3D-S, pytorchvideo's hub ``x3d_s`` (13 frames, head window for a 160 crop): layout, keys and logits."""
    model_args = dict(depth_factor=2.2, head_pool_size=_head_pool_size(13, 160))
    return _create_x3d("x3d_s", pretrained, **dict(model_args, **kwargs))


@register_model
def x3d_m(pretrained: bool = False, **kwargs: Any) -> X3D:
    """X3D-M, pytorchvideo's hub ``x3d_m`` (16 frames, head window for a 224 crop): layout, keys and logits."""
    model_args = dict(depth_factor=2.2, head_pool_size=_head_pool_size(16, 224))
    return _create_x3d("x3d_m", pretrained, **dict(model_args, **kwargs))


@register_model
def x3d_l(pretrained: bool = False, **kwargs: Any) -> X3D:
    """X3D-L, pytorchvideo's hub ``x3d_l`` (16 frames, depth factor 5.0, head window for a 312 crop)."""
    model_args = dict(depth_factor=5.0, head_pool_size=_head_pool_size(16, 312))
    return _create_x3d("x3d_l", pretrained, **dict(model_args, **kwargs))
