"""Which frames make a clip: dense sampling, segment-based (TSN) sampling, multi-clip testing.

All functions return frame indices as int64 numpy arrays of shape ``(n_clips, num_frames)``,
valid for a video of ``total_frames`` frames. Random choices use torch's global generator
(or the one passed), which the DataLoader seeds differently in every worker.

Dense sampling takes ``num_frames`` frames ``frame_stride`` apart; its window spans
``(num_frames - 1) * frame_stride + 1`` frames and starts at random when training, in the
centre when testing (or, for ``n_clips > 1``, at ``n_clips`` evenly spaced positions).
A video shorter than the window is padded: ``pad_mode='loop'`` wraps the indices around,
``'repeat_last'`` repeats the last frame.

Segment-based sampling (TSN) cuts the video into ``num_frames`` equal segments and takes one
frame from each: a random one when training, the middle one when testing.
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["PAD_MODES", "ClipSampler", "clip_span", "dense_indices", "segment_indices", "pad_indices"]

PAD_MODES = ("loop", "repeat_last")


def clip_span(num_frames: int, frame_stride: int) -> int:
    """Frames covered by a dense clip of ``num_frames`` frames, ``frame_stride`` apart."""
    return (num_frames - 1) * frame_stride + 1


def pad_indices(indices: np.ndarray, total_frames: int, pad_mode: str = "loop") -> np.ndarray:
    """Map indices that run past the end of a ``total_frames``-frame video back into it.

    Args:
        indices: int64 array of non-negative frame indices, any shape.
        total_frames: frames in the video (at least 1).
        pad_mode: ``'loop'`` (index ``i`` becomes ``i % total_frames``) or ``'repeat_last'``
            (indices past the end become ``total_frames - 1``).
    """
    if pad_mode == "loop":
        return indices % total_frames
    if pad_mode == "repeat_last":
        return np.minimum(indices, total_frames - 1)
    raise ValueError(f"unknown pad_mode {pad_mode!r}; choose one of {PAD_MODES}")


def _randint(high: int, generator: torch.Generator | None) -> int:
    """A uniform integer in ``[0, high]`` (inclusive)."""
    return int(torch.randint(high + 1, (1,), generator=generator))


def dense_indices(
    total_frames: int,
    num_frames: int,
    frame_stride: int,
    train: bool,
    n_clips: int = 1,
    temporal_jitter: bool = False,
    pad_mode: str = "loop",
    generator: torch.Generator | None = None,
) -> np.ndarray:
    """Dense clips: ``num_frames`` frames ``frame_stride`` apart.

    Args:
        total_frames: frames in the video (at least 1).
        num_frames: frames per clip (T).
        frame_stride: gap between sampled frames, in frames.
        train: random start (True) or centred / evenly spaced starts (False).
        n_clips: clips to take; when testing their starts are spread evenly over the video,
            when training each start is drawn independently.
        temporal_jitter: when training, move each frame forward by a random offset in
            ``[0, frame_stride)`` (the frames stay in order); no effect when testing.
        pad_mode: how a video shorter than the clip is padded (see :func:`pad_indices`).
        generator: torch generator for the random choices (default: torch's global one).

    Returns:
        int64 ``(n_clips, num_frames)`` frame indices in ``[0, total_frames)``.
    """
    if total_frames < 1:
        raise ValueError(f"a video needs at least one frame; got total_frames={total_frames}")
    jitter = train and temporal_jitter and frame_stride > 1
    window = clip_span(num_frames, frame_stride) + (frame_stride - 1 if jitter else 0)
    slack = max(total_frames - window, 0)
    if train:
        starts = np.array([_randint(slack, generator) for _ in range(n_clips)], dtype=np.int64)
    elif n_clips == 1:
        starts = np.array([slack // 2], dtype=np.int64)
    else:
        starts = np.round(np.linspace(0, slack, n_clips)).astype(np.int64)
    offsets = np.arange(num_frames, dtype=np.int64) * frame_stride
    indices = starts[:, None] + offsets[None, :]
    if jitter:
        indices = indices + torch.randint(frame_stride, (n_clips, num_frames), generator=generator).numpy()
    return pad_indices(indices, total_frames, pad_mode)


def segment_indices(
    total_frames: int,
    num_segments: int,
    train: bool,
    n_clips: int = 1,
    generator: torch.Generator | None = None,
) -> np.ndarray:
    """TSN sampling: one frame from each of ``num_segments`` equal segments.

    Args:
        total_frames: frames in the video (at least 1). With fewer frames than segments,
            neighbouring segments share frames.
        num_segments: segments, i.e. frames per clip (T).
        train: a random frame per segment (True) or each segment's middle frame (False).
        n_clips: clips to take; when testing, clip ``k`` takes the frame at fraction
            ``(k + 0.5) / n_clips`` of each segment instead of the middle.
        generator: torch generator for the random choices (default: torch's global one).

    Returns:
        int64 ``(n_clips, num_segments)`` frame indices in ``[0, total_frames)``, non-decreasing.
    """
    if total_frames < 1:
        raise ValueError(f"a video needs at least one frame; got total_frames={total_frames}")
    length = total_frames / num_segments
    seg_start = np.arange(num_segments) * length
    if train:
        fraction = torch.rand((n_clips, num_segments), generator=generator, dtype=torch.float64).numpy()
    else:
        fraction = np.repeat(((np.arange(n_clips) + 0.5) / n_clips)[:, None], num_segments, axis=1)
    indices = np.floor(seg_start[None, :] + fraction * length).astype(np.int64)
    return np.clip(indices, 0, total_frames - 1)


class ClipSampler:
    """Frame indices of the clips to take from a video, with the sampling settings bound.

    Args:
        num_frames: frames per clip (T).
        frame_stride: gap between frames of a dense clip (ignored by ``'segment'``).
        mode: ``'dense'`` or ``'segment'`` (TSN).
        train: random (True) or deterministic (False) positions.
        n_clips: clips per video (e.g. 10 for 10-clip testing).
        temporal_jitter: per-frame random offsets of dense clips when training.
        pad_mode: ``'loop'`` or ``'repeat_last'`` for videos shorter than a dense clip.

    Calling it with a video's frame count returns int64 ``(n_clips, num_frames)`` indices.
    """

    def __init__(
        self,
        num_frames: int = 16,
        frame_stride: int = 2,
        mode: str = "dense",
        train: bool = True,
        n_clips: int = 1,
        temporal_jitter: bool = False,
        pad_mode: str = "loop",
    ):
        if mode not in ("dense", "segment"):
            raise ValueError(f"unknown sampling mode {mode!r}; choose 'dense' or 'segment'")
        if pad_mode not in PAD_MODES:
            raise ValueError(f"unknown pad_mode {pad_mode!r}; choose one of {PAD_MODES}")
        if num_frames < 1 or frame_stride < 1 or n_clips < 1:
            raise ValueError(
                f"num_frames, frame_stride and n_clips must be >= 1; got {num_frames}, {frame_stride}, {n_clips}"
            )
        self.num_frames = num_frames
        self.frame_stride = frame_stride
        self.mode = mode
        self.train = train
        self.n_clips = n_clips
        self.temporal_jitter = temporal_jitter
        self.pad_mode = pad_mode

    def __call__(self, total_frames: int, generator: torch.Generator | None = None) -> np.ndarray:
        if self.mode == "segment":
            return segment_indices(total_frames, self.num_frames, self.train, self.n_clips, generator)
        return dense_indices(
            total_frames,
            self.num_frames,
            self.frame_stride,
            self.train,
            self.n_clips,
            self.temporal_jitter,
            self.pad_mode,
            generator,
        )

    def __repr__(self) -> str:
        return (
            f"ClipSampler(num_frames={self.num_frames}, frame_stride={self.frame_stride}, mode={self.mode!r}, "
            f"train={self.train}, n_clips={self.n_clips}, temporal_jitter={self.temporal_jitter}, "
            f"pad_mode={self.pad_mode!r})"
        )
