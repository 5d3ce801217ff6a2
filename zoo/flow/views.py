"""Training views with optical flow: the dataset wrapper of motion-contrastive objectives, and its transforms.

An objective that draws its own views of a video (MSCL: a query and a key clip; MCL: an anchor
clip twice and two more clips) wraps the training set in a :class:`FlowViewDataset`. For every
video it asks the objective's ``sample_views(record)`` which frames make each view (MDS or
motion-focused sampling, from the cached scores), reads those frames once, takes their flow from
the :class:`~zoo.flow.cache.FlowCache`, and lets ``make_view(frames, flow, view)`` crop and
augment each view. An item's ``video`` is float ``(V, 5, T, S, S)``: per view, 3 normalised RGB
channels then the flow's ``u`` and ``v`` in pixels of the ``S x S`` view. The default collate
(``zoo.data.video_collate``) stacks the views of each video side by side, ``(B * V, 5, T, S, S)``,
which is what the objective is called with. A sampler that also draws a per-video target for the
objective (MCL: whether the anchor clip comes before the other two) returns a :class:`ViewFrames`
with its ``target``; the item then holds it as ``view_target``, the batch as an int64 ``(B,)``
``view_target``, and the engine passes it to the objective (``objective(clips, labels, view_target=...)``).

Crops and flips act on the frames and their flow together: the flow is cropped to the same part
of the frame (``grid_sample``, whatever its stored resolution), its vectors scaled by the resize
factors, and ``u`` negated by a horizontal flip.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from torchvision import transforms as v1
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from ..data.dataset import VideoDataset, sample_frame_range
from ..data.readers import VideoReadError, read_with_fallback
from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD, NormalizeToCTHW, RandomShortSideCrop
from .cache import FlowCache, FlowRecord

__all__ = [
    "FlowViewDataset",
    "ViewFrames",
    "ViewAugment",
    "crop_with_flow",
    "random_resized_box",
    "transform_settings",
    "view_settings",
    "random_int",
]

Box = tuple[float, float, float, float]  # top, left, height, width, in pixels of the frame


def random_resized_box(height: int, width: int, scale: tuple[float, float] = (0.2, 1.0),
                       ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> Box:
    """A RandomResizedCrop box ``(top, left, h, w)`` in a ``height x width`` frame (torchvision's draw)."""
    top, left, h, w = v1.RandomResizedCrop.get_params(torch.empty(1, height, width), list(scale), list(ratio))
    return float(top), float(left), float(h), float(w)


def crop_with_flow(frames: torch.Tensor, flow: torch.Tensor, box: Box, size: int,
                   hflip: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop the same region of frames and flow and resize it to ``size x size``.

    Args:
        frames: uint8 ``(T, H, W, 3)``.
        flow: float ``(T, 2, h, w)`` in pixels of its ``h x w`` map (any resolution).
        box: ``(top, left, height, width)`` in pixels of the frames.
        size: output side, in pixels.
        hflip: flip both horizontally (``u`` changes sign).

    Returns:
        uint8 ``(T, 3, size, size)`` frames and float ``(T, 2, size, size)`` flow in pixels of the view.
    """
    height, width = frames.shape[1:3]
    top, left, h, w = box
    video = TF.resized_crop(frames.permute(0, 3, 1, 2), round(top), round(left), round(h), round(w),
                            [size, size], antialias=True)
    # The same box on the flow map, sampled at the centres of the view's pixels.
    steps = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    ys = (top + steps * h) / height * 2 - 1
    xs = (left + steps * w) / width * 2 - 1
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)
    cropped = F.grid_sample(flow.float(), grid.expand(flow.shape[0], -1, -1, -1), mode="bilinear",
                            padding_mode="border", align_corners=False)
    map_h, map_w = flow.shape[-2:]
    scale = torch.tensor([size / (w * map_w / width), size / (h * map_h / height)]).view(1, 2, 1, 1)
    cropped = cropped * scale
    if hflip:
        video = video.flip(-1)
        cropped = cropped.flip(-1) * torch.tensor([-1.0, 1.0]).view(1, 2, 1, 1)
    return video, cropped


def _blur_kernel(size: int, sigma_max: float) -> int:
    """An odd Gaussian kernel covering +-3 sigma, at most the view's side."""
    kernel = 2 * math.ceil(3 * sigma_max) + 1
    return max(1, min(kernel, size if size % 2 else size - 1))


class ViewAugment:
    """Colour augmentation and normalisation of one view: MoCo v2's (the official MCL code's list).

    ColorJitter(brightness, contrast, saturation, hue = 0.4, 0.4, 0.4, 0.1) with p 0.8, grayscale with
    p 0.2, Gaussian blur with sigma in [0.1, 2] with p 0.5, each drawn once per clip, then the
    ``[0, 1]`` frames normalised by ``mean`` and ``std``.

    Calling it on uint8 ``(T, 3, S, S)`` frames and float ``(T, 2, S, S)`` flow returns float
    ``(5, T, S, S)``: the normalised RGB channels then the flow.
    """

    def __init__(self, size: int, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                 jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1), jitter_p: float = 0.8,
                 grayscale_p: float = 0.2, blur_sigma: tuple[float, float] = (0.1, 2.0), blur_p: float = 0.5):
        self.colour = v2.Compose([
            v2.RandomApply([v2.ColorJitter(*jitter)], p=jitter_p),
            v2.RandomGrayscale(p=grayscale_p),
            v2.RandomApply([v2.GaussianBlur(_blur_kernel(size, blur_sigma[1]), sigma=blur_sigma)], p=blur_p),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean=list(mean), std=list(std)),
        ])

    def __call__(self, frames: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        rgb = self.colour(tv_tensors.Video(frames)).as_subclass(torch.Tensor)
        return torch.cat([rgb, flow], dim=1).transpose(0, 1).contiguous()


def transform_settings(transform: Any) -> dict[str, Any]:
    """What a dataset's training transform (``zoo.data.create_video_transform``) says about views:
    ``size`` (its crop), ``hflip`` (whether it flips), ``mean`` and ``std``; missing ones are left out."""
    steps = getattr(transform, "transforms", [])
    found: dict[str, Any] = {"hflip": any(isinstance(t, (v2.RandomHorizontalFlip, v1.RandomHorizontalFlip))
                                          for t in steps)}
    for t in steps:
        if isinstance(t, RandomShortSideCrop):
            found["size"] = int(t.size)
        elif isinstance(t, (v2.RandomCrop, v2.RandomResizedCrop, v2.CenterCrop)):
            found["size"] = int(t.size[0])
        elif isinstance(t, (v2.Normalize, NormalizeToCTHW)):
            found["mean"], found["std"] = tuple(t.mean), tuple(t.std)
    return found


class ViewFrames(list):
    """What a view sampler returns: the frame indices of each view (a list of int arrays), with an optional
    per-video ``target`` it drew for the objective (served as the item's ``view_target``)."""

    def __init__(self, frames: Iterable[np.ndarray], target: int | None = None):
        super().__init__(frames)
        self.target = target


class FlowViewDataset(Dataset):
    """A video dataset's training items as several views with their optical flow (module docstring).

    Args:
        base: the training set (its samples, reader, replacement of unreadable videos).
        cache: the flow of ``base``'s videos (build it first: ``cache.build(base)``).
        sample_views: ``(record) -> list of int arrays``, the frames (indices into the video's
            annotated range) of each view; views may repeat frames (they are read once). A
            :class:`ViewFrames` with a ``target`` adds ``view_target`` to the item.
        make_view: ``(frames uint8 (T, H, W, 3), flow float (T, 2, h, w), view index) -> (5, T, S, S)``.

    A video without cached flow (unreadable when the cache was built) or unreadable now is replaced
    as ``base`` replaces it (logged, counted in ``base.bad_files``; fatal with ``strict``).
    """

    def __init__(self, base: VideoDataset, cache: FlowCache,
                 sample_views: Callable[[FlowRecord], list[np.ndarray]],
                 make_view: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]):
        self.base = base
        self.cache = cache
        self.sample_views = sample_views
        self.make_view = make_view

    def __len__(self) -> int:
        return len(self.base)

    @property
    def classes(self) -> list[str]:
        return self.base.classes

    @property
    def labels(self) -> list[int]:
        return self.base.labels

    def _views(self, index: int, record: FlowRecord) -> tuple[torch.Tensor, int | None]:
        sample = self.base.samples[index]
        drawn = self.sample_views(record)
        indices = [np.asarray(v, dtype=np.int64) for v in drawn]
        wanted, positions = np.unique(np.concatenate(indices), return_inverse=True)

        def read(video: Any) -> torch.Tensor:
            frames = sample_frame_range(sample, video, self.base.min_frames)
            return video.get_frames(np.clip(wanted, 0, len(frames) - 1) + frames.start)

        frames = read_with_fallback(sample.path, read, self.base.reader, fps=self.base.fps)
        flow = record.load(record.flow_index(wanted))
        views, start = [], 0
        for v, chosen in enumerate(indices):
            where = torch.from_numpy(positions[start:start + len(chosen)])
            start += len(chosen)
            views.append(self.make_view(frames[where], flow[where], v))
        return torch.stack(views), getattr(drawn, "target", None)

    def _read(self, index: int) -> tuple[torch.Tensor, int | None]:
        record = self.cache.record(self.base.samples[index])
        if record is None:
            raise VideoReadError(f"no optical flow in {self.cache.root} (unreadable when the cache was built?)",
                                 self.base.samples[index].path)
        return self._views(index, record)

    def __getitem__(self, index: int) -> dict[str, Any]:
        base = self.base
        index, (video, target) = base.read_with_retries(index, self._read, what="with their flow;")
        item = {"video": video, "label": base.samples[index].label, "index": index, "path": base.samples[index].path}
        if target is not None:
            item["view_target"] = int(target)
        return item

    def __repr__(self) -> str:
        return f"FlowViewDataset({self.base!r}, {self.cache!r})"


def view_settings(dataset: Any, size: int | None, hflip: bool | None) -> dict[str, Any]:
    """Crop size, flips and normalisation of views: the dataset's training transform's, unless given."""
    found = transform_settings(getattr(dataset, "transform", None))
    size = size if size is not None else found.get("size")
    if size is None:
        raise ValueError("cannot tell the view size from the dataset's transform; set the objective's crop_size")
    return {"size": int(size), "hflip": found["hflip"] if hflip is None else bool(hflip),
            "mean": found.get("mean", IMAGENET_MEAN), "std": found.get("std", IMAGENET_STD)}


def random_int(low: int, high: int) -> int:
    """A uniform integer in ``[low, high]`` from torch's generator (seeded per item by the engine)."""
    return int(torch.randint(low, high + 1, (1,)))
