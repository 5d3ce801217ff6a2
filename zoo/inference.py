"""Run a model on video files: ``zoo.predict(model, path)`` and ``zoo predict MODEL VIDEO...``.

A video is decoded, sampled as the model's data config says (``input_size``'s T frames,
``frame_stride`` apart, ``n_clips`` clips spread over the video, each centre-cropped after the
eval resize: :func:`zoo.data.resolve_data_config` and :func:`zoo.data.create_transform`), and the
softmax of the clips' logits is averaged. The model may be anything :func:`load_model` takes: a
registered name or tag, ``hf-hub:``, ``local-dir:``, or a ``zoo train`` checkpoint (whose recorded
data config and class names are used).

>>> import zoo
>>> zoo.predict('runs/quickstart/last.pt', 'clip.mp4', topk=3)
[('left', 0.91), ('right', 0.05), ('up', 0.02)]
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ._checkpoint import build_model_from_checkpoint, load_training_checkpoint
from ._factory import create_model
from ._pretrained import PretrainedCfg
from ._registry import get_pretrained_cfg
from .data import create_transform, open_video, resolve_data_config
from .data.sampling import dense_indices

__all__ = ["load_model", "predict", "predict_scores", "describe"]

_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")


def load_model(model: nn.Module | str | os.PathLike, pretrained: bool = True) -> nn.Module:
    """An eval-mode model from a module, a ``zoo train`` checkpoint (or its run folder), or a name that
    :func:`zoo.create_model` takes (``arch.tag`` loads its weights when ``pretrained``)."""
    if isinstance(model, nn.Module):
        return model.eval()
    path = Path(model)
    if path.is_dir() and (path / "last.pt").is_file():
        path = path / "last.pt"
    if path.is_file() and path.suffix in _CHECKPOINT_SUFFIXES:
        ckpt = load_training_checkpoint(path)
        net = build_model_from_checkpoint(ckpt)
        data = {k: v for k, v in (ckpt.get("pretrained_cfg") or {}).items()
                if k in {f.name for f in dataclasses.fields(PretrainedCfg)}}
        names = ckpt.get("label_names")
        net.pretrained_cfg = net.pretrained_cfg.merged({**data, "label_names": names or None})
        return net.eval()
    name = str(model)
    if ":" in name:  # hf-hub: and local-dir: always carry weights
        return create_model(name).eval()
    has_weights = get_pretrained_cfg(name, prefer_weights=True).has_weights
    return create_model(name, pretrained=pretrained and has_weights).eval()


def predict_scores(model: nn.Module, path: str | os.PathLike, n_clips: int | None = None,
                   reader: str = "pyav") -> torch.Tensor:
    """The class probabilities ``(num_classes,)`` of the video at ``path``: the mean softmax over
    ``n_clips`` clips (default: the views the model's cfg states, e.g. ``'5x1'`` -> 5, else 1)."""
    cfg = resolve_data_config(model)
    _, frames_per_clip, _, _ = cfg["input_size"]
    if n_clips is None:
        views = str(getattr(model.pretrained_cfg, "metrics", {}).get("views", "1x1"))
        n_clips = int(views.split("x")[0]) if views.split("x")[0].isdigit() else 1
    transform = create_transform(cfg, is_training=False)
    video = open_video(path, reader=reader)
    indices = dense_indices(video.num_frames, frames_per_clip, cfg["frame_stride"], train=False, n_clips=n_clips)
    frames = video.get_frames(indices.reshape(-1))  # uint8 (n_clips * T, H, W, C)
    frames = frames.reshape(*indices.shape, *frames.shape[1:])
    clips = torch.stack([transform(clip) for clip in frames])
    device = next(model.parameters()).device
    with torch.no_grad():
        return model(clips.to(device)).float().softmax(-1).mean(0).cpu()


def predict(model: nn.Module | str | os.PathLike, path: str | os.PathLike, topk: int = 5, n_clips: int | None = None,
            reader: str = "pyav") -> list[tuple[str, float]]:
    """The ``topk`` most probable classes of the video at ``path``: ``[(label, probability), ...]``.

    Labels are the model's ``pretrained_cfg.label_names`` (class indices as strings when it has none).
    """
    model = load_model(model)
    scores = predict_scores(model, path, n_clips=n_clips, reader=reader)
    names: Sequence[str] | None = model.pretrained_cfg.label_names
    top = scores.topk(min(topk, scores.numel()))
    return [(names[i] if names else str(i), float(p)) for p, i in zip(top.values.tolist(), top.indices.tolist())]


def describe(results: dict[str, list[tuple[str, float]]]) -> dict[str, Any]:
    """JSON-friendly form of ``{video: predictions}``."""
    return {video: [{"label": label, "probability": round(p, 6)} for label, p in preds]
            for video, preds in results.items()}
