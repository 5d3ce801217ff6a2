"""Writing videos: uint8 RGB frames to a file with PyAV (the tests', the benchmarks' and Moving-Digits' videos)."""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

__all__ = ["write_video"]


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray | torch.Tensor,
    fps: float = 25.0,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
) -> Path:
    """Encode uint8 RGB frames ``(T, H, W, 3)`` to a video file with PyAV.

    Args:
        path: output file (its folder is created); its extension picks the container (``.mp4``,
            ``.mkv``, ``.webm``, ``.avi``).
        frames: uint8 ``(T, H, W, 3)``; H and W must be even for ``yuv420p``.
        fps: frame rate (frames per second).
        codec: an FFmpeg encoder, e.g. ``'libx264'``, ``'mpeg4'``, ``'libvpx-vp9'``, ``'mjpeg'``.
        pix_fmt: the encoded pixel format (``'yuvj420p'`` for mjpeg).
        options: encoder options, e.g. ``{'crf': '10', 'g': '16'}``.
        container_options: muxer options, e.g. ``{'movflags': 'faststart'}``.

    Returns:
        The path written.
    """
    import av

    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (T, H, W, 3); got {frames.dtype} {tuple(frames.shape)}")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        stream.options = options or {}
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    return Path(path)
