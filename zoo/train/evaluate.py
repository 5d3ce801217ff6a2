"""Evaluation: predictions over a loader (one or many views), top-k accuracy, confusion matrices,
kNN retrieval recall@k, and the HCML paper's efficacy score of a linear probe.

>>> out = predict(model, loader, device='cpu', features='head')
>>> topk_accuracy(out['scores'], out['labels'])          # {'top1': ..., 'top5': ...}
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..data import average_views
from ..utils.distributed import all_gather_objects, is_main_process

__all__ = [
    "predict",
    "topk_accuracy",
    "confusion_matrix",
    "knn_recall",
    "knn_accuracy",
    "linear_probe_accuracy",
    "efficacy_score",
]


class _FeatureTap:
    """Records the pooled output of a module (``(B, C, ...)`` averaged over all dims after C).

    With ``name='head'`` (or any module taking the feature map) and ``use_input=True`` it records
    the pooled *input* instead: the backbone's features before the classifier.
    """

    def __init__(self, module: nn.Module, use_input: bool):
        self.value: torch.Tensor | None = None
        if use_input:
            self.handle = module.register_forward_pre_hook(lambda m, args: self._store(args[0]))
        else:
            self.handle = module.register_forward_hook(lambda m, args, out: self._store(out))

    def _store(self, x: Any) -> None:
        if isinstance(x, (list, tuple)):
            x = x[-1]
        if not torch.is_tensor(x):
            raise ValueError(f"the feature module returned {type(x).__name__}, not a tensor")
        self.value = x.float().flatten(2).mean(-1) if x.ndim > 2 else x.float()


def _resolve_feature_module(model: nn.Module, features: str | None) -> tuple[nn.Module, bool]:
    if features is None or features == "head":
        return model.head, True
    try:
        return model.get_submodule(features), False
    except AttributeError:
        names = [n for n, _ in model.named_modules() if n]
        raise ValueError(f"eval.features: the model has no module {features!r}; some of its modules: "
                         f"{', '.join(names[:12])}...") from None


@torch.no_grad()
def predict(
    model: nn.Module,
    loader: Iterable[dict[str, Any]],
    device: torch.device | str = "cpu",
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    features: str | None | bool = False,
    progress: bool = False,
    desc: str = "eval",
) -> dict[str, torch.Tensor]:
    """Run ``model`` over ``loader`` and collect per-video softmax scores (averaged over views).

    In a process group each rank predicts its shard; the results are gathered on every rank,
    de-duplicated by dataset index and sorted by it.

    Args:
        model: a classifier ``(B, C, T, H, W) -> (B, K)``.
        loader: batches of :func:`zoo.data.video_collate` (``video`` ``(B * V, C, T, H, W)``,
            ``label``, ``index``, ``num_views``).
        device: where to run.
        amp_dtype: autocast dtype (None: full precision).
        channels_last: feed channels-last-3d inputs.
        features: also return pooled features: ``None`` or ``'head'`` for the classifier's input,
            a module name (``model.get_submodule``) for that module's output; ``False``: none.
        progress: show a progress bar (rank 0).
        desc: the progress bar's label.

    Returns:
        ``scores`` float ``(N, K)``, ``labels`` int64 ``(N,)``, ``indices`` int64 ``(N,)``, and
        ``features`` float ``(N, D)`` when asked for.
    """
    device = torch.device(device)
    was_training = model.training
    model.eval()
    tap = _FeatureTap(*_resolve_feature_module(model, features)) if features is not False else None
    scores, labels, indices, feats = [], [], [], []
    autocast = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else contextlib.nullcontext()
    try:
        for batch in tqdm(loader, desc=desc, disable=not (progress and is_main_process()), leave=False):
            clips = batch["video"].to(device, non_blocking=True)
            if channels_last:
                clips = clips.contiguous(memory_format=torch.channels_last_3d)
            with autocast:
                logits = model(clips)
            views = batch["num_views"]
            scores.append(average_views(logits.float().softmax(-1), views).cpu())
            labels.append(batch["label"])
            indices.append(batch["index"])
            if tap is not None:
                feats.append(average_views(tap.value, views).cpu())
    finally:
        if tap is not None:
            tap.handle.remove()
        model.train(was_training)
    out = {"scores": torch.cat(scores), "labels": torch.cat(labels), "indices": torch.cat(indices)}
    if tap is not None:
        out["features"] = torch.cat(feats)
    return _gather_predictions(out)


def _gather_predictions(out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Merge the ranks' shards: one row per dataset index (a sampler pads shards with repeats)."""
    parts = all_gather_objects(out)
    merged = {k: torch.cat([p[k] for p in parts]) for k in out}
    order = torch.argsort(merged["indices"], stable=True)
    merged = {k: v[order] for k, v in merged.items()}
    keep = torch.ones(len(order), dtype=torch.bool)
    keep[1:] = merged["indices"][1:] != merged["indices"][:-1]
    return {k: v[keep] for k, v in merged.items()}


def topk_accuracy(scores: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Top-k accuracy in percent, ``{'top1': ..., 'top5': ...}``; k is capped at the number of classes."""
    if len(labels) == 0:
        raise ValueError("no predictions to score")
    out = {}
    for k in ks:
        top = scores.topk(min(k, scores.shape[1]), dim=1).indices
        out[f"top{k}"] = 100.0 * (top == labels[:, None]).any(dim=1).float().mean().item()
    return out


def confusion_matrix(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """int64 ``(K, K)``: entry ``[i, j]`` counts videos of class i predicted as class j."""
    flat = labels.long() * num_classes + predictions.long()
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _cosine_neighbours(queries: torch.Tensor, gallery: torch.Tensor, k: int, exclude_self: bool) -> torch.Tensor:
    q = nn.functional.normalize(queries.float(), dim=1)
    g = nn.functional.normalize(gallery.float(), dim=1)
    sim = q @ g.T
    if exclude_self:
        sim.fill_diagonal_(-math.inf)
    return sim.topk(min(k, g.shape[0] - int(exclude_self)), dim=1).indices


def knn_recall(
    queries: torch.Tensor,
    query_labels: torch.Tensor,
    gallery: torch.Tensor,
    gallery_labels: torch.Tensor,
    ks: Sequence[int] = (1, 5),
    exclude_self: bool = False,
) -> dict[str, float]:
    """Retrieval recall@k in percent: the share of queries with a same-class video among their k
    nearest gallery videos (cosine similarity), as video-retrieval papers report it.

    Args:
        queries: ``(Nq, D)`` features; query_labels: ``(Nq,)``.
        gallery: ``(Ng, D)`` features; gallery_labels: ``(Ng,)``.
        ks: the k values.
        exclude_self: queries and gallery are the same set; a video does not retrieve itself.
    """
    nn_idx = _cosine_neighbours(queries, gallery, max(ks), exclude_self)
    hits = gallery_labels[nn_idx] == query_labels[:, None]
    return {f"recall@{k}": 100.0 * hits[:, :k].any(dim=1).float().mean().item() for k in ks}


def knn_accuracy(
    queries: torch.Tensor, query_labels: torch.Tensor, gallery: torch.Tensor, gallery_labels: torch.Tensor, k: int = 5
) -> float:
    """Accuracy in percent of the kNN classifier of the HCML paper's Table 6: the majority class of a
    query's k nearest gallery videos (cosine similarity); among tied classes, the one with nearer neighbours."""
    nn_idx = _cosine_neighbours(queries, gallery, k, exclude_self=False)
    votes = gallery_labels[nn_idx]  # (Nq, k), nearest first
    num_classes = int(max(gallery_labels.max(), query_labels.max())) + 1
    weights = (1.0 + 1e-3 * torch.linspace(1.0, 0.0, votes.shape[1])).expand(votes.shape).contiguous()
    predicted = torch.zeros(len(votes), num_classes).scatter_add_(1, votes, weights).argmax(dim=1)
    return 100.0 * (predicted == query_labels).float().mean().item()


def linear_probe_accuracy(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    max_iter: int = 1000,
    C: float = 1.0,
) -> tuple[float, float]:
    """Fit a multinomial logistic regression (a linear classifier) on standardised features.

    Returns:
        ``(train accuracy, test accuracy)`` in percent.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter, C=C))
    x_train, y_train = train_features.float().numpy(), train_labels.numpy()
    probe.fit(x_train, y_train)
    train_acc = 100.0 * float(np.mean(probe.predict(x_train) == y_train))
    test_acc = 100.0 * float(np.mean(probe.predict(test_features.float().numpy()) == test_labels.numpy()))
    return train_acc, test_acc


def efficacy_score(train_accuracy: float, test_accuracy: float) -> float:
    """The HCML paper's efficacy score of features (section 4.1): ``Acc_train / (Acc_train - Acc_test)``.

    Higher is better: discriminative (high training accuracy) and generalising (small gap).
    A probe that does no worse on the test set than on the training set scores ``inf``.
    """
    gap = train_accuracy - test_accuracy
    return math.inf if gap <= 0 else train_accuracy / gap
