"""Correlation (cost volume): reference vs brute force, Triton kernels vs reference, ops and errors.

Without a GPU the Triton kernels run under the Triton interpreter (``backend='triton'`` on CPU
tensors), about 0.3 ms per op per program, so those shapes are tiny; they still span several column,
channel and displacement blocks of the interpreter's tile sizes, odd sizes included. CUDA tests (marker
``cuda``) compare every dtype with an fp64 reference at realistic sizes.
"""
import importlib

import pytest
import torch

from zoo.kernels.correlation import correlation, temporal_correlation
from zoo.kernels.reference import CORRELATION_EPS, correlation_reference, temporal_correlation_reference


def brute_force(f1: torch.Tensor, f2: torch.Tensor, max_displacement: int, stride: int, normalize: bool):
    """The definition of the zoo.kernels docstring, one output element at a time (fp64)."""
    r = max_displacement // stride
    n = 2 * r + 1
    size_b, channels, size_y, size_x = f1.shape
    out = torch.zeros(size_b, n * n, size_y, size_x, dtype=torch.float64)
    for b in range(size_b):
        for i in range(-r, r + 1):
            for j in range(-r, r + 1):
                for y in range(size_y):
                    for x in range(size_x):
                        y2, x2 = y + i * stride, x + j * stride
                        if not (0 <= y2 < size_y and 0 <= x2 < size_x):
                            continue
                        u, v = f1[b, :, y, x].double(), f2[b, :, y2, x2].double()
                        if normalize:
                            u, v = (w / w.norm().clamp_min(CORRELATION_EPS) for w in (u, v))
                            sim = u @ v
                        else:
                            sim = u @ v / channels
                        out[b, (i + r) * n + (j + r), y, x] = sim
    return out


def features(*shape, dtype=torch.float32, zero_at=None, seed=0, device="cpu"):
    """Random leaf features; ``zero_at`` (index over the last dims) zeroes one position's vector."""
    g = torch.Generator().manual_seed(seed)
    f = torch.randn(*shape, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)
    if zero_at is not None:
        f[(slice(None), slice(None)) + zero_at] = 0
    return f.requires_grad_()


# ----------------------------------------------------------------------------------- reference


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("max_displacement,stride", [(0, 1), (2, 1), (3, 2), (5, 2)])
def test_reference_matches_brute_force(max_displacement, stride, normalize):
    f1 = features(2, 3, 4, 5, dtype=torch.float64, zero_at=(1, 2))
    f2 = features(2, 3, 4, 5, dtype=torch.float64, seed=1)
    out = correlation_reference(f1, f2, max_displacement, stride, normalize)
    r = max_displacement // stride
    assert out.shape == (2, (2 * r + 1) ** 2, 4, 5)
    expected = brute_force(f1, f2, max_displacement, stride, normalize)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("frames", [1, 3])
def test_temporal_reference_pairs_each_frame_with_the_next(frames):
    x = features(2, 3, frames, 4, 5, dtype=torch.float64)
    out = temporal_correlation_reference(x, 2, 1)
    for t in range(frames):
        partner = min(t + 1, frames - 1)
        torch.testing.assert_close(out[:, :, t], brute_force(x[:, :, t], x[:, :, partner], 2, 1, True),
                                   rtol=0, atol=1e-12)


@pytest.mark.parametrize("normalize", [True, False])
def test_reference_gradcheck(normalize):
    f1 = features(1, 3, 4, 5, dtype=torch.float64)
    f2 = features(1, 3, 4, 5, dtype=torch.float64, seed=1)
    assert torch.autograd.gradcheck(lambda a, b: correlation_reference(a, b, 3, 2, normalize), (f1, f2))
    x = features(1, 2, 3, 3, 4, dtype=torch.float64, seed=2)
    assert torch.autograd.gradcheck(lambda v: temporal_correlation_reference(v, 1, 1, normalize), (x,))


def unfold_correlation(f1, f2, max_displacement, stride, normalize):
    """Independent formulation: all displaced copies of f2 at once with F.unfold (D times the memory)."""
    r = max_displacement // stride
    n = 2 * r + 1
    size_b, channels, size_y, size_x = f1.shape
    if normalize:
        f1, f2 = (torch.nn.functional.normalize(f, dim=1, eps=CORRELATION_EPS) for f in (f1, f2))
    windows = torch.nn.functional.unfold(f2, n, dilation=stride, padding=r * stride)
    out = (f1.unsqueeze(2) * windows.view(size_b, channels, n * n, size_y, size_x)).sum(1)
    return out if normalize else out / channels


@pytest.mark.parametrize("max_displacement,stride,normalize,shape", [
    (3, 1, True, (4, 64, 14, 14)),     # HCML level 3
    (8, 2, True, (2, 64, 28, 28)),     # HCML level 1's displacements
    (20, 2, False, (1, 256, 24, 32)),  # FlowNetC (half its map)
])
def test_reference_matches_unfold_at_realistic_sizes(max_displacement, stride, normalize, shape):
    f1, f2 = features(*shape), features(*shape, seed=1)
    out = correlation_reference(f1, f2, max_displacement, stride, normalize)
    expected = unfold_correlation(f1, f2, max_displacement, stride, normalize)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)
    grad = torch.randn_like(out)
    for g, w in zip(torch.autograd.grad(out, (f1, f2), grad), torch.autograd.grad(expected, (f1, f2), grad)):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_reference_half_precision_accumulates_in_fp32(dtype):
    f1, f2 = features(1, 64, 6, 7, dtype=dtype), features(1, 64, 6, 7, dtype=dtype, seed=1)
    out = correlation_reference(f1, f2, 2, 1)
    assert out.dtype == dtype
    expected = correlation_reference(f1.detach().double(), f2.detach().double(), 2, 1)
    torch.testing.assert_close(out.double(), expected, rtol=0, atol=torch.finfo(dtype).eps)


def test_auto_backend_on_cpu_is_the_reference():
    f1, f2 = features(2, 8, 5, 6), features(2, 8, 5, 6, seed=1)
    assert torch.equal(correlation(f1, f2, 2), correlation_reference(f1, f2, 2))
    x = features(1, 4, 3, 5, 6)
    assert torch.equal(temporal_correlation(x, 2, 2, normalize=False),
                       temporal_correlation_reference(x, 2, 2, normalize=False))


# ------------------------------------------------------------------- Triton kernels, interpreted

# (dtype, normalize, max_displacement, stride, shape): odd C, H, W; r from 1 to 3; C and W over more than
# one interpreter tile (4 channels, 8 columns), D over more than one chunk of 8 displacements.
INTERPRETER_CASES = [
    (torch.float32, True, 3, 1, (1, 5, 3, 9)),
    (torch.float64, False, 5, 2, (2, 3, 4, 7)),
    (torch.float32, False, 1, 1, (1, 7, 5, 11)),
    (torch.float64, True, 3, 2, (1, 4, 5, 6)),
]


def assert_same_forward_and_gradients(out, expected, inputs, dtype):
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-10, "atol": 1e-12}
    torch.testing.assert_close(out, expected, **tol)
    grad = torch.randn_like(out)
    got = torch.autograd.grad(out, inputs, grad)
    want = torch.autograd.grad(expected, inputs, grad)
    for g, w in zip(got, want):
        assert w.abs().max() > 0
        torch.testing.assert_close(g, w, **tol)


@pytest.mark.parametrize("dtype,normalize,max_displacement,stride,shape", INTERPRETER_CASES)
def test_triton_interpreted_matches_reference(dtype, normalize, max_displacement, stride, shape):
    torch.manual_seed(0)
    f1 = features(*shape, dtype=dtype, zero_at=(1, 2))  # one zero vector: a clamped norm
    f2 = features(*shape, dtype=dtype, seed=1, zero_at=(0, 3))
    out = correlation(f1, f2, max_displacement, stride, normalize, backend="triton")
    expected = correlation_reference(f1, f2, max_displacement, stride, normalize)
    assert out.dtype == dtype and out.shape == expected.shape
    assert_same_forward_and_gradients(out, expected, (f1, f2), dtype)


@pytest.mark.parametrize("dtype,normalize,max_displacement,stride,shape", [
    (torch.float32, True, 1, 1, (1, 3, 3, 4, 5)),
    (torch.float64, False, 2, 2, (1, 2, 1, 3, 9)),
])
def test_triton_interpreted_temporal_matches_reference(dtype, normalize, max_displacement, stride, shape):
    torch.manual_seed(0)
    x = features(*shape, dtype=dtype)
    out = temporal_correlation(x, max_displacement, stride, normalize, backend="triton")
    expected = temporal_correlation_reference(x, max_displacement, stride, normalize)
    assert_same_forward_and_gradients(out, expected, (x,), dtype)


@pytest.mark.parametrize("dtype,normalize,temporal,roles", [
    ("fp32", True, False, (True, False)),
    ("fp16", False, True, (True, True)),
    ("bf16", True, True, (True, True)),
    ("fp64", False, False, (False, True)),
])
def test_triton_kernels_compile_for_hopper_without_a_gpu(dtype, normalize, temporal, roles):
    """The compiled (not interpreted) path: both kernels lower to sm_90a machine code (cubin)."""
    triton = pytest.importorskip("triton")
    import triton.language as tl
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    module = importlib.import_module("zoo.kernels.correlation")
    acc = "fp64" if dtype == "fp64" else "fp32"
    constants = {"NORMALIZE": normalize, "ACC_DTYPE": tl.float64 if acc == "fp64" else tl.float32,
                 "SHIFT": int(temporal), "AS_F1": roles[0], "AS_F2": roles[1], "BLOCK_X": 32, "BLOCK_D": 16,
                 "BLOCK_C": 32}
    if not temporal:
        constants["T"] = 1  # what the launcher's specialisation of T == 1 compiles
    for kernel in (module._correlation_fwd_kernel, module._correlation_bwd_kernel):
        fn = triton.jit(kernel)
        signature = {}
        for name in fn.arg_names:
            if name in constants:
                signature[name] = "constexpr"
            elif name.endswith("_ptr"):
                signature[name] = f"*{acc}" if name.startswith(("inv", "coef")) else f"*{dtype}"
            else:
                signature[name] = "i32"
        used = {k: v for k, v in constants.items() if signature.get(k) == "constexpr"}
        compiled = triton.compile(ASTSource(fn, signature, used), target=GPUTarget("cuda", 90, 32))
        assert compiled.asm["cubin"]


# --------------------------------------------------------------------- ops, compile and errors


@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_custom_ops_pass_opcheck(backend):
    f1, f2 = features(1, 2, 2, 3), features(1, 2, 2, 3, seed=1)
    torch.library.opcheck(torch.ops.zoo.correlation.default, (f1, f2, 1, 1, True, backend))
    x = features(1, 2, 2, 2, 3, seed=2)
    torch.library.opcheck(torch.ops.zoo.temporal_correlation.default, (x, 1, 1, False, backend))


@pytest.mark.parametrize("backend", ["auto", "triton"])
def test_torch_compile_fullgraph_on_cpu(backend):
    def loss(f1, f2, x):
        return (correlation(f1, f2, 2, 1, backend=backend).square().mean()
                + temporal_correlation(x, 2, 2, normalize=False, backend=backend).mean())

    inputs = (features(1, 3, 3, 5), features(1, 3, 3, 5, seed=1), features(1, 2, 2, 3, 5, seed=2))
    eager = loss(*inputs)
    compiled = torch.compile(loss, fullgraph=True)(*inputs)
    torch.testing.assert_close(compiled, eager)
    for g, w in zip(torch.autograd.grad(compiled, inputs), torch.autograd.grad(eager, inputs)):
        torch.testing.assert_close(g, w)


def test_public_names_are_the_functions():
    import zoo.kernels

    for name, fn in [("correlation", correlation), ("temporal_correlation", temporal_correlation)]:
        assert getattr(zoo.kernels, name) is fn
        assert getattr(zoo.kernels, name) is fn  # a second look-up too (the submodule shares the name)


@pytest.mark.parametrize("call,message", [
    (lambda f: correlation(f, f[:, :, :-1], 1), "same shape"),
    (lambda f: correlation(f[0], f[0], 1), "4-D"),
    (lambda f: correlation(f.long(), f.long(), 1), "float16, bfloat16, float32 or float64"),
    (lambda f: correlation(f, f.double(), 1), "same dtype"),
    (lambda f: correlation(f, f.to("meta"), 1), "same device"),
    (lambda f: correlation(f, f, -1), "max_displacement must be an int >= 0"),
    (lambda f: correlation(f, f, 1.5), "max_displacement must be an int >= 0"),
    (lambda f: correlation(f, f, 2, stride=0), "stride must be an int >= 1"),
    (lambda f: correlation(f, f, 2, backend="cuda"), "backend must be"),
    (lambda f: correlation(f[:, :0], f[:, :0], 1), "non-empty"),
    (lambda f: temporal_correlation(f, 1), "5-D"),
    (lambda f: correlation(*[f.new_empty(1).expand(1, 64, 8192, 8192)] * 2, 1, backend="triton"), "2\\*\\*31"),
])
def test_bad_input_raises_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call(torch.randn(2, 3, 4, 5))


# --------------------------------------------------------------------------------------- CUDA

CUDA_TOLERANCE = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}


def assert_close_to_fp64(got: torch.Tensor, want: torch.Tensor, dtype: torch.dtype):
    """Max error at most ``tol * max|want|`` (fp64 reference, dtype-dependent tol)."""
    err = (got.double() - want).abs().max().item()
    scale = want.abs().max().item()
    assert err <= CUDA_TOLERANCE[dtype] * scale, f"max error {err:.3g} vs scale {scale:.3g} ({dtype})"


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("max_displacement,stride,shape", [(4, 2, (2, 64, 28, 28)), (3, 1, (3, 37, 13, 17)),
                                                           (20, 2, (1, 256, 24, 32))])
def test_cuda_matches_reference(dtype, normalize, max_displacement, stride, shape):
    f1 = features(*shape, dtype=dtype, device="cuda")
    f2 = features(*shape, dtype=dtype, seed=1, device="cuda")
    out = correlation(f1, f2, max_displacement, stride, normalize)  # auto: Triton on CUDA
    a, b = (f.detach().double().requires_grad_() for f in (f1, f2))
    want = correlation_reference(a, b, max_displacement, stride, normalize)
    assert out.dtype == dtype
    assert_close_to_fp64(out, want, dtype)
    grad = torch.randn_like(want)
    got = torch.autograd.grad(out, (f1, f2), grad.to(dtype))
    for g, w in zip(got, torch.autograd.grad(want, (a, b), grad)):
        assert g.dtype == dtype
        assert_close_to_fp64(g, w, dtype)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("normalize", [True, False])
def test_cuda_temporal_matches_reference(dtype, normalize):
    x = features(2, 32, 5, 14, 15, dtype=dtype, device="cuda")
    out = temporal_correlation(x, 3, 1, normalize)
    xd = x.detach().double().requires_grad_()
    want = temporal_correlation_reference(xd, 3, 1, normalize)
    assert_close_to_fp64(out, want, dtype)
    grad = torch.randn_like(want)
    (got,), (expected,) = torch.autograd.grad(out, x, grad.to(dtype)), torch.autograd.grad(want, xd, grad)
    assert_close_to_fp64(got, expected, dtype)


@pytest.mark.cuda
def test_cuda_torch_compile_fullgraph():
    def loss(f1, f2):
        return correlation(f1, f2, 4, 2).square().mean()

    f1, f2 = features(2, 16, 12, 13, device="cuda"), features(2, 16, 12, 13, seed=1, device="cuda")
    compiled = torch.compile(loss, fullgraph=True)(f1, f2)
    eager = loss(f1, f2)
    torch.testing.assert_close(compiled, eager)
    for g, w in zip(torch.autograd.grad(compiled, (f1, f2)), torch.autograd.grad(eager, (f1, f2))):
        torch.testing.assert_close(g, w)


def test_flop_counter_counts_the_ops():
    """torch.utils.flop_counter (and so zoo.utils.count_flops) counts 2 FLOPs per multiply-add of the
    cost volume, and twice that for the backward's two input gradients."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(2, 8, 3, 10, 12, requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        temporal_correlation(x, 4, stride=2).sum().backward()
    counts = {str(op): n for op, n in counter.get_flop_counts()["Global"].items()}
    forward = 2 * 2 * 8 * 3 * 10 * 12 * 25
    assert counts == {"zoo.temporal_correlation": forward, "zoo.temporal_correlation_backward": 2 * forward}
    f1, f2 = torch.randn(2, 8, 10, 12), torch.randn(2, 8, 10, 12)
    with FlopCounterMode(display=False) as counter:
        correlation(f1, f2, 3)
    assert counter.get_total_flops() == 2 * 2 * 8 * 10 * 12 * 49
