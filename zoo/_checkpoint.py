"""The training-checkpoint contract: its keys, reading one, and building the model it holds.

A training checkpoint is what the engine (:mod:`zoo.train`) writes; it is read with
``weights_only=True``, so every value is a tensor or a plain Python container of
str / int / float / bool / None::

    {'model': state_dict, 'model_name': 'hcml_r2d_18', 'model_args': {'drop_rate': 0.2, ...},
     'num_classes': 8, 'label_names': [...], 'recipe': {...},            # what export needs
     'pretrained_cfg': {'input_size': [3, 16, 64, 64], 'frame_stride': 2, 'mean': [...], ...},
     'optimizer': ..., 'scheduler': ..., 'scaler': ..., 'rng': ...,     # what resuming needs
     'epoch': 3, 'step': 1200, 'stage': 1, 'stage_name': 'joint', 'step_in_epoch': 0,
     'finished': False, 'metrics': {...}}

- ``model``: ``model.state_dict()`` of the unwrapped training model (no DDP ``module.`` or
  ``torch.compile`` ``_orig_mod.`` prefix), HCML side branch included;
- ``model_name``: the registered ``arch`` (or ``arch.tag``) it was created from;
- ``model_args``: the other ``create_model`` keyword arguments (``backbone``, ``hcml_cfg``,
  ``drop_rate``, ...), JSON-serialisable, without ``pretrained`` (a ``num_classes`` there must
  equal the top-level one);
- ``num_classes``: the classifier's size; ``label_names``: class names index-aligned with it, or ``None``;
- ``recipe``: the recipe as a plain dict, or the path of its YAML file;
- optional ``pretrained_cfg``: data fields that override the architecture's defaults
  (``input_size`` as ``[C, T, H, W]``, ``frame_stride``, ``mean``, ``std``, ``crop_pct``, ``dataset``).

``epoch`` counts the finished epochs of stage ``stage`` (an index into the recipe's stages),
``step_in_epoch`` the optimizer steps already taken in the unfinished one, ``step`` the optimizer
steps of the whole run. Modules that need the model of a checkpoint (flow providers, export,
evaluation) use :func:`build_model_from_checkpoint`, never the engine.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ._factory import create_model

__all__ = ["CHECKPOINT_KEYS", "load_training_checkpoint", "check_checkpoint", "build_model_from_checkpoint"]

CHECKPOINT_KEYS = ("model", "model_name", "model_args", "num_classes", "label_names", "recipe")


def load_training_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a training checkpoint with ``weights_only=True``, onto the CPU.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is truncated, holds pickled code, or is not a zoo checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated file, or a pickle holding code
        raise ValueError(f"{path} is not a readable training checkpoint: {str(e).splitlines()[0]}") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise ValueError(f"{path} is not a zoo training checkpoint (no 'model' entry)")
    return ckpt


def check_checkpoint(ckpt: Any, where: str = "<dict>") -> dict[str, Any]:
    """The ``create_model`` arguments of a checkpoint (``model_args`` without ``num_classes``), after
    checking that it holds every key of :data:`CHECKPOINT_KEYS` and consistent arguments."""
    if not isinstance(ckpt, dict):
        raise ValueError(f"checkpoint {where}: expected a dict with keys {list(CHECKPOINT_KEYS)}")
    missing = [k for k in CHECKPOINT_KEYS if k not in ckpt]
    if missing:
        raise ValueError(
            f"checkpoint {where} lacks {missing}; a training checkpoint holds {list(CHECKPOINT_KEYS)} "
            "(see zoo._checkpoint)"
        )
    model_args = dict(ckpt["model_args"] or {})
    if "pretrained" in model_args:
        raise ValueError(f"checkpoint {where}: model_args must not hold 'pretrained'")
    if model_args.pop("num_classes", ckpt["num_classes"]) != ckpt["num_classes"]:
        raise ValueError(f"checkpoint {where}: model_args' num_classes differs from num_classes")
    return model_args


def build_model_from_checkpoint(ckpt: dict[str, Any] | str | os.PathLike, strict: bool = True) -> nn.Module:
    """The model of a training checkpoint (a dict, or a path read by :func:`load_training_checkpoint`):
    ``create_model(model_name, num_classes=..., **model_args)`` with its weights loaded."""
    where = "<dict>"
    if not isinstance(ckpt, dict):
        where = str(ckpt)
        ckpt = load_training_checkpoint(ckpt)
    model_args = check_checkpoint(ckpt, where)
    model = create_model(ckpt["model_name"], num_classes=ckpt["num_classes"], **model_args)
    model.load_state_dict(ckpt["model"], strict=strict)
    return model
