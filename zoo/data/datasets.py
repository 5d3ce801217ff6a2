"""Video datasets: one ``VideoDataset`` over a list of samples, and parsers for the usual layouts.

>>> ds = create_dataset('kinetics', '/data/k400', split='train', num_frames=16, frame_stride=2)
>>> item = ds[0]     # {'video': float (C, T, H, W), 'label': int, 'index': int, 'path': str}
>>> ds.classes[item['label']]

Kinds (``list_datasets()``) and their own keywords:

- ``folder``: ``root/CLASS_NAME/*.mp4`` (or ``root/SPLIT/CLASS_NAME/...`` with ``split``);
  a sub-folder of a class folder is read as a folder of frames. Keywords: ``classes``
  (a list, or the path of a saved ``classes.json``), ``extensions``.
- ``csv``: lines ``path,label[,start,end]`` (label an index or a class name, start/end in
  seconds; a header line ``path,label,...`` is allowed), paths relative to ``root``.
  Keywords: ``annotations`` (default ``root/SPLIT.csv``), ``classes``, ``delimiter``.
- ``kinetics``: Kinetics-400/600/700 CSVs (``label,youtube_id,time_start,time_end,split``),
  videos named ``{youtube_id}_{start:06d}_{end:06d}.*`` anywhere under ``root/SPLIT`` (or
  untrimmed ``{youtube_id}.*``, cut to the annotated seconds). Keywords: ``annotations``,
  ``video_dir``, ``classes``.
- ``ssv2``: Something-Something V2 (``something-something-v2-labels.json``, ``-train.json``,
  ``-validation.json``; ``{id}.webm`` videos). Keywords: ``annotation_dir``, ``video_dir``.
- ``ssv1``: Something-Something V1 (``something-something-v1-labels.csv``, ``-train.csv``,
  ``-validation.csv`` with ``;``; JPEG frame folders ``{id}/00001.jpg``, 12 fps).
  Keywords: ``annotation_dir``, ``video_dir``.
- ``ucf101``: UCF-101 (``classInd.txt``, ``trainlist0N.txt``, ``testlist0N.txt``). Keywords:
  ``fold`` (1-3), ``annotation_dir``, ``video_dir``.
- ``moving_digits``: the built-in synthetic motion dataset (see ``zoo.data.moving_digits``).

Unreadable videos (corrupt, empty, not a video, too short) never stop a run: each is logged
once, replaced by another sample and recorded in ``dataset.bad_files`` (merged over DataLoader
workers); ``dataset.report_bad_files()`` logs them at the end of an epoch. ``strict=True``
raises :class:`~zoo.data.readers.VideoReadError` instead, naming the file.
"""
from __future__ import annotations

import csv
import json
import logging
import math
import os
import shutil
import tempfile
import weakref
from collections.abc import Callable, Iterable, Sequence
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
    "create_dataset",
    "list_datasets",
    "register_dataset",
    "load_classes",
    "sample_frame_range",
    "folder_annotations",
    "csv_annotations",
    "kinetics_annotations",
    "ssv2_annotations",
    "ssv1_annotations",
    "ucf101_annotations",
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


def _resolve_classes(classes: Sequence[str] | str | os.PathLike | None) -> list[str] | None:
    if classes is None:
        return None
    if isinstance(classes, (str, os.PathLike)):
        return load_classes(classes)
    return list(classes)


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
        reader: ``'decord'`` or ``'pyav'`` (see :func:`~zoo.data.readers.open_video`).
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
        sample = self.samples[index]

        def read(video: VideoReader) -> torch.Tensor:
            frames = sample_frame_range(sample, video, self.min_frames)
            indices = self.sampler(len(frames)) + frames.start
            clips = video.get_frames(indices.reshape(-1))
            return clips.reshape(*indices.shape, *clips.shape[1:])

        return read_with_fallback(sample.path, read, self.reader, fps=self.fps)

    def __getitem__(self, index: int) -> dict[str, Any]:
        """One item: ``video`` float ``(C, T, H, W)`` (or ``(V, C, T, H, W)``), ``label``, ``index``, ``path``.

        An unreadable video is replaced by another sample, whose ``index`` and ``path`` the item
        then carries.
        """
        reasons = []
        for _ in range(self.max_retries + 1):
            path = self.samples[index].path
            reason = self._known_bad.get(path)
            if reason is None:
                try:
                    clips = self.read_clips(index)
                    break
                except VideoReadError as e:
                    reason = e.reason
            self._on_bad_file(path, reason)
            reasons.append(f"{path}: {reason}")
            index = self._replacement(index)
        else:
            raise RuntimeError(
                f"{self.name}: {len(reasons)} videos in a row could not be read with reader {self.reader!r}; "
                "is the reader working? " + "; ".join(reasons[-3:])
            )
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

    def report_bad_files(self, reset: bool = False) -> dict[str, str]:
        """Log the unreadable files met since the last reset (call it at the end of an epoch).

        The main process also learns them, so that the next epoch's workers skip them
        without trying to decode them again.

        Args:
            reset: forget the records afterwards (the next report covers the next epoch only).

        Returns:
            path -> reason.
        """
        bad = self.bad_files
        self._known_bad.update(bad)
        if bad:
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


# ---------------------------------------------------------------------------------------------
# Parsers of the dataset layouts


def _index_files(directory: str | os.PathLike, extensions: Iterable[str] = VIDEO_EXTENSIONS) -> dict[str, str]:
    """Every video file under ``directory`` (recursively): file stem -> path."""
    exts = tuple(e.lower() for e in extensions)
    index: dict[str, str] = {}
    for dirpath, _, filenames in os.walk(directory):
        for name in filenames:
            stem, ext = os.path.splitext(name)
            if ext.lower() in exts:
                index.setdefault(stem, os.path.join(dirpath, name))
    return index


def _warn_missing(kind: str, missing: int, total: int, where: str | os.PathLike) -> None:
    if missing:
        _logger.warning("%s: %d of %d annotated videos are not under %s; they are left out",
                        kind, missing, total, where)


def _existing(*candidates: str | os.PathLike) -> Path:
    """The first candidate that exists, else the first one."""
    for c in candidates:
        if os.path.exists(c):
            return Path(c)
    return Path(candidates[0])


def _require_root(kind: str, root: str | os.PathLike | None) -> Path:
    if root is None:
        raise ValueError(f"dataset kind {kind!r} needs a root folder")
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{kind}: root folder {root} does not exist")
    return Path(root)


def folder_annotations(
    root: str | os.PathLike,
    split: str | None = None,
    classes: Sequence[str] | str | os.PathLike | None = None,
    extensions: Sequence[str] | None = VIDEO_EXTENSIONS,
) -> Annotations:
    """``root[/split]/CLASS_NAME/VIDEO``: class indices from the sorted folder names.

    Args:
        root: the dataset folder.
        split: a sub-folder of ``root`` holding the class folders (e.g. ``'train'``), or None.
        classes: the class list to use (a list, or a saved ``classes.json``), e.g. the
            training set's for a validation set; every class folder must be in it.
        extensions: video file extensions to take (case-insensitive); None takes every
            file. Sub-folders of a class folder are taken as frame folders.
    """
    root = _require_root("folder", root)
    base = root / split if split else root
    if not base.is_dir():
        raise FileNotFoundError(f"folder: {base} does not exist")
    folders = sorted(e.name for e in os.scandir(base) if e.is_dir() and not e.name.startswith("."))
    names = _resolve_classes(classes) or folders
    unknown = sorted(set(folders) - set(names))
    if unknown:
        raise ValueError(f"folder: class folders {unknown} under {base} are not in the given classes")
    exts = None if extensions is None else tuple(e.lower() for e in extensions)
    samples = []
    for label, name in enumerate(names):
        if not (base / name).is_dir():
            continue
        for entry in sorted(os.scandir(base / name), key=lambda e: e.name):
            if entry.name.startswith("."):
                continue
            if entry.is_dir() or exts is None or os.path.splitext(entry.name)[1].lower() in exts:
                samples.append(VideoSample(entry.path, label))
    if not samples:
        raise ValueError(f"folder: no videos found under {base} (expected {base}/CLASS_NAME/*.mp4)")
    return Annotations(samples, names)


def csv_annotations(
    root: str | os.PathLike,
    split: str | None = None,
    annotations: str | os.PathLike | None = None,
    classes: Sequence[str] | str | os.PathLike | None = None,
    delimiter: str = ",",
) -> Annotations:
    """A CSV of ``path,label[,start,end]`` lines.

    Args:
        root: folder the paths are relative to (absolute paths are kept).
        split: reads ``root/SPLIT.csv`` when ``annotations`` is not given.
        annotations: the CSV file.
        classes: class names (a list, or a saved ``classes.json``). Default: labels that are
            all indices give ``['0', '1', ...]``; labels that are names give their sorted set.
        delimiter: the field separator.

    A first line ``path,label[,...]`` is taken as a header; blank lines are skipped; start
    and end are seconds (either may be empty).
    """
    root = _require_root("csv", root)
    if annotations is None:
        if split is None:
            raise ValueError("csv: pass annotations=PATH.csv, or split=NAME to read ROOT/NAME.csv")
        annotations = root / f"{split}.csv"
    rows = []
    with open(annotations, newline="") as f:
        for n, row in enumerate(csv.reader(f, delimiter=delimiter)):
            row = [c.strip() for c in row]
            if not row or not any(row):
                continue
            if n == 0 and len(row) >= 2 and row[0].lower() == "path" and row[1].lower() == "label":
                continue
            if len(row) not in (2, 4):
                raise ValueError(f"{annotations}, line {n + 1}: expected path,label[,start,end]; got {row}")
            rows.append(row)
    names = _resolve_classes(classes)
    labels = [r[1] for r in rows]
    is_index = [lab.lstrip("-").isdigit() for lab in labels]
    if names is None:
        if all(is_index):
            names = [str(i) for i in range(max(int(lab) for lab in labels) + 1)] if labels else []
        elif not any(is_index):
            names = sorted(set(labels))
        else:
            raise ValueError(f"{annotations}: labels mix indices and names; pass classes=[...]")
    lookup = {name: i for i, name in enumerate(names)}
    samples = []
    for row, index_label in zip(rows, is_index):
        if index_label:
            label = int(row[1])
        elif row[1] in lookup:
            label = lookup[row[1]]
        else:
            raise ValueError(f"{annotations}: label {row[1]!r} is not one of the classes")
        start = float(row[2]) if len(row) == 4 and row[2] else None
        end = float(row[3]) if len(row) == 4 and row[3] else None
        samples.append(VideoSample(str(root / row[0]), label, start, end))
    return Annotations(samples, names)


def kinetics_annotations(
    root: str | os.PathLike,
    split: str = "train",
    annotations: str | os.PathLike | None = None,
    video_dir: str | os.PathLike | None = None,
    classes: Sequence[str] | str | os.PathLike | None = None,
) -> Annotations:
    """Kinetics: the CSV release (``label,youtube_id,time_start,time_end,split[,is_cc]``).

    Args:
        root: the dataset folder.
        split: ``'train'``, ``'val'`` (also ``'validate'``) or ``'test'``.
        annotations: the CSV; default: the first of ``root/annotations/SPLIT.csv``,
            ``root/SPLIT.csv`` (``validate.csv`` also tried for ``'val'``).
        video_dir: where the split's videos are (searched recursively, so both
            ``SPLIT/LABEL/*.mp4`` and ``SPLIT/*.mp4`` work); default ``root/SPLIT`` (``val``
            or ``validate``), else ``root``.
        classes: class names; default: the sorted labels of the CSV.

    Videos are found by name: trimmed clips ``{youtube_id}_{start:06d}_{end:06d}.*``, or
    untrimmed ``{youtube_id}.*`` cut to ``[time_start, time_end]`` seconds. Annotated
    videos not found are left out with a warning (Kinetics always has some).
    """
    root = _require_root("kinetics", root)
    split_names = ["val", "validate"] if split in ("val", "validate") else [split]
    if annotations is None:
        annotations = _existing(*[root / d / f"{n}.csv" for d in ("annotations", ".") for n in split_names])
    if video_dir is None:
        video_dir = _existing(*[root / n for n in split_names], root)
    with open(annotations, newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and not {"label", "youtube_id", "time_start", "time_end"} <= set(rows[0]):
        raise ValueError(f"{annotations}: expected the columns label, youtube_id, time_start, time_end")
    label_names = _resolve_classes(classes) or sorted({r["label"] for r in rows})
    lookup = {name: i for i, name in enumerate(label_names)}
    files = _index_files(video_dir)
    samples = []
    for r in rows:
        start, end = float(r["time_start"]), float(r["time_end"])
        trimmed = f"{r['youtube_id']}_{int(start):06d}_{int(end):06d}"
        if r["label"] not in lookup:
            raise ValueError(f"{annotations}: label {r['label']!r} is not one of the classes")
        if trimmed in files:
            samples.append(VideoSample(files[trimmed], lookup[r["label"]]))
        elif r["youtube_id"] in files:
            samples.append(VideoSample(files[r["youtube_id"]], lookup[r["label"]], start, end))
    _warn_missing("kinetics", len(rows) - len(samples), len(rows), video_dir)
    return Annotations(samples, label_names)


def _ss_split_name(kind: str, split: str) -> str:
    if split == "train":
        return "train"
    if split in ("val", "validation"):
        return "validation"
    raise ValueError(f"{kind}: split must be 'train' or 'validation' (or 'val'); got {split!r}")


def ssv2_annotations(
    root: str | os.PathLike,
    split: str = "train",
    annotation_dir: str | os.PathLike | None = None,
    video_dir: str | os.PathLike | None = None,
) -> Annotations:
    """Something-Something V2: the JSON label and split files, ``{id}.webm`` videos.

    Args:
        root: the dataset folder.
        split: ``'train'`` or ``'validation'`` (``'val'``).
        annotation_dir: holds ``something-something-v2-labels.json``, ``-train.json`` and
            ``-validation.json``; default: the first of ``root``, ``root/labels``,
            ``root/annotations`` that has the labels file.
        video_dir: holds the videos (any extension, searched recursively); default
            ``root/20bn-something-something-v2`` if it exists, else ``root``.

    A video's class is its template with the brackets removed ("Putting [something] on a
    surface" -> "Putting something on a surface"); class indices are the labels file's.
    """
    root = _require_root("ssv2", root)
    labels_name = "something-something-v2-labels.json"
    annotation_dir = Path(annotation_dir) if annotation_dir else _existing(
        *[d / labels_name for d in (root, root / "labels", root / "annotations")]
    ).parent
    video_dir = video_dir or _existing(root / "20bn-something-something-v2", root)
    with open(annotation_dir / labels_name) as f:
        label_index = {name: int(i) for name, i in json.load(f).items()}
    names = [name for name, _ in sorted(label_index.items(), key=lambda kv: kv[1])]
    with open(annotation_dir / f"something-something-v2-{_ss_split_name('ssv2', split)}.json") as f:
        entries = json.load(f)
    files = _index_files(video_dir)
    samples = []
    for e in entries:
        template = e["template"].replace("[", "").replace("]", "")
        if template not in label_index:
            raise ValueError(f"ssv2: template {template!r} of video {e['id']} is not in {labels_name}")
        if str(e["id"]) in files:
            samples.append(VideoSample(files[str(e["id"])], label_index[template]))
    _warn_missing("ssv2", len(entries) - len(samples), len(entries), video_dir)
    return Annotations(samples, names, {"hflip": False})


def ssv1_annotations(
    root: str | os.PathLike,
    split: str = "train",
    annotation_dir: str | os.PathLike | None = None,
    video_dir: str | os.PathLike | None = None,
) -> Annotations:
    """Something-Something V1: ``;``-separated CSVs and JPEG frame folders ``{id}/00001.jpg``.

    Args:
        root: the dataset folder.
        split: ``'train'`` or ``'validation'`` (``'val'``).
        annotation_dir: holds ``something-something-v1-labels.csv`` (one class name per line,
            in index order), ``-train.csv`` and ``-validation.csv`` (``id;class name``);
            default: the first of ``root``, ``root/labels``, ``root/annotations`` that has them.
        video_dir: holds the frame folders; default ``root/20bn-something-something-v1`` if it
            exists, else ``root``.
    """
    root = _require_root("ssv1", root)
    labels_name = "something-something-v1-labels.csv"
    annotation_dir = Path(annotation_dir) if annotation_dir else _existing(
        *[d / labels_name for d in (root, root / "labels", root / "annotations")]
    ).parent
    video_dir = Path(video_dir or _existing(root / "20bn-something-something-v1", root))
    with open(annotation_dir / labels_name) as f:
        names = [line.strip() for line in f if line.strip()]
    lookup = {name: i for i, name in enumerate(names)}
    folders = set(os.listdir(video_dir))
    samples, total = [], 0
    with open(annotation_dir / f"something-something-v1-{_ss_split_name('ssv1', split)}.csv") as f:
        for line in f:
            if not line.strip():
                continue
            video_id, _, name = line.strip().partition(";")
            if name not in lookup:
                raise ValueError(f"ssv1: class {name!r} of video {video_id} is not in {labels_name}")
            total += 1
            if video_id in folders:
                samples.append(VideoSample(str(video_dir / video_id), lookup[name]))
    _warn_missing("ssv1", total - len(samples), total, video_dir)
    return Annotations(samples, names, {"hflip": False, "fps": 12.0})


def ucf101_annotations(
    root: str | os.PathLike,
    split: str = "train",
    fold: int = 1,
    annotation_dir: str | os.PathLike | None = None,
    video_dir: str | os.PathLike | None = None,
) -> Annotations:
    """UCF-101 with its official splits.

    Args:
        root: the dataset folder.
        split: ``'train'`` or ``'test'``.
        fold: which of the three official splits (1, 2 or 3).
        annotation_dir: holds ``classInd.txt``, ``trainlist0N.txt``, ``testlist0N.txt``;
            default ``root/ucfTrainTestlist`` if it exists, else ``root``.
        video_dir: the ``CLASS/v_CLASS_gXX_cYY.avi`` tree; default ``root/UCF-101`` if it
            exists, else ``root``.

    Class indices are ``classInd.txt``'s minus one. Test lines carry no label: it comes from
    the class folder (matched case-insensitively, as the files spell ``HandstandPushups``
    two ways).
    """
    root = _require_root("ucf101", root)
    if fold not in (1, 2, 3):
        raise ValueError(f"ucf101: fold must be 1, 2 or 3; got {fold}")
    if split not in ("train", "test"):
        raise ValueError(f"ucf101: split must be 'train' or 'test'; got {split!r}")
    annotation_dir = Path(annotation_dir or _existing(root / "ucfTrainTestlist", root))
    video_dir = Path(video_dir or _existing(root / "UCF-101", root))
    names = []
    with open(annotation_dir / "classInd.txt") as f:
        for line in f:
            if line.strip():
                number, name = line.split()
                if int(number) != len(names) + 1:
                    raise ValueError(f"ucf101: classInd.txt must number classes 1, 2, ...; got {line.strip()!r}")
                names.append(name)
    lookup = {name.lower(): i for i, name in enumerate(names)}
    samples, total = [], 0
    with open(annotation_dir / f"{split}list0{fold}.txt") as f:
        for line in f:
            fields = line.split()
            if not fields:
                continue
            rel = fields[0]
            folder = rel.split("/")[0].lower()
            if folder not in lookup:
                raise ValueError(f"ucf101: class folder of {rel!r} is not in classInd.txt")
            label = int(fields[1]) - 1 if len(fields) > 1 else lookup[folder]
            total += 1
            if (video_dir / rel).is_file():
                samples.append(VideoSample(str(video_dir / rel), label))
    _warn_missing("ucf101", total - len(samples), total, video_dir)
    return Annotations(samples, names)


# ---------------------------------------------------------------------------------------------
# The factory


@dataclass(frozen=True)
class _Kind:
    parse: Callable[..., Annotations]
    train_split: str | None
    eval_split: str | None


_KINDS: dict[str, _Kind] = {}


def register_dataset(name: str, parse: Callable[..., Annotations], train_split: str | None = None,
                     eval_split: str | None = None) -> None:
    """Add a dataset kind to :func:`create_dataset`.

    Args:
        name: the kind's name.
        parse: ``parse(root, split, **kind_specific) -> Annotations``.
        train_split: the split used when ``split`` is None and ``train=True``.
        eval_split: the split used when ``split`` is None and ``train=False``.
    """
    _KINDS[name] = _Kind(parse, train_split, eval_split)


def list_datasets() -> list[str]:
    """The kinds :func:`create_dataset` accepts."""
    return sorted(_KINDS)


def create_dataset(
    kind: str,
    root: str | os.PathLike | None = None,
    split: str | None = None,
    num_frames: int = 16,
    frame_stride: int = 2,
    train: bool = True,
    reader: str = "decord",
    strict: bool = False,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    *,
    sampling: str = "dense",
    n_clips: int = 1,
    n_crops: int = 1,
    input_size: int | None = None,
    hflip: bool | None = None,
    temporal_jitter: bool = False,
    pad_mode: str = "loop",
    min_frames: int = 1,
    **kind_specific: Any,
) -> VideoDataset:
    """A video dataset of a known kind (``list_datasets()``).

    Args:
        kind: ``'folder'``, ``'csv'``, ``'kinetics'``, ``'ssv2'``, ``'ssv1'``, ``'ucf101'`` or
            ``'moving_digits'`` (see this module's docstring for each layout).
        root: the dataset folder (None for ``moving_digits``: it lives in ``$ZOO_HOME``).
        split: which split; default: the kind's training split when ``train`` is true,
            its evaluation split otherwise (``folder`` and ``csv`` have none).
        num_frames: frames per clip (T), or segments with ``sampling='segment'``.
        frame_stride: gap between frames of a dense clip, in frames.
        train: training mode (random clips, augmentation) or testing mode.
        reader: ``'decord'`` or ``'pyav'``.
        strict: raise on an unreadable video instead of replacing it.
        transform: maps uint8 ``(T, H, W, C)`` to float ``(C, T, H, W)``; default: the
            kind's standard transform (:func:`~zoo.data.transforms.create_video_transform`
            with ``input_size``, ``n_crops``, ``hflip``).
        sampling: ``'dense'`` or ``'segment'`` (TSN).
        n_clips: temporal clips per video (testing: e.g. 10).
        n_crops: spatial crops per clip of the default test transform (1 or 3).
        input_size: crop size in pixels (default 224; the frame size for ``moving_digits``).
        hflip: random horizontal flips when training (default: on, except for
            Something-Something and Moving-Digits, whose classes name directions).
        temporal_jitter: random per-frame offsets of dense clips when training.
        pad_mode: ``'loop'`` or ``'repeat_last'`` for videos shorter than a clip.
        min_frames: videos with fewer frames count as unreadable ("too short").
        **kind_specific: the kind's own keywords (e.g. ``annotations``, ``fold``, ``classes``).
    """
    if kind not in _KINDS:
        raise ValueError(f"unknown dataset kind {kind!r}; choose one of {list_datasets()}")
    spec = _KINDS[kind]
    if split is None:
        split = spec.train_split if train else spec.eval_split
    ann = spec.parse(root, split, **kind_specific)
    defaults = ann.defaults
    if transform is None:
        use_default_size = input_size is None
        transform = create_video_transform(
            train,
            input_size=defaults.get("input_size", 224) if use_default_size else input_size,
            short_side=defaults.get("short_side") if use_default_size else None,
            n_crops=n_crops,
            hflip=defaults.get("hflip", True) if hflip is None else hflip,
        )
    return VideoDataset(
        ann.samples,
        ann.classes,
        num_frames=num_frames,
        frame_stride=frame_stride,
        train=train,
        reader=reader,
        strict=strict,
        transform=transform,
        sampling=sampling,
        n_clips=n_clips,
        temporal_jitter=temporal_jitter,
        pad_mode=pad_mode,
        min_frames=min_frames,
        fps=defaults.get("fps"),
        name=f"{kind}[{split}]" if split else kind,
        split=split,
    )


register_dataset("folder", folder_annotations)
register_dataset("csv", csv_annotations)
register_dataset("kinetics", kinetics_annotations, "train", "val")
register_dataset("ssv2", ssv2_annotations, "train", "validation")
register_dataset("ssv1", ssv1_annotations, "train", "validation")
register_dataset("ucf101", ucf101_annotations, "train", "test")
