"""Model families; importing this package registers every entrypoint."""
from ._base import VideoClassifierHead, VideoModel, check_video_input  # noqa: F401  (the base of every family)
from .csn import *  # noqa: F401,F403
from .hcml import *  # noqa: F401,F403
from .mvit import *  # noqa: F401,F403
from .pv_resnet import *  # noqa: F401,F403
from .s3d import *  # noqa: F401,F403
from .slowfast import *  # noqa: F401,F403
from .swin3d import *  # noqa: F401,F403
from .timm2d import *  # noqa: F401,F403
from .video_resnet import *  # noqa: F401,F403
from .x3d import *  # noqa: F401,F403
