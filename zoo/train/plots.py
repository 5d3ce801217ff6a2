"""PNG figures of a run: loss and accuracy curves from its metrics, and confusion matrices.

Matplotlib runs with the non-interactive Agg backend: no display is needed.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

__all__ = ["read_metrics", "plot_curves", "plot_confusion_matrix"]


def read_metrics(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` file, in order (an empty list when the file is missing)."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _stage_boundaries(ax, records: list[dict[str, Any]]) -> None:
    """Vertical lines where each stage starts (the last step of the stage before it, 0 for the first),
    labelled with its name."""
    starts: dict[str, int] = {}
    previous_end = 0
    for r in records:
        if r["stage"] not in starts:
            starts[r["stage"]] = previous_end
        previous_end = r["step"]
    for stage, step in starts.items():
        ax.axvline(step, color="0.8", lw=0.8, zorder=0)
        ax.annotate(stage, (step, 1.0), xycoords=("data", "axes fraction"), fontsize=7,
                    rotation=90, va="top", ha="left", color="0.4")


def plot_curves(records: Sequence[dict[str, Any]], out_dir: str | os.PathLike, title: str = "") -> list[Path]:
    """Write ``loss.png`` (every training loss term against the optimizer step) and, when the run
    has validation results, ``accuracy.png`` (validation top-1/top-5 and training accuracy).

    Args:
        records: metrics records as :class:`~zoo.train.logger.MetricsLogger` writes them
            (``kind`` ``'train'`` or ``'epoch'``, with ``stage`` and ``step``).
        out_dir: where to write the PNGs.
        title: a title for both figures (e.g. the run name).

    Returns:
        The paths written.
    """
    plt = _pyplot()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    train = [r for r in records if r["kind"] == "train"]
    epochs = [r for r in records if r["kind"] == "epoch"]
    if train:
        keys = sorted({k for r in train for k in r if k == "loss" or k.startswith("loss_")})
        fig, ax = plt.subplots(figsize=(7, 4))
        for key in keys:
            points = [(r["step"], r[key]) for r in train if key in r]
            ax.plot(*zip(*points), label=key, lw=1.2 if key == "loss" else 0.8)
        _stage_boundaries(ax, epochs or train)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("training loss")
        if all(v > 0 for r in train for k, v in r.items() if k in keys):
            ax.set_yscale("log")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
        ax.set_title(title or "training loss")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out_dir / "loss.png", dpi=120)
        plt.close(fig)
        written.append(out_dir / "loss.png")
    # Validation accuracies are recorded in percent; the objectives' batch accuracies (train_acc1) as
    # fractions in [0, 1]: drawn in percent on the one axis.
    acc_keys = {"val_top1": 1.0, "val_top5": 1.0, "train_acc1": 100.0}
    if any(k in r for r in epochs for k in acc_keys):
        fig, ax = plt.subplots(figsize=(7, 4))
        for key, scale in acc_keys.items():
            points = [(r["step"], scale * r[key]) for r in epochs if key in r]
            if points:
                ax.plot(*zip(*points), marker="o", ms=3, label=key + (" (batch accuracy)" if scale != 1 else ""))
        _stage_boundaries(ax, epochs)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("accuracy (%)")
        ax.set_ylim(0, 100)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
        ax.set_title(title or "accuracy")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out_dir / "accuracy.png", dpi=120)
        plt.close(fig)
        written.append(out_dir / "accuracy.png")
    return written


def plot_confusion_matrix(
    matrix: torch.Tensor, class_names: Sequence[str], path: str | os.PathLike, title: str = ""
) -> Path:
    """Write a confusion matrix (rows: true class, columns: predicted class) as a PNG, rows normalised.

    Class names are shown for up to 50 classes; beyond that the axes carry indices only.
    """
    plt = _pyplot()
    counts = matrix.double()
    rows = counts.sum(dim=1, keepdim=True).clamp(min=1)
    share = (counts / rows).numpy()
    k = len(class_names)
    size = min(max(4.0, 0.35 * k + 2), 24.0)
    fig, ax = plt.subplots(figsize=(size, size))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    if k <= 50:
        ax.set_xticks(range(k), class_names, rotation=90, fontsize=7)
        ax.set_yticks(range(k), class_names, fontsize=7)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                if counts[i, j] > 0:
                    ax.text(j, i, int(counts[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if share[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "confusion matrix")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
