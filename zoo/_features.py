"""Feature metadata and the ``features_only`` wrapper shared by every family.

``FeatureInfo`` lists, per level, the channels (``num_chs``), spatial ``reduction``,
``temporal_reduction`` and the producing ``module``; ``FeatureListNet`` turns a model with
``forward_intermediates`` into one that returns the list of ``(B, C, T, H, W)`` maps.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["FeatureInfo", "FeatureListNet"]


class FeatureInfo(list):
    """Per-level feature metadata: a list of dicts with ``num_chs``, ``reduction``,
    ``temporal_reduction`` and ``module`` (the attribute path of the module that produces it)."""

    def _get(self, key: str, idx: int | None = None) -> Any:
        return [info[key] for info in self] if idx is None else self[idx][key]

    def channels(self, idx: int | None = None) -> Any:
        return self._get("num_chs", idx)

    def reduction(self, idx: int | None = None) -> Any:
        return self._get("reduction", idx)

    def temporal_reduction(self, idx: int | None = None) -> Any:
        return self._get("temporal_reduction", idx)

    def module_name(self, idx: int | None = None) -> Any:
        return self._get("module", idx)



class FeatureListNet(nn.Module):
    """``features_only`` wrapper: returns the list of ``(B, C, T, H, W)`` maps at ``out_indices``.

    The wrapped model must implement ``forward_intermediates(x, indices)``; its classifier is
    removed. ``feature_info`` lists the selected levels only.
    """

    def __init__(self, model: nn.Module, out_indices: tuple[int, ...] | None = None):
        super().__init__()
        n = len(model.feature_info)
        out_indices = tuple(range(n)) if out_indices is None else tuple(out_indices)
        if any(not -n <= i < n for i in out_indices):
            raise ValueError(f"out_indices {out_indices} out of range for {n} feature levels (0..{n - 1})")
        out_indices = tuple(i % n for i in out_indices)
        model.reset_classifier(0, global_pool="")
        if hasattr(model, "prune_intermediate_layers"):
            model.prune_intermediate_layers(max(out_indices))
        self.model = model
        self.out_indices = out_indices
        self.feature_info = FeatureInfo(model.feature_info[i] for i in out_indices)
        self.pretrained_cfg = getattr(model, "pretrained_cfg", None)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.model.forward_intermediates(x, indices=self.out_indices)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.model.set_grad_checkpointing(enable)
