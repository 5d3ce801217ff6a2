"""MSCL, motion sensitive contrastive learning (Ni et al., "Motion Sensitive Contrastive Learning for Self-supervised
Video Representation", ECCV 2022, arXiv 2208.06105).

``create_objective('mscl', model, ...)`` trains ``model`` (the RGB encoder, e.g. ``r3d_18``) with a
second encoder on optical flow (``r2d_18`` on 2 channels), as the official code
(``megvii-research/MSCL``, ``configs/recognition/moco/mscl_r18_cosm_lr2e-2.py``) does:

- Views: for every video a query and a key clip, each with its flow (``zoo.flow``); see
  :meth:`MSCLObjective.wrap_train_set`. Motion differential sampling (MDS, :class:`MDSSampler`)
  draws the query's start among the clips whose motion-differential score is above the video's
  median, and the key's start within ``+-T * stride`` frames of it, snapped to the nearest kept
  start. Each clip is cropped (RandomResizedCrop, area 0.2-1) and flipped with its flow, and its
  RGB frames colour-augmented.
- Both branches are MoCo v2: a momentum (key) encoder, a 2-layer MLP projection to 128-d and a
  queue of 65,536 keys per modality, temperature 0.07. The momentum follows the official cosine
  schedule ``m = 1 - (1 - 0.994)(cos(pi step / steps) + 1) / 2``, rising from 0.994 to 1 over the stage.
- Flow rotation augmentation (FRA): each sample's flow (query and key clips alike, as the official
  pipeline rotates a sample's flows together) is rotated by ``(0.2 + 0.2 c) pi``, ``c`` drawn in
  0..7 (36 to 288 degrees), then every flow frame (rotated or not) is divided by its largest vector
  length (``NormFlowWithStidedAug``). Rotated keys are never enqueued.
- Clip-level losses (all ``zoo.kernels.info_nce``, tau 0.07): within RGB, within flow, within rotated
  flow (the flow queue as negatives); across modalities both ways, RGB query vs flow key with the
  flow queue and flow query vs RGB key with the RGB queue, and the same with the rotated flow. As in
  the official ``MSCLWithAug``, the rotated flow of a clip is the positive of these rotated-flow
  losses; it is a negative only in LMCL.
- LMCL (``MSCLWithAugPosHeadV2``): the RGB query's map at ``lmcl_level`` and the flow query's last
  map are pooled over space and over time to ``lmcl_steps`` steps (b x C x t), projected to 128
  channels per step (RGB: conv1d-ReLU-conv1d, flow: conv1d), L2-normalised; each RGB step is
  classified among the ``2 t`` steps of the original and rotated flow by cosine similarity / 0.07,
  the positive being the same step of the original flow.
- Total: the sum of the seven clip-level losses and LMCL, each weight 1 (the official weights;
  ``loss_weights`` changes them, for ablations: :data:`MSCL_TERMS`).

Where we differ from the official code:

- No TPN neck: the RGB clip embedding is the backbone's pooled features and LMCL reads the
  backbone's ``lmcl_level`` map (default ``layer2`` of R3D-18: 128 channels and T/2 steps, the
  input of the TPN level the official LMCL uses), with the projections the official head defines
  for un-necked features. The flow encoder is the zoo's ``r2d_18`` (512 channels) on 2 channels.
- InfoNCE with a queue: each query's negatives are the queue *and* the batch's other keys (they
  enter the queue this step anyway); the official logits hold the queue only. The official code also
  scales queue entries by ``0.99999 ** age``, which we leave out (under 0.5% at K400's settings).
- Momentum: one update per optimizer step, after it; the official flow branch updates its key
  encoder twice per step (once per flow forward). The official config sets ``max_iters`` to
  clips x epochs, so there the momentum stays near 0.994; we use the stage's optimizer steps, as
  the formula intends.
- Shuffled BN (``shuffle_bn``, on): under DDP each key batch is dealt out over all processes in a random
  order before the key encoders and put back after them, as the official MoCo code does; the keys of all
  processes are gathered into the queues. In one process that shuffle changes nothing, and ``bn_groups``
  (default 1) stands in for the processes (MoCo's ``SplitBatchNorm``: queries and shuffled keys encoded in
  that many groups of the batch, each with its own BN statistics; :mod:`zoo.methods.moco`).
- MDS: clip scores use 8 flow frames 4 apart (the official settings) whatever the training clip's
  length; the key's start goes to the nearest kept start (the official loop compares each start's
  distance to the target with its distance to the best start so far); with no start above the median
  (a video without motion) the query starts at the first flow frame and the key at its target.
- The flow of a view is normalised after cropping (per frame, by its largest vector in the view),
  the official pipeline before. Colour augmentation is MoCo v2's (``zoo.flow.ViewAugment``).

The queues, key encoders and flow encoder live in the objective (``objective.state_dict()``), so a
``zoo train`` checkpoint resumes them; the trained RGB encoder is ``model`` itself.

What training logs, and what to expect of it: besides the terms, each of the four cross-modal losses
apart, the positive and mean negative cosines (``logit_pos_*``, ``logit_neg_*``: RGB, flow, RGB query
vs flow key; :func:`zoo.methods.moco.logit_stats`) and each queue's fill level. The total loss of a
run *rises* at first, and that is expected, not a defect: at step 0 the queues hold random unit
vectors (cosine about 0 with any query), so each clip-level term only has to pick its positive among
the batch's ``B`` keys, ``ln B`` at chance; as real keys replace the random ones (a queue of ``K``
keys fills in ``K / B`` steps) the chance level becomes ``ln(K + B)``, and a randomly initialised
encoder maps every clip to nearly the same direction (positive and negative cosines both near 1), so
the terms climb towards it. Training works when the positive cosine then pulls away from the mean
negative one and the terms fall below ``ln(K + B)``. With the official momentum (0.994 rising to 1)
a key encoder moves by well under 1% of the online one per step, so over a few hundred steps the keys
still come from an encoder close to its initialisation: a short run spends most of its budget in the
rising phase.
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
from ..flow.motion import mds_clip_scores, mds_keep, rotate_flow
from ..flow.views import FlowViewDataset, ViewAugment, crop_with_flow, random_int, random_resized_box, view_settings
from . import register_objective
from .base import Objective
from .moco import (
    MomentumQueue,
    ProjectionMLP,
    check_bn_groups,
    cosine_momentum,
    encode_in_groups,
    encode_keys,
    logit_stats,
    momentum_copy,
    momentum_update,
    pooled_features,
    trainable_model_parameters,
)

__all__ = [
    "MSCLObjective",
    "MSCL_TERMS",
    "check_loss_weights",
    "MDSSampler",
    "MSCLView",
    "fra_angles",
    "normalize_flow",
]

FRA_ANGLES = tuple((0.2 + 0.2 * c) * math.pi for c in range(8))  # the official NormFlowWithStidedAug


# ---------------------------------------------------------------------------------------------
# Views: motion differential sampling, crops with flow


class MDSSampler:
    """Motion differential sampling of a query and a key clip (see the module docstring).

    Args:
        num_frames: frames per clip (T).
        frame_stride: frames between a clip's frames.
        mds_clip_len, mds_stride: the flow frames a clip score averages (official: 8, 4 apart).
        shift: the key's start lies within ``+-shift`` clip spans (``T * stride`` frames) of the query's.

    Calling it with a :class:`~zoo.flow.FlowRecord` returns two int arrays of frame indices
    (query, key), wrapped around the video's end as the official ``out_of_bound_opt='loop'``.
    """

    def __init__(self, num_frames: int, frame_stride: int, mds_clip_len: int = 8, mds_stride: int = 4,
                 shift: float = 1.0):
        self.num_frames, self.frame_stride = num_frames, frame_stride
        self.mds_clip_len, self.mds_stride, self.shift = mds_clip_len, mds_stride, shift

    def starts(self, record: FlowRecord) -> tuple[int, int]:
        """``(query, key)`` starts, in flow frames."""
        kept = mds_keep(mds_clip_scores(record.mds, self.mds_clip_len, self.mds_stride))
        span = max(1, round(self.num_frames * self.frame_stride / record.gap))  # a clip, in flow frames
        last = max(record.num_flows - span, 0)
        query, allowed = None, set(kept.tolist())
        for _ in range(11):  # the official ChosenSampleFrames: 11 draws, then the first kept start
            draw = random_int(0, last)
            if draw in allowed:
                query = draw
                break
        if query is None:
            query = int(kept[0]) if len(kept) else 0
        reach = round(self.shift * span)
        target = query + random_int(-reach, reach)
        key = int(kept[np.argmin(np.abs(kept - target))]) if len(kept) else min(max(target, 0), last)
        return query, key

    def __call__(self, record: FlowRecord) -> list[np.ndarray]:
        offsets = np.arange(self.num_frames, dtype=np.int64) * self.frame_stride
        return [(int(record.frame_of(s)) + offsets) % record.num_frames for s in self.starts(record)]


class MSCLView:
    """One MSCL view: a RandomResizedCrop (area ``scale``, aspect ``ratio``) and optional flip of the frames
    with their flow, resized to ``size``, then :class:`~zoo.flow.ViewAugment` -> ``(5, T, size, size)``."""

    def __init__(self, size: int, hflip: bool, mean: Sequence[float], std: Sequence[float],
                 scale: tuple[float, float] = (0.2, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3)):
        self.size, self.hflip, self.scale, self.ratio = size, hflip, tuple(scale), tuple(ratio)
        self.augment = ViewAugment(size, mean, std)

    def __call__(self, frames: torch.Tensor, flow: torch.Tensor, view: int) -> torch.Tensor:
        box = random_resized_box(frames.shape[1], frames.shape[2], self.scale, self.ratio)
        flip = self.hflip and bool(torch.rand(()) < 0.5)
        video, flow = crop_with_flow(frames, flow, box, self.size, flip)
        return self.augment(video, flow)


# ---------------------------------------------------------------------------------------------
# Flow helpers


def fra_angles(batch: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """One FRA angle per sample, drawn among the official eight, ``(B,)`` radians."""
    choice = torch.randint(len(FRA_ANGLES), (batch,))
    return torch.tensor(FRA_ANGLES)[choice].to(device)


def normalize_flow(flow: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Divide each flow frame of ``(B, 2, T, H, W)`` by its largest vector length (the official ``norm_flow``)."""
    length = flow.float().square().sum(1, keepdim=True).sqrt()
    peak = length.amax(dim=(3, 4), keepdim=True)
    return flow / (peak + eps)


# ---------------------------------------------------------------------------------------------
# The objective


MSCL_TERMS = ("rgb", "flow", "flow_rotated", "cross", "cross_rotated", "lmcl")


def check_loss_weights(weights: dict[str, float] | None) -> dict[str, float]:
    """Every one of :data:`MSCL_TERMS` with its weight in the total: 1 (the official) unless ``weights`` names it."""
    weights = dict(weights or {})
    unknown = sorted(set(weights) - set(MSCL_TERMS))
    if unknown:
        raise ValueError(f"unknown MSCL loss terms {unknown}; the terms are {list(MSCL_TERMS)}")
    out = {}
    for name in MSCL_TERMS:
        w = float(weights.get(name, 1.0))
        if not math.isfinite(w) or w < 0:
            raise ValueError(f"the weight of MSCL's {name!r} term must be finite and >= 0; got {weights[name]!r}")
        out[name] = w
    return out


@register_objective("mscl")
class MSCLObjective(Objective):
    """MSCL's loss (see the module docstring); an ``nn.Module`` holding the flow encoder, the key encoders,
    the projections and the queues.

    Args:
        model: the RGB encoder (a zoo video model; its classifier is not used).
        flow_model: the flow encoder, a registered model built with ``in_chans=2`` (official: r2d_18).
        dim: embedding size (128).
        queue_size: keys per queue (65,536).
        temperature: tau (0.07) of every loss.
        momentum: the momentum schedule's start (0.994).
        lmcl_level: ``model.feature_info`` index of the RGB map LMCL reads (default 2: ``layer2``).
        lmcl_steps: time steps LMCL compares (official: 4, half the 8 frames).
        flow: flow cache settings (``zoo.flow.FlowCache``): ``provider`` (default ``farneback``; the
            official code uses RAFT: ``{provider: raft, provider_kwargs: {weights: FILE}}``),
            ``gap`` (2), ``adjacent`` (8), ``short_side``, ``root``.
        crop_size, hflip: the views' size and flips (default: the training transform's).
        crop_scale: area range of the views' RandomResizedCrop (0.2-1).
        mds_clip_len, mds_stride: MDS clip scores (8 flow frames, 4 apart).
        shuffle_bn: MoCo's shuffled BN for the keys under DDP (on; module docstring).
        bn_groups: groups of a process's batch with their own BN statistics (1; ``SplitBatchNorm``).
        loss_weights: weights of the terms in the total, by :data:`MSCL_TERMS` name (``cross`` and
            ``cross_rotated`` weigh both directions); unnamed terms keep the official weight 1. For
            ablations: a term of weight 0 is still computed and logged but trains nothing.
        backend: ``zoo.kernels.info_nce`` backend.

    Called on ``clips (B * 2, 5, T, S, S)`` (query and key views of each video, RGB then flow, as
    :meth:`wrap_train_set`'s dataset gives them), it returns ``'loss'`` and the terms ``'loss_rgb'``,
    ``'loss_flow'``, ``'loss_flow_rotated'``, ``'loss_cross'``, ``'loss_cross_rotated'`` (each the sum
    of both directions), ``'loss_lmcl'``, with, without grad, the four directions ``'loss_rgb_flow'``,
    ``'loss_flow_rgb'``, ``'loss_rgb_flow_rotated'``, ``'loss_flow_rotated_rgb'``, ``'acc_rgb'``,
    ``'acc_cross'``, ``'acc_lmcl'``, the cosines ``'logit_pos_rgb'``, ``'logit_neg_rgb'``,
    ``'logit_pos_flow'``, ``'logit_neg_flow'``, ``'logit_pos_cross'``, ``'logit_neg_cross'`` and the
    queues' fill levels ``'queue_fill_rgb'``, ``'queue_fill_flow'`` (module docstring).
    """

    views = 2
    # The flow cache's defaults (``flow_cache_from_cfg``): what ``wrap_train_set`` and ``zoo flow`` build.
    flow_defaults = {"default_provider": "farneback", "gap": 2, "adjacent": 8}

    def __init__(
        self,
        model: nn.Module,
        flow_model: str = "r2d_18",
        dim: int = 128,
        queue_size: int = 65536,
        temperature: float = 0.07,
        momentum: float = 0.994,
        lmcl_level: int = 2,
        lmcl_steps: int = 4,
        flow: dict[str, Any] | None = None,
        crop_size: int | None = None,
        hflip: bool | None = None,
        crop_scale: Sequence[float] = (0.2, 1.0),
        mds_clip_len: int = 8,
        mds_stride: int = 4,
        shuffle_bn: bool = True,
        bn_groups: int = 1,
        loss_weights: dict[str, float] | None = None,
        backend: str = "auto",
    ):
        super().__init__(model)
        from .._factory import create_model

        self.loss_weights = check_loss_weights(loss_weights)

        if temperature <= 0 or not 0 <= momentum <= 1 or lmcl_steps < 1:
            raise ValueError(f"need temperature > 0, momentum in [0, 1], lmcl_steps >= 1; got {temperature}, "
                             f"{momentum}, {lmcl_steps}")
        feature_info = getattr(model, "feature_info", None)
        if not feature_info or not -len(feature_info) <= lmcl_level < len(feature_info):
            raise ValueError(f"lmcl_level {lmcl_level} is not a feature_info level of {type(model).__name__}")
        self.flow_model = create_model(flow_model, num_classes=0, in_chans=2)
        self.rgb_proj = ProjectionMLP(model.head_hidden_size, dim)
        self.flow_proj = ProjectionMLP(self.flow_model.head_hidden_size, dim)
        rgb_channels = feature_info[lmcl_level]["num_chs"]
        self.rgb_local = nn.Sequential(nn.Conv1d(rgb_channels, 128, 1), nn.ReLU(inplace=True), nn.Conv1d(128, 128, 1))
        self.flow_local = nn.Conv1d(self.flow_model.num_features, 128, 1)
        self.rgb_key = momentum_copy(model)
        self.rgb_key_proj = momentum_copy(self.rgb_proj)
        self.flow_key = momentum_copy(self.flow_model)
        self.flow_key_proj = momentum_copy(self.flow_proj)
        self.rgb_queue = MomentumQueue(queue_size, dim)
        self.flow_queue = MomentumQueue(queue_size, dim)
        self.temperature = temperature
        self.base_momentum = momentum
        self.lmcl_level = lmcl_level % len(feature_info)
        self.lmcl_steps = lmcl_steps
        self.flow_cfg = check_flow_cfg(flow or {})
        self.crop_size, self.hflip, self.crop_scale = crop_size, hflip, tuple(crop_scale)
        self.mds = (mds_clip_len, mds_stride)
        self.shuffle_bn, self.bn_groups = bool(shuffle_bn), check_bn_groups(bn_groups)
        self.backend = backend

    # -- what the engine asks ---------------------------------------------------------------------

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The RGB encoder (not its classifier), the flow encoder, the projections and LMCL heads."""
        params = list(trainable_model_parameters(self.model))
        for module in (self.flow_model, self.rgb_proj, self.flow_proj, self.rgb_local, self.flow_local):
            params += list(module.parameters())
        return params

    def wrap_train_set(self, dataset: Any) -> FlowViewDataset:
        """The training set as MSCL's views: builds the flow cache of its videos (once), then serves MDS-sampled
        query and key clips with their flow (:class:`~zoo.flow.FlowViewDataset`)."""
        cache = flow_cache_from_cfg(self.flow_cfg, reader=dataset.reader, **self.flow_defaults)
        cache.build(dataset, progress=self.flow_cfg.get("progress", True))
        view = view_settings(dataset, self.crop_size, self.hflip)
        sampler = MDSSampler(dataset.sampler.num_frames, dataset.sampler.frame_stride, *self.mds)
        return FlowViewDataset(dataset, cache, sampler, MSCLView(view["size"], view["hflip"], view["mean"],
                                                                 view["std"], self.crop_scale))

    def after_step(self, step: int, total_steps: int, steps_per_epoch: int) -> None:
        """Momentum update of the key encoders after optimizer step ``step`` of ``total_steps``."""
        m = cosine_momentum(step, total_steps, self.base_momentum)
        for online, key in ((self.model, self.rgb_key), (self.rgb_proj, self.rgb_key_proj),
                            (self.flow_model, self.flow_key), (self.flow_proj, self.flow_key_proj)):
            momentum_update(online, key, m)

    # -- the loss -----------------------------------------------------------------------------------

    def _info_nce(self, query: torch.Tensor, positives: torch.Tensor, queue: MomentumQueue
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        target = torch.arange(query.shape[0], device=query.device)
        keys = queue.with_batch(positives).to(query.dtype)
        return kernels.info_nce(query, keys, target, self.temperature, return_accuracy=True, backend=self.backend)

    def _rgb_query(self, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The RGB query embeddings and the LMCL map, in ``bn_groups`` groups."""
        def encode(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            local, last = self.model.forward_intermediates(x, [self.lmcl_level, -1])
            return self.rgb_proj(pooled_features(self.model, last)), local
        return encode_in_groups(encode, rgb, self.bn_groups)

    def _flow_query(self, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The flow query embeddings and the flow encoder's last map, in ``bn_groups`` groups."""
        def encode(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            last = self.flow_model.forward_features(x)
            return self.flow_proj(pooled_features(self.flow_model, last)), last
        return encode_in_groups(encode, flow, self.bn_groups)

    @torch.no_grad()
    def _key(self, encoder: nn.Module, proj: nn.Module, clips: torch.Tensor) -> torch.Tensor:
        """L2-normalised keys through shuffled BN (:func:`~zoo.methods.moco.encode_keys`)."""
        keys = encode_keys(lambda x: proj(pooled_features(encoder, encoder.forward_features(x))), clips,
                           self.shuffle_bn, self.bn_groups)
        return F.normalize(keys.float(), dim=1)

    def _local(self, feature_map: torch.Tensor, head: nn.Module, name: str) -> torch.Tensor:
        """``(B, C, T', H', W')`` -> ``(B, 128, lmcl_steps)`` L2-normalised per step."""
        if feature_map.shape[2] < self.lmcl_steps:
            raise ValueError(f"LMCL compares {self.lmcl_steps} time steps but the {name} map has "
                             f"{feature_map.shape[2]}: give longer clips, a lower lmcl_steps or another lmcl_level")
        pooled = F.adaptive_avg_pool3d(feature_map, (self.lmcl_steps, 1, 1)).flatten(2)
        return F.normalize(head(pooled).float(), dim=1)

    def forward(self, clips: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if clips.ndim != 5 or clips.shape[1] != 5 or clips.shape[0] % self.views:
            raise ValueError(f"MSCL expects its views (B * 2, 5, T, H, W): query and key clips of each video, RGB then "
                             f"flow, as wrap_train_set's dataset gives them; got {tuple(clips.shape)}")
        b = clips.shape[0] // self.views
        views = clips.view(b, self.views, *clips.shape[1:])
        rgb_q, rgb_k = views[:, 0, :3], views[:, 1, :3]
        flow_q, flow_k = views[:, 0, 3:].float(), views[:, 1, 3:].float()
        angles = fra_angles(b, clips.device)
        rot_q, rot_k = normalize_flow(rotate_flow(flow_q, angles)), normalize_flow(rotate_flow(flow_k, angles))
        flow_q, flow_k = normalize_flow(flow_q), normalize_flow(flow_k)
        dtype = rgb_q.dtype
        flow_q, flow_k, rot_q, rot_k = (x.to(dtype) for x in (flow_q, flow_k, rot_q, rot_k))

        q_rgb, local_rgb = self._rgb_query(rgb_q)
        q_flow, last_flow = self._flow_query(flow_q)
        q_rot, last_rot = self._flow_query(rot_q)
        k_rgb = self._key(self.rgb_key, self.rgb_key_proj, rgb_k)
        k_flow = self._key(self.flow_key, self.flow_key_proj, flow_k)
        k_rot = self._key(self.flow_key, self.flow_key_proj, rot_k)

        with torch.no_grad():  # before the push: the logits the losses below see
            rgb_logits = logit_stats(q_rgb, k_rgb, self.rgb_queue)
            flow_logits = logit_stats(q_flow, k_flow, self.flow_queue)
            cross_logits = logit_stats(q_rgb, k_flow, self.flow_queue)
            fill = {"queue_fill_rgb": torch.tensor(self.rgb_queue.fill), "queue_fill_flow": torch.tensor(
                self.flow_queue.fill)}
        loss_rgb, acc_rgb = self._info_nce(q_rgb, k_rgb, self.rgb_queue)
        loss_flow, _ = self._info_nce(q_flow, k_flow, self.flow_queue)
        loss_rot, _ = self._info_nce(q_rot, k_rot, self.flow_queue)
        loss_rf, acc_rf = self._info_nce(q_rgb, k_flow, self.flow_queue)
        loss_fr, acc_fr = self._info_nce(q_flow, k_rgb, self.rgb_queue)
        loss_rf_rot, _ = self._info_nce(q_rgb, k_rot, self.flow_queue)
        loss_fr_rot, _ = self._info_nce(q_rot, k_rgb, self.rgb_queue)

        # LMCL: each RGB step among the 2t steps of the original and rotated flow; positive: same step, original.
        rgb_steps = self._local(local_rgb, self.rgb_local, "RGB")
        flow_steps = torch.cat([self._local(last_flow, self.flow_local, "flow"),
                                self._local(last_rot, self.flow_local, "flow")], dim=2)
        logits = torch.bmm(rgb_steps.transpose(1, 2), flow_steps) / self.temperature  # (B, t, 2t)
        step_target = torch.arange(self.lmcl_steps, device=clips.device).repeat(b)
        logits = logits.flatten(0, 1)
        loss_lmcl = F.cross_entropy(logits, step_target)

        self.rgb_queue.push(k_rgb)
        self.flow_queue.push(k_flow)
        loss_cross, loss_cross_rot = loss_rf + loss_fr, loss_rf_rot + loss_fr_rot
        terms = {"rgb": loss_rgb, "flow": loss_flow, "flow_rotated": loss_rot, "cross": loss_cross,
                 "cross_rotated": loss_cross_rot, "lmcl": loss_lmcl}
        total = sum(self.loss_weights[k] * v for k, v in terms.items())
        with torch.no_grad():
            acc_lmcl = (logits.argmax(1) == step_target).float().mean()
        return {"loss": total, "loss_rgb": loss_rgb, "loss_flow": loss_flow, "loss_flow_rotated": loss_rot,
                "loss_cross": loss_cross, "loss_cross_rotated": loss_cross_rot, "loss_lmcl": loss_lmcl,
                # the four cross-modal terms one by one (loss_cross and loss_cross_rotated are their sums)
                "loss_rgb_flow": loss_rf.detach(), "loss_flow_rgb": loss_fr.detach(),
                "loss_rgb_flow_rotated": loss_rf_rot.detach(), "loss_flow_rotated_rgb": loss_fr_rot.detach(),
                "acc_rgb": acc_rgb, "acc_cross": (acc_rf + acc_fr) / 2, "acc_lmcl": acc_lmcl,
                "logit_pos_rgb": rgb_logits["pos"], "logit_neg_rgb": rgb_logits["neg"],
                "logit_pos_flow": flow_logits["pos"], "logit_neg_flow": flow_logits["neg"],
                "logit_pos_cross": cross_logits["pos"], "logit_neg_cross": cross_logits["neg"], **fill}

    def __repr__(self) -> str:
        return (f"MSCLObjective(flow_model={type(self.flow_model).__name__}, queue_size={self.rgb_queue.size}, "
                f"temperature={self.temperature}, lmcl_level={self.lmcl_level}, lmcl_steps={self.lmcl_steps}, "
                f"shuffle_bn={self.shuffle_bn}, bn_groups={self.bn_groups}"
                + "".join(f", {k}_weight={w:g}" for k, w in self.loss_weights.items() if w != 1.0) + ")")
