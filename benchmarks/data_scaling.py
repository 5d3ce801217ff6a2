"""How far the DataLoader's worker scaling is from the machine's own: DataLoader workers against independent processes.

    python benchmarks/data_scaling.py [--rounds 3] [--clips 12] [--sizes 240p,...] [--name data_scaling_cpu]

``benchmarks/data.py`` times a DataLoader with 1, 2, ... workers; when 2 workers give less than 2x, the cause can
be the DataLoader (collation, inter-process transfer, the main process) or the machine (cores that share caches
and memory bandwidth, or a host that gives the VM less than whole cores). This script tells them apart on the
same sources (``data.py``'s generated H.264 files, its dataset: ``reader='auto'``, 16-frame clips at stride 2,
the training transform to float ``(3, 16, 224, 224)``):

- ``dataloader``: clips per second through a DataLoader with ``k`` workers (batch size 1), timed after the
  first batch (``data.loader_rate``);
- ``processes``: ``k`` independent processes (forked, no DataLoader, nothing sent back), each building
  ``--clips`` dataset items, started together after a warm-up item; clips per second of all of them together:
  the rate ``k`` workers could reach at best on this machine.

- ``transfer``: what a DataLoader worker's hand-over costs by itself: a dataset whose items are filled tensors of
  the training item's shape (float32 ``(3, 16, 224, 224)``, 9.6 MB, and the same in uint8), milliseconds per item
  built in the process and through a DataLoader with 1 worker (batch size 1: the worker collates into shared
  memory, the main process maps it).

For ``k`` from 1 to the CPU count (at most 4), in ``--rounds`` rounds, the two kinds interleaved (the machine is
shared); medians over the rounds. ``speed_up``: the rate over the 1-worker (1-process) rate of the same round;
``dataloader_of_ceiling``: the DataLoader's speed-up over the processes' at the same ``k``.

Writes ``benchmarks/results/<name>.json`` (``env_info()``, the CPU count, the load before and after, per size
the rates per round and their medians).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import env_info, write_result  # noqa: E402
from data import FRAME_STRIDE, NUM_FRAMES, SIZES, loader_rate, make_sources  # noqa: E402

from zoo.data import create_dataset  # noqa: E402


def process_rate(ds, processes: int, clips: int) -> dict:
    """Clips per second of ``processes`` forked processes, each building ``clips`` items of ``ds`` (random
    indices, its own), timed from a common start after each one's warm-up item to the last one's end."""
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(processes + 1)
    finished = ctx.Queue()

    def work(rank: int) -> None:
        torch.set_num_threads(1)
        rng = random.Random(rank)
        indices = [rng.randrange(len(ds)) for _ in range(clips + 1)]
        ds[indices[0]]  # warm-up: the first open and decode
        barrier.wait()
        for i in indices[1:]:
            ds[i]
        finished.put(rank)

    workers = [ctx.Process(target=work, args=(rank,), daemon=True) for rank in range(processes)]
    for w in workers:
        w.start()
    barrier.wait()
    start = time.perf_counter()
    for _ in workers:
        finished.get(timeout=600)
    seconds = time.perf_counter() - start
    for w in workers:
        w.join()
        if w.exitcode:
            raise RuntimeError(f"a timing process failed (exit code {w.exitcode})")
    return {"processes": processes, "clips": processes * clips, "seconds": round(seconds, 3),
            "clips_per_second": round(processes * clips / seconds, 2)}


class FilledItems(torch.utils.data.Dataset):
    """Items of the training item's shape, filled (no decoding): the DataLoader's hand-over alone."""

    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype

    def __len__(self) -> int:
        return 1 << 20

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"video": torch.full((3, NUM_FRAMES, 224, 224), 1, dtype=self.dtype)}


def transfer_cost(items: int = 100, rounds: int = 3) -> dict:
    """Milliseconds per filled item: built in this process, and through a 1-worker DataLoader (medians)."""
    out = {}
    for dtype in (torch.float32, torch.uint8):
        ds, bare, loader = FilledItems(dtype), [], []
        for _ in range(rounds):
            start = time.perf_counter()
            for i in range(items):
                ds[i]
            bare.append((time.perf_counter() - start) / items * 1e3)
            batches = iter(torch.utils.data.DataLoader(ds, batch_size=1, num_workers=1))
            next(batches)
            start = time.perf_counter()
            for _ in range(items):
                next(batches)
            loader.append((time.perf_counter() - start) / items * 1e3)
        out[str(dtype).replace("torch.", "")] = {"item_mib": round(ds[0]["video"].nbytes / 2**20, 2),
                                                 "in_process_ms": round(statistics.median(bare), 2),
                                                 "dataloader_1_worker_ms": round(statistics.median(loader), 2)}
    return out


def measure(ds, counts: list[int], rounds: int, clips: int) -> dict:
    runs: dict[str, list[list[dict]]] = {"dataloader": [], "processes": []}
    for r in range(rounds):
        order = ["dataloader", "processes"] if r % 2 == 0 else ["processes", "dataloader"]
        for kind in order:
            if kind == "dataloader":
                rows = [loader_rate(ds, k, max(6, k * clips)) for k in counts]
            else:
                rows = [process_rate(ds, k, clips) for k in counts]
            for row in rows:
                row["speed_up"] = round(row["clips_per_second"] / rows[0]["clips_per_second"], 3)
            runs[kind].append(rows)
    medians = {kind: [{"count": k,
                       "clips_per_second": round(statistics.median(rows[i]["clips_per_second"] for rows in runs[kind]),
                                                 2),
                       "speed_up": round(statistics.median(rows[i]["speed_up"] for rows in runs[kind]), 3)}
                      for i, k in enumerate(counts)] for kind in runs}
    of_ceiling = [{"count": k, "dataloader_of_ceiling": round(d["speed_up"] / p["speed_up"], 3)}
                  for k, d, p in zip(counts, medians["dataloader"], medians["processes"])]
    return {"median": medians, "dataloader_of_ceiling": of_ceiling, "rounds": runs}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=2, help="source videos per size (default 2)")
    parser.add_argument("--frames", type=int, default=90, help="frames per source video, 30 fps (default 90)")
    parser.add_argument("--clips", type=int, default=12, help="clips per process (per worker) at 240p, fewer above")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--sizes", default=",".join(SIZES), help="comma-separated sizes (default: all)")
    parser.add_argument("--name", default="data_scaling_cpu", help="result file name")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    sizes = args.sizes.split(",")
    counts = list(range(1, min(4, os.cpu_count() or 1) + 1))
    load_before = os.getloadavg()
    results = {}
    with tempfile.TemporaryDirectory(prefix="zoo-data-scaling-") as tmp:
        root = Path(tmp)
        csvs = make_sources(root, sizes, args.videos, args.frames)
        for size, csv in csvs.items():
            scale = {"240p": 1, "480p": 1.5, "720p": 2, "1080p": 3}.get(size, 2)
            clips = max(4, round(args.clips / scale))
            ds = create_dataset("csv", root, annotations=csv, num_frames=NUM_FRAMES, frame_stride=FRAME_STRIDE,
                                train=True, reader="auto", strict=True, decode_short_side="auto")
            results[size] = {"clips_per_process": clips, **measure(ds, counts, args.rounds, clips)}
            print(size, {k: [(r["count"], r["speed_up"]) for r in v] for k, v in results[size]["median"].items()},
                  flush=True)
    transfer = transfer_cost()
    print("transfer", transfer, flush=True)
    payload = {
        "benchmark": "DataLoader workers against independent processes (the machine's parallel ceiling)",
        "env": env_info("cpu"),
        "cpu_count": os.cpu_count(),
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "settings": {"clip": f"{NUM_FRAMES} frames at stride {FRAME_STRIDE}, random start", "reader": "auto",
                     "item": "decode + training transform -> float (3, 16, 224, 224)", "rounds": args.rounds,
                     "counts": counts, "sources": {s: f"{args.videos} H.264 videos {SIZES[s][1]}x{SIZES[s][0]}, "
                                                      f"{args.frames} frames at 30 fps" for s in sizes},
                     "threads": "1 torch thread and 1 decoding thread per process / worker"},
        "results": results,
        "transfer": transfer,
    }
    print(write_result(args.name, payload))


if __name__ == "__main__":
    main()
