"""What each dataset kind defaults to, in one table that the datasets and the training recipes both read.

- ``hflip``: random horizontal flips when training. Off for kinds whose class names say a direction
  (Something-Something's "pushing something from left to right", Moving-Digits' "left" / "right"):
  a flip would swap two classes' meaning.
- ``mean``, ``std``: the normalisation of ``[0, 1]`` pixels (ImageNet's unless a kind says otherwise).

A kind not in the table gets :data:`DEFAULT`. Sizes that depend on the files (Moving-Digits' frame
size) come from the kind's parser (``Annotations.defaults``) and win over the table.
"""
from __future__ import annotations

from dataclasses import dataclass

from .transforms import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["KindDefaults", "DEFAULT", "KIND_DEFAULTS", "kind_defaults"]


@dataclass(frozen=True)
class KindDefaults:
    """The defaults of one dataset kind (see the module docstring)."""

    hflip: bool = True
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


DEFAULT = KindDefaults()

KIND_DEFAULTS: dict[str, KindDefaults] = {
    "ssv1": KindDefaults(hflip=False),
    "ssv2": KindDefaults(hflip=False),
    "moving_digits": KindDefaults(hflip=False),
}


def kind_defaults(kind: str) -> KindDefaults:
    """The defaults of dataset kind ``kind`` (:data:`DEFAULT` for a kind the table does not list)."""
    return KIND_DEFAULTS.get(kind, DEFAULT)
