"""Build a registered model from its config: cfg resolution, weight loading, head and stem adaptation.

timm's ``build_model_with_cfg`` asserts 3-value input sizes and 4-D conv weights, so the zoo has its
own builder; it follows timm's flow (resolve cfg -> instantiate -> load weights -> features wrapper).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ._features import FeatureListNet
from ._helpers import load_state_dict_file
from ._hub import download_cfg_weights, download_url_weights, load_weights_file
from ._pretrained import PretrainedCfg
from ._registry import get_arch_pretrained_cfgs, get_pretrained_cfg, split_model_name_tag

_logger = logging.getLogger(__name__)

__all__ = [
    "build_model_with_cfg",
    "load_pretrained",
    "load_checkpoint",
    "adapt_input_conv",
]

FilterFn = Callable[[dict[str, torch.Tensor], nn.Module], dict[str, torch.Tensor]]


def adapt_input_conv(in_chans: int, weight: torch.Tensor) -> torch.Tensor:
    """Adapt first-conv weights ``(O, I, [kT,] kH, kW)`` trained for ``I`` channels to ``in_chans``.

    One channel sums the input channels; more channels repeat them and rescale so that the
    activation magnitude is kept (timm's rule, for 4-D and 5-D weights).
    """
    in_dtype = weight.dtype
    weight = weight.float()
    orig = weight.shape[1]
    if in_chans == orig:
        return weight.to(in_dtype)
    if in_chans == 1:
        weight = weight.sum(dim=1, keepdim=True)
    else:
        repeat = int(math.ceil(in_chans / orig))
        reps = [1] * weight.ndim
        reps[1] = repeat
        weight = weight.repeat(*reps)[:, :in_chans]
        weight = weight * (orig / float(in_chans))
    return weight.to(in_dtype)


def _pop_prefixed(state_dict: dict[str, torch.Tensor], prefix: str) -> None:
    for key in [k for k in state_dict if k == prefix or k.startswith(prefix + ".")]:
        state_dict.pop(key)


def load_pretrained(
    model: nn.Module,
    pretrained_cfg: PretrainedCfg,
    num_classes: int | None = None,
    in_chans: int | None = None,
    filter_fn: FilterFn | None = None,
    strict: bool = True,
    state_dict: dict[str, torch.Tensor] | None = None,
) -> None:
    """Load the weights that ``pretrained_cfg`` names into ``model``.

    The classifier is dropped (and left freshly initialised) when the model's ``num_classes``
    differs from the cfg's; the first conv is adapted when ``in_chans`` differs from the weights'.
    ``filter_fn(state_dict, model)`` converts foreign layouts (timm 2D, torchvision) first.
    """
    if state_dict is None:
        if pretrained_cfg.state_dict is not None:
            state_dict = dict(pretrained_cfg.state_dict)
        elif pretrained_cfg.file:  # a Hub-cache file (hf-hub:) that fails its sha256 check leaves the cache
            state_dict = load_weights_file(pretrained_cfg.file, pretrained_cfg.sha256)
        elif pretrained_cfg.hf_hub_id:
            state_dict = load_weights_file(*download_cfg_weights(pretrained_cfg))
        elif pretrained_cfg.url:
            state_dict = download_url_weights(pretrained_cfg)
        else:
            raise ValueError(
                f"no weights for {pretrained_cfg.architecture}{'.' + pretrained_cfg.tag if pretrained_cfg.tag else ''}:"
                " its pretrained cfg names no file, state_dict, hf_hub_id or url"
            )
    if filter_fn is not None:
        state_dict = filter_fn(state_dict, model)

    first_conv = pretrained_cfg.first_conv
    if first_conv and in_chans is not None:
        key = first_conv + ".weight"
        if key in state_dict and state_dict[key].shape[1] != in_chans:
            state_dict[key] = adapt_input_conv(in_chans, state_dict[key])

    classifier = pretrained_cfg.classifier
    model_classes = getattr(model, "num_classes", None)
    if classifier:
        weight = state_dict.get(classifier + ".weight")
        if model_classes == 0 or (weight is not None and weight.shape[0] != model_classes):
            _pop_prefixed(state_dict, classifier)
            strict = False

    missing, unexpected = model.load_state_dict(state_dict, strict=strict)
    if missing or unexpected:
        _logger.info("loaded with missing keys %s and unexpected keys %s", missing, unexpected)


def load_checkpoint(model: nn.Module, checkpoint_path: str | Path, strict: bool = True) -> None:
    """Load a local checkpoint (safetensors, or torch with ``weights_only=True``) into ``model``."""
    state_dict = load_state_dict_file(checkpoint_path)
    model.load_state_dict(state_dict, strict=strict)


def build_model_with_cfg(
    model_cls: Callable[..., nn.Module],
    variant: str,
    pretrained: bool = False,
    pretrained_cfg: PretrainedCfg | None = None,
    pretrained_cfg_overlay: dict[str, Any] | None = None,
    pretrained_filter_fn: FilterFn | None = None,
    pretrained_strict: bool = True,
    features_only: bool = False,
    out_indices: tuple[int, ...] | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Instantiate ``model_cls(**kwargs)`` for registered ``variant`` and load weights if asked.

    ``num_classes`` and ``in_chans`` default to the cfg's (``input_size[0]``); a ``file`` in
    ``pretrained_cfg_overlay`` turns on loading from that file. The resolved cfg is attached as
    ``model.pretrained_cfg``.
    """
    if pretrained_cfg is None:
        pretrained_cfg = get_pretrained_cfg(variant, prefer_weights=pretrained)
    cfg = pretrained_cfg.merged(pretrained_cfg_overlay)
    if pretrained_cfg_overlay and (pretrained_cfg_overlay.get("file") or pretrained_cfg_overlay.get("state_dict")):
        pretrained = True

    kwargs.setdefault("num_classes", cfg.num_classes)
    kwargs.setdefault("in_chans", cfg.input_size[0])
    model = model_cls(**kwargs)
    num_classes, in_chans = kwargs["num_classes"], kwargs["in_chans"]
    cfg.input_size = (in_chans, *cfg.input_size[1:])
    if num_classes != cfg.num_classes:
        cfg.num_classes = num_classes
        cfg.label_names = None
    model.pretrained_cfg = cfg
    model.default_cfg = cfg

    if pretrained:
        if not cfg.has_weights:
            tags = [f"{variant.split('.')[0]}.{t}" for t in _weighted_tags(variant)]
            raise ValueError(
                f"pretrained=True but {variant!r} has no weights. "
                + (f"Pretrained names: {', '.join(tags)}." if tags else "No pretrained tags are registered for it.")
                + " Or pass pretrained_cfg_overlay=dict(file=PATH) (from the command line or a recipe: "
                "model.pretrained=false model.checkpoint=PATH)."
            )
        load_pretrained(
            model,
            cfg,
            num_classes=num_classes,
            in_chans=in_chans,
            filter_fn=pretrained_filter_fn,
            strict=pretrained_strict,
        )

    if features_only:
        model = FeatureListNet(model, out_indices)
    return model


def _weighted_tags(variant: str) -> list[str]:
    arch, _ = split_model_name_tag(variant)
    return [t for t, c in get_arch_pretrained_cfgs(arch).items() if t and c.has_weights]
