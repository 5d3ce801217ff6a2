"""Linear-probe top-1 on Moving-Digits after short self-supervised pre-training: HCML, MSCL, MCL, random init.

    python benchmarks/ssl_moving_digits.py [--steps 40] [--batch-size 8] [--seeds 0 1 2] [--name ssl_moving_digits_cpu]
    python benchmarks/plot_ssl_curves.py      # the per-term curves of the JSON as a PNG beside it
    python benchmarks/ssl_moving_digits.py --merge-from A B --name OUT   # the seeds of runs made apart, in one file

All four use the same backbone (R3D-18, 8 frames 2 apart at 32 x 32), the same data (Moving-Digits:
8 classes that differ only in motion, generated into ``$ZOO_HOME``), the same optimiser (SGD,
momentum 0.9, weight decay 1e-4, lr 0.05 per 8 videos (``--lr``), cosine with a 10% linear warm-up, gradient
clip 5; ``--key-momentum`` sets MSCL's and MCL's key encoders' momentum, the official ones by default, and
``--bn-groups`` their BN groups, MoCo's one-process shuffled BN, 1 by default)
and the same budget: ``--steps`` optimizer steps of ``--batch-size`` videos, through
``zoo train``'s engine (no labels are used):

- ``hcml``: R3D-18 with HCML adapters, the progressive self-supervised stages level1 -> level2 ->
  level3, a third of the steps each (one step ahead, ``deltas=[1]``: level 3 has 2 time steps). These
  stages train the backbone up to res4; res5 keeps its initial weights and the fusions ``g`` stay zero
  (the paper trains them in its joint stage, with labels), so the probed features are the backbone's.
- ``mscl``: the MSCL objective, flow branch R2D-18; Farneback flow every 2 frames between frames 8
  apart (the official gap and distance; RAFT weights are not available offline).
- ``mcl``: the MCL objective; Farneback flow of consecutive frames (the official TV-L1 needs OpenCV
  contrib).
- ``random``: the randomly initialised R3D-18 of each seed.

Queues hold 256 keys (ours: a few hundred steps' worth; the papers' 65,536 and 131,072 would be mostly
never-written random vectors in so short a run). The probe: the frozen backbone's pooled features of
one centred clip per video, a logistic regression on standardised features fitted on the training
split (320 videos, ``zoo.train.linear_probe_accuracy``), top-1 on the test split (512 videos); kNN top-1
(k = 5, cosine, the training split as the gallery) too. Chance is 12.5%. Each seed sets the initial
weights and the data order; the runs go seed by seed (random init, then each method), so a stopped job
leaves whole runs. Standard errors: over seeds (std / sqrt(n)), never below the binomial error of the
test videos (for one seed, that error alone).

Writes ``benchmarks/results/<name>.json`` after every run (``status`` says whether all ran) with
``env_info()``, the settings, and per method its runs (probe figures with their binomial standard
errors, first and last loss, median step time from the logged clips/s, wall times, the load at start
and end, and ``curves``: every scalar the objective logged, per step), their ``summary`` over seeds,
and ``comparison``: each method against random init (difference and two standard errors).

``--merge-from`` joins results files of the same settings run apart (one seed each, in parallel processes):
their runs, seed by seed, in one file with the summaries and comparison recomputed over all of them; the
inputs' environments are kept under ``merged_from``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, env_info, write_result  # noqa: E402

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
# 40 training videos per class (the probe's training split, and the pre-training set), 64 per class in the test
# split: 512 test videos, a binomial standard error of about 2 points on a top-1 near 20%.
DATA_OPTIONS = {"frame_size": SIZE, "frames_per_video": 32, "videos_per_class": 40, "eval_videos_per_class": 64,
                "progress": False}
QUEUE = 256


def _recipe(method: str, steps: int, batch_size: int, out: Path, lr: float = 0.05,
            moco_cfg: dict[str, Any] | None = None, mscl_cfg: dict[str, Any] | None = None) -> dict[str, Any]:
    """The zoo recipe of one self-supervised run (``moco_cfg``: settings of MSCL's and MCL's objectives beyond
    the defaults, e.g. their key encoders' ``momentum`` or ``bn_groups``; ``mscl_cfg``: MSCL's alone, e.g. its
    ``loss_weights``)."""
    # A stage of n steps is ceil(n / batches per epoch) epochs cut to n steps in all; its warm-up is 10% of
    # them, and so is MCL's MAL warm-up.
    model: dict[str, Any] = {"name": "r3d_18"}
    moco_cfg = moco_cfg or {}
    stage_steps = max(1, steps // 3) if method == "hcml" else steps
    epochs = math.ceil(stage_steps / (len(MOVING_DIGITS_CLASSES) * DATA_OPTIONS["videos_per_class"] // batch_size))
    stage = {"epochs": epochs, "warmup_epochs": 0.1 * epochs, "evaluate": False}
    if method == "hcml":
        model = {"name": "hcml", "kwargs": {"backbone": "r3d_18", "hcml_cfg": {"deltas": [1]}}}
        stages = [{"name": f"level{lv}", "objective": "hcml", "objective_cfg": {"stage": f"level{lv}"}, **stage}
                  for lv in (1, 2, 3)]
    elif method == "mscl":
        cfg = {"queue_size": QUEUE, "flow": {"provider": "farneback", "gap": 2, "adjacent": 8, "progress": False},
               **moco_cfg, **(mscl_cfg or {})}
        stages = [{"name": "mscl", "objective": "mscl", "objective_cfg": cfg, **stage}]
    elif method == "mcl":
        cfg = {"queue_size": QUEUE, "flow": {"provider": "farneback", "gap": 1, "adjacent": 1, "progress": False},
               "mal_warmup_epochs": 0.1 * epochs, **moco_cfg}
        stages = [{"name": "mcl", "objective": "mcl", "objective_cfg": cfg, **stage}]
    else:
        raise ValueError(f"unknown method {method!r}")
    return {
        "name": f"ssl_{method}", "seed": SEED, "output_dir": str(out), "device": "cpu",
        "threads": torch.get_num_threads(),
        "progress": False, "log_every": 1, "max_steps_per_epoch": math.ceil(stage_steps / epochs),
        "model": model,
        "data": {"kind": "moving_digits", "num_frames": FRAMES, "frame_stride": STRIDE, "input_size": SIZE,
                 "batch_size": batch_size, "num_workers": 0, "reader": "pyav", "options": DATA_OPTIONS},
        "optim": {"name": "sgd", "lr": lr, "base_batch_size": 8, "momentum": 0.9, "weight_decay": 1e-4,
                  "clip_grad": 5.0},
        "stages": stages,
        "eval": {"accuracy": False, "confusion_matrix": False, "knn": []},
    }


def _features(model: torch.nn.Module, split: str) -> dict[str, torch.Tensor]:
    dataset = create_dataset("moving_digits", split=split, num_frames=FRAMES, frame_stride=STRIDE, train=False,
                             reader="pyav", **DATA_OPTIONS)
    loader = DataLoader(dataset, batch_size=16, collate_fn=video_collate)
    return predict(model, loader, features="head")


def _binomial_se(percent: float, n: int) -> float:
    p = percent / 100
    return 100 * math.sqrt(max(p * (1 - p), 0.25 / n) / n)  # floored at 0.5 / n, for 0% and 100%


def probe(model: torch.nn.Module) -> dict[str, float]:
    """Linear-probe and kNN top-1 (percent) of the model's pooled features: train split -> test split, with the
    binomial standard error of each on the test split's videos."""
    train, test = _features(model, "train"), _features(model, "test")
    train_acc, test_acc = linear_probe_accuracy(train["features"], train["labels"], test["features"], test["labels"])
    knn = knn_accuracy(test["features"], test["labels"], train["features"], train["labels"], 5)
    n = len(test["labels"])
    return {"probe_train_top1": round(train_acc, 2), "probe_test_top1": round(test_acc, 2),
            "knn_top1@5": round(knn, 2), "test_videos": n, "probe_test_se": round(_binomial_se(test_acc, n), 2),
            "knn_se": round(_binomial_se(knn, n), 2)}


# Terms kept as curves (everything else the objective logs is kept too, these are the ones plotted).
CURVE_SKIP = ("kind", "stage", "epoch", "lr")


def _curves(records: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Every logged scalar as a list over the training records (``step`` first), rounded."""
    keys = list(dict.fromkeys(k for r in records for k, v in r.items()  # every stage's terms (HCML's differ)
                              if k not in CURVE_SKIP and isinstance(v, (int, float))))
    return {k: [round(float(r.get(k, float("nan"))), 4) for r in records] for k in keys}


def train_one(method: str, seed: int, steps: int, batch_size: int, tmp: Path, lr: float = 0.05,
              moco_cfg: dict[str, Any] | None = None, mscl_cfg: dict[str, Any] | None = None) -> dict[str, Any]:
    """Pre-train one method with one seed; its probe figures, curves and step times."""
    recipe = _recipe(method, steps, batch_size, tmp / f"{method}_{seed}", lr, moco_cfg, mscl_cfg)
    recipe["seed"] = seed
    recipe["name"] = f"ssl_{method}_{seed}"
    recipe = recipe_from_dict(recipe, source=method)
    load = os.getloadavg()[0]
    result = Trainer(recipe).run()
    records = [r for r in read_metrics(result.run_dir / "metrics.jsonl") if r["kind"] == "train"]
    step_s = [batch_size / r["clips_per_s"] for r in records if r.get("clips_per_s")]
    model = build_model_from_checkpoint(load_training_checkpoint(result.checkpoint))
    start = time.perf_counter()
    figures = probe(model)
    return {**figures, "seed": seed, "steps": records[-1]["step"], "stages": [s.name for s in recipe.stages],
            "first_loss": round(records[0]["loss"], 4), "last_loss": round(records[-1]["loss"], 4),
            "train_wall_time_s": round(result.wall_time_s, 1),
            "step_s_median": round(statistics.median(step_s), 3) if step_s else None,
            "probe_s": round(time.perf_counter() - start, 1), "load_average_1m_at_start": round(load, 2),
            "load_average_1m_at_end": round(os.getloadavg()[0], 2), "curves": _curves(records)}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean over seeds of each figure, with its standard error: over seeds when there are several (std / sqrt(n)),
    else the run's binomial one."""
    out: dict[str, Any] = {"seeds": [r["seed"] for r in runs]}
    for key, binomial in (("probe_test_top1", "probe_test_se"), ("knn_top1@5", "knn_se"),
                          ("probe_train_top1", None)):
        values = [r[key] for r in runs]
        mean = statistics.mean(values)
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        se = std / math.sqrt(len(values)) if len(values) > 1 else (runs[0][binomial] if binomial else 0.0)
        if binomial:  # never below the binomial error of the mean of the runs' test videos
            se = max(se, math.sqrt(sum(r[binomial] ** 2 for r in runs)) / len(runs))
        out[key] = {"mean": round(mean, 2), "std": round(std, 2), "se": round(se, 2), "values": values}
    for key in ("step_s_median", "train_wall_time_s"):
        values = [r[key] for r in runs if r.get(key) is not None]
        if values:
            out[key] = round(statistics.median(values), 3)
    return out


def compare(results: dict[str, Any]) -> dict[str, Any]:
    """Each method against random init: the difference of the mean top-1 and two standard errors of it."""
    out: dict[str, Any] = {}
    base = results.get("random", {}).get("summary")
    for method in ("hcml", "mscl", "mcl"):
        mine = results.get(method, {}).get("summary")
        if not base or not mine:
            continue
        out[method] = {}
        for key in ("probe_test_top1", "knn_top1@5"):
            diff = mine[key]["mean"] - base[key]["mean"]
            two_se = 2 * math.sqrt(mine[key]["se"] ** 2 + base[key]["se"] ** 2)
            out[method][key] = {"difference": round(diff, 2), "two_se": round(two_se, 2),
                                "beats_random": diff > two_se}
    return out


# settings that may differ between files merged into one: which seeds ran, and the threads each used
_MERGE_FREE = ("seeds", "threads")
# settings added after some results files were written, with the value every run had before them
_SETTINGS_BEFORE_THEY_EXISTED = {"mscl_loss_weights": "official (every term 1)"}


def merge(sources: list[str], name: str) -> dict[str, Any]:
    """Join the results files ``sources`` (names under ``benchmarks/results``, same settings but the seeds)
    into ``name``: every run of every method, by seed, with ``summary`` and ``comparison`` recomputed."""
    files = []
    for source in sources:
        path = RESULTS_DIR / f"{source}.json"
        if not path.is_file():
            raise SystemExit(f"--merge-from: no results file {path}")
        data = json.loads(path.read_text())
        data["settings"] = {**_SETTINGS_BEFORE_THEY_EXISTED, **data["settings"]}
        files.append((source, data))
    first = files[0][1]["settings"]
    for source, data in files[1:]:
        differ = [k for k in set(first) | set(data["settings"])
                  if k not in _MERGE_FREE and first.get(k) != data["settings"].get(k)]
        if differ:
            raise SystemExit(f"--merge-from: {source} differs from {files[0][0]} in {sorted(differ)}")
    results: dict[str, Any] = {}
    for source, data in files:
        if data.get("status") != "done":
            raise SystemExit(f"--merge-from: {source} is not done (status {data.get('status')!r})")
        for method, entry in data["results"].items():
            runs = results.setdefault(method, {"runs": []})["runs"]
            seeds = {r["seed"] for r in runs}
            for run_result in entry["runs"]:
                if run_result["seed"] in seeds:
                    raise SystemExit(f"--merge-from: {method} seed {run_result['seed']} is in more than one file")
                runs.append(run_result)
    for entry in results.values():
        entry["runs"].sort(key=lambda r: r["seed"])
        entry["summary"] = summarise(entry["runs"])
    seeds = sorted({r["seed"] for entry in results.values() for r in entry["runs"]})
    payload = {**files[0][1], "settings": {**first, "seeds": seeds}, "status": "done", "results": results,
               "comparison": compare(results),
               "merged_from": [{"name": source, "seeds": data["settings"]["seeds"], "env": data["env"],
                                "threads": data["settings"].get("threads")} for source, data in files]}
    write_result(name, payload)
    return payload


def mark_stopped(name: str, why: str) -> None:
    """Set the ``status`` of a results file whose job was stopped before all its runs (the runs in it stay)."""
    path = RESULTS_DIR / f"{name}.json"
    payload = json.loads(path.read_text())
    if payload.get("status") != "done":
        done = {m: len(e["runs"]) for m, e in payload["results"].items()}
        payload["status"] = f"stopped: {why} (runs finished: {done})"
        write_result(name, payload)


def run(steps: int, batch_size: int, seeds: list[int], methods: list[str], name: str,
        budget_min: float | None = None, lr: float = 0.05, key_momentum: float | None = None,
        bn_groups: int = 1, threads: int = 2, mscl_loss_weights: dict[str, float] | None = None) -> dict[str, Any]:
    torch.set_num_threads(threads)
    moco_cfg: dict[str, Any] = {} if key_momentum is None else {"momentum": key_momentum}
    mscl_cfg = {"loss_weights": mscl_loss_weights} if mscl_loss_weights else {}
    if bn_groups != 1:
        moco_cfg["bn_groups"] = bn_groups
    job_start = start = time.perf_counter()
    for split in ("train", "test"):
        create_dataset("moving_digits", split=split, **DATA_OPTIONS)
    generation_s = time.perf_counter() - start
    payload: dict[str, Any] = {
        "benchmark": "linear probe on Moving-Digits after short self-supervised pre-training (R3D-18, same budget)",
        "env": env_info("cpu"),
        "cpu_count": os.cpu_count(),
        "settings": {"backbone": "r3d_18", "frames": FRAMES, "frame_stride": STRIDE, "size": SIZE,
                     "steps": steps, "batch_size": batch_size, "queue_size": QUEUE, "data": DATA_OPTIONS,
                     "seeds": seeds, "methods": methods,
                     "optimizer": f"sgd lr {lr:g} per 8 videos, momentum 0.9, wd 1e-4, cosine, 10% warm-up, clip 5",
                     "key_momentum": "official (MSCL 0.994 rising to 1, MCL 0.999)" if key_momentum is None
                     else f"{key_momentum:g} (MSCL: the start of its cosine rise to 1)",
                     "bn_groups": bn_groups, "threads": threads,
                     "mscl_loss_weights": mscl_loss_weights or "official (every term 1)",
                     "probe": "logistic regression on standardised pooled features, train -> test split",
                     "knn": "k = 5, cosine, train split as the gallery",
                     "standard_errors": "over seeds (std / sqrt(seeds)), never below the binomial error of the "
                                        "test videos",
                     "chance_top1": 12.5},
        "data_generation_s": round(generation_s, 1),
        "status": "running",
        "results": {},
    }
    results = payload["results"]

    def save() -> None:
        payload["comparison"] = compare(results)
        payload["env"]["load_average_1m"] = round(os.getloadavg()[0], 2)
        write_result(name, payload)

    with tempfile.TemporaryDirectory(prefix="zoo-ssl-") as tmp:
        for seed in seeds:  # seed by seed, so that a stopped run leaves whole seeds
            torch.manual_seed(seed)
            random_model = zoo.create_model("r3d_18", num_classes=8)
            begin = time.perf_counter()
            entry = results.setdefault("random", {"runs": []})
            entry["runs"].append({**probe(random_model), "seed": seed,
                                  "probe_s": round(time.perf_counter() - begin, 1)})
            entry["summary"] = summarise(entry["runs"])
            save()
            print("random", seed, {k: v for k, v in entry["runs"][-1].items() if k != "curves"}, flush=True)
            for method in methods:
                if budget_min is not None and time.perf_counter() - job_start > 60 * budget_min:
                    payload["status"] = f"stopped: the budget of {budget_min} minutes was spent"
                    save()
                    return payload
                run_result = train_one(method, seed, steps, batch_size, Path(tmp), lr, moco_cfg, mscl_cfg)
                entry = results.setdefault(method, {"runs": []})
                entry["runs"].append(run_result)
                entry["summary"] = summarise(entry["runs"])
                save()
                print(method, seed, {k: v for k, v in run_result.items() if k != "curves"}, flush=True)
    payload["status"] = "done"
    save()
    return payload


def _weights(text: str | None) -> dict[str, float] | None:
    """``'cross=0,cross_rotated=0'`` -> ``{'cross': 0.0, 'cross_rotated': 0.0}``."""
    if not text:
        return None
    pairs = [item.split("=", 1) for item in text.split(",")]
    if any(len(p) != 2 for p in pairs):
        raise SystemExit(f"--mscl-loss-weights takes TERM=WEIGHT,...; got {text!r}")
    return {k.strip(): float(v) for k, v in pairs}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=40, help="optimizer steps per method (HCML: a third per level)")
    parser.add_argument("--batch-size", type=int, default=8, help="videos per step")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (initial weights, data order)")
    parser.add_argument("--methods", nargs="+", default=["hcml", "mscl", "mcl"], choices=["hcml", "mscl", "mcl"])
    parser.add_argument("--name", default="ssl_moving_digits_cpu", help="results file name")
    parser.add_argument("--lr", type=float, default=0.05,
                        help="SGD learning rate per 8 videos, for every method (default 0.05)")
    parser.add_argument("--key-momentum", type=float, default=None,
                        help="MSCL's and MCL's key-encoder momentum (default: the official ones)")
    parser.add_argument("--bn-groups", type=int, default=1,
                        help="MSCL's and MCL's BN groups per batch (MoCo's one-process shuffled BN; default 1)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of the training and the probes")
    parser.add_argument("--mscl-loss-weights", default=None, metavar="TERM=W,...",
                        help="MSCL's term weights (zoo.methods.mscl.MSCL_TERMS; default: the official, all 1)")
    parser.add_argument("--budget-min", type=float, default=None,
                        help="start no new run after this many minutes (the file's status says so)")
    parser.add_argument("--merge-from", nargs="+", metavar="NAME", default=None,
                        help="only join these results files (same settings, other seeds) into --name")
    parser.add_argument("--mark-stopped", metavar="WHY", default=None,
                        help="only set the status of an existing results file whose job was stopped")
    args = parser.parse_args(argv)
    if args.merge_from:
        merge(args.merge_from, args.name)
        print(RESULTS_DIR / f"{args.name}.json")
        return
    if args.mark_stopped:
        mark_stopped(args.name, args.mark_stopped)
        return
    run(args.steps, args.batch_size, args.seeds, args.methods, args.name, args.budget_min, args.lr, args.key_momentum,
        args.bn_groups, args.threads, _weights(args.mscl_loss_weights))
    print(RESULTS_DIR / f"{args.name}.json")


if __name__ == "__main__":
    main()
