"""Video Swin Transformer (Liu et al. 2022, "Video Swin Transformer"), torchvision-compatible.

Source: ``torchvision/models/video/swin_transformer.py`` (``swin3d_t``, ``swin3d_s``, ``swin3d_b``). A
2x4x4 patch embedding, then four stages of Swin blocks: multi-head self-attention inside 3-D windows
(8x7x7 tokens) with a learned relative position bias, the windows shifted by half a window every
second block; between stages, patch merging halves H and W and doubles the width (T is kept). The
input is zero-padded to whole patches and each stage's grid to whole windows, and a window larger
than the grid shrinks to it (without shift), so clips of any size run, down to ``1 x 1 x 1``.

The module layout and key names are torchvision's (``patch_embed``, ``features.0`` .. ``features.6``,
``norm``), except timm's ``Mlp`` (``mlp.0`` / ``mlp.3`` -> ``mlp.fc1`` / ``mlp.fc2``) and the classifier
(``head`` -> ``head.fc``): :func:`checkpoint_filter_fn` maps those, and a state dict saved from
torchvision's model gives torchvision's outputs.

Ours: torchvision passes channels-last ``(B, T, H, W, C)`` tensors between its modules; ours pass
``(B, C, T, H, W)`` maps (each stage and patch merging permutes to channels-last inside), so that every
``feature_info`` module (the stages ``features.0``, ``.2``, ``.4``, ``.6``) maps a map to a map and can be
hooked or wrapped like a CNN stage. The maps are permuted views of the channels-last tokens (``channels_last_3d``
strides: ``x.permute(0, 4, 1, 2, 3)``, no copy), so that a stage's tokens reach the next module as torchvision's do,
without the copies to ``(B, C, T, H, W)`` memory and back (after which every LayerNorm of the next stage would copy
its strided input again, in forward and backward). ``forward_features`` returns the last stage's map after the final
norm; ``forward_intermediates`` the stages' maps (before it).

HCML levels (:func:`zoo.adapters.attach_hcml`: level ``l`` is ``feature_info[len - 5 + l]``): the outputs of
stages 1, 2, 3 (``features.0``, ``features.2``, ``features.4``), ``(B, 96 | 192 | 384, T/2, H/4 | H/8 | H/16,
W/..)``: each stage's tokens as their ``(T, H, W)`` grid (Swin has no class token). The wrapped stage returns
``Z = F + g(P)``, so ``g(P)`` is added to the tokens of the same positions before the patch merging that
follows. The patch embedding pads T to a whole patch (``ceil(T / 2)`` time steps).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from timm.layers import DropPath, Mlp, trunc_normal_
from torch import nn
from torch.utils.checkpoint import checkpoint

from .._builder import build_model_with_cfg
from .._features import FeatureInfo
from .._pretrained import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, kinetics400_label_names, video_cfg
from .._registry import register_model
from ..layers import feature_take_indices
from ._base import VideoClassifierHead, VideoModel

__all__ = [
    "SwinTransformer3d",
    "SwinTransformerBlock3d",
    "ShiftedWindowAttention3d",
    "PatchEmbed3d",
    "PatchMerging",
    "SwinStage",
    "checkpoint_filter_fn",
]

Size3 = tuple[int, int, int]


def _window_and_shift(size: Size3, window: Size3, shift: Size3) -> tuple[Size3, Size3]:
    """A window no smaller than the grid along a dimension shrinks to it, unshifted (torchvision's rule)."""
    win, sh = list(window), list(shift)
    for i in range(3):
        if size[i] <= win[i]:
            win[i], sh[i] = size[i], 0
    return (win[0], win[1], win[2]), (sh[0], sh[1], sh[2])


def _shift_mask(padded: Size3, window: Size3, shift: Size3, like: torch.Tensor) -> torch.Tensor:
    """``(num_windows, N, N)`` additive mask (0 or -100) keeping a shifted window's attention inside each of
    the regions the cyclic shift brought together (torchvision's ``_compute_attention_mask_3d``)."""
    labels = like.new_zeros(padded)
    slices = [((0, -w), (-w, -s), (-s, None)) for w, s in zip(window, shift)]
    count = 0
    for d in slices[0]:
        for h in slices[1]:
            for w in slices[2]:
                labels[d[0] : d[1], h[0] : h[1], w[0] : w[1]] = count
                count += 1
    labels = labels.view(
        padded[0] // window[0], window[0], padded[1] // window[1], window[1], padded[2] // window[2], window[2]
    )
    labels = labels.permute(0, 2, 4, 1, 3, 5).reshape(-1, window[0] * window[1] * window[2])
    mask = labels.unsqueeze(1) - labels.unsqueeze(2)
    return mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)


def _relative_position_index(window: Size3) -> torch.Tensor:
    """``(N, N)`` index into the ``(2Wd-1)(2Wh-1)(2Ww-1)`` bias table of every pair of a window's ``N`` tokens."""
    coords = torch.stack(torch.meshgrid(*(torch.arange(w) for w in window), indexing="ij")).flatten(1)  # (3, N)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()  # (N, N, 3)
    for i in range(3):
        rel[:, :, i] += window[i] - 1
    rel[:, :, 0] *= (2 * window[1] - 1) * (2 * window[2] - 1)
    rel[:, :, 1] *= 2 * window[2] - 1
    return rel.sum(-1)


class ShiftedWindowAttention3d(nn.Module):
    """(Shifted) window multi-head self-attention with a relative position bias, on ``(B, T, H, W, C)``.

    Args:
        dim: token width.
        window_size: ``(Wd, Wh, Ww)``.
        shift_size: cyclic shift ``(Sd, Sh, Sw)``; zeros for a plain window block.
        num_heads: heads.
        qkv_bias, proj_bias: biases of the qkv and output projections.
        attn_drop: dropout of the attention weights; ``proj_drop`` after the output projection.
    """

    def __init__(
        self,
        dim: int,
        window_size: Sequence[int],
        shift_size: Sequence[int],
        num_heads: int,
        qkv_bias: bool = True,
        proj_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__()
        if len(window_size) != 3 or len(shift_size) != 3:
            raise ValueError(f"window_size and shift_size need 3 values (T, H, W), got {window_size}, {shift_size}")
        self.window_size: Size3 = (window_size[0], window_size[1], window_size[2])
        self.shift_size: Size3 = (shift_size[0], shift_size[1], shift_size[2])
        self.num_heads = num_heads
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim, bias=proj_bias)
        self.proj_drop = nn.Dropout(proj_drop)
        wd, wh, ww = self.window_size
        table_size = (2 * wd - 1) * (2 * wh - 1) * (2 * ww - 1)
        self.relative_position_bias_table = nn.Parameter(torch.zeros(table_size, num_heads))
        trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer("relative_position_index", _relative_position_index(self.window_size))

    def _position_bias(self, window: Size3) -> torch.Tensor:
        """``(1, heads, N, N)`` for a window of ``N`` tokens; a shrunk window reads the top-left block of the
        full window's index (torchvision's ``_get_relative_position_bias``)."""
        n = window[0] * window[1] * window[2]
        bias = self.relative_position_bias_table[self.relative_position_index[:n, :n].flatten()]
        return bias.view(n, n, -1).permute(2, 0, 1).unsqueeze(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, H, W, C)`` -> ``(B, T, H, W, C)``."""
        b, t, h, w, c = x.shape
        window, shift = _window_and_shift((t, h, w), self.window_size, self.shift_size)
        pad = [(win - s % win) % win for s, win in zip((t, h, w), window)]
        x = F.pad(x, (0, 0, 0, pad[2], 0, pad[1], 0, pad[0]))
        padded = (t + pad[0], h + pad[1], w + pad[2])
        shifted = sum(shift) > 0
        if shifted:
            x = torch.roll(x, shifts=(-shift[0], -shift[1], -shift[2]), dims=(1, 2, 3))

        grid = (padded[0] // window[0], padded[1] // window[1], padded[2] // window[2])
        n = window[0] * window[1] * window[2]
        x = x.reshape(b, grid[0], window[0], grid[1], window[1], grid[2], window[2], c)
        x = x.permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(-1, n, c)  # (B * windows, N, C)

        heads = self.num_heads
        q, k, v = self.qkv(x).reshape(x.shape[0], n, 3, heads, c // heads).permute(2, 0, 3, 1, 4).unbind(0)
        attn = (q * (c // heads) ** -0.5).matmul(k.transpose(-2, -1))
        attn = attn + self._position_bias(window)
        if shifted:
            mask = _shift_mask(padded, window, shift, x)
            num_windows = mask.shape[0]
            attn = attn.view(-1, num_windows, heads, n, n) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, heads, n, n)
        attn = F.dropout(attn.softmax(dim=-1), p=self.attn_drop, training=self.training)
        x = attn.matmul(v).transpose(1, 2).reshape(-1, n, c)
        x = self.proj_drop(self.proj(x))

        x = x.view(b, grid[0], grid[1], grid[2], window[0], window[1], window[2], c)
        x = x.permute(0, 1, 4, 2, 5, 3, 6, 7).reshape(b, *padded, c)
        if shifted:
            x = torch.roll(x, shifts=shift, dims=(1, 2, 3))
        return x[:, :t, :h, :w].contiguous()


class SwinTransformerBlock3d(nn.Module):
    """Pre-norm (shifted) window attention and MLP, each with a residual and stochastic depth; channels-last.

    Args:
        dim: token width; ``num_heads`` heads; ``window_size``, ``shift_size`` as in :class:`ShiftedWindowAttention3d`.
        mlp_ratio: MLP hidden width / ``dim``.
        proj_drop: dropout after the attention projection and in the MLP (torchvision's ``dropout``).
        attn_drop: dropout of the attention weights.
        drop_path: stochastic depth of both residual branches.
        norm_layer: the norms.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: Sequence[int],
        shift_size: Sequence[int],
        mlp_ratio: float = 4.0,
        proj_drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        norm_layer: type[nn.Module] = nn.LayerNorm,
    ) -> None:
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = ShiftedWindowAttention3d(
            dim, window_size, shift_size, num_heads, attn_drop=attn_drop, proj_drop=proj_drop
        )
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU, drop=proj_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, H, W, C)`` -> ``(B, T, H, W, C)``."""
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class SwinStage(nn.Sequential):
    """The blocks of one stage (torchvision's ``nn.Sequential`` of blocks, same keys), on ``(B, C, T, H, W)``
    maps: permuted to channels-last for the blocks and back (views: see the module docstring).
    ``grad_checkpointing`` recomputes each block in backward (:meth:`SwinTransformer3d.set_grad_checkpointing`)."""

    grad_checkpointing = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` -> ``(B, C, T, H, W)``."""
        x = x.permute(0, 2, 3, 4, 1)
        for block in self:
            if self.grad_checkpointing and self.training and torch.is_grad_enabled():
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return x.permute(0, 4, 1, 2, 3)


class PatchMerging(nn.Module):
    """Concatenate each 2x2 spatial neighbourhood (H, W padded to even), LayerNorm, linear ``4C -> 2C``;
    torchvision's ``PatchMerging`` (``norm``, ``reduction``) on ``(B, C, T, H, W)`` maps."""

    def __init__(self, dim: int, norm_layer: type[nn.Module] = nn.LayerNorm) -> None:
        super().__init__()
        self.dim = dim
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = norm_layer(4 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` -> ``(B, 2C, T, ceil(H/2), ceil(W/2))``."""
        x = x.permute(0, 2, 3, 4, 1)
        h, w = x.shape[2], x.shape[3]
        x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        x = torch.cat([x[..., 0::2, 0::2, :], x[..., 1::2, 0::2, :], x[..., 0::2, 1::2, :], x[..., 1::2, 1::2, :]], -1)
        return self.reduction(self.norm(x)).permute(0, 4, 1, 2, 3)


class PatchEmbed3d(nn.Module):
    """Zero-pad to whole patches, a patch-sized strided conv, LayerNorm over channels (torchvision's keys).

    Args:
        patch_size: ``(t, h, w)``.
        in_chans: input channels; ``embed_dim`` output channels.
        norm_layer: the norm (None: none).
    """

    def __init__(
        self,
        patch_size: Sequence[int],
        in_chans: int = 3,
        embed_dim: int = 96,
        norm_layer: type[nn.Module] | None = nn.LayerNorm,
    ) -> None:
        super().__init__()
        self.patch_size: Size3 = (patch_size[0], patch_size[1], patch_size[2])
        self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=self.patch_size, stride=self.patch_size)
        self.norm = norm_layer(embed_dim) if norm_layer is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` -> ``(B, embed_dim, ceil(T/pt), ceil(H/ph), ceil(W/pw))``."""
        pad = [(p - s % p) % p for s, p in zip(x.shape[2:], self.patch_size)]
        x = self.proj(F.pad(x, (0, pad[2], 0, pad[1], 0, pad[0])))
        return self.norm(x.permute(0, 2, 3, 4, 1)).permute(0, 4, 1, 2, 3)


class SwinTransformer3d(VideoModel):
    """Video Swin Transformer on clips ``(B, C, T, H, W)`` of any size.

    Args:
        patch_size: ``(t, h, w)`` of the patch embedding (``h == w``: one spatial reduction).
        embed_dim: width of the first stage (doubled at every stage).
        depths: blocks per stage.
        num_heads: heads per stage.
        window_size: ``(Wd, Wh, Ww)`` in tokens.
        mlp_ratio: MLP hidden width / width.
        num_classes: classifier size (0: pooled features out).
        in_chans: input channels.
        global_pool: ``'avg'`` (torchvision's), ``'max'`` or ``''``.
        drop_rate: dropout before the classifier (torchvision has none: 0).
        proj_drop_rate: dropout after the patch embedding, the attention projections and in the MLPs
            (torchvision's ``dropout``).
        attn_drop_rate: dropout of the attention weights (torchvision's ``attention_dropout``).
        drop_path_rate: stochastic depth of the last block, linear in the block index from 0 (0.1).

    Attributes:
        feature_info: the four stages ``features.0``, ``features.2``, ``features.4``, ``features.6``:
            reductions 4, 8, 16, 32 in space and 2 in time.
        min_frames, min_size: 1 (inputs are padded to whole patches and windows).
    """

    def __init__(
        self,
        patch_size: Sequence[int] = (2, 4, 4),
        embed_dim: int = 96,
        depths: Sequence[int] = (2, 2, 6, 2),
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window_size: Sequence[int] = (8, 7, 7),
        mlp_ratio: float = 4.0,
        num_classes: int = 400,
        in_chans: int = 3,
        global_pool: str = "avg",
        drop_rate: float = 0.0,
        proj_drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
    ) -> None:
        super().__init__()
        if len(depths) != len(num_heads):
            raise ValueError(f"depths and num_heads need one entry per stage, got {depths} and {num_heads}")
        if patch_size[1] != patch_size[2]:
            raise ValueError(f"patch_size must be square in space (one spatial reduction), got {patch_size}")
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.grad_checkpointing = False
        self.min_frames = 1
        self.min_size = 1
        norm_layer = nn.LayerNorm  # eps 1e-5, torchvision's

        self.patch_embed = PatchEmbed3d(patch_size, in_chans, embed_dim, norm_layer)
        self.pos_drop = nn.Dropout(proj_drop_rate)
        total = sum(depths)
        layers: list[nn.Module] = []
        feature_info = []
        block_id = 0
        for i, (depth, heads) in enumerate(zip(depths, num_heads)):
            dim = embed_dim * 2**i
            blocks = []
            for j in range(depth):
                blocks.append(
                    SwinTransformerBlock3d(
                        dim,
                        heads,
                        window_size=window_size,
                        shift_size=[0 if j % 2 == 0 else w // 2 for w in window_size],
                        mlp_ratio=mlp_ratio,
                        proj_drop=proj_drop_rate,
                        attn_drop=attn_drop_rate,
                        drop_path=drop_path_rate * block_id / (total - 1) if total > 1 else 0.0,
                        norm_layer=norm_layer,
                    )
                )
                block_id += 1
            feature_info.append(
                dict(
                    num_chs=dim,
                    reduction=patch_size[1] * 2**i,
                    temporal_reduction=patch_size[0],
                    module=f"features.{len(layers)}",
                )
            )
            layers.append(SwinStage(*blocks))
            if i < len(depths) - 1:
                layers.append(PatchMerging(dim, norm_layer))
        self.features = nn.Sequential(*layers)
        self.feature_info = FeatureInfo(feature_info)
        self.num_features = embed_dim * 2 ** (len(depths) - 1)
        self.norm = norm_layer(self.num_features)
        self.head = VideoClassifierHead(self.num_features, num_classes, global_pool, drop_rate)
        for m in self.modules():  # torchvision's: every linear layer N(0, 0.02) truncated, zero biases
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block's activations in backward instead of storing them (training only)."""
        self.grad_checkpointing = enable
        for m in self.modules():
            if isinstance(m, SwinStage):
                m.grad_checkpointing = enable

    def _stage_indices(self) -> list[int]:
        return [int(level["module"].rsplit(".", 1)[1]) for level in self.feature_info]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` -> the normalised ``(B, num_features, T/2, H/32, W/32)`` map (sizes rounded up)."""
        self.check_input(x)
        x = self.features(self.pos_drop(self.patch_embed(x)))
        return self.norm(x.permute(0, 2, 3, 4, 1)).permute(0, 4, 1, 2, 3)

    def forward_intermediates(self, x: torch.Tensor, indices: int | Sequence[int] | None = None) -> list[torch.Tensor]:
        """The ``(B, C, T, H, W)`` maps of the stages ``indices`` of ``feature_info`` (before the final norm),
        in that order (see :meth:`zoo.models.video_resnet.VideoResNet.forward_intermediates`); modules
        after the last stage asked for are not run."""
        take = feature_take_indices(len(self.feature_info), indices)
        self.check_input(x)
        x = self.pos_drop(self.patch_embed(x))
        ends = self._stage_indices()
        maps, start = {}, 0
        for level in range(max(take) + 1):
            for i in range(start, ends[level] + 1):
                x = self.features[i](x)
            maps[level], start = x, ends[level] + 1
        return [maps[i] for i in take]

    def prune_intermediate_layers(self, last_index: int) -> None:
        """Drop the modules after stage ``last_index``, the final norm and the classifier (``features_only`` use)."""
        for i in range(self._stage_indices()[last_index] + 1, len(self.features)):
            self.features[i] = nn.Identity()
        self.norm = nn.Identity()
        self.reset_classifier(0, "")


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: SwinTransformer3d) -> dict[str, torch.Tensor]:
    """torchvision's keys -> ours: ``mlp.0`` / ``mlp.3`` -> ``mlp.fc1`` / ``mlp.fc2`` (timm's Mlp) and
    ``head.weight`` / ``head.bias`` -> ``head.fc.*``; the zoo's own keys pass through."""
    out = {}
    for key, value in state_dict.items():
        key = key.replace(".mlp.0.", ".mlp.fc1.").replace(".mlp.3.", ".mlp.fc2.")
        if key in ("head.weight", "head.bias"):
            key = "head.fc." + key[len("head.") :]
        out[key] = value
    return out


def _hash_prefix(url: str) -> str:
    """torchvision's file names end with their sha256's first hex digits: ``swin3d_t-7615ae03.pth`` -> ``7615ae03``."""
    return url.rsplit("/", 1)[-1].rsplit("-", 1)[-1].split(".")[0]


_PAPER = "https://arxiv.org/abs/2106.13230"
_RECIPE = "https://github.com/SwinTransformer/Video-Swin-Transformer#kinetics-400"
_TV_DOCS_EVAL = dict(clip_len=32, frame_rate=15, clips_per_video=12, views="12x1")


def _cfg(**kwargs: Any):
    """torchvision's Swin3D eval transform: 32 frames, short side resized to 256, centre crop 224, ImageNet
    normalisation; any clip size runs (min 1 x 1 x 1)."""
    defaults = dict(
        input_size=(3, 32, 224, 224),
        frame_stride=1,
        mean=IMAGENET_DEFAULT_MEAN,
        std=IMAGENET_DEFAULT_STD,
        crop_pct=224 / 256,
        resize_size=256,
        min_size=1,
        min_frames=1,
        num_classes=400,
        first_conv="patch_embed.proj",
        classifier="head.fc",
        paper=_PAPER,
    )
    return video_cfg(**dict(defaults, **kwargs))


def _tv_cfg(url: str, top1: float, top5: float, num_params: int, gflops: float, pretraining: str = "ImageNet-1k"):
    """A torchvision Kinetics-400 weights file (``Swin3D_*_Weights``: url, meta, transforms)."""
    return _cfg(
        url=url,
        hash_prefix=_hash_prefix(url),
        license="BSD-3-Clause",
        recipe=_RECIPE,
        dataset="Kinetics-400",
        label_names=kinetics400_label_names(),
        metrics=dict(top1=top1, top5=top5, **_TV_DOCS_EVAL),
        num_params=num_params,
        gflops=gflops,
        notes=(
            f"torchvision's port of the paper's weights ({pretraining} initialisation). torchvision's accuracies "
            "are video-level with frame_rate=15, clips_per_video=12, clip_len=32 (one centre crop per clip)."
        ),
    )


default_cfgs = {
    "swin3d_t": _cfg(),
    "swin3d_t.tv_k400": _tv_cfg(
        "https://download.pytorch.org/models/swin3d_t-7615ae03.pth",
        top1=77.715,
        top5=93.519,
        num_params=28158070,
        gflops=43.882,
    ),
    "swin3d_s": _cfg(),
    "swin3d_s.tv_k400": _tv_cfg(
        "https://download.pytorch.org/models/swin3d_s-da41c237.pth",
        top1=79.521,
        top5=94.158,
        num_params=49816678,
        gflops=82.841,
    ),
    "swin3d_b": _cfg(),
    "swin3d_b.tv_k400": _tv_cfg(
        "https://download.pytorch.org/models/swin3d_b_1k-24f7c7c6.pth",
        top1=79.427,
        top5=94.386,
        num_params=88048984,
        gflops=140.667,
    ),
    "swin3d_b.tv_k400_in22k": _tv_cfg(
        "https://download.pytorch.org/models/swin3d_b_22k-7c6ae6fa.pth",
        top1=81.643,
        top5=95.574,
        num_params=88048984,
        gflops=140.667,
        pretraining="ImageNet-22k",
    ),
}


def _create_swin3d(variant: str, pretrained: bool, **kwargs: Any) -> SwinTransformer3d:
    return build_model_with_cfg(
        SwinTransformer3d, variant, pretrained, pretrained_filter_fn=checkpoint_filter_fn, **kwargs
    )


@register_model
def swin3d_t(pretrained: bool = False, **kwargs: Any) -> SwinTransformer3d:
    """Swin3D-T (Liu et al. 2022), torchvision's ``swin3d_t``: width 96, depths 2, 2, 6, 2, heads 3, 6, 12, 24."""
    model_args = dict(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24))
    return _create_swin3d("swin3d_t", pretrained, **dict(model_args, **kwargs))


@register_model
def swin3d_s(pretrained: bool = False, **kwargs: Any) -> SwinTransformer3d:
    """Swin3D-S (Liu et al. 2022), torchvision's ``swin3d_s``: width 96, depths 2, 2, 18, 2, heads 3, 6, 12, 24."""
    model_args = dict(embed_dim=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24))
    return _create_swin3d("swin3d_s", pretrained, **dict(model_args, **kwargs))


@register_model
def swin3d_b(pretrained: bool = False, **kwargs: Any) -> SwinTransformer3d:
    """Swin3D-B (Liu et al. 2022), torchvision's ``swin3d_b``: width 128, depths 2, 2, 18, 2, heads 4, 8, 16, 32."""
    model_args = dict(embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32))
    return _create_swin3d("swin3d_b", pretrained, **dict(model_args, **kwargs))
