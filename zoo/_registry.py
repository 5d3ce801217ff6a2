"""Model registry in timm's manner: entrypoints by name, ``arch.tag`` pretrained configs, wildcards.

A family file defines ``default_cfgs = {'arch': video_cfg(...), 'arch.tag': video_cfg(...)}`` and
decorates its entrypoint functions with :func:`register_model` at the bottom of the file. Weights
cards (``weights_cards/*.yaml``) add more ``arch.tag`` configs through :func:`register_pretrained_cfg`.
"""
from __future__ import annotations

import difflib
import fnmatch
import re
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from ._pretrained import PretrainedCfg

__all__ = [
    "register_model",
    "register_pretrained_cfg",
    "list_models",
    "list_modules",
    "is_model",
    "model_entrypoint",
    "get_pretrained_cfg",
    "split_model_name_tag",
    "get_arch_pretrained_cfgs",
    "closest_model_names",
]

_model_entrypoints: dict[str, Callable[..., Any]] = {}
_model_to_module: dict[str, str] = {}
_module_to_models: dict[str, set[str]] = defaultdict(set)
_arch_cfgs: dict[str, dict[str, PretrainedCfg]] = defaultdict(dict)  # arch -> tag -> cfg (insertion order)


def split_model_name_tag(name: str) -> tuple[str, str]:
    """``'r2d_50.k400'`` -> ``('r2d_50', 'k400')``; no tag -> ``(name, '')``."""
    arch, _, tag = name.partition(".")
    return arch, tag


def register_pretrained_cfg(name: str, cfg: PretrainedCfg) -> None:
    """Add (or replace) the pretrained config ``arch.tag`` of a registered or future architecture."""
    arch, tag = split_model_name_tag(name)
    cfg.architecture = arch
    cfg.tag = tag
    _arch_cfgs[arch][tag] = cfg


def register_model(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Register a model entrypoint under its function name, with its module's ``default_cfgs``."""
    mod = sys.modules[fn.__module__]
    module_name = fn.__module__.split(".")[-1]
    name = fn.__name__
    if name in _model_entrypoints:
        raise ValueError(f"model {name!r} is registered twice (second time in {fn.__module__})")
    _model_entrypoints[name] = fn
    _model_to_module[name] = module_name
    _module_to_models[module_name].add(name)
    if hasattr(mod, "__all__") and name not in mod.__all__:
        mod.__all__.append(name)
    for key, cfg in getattr(mod, "default_cfgs", {}).items():
        arch, _ = split_model_name_tag(key)
        if arch == name:
            register_pretrained_cfg(key, cfg)
    if "" not in _arch_cfgs[name]:
        _arch_cfgs[name][""] = PretrainedCfg(architecture=name)
    return fn


def _natural_key(s: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", s.lower())]


def _as_list(filters: str | Iterable[str] | None) -> list[str]:
    if not filters:
        return []
    return [filters] if isinstance(filters, str) else list(filters)


def list_models(
    filter: str | Iterable[str] = "",
    module: str = "",
    pretrained: bool = False,
    exclude_filters: str | Iterable[str] = "",
    include_tags: bool | None = None,
) -> list[str]:
    """Registered model names, sorted naturally.

    Args:
        filter: fnmatch wildcard(s), e.g. ``'r2plus1d_*'``; several are OR-ed.
        module: only models of this family file (e.g. ``'video_resnet'``).
        pretrained: only names with weights; implies ``include_tags``.
        exclude_filters: wildcard(s) to drop.
        include_tags: list ``arch.tag`` names rather than architectures (default: ``pretrained``).
    """
    include_tags = pretrained if include_tags is None else include_tags
    archs = _module_to_models[module] if module else set(_model_entrypoints)
    names: set[str] = set()
    for arch in archs:
        if include_tags:
            for tag, cfg in _arch_cfgs[arch].items():
                if not tag or (pretrained and not cfg.has_weights):
                    continue
                names.add(f"{arch}.{tag}")
            if not pretrained:
                names.add(arch)
        else:
            names.add(arch)
    filters = _as_list(filter)
    if filters:
        names = {n for n in names if any(fnmatch.fnmatch(n, f) or fnmatch.fnmatch(n.split(".")[0], f) for f in filters)}
    for f in _as_list(exclude_filters):
        names = {n for n in names if not fnmatch.fnmatch(n, f)}
    return sorted(names, key=_natural_key)


def list_modules() -> list[str]:
    """Family files that registered models."""
    return sorted(_module_to_models)


def is_model(name: str) -> bool:
    """True when ``name`` (``arch`` or ``arch.tag``) is a registered architecture."""
    arch, _ = split_model_name_tag(name)
    return arch in _model_entrypoints


def closest_model_names(name: str, n: int = 5) -> list[str]:
    """Registered names closest to a misspelt ``name``."""
    candidates = list(_model_entrypoints) + [f"{a}.{t}" for a, tags in _arch_cfgs.items() for t in tags if t]
    return difflib.get_close_matches(name, candidates, n=n, cutoff=0.5)


def _unknown_model_error(name: str) -> ValueError:
    close = closest_model_names(name)
    hint = f" Closest registered names: {', '.join(close)}." if close else ""
    return ValueError(f"Unknown model {name!r}.{hint} See zoo.list_models() for all names.")


def model_entrypoint(name: str) -> Callable[..., Any]:
    """The entrypoint function of ``arch`` (a tag is ignored); unknown names raise a ValueError."""
    arch, _ = split_model_name_tag(name)
    if arch not in _model_entrypoints:
        raise _unknown_model_error(name)
    return _model_entrypoints[arch]


def get_arch_pretrained_cfgs(arch: str) -> dict[str, PretrainedCfg]:
    """All configs of ``arch`` by tag (``''`` is the default, weight-less one)."""
    return dict(_arch_cfgs.get(arch, {}))


def get_pretrained_cfg(name: str, prefer_weights: bool = False) -> PretrainedCfg:
    """The config of ``arch`` or ``arch.tag``.

    With no tag, ``prefer_weights=True`` picks the first tag that has weights (what
    ``create_model(arch, pretrained=True)`` loads); otherwise the default config.
    """
    arch, tag = split_model_name_tag(name)
    if arch not in _model_entrypoints:
        raise _unknown_model_error(name)
    cfgs = _arch_cfgs[arch]
    if tag:
        if tag not in cfgs:
            tags = [t for t in cfgs if t]
            raise ValueError(f"Model {arch!r} has no pretrained tag {tag!r}; its tags are {tags or 'none'}.")
        return cfgs[tag]
    if prefer_weights:
        for cfg in cfgs.values():
            if cfg.has_weights:
                return cfg
    return cfgs[""]
