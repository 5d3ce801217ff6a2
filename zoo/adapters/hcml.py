"""HCML motion adapters: prime motion blocks fused into a backbone, and their self-supervised side branch.

Hierarchical contrastive motion learning (Yang et al., "Hierarchical Contrastive Motion Learning for Video Action
Recognition", BMVC 2021, arXiv 2007.10321). At each
chosen level ``l`` a backbone stage's output ``F^l`` gets a prime motion block (PMB, paper 3.1) and is
replaced by ``Z^l = F^l + g^l(P^l)`` (3.2):

- PMB: a 1x1x1 conv reduces ``F^l`` to ``C / beta`` channels; the cost volume of each frame t with
  frame t+1 (the last frame with itself) by cosine similarity over displacements up to ``d`` with
  stride ``s`` (``zoo.kernels.temporal_correlation``, ``M = (2 floor(d/s) + 1)^2`` channels) is
  batch-normalised and concatenated with the reduced features; a 1x1x1 conv + BN + ReLU and a 1x3x3
  conv + BN give the motion features ``P^l``. The cost volume's BN is ours: cosine similarities of
  neighbouring, spatially smooth features differ from each other by about 1e-2, and without it the
  1x1x1 conv sees the reduced features' far larger variations and learns from the motion channels
  slowly (on Moving-Digits, classification alone stayed at chance for epochs without it and learned
  from the first epoch with it). The last layer has no ReLU, so that the cosine similarities of the
  contrastive loss span [-1, 1] (ours; the paper does not give the conv stack).
- ``g^l``: a 1x1x1 conv, zero-initialised (ours), so an attached adapter starts as an identity and
  leaves a (pretrained) backbone's outputs unchanged.

The side branch (training only, ``model.hcml``) holds a flow head at each reconstruction level
(default level 1, :class:`zoo.adapters.flow.FlowHead`) and a predictor ``f_delta`` at each
contrastive level (default every level but the lowest, :class:`MotionPredictor`). The losses are in
:mod:`zoo.methods.hcml`. :func:`deploy` deletes the side branch; the fused ``Z^l`` stay.

Levels: the paper's level ``l`` follows res_{l+1} (levels 1, 2, 3 after res2, res3, res4). A model's
``feature_info`` ends with its four stages res2..res5, possibly after a stem entry, so level ``l`` is
``feature_info[len(feature_info) - 5 + l]``: ``feature_info[l]`` for the video ResNets (stem, layer1..4)
and timm ResNets (act1, layer1..4), ``feature_info[l - 1]`` for ConvNeXt (four stages). We count from
the deepest stage rather than by reduction because torchvision's video ResNets have no max-pool (res2
at reduction 2, not 4). Every family's ``feature_info`` ends with its four stages, so the rule holds for all of
them; each family file says which modules its levels are and what maps they have: X3D's ``blocks.1..3``;
SlowFast's fast pathway (``feature_pathway='slow'``: the slow one); CSN's and pytorchvideo's ResNets'
``blocks`` stages (C2D/I3D skip the temporal pool); MViT's ``stage_maps.<i>`` (the stage's patch tokens as a
``(B, C, T, H, W)`` map, the class token passed through, ``g(P)`` added to the tokens of the same positions);
Swin3D's stages (map in, map out). A level's map must have ``T >= 2`` (``max(deltas) + 1`` at a contrastive
level for the objective, :func:`hcml_min_frames`) and be larger than its displacement window.

Choices the paper leaves open are config fields of :class:`HCMLConfig` with defaults that are ours.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .. import kernels
from .flow import FlowHead

__all__ = [
    "HCMLConfig",
    "PrimeMotionBlock",
    "HCMLStage",
    "MotionPredictor",
    "attach_hcml",
    "deploy",
    "HCMLModel",
    "hcml_model_class",
    "flow_head_levels",
    "hcml_stages",
    "level_feature_index",
    "hcml_min_frames",
    "short_clip_message",
    "capture_motion",
]

PerLevel = int | Mapping[int, int]

# Defaults per paper level (ours). Level 1 has the largest map (56x56 at 224 px for R2D-50), so its
# PMB is the thinnest: P^1 has C/8 channels, P^2 and P^3 C/4 (benchmarks/hcml_flops.py: 1.13x
# R2D-50, 1.08x R(2+1)D-101, under the paper's 1.18x and 1.11x). Displacements: ±24 input pixels at
# levels 1 and 2 (stride 4 and 8 maps), ±32 at level 3, ±32 at level 4.
_DEFAULT_REDUCTION = {1: 8, 2: 8, 3: 8, 4: 8}
_DEFAULT_MOTION_RATIO = {1: 8, 2: 4, 3: 4, 4: 4}
_DEFAULT_MAX_DISPLACEMENT = {1: 6, 2: 3, 3: 2, 4: 1}
_DEFAULT_DISPLACEMENT_STRIDE = {1: 2, 2: 1, 3: 1, 4: 1}
_MIN_CHANNELS = 16


def _per_level_value(name: str, value: PerLevel) -> PerLevel:
    """An int, or a ``{level: int}`` mapping with int keys (JSON stores them as strings)."""
    if isinstance(value, Mapping):
        return {int(k): int(v) for k, v in value.items()}
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError(f"HCML {name} takes an int (all levels) or a {{level: int}} mapping, got {value!r}")


@dataclass
class HCMLConfig:
    """Architecture of the HCML adapters; every default below that the paper does not fix is ours.

    Per-level fields take an int (all levels) or a ``{level: value}`` mapping (levels not in it
    keep the default).

    Attributes:
        levels: paper levels fitted with a PMB (1, 2, 3 = after res2, res3, res4; 4 = after res5).
        reduction: beta, the PMB's channel reduction before the cost volume (ours: 8; at least
            16 channels are kept).
        motion_ratio: ``P^l`` has ``C^l / motion_ratio`` channels (ours: 8 at level 1, 4 above; at
            least 16).
        max_displacement: d, in pixels of the level's map (ours: 6, 3, 2, 1 at levels 1..4).
        displacement_stride: s (ours: 2 at level 1, 1 above), so ``M = (2 floor(d/s) + 1)^2`` is
            49, 49, 25, 9 at levels 1..4.
        flow_levels: levels with a flow head trained by frame reconstruction (paper: level 1).
        contrastive_levels: levels trained by the contrastive loss against the level below (the
            next lower level in ``levels``); default every level but the lowest.
        deltas: the prediction steps of ``f_delta``, in time steps of the higher level (ours: 1, 2).
        flow_hidden_channels: widths of the flow head's four hidden convs (ours).
        predictor_hidden: width of ``f_delta``'s hidden layer; default its input width
            ``C(P^l) + C(P^{l-1})`` (ours).
        zero_init_fuse: start every ``g`` at zero (ours), so that attaching the adapters leaves a
            (pretrained) backbone's outputs unchanged; False keeps PyTorch's default conv init, which
            lets the motion features reach the classifier from the first step when training from scratch.
        side_branch: build the side branch (False: the deployed architecture, e.g. to load an export).
    """

    levels: tuple[int, ...] = (1, 2, 3)
    reduction: PerLevel = field(default_factory=dict)
    motion_ratio: PerLevel = field(default_factory=dict)
    max_displacement: PerLevel = field(default_factory=dict)
    displacement_stride: PerLevel = field(default_factory=dict)
    flow_levels: tuple[int, ...] = (1,)
    contrastive_levels: tuple[int, ...] | None = None
    deltas: tuple[int, ...] = (1, 2)
    flow_hidden_channels: tuple[int, ...] = (64, 48, 32, 16)
    predictor_hidden: int | None = None
    zero_init_fuse: bool = True
    side_branch: bool = True

    def __post_init__(self) -> None:
        self.levels = tuple(sorted({int(level) for level in self.levels}))
        if not self.levels or any(not 1 <= level <= 4 for level in self.levels):
            raise ValueError(f"HCML levels must be a non-empty subset of 1..4 (after res2..res5), got {self.levels}")
        for name in ("reduction", "motion_ratio", "max_displacement", "displacement_stride"):
            setattr(self, name, _per_level_value(name, getattr(self, name)))
        self.flow_levels = tuple(sorted(int(level) for level in self.flow_levels))
        if self.contrastive_levels is None:
            self.contrastive_levels = self.levels[1:]
        self.contrastive_levels = tuple(sorted(int(level) for level in self.contrastive_levels))
        for name in ("flow_levels", "contrastive_levels"):
            extra = sorted(set(getattr(self, name)) - set(self.levels))
            if extra:
                raise ValueError(f"HCML {name} {getattr(self, name)} names levels {extra} not in levels {self.levels}")
        if self.levels[0] in self.contrastive_levels:
            raise ValueError(
                f"HCML level {self.levels[0]} is the lowest of {self.levels}: it has no level below to predict, "
                f"so it cannot be a contrastive level"
            )
        self.deltas = tuple(sorted({int(d) for d in self.deltas}))
        if not self.deltas or self.deltas[0] < 1:
            raise ValueError(f"HCML deltas must be positive time steps, got {self.deltas}")
        self.flow_hidden_channels = tuple(int(c) for c in self.flow_hidden_channels)
        for level in self.levels:
            d, s = self.displacement(level)
            if d < 0 or s < 1 or self.beta(level) < 1 or self._per_level("motion_ratio", level) < 1:
                raise ValueError(
                    f"HCML level {level}: need max_displacement >= 0 and displacement_stride, reduction, "
                    "motion_ratio >= 1"
                )

    def _per_level(self, name: str, level: int) -> int:
        value = getattr(self, name)
        defaults = {
            "reduction": _DEFAULT_REDUCTION,
            "motion_ratio": _DEFAULT_MOTION_RATIO,
            "max_displacement": _DEFAULT_MAX_DISPLACEMENT,
            "displacement_stride": _DEFAULT_DISPLACEMENT_STRIDE,
        }[name]
        return value.get(level, defaults[level]) if isinstance(value, Mapping) else value

    def beta(self, level: int) -> int:
        """Channel reduction of the PMB at ``level``."""
        return self._per_level("reduction", level)

    def displacement(self, level: int) -> tuple[int, int]:
        """``(max_displacement, stride)`` of the cost volume at ``level``."""
        return self._per_level("max_displacement", level), self._per_level("displacement_stride", level)

    def channels(self, level: int, in_channels: int) -> tuple[int, int]:
        """``(reduced, motion)`` channels of the PMB at ``level`` for a ``in_channels`` feature map."""
        reduced = max(_MIN_CHANNELS, in_channels // self.beta(level))
        motion = max(_MIN_CHANNELS, in_channels // self._per_level("motion_ratio", level))
        return reduced, motion

    def lower_level(self, level: int) -> int:
        """The level whose motion features ``level`` predicts: the next lower one in ``levels``."""
        index = self.levels.index(level)
        if index == 0:
            raise ValueError(f"level {level} is the lowest HCML level; it has no level below")
        return self.levels[index - 1]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly fields (mapping keys become strings in JSON; the constructor reads them back)."""
        return dataclasses.asdict(self)


class PrimeMotionBlock(nn.Module):
    """Prime motion block (paper 3.1, Fig. 2a): ``(B, C, T, H, W)`` features -> ``(B, C_P, T, H, W)`` motion.

    Args:
        in_channels: C of the backbone features.
        reduced_channels: C / beta, the features the cost volume compares.
        motion_channels: C_P of the motion features ``P``.
        max_displacement: d, in pixels of the map.
        displacement_stride: s.
    """

    def __init__(
        self,
        in_channels: int,
        reduced_channels: int,
        motion_channels: int,
        max_displacement: int,
        displacement_stride: int = 1,
    ):
        super().__init__()
        self.max_displacement = max_displacement
        self.displacement_stride = displacement_stride
        radius = max_displacement // displacement_stride
        self.cost_channels = (2 * radius + 1) ** 2
        self.out_channels = motion_channels
        self.reduce = nn.Conv3d(in_channels, reduced_channels, 1, bias=False)
        self.cost_norm = nn.BatchNorm3d(self.cost_channels)
        self.encode = nn.Sequential(
            nn.Conv3d(reduced_channels + self.cost_channels, motion_channels, 1, bias=False),
            nn.BatchNorm3d(motion_channels),
            nn.ReLU(inplace=True),
            nn.Conv3d(motion_channels, motion_channels, (1, 3, 3), padding=(0, 1, 1), bias=False),
            nn.BatchNorm3d(motion_channels),
        )

    def cost_volume(self, reduced: torch.Tensor) -> torch.Tensor:
        """Cosine cost volume of frame t with t+1 (the last with itself): ``(B, M, T, H, W)``."""
        return kernels.temporal_correlation(reduced, self.max_displacement, self.displacement_stride, normalize=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        reduced = self.reduce(x)
        return self.encode(torch.cat([reduced, self.cost_norm(self.cost_volume(reduced))], dim=1))

    def extra_repr(self) -> str:
        return f"max_displacement={self.max_displacement}, displacement_stride={self.displacement_stride}"


class _StopForward(Exception):
    """Raised by the HCML stage of ``stop_after_level`` to end a forward pass that needs no more."""


class HCMLStage(nn.Module):
    """A backbone stage with a prime motion block: ``Z = F + g(P)``, ``F = stage(x)``, ``P = motion(F)``.

    The output is a plain tensor of the stage's shape, so the backbone's code is untouched. While a
    :func:`capture_motion` context is open, ``P`` is recorded for the objective; otherwise nothing is
    kept.

    Args:
        stage: the wrapped backbone stage, ``(B, C, T, H, W)`` out.
        motion: its :class:`PrimeMotionBlock`.
        out_channels: C of the stage's output.
        level: the paper level.
        stage_name: the stage's module path (for error messages).
        reduction: spatial reduction of the stage's map relative to the input.
        temporal_reduction: temporal reduction of the stage's map relative to the input.
        zero_init_fuse: start ``g`` at zero (the stage then computes ``F`` exactly).
    """

    def __init__(
        self,
        stage: nn.Module,
        motion: PrimeMotionBlock,
        out_channels: int,
        level: int,
        stage_name: str,
        reduction: int,
        temporal_reduction: int,
        zero_init_fuse: bool = True,
    ):
        super().__init__()
        self.stage = stage
        self.motion = motion
        self.fuse = nn.Conv3d(motion.out_channels, out_channels, 1)
        if zero_init_fuse:
            nn.init.zeros_(self.fuse.weight)
            nn.init.zeros_(self.fuse.bias)
        self.level = level
        self.stage_name = stage_name
        self.reduction = reduction
        self.temporal_reduction = temporal_reduction
        self._captured: dict[int, torch.Tensor] | None = None
        self._stop_here = False

    def check_features(self, features: torch.Tensor) -> None:
        """Raise a ValueError naming the fix when the stage's map cannot make a cost volume."""
        if features.ndim != 5:
            raise ValueError(
                f"HCML level {self.level} ({self.stage_name}) needs (B, C, T, H, W) maps, "
                f"got shape {tuple(features.shape)}"
            )
        t, h, w = features.shape[2:]
        if t < 2:
            raise ValueError(
                f"HCML level {self.level} ({self.stage_name}) pairs neighbouring frames and needs at least 2 time "
                f"steps, got T={t}: give clips of at least {2 * self.temporal_reduction} frames (this level's "
                f"temporal reduction is {self.temporal_reduction})"
            )
        d = self.motion.max_displacement
        if min(h, w) <= d:
            raise ValueError(
                f"HCML level {self.level} ({self.stage_name}): its {h}x{w} map is smaller than the displacement "
                f"window (max displacement {d} needs at least {d + 1} pixels per side): give frames of at least "
                f"{(d + 1) * self.reduction} pixels per side, or a smaller max_displacement for this level"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.stage(x)
        self.check_features(features)
        motion = self.motion(features)
        if self._captured is not None:
            self._captured[self.level] = motion
            if self._stop_here:
                raise _StopForward
        return features + self.fuse(motion)


class MotionPredictor(nn.Module):
    """``f_delta(x) = W_delta^(2) ReLU(W^(1) x)`` for every delta, ``W^(1)`` shared (paper 3.1).

    Acts on the last dimension: ``(..., in_channels)`` -> ``{delta: (..., out_channels)}``. Biases are
    left out, as in the paper's formula.

    Args:
        in_channels: ``C(P^l) + C(P^{l-1})``.
        hidden_channels: width of the hidden layer.
        out_channels: ``C(P^{l-1})``.
        deltas: the prediction steps.
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, deltas: Sequence[int]):
        super().__init__()
        self.deltas = tuple(deltas)
        self.shared = nn.Linear(in_channels, hidden_channels, bias=False)
        self.heads = nn.ModuleDict({str(d): nn.Linear(hidden_channels, out_channels, bias=False) for d in self.deltas})

    def forward(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        hidden = torch.relu(self.shared(x))
        return {d: self.heads[str(d)](hidden) for d in self.deltas}


def level_feature_index(model: nn.Module, level: int) -> int:
    """Index in ``model.feature_info`` of paper level ``level`` (1..4 after res2..res5): the last four
    entries are res2..res5, so it is ``len(feature_info) - 5 + level``."""
    feature_info = getattr(model, "feature_info", None)
    if not feature_info or len(feature_info) < 4:
        raise ValueError(
            f"{type(model).__name__} has no feature_info with (at least) four stage levels; HCML adapters "
            "attach to models whose feature_info ends with res2..res5 (video_resnet, timm2d)"
        )
    if not 1 <= level <= 4:
        raise ValueError(f"HCML level must be 1..4 (after res2..res5), got {level}")
    return len(feature_info) - 5 + level


def hcml_stages(model: nn.Module) -> dict[int, HCMLStage]:
    """The model's HCML stages by level, lowest first (empty when none is attached)."""
    stages = {m.level: m for m in model.modules() if isinstance(m, HCMLStage)}
    return dict(sorted(stages.items()))


@contextmanager
def capture_motion(model: nn.Module, stop_after_level: int | None = None) -> Iterator[dict[int, torch.Tensor]]:
    """Record the motion features ``P^l`` of every HCML level during the forward passes in the block.

    Yields a dict filled as the model runs, ``{level: (B, C_P, T_l, H_l, W_l)}``. With
    ``stop_after_level``, the forward pass ends right after that level's ``P`` is computed (the
    rest of the network is not run): the exception that ends it is caught here, so the statements
    of the block after the model call are skipped::

        with capture_motion(model, stop_after_level=2) as motion:
            model(clips)            # returns nothing: it stops at level 2
        motion[1], motion[2]
    """
    stages = hcml_stages(model)
    if not stages:
        raise ValueError("the model has no HCML adapters; fit them with zoo.adapters.attach_hcml(model)")
    if stop_after_level is not None and stop_after_level not in stages:
        raise ValueError(f"stop_after_level={stop_after_level} is not an HCML level of this model ({list(stages)})")
    captured: dict[int, torch.Tensor] = {}
    for stage in stages.values():
        stage._captured = captured
        stage._stop_here = stage.level == stop_after_level
    try:
        yield captured
    except _StopForward:
        pass
    finally:
        for stage in stages.values():
            stage._captured = None
            stage._stop_here = False


def flow_head_levels(model: nn.Module) -> list[int]:
    """The levels whose flow head the model's side branch has, lowest first (none: deployed, or no flow_levels)."""
    side = model._modules.get("hcml")
    return sorted(int(level) for level in side["flow"]) if side is not None else []


def estimate_flows(
    model: nn.Module, clips: torch.Tensor, levels: Sequence[int] | None = None
) -> dict[int, torch.Tensor]:
    """The flow that each flow head of the side branch estimates for ``clips (B, C, T, H, W)``, in one pass.

    The model runs in eval mode (restored after) and only up to the highest level asked for.

    Args:
        model: a model with HCML adapters and flow heads (its side branch; not deployed).
        clips: clips normalised as the model expects.
        levels: the flow levels wanted (default: every level with a flow head).

    Returns:
        ``{level: float (B, 2, T_l, h_l, w_l)}``: for each time step t of the level, the flow from t
        to t+1 in pixels of the level's map (u right, v down).
    """
    heads = flow_head_levels(model)
    levels = heads if levels is None else sorted(levels)
    if not levels or any(level not in heads for level in levels):
        raise ValueError(f"estimate_flows: flow heads at levels {heads} (none: a deployed model or no flow_levels); "
                         f"asked for {levels}")
    was_training = model.training
    model.eval()
    try:
        with capture_motion(model, stop_after_level=levels[-1]) as motion:
            model(clips)
    finally:
        model.train(was_training)
    return {level: model.hcml["flow"][str(level)](motion[level]).float() for level in levels}


def _build_side_branch(cfg: HCMLConfig, motion_channels: dict[int, int]) -> nn.ModuleDict:
    flow = nn.ModuleDict(
        {str(level): FlowHead(motion_channels[level], cfg.flow_hidden_channels) for level in cfg.flow_levels}
    )
    predict = nn.ModuleDict()
    for level in cfg.contrastive_levels:
        lower = motion_channels[cfg.lower_level(level)]
        in_channels = motion_channels[level] + lower
        predict[str(level)] = MotionPredictor(in_channels, cfg.predictor_hidden or in_channels, lower, cfg.deltas)
    return nn.ModuleDict({"flow": flow, "predict": predict})


def hcml_min_frames(model: nn.Module, training: bool = False) -> int:
    """The shortest clip a model with HCML adapters takes: every level needs 2 time steps (a frame pair), so
    ``2 * temporal_reduction`` frames for each level, and at least what the plain model needs: that is
    ``model.min_frames``. With ``training``, the HCML objective's: while the side branch is there, a
    contrastive level also needs ``max(deltas) + 1`` time steps (a target ``delta`` steps ahead):
    ``model.min_train_frames``. A level's ``T`` is the clip's divided by its temporal reduction, rounded up
    (strided convs) or down (pools): ``temporal_reduction * steps`` frames give it ``steps`` either way."""
    config = model.hcml_cfg
    need = 1
    for level, stage in hcml_stages(model).items():
        steps = 2
        if training and config.side_branch and level in config.contrastive_levels:
            steps = max(steps, max(config.deltas) + 1)
        need = max(need, stage.temporal_reduction * steps)
    return max(getattr(model, "_hcml_plain_min_frames", 1), need)


def attach_hcml(model: nn.Module, levels: Sequence[int] = (1, 2, 3), **cfg: Any) -> nn.Module:
    """Fit HCML motion adapters into ``model`` in place and return it.

    The stage of each level (``model.feature_info[level_feature_index(model, level)]['module']``) is
    replaced by an :class:`HCMLStage`; its parameters move under ``<stage>.stage.``, the PMB's are
    ``<stage>.motion.``, ``g``'s ``<stage>.fuse.``. The side branch is ``model.hcml`` (flow heads
    under ``hcml.flow.<level>``, predictors under ``hcml.predict.<level>``). Also set:
    ``model.hcml_cfg`` (:class:`HCMLConfig`); the model's class becomes an :class:`HCMLModel` subclass of
    its own class, so that ``model.deploy()`` is a method (see :func:`deploy`); also
    ``model.min_frames`` (:func:`hcml_min_frames`: 2 time steps at every level), ``model.min_train_frames``
    (the objective's: also ``max(deltas) + 1`` time steps at the contrastive levels) and ``model.min_size``
    (frames large enough for every level's displacement window, rounded up to a multiple of the network's
    deepest reduction). With ``zero_init_fuse`` (the default) every ``g`` starts at zero, so the model
    computes exactly what it computed before.

    Args:
        model: a zoo video model with ``feature_info`` (video_resnet, timm2d, torchvision-compatible nets).
        levels: paper levels to fit (1, 2, 3: after res2, res3, res4).
        **cfg: the other fields of :class:`HCMLConfig`.
    """
    if hcml_stages(model):
        raise ValueError("the model already has HCML adapters")
    config = HCMLConfig(levels=tuple(levels), **cfg)
    motion_channels: dict[int, int] = {}
    min_sizes = []
    for level in config.levels:
        info = model.feature_info[level_feature_index(model, level)]
        name = info["module"]
        in_channels = info["num_chs"]
        reduced, motion = config.channels(level, in_channels)
        d, s = config.displacement(level)
        block = PrimeMotionBlock(in_channels, reduced, motion, d, s)
        stage = HCMLStage(
            model.get_submodule(name),
            block,
            in_channels,
            level,
            name,
            info["reduction"],
            info.get("temporal_reduction", 1),
            config.zero_init_fuse,
        )
        param = next(stage.stage.parameters(), None)
        if param is not None:
            stage.to(device=param.device, dtype=param.dtype)
        model.set_submodule(name, stage)
        motion_channels[level] = motion
        min_sizes.append((d + 1) * stage.reduction)
    if config.side_branch:
        side = _build_side_branch(config, motion_channels)
        param = next(model.parameters(), None)
        if param is not None:
            side.to(device=param.device, dtype=param.dtype)
        model.hcml = side
    model.hcml_cfg = config
    model._hcml_plain_min_frames = getattr(model, "min_frames", 1)
    model.min_frames, model.min_train_frames = hcml_min_frames(model), hcml_min_frames(model, training=True)
    deepest = model.feature_info[-1]["reduction"]
    model.min_size = max(getattr(model, "min_size", 1), -(-max(min_sizes) // deepest) * deepest)
    model.__class__ = hcml_model_class(type(model))
    return model


class HCMLModel:
    """What a model with HCML adapters adds to its own class (:func:`attach_hcml` swaps the class for a
    subclass of both): :meth:`deploy` as a method."""

    def deploy(self) -> nn.Module:
        """Drop the side branch in place (see :func:`deploy`) and return the model."""
        return deploy(self)

    def check_input(self, x: torch.Tensor) -> None:
        """The backbone's input check, with a clip shorter than ``min_frames`` refused by a message that says
        which level needs how many frames."""
        if torch.is_tensor(x) and x.ndim == 5 and x.is_floating_point() and x.shape[2] < self.min_frames:
            raise ValueError(short_clip_message(self, x))
        super().check_input(x)  # type: ignore[misc]


def short_clip_message(model: nn.Module, x: torch.Tensor, training: bool = False) -> str:
    """Why clip ``x`` is too short for the HCML model (``training``: for its objective, see :func:`hcml_min_frames`)."""
    config, stages = model.hcml_cfg, hcml_stages(model)
    top = max(stages.values(), key=lambda s: s.temporal_reduction)
    r = top.temporal_reduction
    reasons = [f"HCML compares neighbouring time steps, so every level needs at least 2 (at least {2 * r} frames "
               f"here: level {top.level} has temporal reduction {r})"]
    contrastive = [stages[lv] for lv in config.contrastive_levels if lv in stages]
    if training and config.side_branch and contrastive:
        top, steps = max(contrastive, key=lambda s: s.temporal_reduction), max(config.deltas) + 1
        reasons.append(f"a contrastive level predicts the motion deltas {config.deltas} time steps ahead, so it needs "
                       f"at least {steps} (level {top.level}: {steps * top.temporal_reduction} frames)")
    need = hcml_min_frames(model, training)
    return (f"expected a float tensor of shape (B, {x.shape[1]}, T, H, W) with T >= {need}: {'; '.join(reasons)}; "
            f"got T={x.shape[2]} in shape {tuple(x.shape)}")


_HCML_CLASSES: dict[type, type] = {}


def hcml_model_class(cls: type) -> type:
    """``HCML<cls.__name__>``, the subclass of :class:`HCMLModel` and ``cls`` that :func:`attach_hcml`
    gives a model of class ``cls`` (one per class; a module attribute here, so that it pickles)."""
    if issubclass(cls, HCMLModel):
        return cls
    if cls not in _HCML_CLASSES:
        name = f"HCML{cls.__name__}"
        _HCML_CLASSES[cls] = type(name, (HCMLModel, cls), {"__module__": __name__, "__qualname__": name})
        globals()[name] = _HCML_CLASSES[cls]
    return _HCML_CLASSES[cls]


def deploy(model: nn.Module) -> nn.Module:
    """Drop the HCML side branch in place (flow heads, predictors) and return the model.

    The forward pass does not change (the side branch never feeds it), and the state dict then
    holds the backbone and the fused motion blocks only: the export the Hub gets. Rebuild that
    architecture to load it with ``attach_hcml(model, ..., side_branch=False)``.
    """
    if not hcml_stages(model):
        raise ValueError("the model has no HCML adapters to deploy")
    if "hcml" in model._modules:
        del model.hcml
    model.hcml_cfg = dataclasses.replace(model.hcml_cfg, side_branch=False)
    model.min_train_frames = model.min_frames  # no side branch: no objective trains it
    return model
