"""Optical-flow providers: ``create_flow_provider(name, **kwargs)`` gives a callable mapping frame pairs to flow.

========================  =============================================================================
``farneback``             OpenCV's Farneback (``cv2.calcOpticalFlowFarneback``), CPU.
``tvl1``                  OpenCV contrib's dual TV-L1 (``cv2.optflow.DualTVL1OpticalFlow_create``), the
                          flow of the official MCL code; needs ``opencv-contrib-python(-headless)``.
``raft``                  torchvision's RAFT (``raft_small`` / ``raft_large``) with weights read from a
                          local file (never downloaded); RAFT is what the official MSCL code uses.
``hcml``                  the flow head of a trained HCML model (``zoo.adapters``), at its lowest flow level.
========================  =============================================================================

Every provider is called as ``provider(first, second)`` on two uint8 batches ``(N, H, W, 3)`` of RGB
frames (as the readers return them) and returns float32 ``(N, 2, H, W)``: the flow from ``first`` to
``second`` in pixels, channel 0 horizontal (``u``, to the right), channel 1 vertical (``v``, down), the
convention of ``zoo.adapters.flow``: the content at ``(x, y)`` of ``first`` is at ``(x + u, y + v)`` in
``second``. ``provider.config()`` is what a flow cache records (and hashes) about it.

>>> provider = create_flow_provider('raft', weights='raft_small.pth', variant='raft_small')
>>> flow = provider(frames[:-1], frames[1:])      # (T - 1, 2, H, W)
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..adapters.flow import upsample_flow
from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD

__all__ = [
    "FlowProvider",
    "FarnebackFlow",
    "TVL1Flow",
    "RAFTFlow",
    "HCMLFlow",
    "create_flow_provider",
    "list_flow_providers",
    "tvl1_available",
]


def _check_pair(first: torch.Tensor, second: torch.Tensor) -> None:
    expected = "two uint8 tensors of shape (N, H, W, 3) (RGB frames as the readers return them)"
    for x in (first, second):
        if not torch.is_tensor(x) or x.ndim != 4 or x.shape[-1] != 3 or x.dtype != torch.uint8:
            shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
            dtype = f", dtype {x.dtype}" if torch.is_tensor(x) else ""
            raise ValueError(f"expected {expected}; got {shape}{dtype}")
    if first.shape != second.shape:
        raise ValueError(f"the two frame batches differ in shape: {tuple(first.shape)} vs {tuple(second.shape)}")


class FlowProvider:
    """Base class: checks the frames and batches the work; subclasses implement :meth:`compute`."""

    name = ""

    def __call__(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """Flow from ``first`` to ``second``, uint8 ``(N, H, W, 3)`` each -> float32 ``(N, 2, H, W)`` in pixels."""
        _check_pair(first, second)
        if first.shape[0] == 0:
            return torch.zeros(0, 2, *first.shape[1:3])
        return self.compute(first, second).float().cpu()

    def compute(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """What identifies this provider's output (recorded by a flow cache)."""
        return {"provider": self.name}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "provider")
        return f"{type(self).__name__}({args})"


def _gray(frame: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


class FarnebackFlow(FlowProvider):
    """OpenCV's Farneback flow on grey frames; the arguments are ``cv2.calcOpticalFlowFarneback``'s
    (defaults: OpenCV's documented example values)."""

    name = "farneback"

    def __init__(self, pyr_scale: float = 0.5, levels: int = 3, winsize: int = 15, iterations: int = 3,
                 poly_n: int = 5, poly_sigma: float = 1.2):
        import cv2  # noqa: F401  (fail here, not at the first pair)

        self.params = dict(pyr_scale=pyr_scale, levels=levels, winsize=winsize, iterations=iterations,
                           poly_n=poly_n, poly_sigma=poly_sigma)

    def compute(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        import cv2

        p = self.params
        flows = [
            cv2.calcOpticalFlowFarneback(_gray(a), _gray(b), None, p["pyr_scale"], p["levels"], p["winsize"],
                                         p["iterations"], p["poly_n"], p["poly_sigma"], 0)
            for a, b in zip(first.numpy(), second.numpy())
        ]
        return torch.from_numpy(np.stack(flows)).permute(0, 3, 1, 2)

    def config(self) -> dict[str, Any]:
        return {"provider": self.name, **self.params}


def tvl1_available() -> bool:
    """Whether OpenCV's contrib module with dual TV-L1 (``cv2.optflow``) is installed."""
    try:
        import cv2
    except ImportError:
        return False
    return hasattr(cv2, "optflow") and hasattr(cv2.optflow, "DualTVL1OpticalFlow_create")


class TVL1Flow(FlowProvider):
    """OpenCV contrib's dual TV-L1 flow on grey frames (the official MCL code's flow), default settings.

    Raises:
        ImportError: ``cv2.optflow`` is missing (install ``opencv-contrib-python-headless`` instead of
            ``opencv-python-headless``; the zoo does not depend on it).
    """

    name = "tvl1"

    def __init__(self):
        if not tvl1_available():
            raise ImportError("the tvl1 flow provider needs OpenCV's contrib modules (cv2.optflow): "
                              "pip uninstall opencv-python-headless && pip install opencv-contrib-python-headless")

    def compute(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        import cv2

        tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
        flows = [tvl1.calc(_gray(a), _gray(b), None) for a, b in zip(first.numpy(), second.numpy())]
        return torch.from_numpy(np.stack(flows)).permute(0, 3, 1, 2)


def _load_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"flow weights not found: {path} (the raft provider reads a local file; "
                                "nothing is downloaded)")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    return state


class RAFTFlow(FlowProvider):
    """torchvision's RAFT with weights from a local file.

    Frames go in as RAFT expects them, scaled to [-1, 1]. RAFT needs sides that are multiples of 8
    and at least 128 pixels (its correlation pyramid): other frames are resized (bilinear) to the
    nearest such size, and the flow is resized back with its vectors scaled (ours).

    Args:
        weights: a ``state_dict`` of torchvision's ``raft_small`` or ``raft_large`` (``.pth`` read
            with ``weights_only=True``, or ``.safetensors``), e.g. torchvision's released file.
        variant: ``'raft_small'`` or ``'raft_large'``.
        num_flow_updates: RAFT's refinement iterations (torchvision's default 12).
        device: where RAFT runs (``'cuda'`` when available is much faster).
        batch_size: frame pairs per forward pass.
    """

    name = "raft"
    min_size = 128

    def __init__(self, weights: str | os.PathLike, variant: str = "raft_small", num_flow_updates: int = 12,
                 device: str | torch.device = "cpu", batch_size: int = 8):
        from torchvision.models import optical_flow

        if variant not in ("raft_small", "raft_large"):
            raise ValueError(f"RAFT variant must be 'raft_small' or 'raft_large', got {variant!r}")
        if num_flow_updates < 1 or batch_size < 1:
            raise ValueError(f"need num_flow_updates >= 1 and batch_size >= 1, got {num_flow_updates}, {batch_size}")
        self.model = getattr(optical_flow, variant)(weights=None)
        self.model.load_state_dict(_load_state_dict(weights))
        self.device = torch.device(device)
        self.model.eval().to(self.device)
        self.weights = str(weights)
        self.variant = variant
        self.num_flow_updates = num_flow_updates
        self.batch_size = batch_size

    def _working_size(self, height: int, width: int) -> tuple[int, int]:
        scale = max(1.0, self.min_size / min(height, width))
        return 8 * math.ceil(height * scale / 8), 8 * math.ceil(width * scale / 8)

    @torch.no_grad()
    def compute(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        height, width = first.shape[1:3]
        size = self._working_size(height, width)
        out = []
        for i in range(0, first.shape[0], self.batch_size):
            pair = []
            for frames in (first[i:i + self.batch_size], second[i:i + self.batch_size]):
                x = frames.to(self.device).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
                if x.shape[-2:] != size:
                    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
                pair.append(x)
            flow = self.model(*pair, num_flow_updates=self.num_flow_updates)[-1]
            out.append(upsample_flow(flow, (height, width)).cpu())
        return torch.cat(out)

    def config(self) -> dict[str, Any]:
        return {"provider": self.name, "variant": self.variant, "weights": self.weights,
                "num_flow_updates": self.num_flow_updates}


class HCMLFlow(FlowProvider):
    """The flow an HCML model's flow head estimates (``zoo.adapters``), at the lowest level that has one.

    A pair becomes a clip ``[first, second, second, ...]`` as long as the model needs (``min_frames``);
    the flow of the level's first time step then goes from ``first`` to ``second`` whatever the level's
    temporal reduction. It is estimated on the level's map and upsampled to the frame size, vectors
    scaled (``zoo.adapters.flow.upsample_flow``). Frames are normalised with the model's
    ``pretrained_cfg`` mean and std (ImageNet's when it has none).

    Args:
        model: an HCML model with its side branch (not deployed), or a registered model name
            (built with ``create_model(model, checkpoint_path=checkpoint, **model_kwargs)``); None to
            rebuild the model of a ``zoo train`` checkpoint.
        checkpoint: weights for a model name, or, with ``model=None``, a ``zoo train`` checkpoint.
        level: the flow level (default: the lowest with a flow head).
        mean, std: per-channel normalisation of the [0, 1] frames (default: the model's).
        device: where the model runs.
        batch_size: frame pairs per forward pass.
        **model_kwargs: further ``create_model`` arguments for a model name.
    """

    name = "hcml"

    def __init__(self, model: nn.Module | str | None = None, checkpoint: str | os.PathLike | None = None,
                 level: int | None = None, mean: tuple[float, ...] | None = None, std: tuple[float, ...] | None = None,
                 device: str | torch.device = "cpu", batch_size: int = 8, **model_kwargs: Any):
        from ..adapters.hcml import hcml_stages

        source = model if isinstance(model, str) else (str(checkpoint) if checkpoint else type(model).__name__)
        if model is None:
            if checkpoint is None:
                raise ValueError("the hcml flow provider needs a model, a model name, or a zoo train checkpoint")
            from .._checkpoint import build_model_from_checkpoint

            model = build_model_from_checkpoint(checkpoint)
        elif isinstance(model, str):
            from .._factory import create_model

            model = create_model(model, checkpoint_path=checkpoint, **model_kwargs)
        stages = hcml_stages(model)
        if not stages or "hcml" not in model._modules or not len(model.hcml["flow"]):
            raise ValueError("the hcml flow provider needs an HCML model with a flow head (side branch not deployed)")
        flow_levels = sorted(int(lv) for lv in model.hcml["flow"])
        self.level = flow_levels[0] if level is None else level
        if self.level not in flow_levels:
            raise ValueError(f"level {self.level} has no flow head; this model's flow levels are {flow_levels}")
        cfg = getattr(model, "pretrained_cfg", None)
        self.mean = tuple(mean or getattr(cfg, "mean", None) or IMAGENET_MEAN)
        self.std = tuple(std or getattr(cfg, "std", None) or IMAGENET_STD)
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        self.frames = max(2, getattr(model, "min_frames", 2))
        self.batch_size = batch_size
        self.source = source

    @torch.no_grad()
    def compute(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        from ..adapters.hcml import capture_motion

        height, width = first.shape[1:3]
        mean = torch.tensor(self.mean, device=self.device).view(1, 3, 1, 1, 1)
        std = torch.tensor(self.std, device=self.device).view(1, 3, 1, 1, 1)
        out = []
        for i in range(0, first.shape[0], self.batch_size):
            a = first[i:i + self.batch_size].to(self.device)
            b = second[i:i + self.batch_size].to(self.device)
            clip = torch.stack([a] + [b] * (self.frames - 1), dim=1)  # (N, T, H, W, 3)
            clip = (clip.permute(0, 4, 1, 2, 3).float() / 255 - mean) / std
            with capture_motion(self.model, stop_after_level=self.level) as motion:
                self.model(clip)
            flow = self.model.hcml["flow"][str(self.level)](motion[self.level])[:, :, 0].float()
            out.append(upsample_flow(flow, (height, width)).cpu())
        return torch.cat(out)

    def config(self) -> dict[str, Any]:
        return {"provider": self.name, "model": self.source, "level": self.level}


_PROVIDERS: dict[str, Callable[..., FlowProvider]] = {
    "farneback": FarnebackFlow,
    "tvl1": TVL1Flow,
    "raft": RAFTFlow,
    "hcml": HCMLFlow,
}


def list_flow_providers() -> list[str]:
    """Names :func:`create_flow_provider` accepts (``tvl1`` only works with OpenCV contrib installed)."""
    return sorted(_PROVIDERS)


def create_flow_provider(name: str | FlowProvider, **kwargs: Any) -> FlowProvider:
    """The flow provider ``name`` built with ``kwargs`` (a provider passed in is returned as is)."""
    if isinstance(name, FlowProvider):
        if kwargs:
            raise ValueError("keyword arguments apply to a provider name, not to a built provider")
        return name
    if name not in _PROVIDERS:
        raise ValueError(f"unknown flow provider {name!r}; choose one of {list_flow_providers()}")
    return _PROVIDERS[name](**kwargs)
