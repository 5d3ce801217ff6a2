"""pytorchvideo's ResNet-50 video classifiers: Slow, C2D, I3D and R(2+1)D, with pytorchvideo's Kinetics weights.

Source: ``pytorchvideo.models.resnet.create_resnet`` and ``pytorchvideo.models.r2plus1d.create_r2plus1d`` as
pytorchvideo's hub entrypoints configure them (``pytorchvideo/models/hub/resnet.py``, ``hub/r2plus1d.py``,
pytorchvideo 0.1.5, Apache-2.0). The module tree and key names are pytorchvideo's (``blocks.0`` the stem,
``blocks.N.res_blocks.J.branch2.conv_a`` ...), so a checkpoint's ``model_state`` loads with one key moved
(the classifier ``blocks.N.proj`` -> ``head.fc``, :func:`checkpoint_filter_fn`) and gives pytorchvideo's
outputs. pytorchvideo is not imported: it is only the oracle of ``tests/test_pytorchvideo_models.py``.

================  ==========================================================================================
model             architecture (pytorchvideo's hub settings)
================  ==========================================================================================
``slow_r50``      Slow pathway of SlowFast, 8x8: 1x7x7 stem + 1x3x3 max-pool, 1x1x1 first bottleneck convs in
                  res2/res3 and 3x1x1 in res4/res5, no temporal stride; head pool ``(8, 7, 7)``.
``c2d_r50``       C2D, 8x8: ``slow_r50`` with 1x1x1 first convs everywhere and a 2x1x1 temporal max-pool
                  (stride 2) after res2; head pool ``(4, 7, 7)``.
``i3d_r50``       I3D, 8x8: 5x7x7 stem, the 2x1x1 max-pool after res2, 3x1x1 first convs in every res2 block,
                  every other block of res3/res4 from the first and of res5 from the second; head ``(4, 7, 7)``.
``r2plus1d_r50``  R(2+1)D-50, 16x4: 1x7x7 stem without max-pool, every middle conv a (2+1)D pair (3x1x1 ->
                  BN -> ReLU -> 1x3x3, both at the bottleneck width), spatial stride 2 in all four stages,
                  temporal stride 2 in res4/res5; head pool ``(4, 7, 7)``.
================  ==========================================================================================

Why not :mod:`zoo.models.video_resnet`: none of these coincides with it. pytorchvideo's blocks put the
spatial stride on the middle conv but the (2+1)D pair's middle width is the bottleneck width (not
torchvision's parameter-matched one), C2D/I3D subsample time with a max-pool after res2 (the zoo's
``i3d_50`` uses HCML's strided convs instead), R(2+1)D strides space in res2 and has no stem pool, the
stems' temporal kernels differ, and the head pools with a fixed window; the key names (``blocks``,
``branch1_conv``, ``conv_a`` ...) differ throughout. Reproducing them in ``video_resnet`` would need new
options and a long key map; one small file with pytorchvideo's layout is simpler and exact.

What is ours:

- The head. pytorchvideo pools with ``AvgPool3d(kernel, stride=1)`` (kernel sized for the training
  crop), applies dropout and the linear classifier at every window and averages the windows' logits
  (``output_pool``). Ours averages the map over the same stride-1 windows, then over the windows, then
  classifies: the same logits (the classifier is affine), with the window clipped to the map so that
  clips smaller than pytorchvideo's minimum still run (then it is a global average).
- No softmax. pytorchvideo's hub ``r2plus1d_r50`` ends in ``nn.Softmax`` (``create_r2plus1d``'s
  default ``head_activation``), applied per window before the window average; the zoo's models return
  logits, as every zoo and timm model does. Where pytorchvideo's output has one window (its eval
  crop), its output is ``softmax(ours)``. Slow, C2D, I3D and CSN have no activation in pytorchvideo.
- Temporal strides sit on the middle conv (and the shortcut), where ``create_r2plus1d`` and ``create_csn``
  put them; ``create_resnet`` would put them on the first conv, but none of its hub models has any.
- ``checkpoint_filter_fn`` also accepts PySlowFast's checkpoints of these nets (keys under ``model.``).

HCML levels (:func:`zoo.adapters.attach_hcml`: level ``l`` is ``feature_info[len - 5 + l]``): the outputs of res2,
res3, res4, ``(B, 256 | 512 | 1024, T_l, H/4 | H/8 | H/16, W/..)``: ``blocks.1``, ``blocks.2``, ``blocks.3`` for
Slow and R(2+1)D (R(2+1)D-50: T, T, T/2), ``blocks.1``, ``blocks.3``, ``blocks.4`` for C2D and I3D (their
temporal max-pool ``blocks.2`` sits between res2 and res3: T, T/2, T/2). The wrapped stage returns ``Z = F +
g(P)`` to the next block.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .._builder import build_model_with_cfg
from .._features import FeatureInfo
from .._pretrained import kinetics400_label_names, video_cfg
from .._registry import register_model
from ..layers import feature_take_indices
from ._base import VideoClassifierHead, VideoModel

__all__ = [
    "PVResNet",
    "ResNetBasicStem",
    "BottleneckBlock",
    "Conv2plus1d",
    "ResBlock",
    "ResStage",
    "WindowedPoolHead",
    "checkpoint_filter_fn",
]

Triple = tuple[int, int, int]
KernelSpec = Triple | Sequence[Triple]  # one kernel for every block of a stage, or a list cycled over its blocks

PV_MEAN = (0.45, 0.45, 0.45)
PV_STD = (0.225, 0.225, 0.225)
PV_LICENSE = "Apache-2.0"
PV_MODEL_ZOO = "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo"
PV_ZOO_TABLE = "https://github.com/facebookresearch/pytorchvideo/blob/main/docs/source/model_zoo.md"


def _pad(kernel: Sequence[int]) -> tuple[int, ...]:
    return tuple(k // 2 for k in kernel)


class ResNetBasicStem(nn.Module):
    """``conv`` (stride 1x2x2, no bias) -> ``norm`` -> ReLU -> optional 1x3x3 max-pool of stride 1x2x2.

    pytorchvideo's ``create_res_basic_stem``: ``(B, C, T, H, W)`` -> ``(B, out_chans, T, H/2, W/2)``, or
    ``H/4, W/4`` with the pool.
    """

    def __init__(self, in_chans: int, out_chans: int, kernel_size: Triple, pool: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_chans, out_chans, kernel_size, stride=(1, 2, 2), padding=_pad(kernel_size), bias=False)
        self.norm = nn.BatchNorm3d(out_chans)
        self.activation = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)) if pool else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.activation(self.norm(self.conv(x)))
        return x if self.pool is None else self.pool(x)


class Conv2plus1d(nn.Module):
    """pytorchvideo's ``create_conv_2plus1d``: ``conv_t`` (kT x 1 x 1, temporal stride) -> ``norm`` -> ReLU ->
    ``conv_xy`` (1 x kH x kW, spatial stride), both at ``out_chans`` (the bottleneck width)."""

    def __init__(self, in_chans: int, out_chans: int, kernel_size: Triple, stride: Triple) -> None:
        super().__init__()
        kt, kh, kw = kernel_size
        self.conv_t = nn.Conv3d(
            in_chans, out_chans, (kt, 1, 1), stride=(stride[0], 1, 1), padding=(kt // 2, 0, 0), bias=False
        )
        self.norm = nn.BatchNorm3d(out_chans)
        self.activation = nn.ReLU(inplace=True)
        self.conv_xy = nn.Conv3d(
            out_chans,
            out_chans,
            (1, kh, kw),
            stride=(1, stride[1], stride[2]),
            padding=(0, kh // 2, kw // 2),
            bias=False,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_xy(self.activation(self.norm(self.conv_t(x))))


class BottleneckBlock(nn.Module):
    """``conv_a`` (kT x 1 x 1) -> BN -> ReLU -> ``conv_b`` (strided) -> BN -> ReLU -> ``conv_c`` (1x1x1) -> BN.

    pytorchvideo's ``create_bottleneck_block`` (``conv_b_type='3d'``: a plain conv, ``groups`` of them;
    ``'2plus1d'``: :class:`Conv2plus1d`, ``create_2plus1d_bottleneck_block``).

    Args:
        dim_in, dim_inner, dim_out: input, bottleneck and output channels.
        conv_a_kernel: kernel of ``conv_a`` (``(kT, 1, 1)``).
        conv_b_kernel: kernel of ``conv_b``.
        stride: ``(t, h, w)`` stride of ``conv_b``.
        conv_b_type: ``'3d'`` or ``'2plus1d'``.
        groups: groups of a ``'3d'`` ``conv_b`` (``dim_inner``: channel-separated, CSN).
    """

    def __init__(
        self,
        dim_in: int,
        dim_inner: int,
        dim_out: int,
        conv_a_kernel: Triple = (1, 1, 1),
        conv_b_kernel: Triple = (1, 3, 3),
        stride: Triple = (1, 1, 1),
        conv_b_type: str = "3d",
        groups: int = 1,
    ) -> None:
        super().__init__()
        self.conv_a = nn.Conv3d(dim_in, dim_inner, conv_a_kernel, padding=_pad(conv_a_kernel), bias=False)
        self.norm_a = nn.BatchNorm3d(dim_inner)
        self.act_a = nn.ReLU(inplace=True)
        if conv_b_type == "3d":
            self.conv_b = nn.Conv3d(
                dim_inner,
                dim_inner,
                conv_b_kernel,
                stride=stride,
                padding=_pad(conv_b_kernel),
                groups=groups,
                bias=False,
            )
        elif conv_b_type == "2plus1d":
            self.conv_b = Conv2plus1d(dim_inner, dim_inner, conv_b_kernel, stride)
        else:
            raise ValueError(f"conv_b_type must be '3d' or '2plus1d', got {conv_b_type!r}")
        self.norm_b = nn.BatchNorm3d(dim_inner)
        self.act_b = nn.ReLU(inplace=True)
        self.conv_c = nn.Conv3d(dim_inner, dim_out, 1, bias=False)
        self.norm_c = nn.BatchNorm3d(dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act_a(self.norm_a(self.conv_a(x)))
        x = self.act_b(self.norm_b(self.conv_b(x)))
        return self.norm_c(self.conv_c(x))


class ResBlock(nn.Module):
    """``activation(shortcut(x) + branch2(x))``; the shortcut is ``branch1_conv`` (1x1x1, the block's stride)
    and ``branch1_norm`` when the shape changes, else the identity (pytorchvideo's ``ResBlock``).

    ``norm_on_stride_only=False``: no ``branch1_norm`` when only the stride changes (pytorchvideo's X3D blocks).
    """

    def __init__(
        self, branch2: nn.Module, dim_in: int, dim_out: int, stride: Triple, norm_on_stride_only: bool = True
    ) -> None:
        super().__init__()
        project = dim_in != dim_out or any(s != 1 for s in stride)
        norm = dim_in != dim_out or (project and norm_on_stride_only)
        self.branch1_conv = nn.Conv3d(dim_in, dim_out, 1, stride=stride, bias=False) if project else None
        self.branch1_norm = nn.BatchNorm3d(dim_out) if norm else None
        self.branch2 = branch2
        self.activation = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        if self.branch1_conv is not None:
            shortcut = self.branch1_conv(x)
            if self.branch1_norm is not None:
                shortcut = self.branch1_norm(shortcut)
        return self.activation(shortcut + self.branch2(x))


class ResStage(nn.Module):
    """``res_blocks`` run in order (pytorchvideo's ``ResStage``)."""

    def __init__(self, res_blocks: Sequence[nn.Module]) -> None:
        super().__init__()
        self.res_blocks = nn.ModuleList(res_blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.res_blocks:
            x = block(x)
        return x


def make_res_stage(
    depth: int,
    dim_in: int,
    dim_inner: int,
    dim_out: int,
    conv_a_kernels: KernelSpec,
    conv_b_kernel: Triple,
    stride: Triple,
    conv_b_type: str = "3d",
    groups: int = 1,
) -> ResStage:
    """A stage of ``depth`` bottleneck blocks; the first takes the stride (and the projection shortcut).
    ``conv_a_kernels`` is one kernel or a list cycled over the blocks (pytorchvideo's rule)."""
    kernels = [tuple(conv_a_kernels)] if isinstance(conv_a_kernels[0], int) else [tuple(k) for k in conv_a_kernels]
    kernels = (kernels * depth)[:depth]
    blocks = []
    for j in range(depth):
        block_in, block_stride = (dim_in, stride) if j == 0 else (dim_out, (1, 1, 1))
        branch2 = BottleneckBlock(
            block_in, dim_inner, dim_out, kernels[j], conv_b_kernel, block_stride, conv_b_type, groups
        )
        blocks.append(ResBlock(branch2, block_in, dim_out, block_stride))
    return ResStage(blocks)


class WindowedPoolHead(VideoClassifierHead):
    """pytorchvideo's ``ResNetBasicHead`` in eval mode, with logits out: the mean over every stride-1
    ``pool_size`` window (clipped to the map), averaged over the windows, dropout, the linear classifier.

    pytorchvideo classifies each window and averages the logits; the classifier is affine, so the
    logits are the same. ``pool_size=None`` is a plain global average. ``global_pool='max'`` takes the
    global max instead; ``''`` returns the map unchanged.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        pool_size: Sequence[int] | None = None,
        global_pool: str = "avg",
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__(in_features, num_classes, global_pool, drop_rate)
        self.pool_size = None if pool_size is None else tuple(pool_size)

    def window_pool(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` -> ``(B, C, T', H', W')``: the mean over each stride-1 window of ``pool_size``
        (clipped to the map). A ``(1, 1, 1)`` map when the window covers the map."""
        if self.pool_size is None:
            return x.mean(dim=(2, 3, 4), keepdim=True)
        window = tuple(min(k, s) for k, s in zip(self.pool_size, x.shape[2:]))
        return F.avg_pool3d(x, kernel_size=window, stride=1)

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if self.global_pool == "avg":
            x = self.window_pool(x)
        return super().forward(x, pre_logits=pre_logits)

    def extra_repr(self) -> str:
        return f"pool_size={self.pool_size}, global_pool={self.global_pool!r}"


def init_pytorchvideo_weights(model: nn.Module, fc_std: float = 0.01) -> None:
    """pytorchvideo's ``init_net_weights``: MSRA (Kaiming-normal, fan-out) convs with zero bias, unit BN
    but a zero last BN in every bottleneck (``norm_c``), N(0, ``fc_std``) linear layers with zero bias."""
    for m in model.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm3d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, fc_std)
            nn.init.zeros_(m.bias)
    for m in model.modules():
        norm_c = getattr(m, "norm_c", None)
        if isinstance(norm_c, nn.BatchNorm3d):
            nn.init.zeros_(norm_c.weight)


class PVResNet(VideoModel):
    """A pytorchvideo ResNet over clips ``(B, C, T, H, W)``: ``blocks`` = stem, res2, [temporal max-pool],
    res3, res4, res5; then :class:`WindowedPoolHead`.

    Args:
        layers: blocks per stage (``(3, 4, 6, 3)``: R50, ``(3, 4, 23, 3)``: R101).
        stem_kernel: the stem conv's kernel (spatial stride 2).
        stem_pool: the 1x3x3 max-pool after the stem.
        stage1_pool: a 2x1x1 temporal max-pool of stride 2 after res2 (C2D, I3D).
        conv_a_kernels: per stage, the first conv's kernel, or a list of kernels cycled over the blocks.
        conv_b_kernel: the middle conv's kernel (every stage).
        conv_b_type: ``'3d'`` or ``'2plus1d'`` (see :class:`BottleneckBlock`).
        channel_separated: the middle conv is depthwise (``groups = dim_inner``; ir-CSN).
        spatial_strides, temporal_strides: per stage, on the middle conv and the shortcut.
        head_pool_size: pytorchvideo's head ``AvgPool3d`` kernel (see :class:`WindowedPoolHead`).
        num_classes: classifier size (0: pooled features out).
        in_chans: input channels.
        drop_rate: dropout before the classifier (pytorchvideo's hub models: 0.5, CSN 0).
        global_pool: ``'avg'`` (the windowed average), ``'max'`` or ``''``.

    Attributes:
        feature_info: level 0 the stem (``blocks.0``, after its max-pool), levels 1..4 res2..res5 (the
            ``blocks`` entries of the stages; C2D/I3D's temporal pool after res2 belongs to no level).
        min_frames: the product of the temporal strides (and of the temporal pool).
        num_features, head_hidden_size: 2048.
    """

    def __init__(
        self,
        layers: Sequence[int] = (3, 4, 6, 3),
        stem_kernel: Triple = (1, 7, 7),
        stem_pool: bool = True,
        stage1_pool: bool = False,
        conv_a_kernels: Sequence[KernelSpec] = ((1, 1, 1), (1, 1, 1), (3, 1, 1), (3, 1, 1)),
        conv_b_kernel: Triple = (1, 3, 3),
        conv_b_type: str = "3d",
        channel_separated: bool = False,
        spatial_strides: Sequence[int] = (1, 2, 2, 2),
        temporal_strides: Sequence[int] = (1, 1, 1, 1),
        head_pool_size: Triple | None = (8, 7, 7),
        num_classes: int = 400,
        in_chans: int = 3,
        drop_rate: float = 0.5,
        global_pool: str = "avg",
    ) -> None:
        super().__init__()
        if not len(layers) == len(conv_a_kernels) == len(spatial_strides) == len(temporal_strides) == 4:
            raise ValueError(
                "layers, conv_a_kernels, spatial_strides and temporal_strides need one entry per stage (4)"
            )
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.grad_checkpointing = False

        blocks: list[nn.Module] = [ResNetBasicStem(in_chans, 64, tuple(stem_kernel), pool=stem_pool)]
        reduction, temporal_reduction = (4 if stem_pool else 2), 1
        feature_info = [dict(num_chs=64, reduction=reduction, temporal_reduction=1, module="blocks.0")]
        self._level_blocks = [0]  # index in ``blocks`` of each feature level's module
        dim_in, dim_out = 64, 256
        for i in range(4):
            dim_inner = dim_out // 4
            stride = (temporal_strides[i], spatial_strides[i], spatial_strides[i])
            groups = dim_inner if channel_separated else 1
            blocks.append(
                make_res_stage(
                    layers[i],
                    dim_in,
                    dim_inner,
                    dim_out,
                    conv_a_kernels[i],
                    tuple(conv_b_kernel),
                    stride,
                    conv_b_type,
                    groups,
                )
            )
            reduction *= spatial_strides[i]
            temporal_reduction *= temporal_strides[i]
            self._level_blocks.append(len(blocks) - 1)
            feature_info.append(
                dict(
                    num_chs=dim_out,
                    reduction=reduction,
                    temporal_reduction=temporal_reduction,
                    module=f"blocks.{len(blocks) - 1}",
                )
            )
            if i == 0 and stage1_pool:
                blocks.append(nn.MaxPool3d((2, 1, 1), stride=(2, 1, 1)))
                temporal_reduction *= 2
            dim_in, dim_out = dim_out, dim_out * 2
        self.blocks = nn.ModuleList(blocks)
        self.feature_info = FeatureInfo(feature_info)
        self.min_frames = temporal_reduction
        self.num_features = dim_in
        self.head = WindowedPoolHead(self.num_features, num_classes, head_pool_size, global_pool, drop_rate)
        init_pytorchvideo_weights(self)

    def _run_block(self, index: int, x: torch.Tensor) -> torch.Tensor:
        block = self.blocks[index]  # looked up each call, so a wrapped block is the one that runs
        if self.grad_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(block, x, use_reentrant=False)
        return block(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` -> the unpooled ``(B, 2048, T / min_frames, H', W')`` map of res5."""
        self.check_input(x)
        for index in range(len(self.blocks)):
            x = self._run_block(index, x)
        return x

    def forward_intermediates(self, x: torch.Tensor, indices: int | Sequence[int] | None = None) -> list[torch.Tensor]:
        """The ``(B, C, T, H, W)`` maps of the ``feature_info`` levels ``indices``, in that order
        (see :meth:`zoo.models.video_resnet.VideoResNet.forward_intermediates`)."""
        take = feature_take_indices(len(self.feature_info), indices)
        self.check_input(x)
        last_block = self._level_blocks[max(take)]
        maps = {}
        for index in range(last_block + 1):
            x = self._run_block(index, x)
            maps[index] = x
        return [maps[self._level_blocks[i]] for i in take]

    def prune_intermediate_layers(self, last_index: int) -> None:
        """Drop the blocks after level ``last_index`` and the classifier (``features_only`` use)."""
        for index in range(self._level_blocks[last_index] + 1, len(self.blocks)):
            self.blocks[index] = nn.Identity()
        self.reset_classifier(0, "")


_PYSLOWFAST_PREFIX = "model."
_PV_CLASSIFIER = re.compile(r"^blocks\.\d+\.proj\.")


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """pytorchvideo's ``model_state`` -> this family's keys: the classifier ``blocks.N.proj`` -> ``head.fc``.

    Keys under ``model.`` (PySlowFast's ``PTVResNet`` / ``PTVSlowFast`` wrappers) lose the prefix; the
    zoo's own checkpoints pass through. Used by the ``pv_resnet``, ``csn`` and ``slowfast`` families.
    """
    if state_dict and all(k.startswith(_PYSLOWFAST_PREFIX) for k in state_dict):
        state_dict = {k[len(_PYSLOWFAST_PREFIX) :]: v for k, v in state_dict.items()}
    return {_PV_CLASSIFIER.sub("head.fc.", k): v for k, v in state_dict.items()}


def _create_pv_resnet(variant: str, pretrained: bool = False, **kwargs: Any) -> PVResNet:
    return build_model_with_cfg(PVResNet, variant, pretrained, pretrained_filter_fn=checkpoint_filter_fn, **kwargs)


def pytorchvideo_cfg(**kwargs: Any):
    """A pytorchvideo model's cfg: its normalisation and eval transform (short side resized to the crop,
    pytorchvideo's hub pages and PySlowFast's 3-crop test), Apache-2.0, Kinetics-400 classes.

    With a ``url``, the notes say that pytorchvideo publishes no hash (``hash_prefix=None``), and a
    Kinetics-400 checkpoint (400 classes) gets the Kinetics-400 label names.
    """
    defaults = dict(
        mean=PV_MEAN,
        std=PV_STD,
        crop_pct=1.0,
        num_classes=400,
        license=PV_LICENSE,
        classifier="head.fc",
        first_conv="blocks.0.conv",
        dataset="Kinetics-400",
        hash_prefix=None,
        min_size=1,
        min_frames=1,
    )
    values = dict(defaults, **kwargs)
    if values.get("url") and values["dataset"] == "Kinetics-400" and values["num_classes"] == 400:
        values.setdefault("label_names", kinetics400_label_names())
    if values.get("url") and "notes" not in kwargs:
        values["notes"] = (
            "pytorchvideo's checkpoint (weights under 'model_state'); pytorchvideo publishes no hash for it "
            "(hash_prefix None: the sha256 is recorded on first use). Metrics, GFLOPs and params as "
            "pytorchvideo's model zoo table states them (views = temporal clips x spatial crops)."
        )
    return video_cfg(**values)


def _metrics(top1: float, top5: float, views: str, clip_len: int, frame_stride: int) -> dict[str, Any]:
    return dict(top1=top1, top5=top5, views=views, clip_len=clip_len, frame_stride=frame_stride)


_SLOWFAST_PAPER = "https://arxiv.org/abs/1812.03982"
_SSV2_NOTES = (
    "pytorchvideo's Something-Something V2 checkpoint (model zoo table; no hub builder), fine-tuned from "
    "Kinetics-400 with PySlowFast (configs/SSv2/pytorchvideo/SLOW_8x8_R50.yaml): 174 classes, frames "
    "sampled uniformly over the video (NUM_FRAMES 8) and REVERSE_INPUT_CHANNEL True, i.e. BGR input. "
    "pytorchvideo publishes no hash (hash_prefix None). Metrics as pytorchvideo's table states them (3 crops x 1 clip)."
)

default_cfgs = {
    "slow_r50": pytorchvideo_cfg(input_size=(3, 8, 256, 256), frame_stride=8, resize_size=256, paper=_SLOWFAST_PAPER),
    "slow_r50.pv_k400": pytorchvideo_cfg(
        url=f"{PV_MODEL_ZOO}/kinetics/SLOW_8x8_R50.pyth",
        input_size=(3, 8, 256, 256),
        frame_stride=8,
        resize_size=256,
        paper=_SLOWFAST_PAPER,
        metrics=_metrics(74.58, 91.63, "10x3", 8, 8),
        gflops=54.52,
        num_params=32_450_000,
        recipe="https://github.com/facebookresearch/SlowFast/blob/main/configs/Kinetics/pytorchvideo/SLOW_8x8_R50.yaml",
    ),
    "slow_r50.pv_ssv2": pytorchvideo_cfg(
        url=f"{PV_MODEL_ZOO}/ssv2/SLOW_8x8_R50.pyth",
        input_size=(3, 8, 256, 256),
        frame_stride=8,
        resize_size=256,
        num_classes=174,
        dataset="Something-Something-V2",
        paper=_SLOWFAST_PAPER,
        metrics=_metrics(60.04, 85.19, "1x3", 8, 8),
        gflops=55.10,
        num_params=31_960_000,
        recipe="https://github.com/facebookresearch/SlowFast/blob/main/configs/SSv2/pytorchvideo/SLOW_8x8_R50.yaml",
        notes=_SSV2_NOTES,
    ),
    "c2d_r50": pytorchvideo_cfg(min_frames=2, input_size=(3, 8, 256, 256), frame_stride=8, resize_size=256),
    "c2d_r50.pv_k400": pytorchvideo_cfg(
        min_frames=2,
        url=f"{PV_MODEL_ZOO}/kinetics/C2D_8x8_R50.pyth",
        input_size=(3, 8, 256, 256),
        frame_stride=8,
        resize_size=256,
        paper="https://arxiv.org/abs/1711.07971",
        metrics=_metrics(71.46, 89.68, "10x3", 8, 8),
        gflops=25.89,
        num_params=24_330_000,
        recipe="https://github.com/facebookresearch/SlowFast/blob/main/configs/Kinetics/pytorchvideo/C2D_8x8_R50.yaml",
    ),
    "i3d_r50": pytorchvideo_cfg(min_frames=2, input_size=(3, 8, 256, 256), frame_stride=8, resize_size=256),
    "i3d_r50.pv_k400": pytorchvideo_cfg(
        min_frames=2,
        url=f"{PV_MODEL_ZOO}/kinetics/I3D_8x8_R50.pyth",
        input_size=(3, 8, 256, 256),
        frame_stride=8,
        resize_size=256,
        paper="https://arxiv.org/abs/1705.07750",
        metrics=_metrics(73.27, 90.70, "10x3", 8, 8),
        gflops=37.53,
        num_params=28_040_000,
        recipe="https://github.com/facebookresearch/SlowFast/blob/main/configs/Kinetics/pytorchvideo/I3D_8x8_R50.yaml",
    ),
    "r2plus1d_r50": pytorchvideo_cfg(min_frames=4, input_size=(3, 16, 256, 256), frame_stride=4, resize_size=256),
    "r2plus1d_r50.pv_k400": pytorchvideo_cfg(
        min_frames=4,
        url=f"{PV_MODEL_ZOO}/kinetics/R2PLUS1D_16x4_R50.pyth",
        input_size=(3, 16, 256, 256),
        frame_stride=4,
        resize_size=256,
        paper="https://arxiv.org/abs/1711.11248",
        metrics=_metrics(76.01, 92.23, "10x3", 16, 4),
        gflops=76.45,
        num_params=28_110_000,
        recipe="https://github.com/facebookresearch/SlowFast/blob/main/configs/Kinetics/pytorchvideo/R2PLUS1D_16x4_R50.yaml",
        notes=(
            "pytorchvideo's checkpoint (weights under 'model_state'); pytorchvideo publishes no hash for it "
            "(hash_prefix None: the sha256 is recorded on first use). pytorchvideo's hub model ends in a softmax; "
            "ours returns the logits. Metrics, GFLOPs and params as pytorchvideo's model zoo table states them."
        ),
    ),
}


@register_model
def slow_r50(pretrained: bool = False, **kwargs: Any) -> PVResNet:
    """Slow R50 8x8 (Feichtenhofer et al. 2019), pytorchvideo's hub ``slow_r50``: layout, keys and logits."""
    model_args = dict(stem_kernel=(1, 7, 7), head_pool_size=(8, 7, 7))
    return _create_pv_resnet("slow_r50", pretrained, **dict(model_args, **kwargs))


@register_model
def c2d_r50(pretrained: bool = False, **kwargs: Any) -> PVResNet:
    """C2D R50 8x8, pytorchvideo's hub ``c2d_r50``: 2D convs only, a temporal max-pool after res2."""
    model_args = dict(
        stem_kernel=(1, 7, 7),
        stage1_pool=True,
        conv_a_kernels=((1, 1, 1),) * 4,
        head_pool_size=(4, 7, 7),
    )
    return _create_pv_resnet("c2d_r50", pretrained, **dict(model_args, **kwargs))


@register_model
def i3d_r50(pretrained: bool = False, **kwargs: Any) -> PVResNet:
    """I3D R50 8x8 (Carreira and Zisserman 2017, ResNet form), pytorchvideo's hub ``i3d_r50``."""
    model_args = dict(
        stem_kernel=(5, 7, 7),
        stage1_pool=True,
        conv_a_kernels=(
            (3, 1, 1),
            [(3, 1, 1), (1, 1, 1)],
            [(3, 1, 1), (1, 1, 1)],
            [(1, 1, 1), (3, 1, 1)],
        ),
        head_pool_size=(4, 7, 7),
    )
    return _create_pv_resnet("i3d_r50", pretrained, **dict(model_args, **kwargs))


@register_model
def r2plus1d_r50(pretrained: bool = False, **kwargs: Any) -> PVResNet:
    """R(2+1)D-50 16x4 (Tran et al. 2018), pytorchvideo's hub ``r2plus1d_r50`` (logits; no softmax)."""
    model_args = dict(
        stem_kernel=(1, 7, 7),
        stem_pool=False,
        conv_a_kernels=((1, 1, 1),) * 4,
        conv_b_kernel=(3, 3, 3),
        conv_b_type="2plus1d",
        spatial_strides=(2, 2, 2, 2),
        temporal_strides=(1, 1, 2, 2),
        head_pool_size=(4, 7, 7),
    )
    return _create_pv_resnet("r2plus1d_r50", pretrained, **dict(model_args, **kwargs))
