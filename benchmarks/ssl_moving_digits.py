"""Linear-probe top-1 on Moving-Digits after short self-supervised pre-training: HCML, MSCL, MCL, random init.

    python benchmarks/ssl_moving_digits.py [--steps 40] [--batch-size 8] [--name ssl_moving_digits_cpu]

All four use the same backbone (R3D-18, 8 frames 2 apart at 32 x 32), the same data (Moving-Digits:
8 classes that differ only in motion, generated into ``$ZOO_HOME``), the same optimiser (SGD,
momentum 0.9, weight decay 1e-4, lr 0.05 per 8 videos, cosine with a 10% linear warm-up, gradient
clip 5) and the same budget: ``--steps`` optimizer steps of ``--batch-size`` videos, through
``zoo train``'s engine (no labels are used):

- ``hcml``: R3D-18 with HCML adapters, the progressive self-supervised stages level1 -> level2 ->
  level3, a third of the steps each (one step ahead, ``deltas=[1]``: level 3 has 2 time steps). These
  stages train the backbone up to res4; res5 keeps its initial weights and the fusions ``g`` stay zero
  (the paper trains them in its joint stage, with labels), so the probed features are the backbone's.
- ``mscl``: the MSCL objective, flow branch R2D-18; Farneback flow every 2 frames between frames 8
  apart (the official gap and distance; RAFT weights are not available offline).
- ``mcl``: the MCL objective; Farneback flow of consecutive frames (the official TV-L1 needs OpenCV
  contrib).
- ``random``: the randomly initialised R3D-18 (the same seed as every run's initial weights).

Queues hold 256 keys (ours: a few hundred steps' worth; the papers' 65,536 and 131,072 would be mostly
never-written random vectors in so short a run). The probe: the frozen backbone's pooled features of
one centred clip per video, a logistic regression on standardised features fitted on the training
split (``zoo.train.linear_probe_accuracy``), top-1 on the test split; kNN top-1 (k = 5, cosine) too.
Chance is 12.5%.

Writes ``benchmarks/results/<name>.json`` with ``env_info()``, the settings, and per method the probe
figures, the last training losses and the wall times (the machine may be shared: see the load).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import env_info, write_result  # noqa: E402

import zoo  # noqa: E402
from zoo.data import MOVING_DIGITS_CLASSES, create_dataset, video_collate  # noqa: E402
from zoo.train import (  # noqa: E402
    Trainer,
    build_model_from_checkpoint,
    knn_accuracy,
    linear_probe_accuracy,
    load_training_checkpoint,
    predict,
    recipe_from_dict,
)
from zoo.train.plots import read_metrics  # noqa: E402

SEED = 0
FRAMES, STRIDE, SIZE = 8, 2, 32
DATA_OPTIONS = {"frame_size": SIZE, "frames_per_video": 32, "videos_per_class": 40, "eval_videos_per_class": 8,
                "progress": False}
QUEUE = 256


def _recipe(method: str, steps: int, batch_size: int, out: Path) -> dict[str, Any]:
    """The zoo recipe of one self-supervised run."""
    # A stage of n steps is ceil(n / batches per epoch) epochs cut to n steps in all; its warm-up is 10% of
    # them, and so is MCL's MAL warm-up.
    model: dict[str, Any] = {"name": "r3d_18"}
    stage_steps = max(1, steps // 3) if method == "hcml" else steps
    epochs = math.ceil(stage_steps / (len(MOVING_DIGITS_CLASSES) * DATA_OPTIONS["videos_per_class"] // batch_size))
    stage = {"epochs": epochs, "warmup_epochs": 0.1 * epochs, "evaluate": False}
    if method == "hcml":
        model = {"name": "hcml", "kwargs": {"backbone": "r3d_18", "hcml_cfg": {"deltas": [1]}}}
        stages = [{"name": f"level{lv}", "objective": "hcml", "objective_cfg": {"stage": f"level{lv}"}, **stage}
                  for lv in (1, 2, 3)]
    elif method == "mscl":
        cfg = {"queue_size": QUEUE, "flow": {"provider": "farneback", "gap": 2, "adjacent": 8, "progress": False}}
        stages = [{"name": "mscl", "objective": "mscl", "objective_cfg": cfg, **stage}]
    elif method == "mcl":
        cfg = {"queue_size": QUEUE, "flow": {"provider": "farneback", "gap": 1, "adjacent": 1, "progress": False},
               "mal_warmup_epochs": 0.1 * epochs}
        stages = [{"name": "mcl", "objective": "mcl", "objective_cfg": cfg, **stage}]
    else:
        raise ValueError(f"unknown method {method!r}")
    return {
        "name": f"ssl_{method}", "seed": SEED, "output_dir": str(out), "device": "cpu", "threads": 2,
        "progress": False, "log_every": 1, "max_steps_per_epoch": math.ceil(stage_steps / epochs),
        "model": model,
        "data": {"kind": "moving_digits", "num_frames": FRAMES, "frame_stride": STRIDE, "input_size": SIZE,
                 "batch_size": batch_size, "num_workers": 0, "reader": "pyav", "options": DATA_OPTIONS},
        "optim": {"name": "sgd", "lr": 0.05, "base_batch_size": 8, "momentum": 0.9, "weight_decay": 1e-4,
                  "clip_grad": 5.0},
        "stages": stages,
        "eval": {"accuracy": False, "confusion_matrix": False, "knn": []},
    }


def _features(model: torch.nn.Module, split: str) -> dict[str, torch.Tensor]:
    dataset = create_dataset("moving_digits", split=split, num_frames=FRAMES, frame_stride=STRIDE, train=False,
                             reader="pyav", **DATA_OPTIONS)
    loader = DataLoader(dataset, batch_size=16, collate_fn=video_collate)
    return predict(model, loader, features="head")


def probe(model: torch.nn.Module) -> dict[str, float]:
    """Linear-probe and kNN top-1 (percent) of the model's pooled features: train split -> test split."""
    train, test = _features(model, "train"), _features(model, "test")
    train_acc, test_acc = linear_probe_accuracy(train["features"], train["labels"], test["features"], test["labels"])
    knn = knn_accuracy(test["features"], test["labels"], train["features"], train["labels"], 5)
    return {"probe_train_top1": round(train_acc, 2), "probe_test_top1": round(test_acc, 2), "knn_top1@5": round(knn, 2)}


def run(steps: int, batch_size: int) -> dict[str, Any]:
    torch.set_num_threads(2)
    results: dict[str, Any] = {}
    start = time.perf_counter()
    for split in ("train", "test"):
        create_dataset("moving_digits", split=split, **DATA_OPTIONS)
    generation_s = time.perf_counter() - start
    torch.manual_seed(SEED)
    random_model = zoo.create_model("r3d_18", num_classes=8)
    start = time.perf_counter()
    results["random"] = {**probe(random_model), "probe_s": round(time.perf_counter() - start, 1)}
    print("random", results["random"], flush=True)
    with tempfile.TemporaryDirectory(prefix="zoo-ssl-") as tmp:
        for method in ("hcml", "mscl", "mcl"):
            recipe = recipe_from_dict(_recipe(method, steps, batch_size, Path(tmp) / method), source=method)
            load = os.getloadavg()[0]
            result = Trainer(recipe).run()
            records = [r for r in read_metrics(result.run_dir / "metrics.jsonl") if r["kind"] == "train"]
            model = build_model_from_checkpoint(load_training_checkpoint(result.checkpoint))
            start = time.perf_counter()
            figures = probe(model)
            results[method] = {
                **figures,
                "steps": records[-1]["step"],
                "stages": [s.name for s in recipe.stages],
                "first_loss": round(records[0]["loss"], 4),
                "last_loss": round(records[-1]["loss"], 4),
                "train_wall_time_s": round(result.wall_time_s, 1),
                "probe_s": round(time.perf_counter() - start, 1),
                "load_average_1m_at_start": round(load, 2),
            }
            print(method, results[method], flush=True)
    return {
        "benchmark": "linear probe on Moving-Digits after short self-supervised pre-training (R3D-18, same budget)",
        "env": env_info("cpu"),
        "cpu_count": os.cpu_count(),
        "settings": {"backbone": "r3d_18", "frames": FRAMES, "frame_stride": STRIDE, "size": SIZE,
                     "steps": steps, "batch_size": batch_size, "queue_size": QUEUE, "data": DATA_OPTIONS,
                     "optimizer": "sgd lr 0.05 per 8 videos, momentum 0.9, wd 1e-4, cosine, 10% warm-up, clip 5",
                     "probe": "logistic regression on standardised pooled features, train -> test split",
                     "chance_top1": 12.5},
        "data_generation_s": round(generation_s, 1),
        "results": results,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=40, help="optimizer steps per method (HCML: a third per level)")
    parser.add_argument("--batch-size", type=int, default=8, help="videos per step")
    parser.add_argument("--name", default="ssl_moving_digits_cpu", help="results file name")
    args = parser.parse_args(argv)
    payload = run(args.steps, args.batch_size)
    print(write_result(args.name, payload))


if __name__ == "__main__":
    main()
