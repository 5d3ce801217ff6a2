"""Grad-CAM of a video model's last stage, and a model beside its HCML version over the frames (HCML Fig. 6).

Grad-CAM (Selvaraju et al. 2017) on a ``(B, C, T, H, W)`` map ``A`` of a stage: the weights ``w_c`` are the
gradients of the target class's logit with respect to ``A_c`` averaged over ``(T, H, W)``, the map is
``ReLU(sum_c w_c A_c)`` ``(B, T', H', W')``, upsampled (trilinearly, time included) to the clip and scaled to
[0, 1] per clip. The ``grad-cam`` package (``pytorch_grad_cam`` >= 1.5) computes the same weights on 5-D
maps, but it needs OpenCV, scikit-learn and ttach for what is one backward pass here, so the zoo computes it
with a forward hook and ``torch.autograd.grad`` (the parameters' ``.grad`` are not touched).

"The last stage" is the deepest ``feature_info`` module whose map the target's logit depends on: the last
stage for CNNs and Swin3D; for MViT, whose classifier reads the class token (which no module after the last
stage's blocks mixes with the patch tokens), the gradient of ``stage_maps.3`` is zero and the stage before is
taken; SlowFast's ``feature_info`` is the fast pathway's, so its CAM is the fast res5 map's.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from torch import nn
from torchvision.utils import make_grid

from .render import frames_to_uint8

__all__ = ["grad_cam", "render_cam", "cam_colormap"]


def grad_cam(
    model: nn.Module, clips: torch.Tensor, target: int | Sequence[int] | torch.Tensor | None = None,
    layer: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Grad-CAM of ``clips (B, C, T, H, W)`` (normalised as the model expects) for class ``target``.

    Args:
        model: a zoo video model (run in eval mode here; its mode is restored).
        clips: the clips.
        target: one class for every clip, one per clip, or None: each clip's predicted class.
        layer: the module whose map is used (default: the deepest ``feature_info`` module with a non-zero
            gradient, see the module docstring).

    Returns:
        ``(cams (B, T, H, W) in [0, 1], targets (B,), layer name)``.
    """
    if clips.ndim != 5:
        raise ValueError(f"grad_cam takes (B, C, T, H, W) clips, got shape {tuple(clips.shape)}")
    names = [layer] if layer is not None else [info["module"] for info in model.feature_info][::-1]
    maps: dict[str, torch.Tensor] = {}
    hooks = [model.get_submodule(name).register_forward_hook(
        lambda _m, _i, out, name=name: maps.__setitem__(name, out)) for name in names]
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            logits = model(clips)
            if target is None:
                targets = logits.argmax(dim=1)
            else:
                targets = torch.as_tensor(target, device=logits.device).long().expand(logits.shape[0])
            score = logits.gather(1, targets[:, None]).sum()
            found = [n for n in names if isinstance(maps.get(n), torch.Tensor) and maps[n].requires_grad]
            grads = torch.autograd.grad(score, [maps[n] for n in found], allow_unused=True) if found else ()
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    chosen = next(((n, g) for n, g in zip(found, grads) if g is not None and g.abs().sum() > 0), None)
    if chosen is None:
        raise ValueError(f"no map of {names} gets a gradient from the logits; pass layer= a module that feeds them")
    name, grad = chosen
    act = maps[name].detach().float()
    weights = grad.float().mean(dim=(2, 3, 4), keepdim=True)
    cam = torch.relu((weights * act).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size=tuple(clips.shape[2:]), mode="trilinear", align_corners=False)[:, 0]
    cam = cam / cam.flatten(1).amax(dim=1).clamp_min(1e-12)[:, None, None, None]
    return cam.cpu(), targets.detach().cpu(), name


def cam_colormap(cam: torch.Tensor) -> torch.Tensor:
    """``(..., H, W)`` values in [0, 1] -> ``(..., 3, H, W)`` jet colours in [0, 1] (blue low, red high)."""
    x = cam.clamp(0, 1).unsqueeze(-3)
    return torch.cat([(1.5 - (4 * x - c).abs()).clamp(0, 1) for c in (3, 2, 1)], dim=-3)


@torch.no_grad()
def _overlay(frames: torch.Tensor, cam: torch.Tensor, alpha: float) -> torch.Tensor:
    """uint8 ``(T, 3, H, W)`` frames and a ``(T, H, W)`` CAM -> uint8 ``(T, 3, H, W)`` blended tiles."""
    mixed = (1 - alpha) * frames.float() / 255 + alpha * cam_colormap(cam)
    return (mixed.clamp(0, 1) * 255).round().to(torch.uint8)


def render_cam(
    model: nn.Module | Mapping[str, nn.Module] | Sequence[nn.Module],
    clip: torch.Tensor,
    target: int | None = None,
    path: str | Path | None = None,
    max_frames: int = 8,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    alpha: float = 0.5,
    label_names: Sequence[str] | None = None,
    scale: int = 1,
    layer: str | None = None,
) -> torch.Tensor:
    """Draw the Grad-CAM of the last stage of one or more models (a model and its HCML version) over a clip.

    One row of tiles per model under a caption (its name, the map's module, the class and its probability),
    one column per frame: the frame with the CAM blended over it (jet colours: red is where the target's logit
    is most sensitive). Each row is scaled by its own maximum.

    Args:
        model: a model, a ``{name: model}`` mapping, or a sequence of models (named by their architecture).
        clip: one clip ``(C, T, H, W)`` (or ``(1, C, T, H, W)``), normalised as the models expect.
        target: the class whose CAM is drawn (default: each model's predicted class).
        path: a PNG file to write (optional).
        max_frames: frames drawn, evenly spread over the clip.
        mean, std: the clip's normalisation, undone for display (default: the first model's ``pretrained_cfg``).
        alpha: the CAM's weight in the blend.
        label_names: class names for the captions.
        scale: integer upscaling of the tiles (small frames, e.g. Moving-Digits' 48 px).
        layer: the module whose map is used (default: the last stage, see :func:`grad_cam`).

    Returns:
        The grid, uint8 ``(3, H_grid, W_grid)``.
    """
    models = dict(model) if isinstance(model, Mapping) else None
    if models is None:
        seq = [model] if isinstance(model, nn.Module) else list(model)
        models = {getattr(getattr(m, "pretrained_cfg", None), "architecture", None) or type(m).__name__: m
                  for m in seq}
    clip = clip if clip.ndim == 5 else clip.unsqueeze(0)
    if clip.ndim != 5 or clip.shape[0] != 1:
        raise ValueError(f"render_cam draws one clip (C, T, H, W), got shape {tuple(clip.shape)}")
    first = next(iter(models.values()))
    cfg = getattr(first, "pretrained_cfg", None)
    mean = mean if mean is not None else getattr(cfg, "mean", None)
    std = std if std is not None else getattr(cfg, "std", None)
    steps = torch.linspace(0, clip.shape[2] - 1, min(max_frames, clip.shape[2])).round().long()
    frames = frames_to_uint8(clip[0].transpose(0, 1)[steps].float().cpu(), mean, std)
    if scale > 1:
        frames = F.interpolate(frames.float(), scale_factor=scale, mode="nearest").round().to(torch.uint8)
    rows = []
    for name, m in models.items():
        device = next(m.parameters()).device
        cam, targets, used = grad_cam(m, clip.to(device), target, layer)
        with torch.no_grad():
            prob = m.eval()(clip.to(device)).float().softmax(dim=1)[0, targets[0]].item()
        cam = cam[0][steps]
        if scale > 1:
            cam = F.interpolate(cam[None], scale_factor=scale, mode="bilinear", align_corners=False)[0]
        tiles = make_grid(list(_overlay(frames, cam, alpha)), nrow=len(steps), padding=2)
        cls = label_names[targets[0]] if label_names is not None else str(int(targets[0]))
        caption = Image.new("RGB", (tiles.shape[2], 14))
        ImageDraw.Draw(caption).text((3, 1), f"{name} ({used}): class {cls}, p = {prob:.2f}", fill=(255, 255, 255))
        rows += [torch.from_numpy(np.array(caption)).permute(2, 0, 1), tiles]
    grid = torch.cat(rows, dim=1)
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(grid.permute(1, 2, 0).numpy()).save(path)
    return grid
