"""Moving-Digits: deterministic, cached, and only motion tells the classes apart."""
import csv
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torchvision.transforms import v2

from zoo.data import MOVING_DIGITS_CLASSES, MovingDigitsConfig, create_dataset, generate_moving_digits, open_video
from zoo.data import moving_digits as md
from zoo.data._home import zoo_home

# Small enough to generate in a few seconds, large enough for the classifiers below.
OPTIONS = dict(videos_per_class=20, eval_videos_per_class=10, frame_size=40, frames_per_video=12, progress=False)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        home = tmp_path_factory.mktemp("zoo_home")
        mp.setenv("ZOO_HOME", str(home))
        yield home


@pytest.fixture(scope="module")
def splits(home):
    return {s: create_dataset("moving_digits", None, split=s, train=False, **OPTIONS) for s in ("train", "test")}


def test_zoo_home(monkeypatch, tmp_path):
    monkeypatch.setenv("ZOO_HOME", str(tmp_path))
    assert zoo_home() == tmp_path
    monkeypatch.delenv("ZOO_HOME")
    assert zoo_home() == Path.home() / ".cache" / "zoo"


def test_render_is_deterministic_and_seeded():
    a = md.render_video("clockwise", np.random.default_rng(7), frame_size=48, num_frames=5)
    b = md.render_video("clockwise", np.random.default_rng(7), frame_size=48, num_frames=5)
    c = md.render_video("clockwise", np.random.default_rng(8), frame_size=48, num_frames=5)
    assert a.shape == (5, 48, 48, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert not np.array_equal(a[0], a[-1])  # it moves


@pytest.mark.parametrize("motion, rate, sign", [
    ("left", 0, -1), ("right", 0, 1), ("up", 1, -1), ("down", 1, 1),
    ("clockwise", 2, 1), ("counterclockwise", 2, -1), ("grow", 3, 1), ("shrink", 3, -1),
])
def test_each_class_moves_as_its_name_says(motion, rate, sign):
    """Measured from the pixels: x/y velocity, angular velocity (clockwise on screen > 0), scaling rate."""
    rng = np.random.default_rng(11)
    videos = np.stack([md.render_video(motion, rng, frame_size=64, num_frames=8) for _ in range(6)])
    rates = motion_features(videos.astype(np.float32) / 255)[:, :4]  # medians over frame pairs
    assert np.all(np.sign(rates[:, rate]) == sign), rates[:, rate]


def test_generation_is_cached_per_config(home, splits, monkeypatch):
    folder = Path(splits["train"].samples[0].path).parents[2]
    config = MovingDigitsConfig(**{k: v for k, v in OPTIONS.items() if k != "progress"})
    assert folder == home / "moving_digits" / config.hash()
    for split, per_class in (("train", 20), ("val", 10), ("test", 10)):
        with open(folder / f"{split}.csv") as f:
            rows = list(csv.reader(f))
        assert rows[0] == ["path", "label"] and len(rows) == 1 + per_class * len(MOVING_DIGITS_CLASSES)
    with open_video(splits["test"].samples[0].path) as video:
        assert (video.num_frames, *video.get_frames([0]).shape[1:]) == (12, 40, 40, 3)

    def no_rendering(*args, **kwargs):
        raise AssertionError("regenerated a cached dataset")

    monkeypatch.setattr(md, "render_video", no_rendering)
    assert generate_moving_digits(config, progress=False) == folder  # reused, not rendered again
    assert MovingDigitsConfig(seed=1).hash() != MovingDigitsConfig().hash()


def test_the_dataset_kind(splits):
    train, test = splits["train"], splits["test"]
    assert train.classes == list(MOVING_DIGITS_CLASSES)
    assert len(train) == 160 and len(test) == 80
    assert test[0]["video"].shape == (3, 16, 40, 40)  # 16 frames at stride 2 from 12: looped
    flips = create_dataset("moving_digits", None, split="train", num_frames=4, **OPTIONS).transform.transforms
    assert not any(isinstance(t, v2.RandomHorizontalFlip) for t in flips)  # flips swap left/right and cw/ccw
    two = create_dataset("moving_digits", None, classes=("left", "right"), num_frames=4, **{
        **OPTIONS, "videos_per_class": 2, "eval_videos_per_class": 1})
    assert two.classes == ["left", "right"] and two.labels == [0, 0, 1, 1]
    with pytest.raises(ValueError, match="classes must be distinct names"):
        MovingDigitsConfig(classes=("left", "sideways"))
    with pytest.raises(ValueError, match="split must be one of"):
        create_dataset("moving_digits", None, split="holdout", **OPTIONS)


def load_videos(ds):
    """float (N, T, H, W, 3) in [0, 1], and labels (N,)."""
    videos = []
    for s in ds.samples:
        with open_video(s.path) as video:
            videos.append(video.get_frames(range(video.num_frames)).numpy())
    return np.stack(videos).astype(np.float32) / 255, np.array(ds.labels)


def frame_features(videos):
    """Per frame: 5x5 pooled grey image, contrast and edge statistics, mean colour: (N, T, 32)."""
    grey = videos.mean(-1)
    n, t, h, w = grey.shape
    pooled = grey.reshape(n, t, 5, h // 5, 5, w // 5).mean((3, 5)).reshape(n, t, 25)
    gx, gy = np.abs(np.diff(grey, axis=3)), np.abs(np.diff(grey, axis=2))
    stats = np.stack([grey.mean((2, 3)), grey.std((2, 3)), gx.mean((2, 3)), gy.mean((2, 3))], -1)
    return np.concatenate([pooled, stats, videos.mean((2, 3))], -1)


def motion_features(videos):
    """From frame differences: least-squares translation, rotation and scaling rates (brightness constancy).

    With D the difference of two frames and G the gradient of their mean, a motion field u
    gives D = -G.u; projecting D on G.u for u = x-shift, y-shift, rotation and scaling about
    the centre of change (a circular mean on the torus) estimates each rate. (N, 8): median
    and mean over frame pairs.
    """
    grey = videos.mean(-1)
    n, t, h, w = grey.shape
    mean, diff = (grey[:, 1:] + grey[:, :-1]) / 2, grey[:, 1:] - grey[:, :-1]
    gx = (np.roll(mean, -1, 3) - np.roll(mean, 1, 3)) / 2
    gy = (np.roll(mean, -1, 2) - np.roll(mean, 1, 2)) / 2
    weight = np.abs(diff)
    phase = np.exp(2j * np.pi * (np.arange(w) + 0.5) / w)
    cx = np.angle((weight * phase[None, None, None, :]).sum((2, 3))) * w / (2 * np.pi)
    cy = np.angle((weight * phase[None, None, :, None]).sum((2, 3))) * h / (2 * np.pi)
    pos = np.arange(w) + 0.5
    dx = np.mod(pos[None, None, None, :] - cx[..., None, None] + w / 2, w) - w / 2
    dy = np.mod(pos[None, None, :, None] - cy[..., None, None] + h / 2, h) - h / 2
    fields = [gx, gy, dx * gy - dy * gx, dx * gx + dy * gy]
    rates = np.stack([-(diff * f).sum((2, 3)) / ((f * f).sum((2, 3)) + 1e-6) for f in fields], -1)
    return np.concatenate([np.median(rates, 1), rates.mean(1)], -1)


def classifier():
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))


def test_single_frames_are_at_chance_but_frame_differences_tell_the_motion(splits):
    train_videos, train_labels = load_videos(splits["train"])
    test_videos, test_labels = load_videos(splits["test"])
    chance = 1 / len(MOVING_DIGITS_CLASSES)

    # A per-frame classifier, its frame scores averaged over each video.
    train_f, test_f = frame_features(train_videos), frame_features(test_videos)
    t = train_f.shape[1]
    per_frame = classifier().fit(train_f.reshape(-1, train_f.shape[-1]), np.repeat(train_labels, t))
    scores = per_frame.predict_log_proba(test_f.reshape(-1, test_f.shape[-1])).reshape(len(test_labels), t, -1)
    frame_accuracy = (scores.mean(1).argmax(1) == test_labels).mean()
    assert frame_accuracy < chance + 0.15, f"single frames tell the class: {frame_accuracy:.2f}"

    motion = classifier().fit(motion_features(train_videos), train_labels)
    motion_accuracy = motion.score(motion_features(test_videos), test_labels)
    assert motion_accuracy > 0.7, f"frame differences should tell the motion: {motion_accuracy:.2f}"


def test_generation_gives_the_same_bytes_every_time(tmp_path):
    """The same config encodes to the same files on every run, so figures measured on it can be reproduced."""
    config = MovingDigitsConfig(videos_per_class=10, eval_videos_per_class=1, frame_size=48, frames_per_video=32)
    first = generate_moving_digits(config, root=tmp_path / "a", progress=False)
    second = generate_moving_digits(config, root=tmp_path / "b", progress=False)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert len(files) == 5 + 12 * len(MOVING_DIGITS_CLASSES)
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    differing = [str(f) for f in files if (first / f).read_bytes() != (second / f).read_bytes()]
    assert differing == []
