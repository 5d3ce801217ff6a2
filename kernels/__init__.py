"""Triton kernels for motion-contrastive learning, installed as ``zoo.kernels``.

Two ops, each with a Triton path for CUDA tensors, the Triton interpreter for CPU tensors
when asked for (``backend='triton'``), and a pure-PyTorch reference (``kernels/reference.py``)
that is both the CPU path and the tests' oracle:

- :func:`correlation` / :func:`temporal_correlation`: cost volumes between feature maps.
- :func:`info_nce`: InfoNCE loss that never materialises the N x M logits.

The submodules are imported on first use, so ``import zoo`` stays fast and does not import
Triton until a kernel is needed.
"""
import importlib

__all__ = ["correlation", "temporal_correlation", "info_nce"]

_LAZY = {
    "correlation": ".correlation",
    "temporal_correlation": ".correlation",
    "info_nce": ".contrastive",
}


def __getattr__(name):
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name], __name__)
        value = getattr(module, name)
        # Importing the submodule `.correlation` bound it to this package's attribute of the same
        # name; the public name is the function, so cache it over the submodule.
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
