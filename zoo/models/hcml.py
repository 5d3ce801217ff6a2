"""HCML models: video ResNets with HCML motion adapters at levels 1, 2, 3 (after res2, res3, res4).

``create_model('hcml_r2d_50')`` is ``create_model('r2d_50', adapter='hcml')`` under its own name, so
that HCML weights (backbone, motion blocks and, for training checkpoints, the side branch) have an
architecture to be registered under. The adapters' config is the ``hcml_cfg`` keyword
(:class:`zoo.adapters.HCMLConfig` fields), e.g. ``create_model('hcml_r2d_50', hcml_cfg=dict(levels=(1, 2)))``;
``model.deploy()`` drops the side branch after training. See :mod:`zoo.adapters.hcml`.

The paper's models (Table 2, 3) are ``hcml_r2d_50`` (K400: T=16, frame stride 2) and
``hcml_r2plus1d_101`` (T=32); the 18-layer ones are small members of the family for experiments.
"""
from __future__ import annotations

from typing import Any

from torch import nn

from .._builder import build_model_with_cfg
from .._registry import model_entrypoint, register_model
from ..adapters.hcml import attach_hcml
from . import video_resnet

__all__: list[str] = []

_HCML_PAPER = "Yang et al., Hierarchical Contrastive Motion Learning for Video Action Recognition"


def _build_hcml(backbone: str, hcml_cfg: dict[str, Any] | None = None, **kwargs: Any) -> nn.Module:
    """The randomly initialised backbone ``backbone`` with HCML adapters (no weights are loaded here)."""
    model = model_entrypoint(backbone)(pretrained=False, **kwargs)
    return attach_hcml(model, **(hcml_cfg or {}))


def _create_hcml(variant: str, backbone: str, pretrained: bool = False, **kwargs: Any) -> nn.Module:
    return build_model_with_cfg(_build_hcml, variant, pretrained, backbone=backbone, **kwargs)


def _cfg(backbone: str, **kwargs: Any):
    """The backbone's default config (input size, normalisation, first conv, classifier), with HCML's paper."""
    return video_resnet.default_cfgs[backbone].merged(dict(dict(paper=_HCML_PAPER), **kwargs))


default_cfgs = {
    "hcml_r2d_18": _cfg("r2d_18"),
    "hcml_r2d_50": _cfg("r2d_50"),
    "hcml_r3d_18": _cfg("r3d_18"),
    "hcml_r2plus1d_18": _cfg("r2plus1d_18"),
    "hcml_r2plus1d_101": _cfg("r2plus1d_101"),
}


@register_model
def hcml_r2d_18(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """R2D-18 with HCML adapters at levels 1, 2, 3."""
    return _create_hcml("hcml_r2d_18", "r2d_18", pretrained, **kwargs)


@register_model
def hcml_r2d_50(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """R2D-50 (HCML Table 7) with HCML adapters at levels 1, 2, 3: the paper's 2D model."""
    return _create_hcml("hcml_r2d_50", "r2d_50", pretrained, **kwargs)


@register_model
def hcml_r3d_18(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """R3D-18 (torchvision layout) with HCML adapters at levels 1, 2, 3."""
    return _create_hcml("hcml_r3d_18", "r3d_18", pretrained, **kwargs)


@register_model
def hcml_r2plus1d_18(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """R(2+1)D-18 (torchvision layout) with HCML adapters at levels 1, 2, 3."""
    return _create_hcml("hcml_r2plus1d_18", "r2plus1d_18", pretrained, **kwargs)


@register_model
def hcml_r2plus1d_101(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """R(2+1)D-101 (HCML Table 7, top-heavy) with HCML adapters at levels 1, 2, 3: the paper's 3D model."""
    return _create_hcml("hcml_r2plus1d_101", "r2plus1d_101", pretrained, **kwargs)
