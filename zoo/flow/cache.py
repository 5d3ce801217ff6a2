"""A dataset's optical flow, computed once, quantised, stored on disk and served to samplers and losses.

>>> cache = FlowCache(provider='farneback', gap=2, adjacent=8, short_side=128)
>>> cache.build(train_set)             # progress bar; resumes where an interrupted build stopped
>>> record = cache.record(train_set.samples[0])
>>> record.load(record.flow_index(frames))   # float32 (n, 2, h, w) pixels, at the stored resolution

Which flow: for a video of ``n`` frames (its annotated range), flow frame ``i`` goes from frame
``i * gap`` to frame ``i * gap + adjacent``, for every ``i * gap < n - adjacent`` (the official MSCL
code's ``MatchFlow``: gap 2, adjacent 8; MCL's TV-L1 flow of consecutive frames is gap 1, adjacent 1).
A video with at most ``adjacent`` frames gets one flow frame, from its first frame to its last. Frames
are resized to ``short_side`` (their short side, in pixels; None keeps them) before the flow is
computed, and the flow stays at that resolution, in its pixels.

Storage: each video's flow is quantised to uint8 as the official MCL code does (each component
clipped to ``[-bound, bound]``, bound 20, mapped onto 0..255, :func:`zoo.flow.motion.quantize_flow`)
and written as one ``(N, 2, h, w)`` uint8 ``.npy`` file, read back memory-mapped. The official code
stores JPEG frames in LMDB (lossy); ours is lossless and costs ``2 h w`` bytes per flow frame. Next to
it a ``.json`` index holds the video's frame count and per-flow-frame scores: ``mds`` (MSCL's motion
differential score) and ``motion`` (the mean of MCL's motion map). The index is written last, each
file atomically, so a build that stops (Ctrl-C, a crash, a preempted job) resumes where it was and
never serves half a video. ``cache.json`` at the root records the configuration; a root holding flow
of another configuration is refused. The default root is ``$ZOO_HOME/flow/<hash of the configuration>``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision.transforms.v2 import functional as TF
from tqdm.auto import tqdm

from ..data import zoo_home
from ..data.dataset import VideoSample, sample_frame_range
from ..data.readers import VideoReadError, read_with_fallback
from .motion import FLOW_BOUND, dequantize_flow, mds_frame_scores, motion_maps, quantize_flow
from .providers import FlowProvider, create_flow_provider, list_flow_providers

__all__ = ["FlowCache", "FlowRecord", "flow_starts", "FLOW_SETTINGS", "check_flow_cfg", "flow_cache_from_cfg"]

_logger = logging.getLogger(__name__)
_VERSION = 1  # bump when what is stored changes, so that old caches are not reused
# Provider arguments that change how fast the flow is computed, not what it is (left out of the hash).
_RUNTIME_ARGS = ("device", "batch_size")


def flow_starts(num_frames: int, gap: int, adjacent: int) -> np.ndarray:
    """First frames of the flow frames of a ``num_frames``-frame video: ``range(0, num_frames - adjacent, gap)``,
    or ``[0]`` for a video with at most ``adjacent`` frames."""
    return np.arange(0, max(num_frames - adjacent, 1), gap, dtype=np.int64)


@dataclass(frozen=True)
class FlowRecord:
    """One video's cached flow.

    Attributes:
        path: the video.
        num_frames: frames in the video's annotated range when the flow was computed.
        gap, adjacent: flow frame ``i`` goes from frame ``i * gap`` to ``i * gap + adjacent``.
        height, width: the stored flow's size, in pixels (its vectors are in these pixels).
        bound: the quantisation bound, in pixels.
        mds: MSCL's motion-differential score of each flow frame, ``(N,)``.
        motion: the mean of MCL's motion map of each flow frame, ``(N,)``.
        file: the ``.npy`` file of the quantised ``(N, 2, h, w)`` flow.
    """

    path: str
    num_frames: int
    gap: int
    adjacent: int
    height: int
    width: int
    bound: float
    mds: np.ndarray
    motion: np.ndarray
    file: Path

    @property
    def num_flows(self) -> int:
        return len(self.mds)

    def flow_index(self, frames: np.ndarray | Sequence[int]) -> np.ndarray:
        """The flow frame nearest to each frame index (``round(frame / gap)``, within ``[0, N)``)."""
        frames = np.asarray(frames, dtype=np.float64)
        return np.clip(np.floor(frames / self.gap + 0.5), 0, self.num_flows - 1).astype(np.int64)

    def frame_of(self, flow_index: np.ndarray | int) -> np.ndarray:
        """The first frame of flow frame(s) ``flow_index``."""
        return np.asarray(flow_index, dtype=np.int64) * self.gap

    def load(self, flow_index: np.ndarray | Sequence[int] | None = None) -> torch.Tensor:
        """The flow frames ``flow_index`` (default: all), dequantised: float32 ``(n, 2, h, w)`` in pixels."""
        data = np.load(self.file, mmap_mode="r")
        chosen = data if flow_index is None else data[np.asarray(flow_index, dtype=np.int64)]
        return dequantize_flow(torch.from_numpy(np.ascontiguousarray(chosen)), self.bound)


def _atomic_write(path: Path, write: Any) -> None:
    """Write through ``write(file_object)`` to a temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_value(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    return str(value)


class FlowCache:
    """Optical flow of videos, computed once with a provider and kept on disk (see the module docstring).

    Args:
        root: the cache folder (default ``$ZOO_HOME/flow/<configuration hash>``).
        provider: a provider name (``zoo.flow.list_flow_providers()``) or a built
            :class:`~zoo.flow.providers.FlowProvider`. A name is built only when some flow must
            be computed, so a complete cache needs neither RAFT's weights nor a GPU.
        provider_kwargs: keyword arguments of a provider name (e.g. ``weights``, ``device``).
        gap: frames between the first frames of consecutive flow frames.
        adjacent: frames between the two frames of a flow frame.
        short_side: frames are resized to this short side before the flow is computed (None: kept).
        bound: quantisation bound, in pixels (the official 20).
        attention_block: MSCL's attention pooling block, in pixels of the stored flow (the official 28).
        reader: video reader for computing the flow (``'decord'`` or ``'pyav'``).
        chunk: flow frames computed per provider call (bounds the decoded frames in memory).
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        provider: str | FlowProvider = "farneback",
        provider_kwargs: dict[str, Any] | None = None,
        gap: int = 1,
        adjacent: int = 1,
        short_side: int | None = None,
        bound: float = FLOW_BOUND,
        attention_block: int = 28,
        reader: str = "decord",
        chunk: int = 32,
    ):
        if gap < 1 or adjacent < 1 or chunk < 1:
            raise ValueError(f"gap, adjacent and chunk must be >= 1, got {gap}, {adjacent}, {chunk}")
        if short_side is not None and short_side < 8:
            raise ValueError(f"short_side must be at least 8 pixels (or None), got {short_side}")
        if bound <= 0:
            raise ValueError(f"bound must be positive, got {bound}")
        provider_kwargs = dict(provider_kwargs or {})
        if isinstance(provider, FlowProvider):
            if provider_kwargs:
                raise ValueError("provider_kwargs apply to a provider name, not to a built provider")
            provider_config = provider.config()
            self._provider: FlowProvider | None = provider
        else:
            provider_config = {"provider": provider, **{k: _json_value(v) for k, v in sorted(provider_kwargs.items())
                                                        if k not in _RUNTIME_ARGS}}
            self._provider = None
            if provider not in list_flow_providers():
                raise ValueError(f"unknown flow provider {provider!r}; choose one of {list_flow_providers()}")
        self.provider_name = provider_config["provider"]
        self.provider_kwargs = provider_kwargs
        self.config = {"version": _VERSION, **provider_config, "gap": gap, "adjacent": adjacent,
                       "short_side": short_side, "bound": float(bound), "attention_block": attention_block}
        digest = hashlib.sha1(json.dumps(self.config, sort_keys=True).encode()).hexdigest()[:12]
        self.root = Path(root) if root is not None else zoo_home() / "flow" / f"{self.provider_name}-{digest}"
        self.gap, self.adjacent, self.short_side, self.bound = gap, adjacent, short_side, float(bound)
        self.attention_block = attention_block
        self.reader = reader
        self.chunk = chunk
        self._records: dict[str, FlowRecord] = {}
        self._check_root()

    def _check_root(self) -> None:
        path = self.root / "cache.json"
        if path.is_file():
            stored = json.loads(path.read_text())
            if stored != self.config:
                changed = sorted(k for k in set(stored) | set(self.config) if stored.get(k) != self.config.get(k))
                raise ValueError(f"{self.root} holds flow of another configuration (differs in {', '.join(changed)}: "
                                 f"{ {k: stored.get(k) for k in changed} }); give another cache root")
        else:
            text = json.dumps(self.config, indent=1, sort_keys=True) + "\n"
            _atomic_write(path, lambda f: f.write(text.encode()))

    @property
    def provider(self) -> FlowProvider:
        """The provider, built on first use."""
        if self._provider is None:
            self._provider = create_flow_provider(self.provider_name, **self.provider_kwargs)
        return self._provider

    # -- keys and records ---------------------------------------------------------------------------

    @staticmethod
    def key(sample: VideoSample) -> str:
        """The file stem of a video's flow: a hash of its path and annotated range."""
        return hashlib.sha1(f"{sample.path}|{sample.start}|{sample.end}".encode()).hexdigest()[:24]

    def _paths(self, sample: VideoSample) -> tuple[Path, Path]:
        key = self.key(sample)
        folder = self.root / key[:2]
        return folder / f"{key}.npy", folder / f"{key}.json"

    def record(self, sample: VideoSample) -> FlowRecord | None:
        """The cached flow of ``sample``, or None when it has not been computed (or its video was unreadable)."""
        key = self.key(sample)
        found = self._records.get(key)
        if found is not None:
            return found
        data, index = self._paths(sample)
        if not index.is_file():
            return None
        meta = json.loads(index.read_text())
        found = FlowRecord(meta["path"], meta["num_frames"], meta["gap"], meta["adjacent"], meta["height"],
                           meta["width"], meta["bound"], np.asarray(meta["mds"], dtype=np.float64),
                           np.asarray(meta["motion"], dtype=np.float64), data)
        self._records[key] = found
        return found

    def __contains__(self, sample: VideoSample) -> bool:
        return self._paths(sample)[1].is_file()

    # -- computing ----------------------------------------------------------------------------------

    def _resize(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 ``(n, H, W, 3)`` frames with their short side resized to ``short_side``."""
        if self.short_side is None or min(frames.shape[1:3]) == self.short_side:
            return frames
        resized = TF.resize(frames.permute(0, 3, 1, 2), self.short_side, antialias=True)
        return resized.permute(0, 2, 3, 1).contiguous()

    def compute(self, sample: VideoSample, fps: float | None = None) -> FlowRecord:
        """Compute, quantise and store the flow of one video (overwriting what is there) and return its record.

        Raises:
            VideoReadError: the video cannot be read.
        """
        provider = self.provider

        def run(video: Any) -> tuple[int, torch.Tensor]:
            frames = sample_frame_range(sample, video, 1)
            n = len(frames)
            starts = flow_starts(n, self.gap, self.adjacent)
            ends = np.minimum(starts + self.adjacent, n - 1)
            pieces = []
            for i in range(0, len(starts), self.chunk):
                s, e = starts[i:i + self.chunk], ends[i:i + self.chunk]
                wanted = np.unique(np.concatenate([s, e]))
                decoded = self._resize(video.get_frames(wanted + frames.start))
                lookup = {int(f): j for j, f in enumerate(wanted)}
                first = decoded[[lookup[int(f)] for f in s]]
                second = decoded[[lookup[int(f)] for f in e]]
                pieces.append(quantize_flow(provider(first, second), self.bound))
            return n, torch.cat(pieces)

        num_frames, quantised = read_with_fallback(sample.path, run, self.reader, fps=fps)
        flow = dequantize_flow(quantised, self.bound)
        mds = mds_frame_scores(flow, self.attention_block)
        motion = motion_maps(flow).mean((1, 2))
        data, index = self._paths(sample)
        array = quantised.numpy()
        _atomic_write(data, lambda f: np.save(f, array))
        meta = {"path": str(sample.path), "start": sample.start, "end": sample.end, "num_frames": num_frames,
                "gap": self.gap, "adjacent": self.adjacent, "height": int(array.shape[2]),
                "width": int(array.shape[3]), "bound": self.bound, "mds": [float(x) for x in mds],
                "motion": [float(x) for x in motion]}
        text = json.dumps(meta) + "\n"
        _atomic_write(index, lambda f: f.write(text.encode()))
        self._records.pop(self.key(sample), None)
        record = self.record(sample)
        assert record is not None
        return record

    def build(
        self,
        samples: Iterable[VideoSample] | Any,
        fps: float | None = None,
        progress: bool = True,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> dict[str, Any]:
        """Compute the flow of every video not cached yet (resumable; see the module docstring).

        Args:
            samples: the videos, or a :class:`~zoo.data.VideoDataset` (its samples, reader's frame rate).
            fps: frame rate of frame-folder samples (a dataset's own is used by default).
            progress: show a progress bar.
            rank, world_size: under ``torchrun`` each process computes every ``world_size``-th video
                from ``rank`` and all wait for each other at the end (default: the process group's).

        Returns:
            ``{'videos', 'computed', 'cached', 'failed': {path: reason}}`` for this process's share.
        """
        from ..utils.distributed import barrier, get_rank, get_world_size

        if hasattr(samples, "samples"):
            fps = fps if fps is not None else getattr(samples, "fps", None)
            samples = samples.samples
        samples = list(samples)
        rank = get_rank() if rank is None else rank
        world_size = get_world_size() if world_size is None else world_size
        mine = samples[rank::world_size]
        report: dict[str, Any] = {"videos": len(mine), "computed": 0, "cached": 0, "failed": {}}
        todo = [s for s in mine if s not in self]
        report["cached"] = len(mine) - len(todo)
        if todo:
            bar = tqdm(todo, desc=f"optical flow ({self.provider_name})", unit="video", disable=not progress)
            for sample in bar:
                try:
                    self.compute(sample, fps)
                    report["computed"] += 1
                except VideoReadError as e:
                    report["failed"][str(sample.path)] = e.reason
                    _logger.warning("no optical flow for %s: %s (the video is skipped in training)", sample.path,
                                    e.reason)
                bar.set_postfix(cached=report["cached"], failed=len(report["failed"]), refresh=False)
        barrier()
        return report

    def __repr__(self) -> str:
        return (f"FlowCache(root={str(self.root)!r}, provider={self.provider_name!r}, gap={self.gap}, "
                f"adjacent={self.adjacent}, short_side={self.short_side})")


FLOW_SETTINGS = ("provider", "provider_kwargs", "gap", "adjacent", "short_side", "root", "reader", "bound",
                  "progress")


def check_flow_cfg(flow: dict[str, Any]) -> dict[str, Any]:
    """An objective's ``flow`` settings (MSCL, MCL), checked for unknown keys (see :func:`flow_cache_from_cfg`)."""
    unknown = sorted(set(flow) - set(FLOW_SETTINGS))
    if unknown:
        raise ValueError(f"unknown flow settings {unknown}; known: {list(FLOW_SETTINGS)}")
    return dict(flow)


def flow_cache_from_cfg(flow: dict[str, Any], default_provider: str, gap: int, adjacent: int,
                        reader: str = "decord") -> FlowCache:
    """A :class:`FlowCache` from an objective's ``flow`` settings: ``provider``, ``provider_kwargs``,
    ``gap``, ``adjacent``, ``short_side``, ``root``, ``reader`` (default: ``reader``, the dataset's), ``bound``
    (and ``progress``, for its build); the other arguments are the method's defaults."""
    check_flow_cfg(flow)
    return FlowCache(root=flow.get("root"), provider=flow.get("provider", default_provider),
                     provider_kwargs=flow.get("provider_kwargs"), gap=flow.get("gap", gap),
                     adjacent=flow.get("adjacent", adjacent), short_side=flow.get("short_side"),
                     bound=flow.get("bound", 20.0), reader=flow.get("reader", reader))
