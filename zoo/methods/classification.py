"""The supervised objective: cross-entropy of the model's logits (baselines, fine-tuning, linear probes).

>>> objective = create_objective('classification', model, label_smoothing=0.1)
>>> out = objective(clips, labels)     # {'loss': ..., 'acc1': ...}
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import register_objective
from .base import Objective

__all__ = ["ClassificationObjective"]


@register_objective("classification")
class ClassificationObjective(Objective):
    """``L = CE(model(clips), labels)``, with optional label smoothing.

    Args:
        model: a classifier ``(B, C, T, H, W) -> (B, K)``.
        label_smoothing: mass spread uniformly over the classes, in [0, 1).

    Calling it on ``clips (B, C, T, H, W)`` and ``labels (B,)`` returns ``'loss'`` and ``'acc1'``
    (the batch's top-1 accuracy in [0, 1], no grad). It trains whatever parameters of the model
    have ``requires_grad``; an HCML model's side branch (flow heads, predictors) is not used.
    """

    def __init__(self, model: nn.Module, label_smoothing: float = 0.0):
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must lie in [0, 1), got {label_smoothing}")
        super().__init__(model)
        self.label_smoothing = label_smoothing

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The model's parameters with ``requires_grad``, except an HCML side branch this loss does not reach."""
        return [p for n, p in self.model.named_parameters() if p.requires_grad and not n.startswith("hcml.")]

    def forward(self, clips: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if labels is None:
            raise ValueError("the classification objective needs labels (B,) with the clips")
        logits = self.model(clips)
        if logits.ndim != 2 or logits.shape[0] != labels.shape[0]:
            raise ValueError(f"expected logits (B, K) for {labels.shape[0]} labels, got {tuple(logits.shape)}")
        loss = F.cross_entropy(logits.float(), labels, label_smoothing=self.label_smoothing)
        with torch.no_grad():
            acc1 = (logits.argmax(dim=1) == labels).float().mean()
        return {"loss": loss, "acc1": acc1}

    def extra_repr(self) -> str:
        return f"label_smoothing={self.label_smoothing}"
