"""Render the flow that HCML's flow heads estimate, as the paper's Figure 4 shows it."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image
from torch import nn
from torchvision.utils import flow_to_image, make_grid

from .flow import upsample_flow
from .hcml import capture_motion, hcml_stages

__all__ = ["render_flow"]


def _to_uint8(frames: torch.Tensor, mean: Sequence[float] | None, std: Sequence[float] | None) -> torch.Tensor:
    """``(N, C, H, W)`` normalised frames -> ``(N, 3, H, W)`` uint8 (first three channels, or grey)."""
    if mean is not None and std is not None:
        std_ = torch.tensor(std, dtype=frames.dtype).view(1, -1, 1, 1)
        frames = frames * std_ + torch.tensor(mean, dtype=frames.dtype).view(1, -1, 1, 1)
    frames = frames[:, :3] if frames.shape[1] >= 3 else frames[:, :1].expand(-1, 3, -1, -1)
    return (frames.clamp(0, 1) * 255).round().to(torch.uint8)


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
    side = getattr(model, "hcml", None)
    if side is None or len(side["flow"]) == 0:
        raise ValueError("render_flow needs an HCML model with flow heads (its side branch; not a deployed model)")
    clip = clip if clip.ndim == 5 else clip.unsqueeze(0)
    clip = clip[:1].to(next(model.parameters()).device)
    cfg = getattr(model, "pretrained_cfg", None)
    mean = mean if mean is not None else getattr(cfg, "mean", None)
    std = std if std is not None else getattr(cfg, "std", None)
    levels = sorted(int(level) for level in side["flow"])
    stages = hcml_stages(model)
    was_training = model.training
    model.eval()
    try:
        with capture_motion(model, stop_after_level=levels[-1]) as motion:
            model(clip)
    finally:
        model.train(was_training)

    tiles = []
    height, width = clip.shape[-2:]
    for level in levels:
        flow = side["flow"][str(level)](motion[level])[0].float()  # (2, T_l, h, w)
        r = stages[level].temporal_reduction
        frames = clip[0, :, ::r].transpose(0, 1).float().cpu()  # (T_l, C, H, W)
        for t in range(min(max_pairs, flow.shape[1] - 1)):
            flow_t = upsample_flow(flow[:, t].unsqueeze(0), (height, width)).cpu()
            images = _to_uint8(frames[t : t + 2], mean, std)
            tiles.extend([images[0], images[1], flow_to_image(flow_t)[0]])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid = make_grid(tiles, nrow=3, padding=2)
    Image.fromarray(grid.permute(1, 2, 0).numpy()).save(path)
    return path
