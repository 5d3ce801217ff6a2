"""``zoo data check ROOT``: find the videos of a dataset that cannot be read.

>>> from zoo.data.check import check_dataset
>>> report = check_dataset('/data/ucf101', kind='ucf101', split='train')
>>> report['bad_files']          # path -> reason
{'/data/ucf101/UCF-101/Drumming/v_Drumming_g03_c04.avi': 'PyAV cannot open it (...)'}

Each video is opened and, by default, three of its frames (first, middle, last) are
decoded, which catches empty, non-video and truncated files; ``full=True`` decodes every
frame.
"""
from __future__ import annotations

import argparse
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .dataset import VideoSample, sample_frame_range
from .factory import create_dataset, list_datasets
from .readers import VideoReader, VideoReadError, list_readers, read_with_fallback
from .shards import add_subparser as add_shard_command

__all__ = ["check_dataset", "add_subparser", "run_check", "detect_splits", "SPLIT_NAMES"]

_CHUNK = 64  # frames decoded at once by a full check


def _check_sample(sample: VideoSample, reader: str, fps: float | None, full: bool) -> str | None:
    """None if the sample reads, else why not."""

    def read(video: VideoReader) -> None:
        frames = sample_frame_range(sample, video)
        if full:
            for start in range(frames.start, frames.stop, _CHUNK):
                video.get_frames(range(start, min(start + _CHUNK, frames.stop)))
        else:
            video.get_frames(sorted({frames.start, (frames.start + frames.stop - 1) // 2, frames.stop - 1}))

    try:
        read_with_fallback(sample.path, read, reader, fps=fps)
    except VideoReadError as e:
        return e.reason
    return None


def check_dataset(
    root: str | os.PathLike | None,
    kind: str = "folder",
    reader: str = "decord",
    split: str | None = None,
    full: bool = False,
    num_workers: int = 4,
    progress: bool = True,
    **kind_specific: Any,
) -> dict[str, Any]:
    """Try to read every video of a dataset.

    Args:
        root: the dataset folder (see :func:`~zoo.data.create_dataset`).
        kind: the dataset kind (``zoo.data.list_datasets()``).
        reader: ``'decord'`` (PyAV retries where decord fails) or ``'pyav'``.
        split: the split to check (default: the kind's evaluation split, if it has splits).
        full: decode every frame instead of the first, middle and last ones.
        num_workers: videos checked in parallel (threads).
        progress: show a progress bar.
        **kind_specific: the kind's own keywords (e.g. ``fold=2`` for UCF-101).

    Returns:
        ``kind``, ``root``, ``split``, ``reader``, ``num_videos``, ``num_classes``, ``num_bad``
        and ``bad_files`` (path -> reason, sorted by path).
    """
    dataset = create_dataset(kind, root, split=split, train=False, reader=reader, **kind_specific)
    samples = dataset.samples

    def check(sample: VideoSample) -> str | None:
        return _check_sample(sample, reader, dataset.fps, full)

    with ThreadPoolExecutor(max(1, num_workers)) as pool:
        reasons = list(tqdm(pool.map(check, samples), total=len(samples), desc=f"checking {dataset.name}",
                            unit="video", disable=not progress))
    bad = {s.path: r for s, r in sorted(zip(samples, reasons), key=lambda sr: sr[0].path) if r is not None}
    return {
        "kind": kind,
        "root": None if root is None else str(root),
        "split": dataset.split,
        "reader": reader,
        "num_videos": len(samples),
        "num_classes": len(dataset.classes),
        "num_bad": len(bad),
        "bad_files": bad,
    }


def _parse_option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


SPLIT_NAMES = ("train", "val", "test")


def detect_splits(root: str | os.PathLike | None, kind: str) -> list[str]:
    """The split folders (``folder``: ``ROOT/train/CLASS/...``) or split files (``csv``: ``ROOT/train.csv``)
    of a dataset root, in the order train, val, test; ``[]`` when it has none (or for other kinds,
    whose parsers know their splits)."""
    if root is None or kind not in ("folder", "csv"):
        return []
    root = Path(root)
    if kind == "folder":
        return [s for s in SPLIT_NAMES if (root / s).is_dir()]
    return [s for s in SPLIT_NAMES if (root / f"{s}.csv").is_file()]


def run_check(args: argparse.Namespace) -> int:
    """Run ``zoo data check`` from parsed arguments; exit code 0 if every video reads, else 1.

    A ``folder`` or ``csv`` root with split folders or files (``train/``, ``val/``, ``test/``, as the
    fine-tuning recipes read them) is checked split by split unless ``--split`` names one.
    """
    splits = [args.split] if args.split else (detect_splits(args.root, args.kind) or [None])
    reports = []
    for split in splits:
        report = check_dataset(
            args.root,
            kind=args.kind,
            reader=args.reader,
            split=split,
            full=args.full,
            num_workers=args.workers,
            progress=not args.no_progress,
            **dict(args.option),
        )
        name = f" [{report['split']}]" if report["split"] else ""
        print(f"{report['kind']}{name}: {report['num_videos']} videos, {report['num_classes']} classes, "
              f"{report['num_bad']} unreadable")
        for path, reason in report["bad_files"].items():
            print(f"  {path}: {reason}")
        reports.append(report)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(reports[0] if len(reports) == 1 else {r["split"]: r for r in reports}, f, indent=1)
    return 1 if any(r["num_bad"] for r in reports) else 0


def add_subparser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``data`` (with its ``check`` command) to the ``zoo`` command's subparsers.

    The ``check`` parser sets ``func=run_check``: call ``args.func(args)`` after parsing.
    """
    data = subparsers.add_parser("data", help="dataset tools")
    commands = data.add_subparsers(dest="data_command", required=True)
    p = commands.add_parser("check", help="list the videos of a dataset that cannot be read",
                            description=__doc__.splitlines()[0])
    p.add_argument("root", nargs="?", default=None, help="dataset folder (omit for moving_digits)")
    p.add_argument("--kind", default="folder", choices=list_datasets(), help="dataset layout (default: folder)")
    p.add_argument("--split", default=None, help="split to check (default: every split folder or file the root has "
                   "(train/, val/, test/), else the kind's evaluation split)")
    p.add_argument("--reader", default="decord", choices=list_readers(), help="video reader (default: decord)")
    p.add_argument("--full", action="store_true", help="decode every frame, not only the first, middle and last")
    p.add_argument("--workers", type=int, default=4, help="videos checked in parallel (default: 4)")
    p.add_argument("--option", "-o", action="append", type=_parse_option, default=[], metavar="KEY=VALUE",
                   help="a keyword of the dataset kind, e.g. -o fold=2 (repeatable)")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the report as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_check)
    add_shard_command(commands)  # zoo data shard (zoo.data.shards)
    return data
