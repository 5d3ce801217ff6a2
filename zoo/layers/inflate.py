"""Inflation of 2D (image) convolution weights into 3D (video) ones, as I3D does.

A 2D kernel ``(O, I, kH, kW)`` becomes a 3D kernel ``(O, I, kT, kH, kW)``:

- ``'centre'``: the 2D kernel sits at the temporal centre ``kT // 2`` and the other taps are zero;
  with temporal padding ``kT // 2`` the 3D conv then equals the 2D conv on every frame, for any clip.
- ``'mean'``: the 2D kernel is repeated over time and divided by ``kT`` (I3D's "boring video"
  inflation); on a static clip it equals the 2D conv on every frame at least ``kT // 2`` frames
  away from the clip's ends (zero padding makes the end frames differ).

With ``kT == 1`` both are exact: the kernel just gains a unit time axis.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

__all__ = ["INFLATION_MODES", "inflate_conv_weight", "inflate_state_dict"]

INFLATION_MODES = ("centre", "mean")


def _check_mode(mode: str) -> str:
    mode = "centre" if mode == "center" else mode
    if mode not in INFLATION_MODES:
        raise ValueError(f"inflation mode must be one of {INFLATION_MODES}, got {mode!r}")
    return mode


def inflate_conv_weight(weight: torch.Tensor, time_dim: int, mode: str = "centre") -> torch.Tensor:
    """Inflate a 2D conv weight ``(O, I, kH, kW)`` to ``(O, I, time_dim, kH, kW)``.

    Args:
        weight: the 2D kernel.
        time_dim: temporal kernel size ``kT`` of the 3D conv.
        mode: ``'centre'`` (alias ``'center'``) or ``'mean'``, see the module docstring.
    """
    mode = _check_mode(mode)
    if weight.ndim != 4:
        raise ValueError(f"expected a 4-D conv weight (O, I, kH, kW), got shape {tuple(weight.shape)}")
    if time_dim < 1:
        raise ValueError(f"time_dim must be >= 1, got {time_dim}")
    if mode == "mean" or time_dim == 1:
        return weight.unsqueeze(2).repeat(1, 1, time_dim, 1, 1) / time_dim
    out = weight.new_zeros(weight.shape[0], weight.shape[1], time_dim, *weight.shape[2:])
    out[:, :, time_dim // 2] = weight
    return out


def inflate_state_dict(
    state_dict: Mapping[str, torch.Tensor], reference: Mapping[str, torch.Tensor], mode: str = "centre"
) -> dict[str, torch.Tensor]:
    """Inflate every 4-D tensor of ``state_dict`` whose key holds a 5-D tensor in ``reference``.

    ``reference`` is the target model's state dict (only shapes are read). A 2D kernel whose
    output channels or spatial size disagree with the 3D one's raises a ValueError naming the key; other
    tensors are passed through unchanged.
    """
    mode = _check_mode(mode)
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        target = reference.get(key)
        if target is not None and value.ndim == 4 and target.ndim == 5:
            o, _, _, kh, kw = target.shape  # input channels may differ: the builder adapts the first conv
            if (value.shape[0], value.shape[2], value.shape[3]) != (o, kh, kw):
                raise ValueError(
                    f"cannot inflate {key}: 2D weight {tuple(value.shape)} "
                    f"does not match 3D weight {tuple(target.shape)}"
                )
            value = inflate_conv_weight(value, target.shape[2], mode)
        out[key] = value
    return out
