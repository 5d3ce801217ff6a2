"""Fused InfoNCE: contrastive loss of N queries against M keys without the N x M logits.

``loss_i = logsumexp_j(s_ij / tau) - s_{i,target_i} / tau`` with ``s_ij`` the cosine
similarity of query i and key j (``normalize=True``) or their dot product. HCML's per-level
loss is the square case (N = M, target = arange); MoCo-style MSCL/MCL compare a batch of
queries with a batch of keys plus a detached queue of 65k-131k keys.

Backends:
- ``'triton'``: three Triton kernels. The forward streams tiles of keys past a block of
  queries with an online max / sum (flash-attention style, base-2: ``log2(e) / tau`` and the
  inverse norms are folded into one scale per row and column, then ``exp2``), ``tl.dot`` with
  float32 accumulation, and saves only the per-row logsumexp. When a few query blocks
  cannot fill the GPU (MoCo: N = 256), the keys are split across programs too and the
  partial (max, sum, positive) triples are merged in PyTorch (flash-decoding). The backward
  recomputes the tiles: one kernel for dQ (over query blocks and key splits), one for dK
  (over key blocks, skipped for a detached queue); neither writes the N x M matrix or uses
  atomics. Runs on CUDA tensors, and on CPU tensors through the Triton interpreter in the
  same process (``triton.runtime.interpreter.InterpretedFunction``).
- ``'torch'``: the chunked PyTorch path of :mod:`zoo.kernels.reference` (rows of queries at a
  time, backward recomputes the chunks): peak memory O(chunk x M), any device and dtype.
- ``'auto'``: Triton for CUDA float32/float16/bfloat16 tensors, ``'torch'`` otherwise (and always
  without Triton installed, where ``'triton'`` raises: see :mod:`zoo.kernels._triton`).

Both sit behind the custom ops ``zoo::info_nce_forward`` / ``zoo::info_nce_backward``
(``torch.library``, with fake implementations and autograd): ``torch.compile(fullgraph=True)``
treats them as opaque nodes on any device (tested on CPU, both backends).

Memory of the Triton path, besides the inputs: the (N, K) and (M, K) gradients in float32
before the cast (dQ as (splits, N, K) partial sums when the keys are split), and O(splits x N)
per-row statistics. The materialised version holds the (N, M) logits, their softmax and its
gradient. Targets are range-checked when the op runs (one host sync on CUDA).

Interpreting a kernel makes Triton add its interpreter's names to this module's namespace
(as it does under TRITON_INTERPRET=1); nothing of ours is overwritten.
"""
from __future__ import annotations

import functools
import math

import torch

from ._triton import check_backend, interpreted, is_interpreted, jit, resolve_backend, tl, triton
from .reference import (
    info_nce_accumulation_dtype,
    info_nce_chunked_backward,
    info_nce_chunked_forward,
    info_nce_chunked_forward_with_grads,
    info_nce_inverse_norm,
    info_nce_normalize_backward,
    info_nce_reduce,
)

__all__ = ["info_nce"]

LOG2E = math.log2(math.e)
LN2 = math.log(2.0)

_REDUCTIONS = ("mean", "sum", "none")
_TRITON_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


# ---------------------------------------------------------------------------------------
# Triton kernels. Layout: query (N, K) and keys (M, K) contiguous; INV_Q (N,) / INV_K (M,)
# the float32 inverse norms (unused when not NORMALIZE); logits in base 2:
# s2_ij = (q_i . k_j) * inv_q_i * inv_k_j * scale with scale = log2(e) / tau.
# Only builtins and tl.reduce: tl.sum / tl.max / tl.zeros are @triton.jit helpers, which the
# interpreter cannot call from a kernel interpreted in a process where TRITON_INTERPRET was
# unset at import (the CUDA and interpreted kernels live side by side here).
# ---------------------------------------------------------------------------------------


@jit
def _add(a, b):
    return a + b


@jit
def _maximum(a, b):
    return tl.maximum(a, b)


@jit
def _info_nce_fwd_kernel(
    Q, KEYS, INV_Q, INV_K, TARGET, MAX_OUT, SUM_OUT, POS_OUT,
    N, M, K, split_size, scale,
    NORMALIZE: tl.constexpr, UPCAST: tl.constexpr, PRECISION: tl.constexpr,
    BLOCK_N: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr,
):
    """Program (i, s): BLOCK_N queries against the keys of split s.

    Writes the row max of s2, the sum of exp2(s2 - max) and s2 at the target (0 when the
    target is in another split), each (splits, N) float32.
    """
    pid_n = tl.program_id(0)
    pid_s = tl.program_id(1)
    rows = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < N
    q_rows = Q + rows.to(tl.int64)[:, None] * K
    dims = tl.arange(0, BLOCK_K)
    target = tl.load(TARGET + rows, mask=row_ok, other=-1)
    row_scale = tl.full([BLOCK_N], 1.0, tl.float32) * scale
    if NORMALIZE:
        row_scale = row_scale * tl.load(INV_Q + rows, mask=row_ok, other=0.0)

    lo = pid_s * split_size
    hi = tl.minimum(lo + split_size, M)
    m_i = tl.full([BLOCK_N], float("-inf"), tl.float32)
    l_i = tl.full([BLOCK_N], 0.0, tl.float32)
    pos_i = tl.full([BLOCK_N], 0.0, tl.float32)
    for start in range(lo, hi, BLOCK_M):
        cols = start + tl.arange(0, BLOCK_M)
        col_ok = cols < hi
        k_rows = KEYS + cols.to(tl.int64)[:, None] * K
        s = tl.full([BLOCK_N, BLOCK_M], 0.0, tl.float32)
        for d0 in range(0, K, BLOCK_K):
            d = d0 + dims
            q = tl.load(q_rows + d[None, :], mask=row_ok[:, None] & (d < K)[None, :], other=0.0)
            k = tl.load(k_rows + d[None, :], mask=col_ok[:, None] & (d < K)[None, :], other=0.0)
            if UPCAST:
                q = q.to(tl.float32)
                k = k.to(tl.float32)
            s = tl.dot(q, tl.trans(k), s, input_precision=PRECISION)
        if NORMALIZE:
            s = s * tl.load(INV_K + cols, mask=col_ok, other=0.0)[None, :]
        s = s * row_scale[:, None]
        s = tl.where(col_ok[None, :], s, float("-inf"))
        pos_i += tl.reduce(tl.where(cols[None, :] == target[:, None], s, 0.0), 1, _add)
        m_new = tl.maximum(m_i, tl.reduce(s, 1, _maximum))
        l_i = l_i * tl.exp2(m_i - m_new) + tl.reduce(tl.exp2(s - m_new[:, None]), 1, _add)
        m_i = m_new

    out = pid_s * N + rows
    tl.store(MAX_OUT + out, m_i, mask=row_ok)
    tl.store(SUM_OUT + out, l_i, mask=row_ok)
    tl.store(POS_OUT + out, pos_i, mask=row_ok)


@jit
def _info_nce_bwd_dq_kernel(
    Q, KEYS, INV_Q, INV_K, TARGET, LSE2, GRAD, DQ,
    N, M, K, split_size, scale,
    NORMALIZE: tl.constexpr, UPCAST: tl.constexpr, PRECISION: tl.constexpr,
    BLOCK_N: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr,
):
    """Program (i, s, c): columns c*BLOCK_K.. of dL/dq_hat (or dL/dq) for BLOCK_N queries, keys of split s.

    ``G_ij = GRAD_i * (exp2(s2_ij - LSE2_i) - [j == target_i])`` with GRAD = dL/dloss / tau;
    accumulates ``sum_j G_ij * inv_k_j * k_j`` into DQ (splits, N, K) float32.
    """
    pid_n = tl.program_id(0)
    pid_s = tl.program_id(1)
    pid_d = tl.program_id(2)
    rows = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < N
    rows64 = rows.to(tl.int64)
    q_rows = Q + rows64[:, None] * K
    dims = tl.arange(0, BLOCK_K)
    out_dims = pid_d * BLOCK_K + dims
    target = tl.load(TARGET + rows, mask=row_ok, other=-1)
    lse2 = tl.load(LSE2 + rows, mask=row_ok, other=0.0)
    grad = tl.load(GRAD + rows, mask=row_ok, other=0.0)
    row_scale = tl.full([BLOCK_N], 1.0, tl.float32) * scale
    if NORMALIZE:
        row_scale = row_scale * tl.load(INV_Q + rows, mask=row_ok, other=0.0)

    lo = pid_s * split_size
    hi = tl.minimum(lo + split_size, M)
    acc = tl.full([BLOCK_N, BLOCK_K], 0.0, tl.float32)
    for start in range(lo, hi, BLOCK_M):
        cols = start + tl.arange(0, BLOCK_M)
        col_ok = cols < hi
        k_rows = KEYS + cols.to(tl.int64)[:, None] * K
        s = tl.full([BLOCK_N, BLOCK_M], 0.0, tl.float32)
        for d0 in range(0, K, BLOCK_K):
            d = d0 + dims
            q = tl.load(q_rows + d[None, :], mask=row_ok[:, None] & (d < K)[None, :], other=0.0)
            k = tl.load(k_rows + d[None, :], mask=col_ok[:, None] & (d < K)[None, :], other=0.0)
            if UPCAST:
                q = q.to(tl.float32)
                k = k.to(tl.float32)
            s = tl.dot(q, tl.trans(k), s, input_precision=PRECISION)
        col_scale = tl.full([BLOCK_M], 1.0, tl.float32)
        if NORMALIZE:
            col_scale = tl.load(INV_K + cols, mask=col_ok, other=0.0)
        p = tl.exp2(s * col_scale[None, :] * row_scale[:, None] - lse2[:, None])
        p = tl.where(cols[None, :] == target[:, None], p - 1.0, p)
        p = tl.where(col_ok[None, :], p * grad[:, None] * col_scale[None, :], 0.0)
        k_out = tl.load(k_rows + out_dims[None, :], mask=col_ok[:, None] & (out_dims < K)[None, :], other=0.0)
        if UPCAST:
            k_out = k_out.to(tl.float32)
        acc = tl.dot(p.to(k_out.dtype), k_out, acc, input_precision=PRECISION)

    out = (pid_s * N + rows64)[:, None] * K + out_dims[None, :]
    tl.store(DQ + out, acc, mask=row_ok[:, None] & (out_dims < K)[None, :])


@jit
def _info_nce_bwd_dk_kernel(
    Q, KEYS, INV_Q, INV_K, TARGET, LSE2, GRAD, DK,
    N, M, K, scale,
    NORMALIZE: tl.constexpr, UPCAST: tl.constexpr, PRECISION: tl.constexpr,
    BLOCK_N: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr,
):
    """Program (j, c): columns c*BLOCK_K.. of dL/dk_hat (or dL/dk) for BLOCK_M keys, all queries.

    Accumulates ``sum_i G_ij * inv_q_i * q_i`` (G as in the dQ kernel) into DK (M, K) float32.
    """
    pid_m = tl.program_id(0)
    pid_d = tl.program_id(1)
    cols = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    col_ok = cols < M
    cols64 = cols.to(tl.int64)
    k_rows = KEYS + cols64[:, None] * K
    dims = tl.arange(0, BLOCK_K)
    out_dims = pid_d * BLOCK_K + dims
    col_scale = tl.full([BLOCK_M], 1.0, tl.float32)
    if NORMALIZE:
        col_scale = tl.load(INV_K + cols, mask=col_ok, other=0.0)

    acc = tl.full([BLOCK_M, BLOCK_K], 0.0, tl.float32)
    for start in range(0, N, BLOCK_N):
        rows = start + tl.arange(0, BLOCK_N)
        row_ok = rows < N
        q_rows = Q + rows.to(tl.int64)[:, None] * K
        target = tl.load(TARGET + rows, mask=row_ok, other=-1)
        lse2 = tl.load(LSE2 + rows, mask=row_ok, other=0.0)
        grad = tl.load(GRAD + rows, mask=row_ok, other=0.0)
        inv_q = tl.full([BLOCK_N], 1.0, tl.float32)
        if NORMALIZE:
            inv_q = tl.load(INV_Q + rows, mask=row_ok, other=0.0)
        s_t = tl.full([BLOCK_M, BLOCK_N], 0.0, tl.float32)
        for d0 in range(0, K, BLOCK_K):
            d = d0 + dims
            k = tl.load(k_rows + d[None, :], mask=col_ok[:, None] & (d < K)[None, :], other=0.0)
            q = tl.load(q_rows + d[None, :], mask=row_ok[:, None] & (d < K)[None, :], other=0.0)
            if UPCAST:
                k = k.to(tl.float32)
                q = q.to(tl.float32)
            s_t = tl.dot(k, tl.trans(q), s_t, input_precision=PRECISION)
        p = tl.exp2(s_t * col_scale[:, None] * (inv_q * scale)[None, :] - lse2[None, :])
        p = tl.where(cols[:, None] == target[None, :], p - 1.0, p)
        p = tl.where(row_ok[None, :], p * (grad * inv_q)[None, :], 0.0)
        q_out = tl.load(q_rows + out_dims[None, :], mask=row_ok[:, None] & (out_dims < K)[None, :], other=0.0)
        if UPCAST:
            q_out = q_out.to(tl.float32)
        acc = tl.dot(p.to(q_out.dtype), q_out, acc, input_precision=PRECISION)

    out = cols64[:, None] * K + out_dims[None, :]
    tl.store(DK + out, acc, mask=col_ok[:, None] & (out_dims < K)[None, :])


# ---------------------------------------------------------------------------------------
# Launching: autotuned on CUDA, one fixed configuration under the interpreter.
# ---------------------------------------------------------------------------------------

# Tiles for H100-class GPUs (227 KiB of shared memory per block). The large tiles suit
# 16-bit inputs; float32 at K = 256 fits only the single-stage and 32-wide ones (compiled for
# sm_90 ahead of time: fp32 64x64 K-tile 256 needs 384 KiB at 3 stages). Configurations that
# do not fit fail to load and are skipped by the autotuner.
_CUDA_TILES = [  # (BLOCK_N, BLOCK_M, num_warps, num_stages)
    (64, 64, 4, 3),
    (64, 128, 4, 3),
    (128, 64, 8, 3),
    (128, 128, 8, 2),
    (64, 64, 8, 2),
    (64, 64, 4, 1),
    (32, 64, 4, 2),
    (32, 32, 4, 2),
]
_CUDA_MAX_BLOCK_K = 256
_CUDA_SPLIT_BLOCK_N = 64  # query rows per program assumed when choosing the key splits
_CUDA_SPLIT_ALIGN = 128  # multiple of every BLOCK_M above

_INTERPRET_META = {"BLOCK_N": 16, "BLOCK_M": 16}
_INTERPRET_MAX_BLOCK_K = 32
_INTERPRET_PROGRAMS = 4  # split the keys until about this many programs, as on a GPU


_INTERPRET_ALL = is_interpreted(_info_nce_fwd_kernel)  # TRITON_INTERPRET=1 at import


@functools.cache
def _kernels() -> dict:
    """name -> (autotuned kernel for CUDA, the same kernel under the interpreter); built on first use,
    so that this module imports without Triton."""
    configs = [triton.Config({"BLOCK_N": bn, "BLOCK_M": bm}, num_warps=warps, num_stages=stages)
               for bn, bm, warps, stages in _CUDA_TILES]
    return {
        name: (triton.autotune(configs, key=["N", "M", "BLOCK_K", "NORMALIZE", "PRECISION"])(kernel),
               interpreted(kernel))
        for name, kernel in [
            ("fwd", _info_nce_fwd_kernel),
            ("dq", _info_nce_bwd_dq_kernel),
            ("dk", _info_nce_bwd_dk_kernel),
        ]
    }


@functools.lru_cache
def _sm_count(device_index: int) -> int:
    return torch.cuda.get_device_properties(device_index).multi_processor_count


class _Launch:
    """Where and how the kernels of one call run: interpreter or CUDA, tiles, key splits."""

    def __init__(self, query: torch.Tensor, num_rows: int, num_keys: int, dim: int):
        self.device = query.device
        self.interpret = _INTERPRET_ALL or not query.is_cuda
        max_block_k = _INTERPRET_MAX_BLOCK_K if self.interpret else _CUDA_MAX_BLOCK_K
        self.block_k = min(max(16, triton.next_power_of_2(dim)), max_block_k)
        if self.interpret:
            # The interpreter's tl.dot is exact float32 and its bf16 arithmetic is unreliable.
            self.consts = {"UPCAST": True, "PRECISION": "ieee", "BLOCK_K": self.block_k}
            min_block_n, programs, align = _INTERPRET_META["BLOCK_N"], _INTERPRET_PROGRAMS, 16
        else:
            tf32 = query.dtype != torch.float32 or torch.backends.cuda.matmul.allow_tf32
            self.consts = {"UPCAST": False, "PRECISION": "tf32" if tf32 else "ieee", "BLOCK_K": self.block_k}
            index = self.device.index if self.device.index is not None else torch.cuda.current_device()
            min_block_n, programs = _CUDA_SPLIT_BLOCK_N, 2 * _sm_count(index)
            align = _CUDA_SPLIT_ALIGN
        # Split the keys when the query blocks alone cannot fill the device (flash-decoding).
        wanted = max(1, programs // triton.cdiv(num_rows, min_block_n))
        self.split_size = triton.cdiv(triton.cdiv(num_keys, wanted), align) * align
        self.splits = triton.cdiv(num_keys, self.split_size)

    def __call__(self, name: str, grid, *args, **consts) -> None:
        """Run kernel `name` on grid(meta) with the call's constants."""
        tuned, interpreted_kernel = _kernels()[name]
        if self.interpret:
            interpreted_kernel[grid(_INTERPRET_META)](*args, **consts, **self.consts, **_INTERPRET_META)
        else:
            with torch.cuda.device(self.device):
                tuned[grid](*args, **consts, **self.consts)


def _inverse_norms(q: torch.Tensor, k: torch.Tensor, normalize: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """float32 inverse row norms of q and k, or empty placeholders the kernels never read."""
    if normalize:
        return info_nce_inverse_norm(q).contiguous(), info_nce_inverse_norm(k).contiguous()
    empty = q.new_empty(0, dtype=torch.float32)
    return empty, empty


def _triton_forward(
    query: torch.Tensor, keys: torch.Tensor, target: torch.Tensor, temperature: float, normalize: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-row loss, natural-log LSE (float32, (N,)) and correct (bool, (N,)) by the Triton kernels."""
    (n, dim), m = query.shape, keys.shape[0]
    q, k, t = query.contiguous(), keys.contiguous(), target.contiguous()
    inv_q, inv_k = _inverse_norms(q, k, normalize)
    launch = _Launch(q, n, m, dim)
    parts = torch.empty((3, launch.splits, n), device=q.device, dtype=torch.float32)
    launch(
        "fwd", lambda meta: (triton.cdiv(n, meta["BLOCK_N"]), launch.splits),
        q, k, inv_q, inv_k, t, *parts.unbind(0), n, m, dim, launch.split_size, LOG2E / temperature,
        NORMALIZE=normalize,
    )
    split_max, split_sum, split_pos = parts.unbind(0)
    row_max = split_max.amax(dim=0)
    lse2 = row_max + torch.log2((split_sum * torch.exp2(split_max - row_max)).sum(dim=0))
    pos = split_pos.sum(dim=0)
    return (lse2 - pos) * LN2, lse2 * LN2, pos >= row_max


def _triton_backward(
    grad_loss: torch.Tensor,
    query: torch.Tensor,
    keys: torch.Tensor,
    target: torch.Tensor,
    lse: torch.Tensor,
    temperature: float,
    normalize: bool,
    needs_keys_grad: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """dq (N, K) and dk (M, K) or None, in the inputs' dtypes, by the Triton kernels."""
    (n, dim), m = query.shape, keys.shape[0]
    q, k, t = query.contiguous(), keys.contiguous(), target.contiguous()
    inv_q, inv_k = _inverse_norms(q, k, normalize)
    launch = _Launch(q, n, m, dim)
    lse2 = (lse.float() * LOG2E).contiguous()
    grad = (grad_loss.float() / temperature).contiguous()
    scale = LOG2E / temperature
    d_chunks = triton.cdiv(dim, launch.block_k)

    dq_parts = torch.empty((launch.splits, n, dim), device=q.device, dtype=torch.float32)
    launch(
        "dq", lambda meta: (triton.cdiv(n, meta["BLOCK_N"]), launch.splits, d_chunks),
        q, k, inv_q, inv_k, t, lse2, grad, dq_parts, n, m, dim, launch.split_size, scale,
        NORMALIZE=normalize,
    )
    dq = dq_parts.sum(dim=0) if launch.splits > 1 else dq_parts[0]
    dk = None
    if needs_keys_grad:
        dk = torch.empty((m, dim), device=q.device, dtype=torch.float32)
        launch(
            "dk", lambda meta: (triton.cdiv(m, meta["BLOCK_M"]), d_chunks),
            q, k, inv_q, inv_k, t, lse2, grad, dk, n, m, dim, scale,
            NORMALIZE=normalize,
        )
    if normalize:
        dq = info_nce_normalize_backward(q, dq)
        dk = info_nce_normalize_backward(k, dk) if dk is not None else None
    return dq.to(query.dtype), (dk.to(keys.dtype) if dk is not None else None)


# ---------------------------------------------------------------------------------------
# Custom ops: the unit torch.compile sees, with fake implementations and autograd.
# ---------------------------------------------------------------------------------------


def _check_target_range(target: torch.Tensor, num_keys: int) -> None:
    """Raise if a target is outside [0, num_keys) (reads the data: one sync on CUDA)."""
    low, high = int(target.min()), int(target.max())
    if low < 0 or high >= num_keys:
        raise ValueError(
            f"info_nce: target must hold indices of keys in [0, {num_keys}), got values in [{low}, {high}]"
        )


@torch.library.custom_op("zoo::info_nce_forward", mutates_args=())
def _info_nce_forward(query: torch.Tensor, keys: torch.Tensor, target: torch.Tensor, temperature: float,
                      normalize: bool, backend: str, query_grad: bool = False, keys_grad: bool = False
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-row loss (N,), natural-log logsumexp of s/tau (N,), correct (N,) bool, and the gradients of the sum of
    the per-row losses that ``query_grad`` / ``keys_grad`` ask for, computed in the same pass (``'torch'`` backend;
    the caller sums or averages the rows, so their upstream gradient is uniform): dq (N, K) and dk (M, K) in the
    accumulation dtype, empty ``(0, K)`` tensors when not computed (the backward then recomputes the chunks)."""
    _check_target_range(target, keys.shape[0])
    if backend != "triton" and (query_grad or keys_grad):
        return info_nce_chunked_forward_with_grads(query, keys, target, temperature, normalize, query_grad, keys_grad)
    forward = _triton_forward if backend == "triton" else info_nce_chunked_forward
    loss, lse, correct = forward(query, keys, target, temperature, normalize)
    return loss, lse, correct, loss.new_empty((0, query.shape[1])), loss.new_empty((0, query.shape[1]))


@_info_nce_forward.register_fake
def _(query, keys, target, temperature, normalize, backend, query_grad=False, keys_grad=False):
    dtype, grads = info_nce_accumulation_dtype(query.dtype), backend != "triton"
    rows = query.new_empty(query.shape[0], dtype=dtype)
    dq = query.new_empty(query.shape if grads and query_grad else (0, query.shape[1]), dtype=dtype)
    dk = keys.new_empty(keys.shape if grads and keys_grad else (0, keys.shape[1]), dtype=dtype)
    return rows, torch.empty_like(rows), torch.empty_like(rows, dtype=torch.bool), dq, dk


@torch.library.custom_op("zoo::info_nce_backward", mutates_args=())
def _info_nce_backward(
    grad_loss: torch.Tensor,
    query: torch.Tensor,
    keys: torch.Tensor,
    target: torch.Tensor,
    lse: torch.Tensor,
    temperature: float,
    normalize: bool,
    needs_keys_grad: bool,
    backend: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """dq (N, K) and dk (M, K); dk is an empty (0, K) tensor when not needs_keys_grad
    (custom ops cannot return None)."""
    args = (grad_loss, query, keys, target, lse, temperature, normalize, needs_keys_grad)
    dq, dk = _triton_backward(*args) if backend == "triton" else info_nce_chunked_backward(*args)
    return dq, (dk if dk is not None else keys.new_empty((0, keys.shape[1])))


@_info_nce_backward.register_fake
def _(grad_loss, query, keys, target, lse, temperature, normalize, needs_keys_grad, backend):
    return torch.empty_like(query), keys.new_empty(keys.shape if needs_keys_grad else (0, keys.shape[1]))


def _setup_context(ctx, inputs, output) -> None:
    query, keys, target, temperature, normalize, backend, *_ = inputs
    ctx.save_for_backward(query, keys, target, output[1], output[3], output[4])
    ctx.temperature, ctx.normalize, ctx.backend = temperature, normalize, backend


def _backward(ctx, grad_loss, _grad_lse, _grad_correct, _grad_dq, _grad_dk):
    query, keys, target, lse, dq, dk = ctx.saved_tensors
    needs_query_grad, needs_keys_grad = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    have_dq, have_dk = dq.shape[0] == query.shape[0], dk.shape[0] == keys.shape[0]
    if (have_dq or not needs_query_grad) and (have_dk or not needs_keys_grad):
        # Computed in the forward pass: scale by the upstream gradient (uniform over rows for dk, see the op).
        grad = grad_loss.to(dq.dtype)
        dq = (dq * grad[:, None]).to(query.dtype) if needs_query_grad else None
        dk = (dk * grad[0]).to(keys.dtype) if needs_keys_grad else None
        return dq, dk, None, None, None, None, None, None
    dq, dk = _info_nce_backward(
        grad_loss, query, keys, target, lse, ctx.temperature, ctx.normalize, needs_keys_grad, ctx.backend
    )
    return dq, (dk if needs_keys_grad else None), None, None, None, None, None, None


_info_nce_forward.register_autograd(_backward, setup_context=_setup_context)


# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------


def _validate(query, keys, target, temperature, reduction: str, backend: str) -> None:
    """Raise ValueError naming the expected form for anything the kernels cannot take."""
    for name, x in (("query", query), ("keys", keys), ("target", target)):
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"info_nce: {name} must be a torch.Tensor, got {type(x).__name__}")
    if query.dim() != 2 or keys.dim() != 2:
        raise ValueError(
            f"info_nce: expected query (N, K) and keys (M, K), got query {tuple(query.shape)} "
            f"and keys {tuple(keys.shape)}"
        )
    if query.shape[1] != keys.shape[1]:
        raise ValueError(
            f"info_nce: query (N, K) and keys (M, K) must share K, got {query.shape[1]} and {keys.shape[1]}"
        )
    if query.shape[0] == 0 or keys.shape[0] == 0 or query.shape[1] == 0:
        raise ValueError(
            f"info_nce: expected N, M, K >= 1, got query {tuple(query.shape)} and keys {tuple(keys.shape)}"
        )
    if target.shape != (query.shape[0],):
        raise ValueError(
            f"info_nce: expected target of shape (N,) = ({query.shape[0]},), got {tuple(target.shape)}"
        )
    if not query.is_floating_point() or query.dtype != keys.dtype:
        raise ValueError(
            f"info_nce: query and keys must share a floating dtype (float32, float16, bfloat16, float64), "
            f"got {query.dtype} and {keys.dtype}"
        )
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        raise ValueError(f"info_nce: target must be an integer tensor (int64 or int32), got {target.dtype}")
    if not (query.device == keys.device == target.device):
        raise ValueError(
            f"info_nce: query, keys and target must be on one device, got {query.device}, "
            f"{keys.device} and {target.device}"
        )
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise ValueError(f"info_nce: temperature must be a Python float, got {type(temperature).__name__}")
    if not (0.0 < temperature < math.inf):
        raise ValueError(f"info_nce: temperature must be a finite float > 0, got {temperature}")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"info_nce: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    check_backend(backend, "info_nce")
    if backend == "triton" and query.dtype not in _TRITON_DTYPES:
        raise ValueError(f"info_nce: backend='triton' takes float32, float16 or bfloat16, got {query.dtype}")


def info_nce(
    query: torch.Tensor,
    keys: torch.Tensor,
    target: torch.Tensor,
    temperature: float,
    normalize: bool = True,
    reduction: str = "mean",
    *,
    return_accuracy: bool = False,
    backend: str = "auto",
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """InfoNCE of each query against all keys, without materialising the (N, M) logits.

    ``loss_i = logsumexp_j(s_ij / tau) - s_{i,target_i} / tau``, ``s_ij`` the cosine
    similarity of query i and key j (``normalize=True``) or their dot product.
    Equal to ``F.cross_entropy(normalize(query) @ normalize(keys).T / tau, target)``.

    Args:
        query: (N, K) float32, float16, bfloat16 (or float64 on the torch backend).
        keys: (M, K), same dtype and device. May not require grad (a MoCo queue, or
            ``torch.cat([batch_keys, queue])``): no gradient is computed for a detached tensor.
        target: (N,) int64/int32, index in [0, M) of each query's positive key
            (``arange(N)`` for the square case).
        temperature: tau > 0 (a Python float; logits are similarities / tau).
        normalize: cosine similarity if True, raw dot product if False.
        reduction: 'mean' or 'sum' over rows, or 'none' for the (N,) per-row losses.
        return_accuracy: also return the fraction of rows whose positive has the highest
            similarity (ties count as correct), a 0-dim float tensor without grad, computed
            in the same pass.
        backend: 'auto' (Triton on CUDA float32/16/bf16, chunked PyTorch elsewhere),
            'triton' (the kernels; CPU tensors run them in the Triton interpreter, slowly),
            or 'torch' (the chunked PyTorch path).

    Returns:
        The loss, float32 (float64 for float64 inputs); with ``return_accuracy``, ``(loss, accuracy)``.

    Raises:
        ValueError: a shape, dtype, device, target, temperature, reduction or backend that
            does not fit; target values are checked when the op runs (one sync on CUDA).
    """
    _validate(query, keys, target, temperature, reduction, backend)
    backend = resolve_backend(backend, query.device, "info_nce", triton_ok=query.dtype in _TRITON_DTYPES)
    # The 'torch' path computes the gradients in the forward pass when the rows are reduced (their upstream
    # gradient is then one scalar): three matmuls, as the materialised loss, instead of four.
    precompute = backend == "torch" and reduction != "none" and torch.is_grad_enabled()
    query_grad, keys_grad = precompute and query.requires_grad, precompute and keys.requires_grad
    loss, _, correct, _, _ = _info_nce_forward(
        query, keys, target, float(temperature), normalize, backend, query_grad, keys_grad
    )
    loss = info_nce_reduce(loss, reduction)
    if return_accuracy:
        return loss, correct.float().mean()
    return loss
