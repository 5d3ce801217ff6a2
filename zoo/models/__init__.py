"""Model families; importing this package registers every entrypoint."""
from .hcml import *  # noqa: F401,F403
from .s3d import *  # noqa: F401,F403
from .timm2d import *  # noqa: F401,F403
from .video_resnet import *  # noqa: F401,F403
