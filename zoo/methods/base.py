"""The objective contract: what the training engine calls, with defaults.

An objective wraps the model it trains. The engine builds one per stage
(``create_objective(name, model, **cfg)``) and then only calls:

- ``objective(clips, labels, **extra) -> dict``: ``forward``; the ``'loss'`` entry is the total to
  back-propagate, the other scalar entries are its named terms (logged). ``extra`` holds per-video
  targets a view-drawing dataset adds (MCL's ``view_target``).
- :meth:`Objective.trainable_parameters`: what the optimizer gets (default: every parameter with
  ``requires_grad``).
- :meth:`Objective.wrap_train_set`: the training set as the objective reads it (default: as it is;
  MSCL and MCL draw their views with optical flow).
- :meth:`Objective.after_step`: per-step updates after the optimizer step (default: none; the
  momentum encoders of MSCL and MCL).
- ``train(mode)``: the train/eval modes (subclasses keep frozen parts in eval mode).
- ``state_dict()`` / ``load_state_dict()``: the objective's own state (queues, key encoders) beside
  the model's (the engine saves the entries that do not start with ``model.``).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["Objective"]


class Objective(nn.Module):
    """Base class of the training objectives (see the module docstring).

    Args:
        model: the network being trained; a submodule, ``self.model``.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, clips: torch.Tensor, labels: torch.Tensor | None = None, **extra: Any
                ) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The parameters the optimizer trains: by default every one with ``requires_grad``."""
        return [p for p in self.parameters() if p.requires_grad]

    def wrap_train_set(self, dataset: Any) -> Any:
        """The training set as this objective reads it (default: ``dataset`` itself)."""
        return dataset

    def after_step(self, step: int, total_steps: int, steps_per_epoch: int) -> None:
        """Called after optimizer step ``step`` (1-based) of the stage's ``total_steps`` (default: nothing)."""
