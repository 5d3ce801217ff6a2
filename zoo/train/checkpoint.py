"""Training checkpoints, the writing side: atomic writes, RNG states as tensors, weight initialisation.

What a checkpoint holds, and reading one back, is :mod:`zoo._checkpoint`'s (the contract every layer shares).

A checkpoint is a torch file holding only tensors, numbers, strings, lists and dicts, so that
``torch.load(path, weights_only=True)`` reads it without running pickled code::

    {'model': state_dict, 'model_name': 'hcml_r2d_18', 'model_args': {'drop_rate': 0.2, ...},
     'num_classes': 8, 'label_names': [...], 'recipe': {...},            # what export needs
     'pretrained_cfg': {'input_size': [3, 16, 64, 64], 'frame_stride': 2, 'mean': [...], ...},
     'optimizer': ..., 'scheduler': ..., 'scaler': ..., 'rng': ...,     # what resuming needs
     'epoch': 3, 'step': 1200, 'stage': 1, 'stage_name': 'joint', 'step_in_epoch': 0,
     'finished': False, 'metrics': {...}}

``epoch`` counts the finished epochs of stage ``stage`` (an index into the recipe's stages),
``step_in_epoch`` the optimizer steps already taken in the unfinished one, ``step`` the
optimizer steps of the whole run. ``model_args`` are the keyword arguments of ``create_model``
besides ``num_classes``.
"""
from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "get_rng_state",
    "set_rng_state",
    "save_checkpoint",
    "init_weights_from",
    "link_or_copy",
]


def get_rng_state() -> dict[str, Any]:
    """Python's, numpy's, torch's CPU and CUDA generator states, as tensors and lists."""
    version, state, gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    out: dict[str, Any] = {
        "python": [version, list(state), gauss],
        "numpy": [np_name, np_keys.tolist(), int(np_pos), int(np_has_gauss), float(np_gauss)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the states :func:`get_rng_state` returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = state["numpy"]
    np.random.set_state((np_name, np.asarray(np_keys, dtype=np.uint32), np_pos, np_has_gauss, np_gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"][: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all(cuda_states)


def save_checkpoint(payload: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``payload`` with ``torch.save`` atomically: to a temporary file in the same folder, then renamed.

    A reader (or a resumed run after a crash mid-write) sees the old file or the new one, never a
    truncated one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def init_weights_from(model: nn.Module, path: str | os.PathLike) -> list[str]:
    """Load weights from a training checkpoint or a safetensors/torch state dict, for fine-tuning.

    Tensors whose shape differs from the model's (a classifier of another size) and keys the model
    lacks (an HCML side branch that fine-tuning does not use) are left out; the model's own
    initialisation stays there. A plain backbone's weights load into its HCML version (the adapters keep
    their initialisation: zero ``g``, so the model starts as the plain one), see
    :func:`zoo.adapters.hcml_state_dict`.

    Returns:
        The names of the model's parameters and buffers that were *not* loaded.
    """
    from .._helpers import load_state_dict_file
    from ..adapters import hcml_state_dict

    state = hcml_state_dict(model, load_state_dict_file(path))  # a plain backbone's stages into its HCML version
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise ValueError(f"{path}: none of its {len(state)} tensors fit the model (a checkpoint of another model?)")
    model.load_state_dict(usable, strict=False)
    return sorted(set(own) - set(usable))


def link_or_copy(source: Path, target: Path) -> None:
    """Make ``target`` a hard link to ``source`` (no second write; ``last.pt`` is later replaced, not
    rewritten in place, so the link keeps this version), or a copy where links are not supported."""
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)
