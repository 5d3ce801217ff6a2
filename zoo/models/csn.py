"""Channel-separated networks (Tran et al. 2019, "Video Classification with Channel-Separated
Convolutional Networks"): ir-CSN-101, with pytorchvideo's Kinetics weights.

Source: ``pytorchvideo.models.csn.create_csn`` as pytorchvideo's hub ``csn_r101`` configures it
(``pytorchvideo/models/hub/csn.py``, pytorchvideo 0.1.5, Apache-2.0). ir-CSN ("interaction-reduced"):
every bottleneck is 1x1x1 -> a depthwise 3x3x3 conv (one group per channel) -> 1x1x1. A 3x7x7 stem with
a 1x3x3 max-pool; stride 2 in time and space at res3, res4 and res5 (on the depthwise conv and the
shortcut); head pool ``(4, 7, 7)``, no dropout, no softmax.

The network is :class:`zoo.models.pv_resnet.PVResNet` (pytorchvideo builds CSN from the same stem,
stage and block builders as its ResNets, so the layout and key names are the same): a checkpoint's
``model_state`` loads with the classifier moved (``blocks.5.proj`` -> ``head.fc``) and gives
pytorchvideo's outputs. What is ours is :mod:`zoo.models.pv_resnet`'s (the head's window clipped to the
map, logits out).

HCML levels (:func:`zoo.adapters.attach_hcml`: level ``l`` is ``feature_info[len - 5 + l]``): the outputs of res2,
res3, res4 (``blocks.1``, ``blocks.2``, ``blocks.3``), ``(B, 256 | 512 | 1024, T | T/2 | T/4, H/4 | H/8 | H/16,
W/..)``; the wrapped stage returns ``Z = F + g(P)`` to the next one. Level 3 has T/4 time steps, so with the
side branch's deltas (1, 2) the HCML objective needs clips of at least 12 frames (``min_train_frames``; the
adapted model's forward pass, like the plain one's, takes 8: ``min_frames``).
"""

from __future__ import annotations

from typing import Any

from .._builder import build_model_with_cfg
from .._registry import register_model
from .pv_resnet import PV_MODEL_ZOO, PVResNet, checkpoint_filter_fn, pytorchvideo_cfg

__all__: list[str] = []

default_cfgs = {
    "csn_r101": pytorchvideo_cfg(min_frames=8, input_size=(3, 32, 256, 256), frame_stride=2, resize_size=256),
    "csn_r101.pv_k400": pytorchvideo_cfg(
        min_frames=8,
        url=f"{PV_MODEL_ZOO}/kinetics/CSN_32x2_R101.pyth",
        input_size=(3, 32, 256, 256),
        frame_stride=2,
        resize_size=256,
        paper="https://arxiv.org/abs/1904.02811",
        metrics=dict(top1=77.00, top5=92.90, views="10x3", clip_len=32, frame_stride=2),
        gflops=75.62,
        num_params=22_210_000,
        recipe="https://github.com/facebookresearch/SlowFast/blob/main/configs/Kinetics/pytorchvideo/CSN_32x2_R101.yaml",
    ),
}


@register_model
def csn_r101(pretrained: bool = False, **kwargs: Any) -> PVResNet:
    """ir-CSN-101 32x2, pytorchvideo's hub ``csn_r101``: layout, keys and logits.

    Output sizes at ``32 x 256 x 256``: stem ``32 x 64``, res2 ``32 x 64``, res3 ``16 x 32``, res4 ``8 x 16``,
    res5 ``4 x 8`` (``min_frames`` 8).
    """
    model_args = dict(
        layers=(3, 4, 23, 3),
        stem_kernel=(3, 7, 7),
        stem_pool=True,
        conv_a_kernels=((1, 1, 1),) * 4,
        conv_b_kernel=(3, 3, 3),
        channel_separated=True,
        spatial_strides=(1, 2, 2, 2),
        temporal_strides=(1, 2, 2, 2),
        head_pool_size=(4, 7, 7),
        drop_rate=0.0,
    )
    return build_model_with_cfg(
        PVResNet, "csn_r101", pretrained, pretrained_filter_fn=checkpoint_filter_fn, **dict(model_args, **kwargs)
    )
