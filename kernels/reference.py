"""Pure-PyTorch references for the kernels: the CPU path and the oracle of the tests.

Each section belongs to one op; shapes and semantics are those of ``../shared/KERNELS.md``.
"""
import torch

# ---------------------------------------------------------------------------------------
# Correlation (cost volume)
# ---------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------
# InfoNCE (contrastive similarity)
# ---------------------------------------------------------------------------------------
