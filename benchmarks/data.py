"""Benchmark of the video input pipeline: clips per second through decode + transforms.

    python benchmarks/data.py [--videos N] [--frames N] [--clips N] [--name NAME]

Generates its own H.264 sources (``--videos`` per size, ``--frames`` frames at 30 fps, a key
frame every 2 s, x264 ``veryfast`` CRF 23: CABAC and B-frames, as downloaded videos have) at
320x240 and 1280x720, lists them in a CSV, and reads them through ``create_dataset('csv', ...)``
with the papers' training pipeline: 16 frames at stride 2 from a random start, short side
drawn in [256, 320], random 224x224 crop, flip, normalisation; clips come out as float
``(3, 16, 224, 224)``.

Measured for decord and PyAV, with 1 and 2 DataLoader workers (batch size 1, random clips):
clips per second after the first batch (worker start-up excluded). A single-process run
also splits the time of one clip into decoding and transforms (median milliseconds).

Writes ``benchmarks/results/<name>.json`` (default ``data_cpu``) with ``env_info()``, the CPU
count and the load average before and after (the machine may be shared), the settings and
the figures.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, RandomSampler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import env_info, write_result  # noqa: E402

from zoo.data import create_dataset, write_video  # noqa: E402

SIZES = {"320x240": (240, 320), "1280x720": (720, 1280)}
NUM_FRAMES, FRAME_STRIDE = 16, 2


def source_frames(n: int, height: int, width: int, seed: int) -> np.ndarray:
    """A moving, textured scene: uint8 ``(n, height, width, 3)``."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    fx, fy = rng.uniform(0.01, 0.05, 2)
    grain = rng.integers(0, 24, (height, width), dtype=np.uint8)
    frames = np.empty((n, height, width, 3), np.uint8)
    for t in range(n):
        frames[t, ..., 0] = 128 + 100 * np.sin(fx * (x + 4 * t)) * np.cos(fy * y)
        frames[t, ..., 1] = 128 + 100 * np.sin(fy * (y - 3 * t) + 0.02 * x)
        frames[t, ..., 2] = ((x + y + 6 * t) % 200).astype(np.uint8) + grain
    return frames


def make_sources(folder: Path, videos: int, frames: int) -> dict[str, Path]:
    """Encode the sources; one CSV per size. Returns size -> CSV path."""
    csvs = {}
    for size, (height, width) in SIZES.items():
        lines = []
        for i in range(videos):
            path = folder / size / f"{i}.mp4"
            write_video(path, source_frames(frames, height, width, seed=i), fps=30,
                        options={"preset": "veryfast", "crf": "23", "g": "60"})
            lines.append(f"{size}/{i}.mp4,0")
        csvs[size] = folder / f"{size}.csv"
        csvs[size].write_text("\n".join(lines) + "\n")
    return csvs


def dataset(root: Path, csv: Path, reader: str):
    return create_dataset("csv", root, annotations=csv, num_frames=NUM_FRAMES, frame_stride=FRAME_STRIDE,
                          train=True, reader=reader, strict=True)


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
    return {"clips": count, "seconds": round(seconds, 3), "clips_per_second": round(count / seconds, 2)}


def breakdown(ds, clips: int) -> dict:
    """Median milliseconds of decoding and of transforming one clip, in this process."""
    decode, transform = [], []
    torch.manual_seed(0)
    for i in range(clips):
        t0 = time.perf_counter()
        raw = ds.read_clips(i % len(ds))
        t1 = time.perf_counter()
        ds.transform(raw[0])
        t2 = time.perf_counter()
        decode.append(t1 - t0)
        transform.append(t2 - t1)
    return {"decode_ms": round(1000 * statistics.median(decode), 1),
            "transform_ms": round(1000 * statistics.median(transform), 1)}


def versions() -> dict[str, str | None]:
    """Versions of the video stack (decord from the ``decord2`` distribution)."""
    out = {}
    for dist in ("decord2", "av", "torchvision", "numpy"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=3, help="source videos per size (default 3)")
    parser.add_argument("--frames", type=int, default=150, help="frames per source video, 30 fps (default 150)")
    parser.add_argument("--clips", type=int, default=40, help="clips timed per setting (default 40)")
    parser.add_argument("--name", default="data_cpu", help="result file name (default data_cpu)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as in DataLoader workers
    load_before = os.getloadavg()
    results, split = [], []
    with tempfile.TemporaryDirectory(prefix="zoo-data-bench-") as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        csvs = make_sources(root, args.videos, args.frames)
        print(f"sources encoded in {time.perf_counter() - t:.1f} s")
        for size, csv in csvs.items():
            clips = args.clips if size == "320x240" else max(8, args.clips // 3)
            for reader in ("decord", "pyav"):
                ds = dataset(root, csv, reader)
                split.append({"source": size, "reader": reader, **breakdown(ds, min(clips, 12))})
                print(split[-1])
                for workers in (1, 2):
                    row = {"source": size, "reader": reader, "num_workers": workers, **loader_rate(ds, workers, clips)}
                    results.append(row)
                    print(row)
    payload = {
        "benchmark": "data pipeline: decode + transforms, clips per second",
        "env": env_info("cpu"),
        "versions": versions(),
        "cpu_count": os.cpu_count(),
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "settings": {
            "clip": f"{NUM_FRAMES} frames at stride {FRAME_STRIDE}, random start",
            "transform": "short side in [256, 320], random 224x224 crop, flip, normalise -> float (3, 16, 224, 224)",
            "sources": {s: f"{args.videos} H.264 videos, {args.frames} frames at 30 fps, key frame every 60, "
                           "x264 veryfast CRF 23" for s in SIZES},
            "batch_size": 1,
            "torch_threads_main_process": 1,
        },
        "results": results,
        "single_process_breakdown": split,
    }
    path = write_result(args.name, payload)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
