"""``create_model``: one call from a name to a ready model."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from ._builder import load_checkpoint
from ._cards import weights_card_model_args
from ._hub import load_model_config
from ._registry import get_pretrained_cfg, model_entrypoint, split_model_name_tag

__all__ = ["create_model", "parse_model_name"]

_SOURCES = ("hf-hub", "local-dir")


def parse_model_name(name: str) -> tuple[str | None, str]:
    """``'hf-hub:org/repo'`` -> ``('hf-hub', 'org/repo')``; a registered name -> ``(None, name)``."""
    prefix, sep, rest = name.partition(":")
    if sep and prefix in _SOURCES:
        return prefix, rest
    if sep:
        raise ValueError(f"unknown model source {prefix!r} in {name!r}; use one of {', '.join(_SOURCES)}")
    return None, name


def create_model(
    model_name: str,
    pretrained: bool = False,
    num_classes: int | None = None,
    in_chans: int | None = None,
    features_only: bool = False,
    out_indices: tuple[int, ...] | None = None,
    pretrained_cfg_overlay: dict[str, Any] | None = None,
    checkpoint_path: str | Path | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Create a registered video model.

    Args:
        model_name: ``arch`` (e.g. ``'r2d_50'``), ``arch.tag`` (a pretrained config),
            ``'hf-hub:org/repo[@revision]'`` or ``'local-dir:/path'`` (a folder holding
            ``config.json`` and ``model.safetensors``, as ``zoo export`` writes it).
        pretrained: load the weights of the tag (or of the first tag that has weights).
        num_classes: classifier size; when it differs from the weights', the head is re-initialised.
        in_chans: input channels; the first conv's weights are adapted when they differ.
        features_only: return a module giving the list of ``(B, C, T, H, W)`` maps of each level.
        out_indices: levels to return with ``features_only`` (default: all).
        pretrained_cfg_overlay: fields to override in the pretrained cfg, e.g.
            ``dict(file='resnet50.safetensors')`` to load a local file.
        checkpoint_path: a local checkpoint (safetensors, or torch with ``weights_only=True``)
            loaded after the model is built.
        **kwargs: model arguments (e.g. ``drop_rate``; ``backbone`` for ``timm2d`` and ``hcml``,
            ``hcml_cfg`` for ``hcml`` and the ``hcml_*`` shortcuts).

    Returns:
        The model, in train mode, with ``pretrained_cfg`` attached.
    """
    source, name = parse_model_name(model_name)
    if source is not None:
        arch, cfg, model_args = load_model_config(source, name)
        if cfg.file is None and cfg.hf_hub_id is None:
            raise ValueError(f"{model_name}: no weights file found")
        pretrained = True
        pretrained_cfg = cfg.merged(pretrained_cfg_overlay)
        overlay = None
    else:
        arch, _ = split_model_name_tag(name)
        pretrained_cfg = get_pretrained_cfg(name, prefer_weights=pretrained)
        overlay = pretrained_cfg_overlay
        model_args = weights_card_model_args(pretrained_cfg)

    # The weights' own arguments (config.json's or a weights card's) first; explicit ones win.
    kwargs = {**model_args, **kwargs}
    if "adapter" in kwargs or "adapter_cfg" in kwargs:
        raise ValueError(
            "create_model takes no adapter= any more: build an adapted model with "
            "create_model('hcml', backbone=NAME, hcml_cfg={...}) (or a hcml_* shortcut such as 'hcml_r2d_50')"
        )
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if in_chans is not None:
        kwargs["in_chans"] = in_chans
    create_fn = model_entrypoint(arch)
    model = create_fn(
        pretrained=pretrained,
        pretrained_cfg=pretrained_cfg,
        pretrained_cfg_overlay=overlay,
        features_only=features_only,
        out_indices=out_indices,
        **kwargs,
    )
    # What rebuilds this architecture with create_model(arch, num_classes=..., **model.model_args):
    # the Hub export's default model_args (timm2d's and hcml's backbone, hcml_cfg, drop_rate, in_chans, ...).
    model.model_args = {k: v for k, v in kwargs.items() if k != "num_classes"}
    if checkpoint_path is not None:
        load_checkpoint(model, checkpoint_path)
    return model
