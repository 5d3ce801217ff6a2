"""Data for a run: the recipe's datasets, and loaders whose order and per-clip randomness survive an interruption.

Each epoch's order is drawn from ``(seed, epoch)`` and each clip's random choices from
``(seed, epoch, rank, position)`` (:class:`ResumableSampler` and :class:`SeededItems`), so a run
resumed mid-epoch reads exactly the clips the uninterrupted run would have read.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, IterableDataset

from .._registry import get_pretrained_cfg
from ..data import create_dataset, create_video_transform, kind_defaults, resolve_data_config, video_collate
from .recipe import Recipe
from .runtime import Runtime
from .streaming import StreamLoader

__all__ = ["SeededItems", "ResumableSampler", "pretrained_data_cfg", "recipe_dataset", "make_loader", "is_stream",
           "source_dataset", "first_item", "data_state", "load_data_state"]


def is_stream(dataset: Any) -> bool:
    """Whether ``dataset`` is streamed (an iterable dataset, e.g. ``data.kind: webdataset``) rather than indexed."""
    return isinstance(dataset, IterableDataset)


def source_dataset(loader: Any) -> Any:
    """The dataset a :func:`make_loader` loader reads (inside its :class:`SeededItems`, or the stream)."""
    if isinstance(loader, StreamLoader):
        return loader.stream
    return loader.dataset.dataset


def first_item(dataset: Any) -> dict[str, Any]:
    """Item 0 of a dataset, or the first readable item of a stream."""
    return dataset.first_item() if is_stream(dataset) else dataset[0]


def data_state(loader: Any) -> dict[str, Any] | None:
    """What a checkpoint saves of a loader's position besides the step: a stream's readers' positions (None for a
    map-style loader, whose position the step gives)."""
    return loader.state_dict() if isinstance(loader, StreamLoader) else None


def load_data_state(loader: Any, state: dict[str, Any] | None) -> None:
    """Give a loader the position :func:`data_state` saved (nothing to do for a map-style loader)."""
    if isinstance(loader, StreamLoader):
        loader.load_state_dict(state)


class SeededItems(Dataset):
    """A dataset read with ``(index, seed)`` keys: each item's random choices (clip position, crop,
    flip, replacement of a bad file) come from a generator seeded with ``seed``, not from the
    process's global RNG, which stays untouched."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        index, seed = key
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.dataset[index]


class ResumableSampler(DistributedSampler):
    """torch's ``DistributedSampler`` (this rank's share of a shuffled epoch), yielding
    ``(index, seed)`` keys for :class:`SeededItems`, and able to start partway through an epoch.

    Args:
        dataset: the dataset (its length).
        num_replicas, rank: the process group's size and this rank.
        seed: the run's seed; the order of epoch e is drawn from ``seed + e``.
        shuffle: shuffle every epoch (training) or keep the order (evaluation).
    """

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, seed: int, shuffle: bool = True):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=False)
        self.start = 0

    def set_start(self, start: int) -> None:
        """Skip this rank's first ``start`` items of the current epoch (resuming mid-epoch)."""
        self.start = start

    def __iter__(self) -> Iterator[tuple[int, int]]:
        indices = list(super().__iter__())
        for position in range(self.start, len(indices)):
            seed = np.random.SeedSequence([self.seed, self.epoch, self.rank, position]).generate_state(1)[0]
            yield indices[position], int(seed)

    def __len__(self) -> int:
        return super().__len__() - self.start


def pretrained_data_cfg(recipe: Recipe) -> dict[str, Any] | None:
    """The data config (:func:`zoo.data.resolve_data_config`) of the weights a recipe's model starts from,
    when it starts from registered pretrained weights (``model.pretrained`` with a tag that has weights;
    for ``hcml``, its backbone's); None otherwise."""
    m = recipe.model
    if not m.pretrained or ":" in m.name:
        return None
    name = m.kwargs.get("backbone") if m.name == "hcml" and m.kwargs.get("backbone") else m.name
    try:
        cfg = get_pretrained_cfg(name, prefer_weights=True)
    except ValueError:  # not a registered name: create_model reports it
        return None
    return resolve_data_config(pretrained_cfg=cfg) if cfg.has_weights else None


def recipe_dataset(recipe: Recipe, split: str | None, train: bool, n_clips: int = 1, n_crops: int = 1) -> Any:
    """The dataset of a recipe's ``split`` as a run reads it (its transform, sampling, reader)."""
    d = recipe.data
    transform = None
    weights = pretrained_data_cfg(recipe)
    if weights is not None:  # sizes and normalisation the recipe leaves unset come from the weights' cfg
        resize = weights["resize_size"]
        short = resize if isinstance(resize, int) else min(resize)
        d = dataclasses.replace(
            d, input_size=d.input_size or weights["crop_size"][0], mean=d.mean or list(weights["mean"]),
            std=d.std or list(weights["std"]), test_short_side=d.test_short_side or short,
            train_short_side=d.train_short_side or [short, round(short * 1.25)],
        )
    if any(v is not None for v in (d.train_short_side, d.test_short_side, d.mean, d.std)):
        input_size = d.input_size or 224
        hflip = d.hflip if d.hflip is not None else kind_defaults(d.kind).hflip
        short_side = tuple(d.train_short_side) if train and d.train_short_side else (
            d.test_short_side if not train else None)
        extra = {k: tuple(v) for k, v in (("mean", d.mean), ("std", d.std)) if v is not None}
        transform = create_video_transform(train, input_size=input_size, short_side=short_side,
                                           n_crops=1 if train else n_crops, hflip=hflip, **extra)
    return create_dataset(
        d.kind, d.root, split=split, num_frames=d.num_frames, frame_stride=d.frame_stride, train=train,
        reader=d.reader, strict=d.strict, transform=transform, sampling=d.sampling, n_clips=n_clips,
        n_crops=n_crops, input_size=d.input_size, hflip=d.hflip, temporal_jitter=d.temporal_jitter and train,
        decode_short_side="auto" if d.decode_resize else None, **d.options,
    )


def make_loader(dataset: Dataset, runtime: Runtime, num_workers: int, train: bool, batch_size: int,
                seed: int = 0) -> DataLoader:
    """A DataLoader over this rank's share of ``dataset`` in :class:`ResumableSampler` order (shuffled when
    ``train``; the last partial batch dropped when ``train``); at most one worker per CPU core."""
    num_workers = min(num_workers, os.cpu_count() or 1)
    if is_stream(dataset):  # data.kind: webdataset: its own loader (zoo.train.streaming)
        return StreamLoader(dataset, runtime, num_workers, train, batch_size, seed)
    sampler = ResumableSampler(dataset, runtime.dist.world_size, runtime.dist.rank, seed=seed, shuffle=train)
    # Its own generator: starting an iterator then draws the workers' base seed from it, not from the
    # global RNG (which a resumed run restores and must not see consumed an extra time).
    return DataLoader(
        SeededItems(dataset), batch_size=batch_size, sampler=sampler, num_workers=num_workers,
        generator=torch.Generator().manual_seed(seed),
        collate_fn=video_collate, pin_memory=runtime.device.type == "cuda", drop_last=train,
        persistent_workers=num_workers > 0, prefetch_factor=2 if num_workers > 0 else None,
    )
