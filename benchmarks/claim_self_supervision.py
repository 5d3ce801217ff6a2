"""Paper claims (Table 2, Table 5): self-supervision helps the prime motion blocks, and HCML's
self-supervision is a pre-training that transfers.

Table 2 analogue (PMB alone against PMB + self-supervision), HCML R2D-18 on Moving-Digits:

- ``pmb_alone``: the quickstart's model trained by cross-entropy only, for as many epochs as the
  quickstart trains in all (5 + 8 = 13): the PMBs learn through ``g`` from the labels;
- PMB + self-supervision: the quickstart itself (levels 1-3 self-supervised, then joint training),
  and the plain R2D-18; both read from ``claim_temporal_order_cpu.json`` (same seeds).

Table 5 analogue (pre-training), same model and data:

- ``pretrain``: the quickstart's self-supervised stages only (level1, level2, level3: 5 epochs, no
  labels); ``random``: the same network at initialisation (same seed);
- linear probe: a logistic regression on the standardised pooled backbone features (the
  classifier's input) of one centred clip per video, fitted on the training split, tested on val
  (``zoo.train.linear_probe_accuracy``), for both;
- fine-tuning: cross-entropy only, 8 epochs (the quickstart's joint-stage budget), from ``pretrain``'s
  checkpoint (``model.checkpoint``) and from the random initialisation.

Writes ``benchmarks/results/claim_self_supervision_cpu.json`` (runs merged by seed).

    python benchmarks/claim_self_supervision.py                  # seed 0
    python benchmarks/claim_self_supervision.py --seeds 1 2      # more seeds, merged into the file
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _claims import (  # noqa: E402
    classification_stage,
    joint_stage,
    level_stages,
    mean_std,
    motion_features,
    no_accuracy_eval,
    previous_runs,
    probe_figures,
    quickstart_recipe,
    stage_names,
)
from _common import RESULTS_DIR, env_info, write_result  # noqa: E402

import zoo  # noqa: E402
from zoo.data import MOVING_DIGITS_CLASSES  # noqa: E402
from zoo.train import build_model_from_checkpoint, knn_accuracy, load_training_checkpoint, train  # noqa: E402

NAME = "claim_self_supervision_cpu"
PAPER = {
    "table2": "UCF-101 top-1 (R2D-50): baseline 66.0%, PMB alone 71.6%, PMB + self-supervision 79.8%; "
              "SS-V1 36.1 / 43.6 / 44.3%",
    "table5": "S3D fine-tuned on UCF-101 (split 1): 77.0% from random initialisation, 87.1% after HCML "
              "self-supervised pre-training on K400 (Table 5); the paper reports no linear probe",
}


def _probe(model: torch.nn.Module, recipe) -> dict[str, Any]:
    """Linear probe (and kNN, k = 5) of the pooled backbone features, train split -> val split."""
    train_set = motion_features(model, recipe, recipe.data.train_split)
    val_set = motion_features(model, recipe, recipe.data.val_split)
    knn = knn_accuracy(val_set["head"], val_set["labels"], train_set["head"], train_set["labels"], 5)
    return {**probe_figures(train_set["head"], train_set["labels"], val_set["head"], val_set["labels"]),
            "knn_top1@5": round(knn, 2)}


def _train(recipe) -> tuple[dict[str, Any], Path]:
    start = time.perf_counter()
    result = train(recipe)
    info = {"stages": stage_names(recipe), "wall_time_s": round(time.perf_counter() - start, 1)}
    if "top1" in result.metrics:
        info.update(top1=round(result.metrics["top1"], 2), top5=round(result.metrics["top5"], 2))
    return info, result.checkpoint


def run_seed(seed: int, root: Path, overrides: list[str]) -> dict[str, Any]:
    base = quickstart_recipe("x", seed, root, overrides)
    ss_epochs = sum(s.epochs for s in level_stages(base))
    ft_epochs = joint_stage(base).epochs
    runs: dict[str, Any] = {}

    recipe = quickstart_recipe("pmb_alone", seed, root / "pmb_alone", overrides)
    recipe.stages = [classification_stage("classify", ss_epochs + ft_epochs)]
    runs["pmb_alone"], _ = _train(recipe)
    print(f"seed {seed} pmb_alone: {runs['pmb_alone']}", flush=True)

    recipe = quickstart_recipe("pretrain", seed, root / "pretrain", overrides)
    recipe.stages = level_stages(recipe)
    recipe.eval = no_accuracy_eval()
    info, pretrained = _train(recipe)
    torch.manual_seed(seed)  # the initial weights of every run of this seed (as the trainer seeds them)
    initial = zoo.create_model(recipe.model.name, num_classes=len(MOVING_DIGITS_CLASSES), **recipe.model.kwargs)
    runs["random_probe"] = _probe(initial, recipe)
    runs["pretrain_probe"] = {**info, **_probe(build_model_from_checkpoint(load_training_checkpoint(pretrained)),
                                               recipe)}
    print(f"seed {seed} probes: random {runs['random_probe']}, pretrained {runs['pretrain_probe']}", flush=True)

    for init, checkpoint in (("random", None), ("pretrain", pretrained)):
        recipe = quickstart_recipe(f"finetune_from_{init}", seed, root / f"finetune_{init}", overrides)
        recipe.stages = [classification_stage("finetune", ft_epochs)]
        recipe.model.checkpoint = None if checkpoint is None else str(checkpoint)
        runs[f"finetune_from_{init}"], _ = _train(recipe)
        print(f"seed {seed} finetune from {init}: {runs[f'finetune_from_{init}']}", flush=True)
    return runs


def _summary(by_seed: dict[str, dict[str, Any]], order: dict | None) -> dict[str, Any]:
    def stats(values: list[float]) -> dict[str, float]:
        mean, std = mean_std(values)
        return {"seeds": len(values), "mean": mean, "std": std, "min": round(min(values), 2),
                "max": round(max(values), 2)}

    seeds = sorted(by_seed, key=int)
    out = {
        "pmb_alone_top1": stats([by_seed[s]["pmb_alone"]["top1"] for s in seeds]),
        "random_probe_val_top1": stats([by_seed[s]["random_probe"]["probe_val_top1"] for s in seeds]),
        "pretrain_probe_val_top1": stats([by_seed[s]["pretrain_probe"]["probe_val_top1"] for s in seeds]),
        "finetune_from_random_top1": stats([by_seed[s]["finetune_from_random"]["top1"] for s in seeds]),
        "finetune_from_pretrain_top1": stats([by_seed[s]["finetune_from_pretrain"]["top1"] for s in seeds]),
    }
    if order:  # PMB + self-supervision (the quickstart) and the plain R2D-18, the same seeds
        runs = order["runs"]
        for key, prefix in (("pmb_selfsup_top1", "quickstart_seed"), ("baseline_top1", "quickstart_baseline_seed")):
            values = [runs[f"{prefix}{s}"]["top1"] for s in seeds if f"{prefix}{s}" in runs]
            if values:
                out[key] = {**stats(values), "source": "claim_temporal_order_cpu.json"}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--runs-dir", default=None, help="keep the runs here (default: a temporary folder)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="recipe overrides (after --)")
    args = parser.parse_args()
    torch.set_num_threads(min(torch.get_num_threads(), os.cpu_count() or 1))
    path = RESULTS_DIR / f"{NAME}.json"
    by_seed = previous_runs(NAME, args.overrides)
    order_path = RESULTS_DIR / "claim_temporal_order_cpu.json"
    order = json.loads(order_path.read_text()) if order_path.is_file() and not args.overrides else None
    with tempfile.TemporaryDirectory(prefix="zoo-claim-ssl-") as tmp:
        for seed in args.seeds:
            by_seed[str(seed)] = run_seed(seed, Path(args.runs_dir or tmp) / f"seed{seed}", args.overrides)
            payload = {
                "benchmark": "claims: self-supervision helps the PMBs (paper Table 2) and HCML self-supervision as "
                             "pre-training (Table 5 analogue: linear probe, fine-tuning); HCML R2D-18 on Moving-Digits",
                "env": env_info("cpu"),
                "overrides": args.overrides,
                "chance_top1": 12.5,
                "runs": dict(sorted(by_seed.items(), key=lambda kv: int(kv[0]))),
                "summary": _summary(by_seed, order),
                "paper": PAPER,
            }
            write_result(NAME, payload)
    print(f"written: {path}")


if __name__ == "__main__":
    main()
