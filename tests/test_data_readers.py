"""Readers: decord and PyAV give the same frames for the same indices; broken files fail cleanly."""
import logging

import av
import numpy as np
import pytest
import torch
from PIL import Image

from zoo.data import readers
from zoo.data.readers import (
    DecordReader,
    FrameFolderReader,
    PyAVReader,
    VideoReadError,
    open_video,
    read_with_fallback,
)
from zoo.data.writer import write_video

FPS = 25

# name -> (codec, frames, width, height, encoder options, pixel format)
VIDEOS = {
    "h264_gop8.mp4": ("libx264", 31, 64, 48, {"crf": "18", "g": "8", "bf": "2"}, "yuv420p"),
    "h264_bframes.mkv": ("libx264", 20, 80, 64, {"g": "5", "bf": "3"}, "yuv420p"),
    "h264_seek.mp4": ("libx264", 45, 160, 120, {"g": "12"}, "yuv420p"),
    "mpeg4.mp4": ("mpeg4", 17, 66, 50, {"q:v": "2"}, "yuv420p"),
    "vp9.webm": ("libvpx-vp9", 13, 64, 64, {}, "yuv420p"),
    "mjpeg.avi": ("mjpeg", 9, 64, 48, {"q:v": "2"}, "yuvj420p"),
}


def source_frames(n: int, width: int, height: int, seed: int = 0) -> np.ndarray:
    """Distinct smooth frames: uint8 (n, height, width, 3)."""
    coarse = torch.rand((n, 3, 4, 4), generator=torch.Generator().manual_seed(seed))
    smooth = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=True)
    return (smooth * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    out = {}
    for name, (codec, n, w, h, options, pix_fmt) in VIDEOS.items():
        frames = source_frames(n, w, h)
        out[name] = (write_video(root / name, frames, FPS, codec, pix_fmt, options), frames)
    return out


def decode_all_sequentially(path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


@pytest.mark.parametrize("name", list(VIDEOS))
def test_readers_agree_exactly(videos, name):
    path, source = videos[name]
    truth = decode_all_sequentially(path)
    n = len(source)
    assert len(truth) == n
    with open_video(path, "decord") as d, open_video(path, "pyav") as p:
        assert isinstance(d, DecordReader) and isinstance(p, PyAVReader)
        for r in (d, p):
            assert r.num_frames == n
            assert r.fps == pytest.approx(FPS)
            assert r.duration == pytest.approx(n / FPS)
        all_d, all_p = d.get_frames(range(n)), p.get_frames(range(n))
        assert all_d.dtype == torch.uint8 and all_d.shape == (n, *source.shape[1:])
        assert torch.equal(all_d, all_p)
        assert np.array_equal(all_d.numpy(), truth)
        rng = np.random.default_rng(1)
        for _ in range(6):  # sparse reads exercise seeking
            idx = np.sort(rng.choice(n, size=min(n, 4), replace=False))
            assert torch.equal(d.get_frames(idx), p.get_frames(idx)), idx
            assert np.array_equal(p.get_frames(idx).numpy(), truth[idx])
    # Index i is source frame i: each decoded frame is closest to its own source frame.
    dist = np.abs(truth[:, None].astype(np.float32) - source[None].astype(np.float32)).mean(axis=(2, 3, 4))
    assert np.array_equal(dist.argmin(axis=1), np.arange(n))


@pytest.mark.parametrize("reader", ["decord", "pyav"])
def test_get_frames_any_order_and_repeats(videos, reader):
    path, _ = videos["h264_seek.mp4"]
    with open_video(path, reader) as r:
        frames = r.get_frames([30, 2, 30, 0, 44])
        singles = torch.stack([r.get_frames([i])[0] for i in (30, 2, 30, 0, 44)])
        assert torch.equal(frames, singles)
        with pytest.raises(IndexError):
            r.get_frames([0, 45])
        with pytest.raises(IndexError):
            r.get_frames([-1])


class _CountingContainer:
    """Wraps a PyAV container and counts the frames it decodes."""

    def __init__(self, container):
        self.container = container
        self.decoded = 0

    def seek(self, *args, **kwargs):
        return self.container.seek(*args, **kwargs)

    def decode(self, *args, **kwargs):
        for frame in self.container.decode(*args, **kwargs):
            self.decoded += 1
            yield frame

    def close(self):
        self.container.close()


def test_pyav_decodes_only_from_the_key_frame_before_the_clip(videos):
    path, source = videos["h264_seek.mp4"]  # 45 frames, a key frame every 12
    reader = PyAVReader(path)
    counter = _CountingContainer(reader._container)
    reader._container = counter
    frames = reader.get_frames([38, 40, 42])
    assert np.array_equal(frames.numpy(), decode_all_sequentially(path)[[38, 40, 42]])
    assert counter.decoded <= 12, "decoded from the start instead of the key frame at 36"
    reader.close()


@pytest.fixture(scope="module")
def truncated(tmp_path_factory):
    """An mp4 with its index in front (faststart) cut in half: the header promises 60 frames."""
    root = tmp_path_factory.mktemp("truncated")
    frames = source_frames(60, 64, 48, seed=3)
    full = write_video(root / "full.mp4", frames, FPS, options={"g": "10"}, container_options={"movflags": "faststart"})
    data = full.read_bytes()
    cut = root / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    return full, cut


@pytest.mark.timeout(60)
@pytest.mark.parametrize("reader", ["decord", "pyav"])
def test_file_whose_header_lies_neither_hangs_nor_crashes(truncated, reader):
    full, cut = truncated
    with av.open(str(cut)) as c:
        assert c.streams.video[0].frames == 60  # what the header claims
    with open_video(cut, reader) as r:
        assert 0 < r.num_frames < 60  # counted from the packets that are there
        with pytest.raises(VideoReadError, match="cut.mp4"):
            r.get_frames(range(r.num_frames))
    # The intact head still reads. decord's decoding thread reads ahead and may meet the damaged
    # tail first, failing any read of the file: PyAV then reads it.
    head = read_with_fallback(cut, lambda v: v.get_frames(range(5)), reader)
    with open_video(full, reader) as intact:
        assert torch.equal(head, intact.get_frames(range(5)))


@pytest.mark.parametrize("reader", ["decord", "pyav"])
def test_unreadable_files_raise_video_read_error(tmp_path, reader):
    empty = tmp_path / "empty.mp4"
    empty.touch()
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 50)
    no_frames = tmp_path / "no_frames"
    no_frames.mkdir()
    for path, reason in [(empty, "empty file"), (text, "cannot open"), (tmp_path / "missing.mp4", "no such file"),
                         (no_frames, "no frames")]:
        with pytest.raises(VideoReadError, match=reason) as info:
            open_video(path, reader)
        assert info.value.path == str(path) and str(path) in str(info.value)


def test_unknown_reader_is_rejected(videos):
    with pytest.raises(ValueError, match="unknown reader"):
        open_video(videos["vp9.webm"][0], "opencv")


def test_frame_folder_reader(tmp_path):
    frames = source_frames(7, 40, 30, seed=5)
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(tmp_path / f"{i + 1:05d}.png")
    (tmp_path / "notes.txt").write_text("ignored")
    with open_video(tmp_path, "pyav", fps=12.0) as r:
        assert isinstance(r, FrameFolderReader)
        assert (r.num_frames, r.fps, r.duration) == (7, 12.0, pytest.approx(7 / 12))
        assert np.array_equal(r.get_frames([6, 0, 3]).numpy(), frames[[6, 0, 3]])
    assert FrameFolderReader(tmp_path).duration is None


def test_decord_missing_falls_back_to_pyav_with_one_warning(videos, monkeypatch, caplog):
    monkeypatch.setattr(readers, "decord_available", lambda: False)
    monkeypatch.setattr(readers, "_warned_no_decord", False)
    path = videos["mpeg4.mp4"][0]
    with caplog.at_level(logging.WARNING, logger="zoo.data.readers"):
        assert isinstance(open_video(path, "decord"), PyAVReader)
        assert isinstance(open_video(path, "decord"), PyAVReader)
    assert sum("decord is not installed" in r.message for r in caplog.records) == 1


def test_read_with_fallback_retries_with_pyav(videos, monkeypatch, caplog):
    path, _ = videos["h264_gop8.mp4"]

    def broken(self, indices):
        raise VideoReadError("simulated decord failure", self.path)

    monkeypatch.setattr(DecordReader, "_read_sorted", broken)
    monkeypatch.setattr(readers, "_warned_fallback", False)
    with caplog.at_level(logging.WARNING, logger="zoo.data.readers"):
        frames = read_with_fallback(path, lambda v: v.get_frames([1, 3]), "decord")
    assert np.array_equal(frames.numpy(), decode_all_sequentially(path)[[1, 3]])
    assert any("simulated decord failure" in r.message for r in caplog.records)
    monkeypatch.setattr(PyAVReader, "_read_sorted", broken)
    with pytest.raises(VideoReadError, match="simulated decord failure; simulated decord failure"):
        read_with_fallback(path, lambda v: v.get_frames([1, 3]), "decord")


def test_write_video_checks_its_input(tmp_path):
    with pytest.raises(ValueError, match=r"uint8 \(T, H, W, 3\)"):
        write_video(tmp_path / "x.mp4", np.zeros((4, 16, 16), np.uint8))
