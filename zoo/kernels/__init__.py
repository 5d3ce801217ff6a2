"""Triton kernels for motion-contrastive learning: cost volumes and a fused InfoNCE.

Two ops, each with a Triton path for CUDA tensors, the Triton interpreter for CPU tensors when asked for
(``backend='triton'``), and a pure-PyTorch reference (:mod:`zoo.kernels.reference`) that is both the CPU
path and the tests' oracle. ``backend='auto'`` (the default) picks Triton for CUDA tensors and the reference
elsewhere; ``with zoo.kernels.use_backend('torch'):`` makes ``'auto'`` mean the reference (or ``'triton'`` the
kernels) inside a block, e.g. to time a model's step with either. Triton is optional: without it
``import zoo.kernels`` still works, ``'auto'`` always runs the reference and ``'triton'`` raises an error
that says so and points to ``backend='torch'`` (:mod:`zoo.kernels._triton`).

Correlation (cost volume)
-------------------------
:func:`correlation` ``(f1, f2, max_displacement, stride=1, normalize=True)``, f1 and f2 (B, C, H, W):
with ``r = max_displacement // stride`` and ``D = (2r+1)^2``, the output is (B, D, H, W) with::

    out[b, (i+r)*(2r+1) + (j+r), y, x] = sim(f1[b, :, y, x], f2[b, :, y + i*stride, x + j*stride])

for ``i, j`` in ``-r..r`` (rows of displacement outer, columns inner), and 0 where the displaced position
falls outside the map. ``normalize=True`` is the cosine similarity (HCML's cost volume);
``normalize=False`` is the dot product divided by C (FlowNetC's scaling). :func:`temporal_correlation`
``(x, ...)``, x (B, C, T, H, W), pairs frame t with t+1 and the last frame with itself and returns
(B, D, T, H, W), without materialising a shifted copy of the clip.

Cost: ``2*B*H*W*D*C`` FLOPs against at least ``B*C*H*W*(e1+e2) + B*D*H*W*e_out`` bytes (``e`` the element
sizes): roughly 10-150 FLOP/B, memory-bound on tensor cores, FMA-bound on CUDA cores once C >= 64 (an H100
SXM has 3.35 TB/s of HBM, ~67 TFLOP/s of fp32 FMA and ~989 TFLOP/s of dense bf16; an H200 4.8 TB/s). Hence
the kernels reuse f2 tiles across displacements, accumulate in fp32 (fp64 for fp64 inputs), write the output
in the input dtype, and compute the backward as gathers without atomics:
``df1(p) = sum_d g(p,d) f2(p+d)``, ``df2(q) = sum_d g(q-d,d) f1(q-d)``, plus the cosine's radial term
``sum_d g*c`` from the saved output.

Contrastive similarity (InfoNCE)
--------------------------------
:func:`info_nce` ``(query (N, K), keys (M, K), target (N,), temperature, normalize=True, reduction='mean')``:
``loss_i = logsumexp_j(s_ij / tau) - s_{i,target_i} / tau`` with ``s_ij = cos(q_i, k_j)`` (or the dot
product when not normalized). Keys may include a detached MoCo queue (M = batch + 65k); HCML's per-level
loss is the square case (``target = arange(N)``). The fused path never materialises the N x M logits: tiles
of keys stream past a block of queries with an online max / sum (flash-attention style, base 2 with
``log2(e)/tau`` folded into one scale), only the per-row logsumexp is saved, and the backward recomputes the
tiles (the public anchor is Inf-CL, DAMO-NLP-SG/Inf-CLIP). It is compute-bound (thousands of FLOP/B); cosine
logits are bounded by 1/tau, so bf16 inputs with fp32 accumulation and an fp32 logsumexp are safe.

Testing on a CPU: the Triton interpreter
----------------------------------------
``backend='triton'`` on CPU tensors runs the same kernels through Triton's interpreter (numpy, one program at
a time) in the same process, whatever ``TRITON_INTERPRET`` was (setting ``TRITON_INTERPRET=1`` before Triton
is imported makes every ``@triton.jit`` kernel interpreted). Sharp edges of the interpreter (Triton 3.x):
bf16 arithmetic is silently wrong (cast to fp32 right after loading); ``tl.dot`` is exact fp32 and accepts
sizes a GPU rejects (keep K >= 16); ``inline_asm`` and libdevice externs are unsupported; ``@triton.autotune``
with more than one config fails without a GPU (one config when interpreting); races are hidden because
programs run one after another; each Triton op costs about 0.3 ms per program, so interpreted shapes must be
tiny. So the tests run the interpreter in fp32/fp64 at tiny sizes, the CPU reference at realistic sizes, and
the compiled kernels on a real GPU whenever one is available (``tests/test_correlation.py``,
``tests/test_contrastive.py``; timings from ``benchmarks/correlation.py``, ``benchmarks/contrastive.py``).
"""
from ._triton import get_default_backend, use_backend
from .contrastive import info_nce
from .correlation import correlation, temporal_correlation

__all__ = ["correlation", "temporal_correlation", "info_nce", "use_backend", "get_default_backend"]
