"""Transforms on video clips, built from torchvision.transforms.v2.

A clip enters as the readers return it, uint8 ``(T, H, W, C)``, and leaves as the models
take it, float32 ``(C, T, H, W)`` normalised (or ``(n_crops, C, T, H, W)`` for multi-crop
testing). Every random choice (scale, crop position, flip) is drawn once per clip and
applied to all its frames.

Training (the papers' recipe): the short side is resized to a size drawn in a range
(e.g. [256, 320] or [256, 340]), then a random ``input_size`` square crop, then an
optional horizontal flip. Testing: the short side is resized to one size, then a centre
crop or three crops along the long side.

Two steps do in one pass what torchvision's chain does in several, because at the sizes
videos are stored at (short side 240-320) the transform costs as much as the decode:
:class:`RandomShortSideCrop` draws the scale and crop as ``v2.RandomResize`` then
``v2.RandomCrop`` would but resizes only the region under the crop, and
:class:`NormalizeToCTHW` converts, normalises and lays out the clip in one float pass
(``v2.ToDtype`` + ``v2.Normalize`` + :class:`ToCTHW` make three).

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
    "RandomShortSideCrop",
    "NormalizeToCTHW",
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


class RandomShortSideCrop(torch.nn.Module):
    """Scale jitter and a random square crop, resizing only the part of the frames the crop keeps.

    The draw is ``v2.RandomResize(low, high + 1)`` then ``v2.RandomCrop(size)``'s: a short side ``s``
    uniform in ``[low, high]`` (the long side scaled as ``v2.Resize(s)`` scales it), then a crop position
    uniform over the resized frame. Instead of resizing whole frames and throwing most of them away, the
    crop's box is mapped back to the input frame (rounded to whole pixels: at most half an input pixel of
    shift and ``1 / size`` of scale) and only that box is resized to ``size`` x ``size``
    (``torchvision.transforms.v2.functional.resized_crop``, antialiased when it shrinks).

    Maps a video ``(T, C, H, W)`` to ``(T, C, size, size)``, every frame with the same box.
    """

    def __init__(self, low: int, high: int, size: int,
                 interpolation: v2.InterpolationMode = v2.InterpolationMode.BILINEAR):
        super().__init__()
        if not size <= low <= high:
            raise ValueError(f"need size <= low <= high; got size={size}, low={low}, high={high}")
        self.low, self.high, self.size, self.interpolation = low, high, size, interpolation

    def get_params(self, height: int, width: int) -> tuple[tuple[int, int, int, int], tuple[int, int, int]]:
        """Draw for a ``height`` x ``width`` frame: the input box ``(top, left, box_height, box_width)`` to
        resize, and what it stands for, ``(short_side, crop_top, crop_left)`` in the resized frame."""
        short = int(torch.randint(self.low, self.high + 1, ()))
        if height <= width:  # v2.Resize(short)'s output size: the long side truncated, as torchvision does
            new_h, new_w = short, int(short * width / height)
        else:
            new_h, new_w = int(short * height / width), short
        top = int(torch.randint(0, new_h - self.size + 1, ()))
        left = int(torch.randint(0, new_w - self.size + 1, ()))
        scale_y, scale_x = height / new_h, width / new_w
        box_h = min(height, max(1, round(self.size * scale_y)))
        box_w = min(width, max(1, round(self.size * scale_x)))
        box_top, box_left = min(round(top * scale_y), height - box_h), min(round(left * scale_x), width - box_w)
        return (box_top, box_left, box_h, box_w), (short, top, left)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        box, _ = self.get_params(*video.shape[-2:])
        return F.resized_crop(video, *box, [self.size, self.size], interpolation=self.interpolation, antialias=True)

    def extra_repr(self) -> str:
        return f"low={self.low}, high={self.high}, size={self.size}, interpolation={self.interpolation.value}"


class NormalizeToCTHW(torch.nn.Module):
    """uint8 video ``(..., T, C, H, W)`` to normalised float32 ``(..., C, T, H, W)``, contiguous.

    ``(x / 255 - mean) / std`` per channel, computed as one conversion and one fused multiply-add
    (``x * (1 / (255 std)) - mean / std``): equal to ``v2.ToDtype(float32, scale=True)``,
    ``v2.Normalize(mean, std)`` and :class:`ToCTHW` within float rounding (about 1e-6).
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        if len(mean) != len(std) or any(s <= 0 for s in std):
            raise ValueError(f"mean and std need one value per channel and std > 0; got {mean}, {std}")
        self.mean, self.std = [float(m) for m in mean], [float(s) for s in std]
        std_t = torch.tensor(self.std, dtype=torch.float64)
        self._scale = (1.0 / (255.0 * std_t)).float().view(-1, 1, 1, 1)
        self._shift = (-torch.tensor(self.mean, dtype=torch.float64) / std_t).float().view(-1, 1, 1, 1)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        if video.dtype != torch.uint8:
            raise ValueError(f"expected uint8 frames; got {video.dtype}")
        if video.ndim < 4 or video.shape[-3] != len(self.mean):
            raise ValueError(f"expected (..., T, {len(self.mean)}, H, W); got {tuple(video.shape)}")
        clip = video.as_subclass(torch.Tensor).transpose(-4, -3)
        clip = clip.to(torch.float32, memory_format=torch.contiguous_format)
        return clip.mul_(self._scale).add_(self._shift)

    def extra_repr(self) -> str:
        return f"mean={self.mean}, std={self.std}"


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
        steps.append(RandomShortSideCrop(low, high, input_size))
        if hflip:
            steps.append(v2.RandomHorizontalFlip())
    else:
        steps += [v2.Resize(low), v2.CenterCrop(input_size) if n_crops == 1 else ThreeCrop(input_size)]
    steps.append(NormalizeToCTHW(mean, std))
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
        steps.append(RandomShortSideCrop(low, high, crop_h, interpolation=interpolation))
        if hflip:
            steps.append(v2.RandomHorizontalFlip())
    else:
        size = resize if isinstance(resize, int) else list(resize)
        steps += [v2.Resize(size, interpolation=interpolation, antialias=False),
                  v2.CenterCrop(crop_h) if n_crops == 1 else ThreeCrop(crop_h)]
    steps.append(NormalizeToCTHW(mean, std))
    compose = v2.Compose(steps)
    compose.decode_short_side = (high if is_training else resize) if isinstance(resize, int) else None
    return compose
