"""HCML's reconstruction side branch: a flow head and the unsupervised flow losses (paper 3.1, eqs. 1-2).

Conventions used throughout:

- a flow field is ``(N, 2, H, W)`` (or ``(B, 2, T, H, W)``), channel 0 the horizontal component
  ``u`` and channel 1 the vertical ``v``, in pixels of the map it is defined on;
- the flow of time step ``t`` maps frame ``t`` onto frame ``t + 1``: the content at pixel ``(x, y)``
  of frame ``t`` is at ``(x + u, y + v)`` in frame ``t + 1``. Backward warping then rebuilds frame
  ``t`` from frame ``t + 1``: ``I_hat_t(x, y) = I_{t+1}(x + u, y + v)`` (bilinear);
- the generalized Charbonnier penalty is ``rho(z) = (z^2 + eps^2)^alpha``, alpha 0.45 and eps 1e-3
  (the paper's values).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "FlowHead",
    "charbonnier",
    "upsample_flow",
    "backward_warp",
    "photometric_loss",
    "smoothness_loss",
]

CHARBONNIER_ALPHA = 0.45
CHARBONNIER_EPS = 1e-3


class FlowHead(nn.Module):
    """Flow estimator of 5 densely connected convolutions (PWC-Net's estimator, thinned).

    Every frame is handled alone: ``(B, C, T, H, W)`` motion features -> ``(B, 2, T, H, W)`` flow in
    pixels of the feature map. Four 3x3 convs with LeakyReLU(0.1) each see the input and the outputs
    of all convs before them (dense connections); the fifth, a 3x3 conv, reads all of them and
    predicts the flow. PWC-Net's widths are (128, 128, 96, 64, 32); ours default to
    (64, 48, 32, 16), enough for features of 16 to 256 channels.

    Args:
        in_channels: channels of the motion features.
        hidden_channels: output channels of the four hidden convs.
    """

    def __init__(self, in_channels: int, hidden_channels: Sequence[int] = (64, 48, 32, 16)):
        super().__init__()
        self.hidden = nn.ModuleList()
        width = in_channels
        for out in hidden_channels:
            self.hidden.append(
                nn.Sequential(nn.Conv2d(width, out, 3, padding=1), nn.LeakyReLU(0.1, inplace=True))
            )
            width += out
        self.predict = nn.Conv2d(width, 2, 3, padding=1)

    def forward(self, motion: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = motion.shape
        if motion.device.type == "cpu":
            # The frames in channels-last (one copy): oneDNN's channels-last 2-D convs compute the same sums about
            # 15% faster on a CPU for these narrow layers (benchmarks/train_step.py, the hcml group's profile);
            # the concatenations keep the format.
            x = motion.permute(0, 2, 3, 4, 1).reshape(b * t, h, w, c).permute(0, 3, 1, 2)
        else:
            x = motion.transpose(1, 2).reshape(b * t, c, h, w)
        for layer in self.hidden:
            x = torch.cat([x, layer(x)], dim=1)
        flow = self.predict(x)
        return flow.reshape(b, t, 2, h, w).transpose(1, 2)


def charbonnier(x: torch.Tensor, alpha: float = CHARBONNIER_ALPHA, eps: float = CHARBONNIER_EPS) -> torch.Tensor:
    """Generalized Charbonnier penalty ``(x^2 + eps^2)^alpha``, elementwise."""
    return (x * x + eps * eps).pow(alpha)


def upsample_flow(flow: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a flow ``(N, 2, h, w)`` in pixels of its map to ``(N, 2, H, W)`` in pixels of the new size.

    Bilinear resizing (``align_corners=False``), then ``u`` is scaled by ``W / w`` and ``v`` by ``H / h``.
    """
    h, w = flow.shape[-2:]
    height, width = size
    if (h, w) == (height, width):
        return flow
    up = F.interpolate(flow, size=size, mode="bilinear", align_corners=False)
    scale = torch.tensor([width / w, height / h], dtype=up.dtype, device=up.device).view(1, 2, 1, 1)
    return up * scale


def backward_warp(image: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``image`` at ``(x + u, y + v)`` for every pixel ``(x, y)``.

    Args:
        image: ``(N, C, H, W)``, the later frame.
        flow: ``(N, 2, H, W)`` in pixels.

    Returns:
        ``(warped, valid)``: the bilinearly sampled ``(N, C, H, W)`` image (zeros outside), and a
        ``(N, 1, H, W)`` float mask, 1 where the sample point lies inside the image (pixel centres
        ``0..W-1``, ``0..H-1``), 0 where the pixel moved out of the frame.
    """
    n, _, height, width = image.shape
    ys = torch.arange(height, dtype=flow.dtype, device=flow.device).view(1, height, 1)
    xs = torch.arange(width, dtype=flow.dtype, device=flow.device).view(1, 1, width)
    x = xs + flow[:, 0]
    y = ys + flow[:, 1]
    valid = (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)
    # align_corners=True: -1 and 1 are the centres of the first and last pixels.
    grid = torch.stack([2 * x / max(width - 1, 1) - 1, 2 * y / max(height - 1, 1) - 1], dim=-1)
    warped = F.grid_sample(image, grid.to(image.dtype), mode="bilinear", padding_mode="zeros", align_corners=True)
    return warped, valid.unsqueeze(1).to(image.dtype)


def _pairs(frames: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Frames t, t+1 and the flow of t for the T-1 real pairs, folded to ``(B*(T-1), ., H, W)``."""
    b, c, t, h, w = frames.shape
    if t < 2:
        raise ValueError(f"frame reconstruction needs at least 2 frames, got frames of shape {tuple(frames.shape)}")
    if flow.shape[0] != b or flow.shape[1] != 2 or flow.shape[2] != t:
        raise ValueError(
            f"flow {tuple(flow.shape)} does not match frames {tuple(frames.shape)}: expected (B, 2, T, h, w)"
        )

    def fold(x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2).reshape(-1, x.shape[1], *x.shape[-2:])

    flow = upsample_flow(fold(flow[:, :, :-1]), (h, w))
    return fold(frames[:, :, :-1]), fold(frames[:, :, 1:]), flow


def photometric_loss(
    frames: torch.Tensor, flow: torch.Tensor, alpha: float = CHARBONNIER_ALPHA, eps: float = CHARBONNIER_EPS
) -> torch.Tensor:
    """Eq. 1: Charbonnier error between frame t and frame t+1 warped back with the flow of t.

    Args:
        frames: ``(B, C, T, H, W)`` frames (any normalisation; the penalty is taken per channel).
        flow: ``(B, 2, T, h, w)`` flow in pixels of its ``(h, w)`` map; upsampled to ``(H, W)`` first.
            Its last time step (the last frame paired with itself) is not used.

    Returns:
        Scalar: the mean penalty over the valid pixels and channels of the T-1 pairs. The paper
        divides by all pixels (``1 / HWT``); we divide by the valid ones, so that moving pixels out
        of the frame cannot lower the loss by itself. Zero when no pixel is valid.
    """
    first, second, flow = _pairs(frames, flow)
    warped, valid = backward_warp(second, flow)
    penalty = charbonnier(first - warped, alpha, eps) * valid
    count = valid.sum() * first.shape[1]
    return penalty.sum() / count.clamp_min(1.0)


def smoothness_loss(
    flow: torch.Tensor,
    frames_size: tuple[int, int],
    alpha: float = CHARBONNIER_ALPHA,
    eps: float = CHARBONNIER_EPS,
) -> torch.Tensor:
    """Eq. 2: Charbonnier penalty of the flow's first differences in x and y, of u and v.

    Computed on the flow upsampled to the frames' size, in image pixels (the flow that warps), for
    the T-1 real pairs: the mean over pixels and pairs of ``rho(du/dx) + rho(du/dy) + rho(dv/dx) +
    rho(dv/dy)``.

    Args:
        flow: ``(B, 2, T, h, w)`` in pixels of its ``(h, w)`` map.
        frames_size: ``(H, W)`` of the frames.
    """
    b, _, t, h, w = flow.shape
    if t < 2:
        raise ValueError(f"the smoothness term needs at least 2 time steps, got flow of shape {tuple(flow.shape)}")
    flow = upsample_flow(flow[:, :, :-1].transpose(1, 2).reshape(-1, 2, h, w), frames_size)
    dx = charbonnier(flow[..., :, 1:] - flow[..., :, :-1], alpha, eps)
    dy = charbonnier(flow[..., 1:, :] - flow[..., :-1, :], alpha, eps)
    # Sum over the two components (u, v) and the two directions, mean over pixels and pairs.
    return dx.mean(dim=(2, 3)).sum(1).mean() + dy.mean(dim=(2, 3)).sum(1).mean()
