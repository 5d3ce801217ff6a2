"""Benchmark of the correlation (cost volume): Triton kernels, the PyTorch reference and a naive unfold.

    python benchmarks/correlation.py [--device cpu|cuda] [--quick] [--repeats N] [--dtype DTYPE] [--dry-run]

Writes ``benchmarks/results/correlation_<device>.json``: per shape and implementation, the median time
of the forward and of forward + backward, and their peak memory, plus each shape's roofline floor
(the ``zoo.kernels`` docstring: FLOPs ``2*B*H*W*D*C``, minimum bytes ``B*C*H*W*(e1+e2) + B*D*H*W*e_out``).

Shapes: HCML's prime motion blocks (128 frame pairs, C=64, cosine: 56x56 d=8 s=2, 28x28 d=4, 14x14
d=3) and FlowNetC's (B=4, C=256, 48x64, d=20 s=2, dot product / C). ``--quick`` divides the batch
by 8 (HCML 16 pairs, FlowNetC B=1); the JSON records the shapes that ran.

Implementations: ``triton`` (CUDA only; on CPU tensors it would be the interpreter, which is a test
tool, not a benchmark), ``reference`` (``backend='torch'``: a loop over displacements) and ``naive``
(``F.unfold`` of f2 into all (2r+1)^2 displaced copies, multiplied with f1 and summed over C: the
memory-hungry textbook version).

Peak memory is the extra memory above what the inputs already hold, measured by ``_common.py``:
- CUDA: ``torch.cuda.max_memory_allocated()`` after the call minus ``memory_allocated()`` before it.
- CPU: every (shape, implementation, pass) runs in a fresh subprocess that creates its inputs, resets the
  kernel's resident-set high-water mark (``echo 5 > /proc/self/clear_refs``), runs the call once and
  reads ``VmHWM - VmRSS(before)`` from ``/proc/self/status``: the resident memory the call added at its
  peak, allocator caching included (a fresh process has no cached blocks to hide behind).
CPU runs use ``--threads`` torch threads (recorded as ``env.torch_threads``): on a machine shared with
other processes, the reference's many small parallel ops lose most of their time in OpenMP barriers
when threads are oversubscribed, so one thread measures the algorithms rather than the contention.
Times: CUDA events around each call (median of ``--repeats`` after warm-up); CPU ``perf_counter``
(median of ``--repeats`` after the memory run, which doubles as warm-up), plus the process CPU time
(``process_time``, all threads), which other processes on a shared machine disturb less.
On CUDA each measurement also gives the achieved TFLOP/s and TB/s (of the roofline's FLOPs and minimum bytes)
and their fractions of the device's peaks (``_common.DEVICE_PEAKS``: H100 SXM, H200).
``--dry-run``: one tiny shape, all three implementations in this process (``triton`` through the interpreter on
a CPU), one timed call each and no memory runs: it checks that the benchmark runs.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    achieved,
    device_peaks,
    device_slug,
    env_info,
    measure_cpu_call,
    measure_cuda_call,
    run_worker,
    time_interleaved,
    write_result,
)

SHAPES = {
    # name: (batch, channels, height, width, max_displacement, stride, normalize)
    "hcml_56x56_d8_s2": (128, 64, 56, 56, 8, 2, True),
    "hcml_28x28_d4_s1": (128, 64, 28, 28, 4, 1, True),
    "hcml_14x14_d3_s1": (128, 64, 14, 14, 3, 1, True),
    "flownetc_48x64_d20_s2": (4, 256, 48, 64, 20, 2, False),
}
QUICK_BATCH_DIVISOR = 8
DRY_RUN_SHAPES = {"tiny_4x4_d1_s1": (1, 16, 4, 4, 1, 1, True)}

# H100 SXM figures of the zoo.kernels docstring (the H200 differs in memory bandwidth only).
HBM_BYTES_PER_S = {"h100_sxm": 3.35e12, "h200": 4.8e12}
FP32_FMA_FLOPS = 67e12
BF16_TENSOR_FLOPS = 989e12


def naive_correlation(f1: torch.Tensor, f2: torch.Tensor, max_displacement: int, stride: int,
                      normalize: bool) -> torch.Tensor:
    """All (2r+1)^2 displaced copies of f2 at once via ``F.unfold``: (B, C*D, H*W) floats of extra memory."""
    r = max_displacement // stride
    n = 2 * r + 1
    size_b, channels, size_y, size_x = f1.shape
    if normalize:
        f1, f2 = F.normalize(f1, dim=1), F.normalize(f2, dim=1)
    windows = F.unfold(f2, kernel_size=n, dilation=stride, padding=r * stride)
    out = (f1.unsqueeze(2) * windows.view(size_b, channels, n * n, size_y, size_x)).sum(1)
    return out if normalize else out / channels


def run_impl(impl: str, f1: torch.Tensor, f2: torch.Tensor, max_displacement: int, stride: int,
             normalize: bool) -> torch.Tensor:
    if impl == "naive":
        return naive_correlation(f1, f2, max_displacement, stride, normalize)
    from zoo.kernels.correlation import correlation

    backend = "triton" if impl == "triton" else "torch"
    return correlation(f1, f2, max_displacement, stride, normalize, backend=backend)


def make_inputs(shape: tuple, dtype: torch.dtype, device: str, backward: bool):
    size_b, channels, size_y, size_x = shape[:4]
    gen = torch.Generator(device=device).manual_seed(0)
    f1, f2 = (torch.randn(size_b, channels, size_y, size_x, generator=gen, device=device, dtype=dtype)
              .requires_grad_(backward) for _ in range(2))
    n = 2 * (shape[4] // shape[5]) + 1
    if not backward:
        return f1, f2, None
    return f1, f2, torch.randn(size_b, n * n, size_y, size_x, generator=gen, device=device, dtype=dtype)


def one_call(impl: str, shape: tuple, f1, f2, grad) -> None:
    out = run_impl(impl, f1, f2, *shape[4:])
    if grad is not None:
        out.backward(grad)
        f1.grad = f2.grad = None


def roofline(shape: tuple, element_bytes: int, backward: bool) -> dict:
    """The roofline floor of one shape (zoo.kernels docstring); forward + backward: 3x the FLOPs, the bytes of
    both passes."""
    size_b, channels, size_y, size_x, max_displacement, stride, normalize = shape
    d = (2 * (max_displacement // stride) + 1) ** 2
    features = size_b * channels * size_y * size_x
    volume = size_b * d * size_y * size_x
    flops = 2 * volume * channels
    nbytes = (2 * features + volume) * element_bytes
    if backward:  # read f1, f2, grad (and the output, for the cosine's radial term), write df1, df2
        flops *= 3
        nbytes += (4 * features + volume * (2 if normalize else 1)) * element_bytes
    memory_ms = {name: 1e3 * nbytes / bw for name, bw in HBM_BYTES_PER_S.items()}
    return {
        "flops": flops,
        "min_bytes": nbytes,
        "intensity_flop_per_byte": round(flops / nbytes, 2),
        "floor_ms_memory": {k: round(v, 4) for k, v in memory_ms.items()},
        "floor_ms_fp32_fma": round(1e3 * flops / FP32_FMA_FLOPS, 4),
        "floor_ms_bf16_tensor_core": round(1e3 * flops / BF16_TENSOR_FLOPS, 4),
        "floor_ms_h100_fma_kernel": round(max(memory_ms["h100_sxm"], 1e3 * flops / FP32_FMA_FLOPS), 4),
    }


# ------------------------------------------------------------------------------------------- CPU


def cpu_worker(spec: dict) -> dict:
    """One (shape, impl, pass) in this fresh process: peak extra RSS of one call, then the median time."""
    shape, impl, backward = tuple(spec["shape"]), spec["impl"], spec["backward"]
    dtype = getattr(torch, spec["dtype"])
    torch.set_num_threads(spec["threads"])
    if impl != "naive":
        import zoo.kernels.correlation  # noqa: F401  (import cost stays out of the measurement)
    f1, f2, grad = make_inputs(shape, dtype, "cpu", backward)
    return measure_cpu_call(lambda: one_call(impl, shape, f1, f2, grad), spec["repeats"])


def measure_cpu(shape: tuple, impl: str, backward: bool, dtype: torch.dtype, repeats: int) -> dict:
    spec = {"shape": list(shape), "impl": impl, "backward": backward, "dtype": str(dtype).split(".")[1],
            "repeats": repeats, "threads": torch.get_num_threads()}
    return run_worker(__file__, spec)


# ------------------------------------------------------------------------------------------ CUDA


def measure_cuda(shape: tuple, impl: str, backward: bool, dtype: torch.dtype, repeats: int) -> dict:
    f1, f2, grad = make_inputs(shape, dtype, "cuda", backward)
    out = measure_cuda_call(lambda: one_call(impl, shape, f1, f2, grad), repeats)
    if "time_ms" in out:
        floor = roofline(shape, torch.tensor([], dtype=dtype).element_size(), backward)
        out["achieved"] = achieved(floor["flops"], floor["min_bytes"], out["time_ms"], device_peaks("cuda"), dtype)
    return out


def measure_dry_run(shape: tuple, impls: list[str], backward: bool, dtype: torch.dtype) -> dict:
    """The implementations once each, in this process (interpreted Triton on a CPU): no memory figures."""
    f1, f2, grad = make_inputs(shape, dtype, "cpu", backward)
    return time_interleaved({impl: (lambda impl=impl: one_call(impl, shape, f1, f2, grad)) for impl in impls}, 1, 0)


# ------------------------------------------------------------------------------------------ main


def check_agreement(shape: tuple, device: str, dtype: torch.dtype, impls: list[str]) -> dict:
    """Max |difference| of each implementation's forward from the reference's, on a batch of 2."""
    small = (min(shape[0], 2),) + shape[1:]
    f1, f2, _ = make_inputs(small, dtype, device, False)
    ref = run_impl("reference", f1, f2, *shape[4:]).float()
    return {impl: (run_impl(impl, f1, f2, *shape[4:]).float() - ref).abs().max().item()
            for impl in impls if impl != "reference"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        choices=["cpu", "cuda"])
    parser.add_argument("--quick", action="store_true",
                        help=f"batch / {QUICK_BATCH_DIVISOR} (recorded in the JSON)")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per measurement")
    parser.add_argument("--dtype", default=None, help="float32 (CPU default) or bfloat16 (CUDA default), ...")
    parser.add_argument("--shapes", nargs="*", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--tag", default="", help="JSON name suffix: correlation_<device>[_<tag>].json")
    parser.add_argument("--dry-run", action="store_true", help="one tiny shape, Triton interpreted on a CPU")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(cpu_worker(json.loads(args.worker))))
        return

    if args.threads:
        torch.set_num_threads(args.threads)
    env = env_info(args.device)  # before the run: the revision measured, not one committed meanwhile
    on_cuda = args.device == "cuda"
    dtype = getattr(torch, args.dtype or ("bfloat16" if on_cuda else "float32"))
    repeats = args.repeats or (20 if on_cuda else 3)
    impls = ["triton", "reference", "naive"] if on_cuda or args.dry_run else ["reference", "naive"]
    measure = measure_cuda if on_cuda else measure_cpu
    element_bytes = torch.tensor([], dtype=dtype).element_size()
    shapes = DRY_RUN_SHAPES if args.dry_run else SHAPES
    results = []
    for name in (list(shapes) if args.dry_run else args.shapes):
        shape = shapes[name]
        if args.quick:
            shape = (max(1, shape[0] // QUICK_BATCH_DIVISOR),) + shape[1:]
        entry = {"name": name, "batch": shape[0], "channels": shape[1], "height": shape[2], "width": shape[3],
                 "max_displacement": shape[4], "stride": shape[5], "normalize": shape[6],
                 "displacements": (2 * (shape[4] // shape[5]) + 1) ** 2,
                 "max_abs_diff_vs_reference": check_agreement(shape, args.device, dtype, impls)}
        for mode, backward in (("forward", False), ("forward_backward", True)):
            entry[mode] = {"roofline": roofline(shape, element_bytes, backward)}
            dry = measure_dry_run(shape, impls, backward, dtype) if args.dry_run and not on_cuda else {}
            for impl in impls:
                entry[mode][impl] = dry[impl] if dry else measure(shape, impl, backward, dtype, repeats)
                entry[mode][impl].setdefault("peak_mib", None)
                print(f"{name:24s} {mode:17s} {impl:10s} {entry[mode][impl]}", flush=True)
            ref, naive = entry[mode]["reference"], entry[mode]["naive"]
            if "error" not in ref and "error" not in naive and ref["peak_mib"] is not None:
                entry[mode]["reference_vs_naive"] = {
                    "speedup": round(naive["time_ms"] / ref["time_ms"], 2),
                    "memory_ratio": round(naive["peak_mib"] / max(ref["peak_mib"], 1e-3), 1)}
        results.append(entry)

    payload = {
        "benchmark": "correlation",
        "env": env,
        "dtype": str(dtype).split(".")[1],
        "quick": args.quick,
        "dry_run": args.dry_run,
        "device_peaks": device_peaks(args.device),
        "repeats": repeats,
        "implementations": impls,
        "memory_method": (
            "torch.cuda.max_memory_allocated() - memory_allocated() before the call" if on_cuda else
            "fresh subprocess per measurement; VmHWM (reset via /proc/self/clear_refs) minus VmRSS "
            "before the call"),
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "shapes": results,
    }
    name = f"correlation_{device_slug(args.device)}" + (f"_{args.tag}" if args.tag else "")
    path = write_result(name, payload)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
