"""Batching dataset items, multi-view ones included, and averaging scores over a video's views.

An item holds ``video`` float ``(C, T, H, W)``, or ``(V, C, T, H, W)`` with V views (e.g.
10 clips x 3 crops) for multi-view testing. :func:`video_collate` puts the views of all
videos side by side in one batch dimension, video by video, so that the model sees
``(B * V, C, T, H, W)``; :func:`average_views` folds its scores back to one row per video.

>>> loader = DataLoader(test_set, batch_size=4, collate_fn=video_collate)
>>> batch = next(iter(loader))                      # batch['video']: (4 * V, C, T, H, W)
>>> scores = average_views(model(batch['video']).softmax(-1), batch['num_views'])  # (4, K)
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["video_collate", "average_views"]


def video_collate(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batch dataset items; the views of one video stay together.

    Args:
        items: dicts with ``video`` (float ``(C, T, H, W)`` or ``(V, C, T, H, W)``, the same V
            for all), ``label`` (int), ``index`` (int) and ``path`` (str).

    Returns:
        ``video``: float ``(B * V, C, T, H, W)``, rows ``b * V`` to ``(b + 1) * V - 1`` being video b;
        ``label``, ``index``: int64 ``(B,)``; ``path``: list of B str; ``num_views``: V (1 for
        single-view items); ``view_target``: int64 ``(B,)`` when every item has one (a target its
        views' sampler drew, ``zoo.flow.ViewFrames``).
    """
    if not items:
        raise ValueError("cannot collate an empty batch")
    videos = [item["video"] for item in items]
    if videos[0].ndim == 4:
        num_views = 1
        video = torch.stack(videos)
    elif videos[0].ndim == 5:
        num_views = videos[0].shape[0]
        video = torch.cat(videos)
    else:
        raise ValueError(f"an item's video must be (C, T, H, W) or (V, C, T, H, W); got {tuple(videos[0].shape)}")
    batch = {
        "video": video,
        "label": torch.tensor([int(item["label"]) for item in items], dtype=torch.int64),
        "index": torch.tensor([int(item["index"]) for item in items], dtype=torch.int64),
        "path": [str(item["path"]) for item in items],
        "num_views": num_views,
    }
    if all("view_target" in item for item in items):
        batch["view_target"] = torch.tensor([int(item["view_target"]) for item in items], dtype=torch.int64)
    return batch


def average_views(scores: torch.Tensor, num_views: int) -> torch.Tensor:
    """Average per-view scores ``(B * V, K)`` to per-video scores ``(B, K)``.

    Rows are grouped as :func:`video_collate` lays them out (views of a video adjacent).
    """
    if scores.shape[0] % num_views:
        raise ValueError(f"{scores.shape[0]} rows of scores cannot be split into groups of {num_views} views")
    return scores.reshape(scores.shape[0] // num_views, num_views, *scores.shape[1:]).mean(dim=1)
