"""MCL, motion-focused contrastive learning (Li et al., "Motion-Focused Contrastive Learning of Video Representations",
ICCV 2021, arXiv 2201.04029).

``create_objective('mcl', model, ...)`` trains ``model`` (an R(2+1)D- or R3D-50-class network) as the
official code (``YihengZhang-CV/MCL-Motion-Focused-Contrastive-Learning``, ``train.py``) does:

- Views (:meth:`MCLObjective.wrap_train_set`): three clips of a video, drawn by motion-focused
  temporal sampling (:class:`MotionFocusedSampler`): with probability 0.7 the anchor starts among
  the top half (by motion) of the clip windows of one half of the video and the two other clips
  among the top half of the other half's; otherwise the three start at random in their halves.
  The anchor gives two views (query and same-clip key), the others one each. Every view gets the
  spatial tubelet crop (:func:`tubelet_crop`): the top 10% cells of the clip's 7x7 motion grid
  define a box, and a RandomResizedCrop (area 0.2-1, aspect 3/4-4/3) must cover at least 0.9 / 0.8 /
  0.7 of it for boxes of at most 4 / 8 / 12 cells (larger boxes: any crop); then MoCo v2 colour
  augmentation and flips (``zoo.flow.ViewAugment``). The query view carries its cropped flow.
- A momentum encoder (EMA, alpha 0.999) and a queue of 131,072 keys, tau 0.10, 2-layer MLP heads
  (128-d, L2-normalised) on the pooled backbone features: ``inter``, ``intra`` and ``order``. Keys are
  encoded with MoCo's shuffled BN (``shuffle_bn``): each key batch is dealt out in a random order over
  all processes before the key encoder and put back after it (``zoo.utils.distributed.shuffle_batch``),
  so that a process's BN statistics of its keys do not come from the videos of its queries.
- Inter loss: three positives per query (the same clip's key and the two other clips' keys), each in
  its own InfoNCE against the queue (``zoo.kernels.info_nce``, averaged); all three key batches are
  enqueued. Intra loss: ``[q . k_same, q . k_other] / 0.10`` with label 0, for both other clips.
- Motion alignment loss (MAL, ``model/mal.py``): ``g = d(sum q . k_same) / dA`` at ``A``, the output
  of the backbone's last conv (``layer4.2.conv3`` in the official code), with ``create_graph=True`` so
  that the loss trains through it (double backprop); per temporal slot and channel weights
  ``w = mean over space of g`` and the map ``M = ReLU(sum_c w g)``. The target is the query's motion
  map (``zoo.flow.motion_target``: Prewitt motion boundaries of its flow, 4 temporal chunks, a border
  zeroed, block-averaged to the conv map's grid). ``L_MAL = (1 - cos_st) + (1 - cos_t) + (1 - cos_s)``:
  per-slot cosines weighted by a softmax over the target's slot sums, the cosine of the 4-step
  temporal profiles, and the cosine of the time-averaged maps.
- Order loss (``order_loss``, the official ``order_head`` and ``order_classifier``): which half of the
  video the anchor comes from. The sampler draws it (label 1: the anchor's half comes first, the
  official ``order_cls``); the query's order embedding and the key encoder's order embeddings of the two
  other clips (in time order, no gradient) are concatenated, L2-normalised, and a linear layer
  classifies them (cross-entropy, 2 classes). Its weight is ``epoch / epochs`` (the stage's current
  epoch, counted from 1), so it grows to 1 over the stage. The official code switches it off on
  Kinetics-400 (``order_loss: false`` in the K400 recipe) and keeps it on UCF-101.
- ``L = L_inter + L_intra + (epoch / epochs) L_order + lambda L_MAL``, lambda 2 during the first
  ``mal_warmup_epochs`` (5) epochs of the stage and 1 afterwards.

Where we differ from the official code:

- The backbone is any zoo video model; its last ``nn.Conv3d`` (registration order) is MAL's layer
  unless ``mal_module`` names another. The official grid is 4x7x7 (16 frames at 224 through
  ``p3da_resnet50``); ours is the conv map's: its ``(H', W')``, and its ``T'`` steps pooled (or
  repeated) onto ``mal_slots`` (4) slots, so that ``M`` and the target always have 4 x H' x W'.
- The order loss is switched by ``order_loss`` (the official code computes it on Kinetics too, with
  weight 0); when off, the order heads are not built. Its weight follows the epochs the engine reports
  after each optimizer step, so the first step of a stage gives it weight 0 (official: ``1 / epochs``).
- InfoNCE with a queue: each query's negatives are the queue and the batch's other keys of the same
  positive kind (they enter the queue this step anyway); the official logits hold the queue only. Under
  DDP all processes' keys are queued.
- Shuffled BN: as the official ``DistributedShuffle`` under DDP (one permutation of all processes' keys).
  In a single process a permutation within the batch would leave BN's batch statistics, and so the keys,
  unchanged, so none is drawn; ``bn_groups`` (default 1) stands in for the processes (MoCo's
  ``SplitBatchNorm``: the query and the shuffled keys encoded in that many groups of the batch, each with
  its own BN statistics; :mod:`zoo.methods.moco`).
- Tubelet crop: a crop size is drawn as in the official code, and its position uniformly among those
  meeting the overlap threshold (the official code tries 40 random positions and keeps the best); a
  size with no such position is redrawn (20 tries), then a crop spanning the box from a random
  corner (which covers all of it; the official corner crop may clip it). A clip without motion
  (all-zero grid) gets an unconstrained crop. Window scores (the official ``video_clip_mag`` pickle)
  are the mean of each flow frame's motion map over the window's frames.
- Flow is served at the cache's resolution, cropped with the frames and its vectors scaled (the
  official code resizes JPEG-stored flow like an image).

What training logs, and what to expect of it: besides the terms, the inter loss of the same-clip
positive and of the two other clips apart (``loss_inter_same``, ``loss_inter_other``), the positive and
mean negative cosines of the same-clip inter logits (``logit_pos``, ``logit_neg``,
:func:`zoo.methods.moco.logit_stats`) and the queue's fill level. ``loss_inter`` *rises* at first, as
expected: while the queue holds its initial random vectors a query only competes with the batch's ``B``
keys (``ln B`` at chance); the queue fills in ``K / (3 B)`` steps (three key batches a step) and the
chance level becomes ``ln(K + B)``, while a randomly initialised encoder gives every clip nearly the same
embedding. Training works when ``logit_pos`` pulls away from ``logit_neg`` and the terms fall again. With
the official momentum 0.999 the key encoder moves by 0.1% of the online one per step, so in a run of a few
hundred steps the keys come from an encoder close to its initialisation. MAL compares maps on the conv
map's grid: 2 x 2 cells for R3D-18 at 32 pixels, where its cosines carry little spatial information.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import kernels
from ..flow.cache import FlowRecord, check_flow_cfg, flow_cache_from_cfg
from ..flow.motion import motion_grid, motion_target
from ..flow.views import Box, FlowViewDataset, ViewAugment, ViewFrames, crop_with_flow, random_int, view_settings
from . import register_objective
from .base import Objective
from .moco import (
    MomentumQueue,
    ProjectionMLP,
    check_bn_groups,
    encode_in_groups,
    encode_keys,
    logit_stats,
    momentum_copy,
    momentum_update,
    pooled_features,
    trainable_model_parameters,
)

__all__ = [
    "MCLObjective",
    "MotionFocusedSampler",
    "MCLView",
    "OVERLAP_THRESHOLDS",
    "motion_box",
    "overlap_threshold",
    "box_coverage",
    "tubelet_crop",
    "mal_loss",
    "gradient_map",
]

# Box area in 7x7 cells -> the share of the box a crop must cover (augmentation_util.get_cor).
OVERLAP_THRESHOLDS = ((4, 0.9), (8, 0.8), (12, 0.7))


# ---------------------------------------------------------------------------------------------
# Motion-focused temporal sampling


class MotionFocusedSampler:
    """Three clips of a video: an anchor and two others from the other half (module docstring).

    Args:
        num_frames, frame_stride: the clips' frames (official: 16, 2 apart).
        focus_p: probability of motion-focused sampling (0.7); otherwise random positions.
        threshold: the share of each half's windows, by motion, to draw from (0.5).

    Returns (when called with a :class:`~zoo.flow.FlowRecord`) a :class:`~zoo.flow.ViewFrames` of four int
    arrays of frame indices: the anchor twice (its two views), then the two other clips, in time order;
    its ``target`` is the order label, 1 when the anchor comes before the other clips (its half first),
    0 when after. Frames past the video's end repeat its last frame, as the official reader does.
    """

    def __init__(self, num_frames: int, frame_stride: int, focus_p: float = 0.7, threshold: float = 0.5):
        self.num_frames, self.frame_stride, self.focus_p, self.threshold = num_frames, frame_stride, focus_p, threshold

    def window_scores(self, record: FlowRecord, length: int) -> np.ndarray:
        """Motion of the ``length``-frame window starting at each frame: the mean ``motion`` of its flow frames."""
        frames = record.frame_of(np.arange(record.num_flows))
        cumulative = np.concatenate([[0.0], np.cumsum(record.motion)])
        starts = np.arange(record.num_frames)
        first = np.searchsorted(frames, starts, side="left")
        stop = np.maximum(np.searchsorted(frames, starts + length, side="left"), first + 1)
        stop = np.minimum(stop, record.num_flows)
        first = np.minimum(first, stop - 1)
        return (cumulative[stop] - cumulative[first]) / (stop - first)

    def starts(self, record: FlowRecord) -> list[int]:
        """``[anchor, other, other]`` start frames."""
        return self.draw(record)[0]

    def draw(self, record: FlowRecord) -> tuple[list[int], bool]:
        """``([anchor, other, other], anchor_first)``: start frames, and whether the anchor comes first."""
        duration, length = record.num_frames, self.num_frames * self.frame_stride
        anchor_first = bool(torch.rand(()) < 0.5)  # which half holds the anchor (the official order label)
        if duration // length < 2:  # too short for two halves: three random clips, the anchor first or last
            first, middle, last = sorted(random_int(0, max(duration - length, 0)) for _ in range(3))
            return ([first, middle, last] if anchor_first else [last, first, middle]), anchor_first
        halves = [np.arange(0, duration // 2 - length + 1), np.arange(duration // 2, duration - length + 1)]
        if bool(torch.rand(()) < self.focus_p):
            scores = self.window_scores(record, length)
            keep = int(len(halves[0]) * self.threshold) + 1
            halves = [h[np.argsort(-scores[h], kind="stable")[:keep]] for h in halves]
        anchor_half, other_half = (halves[0], halves[1]) if anchor_first else (halves[1], halves[0])

        def pick(candidates: np.ndarray) -> int:
            return int(candidates[random_int(0, len(candidates) - 1)])

        return [pick(anchor_half), *sorted([pick(other_half), pick(other_half)])], anchor_first

    def __call__(self, record: FlowRecord) -> ViewFrames:
        offsets = np.arange(self.num_frames, dtype=np.int64) * self.frame_stride
        starts, anchor_first = self.draw(record)
        anchor, other1, other2 = (np.minimum(s + offsets, record.num_frames - 1) for s in starts)
        return ViewFrames([anchor, anchor, other1, other2], target=int(anchor_first))


# ---------------------------------------------------------------------------------------------
# The spatial tubelet crop


def motion_box(grid: torch.Tensor, top_fraction: float = 0.1) -> tuple[int, int, int, int] | None:
    """The cells ``(row0, row1, col0, col1)`` (end-exclusive) spanned by the ``floor(rows cols top_fraction)``
    most moving cells of a motion grid; None when nothing moves (or no cell is chosen)."""
    rows, cols = grid.shape
    count = int(rows * cols * top_fraction)
    if count < 1 or float(grid.max()) <= 0:
        return None
    top = torch.topk(grid.flatten(), count).indices
    r, c = top // cols, top % cols
    return int(r.min()), int(r.max()) + 1, int(c.min()), int(c.max()) + 1


def overlap_threshold(cells: int) -> float | None:
    """The share of a box of ``cells`` 7x7-grid cells a crop must cover: 0.9 / 0.8 / 0.7 up to 4 / 8 / 12 cells,
    None (no constraint) above."""
    for limit, share in OVERLAP_THRESHOLDS:
        if cells <= limit:
            return share
    return None


def box_coverage(box: Box, crop: Box) -> float:
    """The share of ``box`` inside ``crop`` (both ``(top, left, height, width)``): the product of the shares
    of its row and column extents covered (the official ``calc_over_lab``)."""
    def covered(start: float, size: float, c_start: float, c_size: float) -> float:
        overlap = min(start + size, c_start + c_size) - max(start, c_start)
        return max(overlap, 0.0) / size

    return covered(box[0], box[2], crop[0], crop[2]) * covered(box[1], box[3], crop[1], crop[3])


def tubelet_crop(height: int, width: int, grid: torch.Tensor, scale: tuple[float, float] = (0.2, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), top_fraction: float = 0.1, attempts: int = 20) -> Box:
    """MCL's motion-focused RandomResizedCrop ``(top, left, h, w)`` of a ``height x width`` frame whose
    motion grid (over the whole frame) is ``grid`` (see the module docstring for the rules)."""
    cells = motion_box(grid, top_fraction)
    rows, cols = grid.shape
    threshold = None if cells is None else overlap_threshold((cells[1] - cells[0]) * (cells[3] - cells[2]))
    box = None
    if cells is not None:
        cell_h, cell_w = height / rows, width / cols
        box = (cells[0] * cell_h, cells[2] * cell_w, (cells[1] - cells[0]) * cell_h, (cells[3] - cells[2]) * cell_w)
    area = height * width
    log_ratio = torch.log(torch.tensor(ratio))
    for _ in range(attempts):
        target = area * float(torch.empty(()).uniform_(*scale))
        aspect = float(torch.exp(torch.empty(()).uniform_(float(log_ratio[0]), float(log_ratio[1]))))
        w, h = round((target * aspect) ** 0.5), round((target / aspect) ** 0.5)
        if not (0 < w <= width and 0 < h <= height):
            continue
        if threshold is None:
            return float(random_int(0, height - h)), float(random_int(0, width - w)), float(h), float(w)
        tops = torch.arange(height - h + 1, dtype=torch.float64)
        lefts = torch.arange(width - w + 1, dtype=torch.float64)
        row_share = ((torch.clamp(tops + h, max=box[0] + box[2]) - torch.clamp(tops, min=box[0])).clamp(min=0)
                     / box[2])
        col_share = ((torch.clamp(lefts + w, max=box[1] + box[3]) - torch.clamp(lefts, min=box[1])).clamp(min=0)
                     / box[3])
        valid = torch.nonzero(row_share[:, None] * col_share[None, :] >= threshold - 1e-9)
        if len(valid):
            i, j = valid[random_int(0, len(valid) - 1)].tolist()
            return float(i), float(j), float(h), float(w)
    if box is not None:  # a crop from a random corner to the box's opposite corner: it holds the whole box
        top, left, bh, bw = box
        if bool(torch.rand(()) < 0.5):
            t, l = float(torch.empty(()).uniform_(0, top)), float(torch.empty(()).uniform_(0, left))
            return t, l, top + bh - t, left + bw - l
        bottom = float(torch.empty(()).uniform_(top + bh, height))
        right = float(torch.empty(()).uniform_(left + bw, width))
        return top, left, bottom - top, right - left
    h, w = float(height), float(width)  # the official fallback: the largest centred crop within the aspect range
    if width / height < ratio[0]:
        h = round(width / ratio[0])
    elif width / height > ratio[1]:
        w = round(height * ratio[1])
    return (height - h) / 2, (width - w) / 2, float(h), float(w)


class MCLView:
    """One MCL view: the tubelet crop of the frames with their flow (the grid from the view's own flow),
    an optional flip, then :class:`~zoo.flow.ViewAugment` -> ``(5, T, size, size)``."""

    def __init__(self, size: int, hflip: bool, mean: Sequence[float], std: Sequence[float],
                 scale: tuple[float, float] = (0.2, 1.0), grid: tuple[int, int] = (7, 7), top_fraction: float = 0.1):
        self.size, self.hflip, self.scale, self.grid, self.top_fraction = size, hflip, tuple(scale), grid, top_fraction
        self.augment = ViewAugment(size, mean, std)

    def __call__(self, frames: torch.Tensor, flow: torch.Tensor, view: int) -> torch.Tensor:
        box = tubelet_crop(frames.shape[1], frames.shape[2], motion_grid(flow, self.grid), self.scale,
                           top_fraction=self.top_fraction)
        flip = self.hflip and bool(torch.rand(()) < 0.5)
        video, flow = crop_with_flow(frames, flow, box, self.size, flip)
        return self.augment(video, flow)


# ---------------------------------------------------------------------------------------------
# The motion alignment loss


def gradient_map(gradient: torch.Tensor, slots: int = 4) -> torch.Tensor:
    """MAL's predicted map of the gradient ``g`` ``(B, C, T', H', W')`` at a conv output: ``g`` pooled onto
    ``slots`` time steps, ``w = mean over (H', W')``, ``ReLU(sum_c w g)`` -> ``(B, slots, H', W')``."""
    g = gradient if gradient.shape[2] == slots else F.adaptive_avg_pool3d(gradient, (slots, *gradient.shape[-2:]))
    weight = g.mean(dim=(3, 4), keepdim=True)
    return F.relu((weight * g).sum(1))


def mal_loss(predicted: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """``(1 - cos_st) + (1 - cos_t) + (1 - cos_s)`` of a predicted map and a target, both ``(B, S, H', W')``.

    Returns ``{'mal', 'cos_st', 'cos_t', 'cos_s'}`` (the cosines are batch means).
    """
    b, slots = predicted.shape[:2]
    pred = predicted.float().reshape(b, slots, -1)
    tgt = target.float().reshape(b, slots, -1)
    def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # F.normalize: a zero map has gradient 0, not NaN
        return (F.normalize(a, dim=-1) * F.normalize(b, dim=-1)).sum(-1)

    attention = torch.softmax(tgt.sum(-1), dim=1)
    cos_st = (cosine(pred, tgt) * attention).sum(-1)
    cos_t = cosine(pred.sum(-1), tgt.sum(-1))
    cos_s = cosine(pred.mean(1), tgt.mean(1))
    loss = (1 - cos_st).mean() + (1 - cos_t).mean() + (1 - cos_s).mean()
    return {"mal": loss, "cos_st": cos_st.mean(), "cos_t": cos_t.mean(), "cos_s": cos_s.mean()}


def _last_conv(model: nn.Module) -> str:
    names = [name for name, m in model.named_modules() if isinstance(m, nn.Conv3d) and not name.startswith("hcml.")]
    if not names:
        raise ValueError(f"{type(model).__name__} has no nn.Conv3d for MAL's gradient map; name one with mal_module")
    return names[-1]


# ---------------------------------------------------------------------------------------------
# The objective


@register_objective("mcl")
class MCLObjective(Objective):
    """MCL's loss (see the module docstring); an ``nn.Module`` holding the heads, the key encoder and the queue.

    Args:
        model: the encoder (a zoo video model; its classifier is not used).
        dim: embedding size (128).
        queue_size: keys in the queue (131,072).
        temperature: tau of the inter loss (0.10).
        temperature_intra: tau of the intra loss (0.10).
        momentum: EMA of the key encoder (0.999).
        mal_weight: lambda after the warm-up (1); ``mal_warmup_weight`` (2) during ``mal_warmup_epochs`` (5).
        mal_module: the module whose output MAL differentiates (default: the last ``nn.Conv3d``).
        mal_slots: temporal slots of MAL's maps (4).
        flow: flow cache settings (``zoo.flow.FlowCache``): ``provider`` (default ``farneback``; the official
            code uses TV-L1: ``tvl1``, with OpenCV contrib), ``gap`` (1), ``adjacent`` (1), ``short_side``, ``root``.
        crop_size, hflip: the views' size and flips (default: the training transform's).
        crop_scale: area range of the tubelet crop (0.2-1).
        focus_p, threshold: motion-focused temporal sampling (0.7, 0.5).
        order_loss: train the order head (official: on for UCF-101, off for Kinetics-400).
        shuffle_bn: MoCo's shuffled BN for the keys (see the module docstring).
        bn_groups: groups of a process's batch with their own BN statistics (1; ``SplitBatchNorm``).
        backend: ``zoo.kernels.info_nce`` backend.

    Called on ``clips (B * 4, 5, T, S, S)`` (anchor twice, then the two other clips of each video, RGB then
    flow) and, with ``order_loss``, ``view_target`` (int ``(B,)``: 1 when the anchor comes before the other
    clips, as :class:`MotionFocusedSampler` draws it; the engine passes the batch's), it returns ``'loss'`` and
    ``'loss_inter'``, ``'loss_intra'``, ``'loss_mal'``, with ``'mal_weight'``, ``'acc_inter'``, ``'cos_st'``,
    ``'cos_t'``, ``'cos_s'``, ``'loss_inter_same'``, ``'loss_inter_other'``, ``'logit_pos'``, ``'logit_neg'``,
    ``'queue_fill'`` (no grad; module docstring); with ``order_loss`` also ``'loss_order'``, ``'order_weight'``
    and ``'acc_order'``.
    """

    views = 4
    # The flow cache's defaults (``flow_cache_from_cfg``): what ``wrap_train_set`` and ``zoo flow`` build.
    flow_defaults = {"default_provider": "farneback", "gap": 1, "adjacent": 1}

    def __init__(
        self,
        model: nn.Module,
        dim: int = 128,
        queue_size: int = 131072,
        temperature: float = 0.10,
        temperature_intra: float = 0.10,
        momentum: float = 0.999,
        mal_weight: float = 1.0,
        mal_warmup_weight: float = 2.0,
        mal_warmup_epochs: float = 5,
        mal_module: str | None = None,
        mal_slots: int = 4,
        flow: dict[str, Any] | None = None,
        crop_size: int | None = None,
        hflip: bool | None = None,
        crop_scale: Sequence[float] = (0.2, 1.0),
        focus_p: float = 0.7,
        threshold: float = 0.5,
        order_loss: bool = True,
        shuffle_bn: bool = True,
        bn_groups: int = 1,
        backend: str = "auto",
    ):
        super().__init__(model)
        if temperature <= 0 or temperature_intra <= 0 or not 0 <= momentum <= 1 or mal_slots < 1:
            raise ValueError(f"need temperatures > 0, momentum in [0, 1], mal_slots >= 1; got {temperature}, "
                             f"{temperature_intra}, {momentum}, {mal_slots}")
        self.inter_head = ProjectionMLP(model.head_hidden_size, dim)
        self.intra_head = ProjectionMLP(model.head_hidden_size, dim)
        self.key_model = momentum_copy(model)
        self.key_inter = momentum_copy(self.inter_head)
        self.key_intra = momentum_copy(self.intra_head)
        self.order_loss = bool(order_loss)
        if self.order_loss:
            self.order_head = ProjectionMLP(model.head_hidden_size, dim)
            self.key_order = momentum_copy(self.order_head)
            self.order_classifier = nn.Linear(3 * dim, 2)  # the official Classfier_Head on [q, k_2, k_3]
        self.shuffle_bn, self.bn_groups = bool(shuffle_bn), check_bn_groups(bn_groups)
        self.queue = MomentumQueue(queue_size, dim)
        self.mal_module = mal_module or _last_conv(model)
        self.model.get_submodule(self.mal_module)  # a wrong name fails here, naming it
        self.register_buffer("epochs_done", torch.zeros((), dtype=torch.float64))
        self.register_buffer("epochs_total", torch.zeros((), dtype=torch.float64))  # the stage's, once known
        self.temperature, self.temperature_intra, self.momentum = temperature, temperature_intra, momentum
        self.mal_weight, self.mal_warmup_weight = mal_weight, mal_warmup_weight
        self.mal_warmup_epochs = mal_warmup_epochs
        self.mal_slots = mal_slots
        self.flow_cfg = check_flow_cfg(flow or {})
        self.crop_size, self.hflip, self.crop_scale = crop_size, hflip, tuple(crop_scale)
        self.focus_p, self.threshold = focus_p, threshold
        self.backend = backend

    # -- what the engine asks ---------------------------------------------------------------------

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The encoder (not its classifier), the two contrastive heads and, with ``order_loss``, the order head
        and classifier."""
        params = [*trainable_model_parameters(self.model), *self.inter_head.parameters(),
                  *self.intra_head.parameters()]
        if self.order_loss:
            params += [*self.order_head.parameters(), *self.order_classifier.parameters()]
        return params

    def wrap_train_set(self, dataset: Any) -> FlowViewDataset:
        """The training set as MCL's views: builds the flow cache of its videos (once), then serves motion-focused
        clips with tubelet crops (:class:`~zoo.flow.FlowViewDataset`)."""
        cache = flow_cache_from_cfg(self.flow_cfg, reader=dataset.reader, **self.flow_defaults)
        cache.build(dataset, progress=self.flow_cfg.get("progress", True))
        view = view_settings(dataset, self.crop_size, self.hflip)
        sampler = MotionFocusedSampler(dataset.sampler.num_frames, dataset.sampler.frame_stride, self.focus_p,
                                       self.threshold)
        return FlowViewDataset(dataset, cache, sampler,
                               MCLView(view["size"], view["hflip"], view["mean"], view["std"], self.crop_scale))

    def after_step(self, step: int, total_steps: int, steps_per_epoch: int) -> None:
        """EMA update of the key encoder; the MAL weight's warm-up and the order loss's weight follow the epochs."""
        pairs = [(self.model, self.key_model), (self.inter_head, self.key_inter), (self.intra_head, self.key_intra)]
        if self.order_loss:
            pairs.append((self.order_head, self.key_order))
        for online, key in pairs:
            momentum_update(online, key, self.momentum)
        self.epochs_done.fill_(step / max(steps_per_epoch, 1))
        self.epochs_total.fill_(total_steps / max(steps_per_epoch, 1))

    @property
    def current_mal_weight(self) -> float:
        """lambda for the next step: the warm-up weight during the first ``mal_warmup_epochs`` epochs."""
        return self.mal_warmup_weight if float(self.epochs_done) < self.mal_warmup_epochs else self.mal_weight

    @property
    def current_order_weight(self) -> float:
        """The order loss's weight for the next step: ``epoch / epochs``, the stage's epoch counted from 1 (0 before
        the engine has reported the stage's length, at its first step)."""
        total = float(self.epochs_total)
        if total <= 0:
            return 0.0
        return min(math.floor(float(self.epochs_done)) + 1, total) / total

    # -- the loss -----------------------------------------------------------------------------------

    @torch.no_grad()
    def _keys(self, clips: torch.Tensor) -> list[torch.Tensor]:
        """The key encoder's L2-normalised ``[inter, intra]`` (and ``order``) embeddings of a key batch, through
        shuffled BN (the heads act per row, so the pooled features are put back in order before them)."""
        features = encode_keys(lambda x: pooled_features(self.key_model, self.key_model.forward_features(x)), clips,
                               self.shuffle_bn, self.bn_groups)
        heads = [self.key_inter, self.key_intra] + ([self.key_order] if self.order_loss else [])
        return [F.normalize(head(features).float(), dim=1) for head in heads]

    def forward(self, clips: torch.Tensor, labels: torch.Tensor | None = None,
                view_target: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if clips.ndim != 5 or clips.shape[1] != 5 or clips.shape[0] % self.views:
            raise ValueError(f"MCL expects its views (B * 4, 5, T, H, W): the anchor twice and two more clips of each "
                             f"video, RGB then flow, as wrap_train_set's dataset gives them; got {tuple(clips.shape)}")
        if not torch.is_grad_enabled():
            raise RuntimeError("MCL's motion alignment loss differentiates through the network: call it with grad on")
        b = clips.shape[0] // self.views
        if self.order_loss and (view_target is None or tuple(view_target.shape) != (b,)):
            got = "none" if view_target is None else f"shape {tuple(view_target.shape)}"
            raise ValueError(f"MCL's order loss needs view_target, int (B,) = ({b},): 1 where the anchor clip comes "
                             f"before the other two (wrap_train_set's dataset gives it); got {got}. "
                             "Set order_loss=false to train without it")
        views = clips.view(b, self.views, *clips.shape[1:])
        query, flow = views[:, 0, :3], views[:, 0, 3:]

        captured: list[torch.Tensor] = []
        handle = self.model.get_submodule(self.mal_module).register_forward_hook(
            lambda module, args, out: captured.append(out))
        try:
            features = encode_in_groups(lambda x: pooled_features(self.model, self.model.forward_features(x)), query,
                                        self.bn_groups)
        finally:
            handle.remove()
        if len(captured) != self.bn_groups or captured[0].ndim != 5:
            raise ValueError(f"MAL's module {self.mal_module!r} must output a (B, C, T, H, W) map, once per forward "
                             "pass")
        q_inter = F.normalize(self.inter_head(features).float(), dim=1)
        q_intra = F.normalize(self.intra_head(features).float(), dim=1)
        keys = [self._keys(views[:, v, :3]) for v in (1, 2, 3)]
        k_inter, k_intra = [k[0] for k in keys], [k[1] for k in keys]

        with torch.no_grad():  # before the push: the logits the inter loss sees (same-clip positive)
            logits = logit_stats(q_inter, k_inter[0], self.queue)
            fill = torch.tensor(self.queue.fill)
        target = torch.arange(b, device=clips.device)
        inter, accuracy = [], []
        for positives in k_inter:
            loss, acc = kernels.info_nce(q_inter, self.queue.with_batch(positives), target, self.temperature,
                                         return_accuracy=True, backend=self.backend)
            inter.append(loss)
            accuracy.append(acc)
        loss_inter = torch.stack(inter).mean()
        same = (q_intra * k_intra[0]).sum(-1)
        intra_logits = torch.stack([torch.stack([same, (q_intra * k).sum(-1)], dim=1) for k in k_intra[1:]])
        loss_intra = F.cross_entropy(intra_logits.flatten(0, 1) / self.temperature_intra,
                                     torch.zeros(2 * b, dtype=torch.long, device=clips.device))

        # MAL: the gradient of the same-clip similarity at the conv map, kept in the graph (double backprop).
        similarity = (q_inter * k_inter[0]).sum()
        gradient = torch.cat(torch.autograd.grad(similarity, captured, create_graph=True))  # one map per BN group
        predicted = gradient_map(gradient, self.mal_slots)
        with torch.no_grad():
            motion = motion_target(flow.float(), self.mal_slots, tuple(predicted.shape[-2:]))
        mal = mal_loss(predicted, motion)
        weight = self.current_mal_weight

        self.queue.push(torch.cat(k_inter))
        total = loss_inter + loss_intra + weight * mal["mal"]
        out = {"loss": total, "loss_inter": loss_inter, "loss_intra": loss_intra, "loss_mal": mal["mal"],
               "mal_weight": torch.tensor(weight), "acc_inter": torch.stack(accuracy).mean(),
               "cos_st": mal["cos_st"].detach(), "cos_t": mal["cos_t"].detach(), "cos_s": mal["cos_s"].detach(),
               "loss_inter_same": inter[0].detach(), "loss_inter_other": torch.stack(inter[1:]).mean().detach(),
               "logit_pos": logits["pos"], "logit_neg": logits["neg"], "queue_fill": fill}
        if self.order_loss:
            # The query's order embedding and the key encoder's of the two other clips (no gradient), in time order.
            q_order = F.normalize(self.order_head(features).float(), dim=1)
            joined = F.normalize(torch.cat([q_order, keys[1][2], keys[2][2]], dim=1), dim=1)
            order_logits = self.order_classifier(joined.to(self.order_classifier.weight.dtype))
            target = view_target.to(device=clips.device, dtype=torch.long)
            loss_order = F.cross_entropy(order_logits.float(), target)
            order_weight = self.current_order_weight
            out["loss"] = total + order_weight * loss_order
            out.update(loss_order=loss_order, order_weight=torch.tensor(order_weight),
                       acc_order=(order_logits.detach().argmax(1) == target).float().mean())
        return out

    def __repr__(self) -> str:
        return (f"MCLObjective(queue_size={self.queue.size}, temperature={self.temperature}, "
                f"mal_module={self.mal_module!r}, mal_slots={self.mal_slots}, order_loss={self.order_loss}, "
                f"shuffle_bn={self.shuffle_bn}, bn_groups={self.bn_groups})")
