"""3D convolution builders of video ResNets, with torchvision's names, signatures and key layouts.

Each builder is called as ``builder(in_planes, out_planes, midplanes, stride)`` inside a residual
block. ``stride`` is either an int, read as torchvision reads it (``Conv3DSimple`` and
``Conv2Plus1D``: ``(s, s, s)``; ``Conv3DNoTemporal``: ``(1, s, s)``), or an explicit
``(temporal, height, width)`` tuple, which the zoo's networks use to stride time and space
independently (e.g. HCML's temporal stride on a 2D conv, a temporal subsampling).
"""

from __future__ import annotations

from torch import nn

__all__ = ["Conv3DSimple", "Conv3DNoTemporal", "Conv2Plus1D", "resolve_stride"]

Stride = int | tuple[int, int, int]


def resolve_stride(stride: Stride, temporal: bool = True) -> tuple[int, int, int]:
    """``(t, h, w)`` stride of a builder: an int means ``(s, s, s)``, or ``(1, s, s)`` when not ``temporal``."""
    if isinstance(stride, int):
        return (stride if temporal else 1, stride, stride)
    if len(stride) != 3:
        raise ValueError(f"stride must be an int or a (t, h, w) tuple, got {stride!r}")
    return tuple(int(s) for s in stride)  # type: ignore[return-value]


class Conv3DSimple(nn.Conv3d):
    """Full 3x3x3 convolution (R3D, MC3's lower layers). ``midplanes`` is accepted and unused."""

    def __init__(
        self, in_planes: int, out_planes: int, midplanes: int | None = None, stride: Stride = 1, padding: int = 1
    ) -> None:
        super().__init__(
            in_planes, out_planes, kernel_size=(3, 3, 3), stride=resolve_stride(stride), padding=padding, bias=False
        )

    @staticmethod
    def get_downsample_stride(stride: Stride) -> tuple[int, int, int]:
        return resolve_stride(stride)


class Conv3DNoTemporal(nn.Conv3d):
    """1x3x3 convolution: a 2D conv on every frame (R2D, MC3's upper layers).

    A temporal stride > 1 (tuple form only) keeps every ``t``-th frame, the same frames the
    residual shortcut keeps.
    """

    def __init__(
        self, in_planes: int, out_planes: int, midplanes: int | None = None, stride: Stride = 1, padding: int = 1
    ) -> None:
        super().__init__(
            in_planes,
            out_planes,
            kernel_size=(1, 3, 3),
            stride=resolve_stride(stride, temporal=False),
            padding=(0, padding, padding),
            bias=False,
        )

    @staticmethod
    def get_downsample_stride(stride: Stride) -> tuple[int, int, int]:
        return resolve_stride(stride, temporal=False)


class Conv2Plus1D(nn.Sequential):
    """(2+1)D convolution: a spatial 1x3x3 conv to ``midplanes`` channels, BN, ReLU, a temporal 3x1x1 conv.

    torchvision's layout (keys ``0`` spatial conv, ``1`` BN, ``3`` temporal conv) and order.
    ``temporal_first=True`` swaps the order (3x1x1 first, then 1x3x3), as HCML's Table 7 lists the
    convolutions of its top-heavy R(2+1)D-101 bottleneck; the temporal stride then sits on the
    temporal conv and the spatial stride on the spatial conv in both orders.
    """

    def __init__(
        self,
        in_planes: int,
        out_planes: int,
        midplanes: int,
        stride: Stride = 1,
        padding: int = 1,
        temporal_first: bool = False,
    ) -> None:
        st, sh, sw = resolve_stride(stride)
        spatial_in, spatial_out = (midplanes, out_planes) if temporal_first else (in_planes, midplanes)
        temporal_in, temporal_out = (in_planes, midplanes) if temporal_first else (midplanes, out_planes)
        spatial = nn.Conv3d(
            spatial_in, spatial_out, (1, 3, 3), stride=(1, sh, sw), padding=(0, padding, padding), bias=False
        )
        temporal = nn.Conv3d(
            temporal_in, temporal_out, (3, 1, 1), stride=(st, 1, 1), padding=(padding, 0, 0), bias=False
        )
        first, second = (temporal, spatial) if temporal_first else (spatial, temporal)
        super().__init__(first, nn.BatchNorm3d(midplanes), nn.ReLU(inplace=True), second)
        self.temporal_first = temporal_first

    @staticmethod
    def get_downsample_stride(stride: Stride) -> tuple[int, int, int]:
        return resolve_stride(stride)
