"""Moving-Digits: a small synthetic dataset whose classes differ only in motion.

Handwritten digits (scikit-learn's ``load_digits``, 8x8 images drawn larger with bilinear
interpolation) move over a static textured background. The class is the motion:

============================  =====================================================
``left``, ``right``           translation along x
``up``, ``down``              translation along y
``clockwise``,                rotation about the digit's centre
``counterclockwise``
``grow``, ``shrink``          scaling (a sawtooth in log-scale: it wraps from the
                              largest size back to the smallest, or the reverse)
============================  =====================================================

Each pair is the time reversal of the other, so the temporal order of the frames is what
tells the class. Every quantity a single frame shows is drawn from the same distribution
in every class and at every time step: the position is uniform on the frame seen as a
torus (the digit wraps around the borders), the angle uniform on the circle, the
log-scale uniform on its range, the digit, colours and background texture independent of
the class. Motions only move these cyclic quantities, so each frame, alone, is
independent of the class: a per-frame classifier stays at chance, while a model that
compares frames can learn the task.

Videos are written once as H.264 mp4 (yuv420p, CRF 10 by default) with one CSV per split
(``train``, ``val``, ``test``: ``path,label`` lines) into
``$ZOO_HOME/moving_digits/<config hash>/`` and reused afterwards.

>>> ds = zoo.data.create_dataset('moving_digits', split='train', num_frames=16, frame_stride=2)
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ._home import zoo_home
from .dataset import Annotations, load_classes
from .factory import register_dataset
from .layouts import csv_annotations
from .writer import write_video

__all__ = [
    "MOVING_DIGITS_CLASSES",
    "MovingDigitsConfig",
    "render_video",
    "generate_moving_digits",
    "moving_digits_annotations",
]

MOVING_DIGITS_CLASSES = ("left", "right", "up", "down", "clockwise", "counterclockwise", "grow", "shrink")
SPLITS = ("train", "val", "test")
_VERSION = 2  # bump when the rendering or encoding changes, so that old caches are not reused (2: mbtree=0)

# Motion parameters, per frame (ours: chosen so that 16 frames at stride 2 show a clear motion).
_SPEED = (0.75, 1.5)  # translation, pixels per frame at a 64-pixel frame (scaled with the frame)
_ANGULAR_SPEED = (4.0, 8.0)  # rotation, degrees per frame
_SCALE_RANGE = (0.6, 1.5)  # digit height as a fraction of its base height (37.5% of the frame)
_SCALE_CYCLE = (40.0, 64.0)  # frames for the log-scale to sweep its whole range once


@dataclasses.dataclass(frozen=True)
class MovingDigitsConfig:
    """What a generated Moving-Digits dataset depends on (its folder is named by its hash).

    Attributes:
        classes: motions to include, a subset of :data:`MOVING_DIGITS_CLASSES` (label order).
        videos_per_class: videos per class in the ``train`` split.
        eval_videos_per_class: videos per class in each of the ``val`` and ``test`` splits.
        frame_size: frame height and width, in pixels (even, at least 32).
        frames_per_video: frames per video (32: room for 16-frame clips at stride 2).
        fps: frame rate written in the files.
        seed: seed of every random choice.
        crf: H.264 constant rate factor (0 lossless, lower is better quality).
    """

    classes: tuple[str, ...] = MOVING_DIGITS_CLASSES
    videos_per_class: int = 32
    eval_videos_per_class: int = 8
    frame_size: int = 64
    frames_per_video: int = 32
    fps: float = 8.0
    seed: int = 0
    crf: int = 10

    def __post_init__(self):
        object.__setattr__(self, "classes", tuple(self.classes))
        unknown = [c for c in self.classes if c not in MOVING_DIGITS_CLASSES]
        if unknown or not self.classes or len(set(self.classes)) != len(self.classes):
            raise ValueError(f"classes must be distinct names from {MOVING_DIGITS_CLASSES}; got {self.classes}")
        if self.frame_size < 32 or self.frame_size % 2:
            raise ValueError(f"frame_size must be even and at least 32; got {self.frame_size}")
        if self.frames_per_video < 2 or self.videos_per_class < 1 or self.eval_videos_per_class < 1:
            raise ValueError("frames_per_video must be >= 2 and the videos per class >= 1")

    def videos_in(self, split: str) -> int:
        """Videos per class in ``split``."""
        return self.videos_per_class if split == "train" else self.eval_videos_per_class

    def hash(self) -> str:
        """A short hash of the config and the generator version: the cache folder's name."""
        payload = json.dumps({**dataclasses.asdict(self), "version": _VERSION}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


def _load_digit_images() -> np.ndarray:
    from sklearn.datasets import load_digits

    return (load_digits().images / 16.0).astype(np.float32)  # (1797, 8, 8) in [0, 1]


def _background(rng: np.random.Generator, size: int) -> torch.Tensor:
    """A static colour texture: smooth blobs plus fine grain, float ``(3, size, size)`` in [0, 0.6]."""
    coarse = torch.from_numpy(rng.uniform(0.0, 1.0, (1, 3, 6, 6)).astype(np.float32))
    smooth = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=True)[0]
    grain = torch.from_numpy(rng.uniform(-0.1, 0.1, (3, size, size)).astype(np.float32))
    return (0.1 + 0.4 * smooth + grain).clamp(0.0, 0.6)


def render_video(
    motion: str,
    rng: np.random.Generator,
    frame_size: int = 64,
    num_frames: int = 32,
    digits: np.ndarray | None = None,
) -> np.ndarray:
    """Render one Moving-Digits video.

    Args:
        motion: one of :data:`MOVING_DIGITS_CLASSES`.
        rng: the source of every random choice (digit, start, speed, colours, texture).
        frame_size: frame height and width, in pixels.
        num_frames: frames to render.
        digits: float ``(N, 8, 8)`` digit images in [0, 1] (default: scikit-learn's).

    Returns:
        uint8 ``(num_frames, frame_size, frame_size, 3)`` RGB frames.
    """
    if motion not in MOVING_DIGITS_CLASSES:
        raise ValueError(f"unknown motion {motion!r}; choose one of {MOVING_DIGITS_CLASSES}")
    digits = _load_digit_images() if digits is None else digits
    digit = digits[rng.integers(len(digits))]
    t = np.arange(num_frames, dtype=np.float64)
    # Cyclic quantities, each uniform at every frame: centre on the torus, angle, log-scale phase.
    cx = rng.uniform(0, frame_size) + np.zeros_like(t)
    cy = rng.uniform(0, frame_size) + np.zeros_like(t)
    angle = rng.uniform(0, 2 * math.pi) + np.zeros_like(t)
    phase = rng.uniform(0, 1) + np.zeros_like(t)
    speed = rng.uniform(*_SPEED) * frame_size / 64
    if motion in ("left", "right"):
        cx = cx + (speed if motion == "right" else -speed) * t
    elif motion in ("up", "down"):
        cy = cy + (speed if motion == "down" else -speed) * t  # image rows grow downwards
    elif motion in ("clockwise", "counterclockwise"):
        omega = math.radians(rng.uniform(*_ANGULAR_SPEED))
        angle = angle + (omega if motion == "clockwise" else -omega) * t  # +angle turns clockwise on screen
    else:
        rate = 1.0 / rng.uniform(*_SCALE_CYCLE)
        phase = phase + (rate if motion == "grow" else -rate) * t
    log_lo, log_hi = math.log(_SCALE_RANGE[0]), math.log(_SCALE_RANGE[1])
    scale = np.exp(log_lo + (log_hi - log_lo) * np.mod(phase, 1.0))
    cell = scale * frame_size * 0.375 / 8  # pixels per digit cell, (T,)

    # Inverse map of each pixel to digit cell coordinates: torus offset, un-rotate, un-scale.
    pix = np.arange(frame_size, dtype=np.float64) + 0.5
    dx = np.mod(pix[None, None, :] - cx[:, None, None] + frame_size / 2, frame_size) - frame_size / 2
    dy = np.mod(pix[None, :, None] - cy[:, None, None] + frame_size / 2, frame_size) - frame_size / 2
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    u = (cos * dx + sin * dy) / cell[:, None, None]  # digit cells from the digit's centre
    v = (-sin * dx + cos * dy) / cell[:, None, None]
    grid = torch.from_numpy(np.stack([u, v], axis=-1) / 4).float()  # [-1, 1] spans the 8 cells
    sprite = torch.from_numpy(digit).float().expand(num_frames, 1, 8, 8)
    alpha = torch.nn.functional.grid_sample(sprite, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    background = _background(rng, frame_size)
    colour = torch.from_numpy(rng.uniform(0.65, 1.0, (3, 1, 1)).astype(np.float32))
    frames = background * (1 - alpha) + colour * alpha  # (T, 3, H, W)
    return (frames * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def generate_moving_digits(
    config: MovingDigitsConfig | None = None, root: str | os.PathLike | None = None, progress: bool = True
) -> Path:
    """Generate a Moving-Digits dataset once; later calls return the existing folder.

    Args:
        config: what to generate (default: :class:`MovingDigitsConfig`'s defaults).
        root: the cache folder (default ``$ZOO_HOME/moving_digits``).
        progress: show a progress bar while generating.

    Returns:
        ``root/<config hash>``, holding ``config.json``, ``classes.json``, ``train.csv``,
        ``val.csv``, ``test.csv`` and ``videos/SPLIT/CLASS_NNNNN.mp4``.
    """
    config = config or MovingDigitsConfig()
    root = Path(root) if root is not None else zoo_home() / "moving_digits"
    target = root / config.hash()
    if (target / "config.json").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{config.hash()}-", dir=root))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: more threads only spin
    try:
        digits = _load_digit_images()
        # x264's macroblock-tree rate control (mbtree) made a few videos in a hundred differ by some grey levels
        # from one generation to the next (measured: 5 of 80 videos across 3 generations, none with mbtree=0).
        # Without it, the same config gives the same bytes on every run.
        encoder_options = {"crf": str(config.crf), "preset": "veryfast", "threads": "1", "x264-params": "mbtree=0"}
        total = sum(config.videos_in(s) for s in SPLITS) * len(config.classes)
        with tqdm(total=total, desc=f"Moving-Digits {config.hash()}", disable=not progress, unit="video") as bar:
            for split_id, split in enumerate(SPLITS):
                (work / "videos" / split).mkdir(parents=True)
                rows = []
                for label, motion in enumerate(config.classes):
                    motion_id = MOVING_DIGITS_CLASSES.index(motion)
                    for i in range(config.videos_in(split)):
                        rng = np.random.default_rng([config.seed, split_id, motion_id, i])
                        frames = render_video(motion, rng, config.frame_size, config.frames_per_video, digits)
                        rel = f"videos/{split}/{motion}_{i:05d}.mp4"
                        write_video(work / rel, frames, fps=config.fps, options=encoder_options)
                        rows.append((rel, label))
                        bar.update()
                with open(work / f"{split}.csv", "w", newline="") as f:
                    csv.writer(f).writerows([("path", "label"), *rows])
        (work / "classes.json").write_text(json.dumps(list(config.classes)) + "\n")
        (work / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=1) + "\n")
        try:
            os.rename(work, target)
        except OSError:  # another process finished first: keep its copy
            if not (target / "config.json").is_file():
                raise
    finally:
        torch.set_num_threads(threads)
        shutil.rmtree(work, ignore_errors=True)
    return target


def moving_digits_annotations(
    root: str | os.PathLike | None = None,
    split: str = "train",
    classes: Sequence[str] = MOVING_DIGITS_CLASSES,
    videos_per_class: int = 32,
    eval_videos_per_class: int = 8,
    frame_size: int = 64,
    frames_per_video: int = 32,
    fps: float = 8.0,
    seed: int = 0,
    crf: int = 10,
    progress: bool = True,
) -> Annotations:
    """The ``moving_digits`` dataset kind: generates on first use, then reads the split's CSV.

    Args:
        root: cache folder (default ``$ZOO_HOME/moving_digits``).
        split: ``'train'``, ``'val'`` or ``'test'``.
        progress: show a progress bar while generating.
        Others: the fields of :class:`MovingDigitsConfig`.
    """
    if split not in SPLITS:
        raise ValueError(f"moving_digits: split must be one of {SPLITS}; got {split!r}")
    config = MovingDigitsConfig(
        tuple(classes), videos_per_class, eval_videos_per_class, frame_size, frames_per_video, fps, seed, crf
    )
    folder = generate_moving_digits(config, root, progress)
    ann = csv_annotations(folder, split, classes=load_classes(folder / "classes.json"))
    ann.defaults.update(hflip=False, input_size=frame_size, short_side=frame_size)
    return ann


register_dataset("moving_digits", moving_digits_annotations, "train", "val")
