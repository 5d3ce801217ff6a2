"""timm2d: any timm 2D CNN run frame by frame on a clip, split into stages at its feature levels.

``create_model('timm2d', backbone='resnet50', temporal_strides=(1, 1, 2, 2, 1))`` builds the timm
network ``backbone`` (random weights, nothing is downloaded), cuts it into one stage per timm
feature level (``timm_model.feature_info``) and runs each stage on every frame of a
``(B, C, T, H, W)`` clip by folding time into the batch. Stages take and return 5-D maps, so an
adapter (e.g. an HCML prime motion block) can wrap any of them::

    model.stages[2] = Wrapper(model.stages[2])   # or model.set_submodule(model.feature_info[2]['module'], ...)

Temporal striding (our choice, as in TSN/TSM-style 2D video nets): ``temporal_strides[i]`` averages
the frames of level ``i``'s map over non-overlapping windows of that many frames before the next
stage runs (``T -> ceil(T / s)``; the last window may be shorter). Level ``i``'s own map is at
temporal reduction ``prod(temporal_strides[:i])``; the stride after the last level acts before the
backbone's final layers, so ``forward_features`` has ``T' = T`` reduced by all strides.

Layout: a stage holds the timm modules under their timm names, so a parameter of the trunk is
``stages.{i}.`` + its timm name (``tail.`` for the layers after the last level, e.g. efficientnet's
``conv_head``/``bn2`` or convnext's ``norm_pre``). The head pools over (T, H, W), applies the
backbone's own post-pooling layers (convnext's head norm, mobilenetv3's ``conv_head``) and a new
linear classifier ``head.fc``. A timm state dict of the backbone (``pretrained_cfg_overlay=
dict(file=...)``) is mapped into this layout by :func:`filter_timm_state_dict`; timm's classifier
becomes ``head.fc`` and is re-initialised when ``num_classes`` differs.

Supported backbones are timm CNNs whose ``forward_features`` applies their children in order and
whose feature modules are children, or elements of a child ``nn.Sequential`` (resnet/resnet-d,
convnext, efficientnet/mobilenet, regnet, densenet and most other timm CNNs). Others raise a
ValueError at build time.
"""
from __future__ import annotations

import difflib
import math
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import timm
import torch
import torch.nn.functional as F
from timm.layers import SelectAdaptivePool2d
from timm.models import get_pretrained_cfg as get_timm_pretrained_cfg
from torch import nn
from torch.utils.checkpoint import checkpoint

from .._builder import build_model_with_cfg
from .._features import FeatureInfo
from .._pretrained import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, PretrainedCfg, video_cfg
from .._registry import get_pretrained_cfg, register_model
from ..layers import feature_take_indices
from ._base import VideoClassifierHead, VideoModel

__all__ = ["Timm2d", "FrameStage", "Timm2dHead", "filter_timm_state_dict", "frames_to_batch", "batch_to_frames"]


def frames_to_batch(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, T, H, W)`` -> ``(B*T, C, H, W)``; a free view when ``x`` came from :func:`batch_to_frames`."""
    b, c, t, h, w = x.shape
    return x.transpose(1, 2).reshape(b * t, c, h, w)


def batch_to_frames(x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``(B*T, C, H, W)`` -> ``(B, C, T, H, W)`` as a view (memory stays frame-major, not contiguous)."""
    bt, c, h, w = x.shape
    return x.reshape(batch_size, bt // batch_size, c, h, w).transpose(1, 2)


class FrameStage(nn.Sequential):
    """Layers of a timm 2D network, run on every frame of a clip.

    ``(B, C, T, H, W)`` -> ``(B, C', ceil(T / temporal_stride), H', W')``: the frames are first
    averaged over non-overlapping windows of ``temporal_stride`` frames (the last window may be
    shorter), then folded into the batch, run through the layers and unfolded. Children keep their
    timm names; a slice of a timm ``nn.Sequential`` is a nested ``nn.Sequential`` keeping its indices.

    Args:
        layers: timm modules in the order the timm network applies them.
        temporal_stride: frames averaged together before the layers (1: none).
    """

    def __init__(self, layers: OrderedDict[str, nn.Module], temporal_stride: int = 1):
        super().__init__(layers)
        self.temporal_stride = temporal_stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.temporal_stride
        if s > 1:
            x = F.avg_pool3d(x, kernel_size=(s, 1, 1), stride=(s, 1, 1), ceil_mode=True)
        if len(self) == 0:
            return x
        return batch_to_frames(super().forward(frames_to_batch(x)), x.shape[0])

    def extra_repr(self) -> str:
        return f"temporal_stride={self.temporal_stride}"


class Timm2dHead(VideoClassifierHead):
    """Global pooling over (T, H, W), the backbone's post-pooling layers, dropout and a linear classifier.

    ``(B, C, T, H, W)`` -> pooled ``(B, C, 1, 1)`` -> ``post_pool`` (4-D timm layers, e.g. convnext's
    head norm) -> flatten -> ``pre_logits`` (2-D timm layers, e.g. an MLP) -> dropout -> ``fc``.
    With ``global_pool=''`` the unpooled map is returned unchanged (the post-pooling layers and the
    classifier act on pooled features only).

    Args:
        in_features: channels entering ``fc`` (timm's ``head_hidden_size``).
        num_classes: classes; 0 gives pooled features out.
        global_pool: ``'avg'``, ``'max'`` or ``''``.
        drop_rate: dropout before the classifier.
        post_pool: layers applied to the pooled ``(B, C, 1, 1)`` map.
        pre_logits: layers applied to the flattened ``(B, C)`` features.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        global_pool: str = "avg",
        drop_rate: float = 0.0,
        post_pool: nn.Sequential | None = None,
        pre_logits: nn.Sequential | None = None,
    ):
        super().__init__(in_features, num_classes, global_pool, drop_rate)
        self.post_pool = post_pool if post_pool is not None else nn.Sequential()
        self.pre_logits = pre_logits if pre_logits is not None else nn.Sequential()

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if not self.global_pool:
            return x
        x = x.mean(dim=(2, 3, 4), keepdim=True) if self.global_pool == "avg" else x.amax(dim=(2, 3, 4), keepdim=True)
        x = self.post_pool(x.squeeze(2))
        x = self.drop(self.pre_logits(x.flatten(1)))
        return x if pre_logits else self.fc(x)


def _create_backbone(name: str, in_chans: int, backbone_kwargs: dict[str, Any] | None) -> nn.Module:
    """The timm network ``name`` without classifier, with random weights. Its pooling is dropped later
    (ours pools over T, H, W); it is kept at timm's default so that post-pooling layers are the ``nn.Linear``
    ones of timm's checkpoints (timm turns them into 1x1 convs without pooling)."""
    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=5, cutoff=0.6)
        hint = f" Closest timm names: {', '.join(close)}." if close else ""
        raise ValueError(f"timm2d: unknown timm backbone {name!r}.{hint} See timm.list_models().")
    return timm.create_model(
        name, pretrained=False, num_classes=0, in_chans=in_chans, **(backbone_kwargs or {})
    )


def _ordered_layers(net: nn.Module, level_paths: list[str]) -> list[tuple[str, nn.Module]]:
    """The children of ``net`` in order as ``(timm path, module)``, with a child ``nn.Sequential``
    expanded into its elements when a feature level sits inside it."""
    layers = []
    for name, child in net.named_children():
        if isinstance(child, nn.Sequential) and any(p.startswith(name + ".") for p in level_paths):
            layers.extend((f"{name}.{sub}", module) for sub, module in child.named_children())
        else:
            layers.append((name, child))
    return layers


def _nest(layers: list[tuple[str, nn.Module]]) -> OrderedDict[str, nn.Module]:
    """``[('conv1', m), ('blocks.2', b2), ('blocks.3', b3)]`` -> ``{conv1: m, blocks: Sequential({2: b2, 3: b3})}``,
    so that parameter names under the result are the timm names."""
    nested: OrderedDict[str, nn.Module] = OrderedDict()
    for path, module in layers:
        top, _, sub = path.partition(".")
        if sub:
            nested.setdefault(top, nn.Sequential()).add_module(sub, module)
        else:
            nested[top] = module
    return nested


def _is_pool_or_head(module: nn.Module) -> bool:
    return any(isinstance(m, SelectAdaptivePool2d) for m in module.modules())


def _split_head(layers: list[tuple[str, nn.Module]], classifier: str | None) -> tuple[list, list]:
    """Split timm's layers from the global pool on into post-pool (4-D) and pre-logits (2-D) layers.

    A head container (timm ``ClassifierHead`` / ``NormMlpClassifierHead``) is expanded into its
    children; pooling, dropout, identities and the classifier are ours and left out; timm's
    ``flatten`` marks the change from 4-D to 2-D.
    """
    expanded = []
    for path, module in layers:
        if isinstance(module, SelectAdaptivePool2d) or not _is_pool_or_head(module):
            expanded.append((path, module))
        else:
            expanded.extend((f"{path}.{name}", child) for name, child in module.named_children())
    post_pool, pre_logits = [], []
    flattened = False
    for path, module in expanded:
        if path.rsplit(".", 1)[-1] == "flatten":
            flattened = True
        elif path == classifier or isinstance(module, (SelectAdaptivePool2d, nn.Identity, nn.Dropout)):
            continue
        else:
            (pre_logits if flattened else post_pool).append((path, module))
    return post_pool, pre_logits


def _check_temporal_strides(strides: Sequence[int] | None, level_paths: list[str], backbone: str) -> tuple[int, ...]:
    n = len(level_paths)
    if strides is None:
        return (1,) * n
    strides = tuple(strides)
    if len(strides) != n or not all(isinstance(s, int) and s >= 1 for s in strides):
        raise ValueError(
            f"timm2d: temporal_strides needs one int >= 1 per feature level of {backbone!r} "
            f"({n} levels after: {', '.join(level_paths)}), got {strides}"
        )
    return strides


class Timm2d(VideoModel):
    """A timm 2D CNN applied per frame, with optional temporal striding between its stages.

    Args:
        backbone: timm model name (``timm.list_models()``), e.g. ``'resnet50'``, ``'convnext_tiny'``,
            ``'efficientnet_b0'``, ``'regnety_016'``.
        temporal_strides: one int per feature level: the frames of that level's map are averaged
            over windows of this many before the next stage (default: all 1, a pure per-frame net).
        num_classes: classifier size (0: pooled features out).
        in_chans: input channels.
        drop_rate: dropout before the classifier.
        global_pool: ``'avg'``, ``'max'`` or ``''`` over (T, H, W).
        backbone_kwargs: extra ``timm.create_model`` arguments (e.g. ``drop_path_rate``).

    Attributes:
        stages: one :class:`FrameStage` per feature level, ``(B, C, T, H, W)`` in and out.
        tail: the backbone's layers after its last feature level (with the last temporal stride).
        head: :class:`Timm2dHead`.
        timm_module_map: timm module path -> our module path (used to load timm state dicts).
    """

    def __init__(
        self,
        backbone: str = "resnet18",
        temporal_strides: Sequence[int] | None = None,
        num_classes: int = 400,
        in_chans: int = 3,
        drop_rate: float = 0.0,
        global_pool: str = "avg",
        backbone_kwargs: dict[str, Any] | None = None,
    ):
        super().__init__()
        net = _create_backbone(backbone, in_chans, backbone_kwargs)
        levels = [dict(info) for info in net.feature_info]
        level_paths = [info["module"] for info in levels]
        strides = _check_temporal_strides(temporal_strides, level_paths, backbone)
        self.backbone = backbone
        self.temporal_strides = strides
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.num_features = net.num_features
        head_hidden_size = getattr(net, "head_hidden_size", net.num_features)  # our head's in_features: see VideoModel
        self.min_frames = math.prod(strides)

        layers = _ordered_layers(net, level_paths)
        names = [path for path, _ in layers]
        missing = [p for p in level_paths if p not in names]
        if missing:
            raise ValueError(
                f"timm2d: cannot split {backbone!r} into stages: its feature modules {missing} are not children "
                "(or elements of a child nn.Sequential) of the timm model"
            )
        ends = [names.index(p) for p in level_paths]
        if ends != sorted(ends):
            raise ValueError(f"timm2d: the feature modules of {backbone!r} are not in execution order: {level_paths}")
        pool_at = next((i for i, (_, m) in enumerate(layers) if i > ends[-1] and _is_pool_or_head(m)), None)
        if pool_at is None:
            raise ValueError(f"timm2d: found no global pooling (SelectAdaptivePool2d) in {backbone!r}")

        classifier = net.pretrained_cfg.get("classifier")
        classifier = classifier if isinstance(classifier, str) else None
        self.timm_module_map: dict[str, str] = {}
        stages, start = [], 0
        for i, end in enumerate(ends):
            stage_layers = layers[start : end + 1]
            stages.append(FrameStage(_nest(stage_layers), temporal_stride=1 if i == 0 else strides[i - 1]))
            self.timm_module_map.update({path: f"stages.{i}.{path}" for path, _ in stage_layers})
            start = end + 1
        self.stages = nn.ModuleList(stages)
        tail_layers = layers[start:pool_at]
        self.tail = FrameStage(_nest(tail_layers), temporal_stride=strides[-1])
        self.timm_module_map.update({path: f"tail.{path}" for path, _ in tail_layers})

        post_pool, pre_logits = _split_head(layers[pool_at:], classifier)
        self.head = Timm2dHead(
            head_hidden_size,
            num_classes,
            global_pool=global_pool,
            drop_rate=drop_rate,
            post_pool=nn.Sequential(OrderedDict((p.replace(".", "_"), m) for p, m in post_pool)),
            pre_logits=nn.Sequential(OrderedDict((p.replace(".", "_"), m) for p, m in pre_logits)),
        )
        self.timm_module_map.update({p: f"head.post_pool.{p.replace('.', '_')}" for p, _ in post_pool})
        self.timm_module_map.update({p: f"head.pre_logits.{p.replace('.', '_')}" for p, _ in pre_logits})
        if classifier:
            self.timm_module_map[classifier] = "head.fc"

        self.feature_info = FeatureInfo(
            dict(
                num_chs=info["num_chs"],
                reduction=info["reduction"],
                temporal_reduction=math.prod(strides[:i]),
                module=f"stages.{i}",
            )
            for i, info in enumerate(levels)
        )

    def _run(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.grad_checkpointing and torch.is_grad_enabled():
            return checkpoint(module, x, use_reentrant=False)
        return module(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` -> unpooled ``(B, num_features, T', H', W')``; per frame, timm's forward_features."""
        self.check_input(x)
        for stage in self.stages:
            x = self._run(stage, x)
        return self._run(self.tail, x)

    def forward_intermediates(self, x: torch.Tensor, indices: int | Sequence[int] | None = None) -> list[torch.Tensor]:
        """The ``(B, C_i, T_i, H_i, W_i)`` maps of feature levels ``indices`` (None: all; an int n: the last n),
        in the order asked; stages after the last one asked are not run."""
        take = feature_take_indices(len(self.stages), indices)
        self.check_input(x)
        maps = {}
        for i, stage in enumerate(self.stages[: max(take) + 1]):
            x = self._run(stage, x)
            maps[i] = x
        return [maps[i] for i in take]

    def prune_intermediate_layers(self, max_index: int) -> None:
        """Keep the stages up to feature level ``max_index`` only (``features_only``): later stages, the
        tail and the classifier are removed, and ``forward_features`` then returns level ``max_index``."""
        self.stages = self.stages[: max_index + 1]
        self.feature_info = FeatureInfo(self.feature_info[: max_index + 1])
        self.min_frames = self.feature_info[max_index]["temporal_reduction"]
        self.tail = nn.Identity()
        self.reset_classifier(0, global_pool="")


def filter_timm_state_dict(state_dict: dict[str, torch.Tensor], model: Timm2d) -> dict[str, torch.Tensor]:
    """Map a state dict of the timm backbone into ``model``'s layout (a zoo state dict passes unchanged).

    Each key moves under the path of its module (``model.timm_module_map``): ``layer1.0.conv1.weight``
    -> ``stages.1.layer1.0.conv1.weight``; timm's classifier (``fc`` / ``head.fc`` / ``classifier``)
    becomes ``head.fc`` (a 1x1 conv classifier, as in dla, becomes linear), which the builder drops when
    its size differs from ``num_classes``. Keys of no known module are kept as they are, so a strict load
    names them.
    """
    own = model.state_dict().keys()
    if all(key in own for key in state_dict):
        return state_dict
    out = {}
    for key, value in state_dict.items():
        parts = key.split(".")
        for n in (2, 1):
            prefix = ".".join(parts[:n])
            if len(parts) > n and prefix in model.timm_module_map:
                key = f"{model.timm_module_map[prefix]}.{'.'.join(parts[n:])}"
                break
        if key == "head.fc.weight" and value.ndim == 4:
            value = value.flatten(1)
        out[key] = value
    return out


def _backbone_pretrained_cfg(cfg: PretrainedCfg, backbone: str) -> PretrainedCfg:
    """Specialise the backbone-agnostic ``timm2d`` cfg (``first_conv=None``) with the backbone's timm cfg:
    first conv path in our layout, mean, std and spatial input size. A cfg naming its first conv (one
    saved with weights) is kept as it is."""
    if cfg.first_conv is not None or not timm.is_model(backbone):
        return cfg
    timm_cfg = get_timm_pretrained_cfg(backbone)
    if timm_cfg is None:
        return cfg
    first_conv = timm_cfg.first_conv if isinstance(timm_cfg.first_conv, str) else None
    return cfg.merged(
        dict(
            first_conv=f"stages.0.{first_conv}" if first_conv else None,
            mean=timm_cfg.mean,
            std=timm_cfg.std,
            input_size=(*cfg.input_size[:2], *timm_cfg.input_size[1:]),
        )
    )


default_cfgs = {
    "timm2d": video_cfg(
        input_size=(3, 8, 224, 224),
        frame_stride=2,
        mean=IMAGENET_DEFAULT_MEAN,
        std=IMAGENET_DEFAULT_STD,
        first_conv=None,
        classifier="head.fc",
        notes="Any timm 2D CNN run per frame; first_conv, mean, std and input size follow the backbone's timm cfg.",
    ),
}


@register_model
def timm2d(pretrained: bool = False, **kwargs: Any) -> Timm2d:
    """A timm 2D CNN run per frame (``backbone='resnet18'`` by default), see :class:`Timm2d`.

    ``pretrained_cfg_overlay=dict(file=PATH)`` with a timm state dict of the backbone loads its 2D
    weights into the per-frame trunk (and its classifier when ``num_classes`` matches).
    """
    backbone = kwargs.setdefault("backbone", "resnet18")
    cfg = kwargs.pop("pretrained_cfg", None) or get_pretrained_cfg("timm2d")
    return build_model_with_cfg(
        Timm2d,
        "timm2d",
        pretrained,
        pretrained_cfg=_backbone_pretrained_cfg(cfg, backbone),
        pretrained_filter_fn=filter_timm_state_dict,
        **kwargs,
    )
