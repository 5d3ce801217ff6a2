"""Optical flow for motion-contrastive learning: providers, a quantised on-disk cache, motion maps and scores,
and the dataset of training views that serves frames with their flow (MSCL, MCL).

>>> from zoo.flow import FlowCache, create_flow_provider
>>> provider = create_flow_provider('farneback')
>>> flow = provider(frames[:-1], frames[1:])                 # uint8 (N, H, W, 3) pairs -> (N, 2, H, W)
>>> cache = FlowCache(provider='raft', provider_kwargs=dict(weights='raft_small.pth'), gap=2, adjacent=8)
>>> cache.build(train_set)                                   # once; resumable
"""
from .cache import FlowCache, FlowRecord, flow_starts
from .motion import (
    FLOW_BOUND,
    dequantize_flow,
    mds_clip_scores,
    mds_frame_scores,
    mds_keep,
    motion_grid,
    motion_map,
    motion_maps,
    motion_target,
    quantize_flow,
    rotate_flow,
    sobel_motion_map,
)
from .providers import (
    FarnebackFlow,
    FlowProvider,
    HCMLFlow,
    RAFTFlow,
    TVL1Flow,
    create_flow_provider,
    list_flow_providers,
    tvl1_available,
)
from .views import FlowViewDataset, ViewAugment, ViewFrames, crop_with_flow, random_resized_box, transform_settings

__all__ = [
    "FlowProvider",
    "FarnebackFlow",
    "TVL1Flow",
    "RAFTFlow",
    "HCMLFlow",
    "create_flow_provider",
    "list_flow_providers",
    "tvl1_available",
    "FlowCache",
    "FlowRecord",
    "flow_starts",
    "FlowViewDataset",
    "ViewFrames",
    "ViewAugment",
    "crop_with_flow",
    "random_resized_box",
    "transform_settings",
    "FLOW_BOUND",
    "quantize_flow",
    "dequantize_flow",
    "rotate_flow",
    "motion_map",
    "motion_maps",
    "motion_grid",
    "motion_target",
    "sobel_motion_map",
    "mds_frame_scores",
    "mds_clip_scores",
    "mds_keep",
]
