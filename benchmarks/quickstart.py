"""The quickstart's wall time and top-1: HCML R2D-18 and the plain R2D-18 on Moving-Digits.

Runs ``recipes/quickstart.yaml`` and ``recipes/quickstart_baseline.yaml`` one after the other, each
from scratch in a temporary run folder, and writes ``benchmarks/results/quickstart_<device>.json``
with their top-1/top-5 on Moving-Digits' validation split, their wall times (training and
evaluation; the one-off generation of the dataset is timed apart), and the machine's load before
and after, since a shared machine slows every number down.

Target (the README's promise): HCML at least 90% top-1, the baseline near chance (12.5% for 8
classes), each within 5 minutes on an idle 2-core CPU. Each run's wall time is split as the trainer
measures it (``RunResult.time_split``): setup, training epochs (of which the time the loop waited
for batches: data loading that did not overlap the steps), the validations between epochs, the
final evaluation (with its kNN retrieval over the training set), checkpoints, plots, and the rest;
and per stage, from the run's ``metrics.jsonl``, its epochs' training and validation time. The
machine's speed is measured before and after (``reference_step_ms``: one R2D-18 training step of the
quickstart's batch), so that wall times of runs on different hosts or days can be compared.

    python benchmarks/quickstart.py                  # the recipes as they are
    python benchmarks/quickstart.py device=cpu       # any recipe override, applied to both
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import env_info, write_result  # noqa: E402

from zoo.train import load_recipe, train  # noqa: E402

RECIPES = Path(__file__).resolve().parent.parent / "recipes"
TARGET = {"hcml_top1_min": 90.0, "baseline_top1_max": 25.0, "wall_time_s_max": 300.0, "cpu_cores": 2}


def _generate_data(overrides: list[str]) -> float:
    """Generate (or find) the quickstart's Moving-Digits; returns the seconds it took."""
    from zoo.data import create_dataset

    data = load_recipe(RECIPES / "quickstart.yaml", overrides).data
    start = time.perf_counter()
    for split in (data.train_split, data.val_split):
        create_dataset(data.kind, data.root, split=split, **data.options)
    return time.perf_counter() - start


def time_split(run_dir: Path, run_split: dict[str, float]) -> dict:
    """Where a run's wall time went: the run's own split (``RunResult.time_split``: setup, training, of which data
    waits, validations, final evaluation with its kNN retrieval, checkpoints, plots, other), and per stage, from its
    ``metrics.jsonl``, the training epochs, their data waits and the validations."""
    import json

    path = Path(run_dir) / "metrics.jsonl"
    epochs = [json.loads(line) for line in path.read_text().splitlines() if '"kind": "epoch"' in line] \
        if path.is_file() else []
    stages: dict[str, dict[str, float]] = {}
    for r in epochs:
        s = stages.setdefault(r["stage"], {"epochs": 0, "train_s": 0.0, "data_wait_s": 0.0, "val_s": 0.0})
        s["epochs"] += 1
        s["train_s"] += r.get("epoch_time_s", 0.0)
        s["data_wait_s"] += r.get("data_wait_s", 0.0)
        s["val_s"] += r.get("val_time_s", 0.0)
    return {"run": {k: round(v, 1) for k, v in run_split.items()},
            "stages": {k: {n: round(v, 1) for n, v in s.items()} for k, s in stages.items()}}


def reference_step_ms(steps: int = 12, warmup: int = 3) -> float:
    """The machine's speed on the quickstart's kind of work: the median wall time (ms) of one training step of the
    plain R2D-18 (forward, backward, SGD; a batch of 8 clips of 8 frames at 48 px, the quickstart's), after warm-up.
    Wall times of runs on different hosts or days are read against it: a slower or busier host slows the reference
    step as it slows the runs."""
    import statistics

    from zoo import create_model

    torch.manual_seed(0)
    model = create_model("r2d_18", num_classes=8).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    clips, labels = torch.randn(8, 3, 8, 48, 48), torch.arange(8)
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        torch.nn.functional.cross_entropy(model(clips), labels).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return round(1000 * statistics.median(times), 1)


def run(overrides: list[str], runs_dir: str | None = None) -> dict:
    runs = {}
    load_before = os.getloadavg()
    reference_before = reference_step_ms()
    generation_s = _generate_data(overrides)
    with tempfile.TemporaryDirectory(prefix="zoo-quickstart-") as tmp:
        tmp = runs_dir or tmp
        for name in ("quickstart", "quickstart_baseline"):
            recipe = load_recipe(RECIPES / f"{name}.yaml", [*overrides, f"output_dir={Path(tmp) / name}", "compare=[]"])
            load = os.getloadavg()
            result = train(recipe)
            split = time_split(result.run_dir, result.time_split)
            runs[name] = {
                "recipe": f"recipes/{name}.yaml",
                "model": recipe.model.name,
                "stages": [f"{s.name}: {s.objective} x {s.epochs} epochs" for s in recipe.stages],
                "top1": result.metrics["top1"],
                "top5": result.metrics["top5"],
                "val_videos": result.metrics["videos"],
                "knn_recall@1": result.metrics.get("knn_recall@1"),
                "wall_time_s": round(result.wall_time_s, 1),
                "wall_time_in_reference_steps": round(1000 * result.wall_time_s / reference_before),
                "time_split": split,
                "load_average_1m_at_start": round(load[0], 2),
                "load_average_1m_at_end": round(os.getloadavg()[0], 2),
            }
    hcml, base = runs["quickstart"], runs["quickstart_baseline"]
    return {
        "benchmark": "quickstart: zoo train recipes/quickstart.yaml (HCML R2D-18, then R2D-18) on Moving-Digits",
        "env": env_info("cpu"),
        "cpu_count": os.cpu_count(),
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "overrides": overrides,
        "data_generation_s": round(generation_s, 1),
        "reference_step_ms": {"before": reference_before, "after": reference_step_ms(),
                              "what": "median wall time of one R2D-18 training step, batch 8 x 3 x 8 x 48 x 48"},
        "runs": runs,
        "target": TARGET,
        "meets_target": {
            "hcml_top1": hcml["top1"] >= TARGET["hcml_top1_min"],
            "baseline_near_chance": base["top1"] <= TARGET["baseline_top1_max"],
            "hcml_time": hcml["wall_time_s"] <= TARGET["wall_time_s_max"],
            "baseline_time": base["wall_time_s"] <= TARGET["wall_time_s_max"],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="recipe overrides applied to both recipes")
    parser.add_argument("--name", default=None, help="result file name (default quickstart_<device>)")
    parser.add_argument("--runs-dir", default=None, help="keep the two run folders (checkpoints, plots) here")
    args = parser.parse_args()
    torch.set_num_threads(min(torch.get_num_threads(), os.cpu_count() or 1))
    payload = run(args.overrides, args.runs_dir)
    path = write_result(args.name or "quickstart_cpu", payload)
    for name, r in payload["runs"].items():
        print(f"{name:22s} {r['model']:12s} top-1 {r['top1']:5.1f}%  top-5 {r['top5']:5.1f}%  "
              f"{r['wall_time_s']:6.1f} s")
        print("    " + ", ".join(f"{k} {v:.1f}" for k, v in r["time_split"]["run"].items()))
    print(f"load average before/after: {payload['load_average_before']} / {payload['load_average_after']}")
    print(f"written: {path}")


if __name__ == "__main__":
    main()
