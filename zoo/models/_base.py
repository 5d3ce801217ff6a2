"""What every zoo model shares: the classifier head, input checks and the model contract.

The contract (timm's, extended to video): input ``(B, C, T, H, W)`` float; ``forward_features``
returns the unpooled ``(B, C', T', H', W')`` map; ``forward_head(x, pre_logits=False)`` pools and
classifies; ``forward_intermediates(x, indices)`` returns the maps of the levels in
``feature_info``; ``get_classifier`` / ``reset_classifier`` / ``set_grad_checkpointing``.
"""
from __future__ import annotations

import torch
from torch import nn

from .._features import FeatureInfo

__all__ = ["VideoClassifierHead", "VideoModel", "check_video_input"]


def check_video_input(x: torch.Tensor, in_chans: int, min_frames: int = 1, min_size: int = 1) -> None:
    """Raise a ValueError naming the expected form unless ``x`` is a float ``(B, in_chans, T, H, W)``
    clip with at least ``min_frames`` frames and ``min_size`` pixels per side."""
    expected = f"a float tensor of shape (B, {in_chans}, T, H, W) with T >= {min_frames}"
    if not torch.is_tensor(x):
        raise ValueError(f"expected {expected}, got {type(x).__name__}")
    if x.ndim != 5:
        hint = " (a single clip? add a batch dimension with x[None])" if x.ndim == 4 else ""
        raise ValueError(f"expected {expected}, got a {x.ndim}-D tensor of shape {tuple(x.shape)}{hint}")
    if not x.is_floating_point():
        raise ValueError(f"expected {expected}, got dtype {x.dtype} (convert uint8 frames with x.float() / 255)")
    if x.shape[1] != in_chans:
        hint = " (channels-last? permute (B, T, H, W, C) to (B, C, T, H, W))" if x.shape[-1] == in_chans else ""
        raise ValueError(f"expected {expected}, got {x.shape[1]} channels in shape {tuple(x.shape)}{hint}")
    if x.shape[2] < min_frames:
        raise ValueError(
            f"expected {expected}: this model's temporal strides need at least {min_frames} frames, "
            f"got T={x.shape[2]} in shape {tuple(x.shape)}"
        )
    if min(x.shape[3], x.shape[4]) < min_size:
        raise ValueError(f"expected {expected} and H, W >= {min_size}, got shape {tuple(x.shape)}")


class VideoClassifierHead(nn.Module):
    """Global pooling over (T, H, W), dropout and a linear classifier.

    Args:
        in_features: channels of the feature map.
        num_classes: classes; 0 gives an identity (pooled features out).
        global_pool: ``'avg'``, ``'max'`` or ``''`` (no pooling: the map passes through).
        drop_rate: dropout before the classifier.
    """

    def __init__(self, in_features: int, num_classes: int, global_pool: str = "avg", drop_rate: float = 0.0):
        super().__init__()
        self.in_features = in_features
        self.drop_rate = drop_rate
        self.drop = nn.Dropout(drop_rate)
        self.reset(num_classes, global_pool)

    def reset(self, num_classes: int, global_pool: str | None = None) -> None:
        """A fresh classifier for ``num_classes`` (0: identity), and the pooling ``global_pool`` when given.
        The dropout is kept, so an eval-mode head stays in eval mode."""
        if global_pool is not None:
            if global_pool not in ("avg", "max", ""):
                raise ValueError(f"global_pool must be 'avg', 'max' or '', got {global_pool!r}")
            self.global_pool = global_pool
        self.num_classes = num_classes
        self.fc = nn.Linear(self.in_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if self.global_pool == "avg":
            x = x.mean(dim=(2, 3, 4))
        elif self.global_pool == "max":
            x = x.amax(dim=(2, 3, 4))
        x = self.drop(x)
        return x if pre_logits else self.fc(x)


class VideoModel(nn.Module):
    """Base class of the zoo's video networks.

    Subclasses set ``num_classes``, ``num_features``, ``in_chans``, ``feature_info``, ``head`` (a
    :class:`VideoClassifierHead`), ``min_frames`` (the shortest clip their temporal strides
    accept), and implement ``forward_features`` and ``forward_intermediates``.

    ``head_hidden_size`` (timm >= 1.0) is the width of ``forward_head(x, pre_logits=True)``: by
    default the head's ``in_features``, the width entering its classifier (``num_features`` for a
    plain :class:`VideoClassifierHead`). A family whose head changes the width before the classifier
    (a projection after the pooling, as X3D's or timm's MLP heads) builds a head whose
    ``in_features`` is that width (as :class:`zoo.models.timm2d.Timm2dHead` does), or assigns
    ``self.head_hidden_size = width`` in its ``__init__``.
    """

    num_classes: int
    num_features: int
    in_chans: int = 3
    min_frames: int = 1
    feature_info: FeatureInfo
    head: VideoClassifierHead
    grad_checkpointing: bool = False

    @property
    def head_hidden_size(self) -> int:
        """Width of ``forward_head(x, pre_logits=True)``: an assigned value, else ``head.in_features``."""
        if "_head_hidden_size" in self.__dict__:
            return self.__dict__["_head_hidden_size"]
        head = self._modules.get("head")
        return getattr(head, "in_features", None) or getattr(self, "num_features", None)

    @head_hidden_size.setter
    def head_hidden_size(self, value: int) -> None:
        self.__dict__["_head_hidden_size"] = int(value)

    def check_input(self, x: torch.Tensor) -> None:
        check_video_input(x, self.in_chans, self.min_frames)

    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the classifier by a fresh one for ``num_classes`` (0: pooled features out)."""
        self.num_classes = num_classes
        self.head.reset(num_classes, global_pool)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each stage's activations in backward instead of storing them."""
        self.grad_checkpointing = enable

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward_intermediates(self, x: torch.Tensor, indices: tuple[int, ...] | None = None) -> list[torch.Tensor]:
        raise NotImplementedError  # pragma: no cover - abstract

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` clip -> ``(B, num_classes)`` logits (or pooled features when 0)."""
        return self.forward_head(self.forward_features(x))
