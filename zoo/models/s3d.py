"""S3D (Xie et al. 2018, "Rethinking Spatiotemporal Feature Learning"), torchvision-compatible.

The module layout and key names are torchvision's (``features.0`` .. ``features.15``), so a state
dict saved from ``torchvision.models.video.s3d`` loads (its 1x1x1-conv classifier ``classifier.1``
becomes the linear ``head.fc``) and gives torchvision's outputs. torchvision pools with a
``(2, 7, 7)`` average window (stride 1) and then averages the windows' logits; ours does the same,
with the window clipped to the map, so that clips smaller than torchvision's minimum
(``16 x 224 x 224`` gives a ``2 x 7 x 7`` map) still run.

HCML levels (:func:`zoo.adapters.attach_hcml`: level ``l`` is ``feature_info[len - 5 + l]``): the outputs of the
192-channel separable conv ``features.3`` (res2's place), ``Mixed_3c`` (``features.6``) and ``Mixed_4f``
(``features.12``): ``(B, 192 | 480 | 832, T/2 | T/2 | T/4, H/4 | H/8 | H/16, W/..)``; the wrapped module returns
``Z = F + g(P)`` to the next one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .._builder import build_model_with_cfg
from .._features import FeatureInfo
from .._pretrained import KINETICS_MEAN, KINETICS_STD, kinetics400_label_names, video_cfg
from .._registry import register_model
from ..layers import feature_take_indices
from ._base import VideoClassifierHead, VideoModel, check_video_input

__all__ = ["S3D", "SepInceptionBlock3D", "TemporalSeparableConv", "checkpoint_filter_fn"]

_BN_EPS = 1e-3
_BN_MOMENTUM = 1e-3


class ConvBnAct3d(nn.Sequential):
    """Conv3d (no bias), BatchNorm3d (eps 1e-3, momentum 1e-3), ReLU: torchvision's ``Conv3dNormActivation``."""

    def __init__(
        self,
        in_planes: int,
        out_planes: int,
        kernel_size: int | tuple[int, int, int] = 1,
        stride: int | tuple[int, int, int] = 1,
        padding: int | tuple[int, int, int] = 0,
    ) -> None:
        super().__init__(
            nn.Conv3d(in_planes, out_planes, kernel_size, stride=stride, padding=padding, bias=False),
            nn.BatchNorm3d(out_planes, eps=_BN_EPS, momentum=_BN_MOMENTUM),
            nn.ReLU(inplace=True),
        )


class TemporalSeparableConv(nn.Sequential):
    """A ``1 x k x k`` conv-BN-ReLU then a ``k x 1 x 1`` conv-BN-ReLU, both to ``out_planes``."""

    def __init__(self, in_planes: int, out_planes: int, kernel_size: int, stride: int, padding: int) -> None:
        super().__init__(
            ConvBnAct3d(
                in_planes, out_planes, (1, kernel_size, kernel_size), (1, stride, stride), (0, padding, padding)
            ),
            ConvBnAct3d(out_planes, out_planes, (kernel_size, 1, 1), (stride, 1, 1), (padding, 0, 0)),
        )


class SepInceptionBlock3D(nn.Module):
    """Inception block with separable 3x3x3 convs; the output concatenates 4 branches' channels."""

    def __init__(
        self, in_planes: int, b0_out: int, b1_mid: int, b1_out: int, b2_mid: int, b2_out: int, b3_out: int
    ) -> None:
        super().__init__()
        self.branch0 = ConvBnAct3d(in_planes, b0_out)
        self.branch1 = nn.Sequential(ConvBnAct3d(in_planes, b1_mid), TemporalSeparableConv(b1_mid, b1_out, 3, 1, 1))
        self.branch2 = nn.Sequential(ConvBnAct3d(in_planes, b2_mid), TemporalSeparableConv(b2_mid, b2_out, 3, 1, 1))
        self.branch3 = nn.Sequential(
            nn.MaxPool3d(kernel_size=(3, 3, 3), stride=1, padding=1), ConvBnAct3d(in_planes, b3_out)
        )
        self.out_planes = b0_out + b1_out + b2_out + b3_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)), dim=1)


# (index of the last module of a feature level in ``features``, channels, spatial and temporal reduction)
_LEVELS = ((0, 64, 2, 2), (3, 192, 4, 2), (6, 480, 8, 2), (12, 832, 16, 4), (15, 1024, 32, 8))


class S3D(VideoModel):
    """S3D on clips ``(B, C, T, H, W)``.

    Args:
        num_classes: classifier size (0: pooled features out).
        in_chans: input channels.
        drop_rate: dropout before the classifier (torchvision's 0.2).
        global_pool: ``'avg'`` (torchvision's windowed average, see the module docstring), ``'max'`` or ``''``.

    Attributes:
        feature_info: five levels at the ends of the stem (``features.0``), of the second conv
            (``features.3``), of inception 3c (``features.6``), 4f (``features.12``) and 5c
            (``features.15``); every ``module`` names a ``features`` entry that can be replaced.
        min_frames, min_size: 8 frames and 32 pixels, the temporal and spatial reductions.
    """

    pool_window = (2, 7, 7)

    def __init__(self, num_classes: int = 400, in_chans: int = 3, drop_rate: float = 0.2, global_pool: str = "avg"):
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.grad_checkpointing = False
        self.features = nn.Sequential(
            TemporalSeparableConv(in_chans, 64, 7, 2, 3),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
            ConvBnAct3d(64, 64),
            TemporalSeparableConv(64, 192, 3, 1, 1),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
            SepInceptionBlock3D(192, 64, 96, 128, 16, 32, 32),
            SepInceptionBlock3D(256, 128, 128, 192, 32, 96, 64),
            nn.MaxPool3d(kernel_size=(3, 3, 3), stride=(2, 2, 2), padding=(1, 1, 1)),
            SepInceptionBlock3D(480, 192, 96, 208, 16, 48, 64),
            SepInceptionBlock3D(512, 160, 112, 224, 24, 64, 64),
            SepInceptionBlock3D(512, 128, 128, 256, 24, 64, 64),
            SepInceptionBlock3D(512, 112, 144, 288, 32, 64, 64),
            SepInceptionBlock3D(528, 256, 160, 320, 32, 128, 128),
            nn.MaxPool3d(kernel_size=(2, 2, 2), stride=(2, 2, 2), padding=(0, 0, 0)),
            SepInceptionBlock3D(832, 256, 160, 320, 32, 128, 128),
            SepInceptionBlock3D(832, 384, 192, 384, 48, 128, 128),
        )
        self.feature_info = FeatureInfo(
            dict(num_chs=c, reduction=r, temporal_reduction=t, module=f"features.{i}") for i, c, r, t in _LEVELS
        )
        self.min_frames = _LEVELS[-1][3]
        self.min_size = _LEVELS[-1][2]
        self.num_features = 1024
        self.head = VideoClassifierHead(self.num_features, num_classes, global_pool, drop_rate)

    def check_input(self, x: torch.Tensor) -> None:
        check_video_input(x, self.in_chans, self.min_frames, self.min_size)

    def _run_stage(self, level: int, x: torch.Tensor) -> torch.Tensor:
        """Run the ``features`` entries of feature level ``level`` (after the previous level's)."""
        start = _LEVELS[level - 1][0] + 1 if level else 0
        end = _LEVELS[level][0] + 1

        def stage(y: torch.Tensor) -> torch.Tensor:
            for i in range(start, end):
                y = self.features[i](y)
            return y

        if self.grad_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(stage, x, use_reentrant=False)
        return stage(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` -> the unpooled ``(B, 1024, T/8, H/32, W/32)`` map."""
        self.check_input(x)
        for level in range(len(_LEVELS)):
            x = self._run_stage(level, x)
        return x

    def forward_intermediates(self, x: torch.Tensor, indices: int | Sequence[int] | None = None) -> list[torch.Tensor]:
        """The ``(B, C, T, H, W)`` maps of the ``feature_info`` levels ``indices``, in that order
        (see :meth:`zoo.models.video_resnet.VideoResNet.forward_intermediates`)."""
        take = feature_take_indices(len(self.feature_info), indices)
        self.check_input(x)
        maps = {}
        for level in range(max(take) + 1):
            x = self._run_stage(level, x)
            maps[level] = x
        return [maps[i] for i in take]

    def prune_intermediate_layers(self, last_index: int) -> None:
        """Drop the ``features`` after level ``last_index`` and the classifier (``features_only`` use)."""
        for i in range(_LEVELS[last_index][0] + 1, len(self.features)):
            self.features[i] = nn.Identity()
        self.reset_classifier(0, "")

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """torchvision's pooling: the mean over every ``(2, 7, 7)`` window (clipped to the map) is
        averaged over windows by the head; logits equal torchvision's conv-classifier-then-mean."""
        if self.head.global_pool == "avg":
            window = tuple(min(k, s) for k, s in zip(self.pool_window, x.shape[2:]))
            x = F.avg_pool3d(x, kernel_size=window, stride=1)
        return self.head(x, pre_logits=pre_logits)


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: S3D) -> dict[str, torch.Tensor]:
    """torchvision's ``classifier.1`` (a 1x1x1 conv) -> ``head.fc`` (linear); other keys pass through."""
    out = {}
    for key, value in state_dict.items():
        if key.startswith("classifier.1."):
            key = "head.fc." + key[len("classifier.1.") :]
            value = value.flatten(1) if value.ndim == 5 else value
        out[key] = value
    return out


default_cfgs = {
    "s3d": video_cfg(
        input_size=(3, 16, 224, 224),
        frame_stride=2,
        mean=KINETICS_MEAN,
        std=KINETICS_STD,
        crop_pct=224 / 256,
        num_classes=400,
        first_conv="features.0.0.0",
        classifier="head.fc",
        paper="https://arxiv.org/abs/1712.04851",
        recipe="https://github.com/pytorch/vision/tree/main/references/video_classification#s3d",
        notes="torchvision's layout; torchvision resizes to 256x256, crops 224, samples at 15 fps.",
    ),
    "s3d.tv_k400": video_cfg(
        url="https://download.pytorch.org/models/s3d-d76dad2f.pth",
        hash_prefix="d76dad2f",
        input_size=(3, 16, 224, 224),
        frame_stride=2,
        mean=KINETICS_MEAN,
        std=KINETICS_STD,
        resize_size=(256, 256),
        crop_pct=224 / 256,
        min_size=224,
        min_frames=14,
        num_classes=400,
        label_names=kinetics400_label_names(),
        first_conv="features.0.0.0",
        classifier="head.fc",
        license="BSD-3-Clause",
        dataset="Kinetics-400",
        num_params=8320048,
        gflops=17.979,
        metrics={"top1": 68.368, "top5": 88.05, "views": "1x1", "clip_len": 128, "frame_rate": 15,
                 "clips_per_video": 1},
        paper="https://arxiv.org/abs/1712.04851",
        recipe="https://github.com/pytorch/vision/tree/main/references/video_classification#s3d",
        notes="torchvision's weights (S3D_Weights.KINETICS400_V1), ported unchanged; torchvision states clip-level "
        "accuracy on 128-frame clips at 15 fps.",
    ),
}


@register_model
def s3d(pretrained: bool = False, **kwargs: Any) -> S3D:
    """S3D (Xie et al. 2018), torchvision's ``s3d``: layout, keys and outputs."""
    return build_model_with_cfg(S3D, "s3d", pretrained, pretrained_filter_fn=checkpoint_filter_fn, **kwargs)
