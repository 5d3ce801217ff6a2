"""Video ResNets: R2D, R3D, MC3, R(2+1)D and I3D-style inflated ResNets, depths 18 to 101.

One class, :class:`VideoResNet`, builds them all from a residual block, a convolution builder per
stage (:mod:`zoo.layers.conv`), per-stage temporal strides and a stem. Whose conventions each
registered model follows:

================  =====================================================================================
model             conventions (whose choices)
================  =====================================================================================
``r3d_18``        torchvision's ``r3d_18`` (Tran et al. 2018): 3x3x3 convs, 3x7x7 stem, no max-pool,
                  stride 2 in time and space at res3..res5.
``mc3_18``        torchvision's ``mc3_18``: 3x3x3 convs in res2, 1x3x3 above, no temporal stride.
``r2plus1d_18``   torchvision's ``r2plus1d_18``: (2+1)D convs with parameter-matched middle widths.
                  These three use torchvision's module layout and key names: torchvision
                  checkpoints load (``fc`` -> ``head.fc``) and give torchvision's outputs.
``r2plus1d_34``   Tran et al.'s R(2+1)D-34 on torchvision's layout (torchvision has no builder for it).
``r2plus1d_50``   torchvision's ``VideoResNet(Bottleneck, Conv2Plus1D, [3, 4, 6, 3])`` layout.
``r2d_50``,       HCML (appendix B.1, Table 7): ImageNet ResNet-50 layout with a 1x7x7 stem of spatial
``r2plus1d_101``  stride 2, a 1x3x3 max-pool (ours: Table 7 lists none, but its 56x56 res2 needs it),
                  temporal stride 2 at res3 and res4 (T, T/2, T/4, T/4 at res2..res5). R(2+1)D-101 is
                  top-heavy: a 3x1x1 conv before the 1x3x3 one in res4 and res5 only, at the constant
                  bottleneck width (not torchvision's parameter-matched width).
``r2d_18``        ours, where the papers are silent: ImageNet ResNet-18 on every frame (1x7x7 stem,
                  max-pool, no temporal stride), so that timm's ``resnet18`` weights load exactly.
``r3d_50``        ours: ``r2d_50`` with 3x3x3 middle convs and a 3x7x7 stem (inflatable from
                  ImageNet ResNet-50; HCML's temporal strides).
``i3d_50``        ours: the I3D ResNet-50 of Wang et al. (non-local networks) as PySlowFast builds it --
                  5x7x7 stem, 3x1x1 first bottleneck convs (all of res2, every other block of res3 and
                  res4 from the first, the middle block of res5) -- with HCML's temporal strides in
                  place of temporal max-pools.
================  =====================================================================================

Weights of timm's 2D ``resnet18`` / ``resnet50`` (keys ``conv1``, ``bn1``, ``layer1.0.conv1``, ...,
``downsample.0``, ``fc``) load into ``r2d_*``, ``r3d_50``, ``i3d_50`` (and any model here whose convs
map one-to-one onto them) by :func:`checkpoint_filter_fn`: 2D kernels are inflated to the model's
temporal size, ``'centre'`` or ``'mean'`` as the model's ``weight_inflation`` says.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from .._builder import build_model_with_cfg
from .._features import FeatureInfo
from .._pretrained import KINETICS_MEAN, KINETICS_STD, kinetics400_label_names, video_cfg
from .._registry import register_model
from ..layers import Conv2Plus1D, Conv3DNoTemporal, Conv3DSimple, feature_take_indices, inflate_state_dict
from ..layers.inflate import INFLATION_MODES
from ._base import VideoClassifierHead, VideoModel

__all__ = ["VideoResNet", "BasicBlock", "Bottleneck", "checkpoint_filter_fn"]

ConvMaker = Callable[..., nn.Module]
Stride3 = tuple[int, int, int]


def _matched_midplanes(inplanes: int, planes: int) -> int:
    """torchvision's (2+1)D middle width: as many parameters as a 3x3x3 conv of ``inplanes -> planes``."""
    return (inplanes * planes * 3 * 3 * 3) // (inplanes * 3 * 3 + 3 * planes)


class BasicBlock(nn.Module):
    """Two 3-D convs and a residual (torchvision's layout: ``conv1.{0,1}``, ``conv2.{0,1}``, ``downsample``).

    Args:
        inplanes: input channels.
        planes: output channels.
        conv_maker: conv builder called as ``conv_maker(in, out, midplanes, stride)``.
        stride: ``(t, h, w)`` stride of the first conv (and of the shortcut).
        downsample: shortcut projection, when shape changes.
        constant_width: (2+1)D middle width ``planes`` instead of torchvision's parameter-matched one.
    """

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        conv_maker: ConvMaker,
        stride: Stride3 = (1, 1, 1),
        downsample: nn.Module | None = None,
        constant_width: bool = False,
    ) -> None:
        super().__init__()
        midplanes = planes if constant_width else _matched_midplanes(inplanes, planes)
        self.conv1 = nn.Sequential(
            conv_maker(inplanes, planes, midplanes, stride), nn.BatchNorm3d(planes), nn.ReLU(inplace=True)
        )
        self.conv2 = nn.Sequential(conv_maker(planes, planes, midplanes, (1, 1, 1)), nn.BatchNorm3d(planes))
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.conv2[1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.conv2(self.conv1(x))
        return self.relu(out + shortcut)


class Bottleneck(nn.Module):
    """1x1x1 -> builder conv -> 1x1x1 bottleneck with a residual (torchvision's layout, ``conv1..conv3``).

    Args:
        inplanes: input channels.
        planes: bottleneck width; the output has ``4 * planes`` channels.
        conv_maker: the middle conv's builder, called as ``conv_maker(planes, planes, midplanes, stride)``.
        stride: ``(t, h, w)`` stride of the middle conv (and of the shortcut), ResNet v1.5's place.
        downsample: shortcut projection, when shape changes.
        constant_width: (2+1)D middle width ``planes`` (HCML) instead of torchvision's parameter-matched one.
        temporal_kernel_a: temporal size of the first conv (``kT x 1 x 1``, I3D's inflation place).
    """

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        conv_maker: ConvMaker,
        stride: Stride3 = (1, 1, 1),
        downsample: nn.Module | None = None,
        constant_width: bool = False,
        temporal_kernel_a: int = 1,
    ) -> None:
        super().__init__()
        midplanes = planes if constant_width else _matched_midplanes(inplanes, planes)
        kt = temporal_kernel_a
        self.conv1 = nn.Sequential(
            nn.Conv3d(inplanes, planes, (kt, 1, 1), padding=(kt // 2, 0, 0), bias=False),
            nn.BatchNorm3d(planes),
            nn.ReLU(inplace=True),
        )
        self.conv2 = nn.Sequential(
            conv_maker(planes, planes, midplanes, stride), nn.BatchNorm3d(planes), nn.ReLU(inplace=True)
        )
        self.conv3 = nn.Sequential(
            nn.Conv3d(planes, planes * self.expansion, kernel_size=1, bias=False),
            nn.BatchNorm3d(planes * self.expansion),
        )
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.conv3[1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.conv3(self.conv2(self.conv1(x)))
        return self.relu(out + shortcut)


def _make_stem(stem_type: str, in_chans: int, temporal_kernel: int) -> nn.Sequential:
    """``'basic'``: ``kT x 7 x 7`` conv, spatial stride 2, BN, ReLU; ``'r2plus1d'``: torchvision's
    R(2+1)D stem (1x7x7 to 45 channels, BN, ReLU, 3x1x1 to 64, BN, ReLU). 64 channels out."""
    if stem_type == "basic":
        kt = temporal_kernel
        return nn.Sequential(
            nn.Conv3d(in_chans, 64, (kt, 7, 7), stride=(1, 2, 2), padding=(kt // 2, 3, 3), bias=False),
            nn.BatchNorm3d(64),
            nn.ReLU(inplace=True),
        )
    if stem_type == "r2plus1d":
        return nn.Sequential(
            nn.Conv3d(in_chans, 45, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
            nn.BatchNorm3d(45),
            nn.ReLU(inplace=True),
            nn.Conv3d(45, 64, (3, 1, 1), stride=(1, 1, 1), padding=(1, 0, 0), bias=False),
            nn.BatchNorm3d(64),
            nn.ReLU(inplace=True),
        )
    raise ValueError(f"stem_type must be 'basic' or 'r2plus1d', got {stem_type!r}")


class VideoResNet(VideoModel):
    """A ResNet over clips ``(B, C, T, H, W)``: stem, optional 1x3x3 max-pool, four stages, pooled head.

    Args:
        block: :class:`BasicBlock` or :class:`Bottleneck`.
        layers: blocks per stage (res2..res5).
        conv_makers: the conv builder of each stage (``Conv3DSimple``, ``Conv3DNoTemporal``,
            ``Conv2Plus1D`` or a ``functools.partial`` of one).
        temporal_strides: temporal stride of each stage's first block (spatial strides are 1, 2, 2, 2).
        stem_type: ``'basic'`` or ``'r2plus1d'`` (see :func:`_make_stem`).
        stem_temporal_kernel: ``kT`` of the basic stem's conv.
        stem_pool: a 1x3x3 max-pool with spatial stride 2 after the stem (ImageNet ResNets).
        temporal_kernels_a: per stage, the temporal kernel of each bottleneck's first conv (I3D).
        constant_width: (2+1)D middle width equal to the block width.
        num_classes: classifier size (0: pooled features out).
        in_chans: input channels.
        drop_rate: dropout before the classifier.
        global_pool: ``'avg'``, ``'max'`` or ``''``.
        zero_init_last: zero the last BN of every block (the residual branch starts at 0).
        weight_inflation: ``'centre'`` or ``'mean'``, how 2D weights are inflated when loaded.

    Attributes:
        feature_info: level 0 the stem's output (``'stem'``), levels 1..4 ``'layer1'``..``'layer4'``
            (HCML's level ``l`` after res_{l+1} is ``feature_info[l]``).
        min_frames: the product of the temporal strides; shorter clips are refused.
    """

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: Sequence[int],
        conv_makers: Sequence[ConvMaker],
        temporal_strides: Sequence[int] = (1, 1, 1, 1),
        stem_type: str = "basic",
        stem_temporal_kernel: int = 3,
        stem_pool: bool = False,
        temporal_kernels_a: Sequence[Sequence[int]] | None = None,
        constant_width: bool = False,
        num_classes: int = 400,
        in_chans: int = 3,
        drop_rate: float = 0.0,
        global_pool: str = "avg",
        zero_init_last: bool = False,
        weight_inflation: str = "centre",
    ) -> None:
        super().__init__()
        if len(layers) != 4 or len(conv_makers) != 4 or len(temporal_strides) != 4:
            raise ValueError("layers, conv_makers and temporal_strides need one entry per stage (4)")
        if weight_inflation not in (*INFLATION_MODES, "center"):
            raise ValueError(f"weight_inflation must be one of {INFLATION_MODES}, got {weight_inflation!r}")
        if temporal_kernels_a is not None and block is not Bottleneck:
            raise ValueError("temporal_kernels_a needs Bottleneck blocks")
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.weight_inflation = weight_inflation
        self.grad_checkpointing = False

        self.stem = _make_stem(stem_type, in_chans, stem_temporal_kernel)
        self.maxpool = nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)) if stem_pool else nn.Identity()
        feature_info = [dict(num_chs=64, reduction=2, temporal_reduction=1, module="stem")]
        self.inplanes = 64
        reduction, temporal_reduction = (4 if stem_pool else 2), 1
        for i, (planes, spatial_stride) in enumerate(zip((64, 128, 256, 512), (1, 2, 2, 2))):
            stride = (temporal_strides[i], spatial_stride, spatial_stride)
            kernels_a = None if temporal_kernels_a is None else temporal_kernels_a[i]
            stage = self._make_layer(block, conv_makers[i], planes, layers[i], stride, constant_width, kernels_a)
            self.add_module(f"layer{i + 1}", stage)
            reduction *= spatial_stride
            temporal_reduction *= temporal_strides[i]
            feature_info.append(
                dict(
                    num_chs=planes * block.expansion,
                    reduction=reduction,
                    temporal_reduction=temporal_reduction,
                    module=f"layer{i + 1}",
                )
            )
        del self.inplanes
        self.feature_info = FeatureInfo(feature_info)
        self.min_frames = temporal_reduction
        self.num_features = 512 * block.expansion
        self.head = VideoClassifierHead(self.num_features, num_classes, global_pool, drop_rate)
        self._init_weights(zero_init_last)

    def _make_layer(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        conv_maker: ConvMaker,
        planes: int,
        blocks: int,
        stride: Stride3,
        constant_width: bool,
        temporal_kernels_a: Sequence[int] | None,
    ) -> nn.Sequential:
        if temporal_kernels_a is not None and len(temporal_kernels_a) != blocks:
            raise ValueError(f"temporal_kernels_a {temporal_kernels_a} needs one kernel per block ({blocks})")
        downsample = None
        if stride != (1, 1, 1) or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv3d(self.inplanes, planes * block.expansion, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm3d(planes * block.expansion),
            )
        blocks_out = []
        for j in range(blocks):
            extra: dict[str, Any] = dict(constant_width=constant_width)
            if temporal_kernels_a is not None:
                extra["temporal_kernel_a"] = temporal_kernels_a[j]
            first = j == 0
            blocks_out.append(
                block(
                    self.inplanes,
                    planes,
                    conv_maker,
                    stride if first else (1, 1, 1),
                    downsample if first else None,
                    **extra,
                )
            )
            self.inplanes = planes * block.expansion
        return nn.Sequential(*blocks_out)

    def _init_weights(self, zero_init_last: bool) -> None:
        """torchvision's initialisation: Kaiming-normal convs (fan-out), unit BN, N(0, 0.01) classifier."""
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)
        if zero_init_last:
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)):
                    m.zero_init_last()

    @property
    def stage_names(self) -> tuple[str, ...]:
        """Attribute names of the four stages, in order (``feature_info[1:]``'s modules)."""
        return ("layer1", "layer2", "layer3", "layer4")

    def _run_stage(self, name: str, x: torch.Tensor) -> torch.Tensor:
        stage = getattr(self, name)  # looked up each call, so a wrapped stage is the one that runs
        if self.grad_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(stage, x, use_reentrant=False)
        return stage(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` -> the unpooled ``(B, num_features, T', H', W')`` map of ``layer4``."""
        self.check_input(x)
        x = self.maxpool(self.stem(x))
        for name in self.stage_names:
            x = self._run_stage(name, x)
        return x

    def forward_intermediates(self, x: torch.Tensor, indices: int | Sequence[int] | None = None) -> list[torch.Tensor]:
        """The ``(B, C, T, H, W)`` maps of the ``feature_info`` levels ``indices``, in that order.

        Args:
            x: input clip.
            indices: level indices (negative ones count from the end), an int ``n`` for the last
                ``n`` levels, or None for all. Stages after the last needed level are not run.
        """
        take = feature_take_indices(len(self.feature_info), indices)
        self.check_input(x)
        maps: dict[int, torch.Tensor] = {}
        x = self.stem(x)
        maps[0] = x
        x = self.maxpool(x)
        for level, name in enumerate(self.stage_names, start=1):
            if level > max(take):
                break
            x = self._run_stage(name, x)
            maps[level] = x
        return [maps[i] for i in take]

    def prune_intermediate_layers(self, last_index: int) -> None:
        """Drop the stages after level ``last_index`` and the classifier (``features_only`` use)."""
        for level, name in enumerate(self.stage_names, start=1):
            if level > last_index:
                setattr(self, name, nn.Identity())
        self.reset_classifier(0, "")


_TIMM_BLOCK_KEY = re.compile(r"^(layer\d+\.\d+)\.(conv|bn)(\d)\.(.+)$")


def _remap_2d_resnet_keys(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """timm's (= torchvision's image) ResNet keys -> this family's: ``conv1``/``bn1`` -> ``stem.0``/``stem.1``,
    ``layerI.J.convK`` / ``bnK`` -> ``layerI.J.convK.0`` / ``convK.1``; ``downsample`` and ``fc`` keep their names."""
    out = {}
    for key, value in state_dict.items():
        if key.startswith("conv1."):
            key = "stem.0." + key[len("conv1.") :]
        elif key.startswith("bn1."):
            key = "stem.1." + key[len("bn1.") :]
        elif m := _TIMM_BLOCK_KEY.match(key):
            block, kind, k, rest = m.groups()
            key = f"{block}.conv{k}.{0 if kind == 'conv' else 1}.{rest}"
        out[key] = value
    return out


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: VideoResNet) -> dict[str, torch.Tensor]:
    """Convert a state dict to this family's layout.

    - timm 2D ResNet (recognised by a top-level ``conv1.weight``): keys remapped and 4-D kernels
      inflated to the model's (``model.weight_inflation``: ``'centre'`` or ``'mean'``).
    - torchvision ``VideoResNet``: only the classifier moves, ``fc`` -> ``head.fc``.
    - the zoo's own checkpoints pass through.
    """
    if "conv1.weight" in state_dict:
        state_dict = _remap_2d_resnet_keys(state_dict)
        own = model.state_dict()
        foreign = sorted(k for k in state_dict if k not in own and not k.startswith("fc."))
        if foreign:
            raise ValueError(
                f"2D ResNet weights do not map onto this {type(model).__name__}: no place for "
                f"{foreign[:4]}{' ...' if len(foreign) > 4 else ''}. They load into r2d_*, r3d_50 and i3d_50 "
                "(one 3-D conv for every 2-D conv), not into (2+1)D models."
            )
        state_dict = inflate_state_dict(state_dict, own, model.weight_inflation)
    return {("head." + k if k.startswith("fc.") else k): v for k, v in state_dict.items()}


def _create_video_resnet(variant: str, pretrained: bool = False, **kwargs: Any) -> VideoResNet:
    return build_model_with_cfg(VideoResNet, variant, pretrained, pretrained_filter_fn=checkpoint_filter_fn, **kwargs)


_TV_RECIPE = "https://github.com/pytorch/vision/tree/main/references/video_classification"


def _cfg(**kwargs: Any):
    """Zoo defaults: 16 frames at 224, every 2nd frame, ImageNet normalisation (ImageNet-inflated nets)."""
    defaults = dict(
        input_size=(3, 16, 224, 224), frame_stride=2, num_classes=400, first_conv="stem.0", classifier="head.fc"
    )
    return video_cfg(**dict(defaults, **kwargs))


def _tv_cfg(**kwargs: Any):
    """torchvision's video nets: 16 frames at 112 (resize 128x171, crop 112), Kinetics normalisation.
    torchvision samples clips at 15 fps, about every 2nd frame of a 25-30 fps video."""
    defaults = dict(input_size=(3, 16, 112, 112), mean=KINETICS_MEAN, std=KINETICS_STD, crop_pct=112 / 128)
    return _cfg(**dict(defaults, recipe=_TV_RECIPE, **kwargs))


def _tv_k400_cfg(url: str, top1: float, top5: float, num_params: int, gflops: float, **kwargs: Any):
    """torchvision's Kinetics-400 weights (``R3D_18_Weights.KINETICS400_V1`` and its siblings): the file at
    ``url`` (its name ends with the first hex digits of its sha256), the metrics torchvision states
    (video-level, 5 clips of 16 frames at 15 fps per video), and torchvision's eval transform
    (resize to 128x171, centre crop 112, Kinetics mean/std)."""
    return _tv_cfg(
        url=url, hash_prefix=url.rsplit("-", 1)[-1].split(".")[0], resize_size=(128, 171), min_size=1, min_frames=1,
        license="BSD-3-Clause", dataset="Kinetics-400", num_params=num_params, gflops=gflops,
        label_names=kinetics400_label_names(),
        metrics={"top1": top1, "top5": top5, "views": "5x1", "clip_len": 16, "frame_rate": 15, "clips_per_video": 5},
        notes="torchvision's weights; ported unchanged (a torchvision state dict loads into this architecture).",
        **kwargs,
    )


def _timm_in1k_cfg(hf_hub_id: str, **kwargs: Any):
    """timm's ImageNet-1k ResNet weights, inflated on load: an initialisation, not a video classifier."""
    return _cfg(
        **dict(
            dict(
                hf_hub_id=hf_hub_id,
                num_classes=1000,
                license="apache-2.0",
                paper="https://arxiv.org/abs/2110.00476",
                dataset="imagenet-1k",
                notes="timm 2D ImageNet weights; 2D kernels inflated to 3D on load (model arg weight_inflation).",
            ),
            **kwargs,
        )
    )


_HCML_PAPER = "HCML, appendix B.1 Table 7"

default_cfgs = {
    "r2d_18": _cfg(),
    "r2d_50": _cfg(paper=_HCML_PAPER),
    "r2d_50.timm_in1k": _timm_in1k_cfg("timm/resnet50.a1_in1k"),
    "r3d_18": _tv_cfg(paper="https://arxiv.org/abs/1711.11248"),
    "r3d_18.tv_k400": _tv_k400_cfg(
        "https://download.pytorch.org/models/r3d_18-b3b3357e.pth", 63.2, 83.479, 33371472, 40.697,
        paper="https://arxiv.org/abs/1711.11248",
    ),
    "r3d_50": _cfg(),
    "r3d_50.timm_in1k": _timm_in1k_cfg("timm/resnet50.a1_in1k"),
    "mc3_18": _tv_cfg(paper="https://arxiv.org/abs/1711.11248"),
    "mc3_18.tv_k400": _tv_k400_cfg(
        "https://download.pytorch.org/models/mc3_18-a90a0ba3.pth", 63.96, 84.13, 11695440, 43.343,
        paper="https://arxiv.org/abs/1711.11248",
    ),
    "r2plus1d_18": _tv_cfg(paper="https://arxiv.org/abs/1711.11248"),
    "r2plus1d_18.tv_k400": _tv_k400_cfg(
        "https://download.pytorch.org/models/r2plus1d_18-91a641e6.pth", 67.463, 86.175, 31505325, 40.519,
        paper="https://arxiv.org/abs/1711.11248",
    ),
    "r2plus1d_34": _tv_cfg(paper="https://arxiv.org/abs/1711.11248"),
    "r2plus1d_50": _tv_cfg(paper="https://arxiv.org/abs/1711.11248"),
    "r2plus1d_101": _cfg(input_size=(3, 32, 224, 224), paper=_HCML_PAPER),
    "i3d_50": _cfg(paper="https://arxiv.org/abs/1711.07971"),
    "i3d_50.timm_in1k": _timm_in1k_cfg("timm/resnet50.a1_in1k"),
}

_HCML_TEMPORAL_STRIDES = (1, 2, 2, 1)


@register_model
def r2d_18(pretrained: bool = False, **kwargs: Any) -> VideoResNet:
    """R2D-18: ImageNet ResNet-18 on every frame (1x7x7 stem, max-pool, 1x3x3 convs, no temporal stride).

    Ours where the papers are silent; timm's ``resnet18`` weights load exactly (pass the file with
    ``pretrained_cfg_overlay=dict(file=...)``).
    """
    model_args = dict(
        block=BasicBlock,
        layers=(2, 2, 2, 2),
        conv_makers=(Conv3DNoTemporal,) * 4,
        stem_temporal_kernel=1,
        stem_pool=True,
    )
    return _create_video_resnet("r2d_18", pretrained, **dict(model_args, **kwargs))


@register_model
def r2d_50(pretrained: bool = False, **kwargs: Any) -> VideoResNet:
    """R2D-50 of HCML's Table 7: ImageNet ResNet-50 as 1x*x* convs, temporal stride 2 at res3 and res4.

    Output sizes at ``T x 224 x 224``: ``T x 56`` (res2), ``T/2 x 28``, ``T/4 x 14``, ``T/4 x 7`` (res5).
    The 1x3x3 max-pool is ours (the table lists none but needs it for 56x56). timm's ``resnet50``
    weights load exactly (``r2d_50.timm_in1k``).
    """
    model_args = dict(
        block=Bottleneck,
        layers=(3, 4, 6, 3),
        conv_makers=(Conv3DNoTemporal,) * 4,
        temporal_strides=_HCML_TEMPORAL_STRIDES,
        stem_temporal_kernel=1,
        stem_pool=True,
    )
    return _create_video_resnet("r2d_50", pretrained, **dict(model_args, **kwargs))


@register_model
def r3d_18(pretrained: bool = False, **kwargs: Any) -> VideoResNet:
    """R3D-18 (Tran et al. 2018), torchvision's ``r3d_18``: layout, keys and outputs."""
    model_args = dict(
        block=BasicBlock,
        layers=(2, 2, 2, 2),
        conv_makers=(Conv3DSimple,) * 4,
        temporal_strides=(1, 2, 2, 2),
        stem_temporal_kernel=3,
    )
    return _create_video_resnet("r3d_18", pretrained, **dict(model_args, **kwargs))


@register_model
def r3d_50(pretrained: bool = False, **kwargs: Any) -> VideoResNet:
    """R3D-50: ``r2d_50`` with 3x3x3 middle convs and a 3x7x7 stem (ours), inflatable from ImageNet ResNet-50."""
    model_args = dict(
        block=Bottleneck,
        layers=(3, 4, 6, 3),
        conv_makers=(Conv3DSimple,) * 4,
        temporal_strides=_HCML_TEMPORAL_STRIDES,
        stem_temporal_kernel=3,
        stem_pool=True,
    )
    return _create_video_resnet("r3d_50", pretrained, **dict(model_args, **kwargs))


@register_model
def mc3_18(pretrained: bool = False, **kwargs: Any) -> VideoResNet:
    """MC3-18 (Tran et al. 2018), torchvision's ``mc3_18``: 3x3x3 convs in res2, 1x3x3 above."""
    model_args = dict(
        block=BasicBlock,
        layers=(2, 2, 2, 2),
        conv_makers=(Conv3DSimple,) + (Conv3DNoTemporal,) * 3,
        stem_temporal_kernel=3,
    )
    return _create_video_resnet("mc3_18", pretrained, **dict(model_args, **kwargs))


@register_model
def r2plus1d_18(pretrained: bool = False, **kwargs: Any) -> VideoResNet:
    """R(2+1)D-18 (Tran et al. 2018), torchvision's ``r2plus1d_18``: layout, keys and outputs."""
    model_args = dict(
        block=BasicBlock,
        layers=(2, 2, 2, 2),
        conv_makers=(Conv2Plus1D,) * 4,
        temporal_strides=(1, 2, 2, 2),
        stem_type="r2plus1d",
    )
    return _create_video_resnet("r2plus1d_18", pretrained, **dict(model_args, **kwargs))


@register_model
def r2plus1d_34(pretrained: bool = False, **kwargs: Any) -> VideoResNet:
    """R(2+1)D-34 (Tran et al. 2018) on torchvision's ``r2plus1d_18`` layout, blocks (3, 4, 6, 3)."""
    model_args = dict(
        block=BasicBlock,
        layers=(3, 4, 6, 3),
        conv_makers=(Conv2Plus1D,) * 4,
        temporal_strides=(1, 2, 2, 2),
        stem_type="r2plus1d",
    )
    return _create_video_resnet("r2plus1d_34", pretrained, **dict(model_args, **kwargs))


@register_model
def r2plus1d_50(pretrained: bool = False, **kwargs: Any) -> VideoResNet:
    """R(2+1)D-50: torchvision's ``VideoResNet`` with bottlenecks and parameter-matched (2+1)D convs."""
    model_args = dict(
        block=Bottleneck,
        layers=(3, 4, 6, 3),
        conv_makers=(Conv2Plus1D,) * 4,
        temporal_strides=(1, 2, 2, 2),
        stem_type="r2plus1d",
    )
    return _create_video_resnet("r2plus1d_50", pretrained, **dict(model_args, **kwargs))


@register_model
def r2plus1d_101(pretrained: bool = False, **kwargs: Any) -> VideoResNet:
    """R(2+1)D-101 of HCML's Table 7, top-heavy: 3x1x1 then 1x3x3 convs only in res4 and res5.

    1x7x7 stem with max-pool (as ``r2d_50``), 1x3x3 middle convs in res2/res3, bottleneck width kept
    constant in the (2+1)D convs, temporal stride 2 at res3 (frame subsampling) and res4 (on the
    3x1x1 conv). Output sizes ``T x 56``, ``T/2 x 28``, ``T/4 x 14``, ``T/4 x 7``.
    """
    temporal_first = partial(Conv2Plus1D, temporal_first=True)
    model_args = dict(
        block=Bottleneck,
        layers=(3, 4, 23, 3),
        conv_makers=(Conv3DNoTemporal, Conv3DNoTemporal, temporal_first, temporal_first),
        temporal_strides=_HCML_TEMPORAL_STRIDES,
        stem_temporal_kernel=1,
        stem_pool=True,
        constant_width=True,
    )
    return _create_video_resnet("r2plus1d_101", pretrained, **dict(model_args, **kwargs))


@register_model
def i3d_50(pretrained: bool = False, **kwargs: Any) -> VideoResNet:
    """I3D ResNet-50: 5x7x7 stem and 3x1x1 first bottleneck convs (PySlowFast's I3D pattern), HCML's strides.

    ImageNet ResNet-50 weights inflate into it (``i3d_50.timm_in1k``).
    """
    model_args = dict(
        block=Bottleneck,
        layers=(3, 4, 6, 3),
        conv_makers=(Conv3DNoTemporal,) * 4,
        temporal_strides=_HCML_TEMPORAL_STRIDES,
        stem_temporal_kernel=5,
        stem_pool=True,
        temporal_kernels_a=((3, 3, 3), (3, 1, 3, 1), (3, 1, 3, 1, 3, 1), (1, 3, 1)),
    )
    return _create_video_resnet("i3d_50", pretrained, **dict(model_args, **kwargs))
