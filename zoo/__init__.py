"""motion-zoo: video backbones, HCML motion adapters, MSCL/MCL, and Triton motion kernels.

>>> from zoo import create_model
>>> model = create_model('r2d_18', num_classes=10)
"""
from . import models  # noqa: F401  (registers the model families)
from ._builder import load_checkpoint
from ._cards import WeightsCard, get_weights_card, list_pretrained, load_weights_cards, register_weights_card
from ._export import push_to_hub, save_for_hub
from ._factory import create_model
from ._pretrained import PretrainedCfg
from ._registry import get_pretrained_cfg, is_model, list_models, list_modules, register_model
from .inference import predict

__version__ = "0.1.0"

load_weights_cards()  # the shipped weights_cards/*.yaml join the registry (a YAML parse each)

__all__ = [
    "create_model",
    "predict",
    "list_models",
    "list_pretrained",
    "list_modules",
    "is_model",
    "get_pretrained_cfg",
    "register_model",
    "load_checkpoint",
    "PretrainedCfg",
    "WeightsCard",
    "register_weights_card",
    "load_weights_cards",
    "get_weights_card",
    "save_for_hub",
    "push_to_hub",
    "__version__",
]
