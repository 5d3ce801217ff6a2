"""Render the flow that HCML's flow heads estimate, as the paper's Figure 4 shows it."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image
from torch import nn
from torchvision.utils import flow_to_image, make_grid

from .flow import upsample_flow
from .hcml import estimate_flows, flow_head_levels, hcml_stages

__all__ = ["frames_to_uint8", "render_flow", "render_flow_levels"]


def frames_to_uint8(frames: torch.Tensor, mean: Sequence[float] | None = None,
                    std: Sequence[float] | None = None) -> torch.Tensor:
    """Undo a dataset's normalisation for display: ``(N, C, H, W)`` float frames, normalised with per-channel
    ``mean`` and ``std`` (in [0, 1] units, as ``pretrained_cfg`` gives them; None: already in [0, 1]) ->
    ``(N, 3, H, W)`` uint8, clamped to [0, 255]. Takes the first three channels (one channel: grey)."""
    if frames.dim() != 4:
        raise ValueError(f"frames_to_uint8 takes (N, C, H, W) frames, got shape {tuple(frames.shape)}")
    if mean is not None and std is not None:
        std_ = torch.tensor(std, dtype=frames.dtype).view(1, -1, 1, 1)
        frames = frames * std_ + torch.tensor(mean, dtype=frames.dtype).view(1, -1, 1, 1)
    frames = frames[:, :3] if frames.shape[1] >= 3 else frames[:, :1].expand(-1, 3, -1, -1)
    return (frames.clamp(0, 1) * 255).round().to(torch.uint8)


def _flow_heads(model: nn.Module, caller: str) -> list[int]:
    """The levels with a flow head, lowest first; a ValueError naming ``caller`` when there is none."""
    levels = flow_head_levels(model)
    if not levels:
        raise ValueError(f"{caller} needs an HCML model with flow heads (its side branch; not a deployed model)")
    return levels


def _display_norm(model: nn.Module, mean, std) -> tuple:
    cfg = getattr(model, "pretrained_cfg", None)
    return (mean if mean is not None else getattr(cfg, "mean", None),
            std if std is not None else getattr(cfg, "std", None))


@torch.no_grad()
def render_flow(
    model: nn.Module,
    clip: torch.Tensor,
    path: str | Path,
    max_pairs: int = 4,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> Path:
    """Write a PNG grid of the flow estimated at every HCML level that has a flow head.

    One row per (level, frame pair), lowest level first: frame t, frame t+1 (at the level's temporal
    resolution: input frames ``t * r`` and ``(t + 1) * r`` for a temporal reduction ``r``) and the
    flow of t upsampled to the frame size, coloured by ``torchvision.utils.flow_to_image``.

    Args:
        model: a model with HCML adapters and its side branch (not deployed).
        clip: one clip ``(C, T, H, W)`` or a batch ``(B, C, T, H, W)`` (the first clip is drawn),
            normalised as the model expects.
        path: the PNG file to write.
        max_pairs: frame pairs drawn per level.
        mean, std: the clip's normalisation, undone for display (default: ``model.pretrained_cfg``'s).

    Returns:
        The path written.
    """
    levels = _flow_heads(model, "render_flow")
    clip = clip if clip.ndim == 5 else clip.unsqueeze(0)
    clip = clip[:1].to(next(model.parameters()).device)
    mean, std = _display_norm(model, mean, std)
    stages = hcml_stages(model)
    flows = estimate_flows(model, clip, levels)

    tiles = []
    height, width = clip.shape[-2:]
    for level in levels:
        flow = flows[level][0]  # (2, T_l, h, w)
        r = stages[level].temporal_reduction
        frames = clip[0, :, ::r].transpose(0, 1).float().cpu()  # (T_l, C, H, W)
        for t in range(min(max_pairs, flow.shape[1] - 1)):
            flow_t = upsample_flow(flow[:, t].unsqueeze(0), (height, width)).cpu()
            images = frames_to_uint8(frames[t : t + 2], mean, std)
            tiles.extend([images[0], images[1], flow_to_image(flow_t)[0]])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid = make_grid(tiles, nrow=3, padding=2)
    Image.fromarray(grid.permute(1, 2, 0).numpy()).save(path)
    return path


@torch.no_grad()
def render_flow_levels(
    model: nn.Module,
    clips: torch.Tensor,
    path: str | Path,
    pair: int = 0,
    reference: torch.Tensor | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> Path:
    """Write the paper's Figure 4 layout: one row per clip, the flow of every level side by side.

    Each row: frame t, frame t+1 (input frames ``pair`` and ``pair + 1``), the reference flow of
    that pair when given, then the flow that each level's flow head estimates for the time step
    holding input frame ``pair`` (``pair // r`` for a temporal reduction ``r``), lowest level first,
    upsampled to the frame size (values scaled with it) and coloured by
    ``torchvision.utils.flow_to_image`` (hue: direction; each tile scaled by its own largest flow).

    Args:
        model: a model with HCML adapters and flow heads (its side branch; not deployed).
        clips: ``(B, C, T, H, W)`` clips normalised as the model expects, one row each.
        path: the PNG file to write.
        pair: the input frame t of the pair drawn; ``0 <= pair < T - 1``.
        reference: ``(B, 2, H, W)`` flow of the pair in input pixels (e.g. ``zoo.flow.FarnebackFlow``).
        mean, std: the clips' normalisation, undone for display (default: ``model.pretrained_cfg``'s).

    Returns:
        The path written.
    """
    levels = _flow_heads(model, "render_flow_levels")
    if clips.ndim != 5:
        raise ValueError(f"clips must be (B, C, T, H, W), got shape {tuple(clips.shape)}")
    batch, _, frames, height, width = clips.shape
    if not 0 <= pair < frames - 1:
        raise ValueError(f"pair must be a frame index with a next frame, 0 <= pair < {frames - 1}; got {pair}")
    if reference is not None and tuple(reference.shape) != (batch, 2, height, width):
        raise ValueError(f"reference must be (B, 2, H, W) = {(batch, 2, height, width)}, got {tuple(reference.shape)}")
    mean, std = _display_norm(model, mean, std)
    stages = hcml_stages(model)
    clips = clips.to(next(model.parameters()).device)
    flows = {}
    for level, flow in estimate_flows(model, clips, levels).items():  # (B, 2, T_l, h, w)
        step = min(pair // stages[level].temporal_reduction, flow.shape[2] - 1)
        flows[level] = upsample_flow(flow[:, :, step], (height, width)).cpu()
    tiles = []
    for b in range(batch):
        images = frames_to_uint8(clips[b, :, pair : pair + 2].transpose(0, 1).float().cpu(), mean, std)
        tiles.extend([images[0], images[1]])
        if reference is not None:
            tiles.append(flow_to_image(reference[b : b + 1].float().cpu())[0])
        tiles.extend(flow_to_image(flows[level][b : b + 1])[0] for level in levels)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid = make_grid(tiles, nrow=2 + (reference is not None) + len(levels), padding=2)
    Image.fromarray(grid.permute(1, 2, 0).numpy()).save(path)
    return path
