"""Streaming WebDataset shards (``data.kind: webdataset``): clips decoded in DataLoader workers, under DDP.

The shards are those ``zoo data shard`` writes (:mod:`zoo.data.shards`): ``ROOT/<split>/manifest.json``
(or ``ROOT/manifest.json``) names them, with their sample counts. ``ROOT`` is a folder or any URL
webdataset opens (``https://...``, ``pipe:...``, ...). Shards without a manifest are given as a
webdataset URL spec: ``create_dataset('webdataset', shards='pipe:curl -s https://host/train-{000000..000099}.tar',
classes=[...], num_samples=...)``.

How a stream is read (the rules the training loop relies on):

- **Disjoint shards.** Process ``g = rank * num_workers + worker`` of ``G = world_size * num_workers``
  reads shards ``order[g::G]`` of a shard order drawn from ``(seed, epoch, round)``; with fewer shards
  than ``G`` every reader goes through all shards and keeps every ``G``-th sample. Have at least
  ``G`` shards (a multiple of ``G``, of similar sizes, for an even split).
- **Fixed-length epochs.** Training: every rank yields ``(num_samples // world_size) // batch_size``
  batches an epoch, whatever its shards hold, so every rank runs the same number of steps; a
  reader whose shards run out before its share starts another round (a new shard order).
  Evaluation reads each sample once (one round, the last batch partial).
- **Shuffling.** Training samples pass a shuffle buffer (``shuffle_buffer`` samples, undecoded
  bytes) per reader; each clip's random choices (position, crop, flip) come from a generator seeded
  with ``(seed, epoch, rank, worker, position in the reader's stream)``.
- **Exact resume.** Each batch says how many samples its reader has drawn from its stream; the
  loader (``zoo.train.loaders.StreamLoader``) keeps that per worker, the checkpoint saves it, and a
  resumed run's readers skip that many samples (reading, not decoding them) and go on with the
  same buffer, order and seeds.
- **Corrupt members.** A sample whose video does not decode, whose JSON is missing or broken, or
  a shard that is truncated, is skipped, logged and counted (:attr:`WebDatasetStream.bad_files`,
  as for a corrupt file); ``strict=True`` raises instead.

Videos are decoded from a temporary file (in ``/dev/shm`` where there is one) by the dataset's
reader, with its fallbacks and decode-time resizing.
"""
from __future__ import annotations

import json
import logging
import os
import random
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import urlparse

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from .collate import video_collate
from .dataset import VIDEO_EXTENSIONS, BadFileLog, VideoSample, read_sample_clips
from .defaults import kind_defaults
from .readers import VideoReadError, list_readers
from .sampling import ClipSampler
from .shards import FORMAT, MANIFEST
from .transforms import create_video_transform
from .transforms import decode_short_side as decode_short_side_of

__all__ = ["WebDatasetStream", "resolve_shards", "create_stream", "STREAM_STATE_KEY"]

_logger = logging.getLogger(__name__)

STREAM_STATE_KEY = "_stream"
"""The batch key carrying ``(worker, drawn, delivered)``: the reader's position after the batch."""

_VIDEO_EXTS = tuple(e[1:] for e in VIDEO_EXTENSIONS)


def _is_url(text: str) -> bool:
    return text.startswith("pipe:") or bool(urlparse(text).scheme and len(urlparse(text).scheme) > 1)


def _join(base: str, name: str) -> str:
    return name if _is_url(name) or os.path.isabs(name) else f"{base.rstrip('/')}/{name}"


def _read_text(url: str) -> str:
    if not _is_url(url):
        with open(url) as f:
            return f.read()
    from webdataset import gopen

    with gopen(url, "rb") as f:
        return f.read().decode()


def resolve_shards(
    root: str | os.PathLike | None, split: str | None, shards: str | Sequence[str] | None = None,
    manifest: str | None = None,
) -> dict[str, Any]:
    """The shard URLs of a split, with what the manifest says about them.

    Args:
        root: the folder (or URL) ``zoo data shard`` wrote: ``root/split/manifest.json``, else ``root/manifest.json``.
        split: the split (a sub-folder of ``root``), or None.
        shards: instead of ``root``, a webdataset URL spec (brace patterns, ``::``-separated) or a list of URLs.
        manifest: with ``shards``, a manifest to read the classes and counts from.

    Returns:
        ``urls`` and, from a manifest, ``classes``, ``num_samples``, ``counts`` (per shard), ``defaults``.
    """
    if shards is not None:
        from webdataset.shardlists import expand_urls

        urls = expand_urls(shards) if isinstance(shards, str) else [str(u) for u in shards]
        out: dict[str, Any] = {"urls": urls}
        if manifest is not None:
            m = json.loads(_read_text(manifest))
            out.update(classes=m["classes"], num_samples=m["num_samples"], defaults=m.get("defaults", {}))
        return out
    if root is None:
        raise ValueError("webdataset: give data.root (the folder zoo data shard wrote) or options.shards")
    root = str(root)
    candidates = [_join(root, f"{split}/{MANIFEST}")] if split else []
    candidates.append(_join(root, MANIFEST))
    text = where = None
    for candidate in candidates:
        if _is_url(candidate) or os.path.isfile(candidate):
            try:
                text, where = _read_text(candidate), candidate
                break
            except OSError:
                continue
    if text is None:
        raise FileNotFoundError(f"webdataset: no manifest at {' or '.join(candidates)} (write shards with "
                                "`zoo data shard ROOT OUT`, or give options.shards)")
    m = json.loads(text)
    if m.get("format") != FORMAT:
        raise ValueError(f"webdataset: {where} is not a zoo shard manifest (format {m.get('format')!r})")
    if not m.get("complete"):
        _logger.warning("webdataset: %s is incomplete (packing was interrupted); reading the shards it lists", where)
    base = where.rsplit("/", 1)[0] if "/" in where else "."
    return {"urls": [_join(base, s["name"]) for s in m["shards"]], "counts": [s["samples"] for s in m["shards"]],
            "classes": m["classes"], "num_samples": m["num_samples"], "defaults": m.get("defaults", {})}


def _tmp_dir() -> str | None:
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


class WebDatasetStream(IterableDataset):
    """Clips streamed from WebDataset shards (see the module docstring for the rules).

    Args:
        urls: the shards.
        classes: class names (the samples' ``label`` indexes them).
        num_samples: samples in all shards (the epoch length of training comes from it).
        num_frames, frame_stride, train, reader, strict, transform, sampling, n_clips, temporal_jitter,
            pad_mode, min_frames, max_retries: as for :class:`~zoo.data.dataset.VideoDataset`.
        decode_short_side: the short side readers shrink frames to while decoding (None: full size).
        shuffle_buffer: training samples (undecoded) each reader shuffles among (0 or 1: no shuffling).
        batch_size: items per batch (the stream yields collated batches; the loader sets it).
        seed: the run's seed (the loader sets it per stage).
        name, split: for messages.
    """

    def __init__(
        self,
        urls: Sequence[str],
        classes: Sequence[str],
        num_samples: int | None = None,
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
        max_retries: int = 10,
        decode_short_side: int | None = None,
        shuffle_buffer: int = 128,
        batch_size: int = 1,
        seed: int = 0,
        name: str | None = None,
        split: str | None = None,
    ):
        if reader not in list_readers():
            raise ValueError(f"unknown reader {reader!r}; choose one of {list_readers()}")
        if not urls:
            raise ValueError("a stream needs at least one shard")
        if train and not num_samples:
            raise ValueError("a training stream needs num_samples (the manifest's count, or options.num_samples)")
        self.urls = list(urls)
        self.classes = list(classes)
        self.num_samples = num_samples
        self.train = train
        self.reader = reader
        self.strict = strict
        self.transform = transform if transform is not None else create_video_transform(train)
        self.sampler = ClipSampler(num_frames, frame_stride, sampling, train, n_clips, temporal_jitter, pad_mode)
        self.min_frames = min_frames
        self.max_retries = max_retries
        self.decode_short_side = decode_short_side
        self.shuffle_buffer = shuffle_buffer if train else 0
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0
        self.rank, self.world_size = 0, 1
        self.resume: dict[int, dict[str, int]] = {}
        self.worker_offset = 0
        self.name = name or type(self).__name__
        self.split = split
        self._bad_log = BadFileLog()

    def __len__(self) -> int:
        """Samples in all shards (0 when unknown)."""
        return self.num_samples or 0

    # -- what one reader (rank, worker) reads ------------------------------------------------------

    def batches_per_rank(self) -> int:
        """Training batches every rank yields an epoch: ``(num_samples // world_size) // batch_size``."""
        return (self.num_samples // self.world_size) // self.batch_size

    def worker_quota(self, worker: int, num_workers: int) -> int:
        """Training batches worker ``worker`` of ``num_workers`` yields an epoch: the DataLoader takes batch
        ``b`` of a rank from worker ``b % num_workers``."""
        total = self.batches_per_rank()
        return max(0, (total - worker + num_workers - 1) // num_workers)

    def _shard_order(self, rnd: int) -> list[int]:
        order = list(range(len(self.urls)))
        if self.train:
            random.Random(f"{self.seed}/{self.epoch}/{rnd}").shuffle(order)
        return order

    def round_samples(self, rnd: int, reader: int, readers: int) -> Iterator[dict[str, Any]]:
        """Undecoded samples of reader ``reader`` of ``readers`` (rank-major) in round ``rnd``: its shards of
        that round's shard order (every ``readers``-th sample of all shards, with fewer shards than readers)."""
        order = self._shard_order(rnd)
        if len(order) >= readers:
            mine, keep = order[reader::readers], None
        else:
            mine, keep = order, reader
        position = 0
        for shard in mine:
            for sample in self._read_shard(self.urls[shard]):
                if keep is None or position % readers == keep:
                    yield sample
                position += 1

    def samples(self, reader: int, readers: int, rng: random.Random) -> Iterator[dict[str, Any]]:
        """The samples reader ``reader`` draws, in order: round after round when training (each round through
        the shuffle buffer, drained at its end, so no sample comes twice within a round), one round when testing.

        Raises:
            RuntimeError: a training round gave this reader no sample (fewer samples than readers).
        """
        rnd = 0
        while True:
            count = 0
            for sample in self._shuffled(self.round_samples(rnd, reader, readers), rng):
                count += 1
                yield sample
            if not self.train:
                return
            if count == 0:
                raise RuntimeError(f"{self.name}: reader {reader} of {readers} (rank x DataLoader worker) got no "
                                   f"sample from the {len(self.urls)} shards; use fewer data.num_workers or more data")
            rnd += 1

    def _read_shard(self, url: str) -> Iterator[dict[str, Any]]:
        """The samples of one shard (members grouped by key); a shard that cannot be opened or read to its
        end is recorded as bad from where it breaks."""
        count = 0
        try:
            if _is_url(url):
                from webdataset import gopen

                stream = gopen(url, "rb")
            else:
                stream = open(url, "rb")
        except Exception as e:  # any opener's failure: a missing file, a failed pipe
            self._on_bad(url, f"cannot open the shard ({type(e).__name__}: {e})")
            return
        current: dict[str, Any] | None = None
        try:
            with stream, tarfile.open(fileobj=stream, mode="r|*") as tar:
                for info in tar:
                    if not info.isreg():
                        continue
                    base = os.path.basename(info.name)
                    key, dot, ext = base.partition(".")
                    if not dot:
                        continue
                    key = os.path.join(os.path.dirname(info.name), key)
                    data = tar.extractfile(info).read()
                    if current is not None and current["__key__"] != key:
                        count += 1
                        yield current
                        current = None
                    if current is None:
                        current = {"__key__": key, "__url__": url}
                    current[ext.lower()] = data
                    tar.members = []  # streaming: keep no member list
        except (tarfile.TarError, OSError, EOFError, ValueError) as e:
            where = f"after {count} samples" if count else "at its start"
            self._on_bad(url, f"the shard is truncated or corrupt {where} ({type(e).__name__}: {e})")
            return
        if current is not None:
            yield current

    def _shuffled(self, samples: Iterator[dict[str, Any]], rng: random.Random) -> Iterator[dict[str, Any]]:
        if self.shuffle_buffer <= 1:
            yield from samples
            return
        buffer: list[dict[str, Any]] = []
        for sample in samples:
            buffer.append(sample)
            if len(buffer) >= self.shuffle_buffer:
                k = rng.randrange(len(buffer))
                buffer[k], buffer[-1] = buffer[-1], buffer[k]
                yield buffer.pop()
        while buffer:
            k = rng.randrange(len(buffer))
            buffer[k], buffer[-1] = buffer[-1], buffer[k]
            yield buffer.pop()

    def _decode(self, sample: dict[str, Any], seed: int) -> dict[str, Any] | None:
        """The item of one raw sample, or None (recorded as bad) when it cannot be read."""
        where = f"{sample['__url__']}:{sample['__key__']}"
        try:
            meta = json.loads(sample["json"])
            label = int(meta["label"])
        except (KeyError, TypeError, ValueError) as e:
            return self._on_bad(where, f"no readable JSON with a label ({type(e).__name__}: {e})")
        if not 0 <= label < len(self.classes):
            return self._on_bad(where, f"label {label} outside [0, {len(self.classes)})")
        ext = next((e for e in _VIDEO_EXTS if e in sample), None)
        if ext is None:
            return self._on_bad(where, f"no video member (.{', .'.join(_VIDEO_EXTS)})")
        with tempfile.NamedTemporaryFile(suffix=f".{ext}", dir=_tmp_dir()) as f:
            f.write(sample[ext])
            f.flush()
            video = VideoSample(f.name, label, meta.get("start"), meta.get("end"))
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                try:
                    clips = read_sample_clips(video, self.sampler, self.reader, self.min_frames, None,
                                              self.decode_short_side)
                except VideoReadError as e:
                    return self._on_bad(where, e.reason)
                views = [self.transform(clip) for clip in clips]
        if len(views) == 1 and views[0].ndim == 4:
            out = views[0]
        else:
            out = torch.cat([v if v.ndim == 5 else v.unsqueeze(0) for v in views])
        index = meta.get("index")
        return {"video": out, "label": label, "index": int(index) if index is not None else -1,
                "path": meta.get("path") or where}

    def _on_bad(self, where: str, reason: str) -> None:
        if self.strict:
            raise VideoReadError(reason, where)
        self._bad_log.record(where, reason)
        _logger.warning("%s: skipping %s: %s", self.name, where, reason)
        return None

    def _item_seed(self, worker: int, position: int) -> int:
        seq = np.random.SeedSequence([self.seed, self.epoch, self.rank, worker, position])
        return int(seq.generate_state(1)[0])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Collated batches (:func:`~zoo.data.collate.video_collate`) of this process's reader, each with
        ``STREAM_STATE_KEY``: ``(worker, samples drawn, batches delivered)`` after it."""
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        # Resuming after b batches: the DataLoader asks its workers in turn from worker 0, and the next batch is
        # reader b % num_workers's: DataLoader worker i plays reader (i + offset) % num_workers.
        worker = (worker + self.worker_offset) % num_workers
        reader, readers = self.rank * num_workers + worker, self.world_size * num_workers
        quota = self.worker_quota(worker, num_workers) if self.train else None
        state = self.resume.get(worker, {"drawn": 0, "delivered": 0})
        drawn, delivered = int(state["drawn"]), int(state["delivered"])
        if quota is not None and delivered >= quota:
            return
        rng = random.Random(f"{self.seed}/{self.epoch}/{self.rank}/{worker}")
        samples = self.samples(reader, readers, rng)
        for _ in range(drawn):  # resuming: the samples drawn before, read again but not decoded
            if next(samples, None) is None:
                return
        batch: list[dict[str, Any]] = []
        bad_in_a_row = 0
        for sample in samples:
            position, drawn = drawn, drawn + 1
            item = self._decode(sample, self._item_seed(worker, position))
            if item is None:
                bad_in_a_row += 1
                if bad_in_a_row > self.max_retries:
                    raise RuntimeError(f"{self.name}: {bad_in_a_row} samples in a row could not be read with reader "
                                       f"{self.reader!r}; is the reader working? (see the warnings above)")
                continue
            bad_in_a_row = 0
            batch.append(item)
            if len(batch) == self.batch_size:
                delivered += 1
                yield {**video_collate(batch), STREAM_STATE_KEY: (worker, drawn, delivered)}
                batch = []
                if quota is not None and delivered >= quota:
                    return
        if batch and quota is None:
            yield {**video_collate(batch), STREAM_STATE_KEY: (worker, drawn, delivered + 1)}

    def first_item(self) -> dict[str, Any]:
        """The first readable item of the first shards (decoded here, in this process)."""
        for url in self.urls:
            for sample in self._read_shard(url):
                item = self._decode(sample, self._item_seed(0, 0))
                if item is not None:
                    return item
        raise RuntimeError(f"{self.name}: no sample of its {len(self.urls)} shards could be read")

    # -- bad samples, as VideoDataset reports them ----------------------------------------------

    @property
    def bad_files(self) -> dict[str, str]:
        """Unreadable samples (``shard:key``) and shards met since the last reset, by any process: -> reason."""
        return self._bad_log.read()

    def report_bad_files(self, reset: bool = False, log: bool = True) -> dict[str, str]:
        """Log (with ``log``) the unreadable samples met since the last reset (call it at the end of an epoch);
        returns them (``shard:key`` or shard -> reason), and forgets them with ``reset``."""
        bad = self.bad_files
        if bad and log:
            lines = "\n".join(f"  {path}: {reason}" for path, reason in sorted(bad.items()))
            _logger.warning("%s: %d samples or shards could not be read and were skipped:\n%s", self.name, len(bad),
                            lines)
        if reset:
            self.reset_bad_files()
        return bad

    def reset_bad_files(self) -> None:
        self._bad_log.clear()

    def __repr__(self) -> str:
        return (f"{self.name}(shards={len(self.urls)}, samples={self.num_samples}, classes={len(self.classes)}, "
                f"train={self.train}, reader={self.reader!r}, {self.sampler})")


def create_stream(
    root: str | os.PathLike | None,
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
    decode_short_side: int | str | None = None,
    shards: str | Sequence[str] | None = None,
    manifest: str | None = None,
    classes: Sequence[str] | None = None,
    num_samples: int | None = None,
    shuffle_buffer: int = 128,
) -> WebDatasetStream:
    """``create_dataset('webdataset', root, split, ...)``: a :class:`WebDatasetStream` of a split's shards.

    The keywords are :func:`~zoo.data.create_dataset`'s, plus the kind's own: ``shards`` (a webdataset URL
    spec, instead of ``root``), ``manifest``, ``classes`` and ``num_samples`` (where no manifest gives them)
    and ``shuffle_buffer``. ``hflip`` defaults to the packed kind's (the manifest's ``defaults``).
    """
    found = resolve_shards(root, split, shards, manifest)
    names = list(classes) if classes is not None else found.get("classes")
    if names is None:
        raise ValueError("webdataset: shards without a manifest need options.classes")
    count = num_samples if num_samples is not None else found.get("num_samples")
    defaults = found.get("defaults") or {}
    if transform is None:
        transform = create_video_transform(
            train, input_size=input_size or 224, n_crops=n_crops,
            hflip=defaults.get("hflip", kind_defaults("webdataset").hflip) if hflip is None else hflip,
        )
    if decode_short_side == "auto":
        decode_short_side = decode_short_side_of(transform)
    return WebDatasetStream(
        found["urls"], names, count, num_frames=num_frames, frame_stride=frame_stride, train=train, reader=reader,
        strict=strict, transform=transform, sampling=sampling, n_clips=n_clips, temporal_jitter=temporal_jitter,
        pad_mode=pad_mode, min_frames=min_frames, decode_short_side=decode_short_side,
        shuffle_buffer=shuffle_buffer, name=f"webdataset[{split}]" if split else "webdataset", split=split,
    )
