"""Shared building blocks: video convolutions and 2D -> 3D weight inflation."""

from .conv import Conv2Plus1D, Conv3DNoTemporal, Conv3DSimple, resolve_stride
from .inflate import INFLATION_MODES, inflate_conv_weight, inflate_state_dict

__all__ = [
    "Conv2Plus1D",
    "Conv3DNoTemporal",
    "Conv3DSimple",
    "resolve_stride",
    "INFLATION_MODES",
    "inflate_conv_weight",
    "inflate_state_dict",
]
