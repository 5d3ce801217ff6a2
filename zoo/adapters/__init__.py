"""Adapters fitted into a built backbone: HCML's prime motion blocks and their side branch.

``attach_hcml(model, **cfg)`` fits HCML adapters into a built backbone, ``deploy`` drops their
side branch; ``render_cam`` draws a model's Grad-CAM beside its HCML version's;
``create_model('hcml', backbone=NAME, hcml_cfg=cfg)`` (:mod:`zoo.models.hcml`) is how
users build such a model. ``attach_adapter(model, 'hcml', **cfg)`` looks an adapter up by name.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from .cam import cam_colormap, grad_cam, render_cam
from .flow import FlowHead, backward_warp, charbonnier, photometric_loss, smoothness_loss, upsample_flow
from .hcml import (
    HCMLConfig,
    HCMLModel,
    HCMLStage,
    MotionPredictor,
    PrimeMotionBlock,
    attach_hcml,
    capture_motion,
    deploy,
    estimate_flows,
    hcml_stages,
    level_feature_index,
)
from .render import frames_to_uint8, render_flow, render_flow_levels
from .weights import hcml_state_dict

__all__ = [
    "attach_adapter",
    "list_adapters",
    "attach_hcml",
    "deploy",
    "estimate_flows",
    "frames_to_uint8",
    "render_flow",
    "render_flow_levels",
    "grad_cam",
    "render_cam",
    "cam_colormap",
    "HCMLConfig",
    "HCMLModel",
    "HCMLStage",
    "PrimeMotionBlock",
    "MotionPredictor",
    "FlowHead",
    "capture_motion",
    "hcml_stages",
    "hcml_state_dict",
    "level_feature_index",
    "backward_warp",
    "charbonnier",
    "photometric_loss",
    "smoothness_loss",
    "upsample_flow",
]

_ADAPTERS: dict[str, Callable[..., nn.Module]] = {"hcml": attach_hcml}


def list_adapters() -> list[str]:
    """Names accepted by :func:`attach_adapter`."""
    return sorted(_ADAPTERS)


def attach_adapter(model: nn.Module, name: str, **cfg: Any) -> nn.Module:
    """Fit the adapter ``name`` into ``model`` (in place) with keyword config ``cfg``; returns the model."""
    if name not in _ADAPTERS:
        raise ValueError(f"unknown adapter {name!r}; known adapters: {', '.join(list_adapters())}")
    return _ADAPTERS[name](model, **cfg)
