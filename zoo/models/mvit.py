"""MViT (Fan et al. 2021, "Multiscale Vision Transformers") and MViTv2 (Li et al. 2022, "MViTv2: Improved
Multiscale Vision Transformers for Classification and Detection"), torchvision-compatible.

Source: ``torchvision/models/video/mvit.py`` (``mvit_v1_b``, ``mvit_v2_s``). A 3x7x7 conv (stride 2x4x4)
cuts a ``16 x 224 x 224`` clip into ``8 x 56 x 56`` patch tokens, a class token is prepended, and 16
multiscale blocks attend with pooling attention: queries pooled by a depthwise conv at the first block of a
stage (halving H and W), keys and values always pooled (stride 8, 4, 2, 1 by stage). v1 adds absolute
space-time position embeddings; v2 adds decomposed relative position terms (t, h, w) to the attention
logits and the pooled query as a residual of the attention output.

The module layout and key names are torchvision's (``conv_proj``, ``pos_encoding``, ``blocks.0`` ..
``blocks.15``, ``norm``), except timm's ``Mlp`` (``mlp.0`` / ``mlp.3`` -> ``mlp.fc1`` / ``mlp.fc2``) and the
classifier (``head.1`` -> ``head.fc``): :func:`checkpoint_filter_fn` maps those, and a state dict saved from
torchvision's model gives torchvision's outputs.

Ours:

- Stages. torchvision has a flat list of blocks; the stages (blocks of one resolution: 1, 2, 11, 2) are
  ours. The ``(B, C, T, H, W)`` map of a stage's patch tokens (class token dropped) passes through
  ``stage_maps.<i>``, a parameter-free :class:`StageMap`, and the next stage's tokens are rebuilt from
  that module's output: ``feature_info`` names these modules, so hooks see the level's map and a wrapper
  that replaces one (an adapter, ``Z = F + g(P)``) changes what the next stage computes. Unwrapped, the
  round trip is exact.
- The class token. ``forward_features`` returns the normalised ``(B, 768, 8, 7, 7)`` map of the patch
  tokens and attaches the normalised class token ``(B, 768)`` to it as ``map.cls_token``;
  ``forward_head``'s default ``global_pool='token'`` classifies that token (torchvision's head), so
  ``forward_head(forward_features(x))`` is ``forward(x)`` is torchvision's logits. An operation on the map
  (``.to()``, ``.clone()``) drops the attribute: pass ``cls_token=`` to ``forward_head`` then, or use
  ``global_pool='avg'`` (the mean of the patch tokens) or ``'max'``.
- Input size. The position tables (v1's absolute ones, v2's relative ones) are built for one clip size,
  ``16 x 224 x 224`` by default (``temporal_size``, ``spatial_size``): other sizes raise a ValueError
  (torchvision's model fails on them with a reshape error). ``min_frames`` and ``min_size`` are 16 and 224.

HCML levels (:func:`zoo.adapters.attach_hcml`: level ``l`` is ``feature_info[len - 5 + l]``): the maps of stages
1, 2, 3 (1, 2 and 11 blocks), ``stage_maps.0|1|2``: ``(B, 96 | 192 | 384, 8, 56 | 28 | 14, ..)`` at ``16 x 224 x
224``, the patch tokens of the stage's last block as a ``(T, H, W)`` grid, the class token left out. The wrapper
returns ``Z = F + g(P)`` for that map; the next stage's tokens are rebuilt from it, so ``g(P)`` is added to the
patch tokens of the same ``(t, h, w)`` positions, and the class token passes through unchanged. The positions
are a fixed grid (the input size is fixed), so the cost volume compares the tokens of neighbouring time steps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from timm.layers import DropPath, Mlp, trunc_normal_
from torch import nn
from torch.utils.checkpoint import checkpoint

from .._builder import build_model_with_cfg
from .._features import FeatureInfo
from .._pretrained import kinetics400_label_names, video_cfg
from .._registry import register_model
from ..layers import feature_take_indices
from ._base import VideoClassifierHead, VideoModel, check_video_input

__all__ = [
    "MViT",
    "MSBlockConfig",
    "MultiscaleBlock",
    "MultiscaleAttention",
    "StageMap",
    "TokenClassifierHead",
    "checkpoint_filter_fn",
]

Size3 = tuple[int, int, int]


@dataclass(frozen=True)
class MSBlockConfig:
    """One multiscale block: heads, input and output widths, pooling kernels and strides as ``(t, h, w)``
    (empty: no pooling of that kind), torchvision's ``MSBlockConfig``."""

    num_heads: int
    input_channels: int
    output_channels: int
    kernel_q: tuple[int, ...]
    kernel_kv: tuple[int, ...]
    stride_q: tuple[int, ...]
    stride_kv: tuple[int, ...]


def _block_settings(**columns: Sequence[Any]) -> list[MSBlockConfig]:
    """Per-block lists (torchvision's config table: ``num_heads=[...]``, ``kernel_q=[[3, 3, 3], [], ...]``)
    -> one :class:`MSBlockConfig` per block."""
    depth = len(columns["num_heads"])
    if any(len(column) != depth for column in columns.values()):
        raise ValueError(f"every column of the block table needs {depth} entries")
    return [
        MSBlockConfig(**{k: tuple(v[i]) if isinstance(v[i], (list, tuple)) else v[i] for k, v in columns.items()})
        for i in range(depth)
    ]


def _tokens_to_map(tokens: torch.Tensor, thw: Size3) -> torch.Tensor:
    """``(B, 1 + T*H*W, C)`` tokens -> the ``(B, C, T, H, W)`` map of the patch tokens (class token dropped)."""
    return tokens[:, 1:].transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], *thw).contiguous()


class StageMap(nn.Identity):
    """The ``(B, C, T, H, W)`` map of a stage's patch tokens passes through here (see the module docstring):
    its output is the stage's feature level, and the next stage's tokens are rebuilt from it."""


class Pool(nn.Module):
    """Pool the patch tokens of ``(B, [heads,] 1 + T*H*W, C)`` on their ``(T, H, W)`` grid (the class token
    passes unpooled), then normalise every token; torchvision's ``Pool`` (``pool``, ``norm_act.0``).

    Args:
        pool: a module on ``(B*heads, C, T, H, W)`` (a depthwise conv or a max pool).
        norm: normalisation over ``C`` after pooling, or None.
    """

    def __init__(self, pool: nn.Module, norm: nn.Module | None = None) -> None:
        super().__init__()
        self.pool = pool
        self.norm_act = nn.Sequential(norm) if norm is not None else None

    def forward(self, x: torch.Tensor, thw: Size3) -> tuple[torch.Tensor, Size3]:
        """``(B, [heads,] 1 + T*H*W, C)``, ``(T, H, W)`` -> ``(B, [heads,] 1 + T'*H'*W', C)``, ``(T', H', W')``."""
        squeeze = x.ndim == 3
        if squeeze:
            x = x.unsqueeze(1)
        class_token, x = x[:, :, :1], x[:, :, 1:]
        b, n, _, c = x.shape
        # q, k, v are strided views of the qkv projection, and this reshape can be a view of them too: copied
        # here, once, the pooling conv keeps a contiguous input for its backward (a view is copied again there)
        x = x.transpose(2, 3).reshape(b * n, c, *thw).contiguous()
        x = self.pool(x)
        thw = (x.shape[2], x.shape[3], x.shape[4])
        x = x.reshape(b, n, c, -1).transpose(2, 3)
        x = torch.cat((class_token, x), dim=2)
        if self.norm_act is not None:
            x = self.norm_act(x)
        return (x.squeeze(1) if squeeze else x), thw


def _depthwise_pool(dim: int, kernel: Sequence[int], stride: Sequence[int], norm_layer: type[nn.Module]) -> Pool:
    conv = nn.Conv3d(
        dim, dim, tuple(kernel), stride=tuple(stride), padding=tuple(k // 2 for k in kernel), groups=dim, bias=False
    )
    return Pool(conv, norm_layer(dim))


def _pools(kernel: Sequence[int], stride: Sequence[int]) -> bool:
    return math.prod(kernel) > 1 or math.prod(stride) > 1


class MultiscaleAttention(nn.Module):
    """Multi-head pooling attention (MHPA) on ``(B, 1 + T*H*W, C)`` tokens.

    q, k and v are pooled on the token grid by depthwise convs (with a LayerNorm); v2 adds decomposed
    relative position terms to the logits (``rel_pos_h``, ``rel_pos_w``, ``rel_pos_t``) and the pooled
    query to the output of the patch tokens (``residual_pool``).

    Args:
        input_size: ``(T, H, W)`` of the block's input grid (sizes the relative position tables).
        embed_dim: input width; ``output_dim`` the width of q, k, v and of the output.
        num_heads: heads (``head_dim = output_dim // num_heads``).
        kernel_q, stride_q, kernel_kv, stride_kv: pooling of q and of k, v (empty: none).
        residual_pool: add the pooled q to the attention output (v2).
        residual_with_cls_embed: that residual includes the class token.
        rel_pos_embed: v2's relative position terms.
        proj_drop: dropout after the output projection (torchvision's ``attention_dropout``).
        norm_layer: the pooling norm.
    """

    def __init__(
        self,
        input_size: Size3,
        embed_dim: int,
        output_dim: int,
        num_heads: int,
        kernel_q: Sequence[int],
        kernel_kv: Sequence[int],
        stride_q: Sequence[int],
        stride_kv: Sequence[int],
        residual_pool: bool,
        residual_with_cls_embed: bool,
        rel_pos_embed: bool,
        proj_drop: float = 0.0,
        norm_layer: type[nn.Module] = nn.LayerNorm,
    ) -> None:
        super().__init__()
        self.output_dim = output_dim
        self.num_heads = num_heads
        self.head_dim = output_dim // num_heads
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.residual_pool = residual_pool
        self.residual_with_cls_embed = residual_with_cls_embed

        self.qkv = nn.Linear(embed_dim, 3 * output_dim)
        self.project = nn.Sequential(nn.Linear(output_dim, output_dim), nn.Dropout(proj_drop))
        self.pool_q = None
        if _pools(kernel_q, stride_q):
            self.pool_q = _depthwise_pool(self.head_dim, kernel_q, stride_q, norm_layer)
        self.pool_k = self.pool_v = None
        if _pools(kernel_kv, stride_kv):
            self.pool_k = _depthwise_pool(self.head_dim, kernel_kv, stride_kv, norm_layer)
            self.pool_v = _depthwise_pool(self.head_dim, kernel_kv, stride_kv, norm_layer)

        self.rel_pos_h = self.rel_pos_w = self.rel_pos_t = None
        if rel_pos_embed:
            size = max(input_size[1:])
            q_size = size // stride_q[1] if len(stride_q) > 0 else size
            kv_size = size // stride_kv[1] if len(stride_kv) > 0 else size
            spatial_dim = 2 * max(q_size, kv_size) - 1
            self.rel_pos_h = nn.Parameter(torch.zeros(spatial_dim, self.head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(spatial_dim, self.head_dim))
            self.rel_pos_t = nn.Parameter(torch.zeros(2 * input_size[0] - 1, self.head_dim))
            for p in (self.rel_pos_h, self.rel_pos_w, self.rel_pos_t):
                trunc_normal_(p, std=0.02)

    def _rel_pos(self, q: torch.Tensor, q_thw: Size3, k_thw: Size3) -> torch.Tensor:
        """v2's decomposed relative position terms ``(B, heads, Tq*Hq*Wq, Tk*Hk*Wk)`` for the patch tokens
        (torchvision's ``_add_rel_pos``, after SlowFast; the tables match the grid sizes, see the module
        docstring, so they are never interpolated)."""

        def distances(nq: int, nk: int) -> torch.Tensor:
            q_ratio, k_ratio = max(nk / nq, 1.0), max(nq / nk, 1.0)
            qi = torch.arange(nq, device=q.device)[:, None] * q_ratio
            ki = (torch.arange(nk, device=q.device)[None, :] + (1.0 - nk)) * k_ratio
            return (qi - ki).long()

        (q_t, q_h, q_w), (k_t, k_h, k_w) = q_thw, k_thw
        rh = self.rel_pos_h[distances(q_h, k_h)]  # (Hq, Hk, d)
        rw = self.rel_pos_w[distances(q_w, k_w)]  # (Wq, Wk, d)
        rt = self.rel_pos_t[distances(q_t, k_t)]  # (Tq, Tk, d)
        b, heads, _, dim = q.shape
        r_q = q[:, :, 1:].reshape(b, heads, q_t, q_h, q_w, dim)
        rel_h = torch.einsum("bythwc,hkc->bythwk", r_q, rh)  # (B, heads, Tq, Hq, Wq, Hk)
        rel_w = torch.einsum("bythwc,wkc->bythwk", r_q, rw)  # (B, heads, Tq, Hq, Wq, Wk)
        # (Tq, B*heads*Hq*Wq, d) @ (Tq, d, Tk) -> (B, heads, Tq, Hq, Wq, Tk), torchvision's order of operations
        r_q = r_q.permute(2, 0, 1, 3, 4, 5).reshape(q_t, b * heads * q_h * q_w, dim)
        rel_t = torch.matmul(r_q, rt.transpose(1, 2)).transpose(0, 1)
        rel_t = rel_t.view(b, heads, q_h, q_w, q_t, k_t).permute(0, 1, 4, 2, 3, 5)
        rel = (
            rel_h[:, :, :, :, :, None, :, None]
            + rel_w[:, :, :, :, :, None, None, :]
            + rel_t[:, :, :, :, :, :, None, None]
        )
        return rel.reshape(b, heads, q_t * q_h * q_w, k_t * k_h * k_w)

    def forward(self, x: torch.Tensor, thw: Size3) -> tuple[torch.Tensor, Size3]:
        """``(B, 1 + T*H*W, embed_dim)``, ``(T, H, W)`` -> ``(B, 1 + T'*H'*W', output_dim)``, q's ``(T', H', W')``."""
        b, n, _ = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).transpose(1, 3).unbind(dim=2)
        k_thw = thw
        if self.pool_k is not None:
            k, k_thw = self.pool_k(k, thw)
            v = self.pool_v(v, thw)[0]
        if self.pool_q is not None:
            q, thw = self.pool_q(q, thw)

        attn = torch.matmul(self.scale * q, k.transpose(2, 3))
        if self.rel_pos_h is not None:
            attn[:, :, 1:, 1:] += self._rel_pos(q, thw, k_thw)
        attn = attn.softmax(dim=-1)
        x = torch.matmul(attn, v)
        if self.residual_pool:
            if self.residual_with_cls_embed:
                x = x + q
            else:
                x[:, :, 1:] += q[:, :, 1:]
        x = x.transpose(1, 2).reshape(b, -1, self.output_dim)
        return self.project(x), thw


class MultiscaleBlock(nn.Module):
    """Pre-norm MHPA and MLP with residuals; the residual is max-pooled where q is, and projected
    (``project``) where the width changes: after the attention (v2, ``proj_after_attn``) or after the MLP (v1).

    Args:
        input_size: ``(T, H, W)`` of the block's input grid.
        cnf: the block's :class:`MSBlockConfig`.
        residual_pool, residual_with_cls_embed, rel_pos_embed: see :class:`MultiscaleAttention`.
        proj_after_attn: the width changes in the attention (v2) rather than in the MLP (v1).
        proj_drop: dropout after the attention projection and in the MLP.
        drop_path: stochastic depth of both residual branches.
        norm_layer: the norms.
    """

    def __init__(
        self,
        input_size: Size3,
        cnf: MSBlockConfig,
        residual_pool: bool,
        residual_with_cls_embed: bool,
        rel_pos_embed: bool,
        proj_after_attn: bool,
        proj_drop: float = 0.0,
        drop_path: float = 0.0,
        norm_layer: type[nn.Module] = nn.LayerNorm,
    ) -> None:
        super().__init__()
        self.proj_after_attn = proj_after_attn
        self.pool_skip = None
        if math.prod(cnf.stride_q) > 1:
            kernel_skip = tuple(s + 1 if s > 1 else s for s in cnf.stride_q)
            padding_skip = tuple(k // 2 for k in kernel_skip)
            self.pool_skip = Pool(nn.MaxPool3d(kernel_skip, stride=cnf.stride_q, padding=padding_skip))
        attn_dim = cnf.output_channels if proj_after_attn else cnf.input_channels
        self.norm1 = norm_layer(cnf.input_channels)
        self.norm2 = norm_layer(attn_dim)
        self.attn = MultiscaleAttention(
            input_size,
            cnf.input_channels,
            attn_dim,
            cnf.num_heads,
            kernel_q=cnf.kernel_q,
            kernel_kv=cnf.kernel_kv,
            stride_q=cnf.stride_q,
            stride_kv=cnf.stride_kv,
            residual_pool=residual_pool,
            residual_with_cls_embed=residual_with_cls_embed,
            rel_pos_embed=rel_pos_embed,
            proj_drop=proj_drop,
            norm_layer=norm_layer,
        )
        self.mlp = Mlp(attn_dim, 4 * attn_dim, cnf.output_channels, act_layer=nn.GELU, drop=proj_drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.project = None
        if cnf.input_channels != cnf.output_channels:
            self.project = nn.Linear(cnf.input_channels, cnf.output_channels)

    def forward(self, x: torch.Tensor, thw: Size3) -> tuple[torch.Tensor, Size3]:
        """``(B, 1 + T*H*W, C_in)``, ``(T, H, W)`` -> ``(B, 1 + T'*H'*W', C_out)``, ``(T', H', W')``."""
        x_norm1 = self.norm1(x)
        x_attn, thw_new = self.attn(x_norm1, thw)
        if self.project is not None and self.proj_after_attn:
            x = self.project(x_norm1)
        x_skip = x if self.pool_skip is None else self.pool_skip(x, thw)[0]
        x = x_skip + self.drop_path(x_attn)
        x_norm2 = self.norm2(x)
        x_proj = self.project(x_norm2) if self.project is not None and not self.proj_after_attn else x
        return x_proj + self.drop_path(self.mlp(x_norm2)), thw_new


class PositionalEncoding(nn.Module):
    """Prepend the class token and (v1) add absolute space-time position embeddings, torchvision's keys.

    Args:
        embed_dim: token width.
        grid: ``(T, H, W)`` of the patch tokens.
        rel_pos_embed: v2 (relative positions in the attention): no absolute tables.
    """

    def __init__(self, embed_dim: int, grid: Size3, rel_pos_embed: bool) -> None:
        super().__init__()
        self.grid = grid
        self.class_token = nn.Parameter(torch.zeros(embed_dim))
        self.spatial_pos = self.temporal_pos = self.class_pos = None
        if not rel_pos_embed:
            self.spatial_pos = nn.Parameter(torch.zeros(grid[1] * grid[2], embed_dim))
            self.temporal_pos = nn.Parameter(torch.zeros(grid[0], embed_dim))
            self.class_pos = nn.Parameter(torch.zeros(embed_dim))
        for p in self.parameters():
            trunc_normal_(p, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T*H*W, C)`` patch tokens -> ``(B, 1 + T*H*W, C)``."""
        x = torch.cat((self.class_token.expand(x.shape[0], 1, -1), x), dim=1)
        if self.spatial_pos is not None:
            hw = self.spatial_pos.shape[0]
            pos = self.temporal_pos.repeat_interleave(hw, dim=0) + self.spatial_pos.repeat(self.grid[0], 1)
            x = x + torch.cat((self.class_pos[None], pos), dim=0)[None]
        return x


class TokenClassifierHead(VideoClassifierHead):
    """:class:`VideoClassifierHead` with ``global_pool='token'`` too: dropout and the classifier on a
    ``(B, C)`` class token (torchvision's MViT head); ``'avg'``, ``'max'`` and ``''`` pool a map as usual."""

    def reset(self, num_classes: int, global_pool: str | None = None) -> None:
        if global_pool == "token":
            super().reset(num_classes, "")
            self.global_pool = "token"
        else:
            super().reset(num_classes, global_pool)

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """``(B, C)`` class token (``'token'``) or ``(B, C, T, H, W)`` map -> ``(B, num_classes)``, or
        ``(B, C)`` with ``pre_logits``."""
        if self.global_pool != "token":
            return super().forward(x, pre_logits=pre_logits)
        if x.ndim != 2:
            raise ValueError(f"global_pool='token' classifies a (B, C) class token, got shape {tuple(x.shape)}")
        x = self.drop(x)
        return x if pre_logits else self.fc(x)


class MViT(VideoModel):
    """MViT (v1) / MViTv2 on clips ``(B, C, T, H, W)`` of one fixed size (``temporal_size x spatial_size``).

    Args:
        block_setting: one :class:`MSBlockConfig` per block.
        spatial_size, temporal_size: the clip size the position tables are built for.
        residual_pool, residual_with_cls_embed, rel_pos_embed, proj_after_attn: v2's changes (see
            :class:`MultiscaleAttention`, :class:`MultiscaleBlock`).
        num_classes: classifier size (0: pooled features out).
        in_chans: input channels.
        drop_rate: dropout before the classifier (torchvision's ``dropout``, 0.5).
        proj_drop_rate: dropout after the attention projection and in the MLPs (torchvision's ``attention_dropout``).
        drop_path_rate: stochastic depth of the last block, linear in the block index from 0 (0.2 in the entrypoints).
        global_pool: ``'token'`` (the class token, torchvision's), ``'avg'``, ``'max'`` or ``''``.
        patch_embed_kernel, patch_embed_stride, patch_embed_padding: the patchifying conv ``conv_proj``.

    Attributes:
        feature_info: one level per stage (blocks of one resolution), at ``stage_maps.<i>`` (see the
            module docstring); reductions 4, 8, 16, 32 in space and 2 in time.
        stage_blocks: the block indices of each stage.
        min_frames, min_size: ``temporal_size`` and ``spatial_size``: the only clip size accepted.
    """

    def __init__(
        self,
        block_setting: Sequence[MSBlockConfig],
        spatial_size: tuple[int, int] = (224, 224),
        temporal_size: int = 16,
        residual_pool: bool = False,
        residual_with_cls_embed: bool = True,
        rel_pos_embed: bool = False,
        proj_after_attn: bool = False,
        num_classes: int = 400,
        in_chans: int = 3,
        drop_rate: float = 0.5,
        proj_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        global_pool: str = "token",
        patch_embed_kernel: Size3 = (3, 7, 7),
        patch_embed_stride: Size3 = (2, 4, 4),
        patch_embed_padding: Size3 = (1, 3, 3),
    ) -> None:
        super().__init__()
        if not block_setting:
            raise ValueError("block_setting is empty: give one MSBlockConfig per block")
        if spatial_size[0] != spatial_size[1]:
            raise ValueError(f"spatial_size must be square (one spatial reduction per level), got {spatial_size}")
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.grad_checkpointing = False
        self.clip_size = (temporal_size, *spatial_size)
        self.min_frames = temporal_size
        self.min_size = spatial_size[0]
        norm_layer = _layer_norm

        self.conv_proj = nn.Conv3d(
            in_chans,
            block_setting[0].input_channels,
            kernel_size=patch_embed_kernel,
            stride=patch_embed_stride,
            padding=patch_embed_padding,
        )
        grid = tuple(s // k for s, k in zip(self.clip_size, patch_embed_stride))
        self.pos_encoding = PositionalEncoding(block_setting[0].input_channels, grid, rel_pos_embed)

        self.blocks = nn.ModuleList()
        stage_starts, feature_info = [], []
        reduction, temporal_reduction = patch_embed_stride[1], patch_embed_stride[0]
        depth = len(block_setting)
        for i, cnf in enumerate(block_setting):
            pools = math.prod(cnf.stride_q) > 1
            if i == 0 or pools:
                stage_starts.append(i)
            if pools:
                temporal_reduction *= cnf.stride_q[0]
                reduction *= cnf.stride_q[1]
            self.blocks.append(
                MultiscaleBlock(
                    grid,
                    cnf,
                    residual_pool=residual_pool,
                    residual_with_cls_embed=residual_with_cls_embed,
                    rel_pos_embed=rel_pos_embed,
                    proj_after_attn=proj_after_attn,
                    proj_drop=proj_drop_rate,
                    drop_path=drop_path_rate * i / (depth - 1.0) if depth > 1 else 0.0,
                    norm_layer=norm_layer,
                )
            )
            if len(cnf.stride_q) > 0:
                grid = tuple(s // k for s, k in zip(grid, cnf.stride_q))
            if i + 1 == depth or math.prod(block_setting[i + 1].stride_q) > 1:
                feature_info.append(
                    dict(
                        num_chs=cnf.output_channels,
                        reduction=reduction,
                        temporal_reduction=temporal_reduction,
                        module=f"stage_maps.{len(feature_info)}",
                    )
                )
        self.stage_blocks = [range(s, e) for s, e in zip(stage_starts, stage_starts[1:] + [depth])]
        self.stage_maps = nn.ModuleList(StageMap() for _ in self.stage_blocks)
        self.feature_info = FeatureInfo(feature_info)
        self.num_features = block_setting[-1].output_channels
        self.norm = norm_layer(self.num_features)
        self.head = TokenClassifierHead(self.num_features, num_classes, global_pool, drop_rate)
        self._init_weights()

    def _init_weights(self) -> None:
        """torchvision's: linear layers N(0, 0.02) truncated with zero biases, unit LayerNorms (the position
        tables are initialised where they are made)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def check_input(self, x: torch.Tensor) -> None:
        check_video_input(x, self.in_chans, self.min_frames, self.min_size)
        if tuple(x.shape[2:]) != self.clip_size:
            t, h, w = self.clip_size
            raise ValueError(
                f"expected a float tensor of shape (B, {self.in_chans}, T, H, W) with T = {t} and H x W = {h} x {w}: "
                f"this MViT's position tables are built for {t} x {h} x {w} clips only, got shape {tuple(x.shape)}"
            )

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block's activations in backward instead of storing them (training only)."""
        self.grad_checkpointing = enable

    def _embed(self, x: torch.Tensor) -> tuple[torch.Tensor, Size3]:
        """``(B, C, T, H, W)`` -> tokens ``(B, 1 + T'*H'*W', C')`` with the class token first, ``(T', H', W')``."""
        x = self.conv_proj(x)
        thw = (x.shape[2], x.shape[3], x.shape[4])
        return self.pos_encoding(x.flatten(2).transpose(1, 2)), thw

    def _run_stage(self, stage: int, x: torch.Tensor, thw: Size3) -> tuple[torch.Tensor, Size3, torch.Tensor]:
        """Run stage ``stage``'s blocks; its map goes through ``stage_maps[stage]`` and the tokens are rebuilt
        from that module's output. Returns the tokens, their grid and the map."""
        for i in self.stage_blocks[stage]:
            block = self.blocks[i]
            if self.grad_checkpointing and self.training and torch.is_grad_enabled():
                x, thw = checkpoint(block, x, thw, use_reentrant=False)
            else:
                x, thw = block(x, thw)
        fmap = self.stage_maps[stage](_tokens_to_map(x, thw))
        thw = (fmap.shape[2], fmap.shape[3], fmap.shape[4])
        x = torch.cat((x[:, :1], fmap.flatten(2).transpose(1, 2)), dim=1)
        return x, thw, fmap

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, 16, 224, 224)`` -> the normalised ``(B, num_features, 8, 7, 7)`` map of the patch tokens,
        with the normalised class token ``(B, num_features)`` attached as ``.cls_token`` (module docstring)."""
        self.check_input(x)
        x, thw = self._embed(x)
        for stage in range(len(self.stage_blocks)):
            x, thw, _ = self._run_stage(stage, x, thw)
        x = self.norm(x)
        fmap = _tokens_to_map(x, thw)
        fmap.cls_token = x[:, 0]
        return fmap

    def forward_intermediates(self, x: torch.Tensor, indices: int | Sequence[int] | None = None) -> list[torch.Tensor]:
        """The ``(B, C, T, H, W)`` maps (before the final norm) of the stages ``indices`` of ``feature_info``,
        in that order (see :meth:`zoo.models.video_resnet.VideoResNet.forward_intermediates`); stages
        after the last one asked for are not run."""
        take = feature_take_indices(len(self.feature_info), indices)
        self.check_input(x)
        x, thw = self._embed(x)
        maps = {}
        for stage in range(max(take) + 1):
            x, thw, maps[stage] = self._run_stage(stage, x, thw)
        return [maps[i] for i in take]

    def prune_intermediate_layers(self, last_index: int) -> None:
        """Drop the blocks after stage ``last_index``, the final norm and the classifier (``features_only`` use)."""
        end = self.stage_blocks[last_index].stop
        self.blocks = self.blocks[:end]
        self.stage_blocks = self.stage_blocks[: last_index + 1]
        self.stage_maps = self.stage_maps[: last_index + 1]
        self.norm = nn.Identity()
        self.reset_classifier(0, "")

    def forward_head(
        self, x: torch.Tensor, pre_logits: bool = False, cls_token: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The map of :meth:`forward_features` -> ``(B, num_classes)`` logits (``(B, num_features)`` with
        ``pre_logits``). ``global_pool='token'`` classifies the class token: ``cls_token`` if given, else
        the map's ``.cls_token``; ``'avg'`` / ``'max'`` pool the map."""
        if self.head.global_pool == "token":
            token = cls_token if cls_token is not None else getattr(x, "cls_token", None)
            if token is None:
                raise ValueError(
                    "global_pool='token' needs the class token: pass the map forward_features returned (it carries "
                    "it as .cls_token, which operations on the map drop), or forward_head(x, cls_token=...), or "
                    "reset_classifier(num_classes, global_pool='avg') to pool the patch tokens instead"
                )
            x = token
        return self.head(x, pre_logits=pre_logits)


def _layer_norm(dim: int) -> nn.LayerNorm:
    """torchvision's MViT norm: LayerNorm with eps 1e-6."""
    return nn.LayerNorm(dim, eps=1e-6)


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: MViT) -> dict[str, torch.Tensor]:
    """torchvision's keys -> ours: ``mlp.0`` / ``mlp.3`` -> ``mlp.fc1`` / ``mlp.fc2`` (timm's Mlp) and ``head.1``
    -> ``head.fc``; the zoo's own keys pass through."""
    out = {}
    for key, value in state_dict.items():
        key = key.replace(".mlp.0.", ".mlp.fc1.").replace(".mlp.3.", ".mlp.fc2.")
        if key.startswith("head.1."):
            key = "head.fc." + key[len("head.1.") :]
        out[key] = value
    return out


def _hash_prefix(url: str) -> str:
    """torchvision's file names end with their sha256's first hex digits: ``mvit_v1_b-dbeb1030.pth`` -> ``dbeb1030``."""
    return url.rsplit("/", 1)[-1].rsplit("-", 1)[-1].split(".")[0]


_TV_DOCS_EVAL = dict(clip_len=16, frame_rate=7.5, clips_per_video=5, views="5x1")


def _cfg(**kwargs: Any):
    """torchvision's MViT eval transform: 16 frames, short side to 256, centre crop 224, mean 0.45, std 0.225."""
    defaults = dict(
        input_size=(3, 16, 224, 224),
        frame_stride=1,
        mean=(0.45, 0.45, 0.45),
        std=(0.225, 0.225, 0.225),
        crop_pct=224 / 256,
        resize_size=256,
        min_size=224,
        min_frames=16,
        num_classes=400,
        first_conv="conv_proj",
        classifier="head.fc",
    )
    return video_cfg(**dict(defaults, **kwargs))


def _tv_cfg(url: str, top1: float, top5: float, num_params: int, gflops: float, **kwargs: Any):
    """A torchvision Kinetics-400 weights file (``MViT_*_Weights.KINETICS400_V1``: url, meta, transforms)."""
    return _cfg(
        url=url,
        hash_prefix=_hash_prefix(url),
        license="BSD-3-Clause",
        dataset="Kinetics-400",
        label_names=kinetics400_label_names(),
        metrics=dict(top1=top1, top5=top5, **_TV_DOCS_EVAL),
        num_params=num_params,
        gflops=gflops,
        notes=(
            "torchvision's port of the paper's weights. torchvision's accuracies are video-level with "
            "frame_rate=7.5, clips_per_video=5, clip_len=16 (one centre crop per clip)."
        ),
        **kwargs,
    )


_V1_PAPER = "https://arxiv.org/abs/2104.11227"
_V2_PAPER = "https://arxiv.org/abs/2112.01526"

default_cfgs = {
    "mvit_v1_b": _cfg(paper=_V1_PAPER),
    "mvit_v1_b.tv_k400": _tv_cfg(
        "https://download.pytorch.org/models/mvit_v1_b-dbeb1030.pth",
        top1=78.477,
        top5=93.582,
        num_params=36610672,
        gflops=70.599,
        paper=_V1_PAPER,
        recipe="https://github.com/facebookresearch/pytorchvideo/blob/main/docs/source/model_zoo.md",
    ),
    "mvit_v2_s": _cfg(paper=_V2_PAPER),
    "mvit_v2_s.tv_k400": _tv_cfg(
        "https://download.pytorch.org/models/mvit_v2_s-ae3be167.pth",
        top1=80.757,
        top5=94.665,
        num_params=34537744,
        gflops=64.224,
        paper=_V2_PAPER,
        recipe="https://github.com/facebookresearch/SlowFast/blob/main/MODEL_ZOO.md",
    ),
}


def _create_mvit(variant: str, pretrained: bool, **kwargs: Any) -> MViT:
    return build_model_with_cfg(MViT, variant, pretrained, pretrained_filter_fn=checkpoint_filter_fn, **kwargs)


_Q3 = (3, 3, 3)
_POOL_Q = (1, 2, 2)


@register_model
def mvit_v1_b(pretrained: bool = False, **kwargs: Any) -> MViT:
    """MViT-B 16x4 (Fan et al. 2021), torchvision's ``mvit_v1_b``: 16 blocks in stages of 1, 2, 11, 2, widths
    192, 384, 768, 768 at the stage ends, absolute position embeddings; 16 x 224 x 224 clips."""
    stage_first = {1, 3, 14}  # blocks that pool q (halve H, W)
    blocks = _block_settings(
        num_heads=[1, 2, 2, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 8, 8],
        input_channels=[96, 192, 192] + [384] * 11 + [768, 768],
        output_channels=[192, 192] + [384] * 11 + [768, 768, 768],
        kernel_q=[_Q3 if i in stage_first else () for i in range(16)],
        kernel_kv=[_Q3] * 16,
        stride_q=[_POOL_Q if i in stage_first else () for i in range(16)],
        stride_kv=[(1, 8, 8), (1, 4, 4), (1, 4, 4)] + [(1, 2, 2)] * 11 + [(1, 1, 1)] * 2,
    )
    model_args = dict(
        block_setting=blocks,
        residual_pool=False,
        residual_with_cls_embed=False,
        rel_pos_embed=False,
        proj_after_attn=False,
        drop_path_rate=0.2,
    )
    return _create_mvit("mvit_v1_b", pretrained, **dict(model_args, **kwargs))


@register_model
def mvit_v2_s(pretrained: bool = False, **kwargs: Any) -> MViT:
    """MViTv2-S 16x4 (Li et al. 2022), torchvision's ``mvit_v2_s``: 16 blocks in stages of 1, 2, 11, 2, widths
    96, 192, 384, 768, relative position terms and residual pooling; 16 x 224 x 224 clips."""
    stage_first = {1, 3, 14}
    blocks = _block_settings(
        num_heads=[1, 2, 2, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 8, 8],
        input_channels=[96, 96, 192, 192] + [384] * 11 + [768],
        output_channels=[96, 192, 192] + [384] * 11 + [768, 768],
        kernel_q=[_Q3] * 16,
        kernel_kv=[_Q3] * 16,
        stride_q=[_POOL_Q if i in stage_first else (1, 1, 1) for i in range(16)],
        stride_kv=[(1, 8, 8), (1, 4, 4), (1, 4, 4)] + [(1, 2, 2)] * 11 + [(1, 1, 1)] * 2,
    )
    model_args = dict(
        block_setting=blocks,
        residual_pool=True,
        residual_with_cls_embed=False,
        rel_pos_embed=True,
        proj_after_attn=True,
        drop_path_rate=0.2,
    )
    return _create_mvit("mvit_v2_s", pretrained, **dict(model_args, **kwargs))
