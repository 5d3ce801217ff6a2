"""zoo.kernels.info_nce against F.cross_entropy on the materialised logits.

The Triton kernels run through the Triton interpreter on CPU tensors (tiny shapes; K >= 16,
so tl.dot is valid on a GPU too), in this same process; the chunked PyTorch path runs
as it does on CPU in training. CUDA tests (marker ``cuda``) cover every dtype on a GPU.
"""
import functools

import pytest
import torch
import torch.nn.functional as F

from zoo.kernels import contrastive, info_nce, reference

BACKENDS = ["torch", "triton"]
TAU = 0.1


def _inputs(n: int, m: int, dim: int, seed: int = 0, scale: float = 1.0, device: str = "cpu"):
    """query (n, dim), keys (m, dim) float32 and arbitrary targets (n,) in [0, m), repeats allowed."""
    g = torch.Generator().manual_seed(seed)
    query = torch.randn(n, dim, generator=g) * scale
    keys = torch.randn(m, dim, generator=g) * scale
    target = torch.randint(0, m, (n,), generator=g)
    return query.to(device), keys.to(device), target.to(device)


def _oracle(query, keys, target, tau, normalize, reduction):
    """F.cross_entropy on the materialised float64 logits."""
    q, k = query.double(), keys.double()
    if normalize:
        q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
    return F.cross_entropy(q @ k.T / tau, target, reduction=reduction)


def _loss_and_grads(fn, query, keys, target, reduction, grad_seed=1):
    """fn's loss and (dq, dk), with a random upstream gradient for reduction='none'."""
    q = query.detach().clone().requires_grad_()
    k = keys.detach().clone().requires_grad_()
    loss = fn(q, k, target)
    upstream = torch.ones_like(loss)
    if reduction == "none":
        upstream = torch.randn(loss.shape, generator=torch.Generator().manual_seed(grad_seed)).to(loss)
    dq, dk = torch.autograd.grad(loss, (q, k), upstream)
    return loss, dq, dk


def _assert_matches_oracle(backend, query, keys, target, normalize=True, reduction="mean", tol=1e-5):
    def fused(q, k, t):
        return info_nce(q, k, t, TAU, normalize, reduction, backend=backend)

    def oracle(q, k, t):
        return _oracle(q, k, t, TAU, normalize, reduction)

    loss, dq, dk = _loss_and_grads(fused, query, keys, target, reduction)
    ref, ref_dq, ref_dk = _loss_and_grads(oracle, query.double(), keys.double(), target, reduction)
    assert loss.dtype == torch.float32 and loss.shape == ref.shape
    assert dq.dtype == query.dtype and dk.dtype == keys.dtype
    torch.testing.assert_close(loss.double(), ref, rtol=tol, atol=tol)
    torch.testing.assert_close(dq.double(), ref_dq, rtol=tol, atol=tol)
    torch.testing.assert_close(dk.double(), ref_dk, rtol=tol, atol=tol)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_matches_cross_entropy(backend, normalize, reduction):
    # N != M, arbitrary targets; the interpreter splits the 40 keys in two (flash-decoding path).
    query, keys, target = _inputs(24, 40, 16, scale=1.0 if normalize else 0.3)
    _assert_matches_oracle(backend, query, keys, target, normalize, reduction)


@pytest.mark.parametrize("backend", BACKENDS)
def test_square_case(backend):
    query, keys, _ = _inputs(32, 32, 32, seed=2)
    _assert_matches_oracle(backend, query, keys, torch.arange(32))


@pytest.mark.parametrize("backend", BACKENDS)
def test_feature_dim_beyond_one_tile(backend):
    # K = 48 > the interpreter's 32-wide K tile: two K tiles, the last one masked.
    query, keys, target = _inputs(20, 33, 48, seed=3)
    _assert_matches_oracle(backend, query, keys, target)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs(backend, dtype):
    query, keys, target = _inputs(24, 40, 16, seed=4)
    query, keys = query.to(dtype), keys.to(dtype)
    q, k = query.clone().requires_grad_(), keys.clone().requires_grad_()
    loss = info_nce(q, k, target, TAU, backend=backend)
    loss.backward()
    q64, k64 = query.double().requires_grad_(), keys.double().requires_grad_()
    ref = _oracle(q64, k64, target, TAU, True, "mean")
    ref.backward()
    assert loss.dtype == torch.float32 and q.grad.dtype == dtype and k.grad.dtype == dtype
    torch.testing.assert_close(loss.double(), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(q.grad.double(), q64.grad, rtol=2e-2, atol=1e-3)
    torch.testing.assert_close(k.grad.double(), k64.grad, rtol=2e-2, atol=1e-3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_detached_key_queue(backend, monkeypatch):
    """MoCo: keys = [batch keys (with grad), queue (detached)]; a fully detached queue gets no dK."""
    query, batch_keys, target = _inputs(16, 16, 16, seed=5)
    queue = torch.randn(24, 16, generator=torch.Generator().manual_seed(6))
    keys_grad_flags = []
    # The 'torch' path computes the gradients in its forward pass when the rows are reduced (keys_grad last).
    for name in ("_triton_backward", "info_nce_chunked_backward", "info_nce_chunked_forward_with_grads"):
        original = getattr(contrastive, name)

        def spy(*args, original=original):
            keys_grad_flags.append(args[-1])
            return original(*args)

        monkeypatch.setattr(contrastive, name, spy)

    q = query.clone().requires_grad_()
    k = batch_keys.clone().requires_grad_()
    loss = info_nce(q, torch.cat([k, queue]), target, TAU, backend=backend)
    loss.backward()
    q64, k64 = query.double().requires_grad_(), batch_keys.double().requires_grad_()
    _oracle(q64, torch.cat([k64, queue.double()]), target, TAU, True, "mean").backward()
    torch.testing.assert_close(q.grad.double(), q64.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(k.grad.double(), k64.grad, rtol=1e-5, atol=1e-5)

    q.grad = None
    info_nce(q, queue, target % 24, TAU, backend=backend).backward()
    q64.grad = None
    _oracle(q64, queue.double(), target % 24, TAU, True, "mean").backward()
    torch.testing.assert_close(q.grad.double(), q64.grad, rtol=1e-5, atol=1e-5)
    assert queue.grad is None
    assert keys_grad_flags == [True, False]


@pytest.mark.parametrize("backend", BACKENDS)
def test_return_accuracy(backend):
    query, keys, _ = _inputs(24, 40, 16, seed=7)
    target = torch.randperm(40, generator=torch.Generator().manual_seed(7))[:24]
    # Make the positive the most similar key for the first 10 rows only.
    keys[target[:10]] = query[:10] + 0.01 * keys[target[:10]]
    keys[target[10:]] = -query[10:]
    loss, accuracy = info_nce(query, keys, target, TAU, return_accuracy=True, backend=backend)
    logits = F.normalize(query, dim=1) @ F.normalize(keys, dim=1).T
    expected = (logits.argmax(dim=1) == target).double().mean()
    assert accuracy.shape == () and not accuracy.requires_grad
    assert accuracy.item() == pytest.approx(expected.item()) and 0.0 < accuracy.item() < 1.0
    torch.testing.assert_close(loss, info_nce(query, keys, target, TAU, backend=backend))


@pytest.mark.parametrize("normalize", [True, False])
def test_gradcheck_chunked_reference(normalize):
    query, keys, target = _inputs(7, 9, 5, seed=8)
    q, k = query.double().requires_grad_(), keys.double().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda q, k: reference.info_nce_chunked(q, k, target, 0.5, normalize, "mean", chunk_size=3), (q, k)
    )


def test_gradcheck_torch_backend(monkeypatch):
    # Three rows per chunk: the public op runs several chunks, forward and backward.
    monkeypatch.setattr(reference, "INFO_NCE_CHUNK_ELEMENTS", 27)
    query, keys, target = _inputs(7, 9, 5, seed=9)
    q, k = query.double().requires_grad_(), keys.double().requires_grad_()
    assert torch.autograd.gradcheck(lambda q, k: info_nce(q, k, target, 0.5, reduction="none"), (q, k))


@pytest.mark.parametrize("backend", ["auto", "triton"])
def test_torch_compile_fullgraph(backend):
    query, keys, target = _inputs(24, 40, 16, seed=10)

    def step(q, k, t):
        loss, accuracy = info_nce(q, k, t, TAU, return_accuracy=True, backend=backend)
        return 2.0 * loss, accuracy

    torch._dynamo.reset()
    compiled = torch.compile(step, fullgraph=True)
    results = []
    for fn in (step, compiled):
        q, k = query.clone().requires_grad_(), keys.clone().requires_grad_()
        loss, accuracy = fn(q, k, target)
        loss.backward()
        results.append((loss, accuracy, q.grad, k.grad))
    for eager, traced in zip(*results):
        torch.testing.assert_close(traced, eager)


_Q, _K, _T = _inputs(4, 6, 16)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"keys": torch.randn(6, 8)}, r"share K, got 16 and 8"),
        ({"query": torch.randn(16)}, r"expected query \(N, K\) and keys \(M, K\)"),
        ({"target": torch.zeros(5, dtype=torch.long)}, r"target of shape \(N,\) = \(4,\), got \(5,\)"),
        ({"target": torch.tensor([0, 1, 2, 6])}, r"indices of keys in \[0, 6\), got values in \[0, 6\]"),
        ({"target": torch.tensor([0, -1, 2, 3])}, r"indices of keys in \[0, 6\), got values in \[-1, 3\]"),
        ({"target": torch.zeros(4)}, r"target must be an integer tensor"),
        ({"temperature": 0.0}, r"temperature must be a finite float > 0, got 0.0"),
        ({"temperature": -0.07}, r"temperature must be a finite float > 0"),
        ({"temperature": torch.tensor(0.1)}, r"temperature must be a Python float"),
        ({"query": torch.ones(4, 16, dtype=torch.long)}, r"share a floating dtype"),
        ({"keys": torch.randn(6, 16, dtype=torch.float64)}, r"dtype .*got torch.float32 and torch.float64"),
        ({"keys": torch.randn(6, 16, device="meta")}, r"on one device"),
        ({"reduction": "avg"}, r"reduction must be one of"),
        ({"backend": "cuda"}, r"backend must be one of"),
        (
            {"query": _Q.double(), "keys": _K.double(), "backend": "triton"},
            r"backend='triton' takes float32, float16 or bfloat16",
        ),
    ],
)
def test_bad_inputs_raise_value_error(kwargs, message):
    args = {"query": _Q, "keys": _K, "target": _T, "temperature": TAU, **kwargs}
    with pytest.raises(ValueError, match=message):
        info_nce(**args)


# ---------------------------------------------------------------------------------------
# On a GPU
# ---------------------------------------------------------------------------------------

CUDA_TOL = {torch.float32: (1e-4, 1e-5), torch.float16: (2e-2, 1e-3), torch.bfloat16: (5e-2, 5e-3)}


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("normalize", [True, False])
# Ragged tiles; few queries against many keys (key splits); K not a power of two; K > one 256-wide tile.
@pytest.mark.parametrize(
    ("n", "m", "dim"), [(300, 700, 128), (64, 5000, 256), (1000, 1000, 96), (32, 300, 320)]
)
def test_cuda_matches_cross_entropy(dtype, normalize, n, m, dim):
    query, keys, target = _inputs(n, m, dim, scale=1.0 if normalize else 0.1, device="cuda")
    query, keys = query.to(dtype), keys.to(dtype)
    rtol, atol = CUDA_TOL[dtype]
    prev_tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False  # float32 kernels then use exact fp32 tl.dot
    try:
        loss, dq, dk = _loss_and_grads(
            lambda q, k, t: info_nce(q, k, t, TAU, normalize), query, keys, target, "mean"
        )
        _, accuracy = info_nce(query, keys, target, TAU, normalize, return_accuracy=True)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = prev_tf32
    ref, ref_dq, ref_dk = _loss_and_grads(
        functools.partial(_oracle, tau=TAU, normalize=normalize, reduction="mean"),
        query.double(), keys.double(), target, "mean",
    )
    torch.testing.assert_close(loss.double(), ref, rtol=rtol, atol=atol)
    torch.testing.assert_close(dq.double(), ref_dq, rtol=rtol, atol=atol * 10)
    torch.testing.assert_close(dk.double(), ref_dk, rtol=rtol, atol=atol * 10)
    q, k = query.double(), keys.double()
    if normalize:
        q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
    expected = ((q @ k.T).argmax(dim=1) == target).double().mean()
    assert accuracy.item() == pytest.approx(expected.item(), abs=2.0 / n)


@pytest.mark.cuda
def test_cuda_detached_queue_and_compile():
    query, batch_keys, target = _inputs(128, 128, 128, device="cuda")
    queue = torch.randn(4096, 128, device="cuda")
    q, k = query.clone().requires_grad_(), batch_keys.clone().requires_grad_()
    step = torch.compile(lambda q, k: info_nce(q, torch.cat([k, queue]), target, TAU), fullgraph=True)
    step(q, k).backward()
    q64, k64 = query.double().requires_grad_(), batch_keys.double().requires_grad_()
    _oracle(q64, torch.cat([k64, queue.double()]), target, TAU, True, "mean").backward()
    torch.testing.assert_close(q.grad.double(), q64.grad, rtol=1e-3, atol=1e-5)
    torch.testing.assert_close(k.grad.double(), k64.grad, rtol=1e-3, atol=1e-5)
