"""The torchcodec reader (PyTorch's video decoder), an optional extra: ``pip install 'motion-zoo[torchcodec]'``.

torchcodec loads FFmpeg's shared libraries from the system (``apt-get install ffmpeg``);
:func:`torchcodec_problem` says why it cannot decode on this machine, if it cannot, and
:func:`zoo.data.readers.reader_status` reports it. Used through :func:`zoo.data.readers.open_video`.
"""
from __future__ import annotations

import functools
import math
import os
import re

import numpy as np
import torch

from .readers import VideoReader, VideoReadError, first_line, probe_size, resized_size, shrink_ratio

__all__ = ["TorchCodecReader", "torchcodec_problem"]

_TORCHCODEC_INSTALL = "pip install 'motion-zoo[torchcodec]'"


def _torchcodec_ffmpeg_majors() -> list[int]:
    """The FFmpeg major versions the installed torchcodec has a build for (its ``libtorchcodec_coreN`` files)."""
    import importlib.util

    spec = importlib.util.find_spec("torchcodec")
    if spec is None or not spec.submodule_search_locations:
        return []
    names = os.listdir(next(iter(spec.submodule_search_locations)))
    return sorted({int(m.group(1)) for n in names if (m := re.match(r"libtorchcodec_core(\d+)\.", n))})


@functools.cache
def torchcodec_problem() -> str | None:
    """None where torchcodec decodes on this machine, else why not (not installed; FFmpeg's libraries missing)."""
    try:
        import torchcodec  # noqa: F401
    except ImportError:
        return f"torchcodec is not installed ({_TORCHCODEC_INSTALL})"
    try:
        from torchcodec.decoders import VideoDecoder  # noqa: F401  (loads FFmpeg's shared libraries)
    except Exception as e:  # torchcodec raises RuntimeError (or OSError) when no FFmpeg it supports is found
        majors = _torchcodec_ffmpeg_majors()
        versions = f"FFmpeg {', '.join(map(str, majors))}" if majors else "FFmpeg"
        return (f"torchcodec cannot load FFmpeg's shared libraries (it supports {versions}; install them from the "
                f"system, e.g. apt-get install ffmpeg; or this torchcodec was built for another torch): "
                f"{first_line(e).split(' FFmpeg version')[0][:160]}")
    return None


class TorchCodecReader(VideoReader):
    """A video file read with torchcodec (PyTorch's video decoder; ``pip install 'motion-zoo[torchcodec]'``).

    torchcodec links against the system's FFmpeg shared libraries (``apt-get install ffmpeg``); without
    them, or without torchcodec, opening raises :class:`VideoReadError` with the reason
    (:func:`reader_status`). Frames are indexed as decord and PyAV index them: torchcodec's exact seek
    mode scans the file once on opening and sorts the frames by presentation time.

    Args:
        path: a video file in any container FFmpeg opens.
        num_threads: decoding threads (1 suits DataLoader workers; 0 lets FFmpeg choose).
        short_side: resize frames while decoding so that their short side is this (see :func:`resized_size`),
            with torchcodec's ``Resize`` decoder transform (bilinear, antialiased).
        shrink: ``'always'``, or ``'when_faster'``: never (:attr:`shrink_from` is None: its ``Resize`` was
            measured slower than the transform's resize after decoding at 480p, 720p and 1080p).
    """

    shrink_from = None

    def __init__(self, path: str | os.PathLike, num_threads: int = 1, short_side: int | None = None,
                 shrink: str = "always"):
        min_ratio = shrink_ratio(self, shrink)
        self.path = str(path)
        self.short_side = short_side
        problem = torchcodec_problem()
        if problem is not None:
            raise VideoReadError(problem, path)
        from torchcodec.decoders import VideoDecoder
        from torchcodec.transforms import Resize

        transforms = None
        if short_side is not None and min_ratio < math.inf:
            height, width = probe_size(self.path)
            size = resized_size(height, width, short_side, min_ratio)
            if size != (height, width):
                transforms = [Resize(size)]
        try:
            self._decoder = VideoDecoder(self.path, dimension_order="NHWC", num_ffmpeg_threads=num_threads,
                                         seek_mode="exact", transforms=transforms)
            self.num_frames = len(self._decoder)
        except (RuntimeError, ValueError, OSError) as e:
            raise VideoReadError(f"torchcodec cannot open it ({first_line(e)})", path) from None
        if self.num_frames < 1:
            self.close()
            raise VideoReadError("no video frames", path)
        metadata = self._decoder.metadata  # the header's rate first, as decord and PyAV give it
        fps = metadata.average_fps_from_header or metadata.average_fps
        self.fps = float(fps) if fps and np.isfinite(fps) and fps > 0 else None

    def _read_sorted(self, indices: np.ndarray) -> torch.Tensor:
        try:
            frames = self._decoder.get_frames_at(indices.tolist()).data
        except (RuntimeError, ValueError, IndexError) as e:
            reason = f"torchcodec cannot decode frames {indices.tolist()} ({first_line(e)})"
            raise VideoReadError(reason, self.path) from None
        if frames.shape[0] != len(indices) or frames.shape[-1] != 3:
            raise VideoReadError(f"torchcodec returned frames of shape {tuple(frames.shape)} for {len(indices)} "
                                 "indices", self.path)
        return frames.contiguous()

    def close(self) -> None:
        self._decoder = None
