"""Feature-level selection shared by the families' ``forward_intermediates``."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["feature_take_indices"]


def feature_take_indices(num_levels: int, indices: int | Sequence[int] | None = None) -> list[int]:
    """Absolute feature-level indices to return, in the order asked.

    timm's ``feature_take_indices`` rule with ValueErrors instead of assertions: None takes all
    levels, an int ``n`` the last ``n``, a sequence those levels (negative ones count from the end).
    """
    if indices is None:
        return list(range(num_levels))
    if isinstance(indices, int):
        if not 0 < indices <= num_levels:
            raise ValueError(f"last-n indices={indices} is out of range (1 to {num_levels})")
        return list(range(num_levels - indices, num_levels))
    take = []
    for i in indices:
        if not -num_levels <= i < num_levels:
            raise ValueError(f"feature level {i} is out of range for {num_levels} levels (0 to {num_levels - 1})")
        take.append(i % num_levels)
    if not take:
        raise ValueError("indices is empty: ask for at least one feature level")
    return take
