"""Training objectives, by name: ``create_objective('hcml', model, stage='joint')``.

Every objective subclasses :class:`~zoo.methods.base.Objective` (the contract the engine calls:
``objective(clips, labels) -> {'loss': ..., ...}``, ``trainable_parameters()``, ``wrap_train_set()``,
``after_step()``, ``train(mode)``, ``state_dict()``). A method file registers its objective class
with :func:`register_objective` and is imported at the bottom of this file; the MoCo pieces MSCL
and MCL share are :mod:`zoo.methods.moco`'s.
"""
from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from torch import nn

from .base import Objective

__all__ = ["Objective", "register_objective", "create_objective", "get_objective_class", "list_objectives"]

_OBJECTIVES: dict[str, Callable[..., Any]] = {}


def register_objective(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering an objective class (or factory) ``cls(model, **kwargs)`` under ``name``."""

    def decorator(cls: Callable[..., Any]) -> Callable[..., Any]:
        if name in _OBJECTIVES:
            raise ValueError(f"objective {name!r} is registered twice")
        _OBJECTIVES[name] = cls
        return cls

    return decorator


def list_objectives() -> list[str]:
    """Registered objective names."""
    return sorted(_OBJECTIVES)


def get_objective_class(name: str) -> Callable[..., Any]:
    """The class (or factory) registered as ``name``, e.g. to read its class attributes without building it."""
    if name not in _OBJECTIVES:
        close = difflib.get_close_matches(name, list(_OBJECTIVES), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown objective {name!r}.{hint} Registered: {', '.join(list_objectives())}")
    return _OBJECTIVES[name]


def create_objective(name: str, model: nn.Module, **kwargs: Any) -> Objective:
    """Build the objective ``name`` for ``model`` (e.g. ``create_objective('hcml', model, stage='level1')``)."""
    objective = get_objective_class(name)(model, **kwargs)
    if not isinstance(objective, Objective):
        raise TypeError(f"objective {name!r} built a {type(objective).__name__}, not a zoo.methods.Objective")
    return objective


from . import classification, hcml, mcl, mscl  # noqa: E402,F401  (register the objectives)
