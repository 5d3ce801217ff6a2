"""The loader of a streamed dataset (``data.kind: webdataset``): per-rank, per-worker shards, fixed-length epochs,
and a position saved in the checkpoint for an exact resume.

:class:`StreamLoader` stands where a map-style run has its DataLoader over :class:`~zoo.train.loaders.SeededItems`:
it has the same ``sampler`` interface the trainer drives (``seed``, ``set_epoch``, ``set_start``, ``len``), and
``state_dict`` / ``load_state_dict`` for the readers' positions (samples drawn and batches delivered, per worker),
which the trainer saves with each checkpoint (``data_state``). The stream's rules are in :mod:`zoo.data.stream`.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader

from ..data.stream import STREAM_STATE_KEY, WebDatasetStream
from .runtime import Runtime

__all__ = ["StreamLoader", "StreamPosition"]

_logger = logging.getLogger(__name__)


class StreamPosition:
    """The sampler-like face of a :class:`StreamLoader`: what the trainer sets before each epoch."""

    def __init__(self, loader: StreamLoader):
        self._loader = loader

    @property
    def seed(self) -> int:
        return self._loader.stream.seed

    @seed.setter
    def seed(self, value: int) -> None:
        self._loader.stream.seed = value

    @property
    def epoch(self) -> int:
        return self._loader.epoch

    def set_epoch(self, epoch: int) -> None:
        self._loader.epoch = epoch

    def set_start(self, start: int) -> None:
        """Start the epoch after this rank's first ``start`` items (resuming mid-epoch)."""
        if start % self._loader.batch_size:
            raise ValueError(f"a stream resumes at a batch boundary; {start} items is not a multiple of "
                             f"{self._loader.batch_size}")
        self._loader.start_batches = start // self._loader.batch_size

    def __len__(self) -> int:
        """Items this rank reads an epoch (training: the fixed epoch length)."""
        return self._loader.batches_per_epoch() * self._loader.batch_size


class StreamLoader:
    """Batches of a :class:`~zoo.data.stream.WebDatasetStream` through a DataLoader whose workers each read
    their own shards.

    Args:
        stream: the stream (its rank, world size and batch size are set here).
        runtime: the run's process group and device.
        num_workers: DataLoader worker processes (each one a reader of the stream).
        train: fixed-length, shuffled epochs (True) or one pass over the shards (False).
        batch_size: items per batch.
        seed: the run's seed (the trainer sets each stage's through ``sampler.seed``).
    """

    def __init__(self, stream: WebDatasetStream, runtime: Runtime, num_workers: int, train: bool, batch_size: int,
                 seed: int = 0):
        self.stream = stream
        self.dataset = stream
        self.runtime = runtime
        self.num_workers = num_workers
        self.train = train
        self.batch_size = batch_size
        stream.rank, stream.world_size = runtime.dist.rank, runtime.dist.world_size
        stream.batch_size, stream.seed = batch_size, seed
        self.epoch = 0
        self.start_batches = 0
        self.sampler = StreamPosition(self)
        self._saved: dict[str, Any] | None = None
        self._progress: dict[int, dict[str, int]] = {}

    def batches_per_epoch(self) -> int:
        """Batches this rank yields an epoch: fixed when training; about its share of the samples when testing."""
        if self.train:
            return self.stream.batches_per_rank()
        per_rank = -(-(self.stream.num_samples or 0) // self.runtime.dist.world_size)
        return -(-per_rank // self.batch_size)

    def __len__(self) -> int:
        return max(0, self.batches_per_epoch() - self.start_batches)

    def _round_robin(self, batches: int) -> dict[int, dict[str, int]]:
        """Each worker's position after a rank's first ``batches`` batches, assuming no sample was skipped."""
        workers = max(1, self.num_workers)
        out = {}
        for w in range(workers):
            delivered = max(0, (batches - w + workers - 1) // workers)
            out[w] = {"drawn": delivered * self.batch_size, "delivered": delivered}
        return out

    def _resume_positions(self) -> dict[int, dict[str, int]]:
        if self.start_batches == 0:
            return {}
        s = self._saved
        layout = {"epoch": self.epoch, "num_workers": self.num_workers, "world_size": self.runtime.dist.world_size,
                  "batch_size": self.batch_size}
        if s is not None and all(s.get(k) == v for k, v in layout.items()) \
                and sum(p["delivered"] for p in s["progress"].values()) == self.start_batches:
            return {int(w): dict(p) for w, p in s["progress"].items()}
        saved = {k: s.get(k) for k in layout} if s is not None else None
        _logger.warning("resuming a stream at batch %d of epoch %d without a matching saved position (saved: %s; now: "
                        "%s): each worker skips its share of the batches as if no sample had been skipped, so the "
                        "rest of the epoch may differ from an uninterrupted run", self.start_batches, self.epoch,
                        saved, layout)
        return self._round_robin(self.start_batches)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        positions = self._resume_positions()
        self.stream.epoch = self.epoch
        self.stream.resume = positions
        self.stream.worker_offset = self.start_batches % max(1, self.num_workers)
        self._progress = {w: dict(p) for w, p in positions.items()}
        workers = self.num_workers
        loader = DataLoader(
            self.stream, batch_size=None, num_workers=workers, pin_memory=self.runtime.device.type == "cuda",
            prefetch_factor=2 if workers > 0 else None, persistent_workers=False,
            generator=torch.Generator().manual_seed(self.stream.seed),  # not the global RNG
        )
        for batch in loader:
            worker, drawn, delivered = batch.pop(STREAM_STATE_KEY)
            self._progress[int(worker)] = {"drawn": int(drawn), "delivered": int(delivered)}
            yield batch

    def state_dict(self) -> dict[str, Any]:
        """This rank's position in the epoch: per worker, the samples drawn from its stream and batches delivered."""
        return {"epoch": self.epoch, "num_workers": self.num_workers, "world_size": self.runtime.dist.world_size,
                "batch_size": self.batch_size, "progress": {int(w): dict(p) for w, p in self._progress.items()}}

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """The position to resume from (used when the next epoch starts where it says, ``sampler.set_start``)."""
        self._saved = state
