"""What MSCL and MCL read from optical flow: quantisation, motion maps and motion scores.

Flow tensors are ``(..., 2, H, W)`` in pixels, channel 0 horizontal (``u``), channel 1 vertical (``v``).

- Quantisation (the official MCL code's ``process_video.py``, the TSN/denseflow convention): a
  component is clipped to ``[-bound, bound]`` (bound 20 pixels) and mapped linearly onto
  ``0..255``, ``q = round((f + bound) * 255 / (2 bound))``; :func:`dequantize_flow` inverts it to
  within half a step (``bound / 255`` pixels).
- MCL's motion map (``sts/motion_sts.py``): motion boundaries of ``u`` and ``v`` with 3x3 Prewitt
  kernels, summed over the frames of a temporal chunk, their magnitude (``cv2.cartToPolar``), the
  ``u`` and ``v`` magnitudes added, a border zeroed (8 pixels at 224) and the map block-averaged to a
  grid (7x7 at 224). :func:`motion_grid` (one map per frame, averaged: where a clip moves, for the
  tubelet crop) and :func:`motion_target` (one map per chunk: MAL's target) build on it.
- MSCL's motion differential score (``tools/ssl/generate_mcl_samples.py``, ``rgb_map`` weights with
  ``max`` attention): each flow frame is colour coded with the Middlebury wheel, weighted by an
  attention map (the Sobel motion-boundary magnitude average-pooled in 28x28 blocks, upsampled,
  divided by its maximum); a frame's score is the spatial mean of the L2 distance between its
  weighted colour image and the next frame's (the last frame scores 0). A clip's score is the mean
  of the scores of its frames (8 flow frames, 4 apart); MDS keeps the clips scoring above the
  video's median.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.utils import flow_to_image

__all__ = [
    "FLOW_BOUND",
    "quantize_flow",
    "dequantize_flow",
    "rotate_flow",
    "motion_map",
    "motion_maps",
    "motion_grid",
    "motion_target",
    "sobel_motion_map",
    "mds_frame_scores",
    "mds_clip_scores",
    "mds_keep",
]

FLOW_BOUND = 20.0
_PREWITT_X = torch.tensor([[-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]])
_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
BORDER_AT_224 = 8  # pixels zeroed around MCL's motion maps at a 224-pixel input


def quantize_flow(flow: torch.Tensor, bound: float = FLOW_BOUND) -> torch.Tensor:
    """Clip each component to ``[-bound, bound]`` pixels and map it linearly onto uint8 ``0..255``."""
    q = (flow.float().clamp(-bound, bound) + bound) * (255.0 / (2 * bound))
    return q.round_().to(torch.uint8)


def dequantize_flow(q: torch.Tensor | np.ndarray, bound: float = FLOW_BOUND) -> torch.Tensor:
    """Invert :func:`quantize_flow`: uint8 -> float32 pixels in ``[-bound, bound]``."""
    q = torch.as_tensor(q)
    return q.float() * (2 * bound / 255.0) - bound


def rotate_flow(flow: torch.Tensor, angle: torch.Tensor | float) -> torch.Tensor:
    """Rotate every flow vector by ``angle`` radians (counter-clockwise in ``(u, v)``), keeping its length.

    ``u' = cos(b) u - sin(b) v``, ``v' = sin(b) u + cos(b) v`` (the official MSCL code's FRA).

    Args:
        flow: ``(B, 2, ...)``.
        angle: a float, or ``(B,)`` one angle per sample.
    """
    angle = torch.as_tensor(angle, dtype=flow.dtype, device=flow.device)
    if angle.ndim == 1:
        angle = angle.view(-1, *([1] * (flow.ndim - 2)))
    cos, sin = torch.cos(angle), torch.sin(angle)
    u, v = flow[:, 0], flow[:, 1]
    return torch.stack([cos * u - sin * v, sin * u + cos * v], dim=1)


def _gradients(x: torch.Tensor, kernel_x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x and y derivatives of ``(N, H, W)`` maps by a 3x3 kernel (and its transpose), edges replicated."""
    weight = torch.stack([kernel_x, kernel_x.t()]).unsqueeze(1).to(x)
    g = F.conv2d(F.pad(x.unsqueeze(1), (1, 1, 1, 1), mode="replicate"), weight)
    return g[:, 0], g[:, 1]


def _zero_border(maps: torch.Tensor, border: float) -> torch.Tensor:
    """Zero ``round(border * side / 224)`` rows and columns around ``(..., H, W)`` maps."""
    height, width = maps.shape[-2:]
    rows, cols = round(border * height / 224), round(border * width / 224)
    out = maps.clone()
    if rows:
        out[..., :rows, :] = 0
        out[..., -rows:, :] = 0
    if cols:
        out[..., :, :cols] = 0
        out[..., :, -cols:] = 0
    return out


def _boundaries(flow: torch.Tensor) -> torch.Tensor:
    """``|grad u| + |grad v|`` (Prewitt) of flow maps ``(..., 2, H, W)`` -> ``(..., H, W)``."""
    height, width = flow.shape[-2:]
    gx, gy = _gradients(flow.float().reshape(-1, height, width), _PREWITT_X)
    return torch.sqrt(gx * gx + gy * gy).view(*flow.shape[:-3], 2, height, width).sum(-3)


def motion_map(flow: torch.Tensor, border: float = BORDER_AT_224) -> torch.Tensor:
    """MCL's motion map of a chunk of flow frames ``(T, 2, H, W)`` -> ``(H, W)``.

    For each of ``u`` and ``v``: its Prewitt x and y derivatives, each summed over the T frames (the
    derivatives of the summed flow), and the magnitude of that gradient; the two magnitudes are
    added. ``border`` pixels (at a 224-pixel side, scaled with the map) are zeroed around the map.
    """
    return _zero_border(_boundaries(flow.float().sum(0)), border)


def motion_maps(flow: torch.Tensor, border: float = BORDER_AT_224) -> torch.Tensor:
    """:func:`motion_map` of every flow frame of ``(N, 2, H, W)`` on its own -> ``(N, H, W)``."""
    return _zero_border(_boundaries(flow), border)


def motion_grid(flow: torch.Tensor, grid: tuple[int, int] = (7, 7), border: float = BORDER_AT_224) -> torch.Tensor:
    """Where a clip moves: the mean over its frames ``(T, 2, H, W)`` of each frame's :func:`motion_map`,
    block-averaged to ``grid`` (rows, columns) -> ``(rows, cols)``."""
    return F.adaptive_avg_pool2d(motion_maps(flow, border).mean(0)[None, None], grid)[0, 0]


def motion_target(flow: torch.Tensor, slots: int = 4, grid: tuple[int, int] = (7, 7),
                  border: float = BORDER_AT_224) -> torch.Tensor:
    """MAL's target: the flow of a clip ``(B, 2, T, H, W)`` cut into ``slots`` chunks of ``T // slots``
    frames (trailing frames left out), one :func:`motion_map` per chunk, block-averaged to ``grid``
    -> ``(B, slots, rows, cols)``."""
    b, _, t, height, width = flow.shape
    per = t // slots
    if per < 1:
        raise ValueError(f"MAL's target needs at least {slots} frames (one per temporal slot), got {t}")
    chunks = flow[:, :, :slots * per].float().reshape(b, 2, slots, per, height, width).sum(3).transpose(1, 2)
    return F.adaptive_avg_pool2d(_zero_border(_boundaries(chunks), border), grid)


def sobel_motion_map(flow: torch.Tensor) -> torch.Tensor:
    """MSCL's motion map of flow frames ``(N, 2, H, W)`` -> ``(N, H, W)``: the root of the summed squares
    of the Sobel x and y derivatives of ``u`` and ``v``."""
    gx, gy = _gradients(flow.float().flatten(0, 1), _SOBEL_X)
    return torch.sqrt((gx * gx + gy * gy).view(-1, 2, *gx.shape[-2:]).sum(1))


def mds_frame_scores(flow: torch.Tensor, attention_block: int = 28) -> torch.Tensor:
    """MSCL's motion-differential score of each flow frame ``(N, 2, H, W)`` -> ``(N,)`` (module docstring).

    Args:
        flow: consecutive flow frames of one video.
        attention_block: side of the attention map's pooling blocks, in pixels (the official 28;
            capped at the map's size).
    """
    n, _, height, width = flow.shape
    flow = flow.float()
    colours = torch.stack([flow_to_image(f) for f in flow]).float()  # (N, 3, H, W), each frame's own max
    block = max(1, min(attention_block, height, width))
    attention = F.avg_pool2d(sobel_motion_map(flow)[:, None], block, block)
    attention = F.interpolate(attention, size=(height, width), mode="bilinear", align_corners=False)
    peak = attention.flatten(1).amax(1).view(n, 1, 1, 1)
    attention = torch.where(peak > 0, attention / peak.clamp_min(1e-12), torch.zeros_like(attention))
    weighted = attention * colours
    following = torch.cat([weighted[1:], weighted[-1:]])
    return torch.linalg.vector_norm(weighted - following, dim=1).mean((1, 2))


def mds_clip_scores(frame_scores: torch.Tensor | np.ndarray, clip_len: int = 8, stride: int = 4) -> np.ndarray:
    """The score of the clip starting at each flow frame i: ``sum_{j < clip_len, i + j stride < N} s[i + j stride]
    / clip_len`` (frames past the end count as 0, as in the official code)."""
    s = np.asarray(frame_scores, dtype=np.float64)
    out = np.zeros_like(s)
    for j in range(clip_len):
        out[: max(0, len(s) - j * stride)] += s[j * stride:]
    return out / clip_len


def mds_keep(clip_scores: np.ndarray) -> np.ndarray:
    """Motion differential sampling: the start indices whose clip score is above the video's median."""
    clip_scores = np.asarray(clip_scores)
    if clip_scores.size == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(clip_scores > np.median(clip_scores)).astype(np.int64)
