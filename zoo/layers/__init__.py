"""Shared building blocks: video convolutions, 2D -> 3D weight inflation, feature-level selection, convolution
weight gradients computed as convolutions and temporal convolutions as 2-D ones (CPU)."""

from .conv import Conv2Plus1D, Conv3DNoTemporal, Conv3DSimple, resolve_stride
from .features import feature_take_indices
from .inflate import INFLATION_MODES, inflate_conv_weight, inflate_state_dict
from .temporal_conv import temporal_conv_as_conv2d_applies, use_conv2d_for_temporal_convs
from .weight_grad import conv_weight_grad, use_weight_grad_as_conv, weight_grad_as_conv_applies

__all__ = [
    "Conv2Plus1D",
    "Conv3DNoTemporal",
    "Conv3DSimple",
    "resolve_stride",
    "feature_take_indices",
    "INFLATION_MODES",
    "inflate_conv_weight",
    "inflate_state_dict",
    "conv_weight_grad",
    "use_weight_grad_as_conv",
    "weight_grad_as_conv_applies",
    "temporal_conv_as_conv2d_applies",
    "use_conv2d_for_temporal_convs",
]
