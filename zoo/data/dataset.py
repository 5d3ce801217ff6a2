"""The video dataset: one ``VideoDataset`` over a list of samples, with robust decoding and multi-view testing.

Unreadable videos (corrupt, empty, not a video, too short) never stop a run: each is logged
once, replaced by another sample and recorded in ``dataset.bad_files`` (merged over DataLoader
workers); ``dataset.report_bad_files()`` logs them at the end of an epoch. ``strict=True``
raises :class:`~zoo.data.readers.VideoReadError` instead, naming the file. Code that draws its
own views of a sample (``zoo.flow.views``) reads through :meth:`VideoDataset.read_with_retries`,
with the same replacement rule. The layouts are :mod:`zoo.data.layouts`'; the factory
:func:`zoo.data.factory.create_dataset`.
"""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from .readers import VideoReader, VideoReadError, list_readers, read_with_fallback
from .sampling import ClipSampler
from .transforms import create_video_transform

__all__ = [
    "VIDEO_EXTENSIONS",
    "VideoSample",
    "Annotations",
    "VideoDataset",
    "BadFileLog",
    "load_classes",
    "sample_frame_range",
    "read_sample_clips",
]

_logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".ogv")


@dataclass(frozen=True)
class VideoSample:
    """One video of a dataset.

    Attributes:
        path: a video file or a folder of frames.
        label: class index into the dataset's ``classes``.
        start: first second of the video to use (None: from the start).
        end: last second of the video to use (None: to the end).
    """

    path: str
    label: int
    start: float | None = None
    end: float | None = None


@dataclass
class Annotations:
    """What a dataset parser returns.

    Attributes:
        samples: the videos, in a fixed order.
        classes: class names; ``samples[i].label`` indexes them.
        defaults: the kind's defaults for the transform and reader: ``hflip`` (bool),
            ``input_size`` and ``short_side`` (pixels), ``fps`` (of frame folders).
    """

    samples: list[VideoSample]
    classes: list[str]
    defaults: dict[str, Any] = field(default_factory=dict)


def load_classes(path: str | os.PathLike) -> list[str]:
    """Class names from a ``classes.json`` written by :meth:`VideoDataset.save_classes`."""
    with open(path) as f:
        classes = json.load(f)
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise ValueError(f"{path} must hold a JSON list of class names")
    return classes


def sample_frame_range(sample: VideoSample, reader: VideoReader, min_frames: int = 1) -> range:
    """The frames of ``reader`` that ``sample`` covers (its start/end seconds, else all).

    Raises:
        VideoReadError: fewer than ``min_frames`` frames, or start/end seconds without a frame rate.
    """
    first, stop = 0, reader.num_frames
    if sample.start is not None or sample.end is not None:
        if not reader.fps:
            raise VideoReadError("start/end seconds given but the frame rate is unknown", sample.path)
        if sample.start is not None:
            first = max(0, math.floor(sample.start * reader.fps))
        if sample.end is not None:
            stop = min(stop, math.ceil(sample.end * reader.fps))
    if stop - first < min_frames:
        raise VideoReadError(
            f"too short: {max(stop - first, 0)} frames (of {reader.num_frames}) in the annotated range, "
            f"at least {min_frames} needed",
            sample.path,
        )
    return range(first, stop)


def read_sample_clips(sample: VideoSample, sampler: ClipSampler, reader: str = "decord", min_frames: int = 1,
                      fps: float | None = None, short_side: int | None = None) -> torch.Tensor:
    """The raw clips ``sampler`` draws from ``sample``: uint8 ``(n_clips, T, H, W, C)``, read with ``reader`` (and
    its fallbacks, :func:`~zoo.data.readers.read_with_fallback`), shrunk to ``short_side`` while decoding where
    the reader does that faster than the transform's resize (``shrink='when_faster'``; others at full size).

    Raises:
        VideoReadError: the video cannot be read, or is too short.
    """

    def read(video: VideoReader) -> torch.Tensor:
        frames = sample_frame_range(sample, video, min_frames)
        indices = sampler(len(frames)) + frames.start
        clips = video.get_frames(indices.reshape(-1))
        return clips.reshape(*indices.shape, *clips.shape[1:])

    return read_with_fallback(sample.path, read, reader, fps=fps, short_side=short_side, shrink="when_faster")


def _remove_dir(directory: str, owner_pid: int) -> None:
    if os.getpid() == owner_pid:  # not from a forked DataLoader worker holding a copy
        shutil.rmtree(directory, ignore_errors=True)


class BadFileLog:
    """Unreadable files, recorded by every process holding a copy of a dataset.

    Each DataLoader worker has its own copy of the dataset, so records go to a small
    directory of append-only files (one per process) that the main process reads back. The
    directory is created with the dataset and removed when the dataset that made it is
    garbage collected (or at exit).
    """

    def __init__(self):
        self.directory = tempfile.mkdtemp(prefix="zoo-bad-files-")
        self._finalizer = weakref.finalize(self, _remove_dir, self.directory, os.getpid())

    def __getstate__(self) -> dict[str, Any]:
        return {"directory": self.directory}  # a copy for a worker: records, never removes

    def record(self, path: str, reason: str) -> None:
        """Append one record ``path -> reason`` (safe from any process)."""
        line = json.dumps({"path": path, "reason": reason}) + "\n"
        with open(os.path.join(self.directory, f"{os.getpid()}.jsonl"), "a") as f:
            f.write(line)

    def read(self) -> dict[str, str]:
        """All records so far, merged over processes: path -> reason (the first one recorded)."""
        merged: dict[str, str] = {}
        try:
            names = sorted(os.listdir(self.directory))
        except FileNotFoundError:
            return merged
        for name in names:
            with open(os.path.join(self.directory, name)) as f:
                for line in f:
                    if line.endswith("\n"):  # a line still being written is read next time
                        record = json.loads(line)
                        merged.setdefault(record["path"], record["reason"])
        return merged

    def clear(self) -> None:
        """Forget all records."""
        for name in os.listdir(self.directory):
            os.remove(os.path.join(self.directory, name))


class VideoDataset(Dataset):
    """Clips from a list of videos, with robust decoding and multi-view testing.

    Args:
        samples: the videos.
        classes: class names (``samples[i].label`` indexes them).
        num_frames: frames per clip (T); the number of segments for ``sampling='segment'``.
        frame_stride: gap between the frames of a dense clip, in frames.
        train: random clip positions (True) or deterministic ones (False).
        reader: ``'decord'``, ``'pyav'``, ``'torchcodec'`` or ``'auto'`` (see :func:`~zoo.data.readers.open_video`).
        strict: raise on an unreadable video instead of replacing it.
        transform: maps uint8 ``(T, H, W, C)`` frames to float ``(C, T, H, W)`` (or
            ``(n_crops, C, T, H, W)``); default: :func:`~zoo.data.transforms.create_video_transform`.
        sampling: ``'dense'`` or ``'segment'`` (TSN).
        n_clips: clips per video; with ``n_clips * n_crops > 1`` an item's video is
            ``(n_clips * n_crops, C, T, H, W)``, clip-major.
        temporal_jitter: random per-frame offsets of dense clips when training.
        pad_mode: ``'loop'`` or ``'repeat_last'`` for videos shorter than a clip.
        min_frames: videos (or annotated ranges) with fewer frames are unreadable ("too short").
        fps: frame rate of frame-folder samples (video files carry their own).
        max_retries: consecutive unreadable videos tolerated for one item before giving up.
        name: a name for messages (default: the class name).
        split: the split's name, if any (for reports).
        decode_short_side: have the reader shrink frames while decoding so that their short side is this
            (the transform's largest resize: :func:`~zoo.data.transforms.decode_short_side`); None: full size.
    """

    def __init__(
        self,
        samples: Sequence[VideoSample],
        classes: Sequence[str],
        num_frames: int = 16,
        frame_stride: int = 2,
        train: bool = True,
        reader: str = "decord",
        strict: bool = False,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        sampling: str = "dense",
        n_clips: int = 1,
        temporal_jitter: bool = False,
        pad_mode: str = "loop",
        min_frames: int = 1,
        fps: float | None = None,
        max_retries: int = 10,
        name: str | None = None,
        split: str | None = None,
        decode_short_side: int | None = None,
    ):
        if reader not in list_readers():
            raise ValueError(f"unknown reader {reader!r}; choose one of {list_readers()}")
        if not samples:
            raise ValueError("a dataset needs at least one sample")
        self.samples = list(samples)
        self.classes = list(classes)
        bad_labels = [s.label for s in self.samples if not 0 <= s.label < len(self.classes)]
        if bad_labels:
            raise ValueError(f"labels {sorted(set(bad_labels))[:10]} are outside [0, {len(self.classes)})")
        self.train = train
        self.reader = reader
        self.strict = strict
        self.transform = transform if transform is not None else create_video_transform(train)
        self.sampler = ClipSampler(num_frames, frame_stride, sampling, train, n_clips, temporal_jitter, pad_mode)
        self.min_frames = min_frames
        self.fps = fps
        self.max_retries = max_retries
        self.name = name or type(self).__name__
        self.split = split
        self.decode_short_side = decode_short_side
        self._bad_log = BadFileLog()
        self._known_bad: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> list[int]:
        """The label of every sample, in order."""
        return [s.label for s in self.samples]

    def save_classes(self, path: str | os.PathLike) -> Path:
        """Write the class names as a JSON list (read back with :func:`load_classes`)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.classes, indent=1) + "\n")
        return path

    def read_clips(self, index: int) -> torch.Tensor:
        """The raw clips of sample ``index``: uint8 ``(n_clips, T, H, W, C)``.

        Where decord fails on a file, PyAV tries again (:func:`~zoo.data.readers.read_with_fallback`).

        Raises:
            VideoReadError: the video cannot be read (whatever ``strict`` says).
        """
        return read_sample_clips(self.samples[index], self.sampler, self.reader, self.min_frames, self.fps,
                                 self.decode_short_side)

    def read_with_retries(
        self, index: int, read: Callable[[int], Any] | None = None, what: str | None = None
    ) -> tuple[int, Any]:
        """``read(index)`` (default :meth:`read_clips`), with an unreadable video replaced by another
        sample (a random one when training, the next one when testing), logged and counted.
        ``read`` raises :class:`~zoo.data.readers.VideoReadError` for an unreadable sample; ``what``
        says how it reads, in the message when too many fail in a row.

        Returns:
            The index of the sample that was read, and what ``read`` returned for it.

        Raises:
            VideoReadError: ``strict`` is set and a video cannot be read.
            RuntimeError: ``max_retries`` videos in a row could not be read (a broken reader?).
        """
        read = read or self.read_clips
        reasons = []
        for _ in range(self.max_retries + 1):
            path = self.samples[index].path
            reason = self._known_bad.get(path)
            if reason is None:
                try:
                    return index, read(index)
                except VideoReadError as e:
                    reason = e.reason
            self._on_bad_file(path, reason)
            reasons.append(f"{path}: {reason}")
            index = self._replacement(index)
        what = what or f"with reader {self.reader!r}; is the reader working?"
        raise RuntimeError(
            f"{self.name}: {len(reasons)} videos in a row could not be read {what} " + "; ".join(reasons[-3:])
        )

    def __getitem__(self, index: int) -> dict[str, Any]:
        """One item: ``video`` float ``(C, T, H, W)`` (or ``(V, C, T, H, W)``), ``label``, ``index``, ``path``.

        An unreadable video is replaced by another sample, whose ``index`` and ``path`` the item
        then carries.
        """
        index, clips = self.read_with_retries(index)
        views = [self.transform(clip) for clip in clips]
        if len(views) == 1 and views[0].ndim == 4:
            video = views[0]
        else:
            video = torch.cat([v if v.ndim == 5 else v.unsqueeze(0) for v in views])
        return {"video": video, "label": self.samples[index].label, "index": index, "path": self.samples[index].path}

    def _on_bad_file(self, path: str, reason: str) -> None:
        if self.strict:
            raise VideoReadError(reason, path)
        self._bad_log.record(path, reason)
        if path not in self._known_bad:
            self._known_bad[path] = reason
            _logger.warning("%s: skipping %s: %s (replaced by another video)", self.name, path, reason)

    def _replacement(self, index: int) -> int:
        """Another sample: a random one when training, the next one when testing."""
        if self.train:
            return int(torch.randint(len(self), (1,)))
        return (index + 1) % len(self)

    @property
    def bad_files(self) -> dict[str, str]:
        """Unreadable files met since the last reset, by any process (DataLoader workers too): path -> reason."""
        return self._bad_log.read()

    def report_bad_files(self, reset: bool = False, log: bool = True) -> dict[str, str]:
        """Log (with ``log``) the unreadable files met since the last reset (call it at the end of an epoch).

        The main process also learns them, so that the next epoch's workers skip them
        without trying to decode them again.

        Args:
            reset: forget the records afterwards (the next report covers the next epoch only).
            log: write them to the log (the trainer prints its own summary instead).

        Returns:
            path -> reason.
        """
        bad = self.bad_files
        self._known_bad.update(bad)
        if bad and log:
            lines = "\n".join(f"  {path}: {reason}" for path, reason in sorted(bad.items()))
            _logger.warning("%s: %d of %d videos could not be read and were replaced:\n%s",
                            self.name, len(bad), len(self), lines)
        if reset:
            self.reset_bad_files()
        return bad

    def reset_bad_files(self) -> None:
        """Forget the recorded unreadable files (known ones are still skipped without decoding)."""
        self._bad_log.clear()

    def __repr__(self) -> str:
        return (
            f"{self.name}(samples={len(self)}, classes={len(self.classes)}, train={self.train}, "
            f"reader={self.reader!r}, {self.sampler})"
        )
