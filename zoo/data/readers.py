"""Video readers: decord (default), PyAV, torchcodec, and JPEG/PNG frame folders, behind one interface.

Every reader maps frame index ``i`` to the ``i``-th frame in presentation order, as the
container indexes its packets, so that decord, PyAV and torchcodec return the same frames for
the same indices. All decode only the frames a clip needs: they seek to the key frame before the
first requested frame and decode forward to the last one.

Decode-time resizing: ``short_side=S`` makes a reader return frames whose short side is ``S``
(only ever smaller, never larger than the file's; the size torchvision's ``Resize(S)`` gives),
scaled while decoding (decord's ``width``/``height``, PyAV's ``reformat`` in the decode loop,
torchcodec's ``Resize`` decoder transform), so that a 1080p file costs its decode and no
full-size RGB conversion. ``shrink='when_faster'`` (what the datasets ask for) shrinks only
frames at least :attr:`VideoReader.shrink_from` times larger than ``short_side`` and leaves the
others at full size for the transform to resize: below that ratio the reader's decode-time
resize was measured slower than the training transform's resize of the crop
(``benchmarks/data.py``: with PyAV and decord, shrinking a 480p file to 320 costs more than it
saves, a 720p or 1080p file gains; torchcodec's ``Resize`` was slower at every size).

``reader='auto'`` picks the fastest reader available (:func:`auto_readers` states the rule);
a reader that fails on a file falls back to the next one (:func:`read_with_fallback`).
torchcodec is optional (``pip install 'motion-zoo[torchcodec]'``) and needs FFmpeg's shared
libraries from the system; :func:`reader_status` says why a reader is unavailable.

>>> reader = open_video('clip.mp4')            # decord, or PyAV where decord is not installed
>>> reader.num_frames, reader.fps, reader.duration
(300, 30.0, 10.0)
>>> reader.get_frames([0, 2, 4]).shape          # uint8 (T, H, W, C)
torch.Size([3, 240, 320, 3])
>>> open_video('clip_1080p.mp4', 'torchcodec', short_side=320).get_frames([0]).shape
torch.Size([1, 320, 568, 3])
"""
from __future__ import annotations

import abc
import logging
import math
import os
import re
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any, TypeVar

import numpy as np
import torch

from .stderr_capture import captured_stderr, with_decoder_messages

__all__ = [
    "VideoReadError",
    "VideoReader",
    "DecordReader",
    "PyAVReader",
    "TorchCodecReader",
    "FrameFolderReader",
    "open_video",
    "read_with_fallback",
    "list_readers",
    "reader_status",
    "auto_readers",
    "resized_size",
    "shrink_ratio",
    "SHRINK_POLICIES",
    "probe_size",
    "first_line",
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


SHRINK_POLICIES = ("always", "when_faster")


def resized_size(height: int, width: int, short_side: int | None, min_ratio: float = 1.0) -> tuple[int, int]:
    """The ``(height, width)`` of a ``height x width`` frame whose short side is brought down to ``short_side``.

    The rule of torchvision's ``Resize(short_side)`` (the long side ``int(short_side * long / short)``),
    but a frame already no larger than ``short_side`` keeps its size (decode-time resizing only shrinks),
    and so does one whose short side is under ``min_ratio * short_side`` (see :func:`shrink_ratio`).
    """
    if short_side is None or min(height, width) <= short_side or min(height, width) < min_ratio * short_side:
        return height, width
    if width <= height:
        return int(short_side * height / width), short_side
    return short_side, int(short_side * width / height)


def probe_size(path: str) -> tuple[int, int]:
    """``(height, width)`` of the first video stream, from the container's header (PyAV; nothing decoded)."""
    import av

    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise VideoReadError("no video stream", path)
            ctx = container.streams.video[0].codec_context
            height, width = ctx.height, ctx.width
    except (av.error.FFmpegError, OSError) as e:
        raise VideoReadError(f"cannot read the frame size from its header ({first_line(e)})", path) from None
    if not height or not width:
        raise VideoReadError("its header gives no frame size", path)
    return height, width


def shrink_ratio(reader: type[VideoReader] | VideoReader, shrink: str) -> float:
    """The ``min_ratio`` of :func:`resized_size` for a reader: 1 with ``shrink='always'`` (frames come with
    the short side asked for), the reader's :attr:`VideoReader.shrink_from` with ``'when_faster'`` (infinite
    where it is None: the reader never shrinks while decoding, the transform resizes)."""
    if shrink not in SHRINK_POLICIES:
        raise ValueError(f"shrink must be one of {SHRINK_POLICIES}; got {shrink!r}")
    if shrink == "always":
        return 1.0
    return math.inf if reader.shrink_from is None else float(reader.shrink_from)


class VideoReader(abc.ABC):
    """The reader interface: metadata from the container and random access to frames.

    Attributes:
        path: the file or frame folder.
        num_frames: frames the container indexes (counted from its packets, not from the
            header's frame count, which may be missing or wrong).
        fps: average frame rate in frames per second (``None`` for a frame folder without one).
        duration: ``num_frames / fps`` in seconds (``None`` without an fps).
        short_side: the short side frames are resized to while decoding (None: full size).
        shrink_from: with ``shrink='when_faster'``, the reader shrinks while decoding only frames whose short
            side is at least this many times ``short_side`` (None: never): where its decode-time resize was
            measured faster than the transform's resize after decoding (``benchmarks/data.py``).
    """

    path: str
    num_frames: int
    fps: float | None
    short_side: int | None = None
    shrink_from: float | None = 1.0

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
        if (np.diff(idx) > 0).all():  # increasing (a clip): the frames as read, without a gather copy
            return frames
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
        short_side: resize frames while decoding so that their short side is this (see :func:`resized_size`);
            the frame size comes from the header (PyAV).
        shrink: as for :func:`open_video`.
    """

    # benchmarks/results/data_check_cpu.json; data_cpu.json (paired per clip) found 720p (2.25x) slower shrunk: near
    # the crossover for decord, which the two runs place on either side of 720p.
    shrink_from = 2.0

    def __init__(self, path: str | os.PathLike, num_threads: int = 1, short_side: int | None = None,
                 shrink: str = "always"):
        min_ratio = shrink_ratio(self, shrink)
        decord = _import_decord()
        self.path = str(path)
        self.short_side = short_side
        self._error = decord.DECORDError
        size = {}
        if short_side is not None:
            height, width = probe_size(self.path)
            new_height, new_width = resized_size(height, width, short_side, min_ratio)
            if (new_height, new_width) != (height, width):
                size = {"width": new_width, "height": new_height}
        with captured_stderr() as messages:  # decord's C++ errors go to the bad-file log, not the terminal
            try:
                self._vr = decord.VideoReader(self.path, ctx=decord.cpu(0), num_threads=num_threads, **size)
                failure = None
            except (RuntimeError, AssertionError, decord.DECORDError) as e:  # decord asserts a positive frame count
                failure = f"decord cannot open it ({first_line(e)})"
        if failure is not None:
            raise VideoReadError(with_decoder_messages(failure, messages), path) from None
        self.num_frames = len(self._vr)
        fps = self._vr.get_avg_fps()
        self.fps = float(fps) if fps and np.isfinite(fps) and fps > 0 else None

    def _read_sorted(self, indices: np.ndarray) -> torch.Tensor:
        with captured_stderr() as messages:
            try:
                frames, failure = self._vr.get_batch(indices.tolist()).asnumpy(), None
            except self._error as e:
                frames, failure = None, f"decord cannot decode frames {indices.tolist()} ({first_line(e)})"
        if failure is not None:
            raise VideoReadError(with_decoder_messages(failure, messages), self.path) from None
        return torch.from_numpy(frames)

    def close(self) -> None:
        self._vr = None


class PyAVReader(VideoReader):
    """A video file read with PyAV.

    Opening demuxes the whole file once (no decoding) to list the presentation timestamps
    of its frames; index ``i`` is the ``i``-th of them in time order, as in decord. A read
    seeks to the key frame before the first requested frame and decodes forward, stopping
    after the last requested one. A frame is converted to RGB (and resized, with ``short_side``)
    only when it is one of the requested frames, in one swscale pass.

    Args:
        path: a video file in any container FFmpeg opens.
        num_threads: decoding threads (1 suits DataLoader workers; 0 lets FFmpeg choose).
        short_side: resize frames while decoding so that their short side is this (see :func:`resized_size`),
            bilinear (swscale's, which widens its filter when shrinking, as an antialiased resize does).
        shrink: as for :func:`open_video`.
    """

    shrink_from = 2.0  # benchmarks/results/data_check_cpu.json

    def __init__(self, path: str | os.PathLike, num_threads: int = 1, short_side: int | None = None,
                 shrink: str = "always"):
        import av

        min_ratio = shrink_ratio(self, shrink)
        self.path = str(path)
        self.short_side = short_side
        self._av_error = av.error.FFmpegError
        try:
            self._container = av.open(self.path)
        except (self._av_error, OSError) as e:
            raise VideoReadError(f"PyAV cannot open it ({first_line(e)})", path) from None
        if not self._container.streams.video:
            self.close()
            raise VideoReadError("no video stream", path)
        self._stream = self._container.streams.video[0]
        self._stream.codec_context.thread_count = num_threads
        self._stream.thread_type = "AUTO"
        from av.video.reformatter import VideoReformatter

        # One reformatter for all frames: its swscale context is made once, not once per frame.
        self._reformatter = VideoReformatter()
        self._rgb: dict[str, Any] = {"format": "rgb24"}
        ctx = self._stream.codec_context
        if short_side is not None and ctx.height and ctx.width:
            height, width = resized_size(ctx.height, ctx.width, short_side, min_ratio)
            if (height, width) != (ctx.height, ctx.width):
                self._rgb.update(width=width, height=height, interpolation="BILINEAR")
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
            reason = f"PyAV cannot decode frames {indices.tolist()} ({first_line(e)})"
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
                frames[k] = self._reformatter.reformat(frame, **self._rgb).to_ndarray()
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
                frames[k] = self._reformatter.reformat(frame, **self._rgb).to_ndarray()
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
        short_side: resize frames (PIL, bilinear) so that their short side is this (see :func:`resized_size`).
        shrink: ``'always'`` or ``'when_faster'``; frame folders shrink in both cases (not measured).
    """

    def __init__(self, path: str | os.PathLike, fps: float | None = None, short_side: int | None = None,
                 shrink: str = "always"):
        shrink_ratio(self, shrink)  # validates it
        self.path = str(path)
        self.short_side = short_side
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
                    image = image.convert("RGB")
                    size = resized_size(image.height, image.width, self.short_side)
                    if size != (image.height, image.width):
                        image = image.resize(size[::-1], Image.BILINEAR)
                    frames.append(np.asarray(image))
            except OSError as e:
                raise VideoReadError(f"cannot decode frame {self._files[i]} ({first_line(e)})", self.path) from None
        if len({f.shape for f in frames}) > 1:
            raise VideoReadError("frames of different sizes", self.path)
        return torch.from_numpy(np.stack(frames))

    def close(self) -> None:
        """Nothing to release: every read opens its frame files."""


_READERS: dict[str, type[VideoReader]] = {"decord": DecordReader, "pyav": PyAVReader}  # + torchcodec, below
_warned_unavailable: set[str] = set()
_warned_no_decord = False
_warned_fallback = False
_T = TypeVar("_T")


def list_readers() -> list[str]:
    """Names accepted by :func:`open_video` and the datasets: the readers and ``'auto'`` (frame folders are read
    whatever the name)."""
    return ["decord", "pyav", "torchcodec", "auto"]


def decord_available() -> bool:
    """Whether decord imports on this machine."""
    try:
        _import_decord()
    except ImportError:
        return False
    return True


def reader_status() -> dict[str, str | None]:
    """Every reader's availability on this machine: name -> None where it works, else the reason it does not."""
    return {
        "decord": None if decord_available() else "decord is not installed (pip install decord2)",
        "pyav": None,  # a dependency of the zoo
        "torchcodec": torchcodec_problem(),
    }


# The order 'auto' tries readers in, fastest first, as benchmarks/data.py measured it (benchmarks/results/
# data_cpu.json, 16-frame clips at stride 2 from H.264 at 240p-1080p, one thread per reader): see auto_readers.
AUTO_ORDER = ("pyav", "decord", "torchcodec")


def auto_readers() -> list[str]:
    """The readers ``reader='auto'`` tries, in order: those available of :data:`AUTO_ORDER`.

    The rule: PyAV, then decord, then torchcodec (where it is installed with FFmpeg's libraries). In
    ``benchmarks/data.py`` PyAV's clip reads were the fastest at 1080p, where a clip costs the most; at
    240p-720p the readers' order changed from run to run (``benchmarks/results/data_cpu.json`` holds the
    last). Each one that fails on a file hands it to the next (:func:`read_with_fallback`).
    """
    status = reader_status()
    return [name for name in AUTO_ORDER if status[name] is None]


def _available(reader: str) -> str:
    """``reader``, or PyAV (with one warning per reader) where it is not available on this machine."""
    global _warned_no_decord
    if reader == "decord" and not decord_available():
        if not _warned_no_decord:
            _logger.warning("decord is not installed (pip install decord2); reading videos with PyAV instead")
            _warned_no_decord = True
        return "pyav"
    if reader == "torchcodec" and (problem := torchcodec_problem()) is not None:
        if reader not in _warned_unavailable:
            _logger.warning("%s; reading videos with PyAV instead", problem)
            _warned_unavailable.add(reader)
        return "pyav"
    return reader


def open_video(path: str | os.PathLike, reader: str = "decord", num_threads: int = 1, fps: float | None = None,
               short_side: int | None = None, shrink: str = "always") -> VideoReader:
    """Open a video file, or a folder of frames, for reading.

    Args:
        path: a video file, or a folder of JPEG/PNG frames.
        reader: ``'decord'`` or ``'torchcodec'`` (each falls back to PyAV, with one warning, where it is not
            available), ``'pyav'``, or ``'auto'`` (the first of :func:`auto_readers`). Frame folders ignore it.
        num_threads: decoding threads per reader.
        fps: frame rate of a frame folder (video files give their own).
        short_side: resize frames while decoding so that their short side is this (never enlarging them;
            see :func:`resized_size`); None: full-size frames.
        shrink: ``'always'`` (frames come with ``short_side``), or ``'when_faster'``: only where the reader's
            decode-time resize pays (:attr:`VideoReader.shrink_from`); other frames come at full size.

    Raises:
        VideoReadError: the file is missing, empty, not a video or unreadable.
    """
    if reader not in list_readers():
        raise ValueError(f"unknown reader {reader!r}; choose one of {list_readers()}")
    if os.path.isdir(path):
        return FrameFolderReader(path, fps=fps, short_side=short_side, shrink=shrink)
    if not os.path.isfile(path):
        raise VideoReadError("no such file", path)
    if os.path.getsize(path) == 0:
        raise VideoReadError("empty file", path)
    reader = auto_readers()[0] if reader == "auto" else _available(reader)
    return _READERS[reader](path, num_threads=num_threads, short_side=short_side, shrink=shrink)


def _fallback_chain(reader: str) -> list[str]:
    """The readers :func:`read_with_fallback` tries, in order, for ``reader``."""
    if reader == "auto":
        return auto_readers()
    first = _available(reader)
    return [first] if first == "pyav" else [first, "pyav"]


def read_with_fallback(
    path: str | os.PathLike,
    read: Callable[[VideoReader], _T],
    reader: str = "decord",
    num_threads: int = 1,
    fps: float | None = None,
    short_side: int | None = None,
    shrink: str = "always",
) -> _T:
    """Open ``path`` and return ``read(video)``; where a reader fails, the next one tries again.

    ``'decord'`` and ``'torchcodec'`` fall back to PyAV, ``'auto'`` goes down :func:`auto_readers`
    (PyAV, decord, torchcodec: those available), ``'pyav'`` has no fallback. decord has bugs PyAV has
    not (e.g. it cannot copy out frames 32, 48 or 96 pixels wide), so a file one reader cannot open or
    decode is read again before it counts as unreadable. The first fallback is logged as a warning,
    later ones at debug level.

    Args:
        path: a video file or a frame folder.
        read: what to do with the open reader, e.g. ``lambda v: v.get_frames([0, 1])``.
        reader, num_threads, fps, short_side, shrink: as for :func:`open_video`.

    Raises:
        VideoReadError: every reader failed; the reason names each failure.
    """
    global _warned_fallback
    if reader not in list_readers():
        raise ValueError(f"unknown reader {reader!r}; choose one of {list_readers()}")
    chain = _fallback_chain(reader)
    reasons: list[str] = []
    for k, name in enumerate(chain):
        try:
            with open_video(path, name, num_threads, fps, short_side, shrink) as video:
                result = read(video)
        except VideoReadError as e:
            if os.path.isdir(path) or e.reason in ("no such file", "empty file"):
                raise
            reasons.append(e.reason)
            continue
        if k:
            log = _logger.debug if _warned_fallback else _logger.warning
            log("%s: %s; read with %s instead", path, "; ".join(reasons), name)
            _warned_fallback = True
        return result
    raise VideoReadError("; ".join(reasons), path)


def first_line(e: BaseException) -> str:
    """A short message for ``e``: decord's source locations and timestamps removed, one line."""
    text = re.sub(r"\[\d\d:\d\d:\d\d\] \S+:\d+: ", "", str(e)).strip() or type(e).__name__
    return " ".join(text.split())[:300]


# At the bottom: torchcodec_reader builds on the classes above.
from .torchcodec_reader import TorchCodecReader, torchcodec_problem  # noqa: E402

_READERS["torchcodec"] = TorchCodecReader
