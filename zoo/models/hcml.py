"""HCML models: any registered backbone with HCML motion adapters at levels 1, 2, 3 (after res2, res3, res4).

``create_model('hcml', backbone='r2d_50', hcml_cfg=dict(levels=(1, 2)))`` builds the backbone (any
registered ``arch`` or ``arch.tag``, as ``timm2d`` takes ``backbone=``) and fits the adapters
(:func:`zoo.adapters.attach_hcml`; ``hcml_cfg`` holds :class:`zoo.adapters.HCMLConfig` fields). The
other keywords go to the backbone; ``backbone_args`` holds those whose names HCML's take, e.g.
``create_model('hcml', backbone='timm2d', backbone_args=dict(backbone='convnext_atto'))``.
With ``pretrained=True`` the weights come from:

- the HCML architecture's own tag when it has weights (a weights card such as
  ``hcml_r2d_18.moving_digits``, or ``pretrained_cfg_overlay=dict(file=...)``): the whole adapted
  model's weights, loaded after the adapters are attached;
- otherwise the backbone's tag (``backbone='r2plus1d_18.tv_k400'``): the backbone's weights are
  loaded first and the zero-initialised adapters start as identities, so the model gives the plain
  pretrained model's logits until it is trained.

``model.deploy()`` drops the side branch after training. The ``hcml_*`` names are registered
shortcuts for the paper's backbones, so that HCML weights have an architecture to be registered
under: the paper's models (Table 2, 3) are ``hcml_r2d_50`` (K400: T=16, frame stride 2) and
``hcml_r2plus1d_101`` (T=32); the 18-layer ones are small members of the family for experiments.
See :mod:`zoo.adapters.hcml` for the method.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from .._builder import build_model_with_cfg
from .._features import FeatureListNet
from .._pretrained import PretrainedCfg, video_cfg
from .._registry import get_pretrained_cfg, model_entrypoint, register_model, split_model_name_tag
from ..adapters.hcml import attach_hcml
from . import video_resnet

__all__: list[str] = []

_HCML_PAPER = "Yang et al., Hierarchical Contrastive Motion Learning for Video Action Recognition"


def _build_backbone_with_hcml(
    backbone: str,
    backbone_pretrained: bool = False,
    hcml_cfg: dict[str, Any] | None = None,
    backbone_args: dict[str, Any] | None = None,
    **kwargs: Any,
) -> nn.Module:
    """The backbone ``backbone`` (its tag's weights when ``backbone_pretrained``) with HCML adapters;
    ``backbone_args`` are the backbone's own arguments whose names clash with HCML's (``timm2d``'s
    ``backbone``), the other ``kwargs`` go to the backbone too (``num_classes``, ``drop_rate``, ...)."""
    if backbone.split(".")[0] == "hcml" or backbone.startswith("hcml_"):
        raise ValueError(f"backbone={backbone!r} already has HCML adapters; give the plain backbone's name")
    arch, _ = split_model_name_tag(backbone)
    cfg = get_pretrained_cfg(backbone, prefer_weights=backbone_pretrained)
    kwargs = {**(backbone_args or {}), **kwargs}
    model = model_entrypoint(arch)(pretrained=backbone_pretrained, pretrained_cfg=cfg, **kwargs)
    return attach_hcml(model, **(hcml_cfg or {}))


def _create_hcml(
    variant: str,
    backbone: str,
    pretrained: bool = False,
    pretrained_cfg: PretrainedCfg | None = None,
    pretrained_cfg_overlay: dict[str, Any] | None = None,
    features_only: bool = False,
    out_indices: tuple[int, ...] | None = None,
    **kwargs: Any,
) -> nn.Module:
    own = pretrained_cfg if pretrained_cfg is not None else get_pretrained_cfg(variant, prefer_weights=pretrained)
    own = own.merged(pretrained_cfg_overlay)
    if pretrained and own.has_weights:  # the adapted model's own weights (a card, an export, a file)
        return build_model_with_cfg(
            _build_backbone_with_hcml, variant, True, pretrained_cfg=own, features_only=features_only,
            out_indices=out_indices, backbone=backbone, **kwargs,
        )
    model = _build_backbone_with_hcml(backbone, backbone_pretrained=pretrained, **kwargs)
    # The data cfg is the backbone's (its input size, normalisation, and the provenance of its weights).
    model.pretrained_cfg = model.default_cfg = dataclasses.replace(model.pretrained_cfg, architecture=variant)
    if features_only:
        model = FeatureListNet(model, out_indices)
    return model


def _cfg(backbone: str, **kwargs: Any):
    """The backbone's default config (input size, normalisation, first conv, classifier), with HCML's paper."""
    return video_resnet.default_cfgs[backbone].merged(dict(dict(paper=_HCML_PAPER), **kwargs))


default_cfgs = {
    "hcml": video_cfg(paper=_HCML_PAPER, notes="The data fields are the backbone's (set when the model is built)."),
    "hcml_r2d_18": _cfg("r2d_18"),
    "hcml_r2d_50": _cfg("r2d_50"),
    "hcml_r3d_18": _cfg("r3d_18"),
    "hcml_r2plus1d_18": _cfg("r2plus1d_18"),
    "hcml_r2plus1d_101": _cfg("r2plus1d_101"),
}


@register_model
def hcml(pretrained: bool = False, backbone: str = "r2d_50", **kwargs: Any) -> nn.Module:
    """Any registered backbone (``arch`` or ``arch.tag``) with HCML adapters at levels 1, 2, 3."""
    return _create_hcml("hcml", backbone, pretrained, **kwargs)


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
