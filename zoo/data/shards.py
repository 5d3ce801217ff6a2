"""WebDataset shards of a video dataset: ``zoo data shard ROOT OUT --shard-size 1GB`` and :func:`write_shards`.

A dataset of any layout (``folder``, ``csv``, ``kinetics``, ``ucf101``, ...) is packed into tar shards
of about ``shard_size`` bytes each, one folder per split::

    OUT/train/shard-000000.tar   000000000.mp4  (the video file's bytes as they are, its own extension)
                                 000000000.json {"label": 3, "class": "archery", "index": 0, "path": ..., ...}
                                 000000001.mp4  ...
    OUT/train/manifest.json      classes, counts, and per shard its samples, bytes and sha256

(a layout without splits, ``folder`` or ``csv``, is packed into ``OUT`` itself). ``data.kind: webdataset``
with ``data.root: OUT`` streams them (:mod:`zoo.data.stream`).

Samples are packed in an order shuffled with ``seed`` (folder layouts list videos class by class,
and a stream's shuffle buffer only mixes neighbouring samples); ``shuffle=False`` keeps the layout's
order. Packing is resumable: each finished shard is renamed into place and recorded in the
manifest, so a run started again with the same settings keeps the shards it finds (their sizes
are checked) and goes on from the next sample. Files that cannot be read from disk are skipped and
listed in the manifest's ``skipped``; run ``zoo data check`` first to find the ones that cannot be
decoded.

>>> manifest = shard_dataset('/data/k400', '/shards/k400', kind='kinetics', split='train', shard_size='1GB')
>>> manifest['num_samples'], len(manifest['shards'])
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .dataset import VIDEO_EXTENSIONS, VideoSample
from .defaults import kind_defaults

__all__ = ["MANIFEST", "FORMAT", "parse_size", "write_shards", "shard_dataset", "read_manifest", "add_subparser"]

MANIFEST = "manifest.json"
FORMAT = "zoo-webdataset/1"
_TAR_BLOCK = 512
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9, "t": 10**12,
          "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_size(text: str | int) -> int:
    """Bytes of a size such as ``'1GB'`` (10^9), ``'500MB'``, ``'2GiB'`` (2^31) or ``1000000``."""
    if isinstance(text, int):
        value = text
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
        if not m or m.group(2).lower() not in _UNITS:
            raise ValueError(f"a size must be a number with an optional unit (KB, MB, GB, KiB, MiB, GiB); got {text!r}")
        value = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if value < 1:
        raise ValueError(f"a size must be positive; got {text!r}")
    return value


def _member_bytes(size: int) -> int:
    """Bytes a member of ``size`` bytes takes in a tar file: its header and its data padded to 512-byte blocks."""
    return _TAR_BLOCK + -(-size // _TAR_BLOCK) * _TAR_BLOCK


def _tar_bytes(members: int) -> int:
    """Bytes of a tar file whose members take ``members`` bytes: with its end blocks, padded to whole records."""
    import tarfile

    return -(-(members + 2 * _TAR_BLOCK) // tarfile.RECORDSIZE) * tarfile.RECORDSIZE


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    tmp.write_text(json.dumps(payload, indent=1) + "\n")
    os.replace(tmp, path)


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """A shard folder's manifest (``path`` is the folder or the ``manifest.json`` itself)."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{path} is not a zoo shard manifest (format {manifest.get('format')!r}, expected {FORMAT!r})")
    return manifest


def write_shards(
    samples: Sequence[VideoSample],
    classes: Sequence[str],
    out: str | os.PathLike,
    shard_size: str | int = "1GB",
    *,
    root: str | os.PathLike | None = None,
    shuffle: bool = True,
    seed: int = 0,
    prefix: str = "shard",
    source: dict[str, Any] | None = None,
    defaults: dict[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Pack ``samples`` into WebDataset tar shards in ``out`` and write its ``manifest.json``.

    Args:
        samples: the videos (files; frame folders cannot be packed).
        classes: class names (``samples[i].label`` indexes them).
        out: the shard folder (created).
        shard_size: the most bytes a shard file takes (``'1GB'``, ``'500MB'``, bytes), unless a single video
            needs more: it then gets a shard of its own.
        root: the dataset folder; each sample's ``path`` in its JSON is relative to it.
        shuffle: pack in an order shuffled with ``seed`` (else the order of ``samples``).
        seed: the packing order's seed.
        prefix: shard file names, ``<prefix>-000000.tar``.
        source: what the samples come from (kind, root, split), recorded in the manifest.
        defaults: the source kind's defaults (``hflip``, ...), recorded in the manifest for the stream.
        progress: show a progress bar.

    Returns:
        The manifest: ``classes``, ``num_samples``, ``shards`` (``name``, ``samples``, ``bytes``, ``sha256``),
        ``skipped`` (``path``, ``reason``), ``complete``.
    """
    from webdataset import TarWriter

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    limit = parse_size(shard_size)
    order = list(range(len(samples)))
    if shuffle:
        random.Random(seed).shuffle(order)
    settings = {"format": FORMAT, "source": source or {}, "classes": list(classes), "shard_size": limit,
                "shuffle": shuffle, "seed": seed, "prefix": prefix, "total": len(samples)}
    manifest = {**settings, "defaults": defaults or {}, "num_samples": 0, "shards": [], "skipped": [],
                "next": 0, "complete": False}
    path = out / MANIFEST
    if path.is_file():
        old = json.loads(path.read_text())
        if any(old.get(k) != v for k, v in settings.items()):
            changed = sorted(k for k, v in settings.items() if old.get(k) != v)
            raise ValueError(f"{out} holds shards written with other settings ({', '.join(changed)} differ); "
                             "choose another folder or remove it")
        manifest = old
        kept = []
        for shard in manifest["shards"]:  # keep the finished shards that are still there, whole
            file = out / shard["name"]
            if not file.is_file() or file.stat().st_size != shard["bytes"]:
                break
            kept.append(shard)
        if len(kept) < len(manifest["shards"]):
            manifest["shards"] = kept
            manifest["next"] = kept[-1]["end"] if kept else 0
            manifest["skipped"] = [s for s in manifest["skipped"] if s["position"] < manifest["next"]]
            manifest["complete"] = False
        manifest["num_samples"] = sum(s["samples"] for s in manifest["shards"])
        if manifest["complete"]:
            return manifest
    for stale in out.glob(f"{prefix}-*.tar.partial"):
        stale.unlink()

    bar = tqdm(total=len(order), initial=manifest["next"], unit="video", desc=f"packing {out}", disable=not progress)
    writer, current, shard_bytes = None, None, 0

    def finish() -> None:
        nonlocal writer, current
        writer.close()
        partial = out / (current["name"] + ".partial")
        current["bytes"] = partial.stat().st_size
        current["sha256"] = _sha256(partial)
        os.replace(partial, out / current["name"])
        manifest["shards"].append(current)
        manifest["num_samples"] += current["samples"]
        manifest["next"] = current["end"]
        _write_json(path, manifest)
        writer, current = None, None

    try:
        for position in range(manifest["next"], len(order)):
            i = order[position]
            sample = samples[i]
            ext = os.path.splitext(sample.path)[1].lower()
            try:
                if os.path.isdir(sample.path):
                    raise OSError("a frame folder (only video files can be packed)")
                if ext not in VIDEO_EXTENSIONS:
                    raise OSError(f"not a video file extension ({', '.join(VIDEO_EXTENSIONS)})")
                data = Path(sample.path).read_bytes()
                if not data:
                    raise OSError("empty file")
            except OSError as e:
                manifest["skipped"].append({"position": position, "path": sample.path,
                                            "reason": getattr(e, "strerror", None) or str(e)})
                bar.update()
                continue
            rel = os.path.relpath(sample.path, root) if root is not None else sample.path
            meta = {"label": sample.label, "class": classes[sample.label], "index": i, "path": rel,
                    "start": sample.start, "end": sample.end}
            meta_bytes = json.dumps(meta).encode()
            size = _member_bytes(len(data)) + _member_bytes(len(meta_bytes))
            if writer is not None and _tar_bytes(shard_bytes + size) > limit:
                finish()
            if writer is None:
                name = f"{prefix}-{len(manifest['shards']):06d}.tar"
                current = {"name": name, "samples": 0, "start": position, "end": position}
                writer = TarWriter(io.FileIO(out / (name + ".partial"), "w"), encoder=False, mtime=0, user="zoo",
                                   group="zoo")
                shard_bytes = 0
            writer.write({"__key__": f"{i:09d}", ext[1:]: data, "json": meta_bytes})
            shard_bytes += size
            current["samples"] += 1
            current["end"] = position + 1
            bar.update()
        if writer is not None:
            finish()
    finally:
        bar.close()
        if writer is not None:  # interrupted: the partial shard is written again next time
            writer.close()
    manifest["next"] = len(order)
    manifest["complete"] = True
    _write_json(path, manifest)
    return manifest


def shard_dataset(
    root: str | os.PathLike | None,
    out: str | os.PathLike,
    kind: str = "folder",
    split: str | None = None,
    shard_size: str | int = "1GB",
    *,
    shuffle: bool = True,
    seed: int = 0,
    progress: bool = True,
    **kind_specific: Any,
) -> dict[str, Any]:
    """Pack one split of a dataset (any :func:`~zoo.data.create_dataset` kind) into ``out`` (see the module
    docstring); ``split=None`` packs a layout without splits. Returns the manifest."""
    from .factory import create_dataset

    dataset = create_dataset(kind, root, split=split, train=False, **kind_specific)
    defaults = {"hflip": kind_defaults(kind).hflip}
    return write_shards(
        dataset.samples, dataset.classes, out, shard_size, root=root, shuffle=shuffle, seed=seed,
        source={"kind": kind, "root": None if root is None else str(root), "split": dataset.split},
        defaults=defaults, progress=progress,
    )


def _splits(root: str | None, kind: str) -> list[str | None]:
    """The splits ``zoo data shard`` packs by default: a folder/csv root's split folders or files, else the
    kind's training and evaluation splits, else none."""
    from .check import detect_splits
    from .factory import default_splits

    splits = detect_splits(root, kind) or [s for s in default_splits(kind) if s]
    return list(dict.fromkeys(splits)) or [None]


def _option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def run_shard(args: argparse.Namespace) -> int:
    """Run ``zoo data shard`` from parsed arguments."""
    options = dict(args.option)
    splits = args.split or _splits(args.root, args.kind)
    for split in splits:
        out = Path(args.out) / split if split else Path(args.out)
        manifest = shard_dataset(args.root, out, kind=args.kind, split=split, shard_size=args.shard_size,
                                 shuffle=not args.no_shuffle, seed=args.seed, progress=not args.no_progress,
                                 **options)
        print(f"{out}: {manifest['num_samples']} videos in {len(manifest['shards'])} shards, "
              f"{len(manifest['classes'])} classes, {len(manifest['skipped'])} skipped")
        for s in manifest["skipped"]:
            print(f"  skipped {s['path']}: {s['reason']}")
    return 0


def add_subparser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``shard`` to the ``zoo data`` commands (its parser sets ``func=run_shard``)."""
    from .factory import list_datasets

    p = commands.add_parser("shard", help="pack a dataset into WebDataset tar shards",
                            description=__doc__.splitlines()[0])
    p.add_argument("root", nargs="?", default=None, help="dataset folder (omit for moving_digits)")
    p.add_argument("out", help="output folder (one subfolder per split)")
    p.add_argument("--kind", default="folder", choices=[k for k in list_datasets() if k != "webdataset"],
                   help="dataset layout (default: folder)")
    p.add_argument("--split", action="append", default=None,
                   help="split to pack (repeatable; default: the root's split folders or files (train/, val/, "
                   "test/), else the kind's training and evaluation splits)")
    p.add_argument("--shard-size", default="1GB", help="about this many bytes per shard (default: 1GB)")
    p.add_argument("--seed", type=int, default=0, help="seed of the packing order (default: 0)")
    p.add_argument("--no-shuffle", action="store_true", help="pack in the layout's order")
    p.add_argument("--option", "-o", action="append", type=_option, default=[], metavar="KEY=VALUE",
                   help="a keyword of the dataset kind, e.g. -o fold=2 (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_shard)
    return p
