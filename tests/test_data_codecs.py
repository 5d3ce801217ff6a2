"""All readers (decord, PyAV, torchcodec) give the same frames on real H.264 files (B-frames, variable frame rate);
decode-time resizing equals a resize of the full frames within the interpolation's tolerance; ``reader='auto'``
and its fallbacks; torchcodec reported unavailable with its reason."""
from __future__ import annotations

import logging
import sys
from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from torchvision.transforms.v2 import functional as F

from zoo.data import create_dataset, readers, torchcodec_reader, write_video
from zoo.data.readers import (
    DecordReader,
    PyAVReader,
    TorchCodecReader,
    VideoReadError,
    auto_readers,
    open_video,
    read_with_fallback,
    reader_status,
    resized_size,
)

pytestmark = pytest.mark.usefixtures("one_thread")

READERS = ["decord", "pyav", "torchcodec"]


def _need(reader: str) -> None:
    problem = reader_status()[reader]
    if problem is not None:
        pytest.skip(problem)


def smooth_frames(n: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    coarse = torch.rand((n, 3, 5, 5), generator=torch.Generator().manual_seed(seed))
    smooth = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=True)
    return (smooth * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def write_vfr(path, frames: np.ndarray, gaps_ms, bframes: int = 3) -> None:
    """H.264 with B-frames and a variable frame rate: each frame's pts set in milliseconds."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.time_base = Fraction(1, 1000)
        stream.options = {"bf": str(bframes), "g": "8"}
        pts = 0
        for image, gap in zip(frames, gaps_ms):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = int(pts), Fraction(1, 1000)
            pts += int(gap)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("codecs")
    frames = smooth_frames(36, 96, 128)
    gaps = np.random.default_rng(0).choice([20, 33, 50, 90], size=len(frames))
    out = {
        "bframes.mp4": write_video(root / "bframes.mp4", frames, 25, options={"bf": "3", "g": "10", "crf": "20"}),
        "bframes_open_gop.mkv": write_video(root / "bframes_open_gop.mkv", frames, 30,
                                            options={"bf": "2", "g": "12", "x264-params": "open-gop=1"}),
        "mpeg4.avi": write_video(root / "mpeg4.avi", frames, 25, codec="mpeg4", options={"q:v": "2", "g": "6"}),
    }
    for name in ("vfr.mp4", "vfr.mkv"):
        write_vfr(root / name, frames, gaps)
        out[name] = root / name
    return out, frames


@pytest.mark.parametrize("name", ["bframes.mp4", "bframes_open_gop.mkv", "mpeg4.avi", "vfr.mp4", "vfr.mkv"])
def test_all_readers_give_the_same_frames(videos, name):
    for reader in READERS:
        _need(reader)
    paths, source = videos
    path = paths[name]
    with av.open(str(path)) as c:
        truth = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    opened = {r: open_video(path, r) for r in READERS}
    assert isinstance(opened["torchcodec"], TorchCodecReader) and isinstance(opened["decord"], DecordReader)
    n = len(source)
    for reader, video in opened.items():
        assert video.num_frames == n, reader
        frames = video.get_frames(range(n))
        assert np.array_equal(frames.numpy(), truth), reader  # frame by frame, every reader
    if not name.startswith("vfr"):
        assert len({round(v.fps, 3) for v in opened.values()}) == 1
    rng = np.random.default_rng(1)
    for _ in range(5):  # sparse, unordered reads with repeats (seeking)
        idx = rng.choice(n, size=5)
        reads = {r: v.get_frames(idx) for r, v in opened.items()}
        for reader, frames in reads.items():
            assert np.array_equal(frames.numpy(), truth[idx]), (reader, idx)
    # Frame i is the i-th source frame, also where the frame rate varies.
    dist = np.abs(truth[:, None].astype(np.float32) - source[None].astype(np.float32)).mean(axis=(2, 3, 4))
    assert np.array_equal(dist.argmin(axis=1), np.arange(n))
    for video in opened.values():
        video.close()


def test_resized_size_is_torchvisions_and_never_enlarges():
    for h, w, s in [(1080, 1920, 320), (720, 1280, 256), (1920, 1080, 320), (481, 853, 256), (240, 320, 256)]:
        expected = F.resize(torch.zeros(1, h, w), s).shape[-2:] if min(h, w) > s else (h, w)
        assert resized_size(h, w, s) == tuple(expected)
    assert resized_size(100, 200, None) == (100, 200)


@pytest.fixture(scope="module")
def large(tmp_path_factory):
    frames = smooth_frames(10, 360, 640, seed=3)
    return write_video(tmp_path_factory.mktemp("large") / "360p.mp4", frames, 25, options={"crf": "16", "bf": "2"})


@pytest.mark.parametrize("reader", READERS)
def test_decode_time_resize_matches_resizing_full_frames(large, reader):
    _need(reader)
    idx = [0, 3, 4, 9]
    with open_video(large, "pyav") as full:
        reference = F.resize(full.get_frames(idx).permute(0, 3, 1, 2), 128, antialias=True).permute(0, 2, 3, 1)
    with open_video(large, reader, short_side=128) as video:
        assert video.short_side == 128
        frames = video.get_frames(idx)
    assert frames.shape == reference.shape == (4, 128, 227, 3)
    diff = (frames.float() - reference.float()).abs()
    assert diff.mean() < 2.0 and diff.max() <= 12, (reader, diff.mean().item(), diff.max().item())
    with open_video(large, reader, short_side=1000) as video:  # never enlarged
        assert video.get_frames([0]).shape == (1, 360, 640, 3)


@pytest.mark.parametrize("reader", READERS)
def test_shrink_when_faster_follows_the_readers_measured_ratio(large, reader):
    _need(reader)
    cls = readers._READERS[reader]
    assert (cls.shrink_from is None) == (reader == "torchcodec")  # torchcodec's Resize never paid (data_cpu.json)
    for short_side in (200, 160, 100):  # 360 / short_side = 1.8, 2.25, 3.6
        shrinks = cls.shrink_from is not None and 360 >= cls.shrink_from * short_side
        with open_video(large, reader, short_side=short_side, shrink="when_faster") as video:
            height, width = video.get_frames([0, 5]).shape[1:3]
        expected = resized_size(360, 640, short_side) if shrinks else (360, 640)
        assert (height, width) == expected, (reader, short_side)
        with open_video(large, reader, short_side=short_side) as video:  # "always": the size asked for
            assert video.get_frames([0]).shape[1:3] == resized_size(360, 640, short_side)
    for short_side in (100, None):  # refused whether or not frames are resized
        with pytest.raises(ValueError, match="shrink must be one of"):
            open_video(large, reader, short_side=short_side, shrink="sometimes")


def test_datasets_decode_at_the_transforms_short_side(large, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "v.mp4").write_bytes(large.read_bytes())
    full = create_dataset("folder", tmp_path, num_frames=4, frame_stride=2, train=False, input_size=112)
    shrunk = create_dataset("folder", tmp_path, num_frames=4, frame_stride=2, train=False, input_size=112,
                            decode_short_side="auto", reader="pyav")
    assert full.decode_short_side is None and shrunk.decode_short_side == 128  # 112 * 256 / 224
    assert shrunk.read_clips(0).shape == (1, 4, 128, 227, 3) and full.read_clips(0).shape[2:4] == (360, 640)
    a, b = full[0]["video"], shrunk[0]["video"]
    assert a.shape == b.shape == (3, 4, 112, 112)
    assert (a - b).abs().mean() < 0.05  # normalised units: about 3 grey levels
    train = create_dataset("folder", tmp_path, num_frames=4, train=True, input_size=112, decode_short_side="auto")
    assert train.decode_short_side == 160  # the top of the training range [128, 160]


def _broken(message):
    def read(self, indices):
        raise VideoReadError(message, self.path)

    return read


def test_auto_takes_the_first_available_reader_and_falls_back(videos, monkeypatch, caplog):
    for reader in READERS:
        _need(reader)
    path = videos[0]["bframes.mp4"]
    assert auto_readers() == ["pyav", "decord", "torchcodec"]  # the measured rule (readers.AUTO_ORDER)
    assert isinstance(open_video(path, "auto"), PyAVReader)
    expected = open_video(path, "pyav").get_frames([2, 5])

    def read(video):
        return type(video), video.get_frames([2, 5])

    assert read_with_fallback(path, lambda v: read(v)[0], "torchcodec") is TorchCodecReader
    monkeypatch.setattr(readers, "_warned_fallback", False)
    monkeypatch.setattr(PyAVReader, "_read_sorted", _broken("pyav broke"))
    with caplog.at_level(logging.WARNING, logger="zoo.data.readers"):
        got = read_with_fallback(path, read, "auto")
    assert got[0] is DecordReader and torch.equal(got[1], expected)
    assert any("pyav broke; read with decord instead" in r.message for r in caplog.records)
    monkeypatch.setattr(DecordReader, "_read_sorted", _broken("decord broke"))
    got = read_with_fallback(path, read, "auto")
    assert got[0] is TorchCodecReader and torch.equal(got[1], expected)
    monkeypatch.setattr(TorchCodecReader, "_read_sorted", _broken("torchcodec broke"))
    with pytest.raises(VideoReadError, match="pyav broke; decord broke; torchcodec broke"):
        read_with_fallback(path, lambda v: v.get_frames([0]), "auto")
    with pytest.raises(VideoReadError, match="torchcodec broke; pyav broke"):  # torchcodec falls back to PyAV
        read_with_fallback(path, lambda v: v.get_frames([0]), "torchcodec")
    monkeypatch.undo()


def test_a_dataset_reads_with_auto(videos, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "v.mp4").write_bytes(videos[0]["bframes.mp4"].read_bytes())
    kw = dict(num_frames=4, frame_stride=2, train=False, input_size=64)
    auto, pyav = (create_dataset("folder", tmp_path, reader=r, **kw) for r in ("auto", "pyav"))
    assert auto.reader == "auto" and torch.equal(auto[0]["video"], pyav[0]["video"])


def test_torchcodec_unavailable_is_reported_with_its_reason(videos, monkeypatch, caplog):
    path = videos[0]["bframes.mp4"]
    torchcodec_reader.torchcodec_problem.cache_clear()
    monkeypatch.setitem(sys.modules, "torchcodec.decoders", None)  # as if its FFmpeg libraries failed to load
    try:
        problem = reader_status()["torchcodec"]
        if problem and "not installed" in problem:
            pytest.skip(problem)
        assert problem is not None and "FFmpeg's shared libraries" in problem and "apt-get install ffmpeg" in problem
        assert "torchcodec" not in auto_readers()
        with pytest.raises(VideoReadError, match="FFmpeg's shared libraries"):
            TorchCodecReader(path)
        monkeypatch.setattr(readers, "_warned_unavailable", set())
        with caplog.at_level(logging.WARNING, logger="zoo.data.readers"):
            assert isinstance(open_video(path, "torchcodec"), PyAVReader)
            assert isinstance(open_video(path, "torchcodec"), PyAVReader)
        assert sum("reading videos with PyAV instead" in r.message for r in caplog.records) == 1
    finally:
        monkeypatch.undo()
        torchcodec_reader.torchcodec_problem.cache_clear()


@pytest.mark.timeout(60)
def test_torchcodec_on_a_file_whose_header_lies(tmp_path):
    _need("torchcodec")
    frames = smooth_frames(60, 48, 64, seed=3)
    full = write_video(tmp_path / "full.mp4", frames, 25, options={"g": "10"},
                       container_options={"movflags": "faststart"})
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    head = read_with_fallback(cut, lambda v: v.get_frames(range(5)), "torchcodec")
    with open_video(full, "pyav") as intact:
        assert torch.equal(head, intact.get_frames(range(5)))
    with pytest.raises(VideoReadError, match="cut.mp4"):
        read_with_fallback(cut, lambda v: v.get_frames(range(v.num_frames)), "torchcodec")
