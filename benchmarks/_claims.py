"""What the paper-claim benchmarks (``claim_*.py``) share: the quickstart recipes made into runs,
the previous results a run merges into, the pooled motion features of every HCML level, the
linear probe's figures and the mean and spread over seeds.
"""
from __future__ import annotations

import copy
import json
import math
import statistics
from pathlib import Path
from typing import Any

import torch
from _common import RESULTS_DIR
from torch.utils.data import DataLoader

from zoo._checkpoint import build_model_from_checkpoint
from zoo.adapters import capture_motion
from zoo.data import video_collate
from zoo.train import efficacy_score, linear_probe_accuracy, load_recipe, load_training_checkpoint, recipe_dataset
from zoo.train.recipe import EvalConfig, Recipe, StageConfig, recipe_from_dict

RECIPES = Path(__file__).resolve().parent.parent / "recipes"


def claim_recipe(file: str, seed: int, out: Path, overrides: list[str] = (), name: str | None = None) -> Recipe:
    """``recipes/<file>`` with ``seed``, run in ``out``, without its companion recipes (and renamed ``name``)."""
    recipe = load_recipe(RECIPES / file, [*overrides, f"seed={seed}", f"output_dir={out}", "compare=[]"])
    if name is not None:
        recipe.name = name
    return recipe


def quickstart_recipe(name: str, seed: int, out: Path, overrides: list[str] = ()) -> Recipe:
    """``recipes/quickstart.yaml`` (HCML R2D-18 on Moving-Digits) as run ``name`` in ``out``, alone."""
    return claim_recipe("quickstart.yaml", seed, out, overrides, name)


def previous_runs(name: str, overrides: list[str]) -> dict[str, Any]:
    """The ``runs`` of ``benchmarks/results/<name>.json`` when they were made with the same overrides (else none)."""
    path = RESULTS_DIR / f"{name}.json"
    previous = json.loads(path.read_text()) if path.is_file() else {}
    return previous.get("runs", {}) if previous.get("overrides", []) == overrides else {}


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value), rounded to 2 decimals."""
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return round(statistics.mean(values), 2), round(std, 2)


def probe_figures(train_x: torch.Tensor, train_y: torch.Tensor, val_x: torch.Tensor,
                  val_y: torch.Tensor) -> dict[str, Any]:
    """Linear probe (``zoo.train.linear_probe_accuracy``) train and val top-1 and the paper's efficacy score
    (``'inf'`` when val does as well as train), for JSON."""
    train_acc, val_acc = linear_probe_accuracy(train_x, train_y, val_x, val_y)
    score = efficacy_score(train_acc, val_acc)
    return {"probe_train_top1": round(train_acc, 2), "probe_val_top1": round(val_acc, 2),
            "efficacy": "inf" if math.isinf(score) else round(score, 2)}


def load_run(checkpoint: str | Path) -> tuple[dict[str, Any], torch.nn.Module, Recipe]:
    """A ``zoo train`` checkpoint, its model (weights loaded, eval mode) and the recipe it was trained by."""
    ckpt = load_training_checkpoint(checkpoint)
    model = build_model_from_checkpoint(ckpt).eval()
    raw = ckpt["recipe"]
    return ckpt, model, recipe_from_dict(raw) if isinstance(raw, dict) else load_recipe(raw)


def hcml_cfg(recipe: Recipe) -> dict[str, Any]:
    """A copy of the recipe's ``model.kwargs.hcml_cfg`` (set it back with :func:`set_hcml_cfg`)."""
    return copy.deepcopy(dict(recipe.model.kwargs.get("hcml_cfg") or {}))


def set_hcml_cfg(recipe: Recipe, cfg: dict[str, Any]) -> None:
    recipe.model.kwargs = {**recipe.model.kwargs, "hcml_cfg": cfg}


def level_stages(recipe: Recipe) -> list[StageConfig]:
    """The recipe's progressive self-supervised stages (``level1``, ``level2``, ...), in order."""
    return [s for s in recipe.stages if str(s.objective_cfg.get("stage", "")).startswith("level")]


def joint_stage(recipe: Recipe) -> StageConfig:
    return next(s for s in recipe.stages if s.objective_cfg.get("stage") == "joint")


def classification_stage(name: str, epochs: int, warmup_epochs: float = 0.5) -> StageConfig:
    """Cross-entropy only: the PMBs learn through ``g`` from the labels, no self-supervision."""
    return StageConfig(name=name, objective="classification", epochs=epochs, warmup_epochs=warmup_epochs)


def no_accuracy_eval() -> EvalConfig:
    """The final evaluation of a run without labels: no top-1 (its classifier is untrained), no kNN."""
    return EvalConfig(accuracy=False, confusion_matrix=False, knn=[])


@torch.no_grad()
def motion_features(model: torch.nn.Module, recipe: Recipe, split: str,
                    batch_size: int = 32) -> dict[str, Any]:
    """Pooled motion features ``P^l`` of every HCML level of ``model`` over one split (one centred clip per video).

    Returns:
        ``levels``: ``{level: float (N, C_l)}``, ``P^l`` averaged over T, H and W; ``head``: the
        classifier's input ``(N, D)``; ``labels``, ``indices``: int64 ``(N,)``; ``clips``: the
        dataset, to draw videos by index.
    """
    dataset = recipe_dataset(recipe, split, train=False)
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=video_collate)
    model.eval()
    head_inputs: list[torch.Tensor] = []
    def keep_head_input(_module: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        x = args[0].float()  # the backbone's map, pooled as predict(features='head') pools it
        head_inputs.append(x.flatten(2).mean(-1) if x.ndim > 2 else x)

    hook = model.head.register_forward_pre_hook(keep_head_input)
    levels: dict[int, list[torch.Tensor]] = {}
    labels, indices = [], []
    try:
        for batch in loader:
            with capture_motion(model) as motion:
                model(batch["video"])
            for level, p in motion.items():
                levels.setdefault(level, []).append(p.float().mean(dim=(2, 3, 4)))
            labels.append(batch["label"])
            indices.append(batch["index"])
    finally:
        hook.remove()
    return {
        "levels": {level: torch.cat(v) for level, v in sorted(levels.items())},
        "head": torch.cat(head_inputs).float(),
        "labels": torch.cat(labels),
        "indices": torch.cat(indices),
        "dataset": dataset,
    }


def stage_names(recipe: Recipe) -> list[str]:
    """``'name (objective[, stage]): N epochs'`` of each stage, for the JSON files."""
    out = []
    for s in recipe.stages:
        stage = s.objective_cfg.get("stage")
        out.append(f"{s.name} ({s.objective}{', ' + stage if stage else ''}): {s.epochs} epochs")
    return out
