"""Pure-PyTorch references for the kernels: the CPU path and the oracle of the tests.

Each section belongs to one op; shapes and semantics are those of the :mod:`zoo.kernels` docstring.
"""
import functools

import torch

# ---------------------------------------------------------------------------------------
# Correlation (cost volume)
# ---------------------------------------------------------------------------------------
# Layout (zoo.kernels docstring): f1, f2 (B, C, H, W) -> (B, D, H, W), D = (2r+1)^2, r = max_displacement // stride,
# channel (i+r)*(2r+1) + (j+r) holding sim(f1(y, x), f2(y + i*stride, x + j*stride)), 0 outside the map.
# Internally every feature map is (B, C, T, H, W) (T = 1 for the spatial op) and a list of frame pairs
# (t-slice of the output, t-slice of f1, t-slice of f2) says which frames meet, so the temporal op pairs
# views of one tensor and never copies a shifted clip. Memory: the unit-norm (or upcast) features, one
# elementwise product per displacement and the output: O(inputs + output), never D copies of the features.

CORRELATION_EPS = 1e-12
"""Norms are clamped to at least this before dividing (as in ``torch.nn.functional.normalize``)."""


def _frame_pairs(f1: torch.Tensor, f2: torch.Tensor | None) -> list[tuple[slice, slice, slice]]:
    """(output frames, f1 frames, f2 frames) slices along T.

    ``f2=None`` is the temporal op: frame t meets t+1 and the last frame meets itself.
    """
    if f2 is not None:
        return [(slice(None), slice(None), slice(None))]
    t = f1.shape[2]
    pairs = [(slice(t - 1, t), slice(t - 1, t), slice(t - 1, t))]
    if t > 1:
        pairs.insert(0, (slice(0, t - 1), slice(0, t - 1), slice(1, t)))
    return pairs


def _overlaps(size_y: int, size_x: int, radius: int, stride: int):
    """For each displacement k = (i+r)*(2r+1) + (j+r): k and the (dst, src) slices of rows and columns.

    ``dst`` selects positions p whose partner p + (i*stride, j*stride) lies inside the map, ``src`` the
    partners; displacements that leave the map entirely are skipped (their output stays 0).
    """
    n = 2 * radius + 1
    for k in range(n * n):
        dy, dx = (k // n - radius) * stride, (k % n - radius) * stride
        y0, y1 = max(0, -dy), min(size_y, size_y - dy)
        x0, x1 = max(0, -dx), min(size_x, size_x - dx)
        if y1 > y0 and x1 > x0:
            yield k, (slice(y0, y1), slice(x0, x1)), (slice(y0 + dy, y1 + dy), slice(x0 + dx, x1 + dx))


def _unit_features(f: torch.Tensor, normalize: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Features in the accumulation dtype (fp32, or fp64 for fp64 input), unit-norm over C when ``normalize``.

    Returns ``(features, norm)`` with ``norm`` (B, 1, T, H, W) the unclamped norm over C, or None.
    """
    f = f.to(torch.float64 if f.dtype == torch.float64 else torch.float32)
    if not normalize:
        return f, None
    # sqrt(sum of squares) over C: linalg.vector_norm's CPU kernel is ~10x slower across a strided dim like this one.
    norm = f.square().sum(dim=1, keepdim=True).sqrt_()
    return f / norm.clamp_min(CORRELATION_EPS), norm


def correlation_forward_reference(
        f1: torch.Tensor, f2: torch.Tensor | None, radius: int, stride: int, normalize: bool) -> torch.Tensor:
    """Cost volume by a loop over the (2r+1)^2 displacements, each a shifted product summed over C.

    Args:
        f1: (B, C, H, W) features, or the clip (B, C, T, H, W) when ``f2`` is None.
        f2: (B, C, H, W) features, or None for the temporal op (frame t with t+1, the last with itself).
        radius: r, displacements ``i*stride, j*stride`` for i, j in -r..r.
        stride: displacement stride in pixels.
        normalize: cosine similarity if True, else the dot product divided by C.

    Returns:
        (B, D, H, W), or (B, D, T, H, W) for the temporal op, in f1's dtype (accumulated in fp32 or fp64).
    """
    spatial = f2 is not None
    x1 = f1.unsqueeze(2) if spatial else f1
    a, _ = _unit_features(x1, normalize)
    b = _unit_features(f2.unsqueeze(2), normalize)[0] if spatial else a
    size_b, channels, size_t, size_y, size_x = a.shape
    n = 2 * radius + 1
    out = a.new_zeros(size_b, n * n, size_t, size_y, size_x)
    for t_out, t1, t2 in _frame_pairs(x1, f2):
        a_t, b_t, out_t = a[:, :, t1], b[:, :, t2], out[:, :, t_out]
        for k, (ys, xs), (ys2, xs2) in _overlaps(size_y, size_x, radius, stride):
            out_t[:, k, :, ys, xs] = (a_t[..., ys, xs] * b_t[..., ys2, xs2]).sum(1)
    if not normalize:
        out /= channels
    out = out.to(f1.dtype)
    return out.squeeze(2) if spatial else out


def correlation_backward_reference(
        grad: torch.Tensor, f1: torch.Tensor, f2: torch.Tensor | None, radius: int, stride: int,
        normalize: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Gradients of :func:`correlation_forward_reference` by the same loop over displacements.

    With a = f1 / |f1| and b = f2 / |f2|: G_a(p) = sum_d g(p, d) b(p + d) and
    G_b(q) = sum_d g(q - d, d) a(q - d); the normalisation's chain rule is
    df1 = (G_a - a <a, G_a>) / |f1| (just G_a / eps where the norm is clamped), and without
    normalisation df1 = G_a / C. Same for f2 with G_b.

    Args:
        grad: gradient of the output, (B, D, H, W) or (B, D, T, H, W).
        f1, f2, radius, stride, normalize: as in :func:`correlation_forward_reference`.

    Returns:
        ``(df1, df2)`` in the inputs' dtypes; for the temporal op ``(dx, None)``.
    """
    spatial = f2 is not None
    x1 = f1.unsqueeze(2) if spatial else f1
    a, norm_a = _unit_features(x1, normalize)
    b, norm_b = _unit_features(f2.unsqueeze(2), normalize) if spatial else (a, norm_a)
    g = (grad.unsqueeze(2) if spatial else grad).to(a.dtype)
    size_y, size_x = a.shape[-2:]
    grad_a = torch.zeros_like(a)
    grad_b = torch.zeros_like(b) if spatial else grad_a  # temporal: both roles are frames of one clip
    for t_out, t1, t2 in _frame_pairs(x1, f2):
        a_t, b_t, g_t = a[:, :, t1], b[:, :, t2], g[:, :, t_out]
        ga_t, gb_t = grad_a[:, :, t1], grad_b[:, :, t2]
        for k, (ys, xs), (ys2, xs2) in _overlaps(size_y, size_x, radius, stride):
            g_k = g_t[:, k, :, ys, xs].unsqueeze(1)
            ga_t[..., ys, xs].addcmul_(g_k, b_t[..., ys2, xs2])  # in place: no temporary per displacement
            gb_t[..., ys2, xs2].addcmul_(g_k, a_t[..., ys, xs])

    def chain(grad_unit: torch.Tensor, unit: torch.Tensor, norm: torch.Tensor | None) -> torch.Tensor:
        if norm is None:
            return grad_unit / unit.shape[1]
        radial = (unit * grad_unit).sum(1, keepdim=True) * (norm > CORRELATION_EPS)
        return (grad_unit - unit * radial) / norm.clamp_min(CORRELATION_EPS)

    if not spatial:
        return chain(grad_a, a, norm_a).to(f1.dtype), None
    return (chain(grad_a, a, norm_a).squeeze(2).to(f1.dtype),
            chain(grad_b, b, norm_b).squeeze(2).to(f2.dtype))


class _CorrelationReference(torch.autograd.Function):
    """Autograd of the reference: saves only the inputs, and its backward loops like the forward."""

    @staticmethod
    def forward(ctx, f1, f2, radius, stride, normalize):
        ctx.save_for_backward(f1, f2)
        ctx.args = (radius, stride, normalize)
        return correlation_forward_reference(f1, f2, radius, stride, normalize)

    @staticmethod
    def backward(ctx, grad):
        f1, f2 = ctx.saved_tensors
        df1, df2 = correlation_backward_reference(grad.contiguous(), f1, f2, *ctx.args)
        return df1, df2, None, None, None


class _TemporalCorrelationReference(torch.autograd.Function):
    """Autograd of the temporal reference (one clip, so one gradient)."""

    @staticmethod
    def forward(ctx, x, radius, stride, normalize):
        ctx.save_for_backward(x)
        ctx.args = (radius, stride, normalize)
        return correlation_forward_reference(x, None, radius, stride, normalize)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        dx, _ = correlation_backward_reference(grad.contiguous(), x, None, *ctx.args)
        return dx, None, None, None


def correlation_reference(
        f1: torch.Tensor, f2: torch.Tensor, max_displacement: int, stride: int = 1,
        normalize: bool = True) -> torch.Tensor:
    """Differentiable PyTorch cost volume: f1, f2 (B, C, H, W) -> (B, (2r+1)^2, H, W).

    r = max_displacement // stride. Semantics of :func:`zoo.kernels.correlation`, which validates its
    inputs; this does not.
    """
    return _CorrelationReference.apply(f1, f2, max_displacement // stride, stride, normalize)


def temporal_correlation_reference(
        x: torch.Tensor, max_displacement: int, stride: int = 1, normalize: bool = True) -> torch.Tensor:
    """Differentiable PyTorch cost volume of a clip x (B, C, T, H, W) -> (B, (2r+1)^2, T, H, W).

    Frame t meets frame t+1 and the last frame meets itself; the pairs are views of x, never a shifted copy.
    """
    return _TemporalCorrelationReference.apply(x, max_displacement // stride, stride, normalize)


# ---------------------------------------------------------------------------------------
# InfoNCE (contrastive similarity)
# ---------------------------------------------------------------------------------------
# Notation: query (N, K), keys (M, K), target (N,) the index of each row's positive key,
# s_ij the cosine similarity (normalize=True) or the dot product, tau the temperature,
# loss_i = logsumexp_j(s_ij / tau) - s_{i,target_i} / tau.

INFO_NCE_CHUNK_ELEMENTS = 1 << 21
"""Logits per chunk of the chunked path (8 MiB in float32): its peak memory is O(chunk x M). Halving it from 16 MiB
kept the time (chunks of 256 rows at M = 8192 still make large matmuls) and brought the peak under a tenth of the
materialised loss's from 8192 x 8192 x 256 up (benchmarks/contrastive.py)."""

INFO_NCE_NORM_EPS = 1e-12
"""Floor of the norm when normalising, as in ``torch.nn.functional.normalize``."""


def _without_autocast(fn):
    """Run ``fn`` with autocast off: the chunked path computes in its accumulation dtype (float32/float64), as its
    docstrings say, also when called under ``torch.autocast`` (which would otherwise make its matmuls bf16)."""
    @functools.wraps(fn)
    def wrapper(query: torch.Tensor, *args, **kwargs):
        with torch.autocast(query.device.type, enabled=False):
            return fn(query, *args, **kwargs)
    return wrapper


def info_nce_materialized(
    query: torch.Tensor,
    keys: torch.Tensor,
    target: torch.Tensor,
    temperature: float,
    normalize: bool = True,
    reduction: str = "mean",
) -> torch.Tensor:
    """InfoNCE the textbook way: normalise, one matmul to the (N, M) logits, cross-entropy.

    The benchmark's baseline and an oracle of the tests. Memory grows with N x M.
    Computes in the input dtype, as user code calling ``F.cross_entropy`` does.
    """
    if normalize:
        query = torch.nn.functional.normalize(query, dim=1, eps=INFO_NCE_NORM_EPS)
        keys = torch.nn.functional.normalize(keys, dim=1, eps=INFO_NCE_NORM_EPS)
    logits = query @ keys.T / temperature
    return torch.nn.functional.cross_entropy(logits, target.long(), reduction=reduction)


def info_nce_accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 for float64 inputs, float32 for float32/float16/bfloat16."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def info_nce_inverse_norm(x: torch.Tensor) -> torch.Tensor:
    """``1 / max(||x_r||, eps)`` per row of x (R, K), in the accumulation dtype: shape (R,)."""
    norm = torch.linalg.vector_norm(x, dim=1, dtype=info_nce_accumulation_dtype(x.dtype))
    return norm.clamp_min(INFO_NCE_NORM_EPS).reciprocal()


def info_nce_normalize_backward(x: torch.Tensor, grad_unit: torch.Tensor) -> torch.Tensor:
    """Gradient w.r.t. x (R, K) of ``x_hat = x / max(||x||, eps)``, given ``grad_unit = dL/dx_hat``.

    ``dx = (g - x_hat (x_hat . g)) / ||x||`` where the norm exceeds eps, ``g / eps`` where it
    is clamped (what autograd gives through ``F.normalize``). Returned in grad_unit's dtype,
    with one (R, K) buffer besides grad_unit (einsum contracts without a product temporary).
    """
    norm = torch.linalg.vector_norm(x, dim=1, dtype=grad_unit.dtype)
    inv_norm = norm.clamp_min(INFO_NCE_NORM_EPS).reciprocal()
    out = x.to(grad_unit.dtype, copy=True).mul_(inv_norm[:, None])  # x_hat
    radial = torch.einsum("rk,rk->r", out, grad_unit).masked_fill_(norm <= INFO_NCE_NORM_EPS, 0.0)
    out.mul_(radial[:, None]).neg_().add_(grad_unit)
    return out.mul_(inv_norm[:, None])


def info_nce_reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    """Apply 'mean', 'sum' or 'none' to the per-row losses (N,)."""
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _info_nce_operands(
    query: torch.Tensor, keys: torch.Tensor, normalize: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """query and keys in the accumulation dtype, scaled to unit rows when normalize."""
    dtype = info_nce_accumulation_dtype(query.dtype)
    q, k = query.to(dtype), keys.to(dtype)
    if normalize:
        q = q * info_nce_inverse_norm(query)[:, None]
        k = k * info_nce_inverse_norm(keys)[:, None]
    return q, k


def _info_nce_chunk_rows(num_rows: int, num_keys: int, chunk_size: int | None) -> int:
    """Query rows per chunk: chunk_size, or as many as fit INFO_NCE_CHUNK_ELEMENTS logits."""
    rows = chunk_size if chunk_size is not None else INFO_NCE_CHUNK_ELEMENTS // max(num_keys, 1)
    return max(1, min(rows, num_rows))


@_without_autocast
def info_nce_chunked_forward(
    query: torch.Tensor,
    keys: torch.Tensor,
    target: torch.Tensor,
    temperature: float,
    normalize: bool,
    chunk_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-row InfoNCE, one chunk of query rows at a time: peak memory O(chunk x M).

    Args:
        query: (N, K) floating.
        keys: (M, K), same dtype and device.
        target: (N,) integer indices into keys, in [0, M).
        temperature: tau > 0.
        normalize: cosine similarity if True, dot product otherwise.
        chunk_size: query rows per chunk; default INFO_NCE_CHUNK_ELEMENTS // M.

    Returns:
        loss (N,), the natural-log logsumexp of the row's logits s/tau (N,) (what the
        backward needs), and correct (N,) bool: the positive's similarity is the row's
        highest (ties count as correct). loss and lse are float32 (float64 for float64 input).
    """
    q, k = _info_nce_operands(query, keys, normalize)
    q = q * (1.0 / temperature)
    target = target.long()
    num_rows = q.shape[0]
    chunk = _info_nce_chunk_rows(num_rows, k.shape[0], chunk_size)
    loss = q.new_empty(num_rows)
    lse = q.new_empty(num_rows)
    correct = torch.empty(num_rows, dtype=torch.bool, device=q.device)
    for start in range(0, num_rows, chunk):
        rows = slice(start, start + chunk)
        logits = q[rows] @ k.T  # the chunk's only (chunk, M) buffer, then updated in place
        positive = logits.gather(1, target[rows, None]).squeeze(1)
        row_max = logits.amax(dim=1)
        lse[rows] = logits.sub_(row_max[:, None]).exp_().sum(dim=1).log_().add_(row_max)
        loss[rows] = lse[rows] - positive
        correct[rows] = positive >= row_max
    return loss, lse, correct


@_without_autocast
def info_nce_chunked_backward(
    grad_loss: torch.Tensor,
    query: torch.Tensor,
    keys: torch.Tensor,
    target: torch.Tensor,
    lse: torch.Tensor,
    temperature: float,
    normalize: bool,
    needs_keys_grad: bool,
    chunk_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Gradients of ``sum_i grad_loss_i * loss_i``, recomputing each chunk's logits.

    ``dL/ds_ij = grad_loss_i / tau * (softmax_j(s_i / tau) - [j == target_i])``; then
    ``dq = dL/ds @ k`` and ``dk = dL/ds^T @ q`` (through the normalisation when normalize).
    Peak memory O(chunk x M) besides the (N, K) and (M, K) gradients.

    Args:
        grad_loss: (N,) gradient of the per-row losses.
        lse: (N,) from :func:`info_nce_chunked_forward`.
        needs_keys_grad: False for a detached key queue: dk is then not computed.
        Others as in :func:`info_nce_chunked_forward`.

    Returns:
        dq (N, K) in query's dtype, dk (M, K) in keys' dtype or None.
    """
    q, k = _info_nce_operands(query, keys, normalize)
    target = target.long()
    num_rows = q.shape[0]
    chunk = _info_nce_chunk_rows(num_rows, k.shape[0], chunk_size)
    q_over_tau = q * (1.0 / temperature)
    grad_logits_scale = grad_loss.to(q.dtype) / temperature
    dq = torch.empty_like(q)
    dk = torch.zeros_like(k) if needs_keys_grad else None
    for start in range(0, num_rows, chunk):
        rows = slice(start, start + chunk)
        grad_s = q_over_tau[rows] @ k.T  # logits, turned in place into dL/ds
        grad_s.sub_(lse[rows, None]).exp_()
        grad_s[torch.arange(grad_s.shape[0], device=q.device), target[rows]] -= 1.0
        grad_s.mul_(grad_logits_scale[rows, None])
        dq[rows] = grad_s @ k
        if dk is not None:
            dk.addmm_(grad_s.T, q[rows])
    if normalize:
        dq = info_nce_normalize_backward(query, dq)
        dk = info_nce_normalize_backward(keys, dk) if dk is not None else None
    return dq.to(query.dtype), (dk.to(keys.dtype) if dk is not None else None)


@_without_autocast
def info_nce_chunked_forward_with_grads(
    query: torch.Tensor,
    keys: torch.Tensor,
    target: torch.Tensor,
    temperature: float,
    normalize: bool,
    query_grad: bool = True,
    keys_grad: bool = True,
    chunk_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`info_nce_chunked_forward` and, in the same pass over the chunks, the gradients of ``sum_i loss_i``.

    The chunked backward recomputes every chunk's logits: four matmuls against the materialised
    loss's three. When the per-row losses are summed or averaged (``reduction='mean'`` or ``'sum'``),
    every row's upstream gradient is the same scalar g, so the gradients are those of ``sum_i loss_i``
    times g, and they can be accumulated while each chunk's softmax is at hand:
    ``dq = (P - Y) k_hat / tau`` and ``dk = (P - Y)^T q_hat / tau`` (through the normalisation), P the
    chunk's softmax and Y its one-hot targets. Three matmuls, as the materialised loss; the backward
    only scales them by g. Peak memory O(chunk x M) plus the (N, K) and (M, K) gradients.

    ``dq``'s row i is the gradient of ``loss_i`` alone, so ``grad_loss[:, None] * dq`` is exact for any
    per-row upstream gradient; ``dk`` sums over rows, so ``g * dk`` needs the uniform g.

    Args:
        query_grad, keys_grad: which gradients to compute (a detached MoCo queue needs no ``dk``).
        Others as in :func:`info_nce_chunked_forward`.

    Returns:
        ``(loss, lse, correct, dq, dk)``: the first three as :func:`info_nce_chunked_forward`'s; ``dq`` (N, K)
        and ``dk`` (M, K) in the accumulation dtype, each an empty ``(0, K)`` tensor when not asked for.
    """
    dtype = info_nce_accumulation_dtype(query.dtype)
    # Each chunk's rows of q_hat / tau are made as the chunk needs them (no (N, K) copy of the queries): the
    # logits need no further scaling, and (P - Y)^T (q_hat / tau) is dk_hat.
    scale = info_nce_inverse_norm(query) / temperature if normalize else \
        torch.full((query.shape[0],), 1.0 / temperature, dtype=dtype, device=query.device)
    k = keys.to(dtype).mul(info_nce_inverse_norm(keys)[:, None]) if normalize else keys.to(dtype)
    target = target.long()
    num_rows, dim = query.shape
    chunk = _info_nce_chunk_rows(num_rows, k.shape[0], chunk_size)
    loss = k.new_empty(num_rows)
    lse = k.new_empty(num_rows)
    correct = torch.empty(num_rows, dtype=torch.bool, device=k.device)
    dq = k.new_empty((num_rows, dim) if query_grad else (0, dim))
    dk = k.new_zeros(k.shape if keys_grad else (0, dim))
    logits = q_rows = None  # (no chunk at all for an empty batch)
    for start in range(0, num_rows, chunk):
        rows = slice(start, start + chunk)
        q_rows = query[rows].to(dtype).mul(scale[rows, None])
        logits = q_rows @ k.T  # the chunk's only (chunk, M) buffer: logits, then P - Y in place
        positive = logits.gather(1, target[rows, None]).squeeze(1)
        row_max = logits.amax(dim=1)
        sums = logits.sub_(row_max[:, None]).exp_().sum(dim=1)
        lse[rows] = sums.log().add_(row_max)
        loss[rows] = lse[rows] - positive
        correct[rows] = positive >= row_max
        if query_grad or keys_grad:
            logits.div_(sums[:, None])
            logits[torch.arange(logits.shape[0], device=k.device), target[rows]] -= 1.0
            if query_grad:  # products in the buffers' dtype (under autocast a matmul's output may not be)
                dq[rows] = torch.mm(logits.to(dq.dtype), k.to(dq.dtype))
            if keys_grad:
                dk.addmm_(logits.T.to(dk.dtype), q_rows.to(dk.dtype))
    del logits, q_rows, k  # the chunk and the keys' copy go before the normalisation's backward needs its buffers
    if query_grad:
        dq.div_(temperature)
        if normalize:
            dq = info_nce_normalize_backward(query, dq)
    if keys_grad and normalize:
        dk = info_nce_normalize_backward(keys, dk)
    return loss, lse, correct, dq, dk


class InfoNCEChunked(torch.autograd.Function):
    """Autograd of the chunked path: saves only the per-row LSE, recomputes chunks in backward."""

    @staticmethod
    def forward(ctx, query, keys, target, temperature, normalize, chunk_size):
        loss, lse, _ = info_nce_chunked_forward(query, keys, target, temperature, normalize, chunk_size)
        ctx.save_for_backward(query, keys, target, lse)
        ctx.temperature, ctx.normalize, ctx.chunk_size = temperature, normalize, chunk_size
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        query, keys, target, lse = ctx.saved_tensors
        dq, dk = info_nce_chunked_backward(
            grad_loss, query, keys, target, lse, ctx.temperature, ctx.normalize,
            ctx.needs_input_grad[1], ctx.chunk_size,
        )
        return dq, dk, None, None, None, None


def info_nce_chunked(
    query: torch.Tensor,
    keys: torch.Tensor,
    target: torch.Tensor,
    temperature: float,
    normalize: bool = True,
    reduction: str = "mean",
    chunk_size: int | None = None,
) -> torch.Tensor:
    """The chunked InfoNCE with its own backward, as plain PyTorch (no validation).

    ``zoo.kernels.info_nce(..., backend='torch')`` runs the same forward and backward
    behind a custom op; this eager form is the reference the tests gradcheck.
    """
    loss = InfoNCEChunked.apply(query, keys, target, temperature, normalize, chunk_size)
    return info_nce_reduce(loss, reduction)
