"""Triton kernels for motion-contrastive learning, installed as ``zoo.kernels``.

Two ops, each with a Triton path for CUDA tensors, the Triton interpreter for CPU tensors
when asked for (``backend='triton'``), and a pure-PyTorch reference (``kernels/reference.py``)
that is both the CPU path and the tests' oracle:

- :func:`correlation` / :func:`temporal_correlation`: cost volumes between feature maps.
- :func:`info_nce`: InfoNCE loss that never materialises the N x M logits.
"""
from .contrastive import info_nce
from .correlation import correlation, temporal_correlation

__all__ = ["correlation", "temporal_correlation", "info_nce"]
