"""Correlation (cost volume) between feature maps: Triton kernels, autograd and ``torch.library`` ops.

``correlation(f1, f2, max_displacement, stride=1, normalize=True)``: f1, f2 (B, C, H, W) -> (B, D, H, W)
with r = max_displacement // stride, D = (2r+1)^2 and

    out[b, (i+r)*(2r+1) + (j+r), y, x] = sim(f1[b, :, y, x], f2[b, :, y + i*stride, x + j*stride])

for i, j in -r..r (displacement rows outer, columns inner), 0 where the displaced position leaves the
map. ``sim`` is the cosine similarity (``normalize=True``, HCML's cost volume) or the dot product
divided by C (FlowNetC's). ``temporal_correlation(x, ...)``, x (B, C, T, H, W) -> (B, D, T, H, W),
pairs frame t with t+1 and the last frame with itself, reading both frames from x (no shifted copy).

Backends: ``'triton'`` runs the kernels below (compiled on CUDA tensors, under the Triton interpreter
on CPU tensors, which is how the tests reach them without a GPU); ``'torch'`` runs the reference of
:mod:`zoo.kernels.reference` (a loop over displacements, memory O(inputs + output)); ``'auto'`` picks
Triton for CUDA tensors and the reference elsewhere (always the reference without Triton installed, where
``'triton'`` raises: see :mod:`zoo.kernels._triton`).

Kernel design (fp32 accumulation, fp64 for fp64 inputs, output in the input dtype):

- forward: one program per (b, t, y, block of BLOCK_X columns) and chunk of BLOCK_D displacements,
  accumulating f1(c, x) * f2(c, x + d) over the channels in a [BLOCK_D, BLOCK_X] tile. The chunk's
  displacements read overlapping windows of the same few f2 rows, so after the first touch the f2
  tile is reused from L1/L2 instead of re-read from HBM per displacement. The inverse norms (one per
  position, computed once) are multiplied in at the end: normalised features are never written.
- backward: one program per (b, t, y, block of columns, block of channels) gathers the gradient of its
  own tile, without atomics: as f1, df1(p) = sum_d g(p, d) f2(p + d) / (|f1(p)| |f2(p + d)|) minus the
  radial term f1(p) / |f1(p)|^2 * sum_d g(p, d) c(p, d); as f2, the same with q - d. The radial sums
  read the saved output c. For the temporal op one launch does both roles of a frame (one rounding).
- FMA kernels, no ``tl.dot``: the (2r+1)^2 displacements are a narrow band of the all-pairs product,
  which tensor cores would have to compute in full. They use only Triton builtins (no ``tl.sum`` /
  ``tl.zeros``, which are ``@triton.jit`` library functions that the interpreter cannot call unless
  TRITON_INTERPRET=1 was set before Triton was imported), and no ``vector & scalar_bool`` masks (the
  Triton 3.9 interpreter mistypes them), so the same source runs compiled and interpreted.
- autotune configs for H100-class GPUs were picked by register budget (ptxas for sm_90a: no spills in
  the forward); they have not yet been timed on a GPU (see benchmarks/correlation.py).

The ops are registered with ``torch.library.custom_op`` (``zoo::correlation``,
``zoo::temporal_correlation`` and their ``_backward`` ops) with fake implementations and autograd, so
``torch.compile(fullgraph=True)`` sees them as single graph nodes on CPU and CUDA. ``custom_op``
rather than ``triton_op``: one implementation dispatches to the compiled kernels, the interpreter or
the reference (the ``backend`` argument).
"""
from __future__ import annotations

import functools

import torch
from torch.utils.flop_counter import register_flop_formula

from ._triton import Backend, interpreted, require_triton, resolve_backend, tl, triton
from .reference import CORRELATION_EPS, correlation_backward_reference, correlation_forward_reference

__all__ = ["correlation", "temporal_correlation"]

_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


# ---------------------------------------------------------------------------------------
# Triton kernels. Plain functions here; `_kernels()` wraps them with `triton.jit` + autotune for
# CUDA and with the interpreter for CPU tensors. Every tensor is contiguous (B, CH, T, H, W) with
# CH = C (features), D (output, gradient) or 1 (inverse norms), so the offset of (b, ch, t, y, x) is
# ((b*CH + ch)*T + t)*H*W + y*W + x. `b` is int64; offsets within a sample are int32 (checked on entry).
# ---------------------------------------------------------------------------------------

def _correlation_fwd_kernel(
        f1_ptr, f2_ptr, inv1_ptr, inv2_ptr, out_ptr,
        C, T, H, W, R, STRIDE, SHIFT,
        NORMALIZE: tl.constexpr, ACC_DTYPE: tl.constexpr,
        BLOCK_X: tl.constexpr, BLOCK_D: tl.constexpr):
    """out(b, d, t, y, x) for one (b, t, y), BLOCK_X columns and BLOCK_D displacements at a time.

    f2's frame is min(t + SHIFT, T - 1). Each channel adds f1(c, x) * f2(c, y + i*STRIDE, x + j*STRIDE)
    to a [BLOCK_D, BLOCK_X] accumulator, whose rows read overlapping windows of the same few f2 rows
    (L1 hits after the first).
    """
    pid = tl.program_id(0)
    y = pid % H
    t = (pid // H) % T
    b = (pid // (H * T)).to(tl.int64)
    t2 = tl.minimum(t + SHIFT, T - 1)
    n = 2 * R + 1
    x = tl.program_id(1) * BLOCK_X + tl.arange(0, BLOCK_X)
    x_ok = x < W
    plane = H * W
    ch_step = T * plane                                    # between channels (and displacements)
    f1_row = f1_ptr + (b * C * T + t) * plane + y * W      # f1(b, 0, t, y, 0)
    f2_frame = f2_ptr + (b * C * T + t2) * plane           # f2(b, 0, t2, 0, 0)
    out_row = out_ptr + (b * n * n * T + t) * plane + y * W
    if NORMALIZE:
        inv1 = tl.load(inv1_ptr + (b * T + t) * plane + y * W + x, mask=x_ok, other=0.0)
    for d0 in range(0, n * n, BLOCK_D):
        d = d0 + tl.arange(0, BLOCK_D)
        y2 = y + (d // n - R) * STRIDE                                              # [BD]
        x2 = x[None, :] + (d % n - R)[:, None] * STRIDE                            # [BD, BX]
        ok2 = ((d < n * n) & (y2 >= 0) & (y2 < H))[:, None] & x_ok[None, :] & (x2 >= 0) & (x2 < W)
        f2_pos = f2_frame + y2[:, None] * W + x2
        acc = tl.full([BLOCK_D, BLOCK_X], 0.0, ACC_DTYPE)
        for c in range(0, C):
            a = tl.load(f1_row + c * ch_step + x, mask=x_ok, other=0.0).to(ACC_DTYPE)
            w = tl.load(f2_pos + c * ch_step, mask=ok2, other=0.0).to(ACC_DTYPE)
            acc += a[None, :] * w
        if NORMALIZE:
            inv2 = tl.load(inv2_ptr + (b * T + t2) * plane + y2[:, None] * W + x2, mask=ok2, other=0.0)
            acc = acc * inv1[None, :] * inv2
        else:
            acc = acc / C
        tl.store(out_row + d[:, None] * ch_step + x[None, :], acc.to(out_ptr.dtype.element_ty),
                 mask=(d < n * n)[:, None] & x_ok[None, :])


def _correlation_bwd_kernel(
        f1_ptr, f2_ptr, inv1_ptr, inv2_ptr, coef1_ptr, coef2_ptr, grad_ptr, out_ptr, dst_ptr,
        C, T, H, W, R, STRIDE, SHIFT,
        AS_F1: tl.constexpr, AS_F2: tl.constexpr, NORMALIZE: tl.constexpr, ACC_DTYPE: tl.constexpr,
        BLOCK_X: tl.constexpr, BLOCK_C: tl.constexpr):
    """Gradient of one frame's (b, t, y) tile of BLOCK_C channels x BLOCK_X columns, written to dst.

    AS_F1 adds the frame's gradient as f1 of pair t (partner: frame min(t + SHIFT, T - 1) of f2); AS_F2
    adds its gradient as f2 of every pair that reads it (pair t for the spatial op; pair t - 1 and, for
    the last frame, pair t itself for the temporal op). Each displacement d adds g(d) times the partner's
    [BLOCK_C, BLOCK_X] tile; the radial sums sum_d g*c use the saved output c, and
    ``coef = 1/|f|^2`` (0 where the norm is clamped). Gathers only: each program owns its tile.
    """
    pid = tl.program_id(0)
    y = pid % H
    tq = (pid // H) % T
    b = (pid // (H * T)).to(tl.int64)
    n = 2 * R + 1
    x = tl.program_id(1) * BLOCK_X + tl.arange(0, BLOCK_X)
    c = tl.program_id(2) * BLOCK_C + tl.arange(0, BLOCK_C)
    x_ok = x < W
    c_ok = c < C
    plane = H * W
    ch_step = T * plane
    pos = (b * T + tq) * plane + y * W + x                       # this row in (B, 1, T, H, W)
    tile = (b * C * T + tq) * plane + c[:, None] * ch_step + y * W + x[None, :]
    tile_ok = c_ok[:, None] & x_ok[None, :]
    total = tl.full([BLOCK_C, BLOCK_X], 0.0, ACC_DTYPE)
    if AS_F1:
        t2 = tl.minimum(tq + SHIFT, T - 1)
        f2_frame = f2_ptr + (b * C * T + t2) * plane + c[:, None] * ch_step
        g_row = (b * n * n * T + tq) * plane + y * W + x           # grad / out (b, 0, tq, y, x)
        part = tl.full([BLOCK_C, BLOCK_X], 0.0, ACC_DTYPE)
        radial = tl.full([BLOCK_X], 0.0, ACC_DTYPE)
        for i in range(0, n):
            y2 = y + (i - R) * STRIDE
            if (y2 >= 0) & (y2 < H):  # rows outside the map add nothing
                for j in range(0, n):
                    x2 = x + (j - R) * STRIDE
                    ok2 = x_ok & (x2 >= 0) & (x2 < W)
                    g_off = g_row + (i * n + j) * ch_step
                    g = tl.load(grad_ptr + g_off, mask=ok2, other=0.0).to(ACC_DTYPE)
                    if NORMALIZE:
                        radial += g * tl.load(out_ptr + g_off, mask=ok2, other=0.0).to(ACC_DTYPE)
                        g = g * tl.load(inv2_ptr + (b * T + t2) * plane + y2 * W + x2, mask=ok2, other=0.0)
                    w = tl.load(f2_frame + y2 * W + x2[None, :], mask=c_ok[:, None] & ok2[None, :], other=0.0)
                    part += g[None, :] * w.to(ACC_DTYPE)
        if NORMALIZE:
            own = tl.load(f1_ptr + tile, mask=tile_ok, other=0.0).to(ACC_DTYPE)
            inv = tl.load(inv1_ptr + pos, mask=x_ok, other=0.0)
            coef = tl.load(coef1_ptr + pos, mask=x_ok, other=0.0)
            part = part * inv[None, :] - own * (coef * radial)[None, :]
        else:
            part = part / C
        total += part
    if AS_F2:
        t_lo = tl.maximum(tq - SHIFT, 0)
        t_hi = tl.where(tq == T - 1, tq, tq - SHIFT)
        part = tl.full([BLOCK_C, BLOCK_X], 0.0, ACC_DTYPE)
        radial = tl.full([BLOCK_X], 0.0, ACC_DTYPE)
        for t in range(t_lo, t_hi + 1):
            f1_frame = f1_ptr + (b * C * T + t) * plane + c[:, None] * ch_step
            g_frame = (b * n * n * T + t) * plane
            for i in range(0, n):
                y1 = y - (i - R) * STRIDE
                if (y1 >= 0) & (y1 < H):
                    for j in range(0, n):
                        x1 = x - (j - R) * STRIDE
                        ok1 = x_ok & (x1 >= 0) & (x1 < W)
                        g_off = g_frame + (i * n + j) * ch_step + y1 * W + x1
                        g = tl.load(grad_ptr + g_off, mask=ok1, other=0.0).to(ACC_DTYPE)
                        if NORMALIZE:
                            radial += g * tl.load(out_ptr + g_off, mask=ok1, other=0.0).to(ACC_DTYPE)
                            g = g * tl.load(inv1_ptr + (b * T + t) * plane + y1 * W + x1, mask=ok1, other=0.0)
                        w = tl.load(f1_frame + y1 * W + x1[None, :], mask=c_ok[:, None] & ok1[None, :],
                                    other=0.0)
                        part += g[None, :] * w.to(ACC_DTYPE)
        if NORMALIZE:
            own = tl.load(f2_ptr + tile, mask=tile_ok, other=0.0).to(ACC_DTYPE)
            inv = tl.load(inv2_ptr + pos, mask=x_ok, other=0.0)
            coef = tl.load(coef2_ptr + pos, mask=x_ok, other=0.0)
            part = part * inv[None, :] - own * (coef * radial)[None, :]
        else:
            part = part / C
        total += part
    tl.store(dst_ptr + tile, total.to(dst_ptr.dtype.element_ty), mask=tile_ok)


def _fwd_configs() -> list:
    """Forward tiles for H100-class GPUs: a [BLOCK_D, BLOCK_X] fp32 accumulator per program."""
    return [triton.Config({"BLOCK_X": bx, "BLOCK_D": bd}, num_warps=nw)
            for bx, bd, nw in [(32, 16, 4), (64, 16, 4), (32, 32, 4), (64, 32, 8), (128, 8, 4), (16, 64, 4)]]


def _bwd_configs() -> list:
    """Backward tiles for H100-class GPUs (BLOCK_C also splits the grid over channels)."""
    return [triton.Config({"BLOCK_X": bx, "BLOCK_C": bc}, num_warps=nw)
            for bx, bc, nw in [(32, 32, 4), (64, 16, 4), (32, 64, 8), (64, 32, 8), (16, 64, 4), (128, 16, 8)]]


# Small tiles under the interpreter, so that the tests' tiny maps still span several column, channel
# and displacement blocks (and so exercise every mask).
_INTERPRETER_FWD_CONFIG = {"BLOCK_X": 8, "BLOCK_D": 8}
_INTERPRETER_BWD_CONFIG = {"BLOCK_X": 8, "BLOCK_C": 4}
_AUTOTUNE_KEY = ["C", "W", "R", "STRIDE"]


@functools.cache
def _kernels(interpret: bool) -> tuple:
    """(forward, backward) launchers: autotuned ``triton.jit`` kernels, or interpreted ones (one config)."""
    require_triton("correlation")
    if interpret:
        return (triton.autotune([triton.Config(_INTERPRETER_FWD_CONFIG)], key=_AUTOTUNE_KEY)(
                    interpreted(_correlation_fwd_kernel)),
                triton.autotune([triton.Config(_INTERPRETER_BWD_CONFIG)], key=_AUTOTUNE_KEY)(
                    interpreted(_correlation_bwd_kernel)))
    return (triton.autotune(_fwd_configs(), key=_AUTOTUNE_KEY)(triton.jit(_correlation_fwd_kernel)),
            triton.autotune(_bwd_configs(), key=_AUTOTUNE_KEY)(triton.jit(_correlation_bwd_kernel)))


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _inverse_norms(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``1 / max(|f|, eps)`` over C and ``coef = 1/|f|^2`` (0 where clamped), each (B, 1, T, H, W)."""
    norm = torch.linalg.vector_norm(f, dim=1, keepdim=True, dtype=_acc_dtype(f.dtype))
    inv = norm.clamp_min(CORRELATION_EPS).reciprocal()
    return inv, torch.where(norm > CORRELATION_EPS, inv * inv, torch.zeros_like(inv))


def _triton_forward(f1: torch.Tensor, f2: torch.Tensor, out: torch.Tensor, radius: int, stride: int,
                    normalize: bool, shift: int) -> None:
    """Fill ``out`` (B, D, T, H, W) from contiguous f1, f2 (B, C, T, H, W); f2 is f1 for the temporal op."""
    fwd, _ = _kernels(interpret=not f1.is_cuda)
    size_b, channels, size_t, size_y, size_x = f1.shape
    inv1 = inv2 = out  # placeholders, never read without normalisation
    if normalize:
        inv1 = _inverse_norms(f1)[0]
        inv2 = inv1 if f2 is f1 else _inverse_norms(f2)[0]
    acc = tl.float64 if f1.dtype == torch.float64 else tl.float32

    def grid(meta):
        return size_b * size_t * size_y, triton.cdiv(size_x, meta["BLOCK_X"])

    fwd[grid](f1, f2, inv1, inv2, out, channels, size_t, size_y, size_x, radius, stride, shift,
              NORMALIZE=normalize, ACC_DTYPE=acc)


def _triton_backward(grad: torch.Tensor, f1: torch.Tensor, f2: torch.Tensor, out: torch.Tensor | None,
                     radius: int, stride: int, normalize: bool,
                     shift: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(df1, df2) of contiguous f1, f2 (B, C, T, H, W); for the temporal op (f2 is f1) both are dx."""
    _, bwd = _kernels(interpret=not f1.is_cuda)
    size_b, channels, size_t, size_y, size_x = f1.shape
    out = grad if out is None else out  # without normalisation out, inv and coef are placeholders, never read
    inv1 = inv2 = coef1 = coef2 = grad
    if normalize:
        inv1, coef1 = _inverse_norms(f1)
        inv2, coef2 = (inv1, coef1) if f2 is f1 else _inverse_norms(f2)
    acc = tl.float64 if f1.dtype == torch.float64 else tl.float32

    def grid(meta):
        return (size_b * size_t * size_y, triton.cdiv(size_x, meta["BLOCK_X"]),
                triton.cdiv(channels, meta["BLOCK_C"]))

    def launch(dst: torch.Tensor, as_f1: bool, as_f2: bool) -> torch.Tensor:
        bwd[grid](f1, f2, inv1, inv2, coef1, coef2, grad, out, dst,
                  channels, size_t, size_y, size_x, radius, stride, shift,
                  AS_F1=as_f1, AS_F2=as_f2, NORMALIZE=normalize, ACC_DTYPE=acc)
        return dst

    if f2 is f1:
        dx = launch(torch.empty_like(f1), True, True)
        return dx, dx
    return launch(torch.empty_like(f1), True, False), launch(torch.empty_like(f2), False, True)


# ---------------------------------------------------------------------------------------
# torch.library ops: one graph node each under torch.compile; `backend` is 'triton' or 'torch'.
# ---------------------------------------------------------------------------------------

@torch.library.custom_op("zoo::correlation", mutates_args=())
def _correlation_op(f1: torch.Tensor, f2: torch.Tensor, radius: int, stride: int, normalize: bool,
                    backend: str) -> torch.Tensor:
    if backend == "torch":
        return correlation_forward_reference(f1, f2, radius, stride, normalize)
    size_b, _, size_y, size_x = f1.shape
    out = f1.new_empty(size_b, (2 * radius + 1) ** 2, size_y, size_x)
    _triton_forward(f1.contiguous().unsqueeze(2), f2.contiguous().unsqueeze(2), out.unsqueeze(2),
                    radius, stride, normalize, shift=0)
    return out


@_correlation_op.register_fake
def _(f1, f2, radius, stride, normalize, backend):
    return f1.new_empty(f1.shape[0], (2 * radius + 1) ** 2, *f1.shape[2:])


@torch.library.custom_op("zoo::correlation_backward", mutates_args=())
def _correlation_backward_op(grad: torch.Tensor, f1: torch.Tensor, f2: torch.Tensor, out: torch.Tensor | None,
                             radius: int, stride: int, normalize: bool,
                             backend: str) -> tuple[torch.Tensor, torch.Tensor]:
    if backend == "torch":
        return correlation_backward_reference(grad, f1, f2, radius, stride, normalize)
    out = None if out is None else out.contiguous().unsqueeze(2)
    df1, df2 = _triton_backward(grad.contiguous().unsqueeze(2), f1.contiguous().unsqueeze(2),
                                f2.contiguous().unsqueeze(2), out, radius, stride, normalize, shift=0)
    return df1.squeeze(2), df2.squeeze(2)


@_correlation_backward_op.register_fake
def _(grad, f1, f2, out, radius, stride, normalize, backend):
    return torch.empty_like(f1), torch.empty_like(f2)


def _correlation_setup_context(ctx, inputs, output):
    f1, f2, radius, stride, normalize, backend = inputs
    ctx.args = (radius, stride, normalize, backend)
    ctx.save_for_backward(f1, f2, output if normalize and backend == "triton" else None)


def _correlation_backward(ctx, grad):
    f1, f2, out = ctx.saved_tensors
    df1, df2 = _correlation_backward_op(grad, f1, f2, out, *ctx.args)
    return df1, df2, None, None, None, None


_correlation_op.register_autograd(_correlation_backward, setup_context=_correlation_setup_context)


@torch.library.custom_op("zoo::temporal_correlation", mutates_args=())
def _temporal_correlation_op(x: torch.Tensor, radius: int, stride: int, normalize: bool,
                             backend: str) -> torch.Tensor:
    if backend == "torch":
        return correlation_forward_reference(x, None, radius, stride, normalize)
    x = x.contiguous()
    size_b, _, size_t, size_y, size_x = x.shape
    out = x.new_empty(size_b, (2 * radius + 1) ** 2, size_t, size_y, size_x)
    _triton_forward(x, x, out, radius, stride, normalize, shift=1)
    return out


@_temporal_correlation_op.register_fake
def _(x, radius, stride, normalize, backend):
    return x.new_empty(x.shape[0], (2 * radius + 1) ** 2, *x.shape[2:])


@torch.library.custom_op("zoo::temporal_correlation_backward", mutates_args=())
def _temporal_correlation_backward_op(grad: torch.Tensor, x: torch.Tensor, out: torch.Tensor | None,
                                      radius: int, stride: int, normalize: bool,
                                      backend: str) -> torch.Tensor:
    if backend == "torch":
        return correlation_backward_reference(grad, x, None, radius, stride, normalize)[0]
    x = x.contiguous()
    return _triton_backward(grad.contiguous(), x, x, None if out is None else out.contiguous(),
                            radius, stride, normalize, shift=1)[0]


@_temporal_correlation_backward_op.register_fake
def _(grad, x, out, radius, stride, normalize, backend):
    return torch.empty_like(x)


def _temporal_setup_context(ctx, inputs, output):
    x, radius, stride, normalize, backend = inputs
    ctx.args = (radius, stride, normalize, backend)
    ctx.save_for_backward(x, output if normalize and backend == "triton" else None)


def _temporal_backward(ctx, grad):
    x, out = ctx.saved_tensors
    return _temporal_correlation_backward_op(grad, x, out, *ctx.args), None, None, None, None


_temporal_correlation_op.register_autograd(_temporal_backward, setup_context=_temporal_setup_context)


# FLOPs for torch.utils.flop_counter (and so zoo.utils.count_flops): 2 per multiply-add of the C-long
# dot products, B*[T]*H*W*D of them; the backward computes both input gradients, twice the forward.
@register_flop_formula(torch.ops.zoo.correlation)
def _correlation_flops(f1_shape, *args, out_shape=None, **kwargs) -> int:
    b, c, h, w = f1_shape
    return 2 * b * c * h * w * out_shape[1]


@register_flop_formula(torch.ops.zoo.correlation_backward)
def _correlation_backward_flops(grad_shape, f1_shape, *args, **kwargs) -> int:
    b, d, h, w = grad_shape
    return 4 * b * f1_shape[1] * h * w * d


@register_flop_formula(torch.ops.zoo.temporal_correlation)
def _temporal_correlation_flops(x_shape, *args, out_shape=None, **kwargs) -> int:
    b, c, t, h, w = x_shape
    return 2 * b * c * t * h * w * out_shape[1]


@register_flop_formula(torch.ops.zoo.temporal_correlation_backward)
def _temporal_correlation_backward_flops(grad_shape, x_shape, *args, **kwargs) -> int:
    b, d, t, h, w = grad_shape
    return 4 * b * x_shape[1] * t * h * w * d


# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------

def _check_args(op: str, tensors: dict[str, torch.Tensor], ndim: int, layout: str, max_displacement: int,
                stride: int, backend: str) -> str:
    """Validate the inputs and return the backend to run ('triton' or 'torch')."""
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor of shape {layout}, got {type(t).__name__}")
        if t.ndim != ndim:
            raise ValueError(f"{name} must be {ndim}-D {layout}, got shape {tuple(t.shape)}")
        if t.dtype not in _DTYPES:
            raise ValueError(f"{name} must be float16, bfloat16, float32 or float64, got {t.dtype}")
        if t.numel() == 0:
            raise ValueError(f"{name} must be non-empty {layout}, got shape {tuple(t.shape)}")
    first, *others = tensors.items()
    for name, t in others:
        if t.shape != first[1].shape:
            raise ValueError(f"{first[0]} and {name} must have the same shape, got {tuple(first[1].shape)} "
                             f"and {tuple(t.shape)}")
        if t.dtype != first[1].dtype:
            raise ValueError(f"{first[0]} and {name} must have the same dtype, got {first[1].dtype} "
                             f"and {t.dtype}")
        if t.device != first[1].device:
            raise ValueError(f"{first[0]} and {name} must be on the same device, got {first[1].device} "
                             f"and {t.device}")
    if isinstance(max_displacement, bool) or not isinstance(max_displacement, int) or max_displacement < 0:
        raise ValueError(f"max_displacement must be an int >= 0 (pixels), got {max_displacement!r}")
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride must be an int >= 1 (pixels), got {stride!r}")
    device = first[1].device
    backend = resolve_backend(backend, device, op)
    if backend == "triton":
        if device.type not in ("cuda", "cpu"):
            raise ValueError(f"backend='triton' needs CUDA tensors (or CPU ones, interpreted), got {device}")
        planes = max(first[1].shape[1], (2 * (max_displacement // stride) + 1) ** 2)  # max(C, D)
        sample = planes * first[1][0, 0].numel()
        if sample >= 2**31:
            raise ValueError(f"backend='triton' indexes within a sample in int32: expected fewer than 2**31 "
                             f"elements per sample of the features and of the cost volume, got {sample}")
    return backend


def correlation(f1: torch.Tensor, f2: torch.Tensor, max_displacement: int, stride: int = 1,
                normalize: bool = True, backend: Backend = "auto") -> torch.Tensor:
    """Cost volume between two feature maps.

    Args:
        f1: (B, C, H, W) features, float16 / bfloat16 / float32 / float64.
        f2: (B, C, H, W) features, same dtype and device as f1.
        max_displacement: largest displacement in pixels; r = max_displacement // stride.
        stride: displacement stride in pixels (displacements are i*stride, j*stride for i, j in -r..r).
        normalize: cosine similarity if True (HCML), else the dot product divided by C (FlowNetC).
        backend: 'auto' (Triton on CUDA tensors, the PyTorch reference elsewhere), 'triton' (kernels;
            interpreted on CPU tensors) or 'torch' (reference).

    Returns:
        (B, (2r+1)^2, H, W) in f1's dtype; channel (i+r)*(2r+1) + (j+r) holds the similarity of
        f1[:, :, y, x] and f2[:, :, y + i*stride, x + j*stride], 0 where that leaves the map.
    """
    backend = _check_args("correlation", {"f1": f1, "f2": f2}, 4, "(B, C, H, W)", max_displacement, stride, backend)
    return _correlation_op(f1, f2, max_displacement // stride, stride, bool(normalize), backend)


def temporal_correlation(x: torch.Tensor, max_displacement: int, stride: int = 1, normalize: bool = True,
                         backend: Backend = "auto") -> torch.Tensor:
    """Cost volume between consecutive frames of a clip: frame t with t+1, the last frame with itself.

    Both frames of a pair are read from x; no shifted copy of the clip is made.

    Args:
        x: (B, C, T, H, W) features, float16 / bfloat16 / float32 / float64.
        max_displacement, stride, normalize, backend: as in :func:`correlation`.

    Returns:
        (B, (2r+1)^2, T, H, W) in x's dtype, r = max_displacement // stride.
    """
    backend = _check_args("temporal_correlation", {"x": x}, 5, "(B, C, T, H, W)", max_displacement, stride, backend)
    return _temporal_correlation_op(x, max_displacement // stride, stride, bool(normalize), backend)
