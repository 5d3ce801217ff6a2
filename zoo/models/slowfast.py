"""SlowFast networks (Feichtenhofer et al. 2019, "SlowFast Networks for Video Recognition"), R50 and R101
8x8, with pytorchvideo's Kinetics (and Something-Something V2) weights.

Source: ``pytorchvideo.models.slowfast.create_slowfast`` as pytorchvideo's hub ``slowfast_r50`` /
``slowfast_r101`` configure it (``pytorchvideo/models/hub/slowfast.py``, pytorchvideo 0.1.5, Apache-2.0).
Two ResNet pathways: the slow one (64 stem channels, 1x1x1 first convs in res2/res3, 3x1x1 in res4/res5)
sees every ``alpha``-th frame (alpha 4); the fast one (``1 / beta_inv`` = 1/8 of the channels, 5x7x7 stem,
3x1x1 first convs everywhere) sees every frame. After the stem and res2..res4 a lateral connection
(``kT x 1 x 1`` conv of temporal stride alpha, BN, ReLU; kT 7 for R50, 5 for R101) maps the fast map to
twice its channels at the slow rate and concatenates it to the slow map. The module tree and key names
are pytorchvideo's (``blocks.I.multipathway_blocks.{0: slow, 1: fast}``, ``blocks.I.multipathway_fusion``),
so a checkpoint's ``model_state`` loads with the classifier moved (``blocks.6.proj`` -> ``head.fc``).

What is ours:

- One input. The zoo's models all take one clip ``(B, C, T, H, W)``: this one takes it at the fast
  pathway's rate and forms the slow pathway as pytorchvideo's ``PackPathway`` transform does,
  ``slow = x.index_select(2, torch.linspace(0, T - 1, T // alpha).long())``. ``T`` must be a multiple of
  alpha (otherwise the lateral connections' output would not match the slow map's length; pytorchvideo
  fails there too).
- The unpooled map. ``forward_features`` returns the slow pathway's res5 map ``(B, 2048, T/alpha, H/32,
  W/32)`` concatenated with the fast pathway's res5 map averaged over each run of ``alpha`` frames
  (``(B, 256, T/alpha, H/32, W/32)``): ``(B, 2304, T/alpha, H/32, W/32)``, one map at the slow rate.
- The head. pytorchvideo average-pools the slow map with a fixed ``(8, 7, 7)`` window and the fast map
  with ``(32, 7, 7)`` (stride 1), concatenates, classifies every window and averages the logits. Ours
  averages the concatenated map over stride-1 ``(8, 7, 7)`` windows clipped to the map, then over the
  windows, then classifies: pytorchvideo's logits wherever pytorchvideo runs (the slow map 8 frames
  long: a 32-frame clip), and a global average on smaller clips.
- Feature levels. ``feature_info`` lists one pathway's maps, the fast one's by default
  (``feature_pathway='fast'``: the output of ``blocks.I.multipathway_blocks.1``, 8/32/64/128/256
  channels, temporal reduction 1), or the slow one's before the lateral concatenation
  (``feature_pathway='slow'``: ``blocks.I.multipathway_blocks.0``, 64/256/512/1024/2048 channels,
  temporal reduction alpha).

HCML levels (:func:`zoo.adapters.attach_hcml`: level ``l`` is ``feature_info[len - 5 + l]``): on the fast
pathway (the default ``feature_pathway``: every frame, the rate motion needs), levels 1, 2, 3 are the fast
res2, res3, res4 outputs (``blocks.1|2|3.multipathway_blocks.1``), ``(B, 32 | 64 | 128, T, H/4 | H/8 | H/16,
W/..)``. The fused ``Z = F + g(P)`` replaces the fast map, so both the next fast stage and the lateral
connection to the slow pathway read it; the slow pathway never feeds the fast one, so a progressive level
stage trains fast-pathway layers only. The slow pathway fits too (``feature_pathway='slow'``: its res2..res4
before the lateral concatenation, ``(B, 256 | 512 | 1024, T/alpha, ..)``, tested in
``tests/test_hcml_families.py``), but its time steps are alpha frames apart, so a motion moves alpha times
farther between them than the default displacement windows (sized for neighbouring frames) expect: give it
larger ``max_displacement`` s, and clips of at least ``alpha * (max(deltas) + 1)`` frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .._builder import adapt_input_conv, build_model_with_cfg
from .._features import FeatureInfo
from .._registry import register_model
from ..layers import feature_take_indices
from ._base import VideoModel, check_video_input
from .pv_resnet import (
    PV_MODEL_ZOO,
    KernelSpec,
    ResNetBasicStem,
    Triple,
    WindowedPoolHead,
    init_pytorchvideo_weights,
    make_res_stage,
    pytorchvideo_cfg,
)
from .pv_resnet import checkpoint_filter_fn as _pv_filter_fn

__all__ = ["SlowFast", "FuseFastToSlow", "MultiPathwayStage", "pack_pathways", "checkpoint_filter_fn"]


def pack_pathways(x: torch.Tensor, alpha: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, C, T, H, W)`` -> ``(slow, fast)``: pytorchvideo's ``PackPathway``. The slow clip keeps the
    ``T // alpha`` frames at ``linspace(0, T - 1, T // alpha)`` (truncated to integers); fast is ``x``."""
    frames = torch.linspace(0, x.shape[2] - 1, x.shape[2] // alpha).long().to(x.device)
    return x.index_select(2, frames), x


class FuseFastToSlow(nn.Module):
    """Lateral connection: ``slow ++ ReLU(BN(conv_fast_to_slow(fast)))`` along channels.

    ``conv_fast_to_slow`` is ``kT x 1 x 1`` with temporal stride alpha, ``dim_fast -> ratio * dim_fast``.
    """

    def __init__(self, dim_fast: int, ratio: int, kernel_t: int, alpha: int) -> None:
        super().__init__()
        self.conv_fast_to_slow = nn.Conv3d(
            dim_fast,
            dim_fast * ratio,
            (kernel_t, 1, 1),
            stride=(alpha, 1, 1),
            padding=(kernel_t // 2, 0, 0),
            bias=False,
        )
        self.norm = nn.BatchNorm3d(dim_fast * ratio)
        self.activation = nn.ReLU(inplace=True)

    def forward(self, slow: torch.Tensor, fast: torch.Tensor) -> torch.Tensor:
        return torch.cat([slow, self.activation(self.norm(self.conv_fast_to_slow(fast)))], dim=1)


class MultiPathwayStage(nn.Module):
    """One stage of both pathways (``multipathway_blocks``: slow, fast) and the lateral connection after
    it (``multipathway_fusion``, None after res5): ``[slow, fast]`` -> ``[slow ++ lateral(fast), fast]``."""

    def __init__(self, slow: nn.Module, fast: nn.Module, fusion: FuseFastToSlow | None) -> None:
        super().__init__()
        self.multipathway_blocks = nn.ModuleList([slow, fast])
        self.multipathway_fusion = fusion

    def forward_parts(self, slow: torch.Tensor, fast: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(slow, fast)`` -> ``(slow map before the fusion, slow map after it, fast map)``."""
        slow = self.multipathway_blocks[0](slow)
        fast = self.multipathway_blocks[1](fast)
        fused = slow if self.multipathway_fusion is None else self.multipathway_fusion(slow, fast)
        return slow, fused, fast

    def forward(self, x: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        _, slow, fast = self.forward_parts(x[0], x[1])
        return [slow, fast]


class SlowFast(VideoModel):
    """SlowFast on one clip ``(B, C, T, H, W)`` at the fast rate (see the module docstring).

    Args:
        layers: blocks per stage (both pathways).
        alpha: frame-rate ratio of the pathways (the slow clip has ``T // alpha`` frames).
        beta_inv: channel ratio slow / fast.
        fusion_kernel: temporal kernel of the lateral convs.
        fusion_ratio: the lateral convs' channel multiplier.
        slow_stem_kernel, fast_stem_kernel: the stems' kernels (spatial stride 2, then a 1x3x3 max-pool).
        slow_conv_a_kernels, fast_conv_a_kernels: per stage, each pathway's first-conv kernel (or list).
        head_pool_size: pytorchvideo's slow-pathway head window (the fast one's is ``alpha`` times as long).
        num_classes: classifier size (0: pooled features out).
        in_chans: input channels.
        drop_rate: dropout before the classifier (pytorchvideo: 0.5).
        global_pool: ``'avg'`` (windowed), ``'max'`` or ``''``.
        feature_pathway: ``'fast'`` or ``'slow'``: whose maps ``feature_info`` and
            ``forward_intermediates`` give.

    Attributes:
        feature_info: levels 0..4 = stem, res2..res5 of ``feature_pathway`` (module
            ``blocks.I.multipathway_blocks.P``, P 1 fast, 0 slow).
        min_frames: ``alpha``; ``T`` must also be a multiple of it.
        num_features, head_hidden_size: ``2048 + 2048 // beta_inv`` (2304).
    """

    def __init__(
        self,
        layers: Sequence[int] = (3, 4, 6, 3),
        alpha: int = 4,
        beta_inv: int = 8,
        fusion_kernel: int = 7,
        fusion_ratio: int = 2,
        slow_stem_kernel: Triple = (1, 7, 7),
        fast_stem_kernel: Triple = (5, 7, 7),
        slow_conv_a_kernels: Sequence[KernelSpec] = ((1, 1, 1), (1, 1, 1), (3, 1, 1), (3, 1, 1)),
        fast_conv_a_kernels: Sequence[KernelSpec] = ((3, 1, 1),) * 4,
        head_pool_size: Triple | None = (8, 7, 7),
        num_classes: int = 400,
        in_chans: int = 3,
        drop_rate: float = 0.5,
        global_pool: str = "avg",
        feature_pathway: str = "fast",
    ) -> None:
        super().__init__()
        if feature_pathway not in ("fast", "slow"):
            raise ValueError(f"feature_pathway must be 'fast' or 'slow', got {feature_pathway!r}")
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.alpha = alpha
        self.feature_pathway = feature_pathway
        self.grad_checkpointing = False

        def fusion(dim_slow: int, stage: int) -> FuseFastToSlow | None:
            return FuseFastToSlow(dim_slow // beta_inv, fusion_ratio, fusion_kernel, alpha) if stage < 4 else None

        stem_dim = 64
        blocks = [
            MultiPathwayStage(
                ResNetBasicStem(in_chans, stem_dim, tuple(slow_stem_kernel)),
                ResNetBasicStem(in_chans, stem_dim // beta_inv, tuple(fast_stem_kernel)),
                fusion(stem_dim, 0),
            )
        ]
        pathway = 1 if feature_pathway == "fast" else 0
        t_red = 1 if feature_pathway == "fast" else alpha
        slow_chs, fast_chs = [stem_dim], [stem_dim // beta_inv]
        dim_in, dim_out = stem_dim, 4 * stem_dim
        for i in range(4):
            stride = (1, 1 if i == 0 else 2, 1 if i == 0 else 2)
            slow = make_res_stage(
                layers[i],
                dim_in + dim_in * fusion_ratio // beta_inv,
                dim_out // 4,
                dim_out,
                slow_conv_a_kernels[i],
                (1, 3, 3),
                stride,
            )
            fast = make_res_stage(
                layers[i],
                dim_in // beta_inv,
                dim_out // 4 // beta_inv,
                dim_out // beta_inv,
                fast_conv_a_kernels[i],
                (1, 3, 3),
                stride,
            )
            blocks.append(MultiPathwayStage(slow, fast, fusion(dim_out, i + 1)))
            slow_chs.append(dim_out)
            fast_chs.append(dim_out // beta_inv)
            dim_in, dim_out = dim_out, 2 * dim_out
        self.blocks = nn.ModuleList(blocks)
        chs = fast_chs if feature_pathway == "fast" else slow_chs
        self.feature_info = FeatureInfo(
            dict(
                num_chs=c,
                reduction=4 * 2 ** max(0, level - 1),
                temporal_reduction=t_red,
                module=f"blocks.{level}.multipathway_blocks.{pathway}",
            )
            for level, c in enumerate(chs)
        )
        self.min_frames = alpha
        self.num_features = slow_chs[-1] + fast_chs[-1]
        self.head = WindowedPoolHead(self.num_features, num_classes, head_pool_size, global_pool, drop_rate)
        init_pytorchvideo_weights(self)

    def check_input(self, x: torch.Tensor) -> None:
        check_video_input(x, self.in_chans, self.min_frames)
        if x.shape[2] % self.alpha:
            raise ValueError(
                f"expected a float tensor of shape (B, {self.in_chans}, T, H, W) with T a multiple of alpha="
                f"{self.alpha} (the slow pathway takes every {self.alpha}th frame), got T={x.shape[2]} in shape "
                f"{tuple(x.shape)}"
            )

    def _run_stage(
        self, index: int, slow: torch.Tensor, fast: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        stage = self.blocks[index]  # looked up each call, so wrapped pathway modules are the ones that run
        if not isinstance(stage, MultiPathwayStage):  # pruned (nn.Identity)
            return slow, slow, fast
        if self.grad_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(stage.forward_parts, slow, fast, use_reentrant=False)
        return stage.forward_parts(slow, fast)

    def forward_pathways(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, C, T, H, W)`` -> the res5 maps ``(slow (B, 2048, T/alpha, H/32, W/32), fast (B, 256, T, H/32,
        W/32))``, as pytorchvideo's network gives them to its head."""
        self.check_input(x)
        slow, fast = pack_pathways(x, self.alpha)
        for index in range(len(self.blocks)):
            _, slow, fast = self._run_stage(index, slow, fast)
        return slow, fast

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` -> the unpooled ``(B, 2304, T/alpha, H/32, W/32)`` map: the slow res5 map and
        the fast one averaged over each ``alpha`` frames, concatenated along channels."""
        slow, fast = self.forward_pathways(x)
        fast = F.avg_pool3d(fast, kernel_size=(self.alpha, 1, 1), stride=(self.alpha, 1, 1))
        return torch.cat([slow, fast], dim=1)

    def forward_intermediates(self, x: torch.Tensor, indices: int | Sequence[int] | None = None) -> list[torch.Tensor]:
        """The ``(B, C, T, H, W)`` maps of the ``feature_info`` levels ``indices`` (one pathway's, see
        ``feature_pathway``), in that order; stages after the last needed level are not run."""
        take = feature_take_indices(len(self.feature_info), indices)
        self.check_input(x)
        slow, fast = pack_pathways(x, self.alpha)
        maps = {}
        for level in range(max(take) + 1):
            slow_own, slow, fast = self._run_stage(level, slow, fast)
            maps[level] = fast if self.feature_pathway == "fast" else slow_own
        return [maps[i] for i in take]

    def prune_intermediate_layers(self, last_index: int) -> None:
        """Drop the stages after level ``last_index`` and the classifier (``features_only`` use)."""
        for index in range(last_index + 1, len(self.blocks)):
            self.blocks[index] = nn.Identity()
        self.reset_classifier(0, "")


_FAST_STEM = "blocks.0.multipathway_blocks.1.conv.weight"


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: SlowFast) -> dict[str, torch.Tensor]:
    """pytorchvideo's (or PySlowFast's) SlowFast keys -> ours (:func:`zoo.models.pv_resnet.checkpoint_filter_fn`);
    the fast stem's conv is adapted to ``model.in_chans`` (the builder adapts ``first_conv``, the slow one)."""
    state_dict = _pv_filter_fn(state_dict, model)
    weight = state_dict.get(_FAST_STEM)
    if weight is not None and weight.shape[1] != model.in_chans:
        state_dict[_FAST_STEM] = adapt_input_conv(model.in_chans, weight)
    return state_dict


def _create_slowfast(variant: str, pretrained: bool = False, **kwargs: Any) -> SlowFast:
    return build_model_with_cfg(SlowFast, variant, pretrained, pretrained_filter_fn=checkpoint_filter_fn, **kwargs)


_PAPER = "https://arxiv.org/abs/1812.03982"
_RECIPES = "https://github.com/facebookresearch/SlowFast/blob/main/configs"


_K400_NOTES = (
    "pytorchvideo's checkpoint (weights under 'model_state'); pytorchvideo publishes no hash for it (hash_prefix "
    "None: the sha256 is recorded on first use). The table's '8x8' is the slow pathway's 8 frames every 8th: the "
    "input clip is 32 frames every 2nd (pytorchvideo's hub page). Metrics, GFLOPs and params as pytorchvideo's "
    "model zoo table states them (views = temporal clips x spatial crops)."
)


def _cfg(**kwargs: Any):
    """32 frames every 2nd (the slow pathway's 8 every 8th) at 256 (pytorchvideo's hub page), 3 crops."""
    if kwargs.get("url") and "notes" not in kwargs:
        kwargs["notes"] = _K400_NOTES
    defaults = dict(
        input_size=(3, 32, 256, 256),
        frame_stride=2,
        resize_size=256,
        first_conv="blocks.0.multipathway_blocks.0.conv",
        paper=_PAPER,
        min_frames=4,
    )
    return pytorchvideo_cfg(**dict(defaults, **kwargs))


default_cfgs = {
    "slowfast_r50": _cfg(),
    "slowfast_r50.pv_k400": _cfg(
        url=f"{PV_MODEL_ZOO}/kinetics/SLOWFAST_8x8_R50.pyth",
        metrics=dict(top1=76.94, top5=92.69, views="10x3", clip_len=32, frame_stride=2),
        gflops=65.71,
        num_params=34_570_000,
        recipe=f"{_RECIPES}/Kinetics/pytorchvideo/SLOWFAST_8x8_R50.yaml",
    ),
    "slowfast_r50.pv_ssv2": _cfg(
        url=f"{PV_MODEL_ZOO}/ssv2/SLOWFAST_8x8_R50.pyth",
        num_classes=174,
        dataset="Something-Something-V2",
        metrics=dict(top1=61.68, top5=86.92, views="1x3", clip_len=32, frame_stride=2),
        gflops=66.60,
        num_params=34_040_000,
        recipe=f"{_RECIPES}/SSv2/pytorchvideo/SLOWFAST_8x8_R50.yaml",
        notes=(
            "pytorchvideo's Something-Something V2 checkpoint (model zoo table; no hub builder), fine-tuned from "
            "Kinetics-400 with PySlowFast (configs/SSv2/pytorchvideo/SLOWFAST_8x8_R50.yaml): 174 classes, 32 frames "
            "sampled uniformly over the whole video (the table's '8x8' is the slow pathway's 8), "
            "REVERSE_INPUT_CHANNEL True, i.e. BGR input. pytorchvideo publishes no hash (hash_prefix None). "
            "Metrics as pytorchvideo's table states them (3 crops x 1 clip)."
        ),
    ),
    "slowfast_r101": _cfg(),
    "slowfast_r101.pv_k400": _cfg(
        url=f"{PV_MODEL_ZOO}/kinetics/SLOWFAST_8x8_R101.pyth",
        metrics=dict(top1=77.90, top5=93.27, views="10x3", clip_len=32, frame_stride=2),
        gflops=127.20,
        num_params=62_830_000,
        recipe=f"{_RECIPES}/Kinetics/pytorchvideo/SLOWFAST_8x8_R101.yaml",
    ),
}


@register_model
def slowfast_r50(pretrained: bool = False, **kwargs: Any) -> SlowFast:
    """SlowFast R50 8x8 (alpha 4, beta 1/8, 7x1x1 lateral convs), pytorchvideo's hub ``slowfast_r50``."""
    model_args = dict(layers=(3, 4, 6, 3), fusion_kernel=7)
    return _create_slowfast("slowfast_r50", pretrained, **dict(model_args, **kwargs))


@register_model
def slowfast_r101(pretrained: bool = False, **kwargs: Any) -> SlowFast:
    """SlowFast R101 8x8 (alpha 4, beta 1/8, 5x1x1 lateral convs), pytorchvideo's hub ``slowfast_r101``."""
    model_args = dict(layers=(3, 4, 23, 3), fusion_kernel=5)
    return _create_slowfast("slowfast_r101", pretrained, **dict(model_args, **kwargs))
