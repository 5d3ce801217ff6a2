"""HCML's objectives: progressive self-supervised stages and joint training (paper 3.1, 3.2, appendix B.2).

``create_objective('hcml', model, stage=...)`` on a model with HCML adapters (``zoo.adapters.attach_hcml``):

- ``'level<l>'`` (progressive training, 3.1): trains level ``l`` alone and freezes everything up to
  the level below. Trained: the backbone between the level below and level ``l`` (for the lowest
  level: from the stem), level ``l``'s prime motion block and its side branch. Frozen
  (``requires_grad=False``, BatchNorms and dropout in eval mode): everything before, i.e. the
  stem and stages up to the level below, their motion blocks, ``g`` and side branches. Not trained
  and not run: the rest of the network (the forward pass stops after level ``l``), including level
  ``l``'s ``g`` and the classifier: the ``g`` start at zero and are trained in the joint stage.
  "Between" is what ``P^l`` depends on and the level below's output ``Z^{l'}`` does not: the objective
  finds it by one forward pass on the meta device (nothing computed) and the autograd graph of ``P^l``,
  so it holds for backbones that are not a chain: SlowFast's slow pathway, which never feeds the fast
  pathway's levels, is not trained in the level stages; MViT's blocks, registered apart from its
  ``stage_maps``, are assigned to the stage that runs them. Modules with nothing to train run in eval
  mode. A backbone that does not run on the meta device falls back to the modules' registration order.
  Loss: ``lambda L_reconstruct^l`` if ``l`` has a flow head, plus ``gamma_l L_contrastive^l`` if
  it is a contrastive level (the joint weights, so a term means the same in every stage).
- ``'joint'`` (3.2, eq. 4): everything is trained, ``L = L_cls + lambda sum L_reconstruct^l +
  sum_l gamma_l L_contrastive^l``, ``L_cls`` the cross-entropy of the logits (labels required).

Reconstruction (eqs. 1-2) at a flow level: the flow head reads ``P^l`` and estimates the flow of
each time step t of the level to t+1 in pixels of the level's map, which warps frame t+1 back onto
frame t. The frames are the input clip as given (normalised, all channels), subsampled to the
level's temporal resolution (input frame ``t * r`` stands for time step t of a level with temporal
reduction ``r``). ``L_reconstruct = L_photometric + zeta L_smoothness`` over the T-1 real pairs (the
last frame's pair with itself is left out). The paper does not say at which resolution it warps.
By default (``reconstruct_at='level'``, ours) the frames are area-averaged down to the level's map
and warped there, as multi-scale unsupervised flow losses do at their coarse scales;
``reconstruct_at='frame'`` upsamples the flow to the frames instead. At the frame's resolution a
flow that is 4x coarser than the image leaks onto the static, textured pixels around a moving
object, and the Charbonnier penalty (alpha < 0.5: steep near zero) makes that leak cost more than
the object's alignment gains: on Moving-Digits the flow head then learns zero flow, while at the
level's resolution it learns the digits' motion, signs included (1 to 2 epochs of level 1).

Contrastive (eq. 3, B.2) at level ``l`` with the level below ``l'``: ``P^{l'}`` is average-pooled onto
level ``l``'s (T, H, W) grid (``adaptive_avg_pool3d``: a 2x2 spatial, and ``r``-frame temporal, mean
when the sizes divide), so the predictor's input ``[P^l_t, P^{l'}_t]`` and the targets
``P^{l'}_{t+delta}`` live on one grid, and delta counts time steps of level ``l``. ``P^{l'}`` is
detached, as condition and as target, in every stage: the lower level's features are the fixed
ground truth of the predictive task (frozen anyway in progressive training; in joint training the
higher level's loss then cannot reshape the level below, which is trained by its own loss). N
locations per video are drawn (the same at every time step); for each delta, the queries are the
predictions at ``(b, t, k)``, ``t + delta < T``, and the keys are the ground truth at every sampled
``(b, t', m)``: the positive ``(b, t + delta, k)``, ``(N-1)T`` spatial, ``T-1`` temporal and
``(B-1)NT`` easy negatives, one ``zoo.kernels.info_nce`` call per delta. Under torchrun/DDP the keys
of every rank are gathered (``zoo.utils.distributed.gather_with_grad``), so the easy negatives span
the global batch, ``(B_global - 1) N T``, as in one process holding the whole batch (the appendix's
"within a mini-batch" is the paper's synchronized, global one). Eq. 3 sums over queries; we
average over queries and deltas, so gamma does not depend on B, N or T, and at initialisation the
loss is about ``log(B N T)``.

Defaults the paper does not give are ours: N = 32, tau = 0.1, zeta = 0.1.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .. import kernels
from ..adapters.flow import CHARBONNIER_ALPHA, CHARBONNIER_EPS, photometric_loss, smoothness_loss
from ..adapters.hcml import (
    HCMLStage,
    MotionPredictor,
    capture_motion,
    hcml_min_frames,
    hcml_stages,
    short_clip_message,
)
from ..models import check_video_input
from . import register_objective
from .base import Objective

__all__ = ["HCMLObjective", "contrastive_motion_loss", "reconstruction_loss", "level_frames", "align_to_grid"]


def level_frames(clips: torch.Tensor, temporal_reduction: int, steps: int) -> torch.Tensor:
    """The input frames standing for the ``steps`` time steps of a level: ``clips[:, :, ::r][:, :, :steps]``."""
    frames = clips[:, :, ::temporal_reduction][:, :, :steps]
    if frames.shape[2] != steps:
        raise ValueError(
            f"a level with temporal reduction {temporal_reduction} and {steps} time steps does not match clips of "
            f"{clips.shape[2]} frames"
        )
    return frames


def reconstruction_loss(
    flow: torch.Tensor,
    frames: torch.Tensor,
    smoothness_weight: float = 0.1,
    alpha: float = CHARBONNIER_ALPHA,
    eps: float = CHARBONNIER_EPS,
) -> dict[str, torch.Tensor]:
    """``L_reconstruct = L_photometric + zeta L_smoothness`` (eqs. 1-2) of a flow ``(B, 2, T, h, w)``
    estimated on frames ``(B, C, T, H, W)``. Returns ``{'photometric', 'smoothness', 'reconstruct'}``."""
    photometric = photometric_loss(frames, flow, alpha, eps)
    smoothness = smoothness_loss(flow, frames.shape[-2:], alpha, eps)
    return {
        "photometric": photometric,
        "smoothness": smoothness,
        "reconstruct": photometric + smoothness_weight * smoothness,
    }


def align_to_grid(lower: torch.Tensor, size: tuple[int, int, int]) -> torch.Tensor:
    """Average-pool a lower level's ``(B, C, T', H', W')`` map onto a higher level's ``(T, H, W)`` grid."""
    if any(a < b for a, b in zip(lower.shape[2:], size)):
        raise ValueError(f"the lower level's map {tuple(lower.shape[2:])} is coarser than the higher level's {size}")
    return F.adaptive_avg_pool3d(lower, size)


def _sample_locations(batch: int, locations: int, num_samples: int, device: torch.device,
                      generator: torch.Generator | None) -> torch.Tensor:
    """``(B, n)`` distinct random flat indices per video, ``n = min(num_samples, locations)``."""
    n = min(num_samples, locations)
    # No generator= argument without a generator: torch.rand's overload with one takes no symbolic sizes, which
    # torch.compile's dynamic shapes give it (a recompile for a new clip size then fails instead of tracing).
    scores = torch.rand(batch, locations, device=device, **({"generator": generator} if generator is not None else {}))
    return scores.argsort(dim=1)[:, :n]


def contrastive_motion_loss(
    predictor: MotionPredictor,
    upper: torch.Tensor,
    lower: torch.Tensor,
    num_samples: int = 32,
    temperature: float = 0.1,
    generator: torch.Generator | None = None,
    backend: str = "auto",
    global_keys: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 3 with appendix B.2's negatives: ``P^l`` predicts the future of ``P^{l'}`` (see the module docstring).

    Args:
        predictor: ``f_delta`` of level l.
        upper: ``P^l``, ``(B, C_l, T, H, W)``.
        lower: ``P^{l'}``, ``(B, C_l', T', H', W')``, at least as fine as ``upper``; detached here.
        num_samples: N, locations per video (at most ``H * W``).
        temperature: tau.
        generator: random generator of the sampled locations.
        backend: ``zoo.kernels.info_nce`` backend.
        global_keys: under DDP, gather the keys of every rank (every rank must pass the same
            shapes), so the easy negatives come from the global batch; no effect in one process.

    Returns:
        ``(loss, accuracy)``: the InfoNCE mean over queries and deltas, and the fraction of queries
        whose positive is the most similar key (no grad).
    """
    b, _, t, h, w = upper.shape
    too_far = [d for d in predictor.deltas if d >= t]
    if too_far:
        raise ValueError(
            f"contrastive level with T={t} time steps cannot predict deltas {too_far} ahead (needs T > delta): "
            f"give longer clips or smaller deltas"
        )
    lower = align_to_grid(lower.detach(), (t, h, w))
    index = _sample_locations(b, h * w, num_samples, upper.device, generator)
    n = index.shape[1]

    def gather(x: torch.Tensor) -> torch.Tensor:  # (B, C, T, H, W) -> (B, T, n, C)
        c = x.shape[1]
        x = x.flatten(3).gather(3, index[:, None, None, :].expand(b, c, t, n))
        return x.permute(0, 2, 3, 1)

    upper_s, lower_s = gather(upper), gather(lower)
    predictions = predictor(torch.cat([upper_s, lower_s.to(upper_s.dtype)], dim=-1))
    keys = lower_s.reshape(b * t * n, -1)
    offset = 0  # index of this rank's first key among the gathered ones
    if global_keys:
        from ..utils.distributed import gather_with_grad, get_rank

        offset = get_rank() * keys.shape[0]
        keys = gather_with_grad(keys.contiguous())
    losses, accuracies = [], []
    for delta, predicted in predictions.items():
        queries = predicted[:, : t - delta].reshape(-1, predicted.shape[-1])
        # The positive of query (b, t, k) is key (b, t + delta, k), at flat index (b T + t + delta) n + k.
        videos = torch.arange(b, device=upper.device)[:, None, None]
        steps = torch.arange(delta, t, device=upper.device)[:, None]
        target = ((videos * t + steps) * n + torch.arange(n, device=upper.device)).reshape(-1) + offset
        loss, accuracy = kernels.info_nce(
            queries, keys.to(queries.dtype), target, temperature, return_accuracy=True, backend=backend
        )
        losses.append(loss)
        accuracies.append(accuracy)
    return torch.stack(losses).mean(), torch.stack(accuracies).mean()


def _parameter_levels(model: nn.Module, stages: dict[int, HCMLStage]) -> dict[str, tuple[str, int]]:
    """Which part of the hierarchy each parameter belongs to, by name.

    ``('level', l)``: the backbone after the level below l up to level l's stage, and level l's
    PMB; ``('fuse', l)``: level l's ``g``; ``('side', l)``: level l's flow head and predictor;
    ``('top', 0)``: everything after the highest level (later stages, classifier). Relies on the
    backbone registering its modules in execution order, as timm and torchvision networks do.
    """
    prefixes = {level: name + "." for name, m in model.named_modules() for level, s in stages.items() if m is s}
    levels = list(stages)
    groups: dict[str, tuple[str, int]] = {}
    upcoming = 0  # index in `levels` of the next HCML stage in registration order
    for name, _ in model.named_parameters():
        if name.startswith("hcml."):
            groups[name] = ("side", int(name.split(".")[2]))
            continue
        level = next((lv for lv, prefix in prefixes.items() if name.startswith(prefix)), None)
        if level is not None:
            part = "fuse" if name.startswith(prefixes[level] + "fuse.") else "level"
            groups[name] = (part, level)
            upcoming = levels.index(level) + 1
        elif upcoming < len(levels):
            groups[name] = ("level", levels[upcoming])
        else:
            groups[name] = ("top", 0)
    return groups


def _graph_parameters(output: torch.Tensor, names: dict[int, str]) -> set[str]:
    """Names (``names``: ``id(leaf) -> name``) of the leaves ``output``'s autograd graph reaches."""
    found: set[str] = set()
    seen: set[int] = set()
    stack = [output.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        variable = getattr(node, "variable", None)  # an AccumulateGrad node: its leaf
        if variable is not None and id(variable) in names:
            found.add(names[id(variable)])
        stack.extend(next_node for next_node, _ in node.next_functions)
    return found


def _traced_dependencies(
    model: nn.Module, stages: dict[int, HCMLStage], level: int
) -> tuple[set[str], set[str]] | None:
    """``(upstream of P^level, upstream of the lower levels' outputs Z^l')``: the names of the parameters
    each depends on, from one forward pass on the meta device (no memory, nothing computed; eval mode)
    that stops after level ``level``'s ``P``. None when the model does not run on the meta device."""
    params = {n: torch.empty_like(p, device="meta").requires_grad_(p.is_floating_point())
              for n, p in model.named_parameters()}
    tensors = {**params, **{n: torch.empty_like(b, device="meta") for n, b in model.named_buffers()}}
    names = {id(p): n for n, p in params.items()}
    outputs: list[torch.Tensor] = []
    hooks = [stage.register_forward_hook(lambda _m, _i, out: outputs.append(out))
             for lv, stage in stages.items() if lv < level]
    modes = {m: m.training for m in model.modules()}
    size = max(getattr(model, "min_size", 1) or 1, model.feature_info[-1]["reduction"])
    clip = torch.empty(2, getattr(model, "in_chans", 3), max(2, getattr(model, "min_frames", 2)), size, size,
                       device="meta")
    model.eval()
    try:
        with torch.enable_grad(), capture_motion(model, stop_after_level=level) as motion:
            torch.func.functional_call(model, tensors, (clip,), strict=False)
        upstream = _graph_parameters(motion[level], names)
        lower = set().union(*(_graph_parameters(out, names) for out in outputs))
    except (RuntimeError, NotImplementedError, TypeError, ValueError, KeyError):
        return None
    finally:
        for hook in hooks:
            hook.remove()
        for module, mode in modes.items():
            module.training = mode
    return upstream, lower


@register_objective("hcml")
class HCMLObjective(Objective):
    """HCML's loss for one training stage (see the module docstring).

    Building it sets ``requires_grad`` on the model's parameters (True exactly for the trained ones);
    build one objective per stage, when the stage starts.

    Args:
        model: a model with HCML adapters and their side branch (not deployed).
        stage: ``'level<l>'`` for an HCML level ``l`` with a loss, or ``'joint'``.
        reconstruct_weight: lambda (paper: 15).
        contrastive_weight: gamma, one float for all levels or ``{level: gamma}`` (paper: 0.25).
        num_samples: N, locations per video of the contrastive loss (ours: 32).
        temperature: tau (ours: 0.1).
        smoothness_weight: zeta (ours: 0.1).
        reconstruct_at: ``'level'`` (ours: warp frames area-averaged to the flow's map) or ``'frame'``
            (warp at the input resolution with the flow upsampled); see the module docstring.
        charbonnier_alpha, charbonnier_eps: the penalty's alpha and eps (paper: 0.45, 1e-3).
        generator: random generator of the contrastive loss's locations, on the clips' device.
        backend: ``zoo.kernels.info_nce`` backend (``'auto'``: Triton on CUDA, PyTorch elsewhere).
        global_negatives: under DDP, the contrastive keys of all ranks are the negatives of every
            rank's queries (the global batch's easy negatives); False keeps them per rank.

    Calling it on ``clips (B, C, T, H, W)`` (and ``labels (B,)`` in the joint stage) returns a dict:
    ``'loss'`` (the weighted total) and the unweighted terms ``'loss_cls'``,
    ``'loss_reconstruct_l<l>'``, ``'loss_photometric_l<l>'``, ``'loss_smoothness_l<l>'``,
    ``'loss_contrastive_l<l>'``, plus ``'acc_contrastive_l<l>'`` (no grad).
    """

    def __init__(
        self,
        model: nn.Module,
        stage: str = "joint",
        reconstruct_weight: float = 15.0,
        contrastive_weight: float | Mapping[int, float] = 0.25,
        num_samples: int = 32,
        temperature: float = 0.1,
        smoothness_weight: float = 0.1,
        charbonnier_alpha: float = CHARBONNIER_ALPHA,
        charbonnier_eps: float = CHARBONNIER_EPS,
        generator: torch.Generator | None = None,
        backend: str = "auto",
        global_negatives: bool = True,
        reconstruct_at: str = "level",
    ):
        super().__init__(model)
        self.stages = hcml_stages(model)
        if not self.stages:
            raise ValueError("the model has no HCML adapters; fit them with zoo.adapters.attach_hcml(model)")
        if "hcml" not in model._modules:
            raise ValueError("the model's HCML side branch was dropped (deployed); the objective needs it")
        self.cfg = model.hcml_cfg
        self.supervised = [lv for lv in self.stages if lv in self.cfg.flow_levels or lv in self.cfg.contrastive_levels]
        names = [f"level{lv}" for lv in self.supervised] + ["joint"]
        if stage not in names:
            raise ValueError(f"HCML stage must be one of {names} for this model's levels, got {stage!r}")
        if reconstruct_at not in ("level", "frame"):
            raise ValueError(f"reconstruct_at must be 'level' or 'frame', got {reconstruct_at!r}")
        self.reconstruct_at = reconstruct_at
        if num_samples < 1 or temperature <= 0:
            raise ValueError(f"need num_samples >= 1 and temperature > 0, got {num_samples} and {temperature}")
        self.stage = stage
        self.level = None if stage == "joint" else int(stage[len("level"):])
        self.reconstruct_weight = float(reconstruct_weight)
        self.contrastive_weight = {
            lv: float(contrastive_weight[lv] if isinstance(contrastive_weight, Mapping) else contrastive_weight)
            for lv in self.cfg.contrastive_levels
        }
        self.num_samples = num_samples
        self.temperature = temperature
        self.smoothness_weight = smoothness_weight
        self.charbonnier = (charbonnier_alpha, charbonnier_eps)
        self.generator = generator
        self.backend = backend
        self.global_negatives = global_negatives

        groups = _parameter_levels(model, self.stages)
        if self.level is None:
            trained = set(groups)
        else:
            side = {n for n, g in groups.items() if g[0] == "side" and g[1] == self.level}
            traced = _traced_dependencies(model, self.stages, self.level)
            if traced is not None:  # what P^l depends on, less what the level below's output depends on
                upstream, lower = traced
                trained = (upstream - lower) | side
            else:  # registration order (a backbone that does not run on the meta device)
                trained = {n for n, g in groups.items() if g[0] == "level" and g[1] == self.level} | side
        self._trained_names = [n for n in groups if n in trained]
        for name, param in model.named_parameters():
            param.requires_grad_(name in trained)
        # Modules with nothing to train run in eval mode (BatchNorm statistics fixed, no dropout).
        frozen_modules = {}
        for name, module in model.named_modules():
            params = [n for n, _ in module.named_parameters(prefix=name)]
            inside_frozen = any(name.startswith(p + ".") for p in frozen_modules)
            if params and not any(n in trained for n in params) and not inside_frozen:
                frozen_modules[name] = module
        self._frozen_modules = list(frozen_modules.values())

    @property
    def levels(self) -> list[int]:
        """The levels whose losses this stage computes."""
        return self.supervised if self.level is None else [self.level]

    def named_trainable_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """``(name, parameter)`` of what this stage trains, in the model's order."""
        params = dict(self.model.named_parameters())
        return [(n, params[n]) for n in self._trained_names]

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The parameters this stage trains: give these to the optimizer."""
        return [p for _, p in self.named_trainable_parameters()]

    def train(self, mode: bool = True) -> HCMLObjective:
        """Set the model's mode; the frozen parts stay in eval mode (BatchNorm statistics fixed)."""
        super().train(mode)
        if mode:
            for module in self._frozen_modules:
                module.train(False)
        return self

    def forward(self, clips: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        model = self.model
        check_video_input(clips, getattr(model, "in_chans", clips.shape[1]), 2)
        if clips.shape[2] < hcml_min_frames(model, training=True):  # the contrastive levels' deltas included
            raise ValueError(short_clip_message(model, clips, training=True))
        if self.level is None and labels is None:
            raise ValueError("the joint HCML stage trains the classifier too: pass labels (B,) with the clips")
        if model.training:
            for module in self._frozen_modules:
                module.train(False)

        out: dict[str, torch.Tensor] = {}
        logits = None  # the forward pass stops after the stage's level, except in the joint stage
        with capture_motion(model, stop_after_level=self.level) as motion:
            logits = model(clips)
        total = torch.zeros((), device=clips.device)
        side = model.hcml
        alpha, eps = self.charbonnier
        for level in self.levels:
            if level in self.cfg.flow_levels:
                feats = motion[level]
                # The flow head sees each time step alone, and the losses leave out the last step's flow (the
                # last frame paired with itself): it runs on the T-1 real pairs, and a zero flow stands for the
                # last step (1/T of the head's cost, the largest part of the side branch, saved; same loss).
                flow = side["flow"][str(level)](feats[:, :, :-1])
                flow = torch.cat([flow, flow.new_zeros(flow[:, :, -1:].shape)], dim=2)
                # Warping in float32 also under autocast: bf16 pixel coordinates are off by up to a pixel.
                flow = flow.float()
                frames = level_frames(clips, self.stages[level].temporal_reduction, feats.shape[2]).float()
                if self.reconstruct_at == "level":
                    frames = F.adaptive_avg_pool3d(frames, flow.shape[2:])
                terms = reconstruction_loss(flow, frames, self.smoothness_weight, alpha, eps)
                for key, value in terms.items():
                    out[f"loss_{key}_l{level}"] = value
                total = total + self.reconstruct_weight * terms["reconstruct"]
            if level in self.cfg.contrastive_levels:
                loss, accuracy = contrastive_motion_loss(
                    side["predict"][str(level)],
                    motion[level],
                    motion[self.cfg.lower_level(level)],
                    self.num_samples,
                    self.temperature,
                    self.generator,
                    self.backend,
                    self.global_negatives,
                )
                out[f"loss_contrastive_l{level}"] = loss
                out[f"acc_contrastive_l{level}"] = accuracy
                total = total + self.contrastive_weight[level] * loss
        if self.level is None:
            loss_cls = F.cross_entropy(logits.float(), labels)
            out["loss_cls"] = loss_cls
            total = total + loss_cls
        out["loss"] = total
        return out

    def extra_repr(self) -> str:
        n = sum(p.numel() for p in self.trainable_parameters())
        return f"stage={self.stage!r}, levels={self.levels}, trainable_params={n}"

