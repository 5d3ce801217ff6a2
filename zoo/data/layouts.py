"""Parsers of the usual dataset layouts: ``parse(root, split, **kind_specific) -> Annotations``.

Kinds and their own keywords (``zoo.data.list_datasets()``):
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
"""
from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from .dataset import VIDEO_EXTENSIONS, Annotations, VideoSample, load_classes

__all__ = [
    "folder_annotations",
    "csv_annotations",
    "kinetics_annotations",
    "ssv2_annotations",
    "ssv1_annotations",
    "ucf101_annotations",
]

_logger = logging.getLogger(__name__)


def _resolve_classes(classes: Sequence[str] | str | os.PathLike | None) -> list[str] | None:
    if classes is None:
        return None
    if isinstance(classes, (str, os.PathLike)):
        return load_classes(classes)
    return list(classes)


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
