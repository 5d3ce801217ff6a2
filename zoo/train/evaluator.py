"""Evaluation of a trained model, at the end of a run and by ``zoo eval``: single- and multi-view accuracy,
the confusion matrix, kNN recall and the linear-probe efficacy, as a recipe's ``eval`` section asks.

:func:`evaluate_model` takes the model, its :class:`EvalLoaders` and the ``eval`` settings;
:func:`evaluate_checkpoint` rebuilds a checkpoint's model (:func:`zoo._checkpoint.build_model_from_checkpoint`)
and evaluates it on a recipe's data.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from .._checkpoint import build_model_from_checkpoint, load_training_checkpoint
from .evaluate import (
    confusion_matrix,
    efficacy_score,
    knn_accuracy,
    knn_recall,
    linear_probe_accuracy,
    predict,
    topk_accuracy,
)
from .loaders import make_loader, recipe_dataset
from .plots import plot_confusion_matrix
from .recipe import Recipe
from .runtime import Runtime, setup_runtime, to_channels_last

__all__ = ["EvalLoaders", "recipe_eval_loaders", "evaluate_model", "evaluate_checkpoint", "recipe_of_run", "nll"]


@dataclass
class EvalLoaders:
    """The loaders an evaluation reads: the single-view loader of the evaluated split, and factories of the
    multi-view loader (``multiview(n_clips, n_crops)``) and of the gallery (the training split read as a
    test split, for kNN and the linear probe)."""

    val: DataLoader
    multiview: Callable[[int, int], DataLoader] | None = None
    gallery: Callable[[], DataLoader] | None = None


def recipe_eval_loaders(recipe: Recipe, runtime: Runtime, val: DataLoader) -> EvalLoaders:
    """:class:`EvalLoaders` over a recipe's data, with ``val`` as the single-view loader."""
    e = recipe.eval
    split = e.split or recipe.data.val_split
    eval_batch = e.batch_size or recipe.data.batch_size
    workers = recipe.data.num_workers

    def multiview(n_clips: int, n_crops: int) -> DataLoader:
        dataset = recipe_dataset(recipe, split, train=False, n_clips=n_clips, n_crops=n_crops)
        return make_loader(dataset, runtime, workers, train=False, batch_size=max(1, eval_batch // (n_clips * n_crops)))

    def gallery() -> DataLoader:
        dataset = recipe_dataset(recipe, recipe.data.train_split, train=False)
        return make_loader(dataset, runtime, workers, train=False, batch_size=eval_batch)

    return EvalLoaders(val, multiview, gallery)


def evaluate_model(model: nn.Module, loaders: EvalLoaders, eval_cfg: Any, runtime: Runtime, *, split: str | None,
                   classes: Sequence[str], out_dir: Path, title: str, progress: bool = True,
                   out_name: str = "eval.json") -> dict[str, Any]:
    """Evaluate ``model`` as ``eval_cfg`` (a recipe's ``eval`` section) asks.

    Writes ``out_name`` (and ``confusion_matrix.png``) to ``out_dir`` on rank 0 and returns the metrics:
    ``top1``/``top5`` (percent) and ``loss`` of one view, ``multiview_top1``/``_top5`` of
    ``n_clips x n_crops`` views, ``knn_recall@k``, ``knn_top1@k``, the probe's accuracies and ``efficacy``.
    """
    e = eval_cfg
    want_features = bool(e.knn) or e.efficacy
    run = dict(device=runtime.device, amp_dtype=runtime.amp_dtype, channels_last=runtime.channels_last,
               progress=progress)
    single = predict(model, loaders.val, features=e.features if want_features else False,
                     desc=f"eval {split}", **run)
    metrics: dict[str, Any] = {"split": split, "videos": len(single["labels"])}
    if e.accuracy:
        metrics.update(topk_accuracy(single["scores"], single["labels"]), loss=nll(single))
    final = single
    views = e.n_clips * e.n_crops
    if views > 1 and e.accuracy:
        final = predict(model, loaders.multiview(e.n_clips, e.n_crops),
                        desc=f"eval {split} {e.n_clips}x{e.n_crops} views", **run)
        multi = topk_accuracy(final["scores"], final["labels"])
        metrics.update({f"multiview_{k}": v for k, v in multi.items()}, views=f"{e.n_clips}x{e.n_crops}")
    if want_features:
        gallery = predict(model, loaders.gallery(), features=e.features, desc="features of the training split",
                          **run)
        if e.knn:
            metrics.update({f"knn_{k}": v for k, v in knn_recall(
                single["features"], single["labels"], gallery["features"], gallery["labels"], e.knn).items()})
            metrics[f"knn_top1@{max(e.knn)}"] = knn_accuracy(
                single["features"], single["labels"], gallery["features"], gallery["labels"], max(e.knn))
        if e.efficacy:
            train_acc, test_acc = linear_probe_accuracy(gallery["features"], gallery["labels"],
                                                        single["features"], single["labels"])
            metrics.update(probe_train_top1=train_acc, probe_val_top1=test_acc,
                           efficacy=efficacy_score(train_acc, test_acc))
    if runtime.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        saved = _json_safe(metrics)
        if e.confusion_matrix and e.accuracy:
            matrix = confusion_matrix(final["scores"].argmax(1), final["labels"], final["scores"].shape[1])
            names = list(classes) + [str(i) for i in range(len(classes), matrix.shape[0])]
            top1 = metrics.get("multiview_top1", metrics["top1"])
            plot_confusion_matrix(matrix, names, out_dir / "confusion_matrix.png",
                                  title=f"{title}: {split}, top-1 {top1:.1f}%")
            saved["confusion_matrix"] = matrix.tolist()  # rows: true class, columns: predicted; counts
        (out_dir / out_name).write_text(json.dumps(saved, indent=2) + "\n")
    return metrics


def nll(predictions: dict[str, torch.Tensor]) -> float:
    """Mean negative log-likelihood of the true class under the (view-averaged) softmax."""
    p = predictions["scores"].gather(1, predictions["labels"][:, None])
    return -p.clamp(min=1e-12).log().mean().item()


def _json_safe(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}


def evaluate_checkpoint(recipe: Recipe, checkpoint: str | os.PathLike | None = None) -> dict[str, Any]:
    """``zoo eval``: evaluate a checkpoint (default: the run folder's ``last.pt``) as ``recipe.eval`` asks.

    The model is rebuilt from the checkpoint's ``model_name`` and ``model_args``; the data and
    evaluation settings come from the recipe. Writes ``recipe.eval.output`` (default
    ``eval_<n_clips>x<n_crops>.json``) beside the checkpoint; ``metrics['written']`` is its path.
    """
    run_dir = Path(recipe.output_dir or Path("runs") / recipe.name)
    path = Path(checkpoint or recipe.checkpoint or run_dir / "last.pt")
    if path.is_dir():
        path = path / "last.pt"
    ckpt = load_training_checkpoint(path)
    runtime = setup_runtime(recipe)
    model = build_model_from_checkpoint(ckpt).to(runtime.device)
    if runtime.channels_last:
        to_channels_last(model)  # 3-D and 2-D weights each in their channels-last format
    classes = ckpt.get("label_names") or []
    split = recipe.eval.split or recipe.data.val_split
    val_set = recipe_dataset(recipe, split, train=False)
    if classes and list(val_set.classes) != list(classes):
        raise ValueError(f"{path} was trained on classes {classes[:5]}...; the recipe's {split} split has "
                         f"{list(val_set.classes)[:5]}...: not the same dataset")
    val = make_loader(val_set, runtime, recipe.data.num_workers, train=False,
                      batch_size=recipe.eval.batch_size or recipe.data.batch_size)
    out_name = recipe.eval.output or f"eval_{recipe.eval.n_clips}x{recipe.eval.n_crops}.json"
    metrics = evaluate_model(model, recipe_eval_loaders(recipe, runtime, val), recipe.eval, runtime, split=split,
                             classes=classes or val_set.classes, out_dir=path.parent, title=recipe.name,
                             progress=recipe.progress, out_name=out_name)
    metrics["checkpoint"] = str(path)
    metrics["written"] = str(path.parent / out_name)
    return metrics


def recipe_of_run(target: str | os.PathLike, overrides: Sequence[str] = ()) -> Recipe:
    """The recipe a checkpoint (or a run folder's ``last.pt``) was trained with, ``overrides`` on top and
    ``checkpoint`` set to it: the run folder's ``recipe.yaml``, else the recipe the checkpoint holds."""
    from .recipe import load_recipe, recipe_from_dict

    path = Path(target)
    if path.is_dir():
        path = path / "last.pt"
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path} (give a checkpoint, a run folder or a recipe file)")
    overrides = [*overrides, f"checkpoint={path}"]
    saved = path.parent / "recipe.yaml"
    if saved.is_file():
        return load_recipe(saved, overrides)
    raw = load_training_checkpoint(path).get("recipe")
    if not isinstance(raw, dict):
        raise ValueError(f"{path} holds no recipe and {saved} does not exist: give the recipe file instead")
    return recipe_from_dict(raw, overrides, source=str(path))
