"""The dataset factory: ``create_dataset(kind, root, split, ...)`` over the registered layouts.

>>> ds = create_dataset('kinetics', '/data/k400', split='train', num_frames=16, frame_stride=2)
>>> item = ds[0]     # {'video': float (C, T, H, W), 'label': int, 'index': int, 'path': str}
>>> ds.classes[item['label']]

The kinds and their layouts are :mod:`zoo.data.layouts`'; a new kind is one parser there (or
anywhere) and one :func:`register_dataset` call.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from .dataset import Annotations, VideoDataset
from .defaults import kind_defaults
from .layouts import (
    csv_annotations,
    folder_annotations,
    kinetics_annotations,
    ssv1_annotations,
    ssv2_annotations,
    ucf101_annotations,
)
from .stream import create_stream
from .transforms import create_video_transform
from .transforms import decode_short_side as decode_short_side_of

__all__ = ["create_dataset", "list_datasets", "register_dataset", "default_splits"]


@dataclass(frozen=True)
class _Kind:
    parse: Callable[..., Annotations] | None
    train_split: str | None
    eval_split: str | None
    build: Callable[..., Any] | None = None


_KINDS: dict[str, _Kind] = {}


def register_dataset(name: str, parse: Callable[..., Annotations] | None, train_split: str | None = None,
                     eval_split: str | None = None, build: Callable[..., Any] | None = None) -> None:
    """Add a dataset kind to :func:`create_dataset`.

    Args:
        name: the kind's name.
        parse: ``parse(root, split, **kind_specific) -> Annotations`` (a map-style :class:`VideoDataset` of them).
        train_split: the split used when ``split`` is None and ``train=True``.
        eval_split: the split used when ``split`` is None and ``train=False``.
        build: instead of ``parse``, a function taking :func:`create_dataset`'s arguments (``kind`` excepted)
            and returning the dataset itself (``webdataset``: a stream, :mod:`zoo.data.stream`).
    """
    if (parse is None) == (build is None):
        raise ValueError("register_dataset needs exactly one of parse and build")
    _KINDS[name] = _Kind(parse, train_split, eval_split, build)


def default_splits(kind: str) -> tuple[str | None, str | None]:
    """The training and evaluation splits kind ``kind`` reads when no split is given (None: no splits)."""
    if kind not in _KINDS:
        raise ValueError(f"unknown dataset kind {kind!r}; choose one of {list_datasets()}")
    return _KINDS[kind].train_split, _KINDS[kind].eval_split


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
    decode_short_side: int | str | None = None,
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
        reader: ``'decord'``, ``'pyav'``, ``'torchcodec'`` or ``'auto'`` (:func:`~zoo.data.readers.auto_readers`).
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
        decode_short_side: the short side the reader shrinks larger frames to while decoding (decode-time
            resizing): ``'auto'``, the transform's largest resize (:func:`~zoo.data.transforms.decode_short_side`:
            320 for the default training transform at 224, 256 for testing; none for a transform of your own);
            an int; None (default): full-size frames. The recipes turn it on (``data.decode_resize``).
        **kind_specific: the kind's own keywords (e.g. ``annotations``, ``fold``, ``classes``).
    """
    if kind not in _KINDS:
        raise ValueError(f"unknown dataset kind {kind!r}; choose one of {list_datasets()}")
    spec = _KINDS[kind]
    if split is None:
        split = spec.train_split if train else spec.eval_split
    if spec.build is not None:
        return spec.build(
            root, split=split, num_frames=num_frames, frame_stride=frame_stride, train=train, reader=reader,
            strict=strict, transform=transform, sampling=sampling, n_clips=n_clips, n_crops=n_crops,
            input_size=input_size, hflip=hflip, temporal_jitter=temporal_jitter, pad_mode=pad_mode,
            min_frames=min_frames, decode_short_side=decode_short_side, **kind_specific)
    ann = spec.parse(root, split, **kind_specific)
    defaults = ann.defaults
    if transform is None:
        use_default_size = input_size is None
        transform = create_video_transform(
            train,
            input_size=defaults.get("input_size", 224) if use_default_size else input_size,
            short_side=defaults.get("short_side") if use_default_size else None,
            n_crops=n_crops,
            hflip=defaults.get("hflip", kind_defaults(kind).hflip) if hflip is None else hflip,
        )
    if decode_short_side == "auto":
        decode_short_side = decode_short_side_of(transform)
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
        decode_short_side=decode_short_side,
    )


register_dataset("folder", folder_annotations)
register_dataset("csv", csv_annotations)
register_dataset("kinetics", kinetics_annotations, "train", "val")
register_dataset("ssv2", ssv2_annotations, "train", "validation")
register_dataset("ssv1", ssv1_annotations, "train", "validation")
register_dataset("ucf101", ucf101_annotations, "train", "test")
register_dataset("webdataset", None, "train", "val", build=create_stream)  # shards: zoo.data.stream
