"""Video data: readers (decord, PyAV, torchcodec, frame folders), datasets, WebDataset shards and streams, clip
sampling, transforms, Moving-Digits.

>>> from zoo.data import create_dataset, video_collate
>>> train_set = create_dataset('moving_digits', split='train', num_frames=16, frame_stride=2)
>>> item = train_set[0]            # {'video': float (C, T, H, W), 'label', 'index', 'path'}
"""
from . import collate, readers, sampling, transforms
from ._home import zoo_home
from .collate import average_views, video_collate
from .config import resolve_data_config
from .dataset import Annotations, VideoDataset, VideoSample, load_classes
from .defaults import KindDefaults, kind_defaults
from .factory import create_dataset, list_datasets, register_dataset
from .moving_digits import MOVING_DIGITS_CLASSES, MovingDigitsConfig, generate_moving_digits
from .readers import VideoReadError, auto_readers, list_readers, open_video, reader_status
from .sampling import ClipSampler
from .shards import shard_dataset, write_shards
from .stream import WebDatasetStream
from .transforms import create_transform, create_video_transform
from .writer import write_video

__all__ = [
    "collate",
    "readers",
    "sampling",
    "transforms",
    "zoo_home",
    "create_dataset",
    "list_datasets",
    "register_dataset",
    "load_classes",
    "VideoDataset",
    "VideoSample",
    "Annotations",
    "KindDefaults",
    "kind_defaults",
    "video_collate",
    "average_views",
    "ClipSampler",
    "create_video_transform",
    "create_transform",
    "resolve_data_config",
    "open_video",
    "list_readers",
    "reader_status",
    "auto_readers",
    "shard_dataset",
    "write_shards",
    "WebDatasetStream",
    "write_video",
    "VideoReadError",
    "MOVING_DIGITS_CLASSES",
    "MovingDigitsConfig",
    "generate_moving_digits",
]
