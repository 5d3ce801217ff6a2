"""A model's data config: what its weights expect to be fed, as timm's ``resolve_data_config`` gives it.

>>> model = create_model('r2plus1d_18.tv_k400', pretrained=True)
>>> cfg = resolve_data_config(model)     # {'input_size': (3, 16, 112, 112), 'resize_size': (128, 171), ...}
>>> transform = create_transform(cfg, is_training=False)   # uint8 (T, H, W, C) -> float (C, T, 112, 112)
"""
from __future__ import annotations

from typing import Any

__all__ = ["DATA_CONFIG_KEYS", "resolve_data_config"]

DATA_CONFIG_KEYS = ("input_size", "frame_stride", "mean", "std", "crop_pct", "resize_size", "interpolation",
                    "min_size", "min_frames")


def resolve_data_config(model: Any = None, args: dict[str, Any] | None = None,
                        pretrained_cfg: Any = None) -> dict[str, Any]:
    """The data config of ``model`` (its ``pretrained_cfg``) or of ``pretrained_cfg``, with ``args`` on top.

    Returns:
        A dict with ``input_size`` ``(C, T, H, W)``, ``frame_stride`` (frames between sampled frames),
        ``mean``, ``std`` (of ``[0, 1]`` pixels), ``crop_pct``, ``resize_size`` (an int short side or an
        exact ``(H, W)``, resolved from ``crop_pct`` when the cfg has none), ``interpolation``,
        ``crop_size`` (``(H, W)`` of the crop), ``min_size`` and ``min_frames``. Keys of ``args`` whose
        value is None are ignored.
    """
    cfg = pretrained_cfg if pretrained_cfg is not None else getattr(model, "pretrained_cfg", None)
    if cfg is None:
        raise ValueError("resolve_data_config needs a zoo model (with a pretrained_cfg) or pretrained_cfg=")
    values = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
    out = {key: values.get(key) for key in DATA_CONFIG_KEYS}
    out.update({k: v for k, v in (args or {}).items() if v is not None})
    unknown = sorted(set(args or {}) - set(DATA_CONFIG_KEYS))
    if unknown:
        raise ValueError(f"unknown data config keys {unknown}; known: {list(DATA_CONFIG_KEYS)}")
    out["input_size"] = tuple(out["input_size"])
    out["mean"], out["std"] = tuple(out["mean"]), tuple(out["std"])
    height, width = out["input_size"][-2:]
    out["crop_size"] = (height, width)
    if out["resize_size"] is None:
        out["resize_size"] = round(min(height, width) / out["crop_pct"])
    elif not isinstance(out["resize_size"], int):
        out["resize_size"] = tuple(out["resize_size"])
    return out
