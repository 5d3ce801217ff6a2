"""Video readers: decord (default), PyAV, and JPEG/PNG frame folders, behind one interface.

Every reader maps frame index ``i`` to the ``i``-th frame in presentation order, as the
container indexes its packets, so that decord and PyAV return the same frames for the same
indices. Both decode only the frames a clip needs: they seek to the key frame before the
first requested frame and decode forward to the last one.

>>> reader = open_video('clip.mp4')            # decord, or PyAV where decord is not installed
>>> reader.num_frames, reader.fps, reader.duration
(300, 30.0, 10.0)
>>> reader.get_frames([0, 2, 4]).shape          # uint8 (T, H, W, C)
torch.Size([3, 240, 320, 3])
"""
from __future__ import annotations

import abc
import logging
import os
import re
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

__all__ = [
    "VideoReadError",
    "VideoReader",
    "DecordReader",
    "PyAVReader",
    "FrameFolderReader",
    "open_video",
    "read_with_fallback",
    "list_readers",
    "write_video",
    "IMAGE_EXTENSIONS",
]

_logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


class VideoReadError(RuntimeError):
    """A video (or frame folder) cannot be opened or decoded.

    Args:
        reason: what went wrong, e.g. ``'frame 29 could not be decoded'``.
        path: the file; when given, ``str(error)`` starts with it.
    """

    def __init__(self, reason: str, path: str | os.PathLike | None = None):
        self.reason = reason
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {reason}" if self.path else reason)


class VideoReader(abc.ABC):
    """The reader interface: metadata from the container and random access to frames.

    Attributes:
        path: the file or frame folder.
        num_frames: frames the container indexes (counted from its packets, not from the
            header's frame count, which may be missing or wrong).
        fps: average frame rate in frames per second (``None`` for a frame folder without one).
        duration: ``num_frames / fps`` in seconds (``None`` without an fps).
    """

    path: str
    num_frames: int
    fps: float | None

    @property
    def duration(self) -> float | None:
        return None if not self.fps else self.num_frames / self.fps

    def get_frames(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> torch.Tensor:
        """Frames at ``indices`` (any order, repeats allowed) as a uint8 ``(T, H, W, 3)`` RGB tensor.

        Raises:
            IndexError: an index outside ``[0, num_frames)``.
            VideoReadError: a requested frame cannot be decoded (e.g. a truncated file).
        """
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size == 0:
            raise IndexError("no frame indices given")
        if idx.min() < 0 or idx.max() >= self.num_frames:
            raise IndexError(f"frame indices must lie in [0, {self.num_frames}) for {self.path}; got {idx.tolist()}")
        unique, inverse = np.unique(idx, return_inverse=True)
        frames = self._read_sorted(unique)
        return frames[torch.from_numpy(inverse.reshape(-1))]

    @abc.abstractmethod
    def _read_sorted(self, indices: np.ndarray) -> torch.Tensor:
        """Frames at sorted, unique, in-range ``indices``: uint8 ``(len(indices), H, W, 3)``."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the file; the reader cannot be used afterwards."""

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r}, num_frames={self.num_frames}, fps={self.fps})"


def _import_decord():
    import decord

    decord.logging.set_level(decord.logging.QUIET)  # errors reach us as exceptions instead
    return decord


class DecordReader(VideoReader):
    """A video file read with decord (the ``decord2`` distribution).

    Args:
        path: a video file in any container FFmpeg opens.
        num_threads: decoding threads (1 suits DataLoader workers; 0 lets FFmpeg choose).
    """

    def __init__(self, path: str | os.PathLike, num_threads: int = 1):
        decord = _import_decord()
        self.path = str(path)
        self._error = decord.DECORDError
        try:
            self._vr = decord.VideoReader(self.path, ctx=decord.cpu(0), num_threads=num_threads)
        except (RuntimeError, AssertionError, decord.DECORDError) as e:  # decord asserts a positive frame count
            raise VideoReadError(f"decord cannot open it ({_first_line(e)})", path) from None
        self.num_frames = len(self._vr)
        fps = self._vr.get_avg_fps()
        self.fps = float(fps) if fps and np.isfinite(fps) and fps > 0 else None

    def _read_sorted(self, indices: np.ndarray) -> torch.Tensor:
        try:
            frames = self._vr.get_batch(indices.tolist()).asnumpy()
        except self._error as e:
            reason = f"decord cannot decode frames {indices.tolist()} ({_first_line(e)})"
            raise VideoReadError(reason, self.path) from None
        return torch.from_numpy(frames)

    def close(self) -> None:
        self._vr = None


class PyAVReader(VideoReader):
    """A video file read with PyAV.

    Opening demuxes the whole file once (no decoding) to list the presentation timestamps
    of its frames; index ``i`` is the ``i``-th of them in time order, as in decord. A read
    seeks to the key frame before the first requested frame and decodes forward, stopping
    after the last requested one.

    Args:
        path: a video file in any container FFmpeg opens.
        num_threads: decoding threads (1 suits DataLoader workers; 0 lets FFmpeg choose).
    """

    def __init__(self, path: str | os.PathLike, num_threads: int = 1):
        import av

        self.path = str(path)
        self._av_error = av.error.FFmpegError
        try:
            self._container = av.open(self.path)
        except (self._av_error, OSError) as e:
            raise VideoReadError(f"PyAV cannot open it ({_first_line(e)})", path) from None
        if not self._container.streams.video:
            self.close()
            raise VideoReadError("no video stream", path)
        self._stream = self._container.streams.video[0]
        self._stream.codec_context.thread_count = num_threads
        self._stream.thread_type = "AUTO"
        pts = []
        try:
            for packet in self._container.demux(self._stream):
                if packet.size == 0:  # the flush packet at the end
                    continue
                pts.append(packet.pts if packet.pts is not None else packet.dts)
        except self._av_error:
            pass  # a damaged tail: keep the packets read so far, as decord does
        if not pts:
            self.close()
            raise VideoReadError("no video frames", path)
        # Without timestamps, frames are identified by counting from the start.
        self._pts = None if any(p is None for p in pts) else np.sort(np.asarray(pts, dtype=np.int64))
        self.num_frames = len(pts)
        rate: Fraction | None = self._stream.average_rate or self._stream.guessed_rate
        self.fps = float(rate) if rate else None

    def _read_sorted(self, indices: np.ndarray) -> torch.Tensor:
        try:
            if self._pts is None:
                frames = self._decode_counting(indices)
            else:
                frames = self._decode_by_pts(indices)
        except self._av_error as e:
            reason = f"PyAV cannot decode frames {indices.tolist()} ({_first_line(e)})"
            raise VideoReadError(reason, self.path) from None
        missing = [int(i) for i, f in zip(indices, frames) if f is None]
        if missing:
            raise VideoReadError(f"frames {missing} could not be decoded (truncated or corrupt file)", self.path)
        return torch.from_numpy(np.stack(frames))

    def _decode_by_pts(self, indices: np.ndarray) -> list[np.ndarray | None]:
        wanted = {int(self._pts[i]): k for k, i in enumerate(indices)}
        first, last = int(self._pts[indices[0]]), int(self._pts[indices[-1]])
        frames = self._decode_from(first, first, last, wanted, len(indices))
        if frames is None:  # the seek landed after the first wanted frame: decode from the start
            frames = self._decode_from(None, first, last, wanted, len(indices))
        return frames or [None] * len(indices)

    def _decode_from(
        self, seek_pts: int | None, first: int, last: int, wanted: dict[int, int], n: int
    ) -> list[np.ndarray | None] | None:
        """Decode from the key frame at or before ``seek_pts`` (or the start) up to pts ``last``.

        Returns None when the first decoded frame comes after pts ``first`` (a seek that
        overshot), else the wanted frames in order (None where one never appeared).
        """
        if seek_pts is None:
            self._container.seek(0, backward=True, any_frame=False)  # container time base
        else:
            self._container.seek(seek_pts, stream=self._stream, backward=True, any_frame=False)
        frames: list[np.ndarray | None] = [None] * n
        started = False
        for frame in self._container.decode(self._stream):
            pts = frame.pts
            if pts is None:
                continue
            if not started:
                if pts > first:
                    return None
                started = True
            k = wanted.get(pts)
            if k is not None:
                frames[k] = frame.to_ndarray(format="rgb24")
            if pts >= last:
                break
        return frames

    def _decode_counting(self, indices: np.ndarray) -> list[np.ndarray | None]:
        wanted = {int(i): k for k, i in enumerate(indices)}
        last = int(indices[-1])
        frames: list[np.ndarray | None] = [None] * len(indices)
        self._container.seek(0, backward=True, any_frame=False)
        for count, frame in enumerate(self._container.decode(self._stream)):
            k = wanted.get(count)
            if k is not None:
                frames[k] = frame.to_ndarray(format="rgb24")
            if count >= last:
                break
        return frames

    def close(self) -> None:
        container = getattr(self, "_container", None)
        if container is not None:
            container.close()
            self._container = None


class FrameFolderReader(VideoReader):
    """A folder of frames (``00001.jpg``, ``00002.jpg``, ...; JPEG or PNG), sorted by name.

    Args:
        path: the folder.
        fps: its frame rate, when known (Something-Something V1 is 12 fps); None otherwise.
    """

    def __init__(self, path: str | os.PathLike, fps: float | None = None):
        self.path = str(path)
        try:
            names = sorted(n for n in os.listdir(self.path) if n.lower().endswith(IMAGE_EXTENSIONS))
        except OSError as e:
            raise VideoReadError(f"cannot list the frame folder ({e.strerror})", path) from None
        if not names:
            raise VideoReadError(f"no frames ({', '.join(IMAGE_EXTENSIONS)}) in the folder", path)
        self._files = [os.path.join(self.path, n) for n in names]
        self.num_frames = len(names)
        self.fps = fps

    def _read_sorted(self, indices: np.ndarray) -> torch.Tensor:
        from PIL import Image

        frames = []
        for i in indices:
            try:
                with Image.open(self._files[i]) as image:
                    frames.append(np.asarray(image.convert("RGB")))
            except OSError as e:
                raise VideoReadError(f"cannot decode frame {self._files[i]} ({_first_line(e)})", self.path) from None
        if len({f.shape for f in frames}) > 1:
            raise VideoReadError("frames of different sizes", self.path)
        return torch.from_numpy(np.stack(frames))

    def close(self) -> None:
        """Nothing to release: every read opens its frame files."""


_READERS = {"decord": DecordReader, "pyav": PyAVReader}
_warned_no_decord = False
_warned_fallback = False
_T = TypeVar("_T")


def list_readers() -> list[str]:
    """Names accepted by :func:`open_video` (frame folders are read whatever the name)."""
    return list(_READERS)


def decord_available() -> bool:
    """Whether decord imports on this machine."""
    try:
        _import_decord()
    except ImportError:
        return False
    return True


def open_video(path: str | os.PathLike, reader: str = "decord", num_threads: int = 1, fps: float | None = None
               ) -> VideoReader:
    """Open a video file, or a folder of frames, for reading.

    Args:
        path: a video file, or a folder of JPEG/PNG frames.
        reader: ``'decord'`` (falls back to PyAV, with one warning, where decord does not
            import) or ``'pyav'``. Frame folders ignore it.
        num_threads: decoding threads per reader.
        fps: frame rate of a frame folder (video files give their own).

    Raises:
        VideoReadError: the file is missing, empty, not a video or unreadable.
    """
    global _warned_no_decord
    if reader not in _READERS:
        raise ValueError(f"unknown reader {reader!r}; choose one of {list_readers()}")
    if os.path.isdir(path):
        return FrameFolderReader(path, fps=fps)
    if not os.path.isfile(path):
        raise VideoReadError("no such file", path)
    if os.path.getsize(path) == 0:
        raise VideoReadError("empty file", path)
    if reader == "decord" and not decord_available():
        if not _warned_no_decord:
            _logger.warning("decord is not installed (pip install decord2); reading videos with PyAV instead")
            _warned_no_decord = True
        reader = "pyav"
    return _READERS[reader](path, num_threads=num_threads)


def read_with_fallback(
    path: str | os.PathLike,
    read: Callable[[VideoReader], _T],
    reader: str = "decord",
    num_threads: int = 1,
    fps: float | None = None,
) -> _T:
    """Open ``path`` and return ``read(video)``; where decord fails, PyAV tries again.

    decord has bugs PyAV has not (e.g. it cannot copy out frames 32, 48 or 96 pixels wide),
    so a file decord cannot open or decode is read again with PyAV before it counts as
    unreadable. The first fallback is logged as a warning, later ones at debug level.

    Args:
        path: a video file or a frame folder.
        read: what to do with the open reader, e.g. ``lambda v: v.get_frames([0, 1])``.
        reader, num_threads, fps: as for :func:`open_video`.

    Raises:
        VideoReadError: every reader failed; the reason names each failure.
    """
    global _warned_fallback
    try:
        with open_video(path, reader, num_threads, fps) as video:
            return read(video)
    except VideoReadError as e:
        if reader != "decord" or os.path.isdir(path) or e.reason in ("no such file", "empty file"):
            raise
        first = e
    try:
        with open_video(path, "pyav", num_threads, fps) as video:
            result = read(video)
    except VideoReadError as e:
        raise VideoReadError(f"{first.reason}; {e.reason}", path) from None
    log = _logger.debug if _warned_fallback else _logger.warning
    log("%s: %s; read with PyAV instead", path, first.reason)
    _warned_fallback = True
    return result


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


def _first_line(e: BaseException) -> str:
    """A short message for ``e``: decord's source locations and timestamps removed, one line."""
    text = re.sub(r"\[\d\d:\d\d:\d\d\] \S+:\d+: ", "", str(e)).strip() or type(e).__name__
    return " ".join(text.split())[:300]
