"""Benchmark of the video input pipeline against a measured floor: raw decode, each reader's clip read, the dataset
item, and a DataLoader with 1, 2, ... workers, at 240p, 480p, 720p and 1080p.

    python benchmarks/data.py [--videos N] [--frames N] [--clips N] [--name NAME] [--sizes 240p,480p,...]

Generates its own H.264 sources (``--videos`` per size, ``--frames`` frames at 30 fps, a key frame every
2 s, x264 ``veryfast`` CRF 23: CABAC and B-frames, as downloaded videos have) and draws clips of 16
frames at stride 2 from a random start, as the papers' training pipeline does. For every clip, in one
process and interleaved (the machine is shared: each clip is measured by every method in a shuffled
order, so load changes hit all methods alike), it times:

- ``floor``: the raw decode of exactly the frames the clip needs with FFmpeg through PyAV: open the
  file, seek to the key frame before the clip, decode up to its last frame; no conversion to RGB.
- ``<reader>``: ``open_video(path, reader, short_side=320).get_frames(indices)`` for decord, PyAV and
  torchcodec: the clip as uint8 RGB, shrunk while decoding to the short side the training transform
  needs at most (its range is [256, 320]); ``<reader>_full``: the same at full size.
- ``item_<reader>``: a dataset item, ``create_dataset('csv', ..., reader=reader, decode_short_side='auto')[i]``:
  decode + the training transform (short side drawn in [256, 320], random 224x224 crop, flip,
  normalisation) -> float ``(3, 16, 224, 224)``; ``item_<reader>_full``: the same item decoded at full size
  (``decode_short_side=None``), to tell whether shrinking while decoding pays at each size.

Then clips per second through a DataLoader (``reader='auto'``, batch size 1, random clips) with 1, 2, ...
workers, up to the CPU count (at most 4), timed after the first batch (worker start-up excluded).

Writes ``benchmarks/results/<name>.json`` (default ``data_cpu``: ``env_info()``, versions, the CPU count,
the load average before and after, the settings, per size and method the median milliseconds, clips per
second and ratio to the floor (the median over clips of the clip's time over the floor's on the same clip, with
quartiles: a clip's cost varies with its distance from the key frame before it), which of each reader's reads
the datasets do at that size (``dataset_reads``: shrunk while decoding or full size, by the reader's rule), the
fastest read and item, and the DataLoader rates) and ``<name>.png`` (the ratios).
"""
from __future__ import annotations

import argparse
import importlib.metadata
import os
import random
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from torch.utils.data import DataLoader, RandomSampler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, env_info, write_result  # noqa: E402

from zoo.data import create_dataset  # noqa: E402
from zoo.data.readers import (  # noqa: E402
    DecordReader,
    PyAVReader,
    TorchCodecReader,
    auto_readers,
    open_video,
    reader_status,
    resized_size,
    shrink_ratio,
)

SIZES = {"240p": (240, 426), "480p": (480, 854), "720p": (720, 1280), "1080p": (1080, 1920)}
NUM_FRAMES, FRAME_STRIDE, SHORT_SIDE = 16, 2, 320
READERS = ("decord", "pyav", "torchcodec")
READER_CLASSES = {"decord": DecordReader, "pyav": PyAVReader, "torchcodec": TorchCodecReader}
TARGET_READ, TARGET_ITEM = 1.25, 1.5


def source_frame(t: int, height: int, width: int, rng_state: tuple) -> np.ndarray:
    """Frame t of a moving, textured scene: uint8 ``(height, width, 3)``."""
    fx, fy, grain = rng_state
    y = np.arange(height, dtype=np.float32)[:, None]
    x = np.arange(width, dtype=np.float32)[None, :]
    frame = np.empty((height, width, 3), np.uint8)
    frame[..., 0] = 128 + 100 * np.sin(fx * (x + 4 * t)) * np.cos(fy * y)
    frame[..., 1] = 128 + 100 * np.sin(fy * (y - 3 * t) + 0.02 * x)
    frame[..., 2] = ((x + y + 6 * t) % 200).astype(np.uint8) + grain
    return frame


def encode(path: Path, frames: int, height: int, width: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    state = (*rng.uniform(0.01, 0.05, 2), rng.integers(0, 24, (height, width), dtype=np.uint8))
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(30))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23", "g": "60"}
        for t in range(frames):
            image = av.VideoFrame.from_ndarray(source_frame(t, height, width, state), format="rgb24")
            container.mux(stream.encode(image))
        container.mux(stream.encode(None))


def make_sources(folder: Path, sizes: list[str], videos: int, frames: int) -> dict[str, Path]:
    """Encode the sources; one CSV per size. Returns size -> CSV path."""
    csvs = {}
    for size in sizes:
        height, width = SIZES[size]
        lines = []
        for i in range(videos):
            encode(folder / size / f"{i}.mp4", frames, height, width, seed=i)
            lines.append(f"{size}/{i}.mp4,0")
        csvs[size] = folder / f"{size}.csv"
        csvs[size].write_text("\n".join(lines) + "\n")
    return csvs


def frame_pts(path: Path) -> np.ndarray:
    """Presentation timestamps of the video's frames, sorted (frame i is the i-th): from its packets."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        pts = [p.pts for p in container.demux(stream) if p.size]
    return np.sort(np.asarray(pts, dtype=np.int64))


def raw_decode(path: Path, pts: np.ndarray, indices: np.ndarray) -> int:
    """The floor: decode exactly the frames a clip needs (seek to the key frame before it, decode to its last frame)
    with FFmpeg through PyAV, one thread, no conversion. Returns the number of wanted frames seen."""
    wanted = {int(pts[i]) for i in indices}
    first, last = int(pts[indices.min()]), int(pts[indices.max()])
    seen = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        container.seek(first, stream=stream, backward=True, any_frame=False)
        for frame in container.decode(stream):
            if frame.pts in wanted:
                seen += 1
            if frame.pts >= last:
                break
    return seen


def measure_clips(root: Path, csv: Path, clips: int, readers: list[str]) -> dict:
    """Median milliseconds of every method over the same clips, interleaved."""
    datasets = {r: create_dataset("csv", root, annotations=csv, num_frames=NUM_FRAMES, frame_stride=FRAME_STRIDE,
                                  train=True, reader=r, strict=True, decode_short_side="auto") for r in readers}
    full_datasets = {r: create_dataset("csv", root, annotations=csv, num_frames=NUM_FRAMES, frame_stride=FRAME_STRIDE,
                                       train=True, reader=r, strict=True, decode_short_side=None) for r in readers}
    first = datasets[readers[0]]
    assert first.decode_short_side == SHORT_SIDE
    paths = [Path(s.path) for s in first.samples]
    pts = {p: frame_pts(p) for p in paths}
    methods = ["floor", *readers, *(f"{r}_full" for r in readers), *(f"item_{r}" for r in readers),
               *(f"item_{r}_full" for r in readers)]
    times: dict[str, list[float]] = {m: [] for m in methods}
    order_rng = random.Random(0)
    for k in range(clips + 1):  # clip 0 warms every method up and is not counted
        v = k % len(paths)
        path = paths[v]
        torch.manual_seed(k)
        indices = first.sampler(len(pts[path])).reshape(-1)
        calls = {"floor": lambda p=path, i=indices: raw_decode(p, pts[p], i)}
        for r in readers:
            calls[r] = lambda p=path, i=indices, r=r: open_video(p, r, short_side=SHORT_SIDE).get_frames(i)
            calls[f"{r}_full"] = lambda p=path, i=indices, r=r: open_video(p, r).get_frames(i)

            def item(k=k, v=v, r=r, full=False):
                torch.manual_seed(k)  # the same clip position as the floor's
                return (full_datasets if full else datasets)[r][v]

            calls[f"item_{r}"] = item
            calls[f"item_{r}_full"] = lambda k=k, v=v, r=r: item(k, v, r, full=True)
        shuffled = list(methods)
        order_rng.shuffle(shuffled)
        for m in shuffled:
            start = time.perf_counter()
            out = calls[m]()
            elapsed = time.perf_counter() - start
            if m == "floor":
                assert out == len(set(indices.tolist())), (path, indices)
            elif m.startswith("item_"):
                assert out["video"].shape == (3, NUM_FRAMES, 224, 224)
            if k:
                times[m].append(elapsed)
    out = {}
    for m in methods:
        med = statistics.median(times[m])
        # Paired: a clip's cost depends on how far its start lies from the key frame before it (up to 60 frames
        # to decode first), so each method's time is divided by the floor's on the same clip.
        ratios = sorted(t / f for t, f in zip(times[m], times["floor"]))
        quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
        out[m] = {"median_ms": round(1000 * med, 2), "clips_per_second": round(1 / med, 2),
                  "ratio_to_floor": round(statistics.median(ratios), 3),
                  "ratio_quartiles": [round(quartiles[0], 3), round(quartiles[2], 3)], "clips": len(times[m])}
    return out


def dataset_reads(size: str, readers: list[str]) -> dict[str, str]:
    """Per reader, the method that is the read the datasets do at ``size``: ``<reader>`` where its rule shrinks
    while decoding (``shrink='when_faster'``, :func:`zoo.data.readers.shrink_ratio`), else ``<reader>_full``."""
    height, width = SIZES[size]
    out = {}
    for r in readers:
        shrinks = resized_size(height, width, SHORT_SIDE, shrink_ratio(READER_CLASSES[r], "when_faster")) != (
            height, width)
        out[r] = r if shrinks else f"{r}_full"
    return out


def loader_rate(ds, workers: int, clips: int) -> dict:
    """Clips per second through a DataLoader, timed from the first batch to the last."""
    sampler = RandomSampler(ds, replacement=True, num_samples=clips + 1, generator=torch.Generator().manual_seed(0))
    loader = DataLoader(ds, batch_size=1, sampler=sampler, num_workers=workers)
    batches = iter(loader)
    next(batches)  # workers started, first clip delivered
    start = time.perf_counter()
    count = 0
    for batch in batches:
        assert batch["video"].shape == (1, 3, NUM_FRAMES, 224, 224)
        count += 1
    seconds = time.perf_counter() - start
    return {"num_workers": workers, "clips": count, "seconds": round(seconds, 3),
            "clips_per_second": round(count / seconds, 2)}


def versions() -> dict[str, str | None]:
    """Versions of the video stack (decord from the ``decord2`` distribution) and the FFmpeg PyAV bundles."""
    out = {}
    for dist in ("decord2", "av", "torchcodec", "torchvision", "numpy"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    out["ffmpeg_of_pyav"] = ".".join(map(str, av.library_versions.get("libavcodec", ())))
    return out


def plot(payload: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = list(payload["results"])
    readers = payload["readers"]
    groups = [*readers, *(f"item_{r}" for r in readers)]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    width = 0.8 / len(groups)
    for g, name in enumerate(groups):
        values = [payload["results"][s]["methods"][name]["ratio_to_floor"] for s in sizes]
        xs = [i + (g - (len(groups) - 1) / 2) * width for i in range(len(sizes))]
        ax.bar(xs, values, width, label=name.replace("item_", "item, "), hatch="//" if name.startswith("item") else "")
    ax.axhline(1.0, color="black", lw=0.8)
    ax.axhline(TARGET_READ, color="tab:red", ls="--", lw=0.8, label=f"target read {TARGET_READ}x")
    ax.axhline(TARGET_ITEM, color="tab:purple", ls=":", lw=0.8, label=f"target item {TARGET_ITEM}x")
    ax.set_xticks(range(len(sizes)), sizes)
    ax.set_ylabel("time / raw decode")
    ax.set_title("16-frame clips (stride 2): time per clip relative to the raw decode (lower is better)")
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=2, help="source videos per size (default 2)")
    parser.add_argument("--frames", type=int, default=90, help="frames per source video, 30 fps (default 90)")
    parser.add_argument("--clips", type=int, default=16, help="clips timed per method at 240p (fewer above)")
    parser.add_argument("--sizes", default=",".join(SIZES), help="comma-separated sizes (default: all)")
    parser.add_argument("--name", default="data_cpu", help="result file name (default data_cpu)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as in DataLoader workers
    sizes = args.sizes.split(",")
    status = reader_status()
    readers = [r for r in READERS if status[r] is None]
    load_before = os.getloadavg()
    results = {}
    with tempfile.TemporaryDirectory(prefix="zoo-data-bench-") as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        csvs = make_sources(root, sizes, args.videos, args.frames)
        print(f"sources encoded in {time.perf_counter() - t:.1f} s", flush=True)
        for size, csv in csvs.items():
            scale = {"240p": 1, "480p": 1.5, "720p": 2, "1080p": 3}.get(size, 2)
            clips = max(4, round(args.clips / scale))
            methods = measure_clips(root, csv, clips, readers)
            ds = create_dataset("csv", root, annotations=csv, num_frames=NUM_FRAMES, frame_stride=FRAME_STRIDE,
                                train=True, reader="auto", strict=True, decode_short_side="auto")
            workers = list(range(1, min(4, os.cpu_count() or 1) + 1))
            loaders = [loader_rate(ds, w, max(6, 2 * clips)) for w in workers]
            for row in loaders:
                row["speed_up"] = round(row["clips_per_second"] / loaders[0]["clips_per_second"], 2)
            best = min(readers, key=lambda r: methods[r]["ratio_to_floor"])
            best_item = min(readers, key=lambda r: methods[f"item_{r}"]["ratio_to_floor"])
            results[size] = {"methods": methods, "fastest_reader": best, "fastest_item_reader": best_item,
                             "dataset_reads": dataset_reads(size, readers), "dataloader": loaders}
            print(size, {m: v["ratio_to_floor"] for m, v in methods.items()}, "fastest", best, flush=True)
            print(size, "dataloader", [(r["num_workers"], r["clips_per_second"]) for r in loaders], flush=True)
    payload = {
        "benchmark": "data pipeline against the raw decode: clip reads, dataset items, DataLoader workers",
        "env": env_info("cpu"),
        "versions": versions(),
        "cpu_count": os.cpu_count(),
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "readers": readers,
        "unavailable_readers": {r: why for r, why in status.items() if why},
        "auto_order": auto_readers(),
        "targets": {"read_ratio": TARGET_READ, "item_ratio": TARGET_ITEM},
        "settings": {
            "clip": f"{NUM_FRAMES} frames at stride {FRAME_STRIDE}, random start",
            "decode_short_side": SHORT_SIDE,
            "transform": "short side in [256, 320], random 224x224 crop, flip, normalise -> float (3, 16, 224, 224)",
            "sources": {s: f"{args.videos} H.264 videos {SIZES[s][1]}x{SIZES[s][0]}, {args.frames} frames at 30 fps, "
                           "key frame every 60, x264 veryfast CRF 23" for s in sizes},
            "threads": "1 decoding thread per reader (as in DataLoader workers); torch 1 thread",
            "timing": "per clip, every method once in a shuffled order (interleaved); median ms, and ratio_to_floor "
                      "the median over clips of each clip's time / the floor's on the same clip (quartiles beside)",
        },
        "results": results,
    }
    path = write_result(args.name, payload)
    plot(payload, RESULTS_DIR / f"{args.name}.png")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
