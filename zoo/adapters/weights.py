"""A plain backbone's weights into the same backbone with HCML adapters (its wrapped stages' keys renamed)."""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from .hcml import hcml_stages

__all__ = ["hcml_state_dict"]


def hcml_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state_dict`` with the keys of a plain backbone's stages moved to where ``model`` (the backbone with
    HCML adapters) holds them: ``<stage>.<rest>`` -> ``<stage>.stage.<rest>`` for each wrapped stage
    (:class:`~zoo.adapters.HCMLStage`); keys already in HCML form (``.stage.``, ``.motion.``, ``.fuse.``,
    ``hcml.``), other keys and a model without adapters are left as they are. Fine-tuning a checkpoint of the
    plain model with adapters attached (``zoo train ... model.checkpoint=plain.pt``) loads through this."""
    stages = [s.stage_name + "." for s in hcml_stages(model).values()]
    if not stages:
        return dict(state_dict)
    out = {}
    for key, value in state_dict.items():
        prefix = next((p for p in stages if key.startswith(p)), None)
        rest = key[len(prefix):] if prefix else ""
        if prefix and not rest.startswith(("stage.", "motion.", "fuse.")):
            key = f"{prefix}stage.{rest}"
        out[key] = value
    return out
