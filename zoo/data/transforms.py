"""Transforms on video clips, built from torchvision.transforms.v2.

A clip enters as the readers return it, uint8 ``(T, H, W, C)``, and leaves as the models
take it, float32 ``(C, T, H, W)`` normalised (or ``(n_crops, C, T, H, W)`` for multi-crop
testing). Every random choice (scale, crop position, flip) is drawn once per clip and
applied to all its frames.

Training (the papers' recipe): the short side is resized to a size drawn in a range
(e.g. [256, 320] or [256, 340]), then a random ``input_size`` square crop, then an
optional horizontal flip. Testing: the short side is resized to one size, then a centre
crop or three crops along the long side.

Flipping must stay off for datasets whose classes name a direction (Something-Something's
"left" and "right", Moving-Digits' directions and rotation senses).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from .._pretrained import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ToVideo",
    "ToCTHW",
    "ThreeCrop",
    "create_video_transform",
    "create_transform",
    "decode_short_side",
]

IMAGENET_MEAN = IMAGENET_DEFAULT_MEAN  # one definition, the pretrained cfg's (zoo._pretrained)
IMAGENET_STD = IMAGENET_DEFAULT_STD


class ToVideo(torch.nn.Module):
    """uint8 ``(T, H, W, C)`` frames (as the readers return them) to a ``tv_tensors.Video`` ``(T, C, H, W)``."""

    def forward(self, frames: torch.Tensor) -> tv_tensors.Video:
        if frames.ndim != 4 or frames.shape[-1] not in (1, 3):
            raise ValueError(f"expected frames of shape (T, H, W, C) with C in (1, 3); got {tuple(frames.shape)}")
        return tv_tensors.Video(frames.permute(0, 3, 1, 2))


class ToCTHW(torch.nn.Module):
    """A video ``(..., T, C, H, W)`` to a plain tensor ``(..., C, T, H, W)``, the models' layout."""

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return video.as_subclass(torch.Tensor).transpose(-4, -3).contiguous()


class ThreeCrop(torch.nn.Module):
    """Three ``size`` x ``size`` crops along the long side (start, centre, end), centred on the short side.

    Maps a video ``(T, C, H, W)`` to ``(3, T, C, size, size)`` (SlowFast's three-crop testing).
    """

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def forward(self, video: torch.Tensor) -> tv_tensors.Video:
        height, width = video.shape[-2:]
        if min(height, width) < self.size:
            raise ValueError(f"frames of {height}x{width} are smaller than the {self.size}x{self.size} crop")
        if width >= height:
            top = [(height - self.size) // 2] * 3
            left = [0, (width - self.size) // 2, width - self.size]
        else:
            top = [0, (height - self.size) // 2, height - self.size]
            left = [(width - self.size) // 2] * 3
        crops = [F.crop(video, t, l, self.size, self.size) for t, l in zip(top, left)]
        return tv_tensors.Video(torch.stack([c.as_subclass(torch.Tensor) for c in crops]))

    def extra_repr(self) -> str:
        return f"size={self.size}"


def create_video_transform(
    train: bool,
    input_size: int = 224,
    short_side: int | tuple[int, int] | None = None,
    n_crops: int = 1,
    hflip: bool = True,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> v2.Compose:
    """The standard train or test transform of a clip.

    Args:
        train: random scale, crop and flip (True) or deterministic resize and crops (False).
        input_size: side of the square crop fed to the model, in pixels.
        short_side: the short side, in pixels, frames are resized to before cropping: a
            ``(min, max)`` range to draw from when training, one size when testing (a range
            is reduced to its minimum). Default: ``input_size * (256/224, 320/224)`` when
            training and ``input_size * 256/224`` when testing, i.e. [256, 320] and 256 for 224.
        n_crops: 1 (centre crop) or 3 (:class:`ThreeCrop`) when testing; 1 when training.
        hflip: random horizontal flip when training. Turn it off for Something-Something and
            Moving-Digits, whose classes name directions.
        mean: per-channel mean of the [0, 1] frames.
        std: per-channel standard deviation of the [0, 1] frames.

    Returns:
        A callable mapping uint8 ``(T, H, W, C)`` frames to float32 ``(C, T, input_size, input_size)``,
        or ``(3, C, T, input_size, input_size)`` with three crops. Its ``decode_short_side`` attribute is the
        largest short side it resizes to (the range's maximum when training): the datasets have the readers
        shrink larger frames to it while decoding (:func:`decode_short_side`).
    """
    if n_crops not in (1, 3):
        raise ValueError(f"n_crops must be 1 or 3; got {n_crops}")
    if train and n_crops != 1:
        raise ValueError("multi-crop views are for testing; use n_crops=1 with train=True")
    if short_side is None:
        short_side = (round(input_size * 256 / 224), round(input_size * 320 / 224)) if train else round(
            input_size * 256 / 224
        )
    low, high = (short_side, short_side) if isinstance(short_side, int) else tuple(short_side)
    if not input_size <= low <= high:
        raise ValueError(f"short_side {short_side} must be ordered and at least input_size={input_size}")
    steps: list[torch.nn.Module] = [ToVideo()]
    if train:
        steps += [v2.RandomResize(low, high + 1), v2.RandomCrop(input_size)]
        if hflip:
            steps.append(v2.RandomHorizontalFlip())
    else:
        steps += [v2.Resize(low), v2.CenterCrop(input_size) if n_crops == 1 else ThreeCrop(input_size)]
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=list(mean), std=list(std)), ToCTHW()]
    compose = v2.Compose(steps)
    compose.decode_short_side = high if train else low
    return compose


def decode_short_side(transform: Any) -> int | None:
    """The short side frames can be shrunk to while decoding, before ``transform``, without changing what it
    makes of them beyond interpolation: the ``decode_short_side`` that :func:`create_video_transform` and
    :func:`create_transform` set on their transforms (None for any other transform: full-size frames)."""
    value = getattr(transform, "decode_short_side", None)
    return int(value) if isinstance(value, int) and value > 0 else None


def create_transform(data_config: dict[str, Any], is_training: bool = False, hflip: bool = True,
                     n_crops: int = 1, train_scale: tuple[float, float] = (1.0, 1.25)) -> v2.Compose:
    """The transform a model's data config (:func:`zoo.data.resolve_data_config`) asks for, as
    torchvision's ``weights.transforms()`` and timm's ``create_transform`` give it.

    Testing: resize (the short side to ``resize_size``, or exactly to ``(H, W)`` when it is a pair),
    then a centre crop (or :class:`ThreeCrop`) of ``crop_size``. Training: the short side resized to a
    size drawn in ``train_scale`` times the test resize's short side, a random crop, an optional flip.
    Both end with ``[0, 1]`` scaling and the config's mean / std.

    Returns:
        A callable mapping uint8 ``(T, H, W, C)`` frames to float32 ``(C, T, H, W)`` (``(3, C, T, H, W)``
        with three crops); its ``decode_short_side`` is the largest short side it resizes to (None for an exact
        ``(H, W)`` resize).
    """
    crop_h, crop_w = data_config["crop_size"]
    if crop_h != crop_w:
        raise ValueError(f"the zoo's transforms crop squares; got a crop of {crop_h}x{crop_w}")
    resize = data_config["resize_size"]
    interpolation = v2.InterpolationMode(data_config.get("interpolation") or "bilinear")
    mean, std = list(data_config["mean"]), list(data_config["std"])
    steps: list[torch.nn.Module] = [ToVideo()]
    if is_training:
        short = resize if isinstance(resize, int) else min(resize)
        low, high = max(crop_h, round(short * train_scale[0])), max(crop_h, round(short * train_scale[1]))
        steps += [v2.RandomResize(low, high + 1, interpolation=interpolation), v2.RandomCrop(crop_h)]
        if hflip:
            steps.append(v2.RandomHorizontalFlip())
    else:
        size = resize if isinstance(resize, int) else list(resize)
        steps += [v2.Resize(size, interpolation=interpolation, antialias=False),
                  v2.CenterCrop(crop_h) if n_crops == 1 else ThreeCrop(crop_h)]
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=mean, std=std), ToCTHW()]
    compose = v2.Compose(steps)
    compose.decode_short_side = (high if is_training else resize) if isinstance(resize, int) else None
    return compose
