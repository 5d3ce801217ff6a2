"""Benchmark of the fused InfoNCE against the materialised PyTorch version (forward + backward).

    python benchmarks/contrastive.py [--device cpu|cuda] [--quick] [--sizes N ...] [--dims K ...]
                                     [--moco-queue Q] [--repeats R] [--dtype DTYPE]

Writes ``benchmarks/results/contrastive_<device>[_<tag>].json``: per case and implementation, the median
time of forward + backward (the gradients of the inputs that require grad) and its peak extra memory.

Cases (issue 4):
- square: N = M queries and keys, targets ``arange(N)`` (HCML's per-level loss), N in
  {4096, 16384, 65536} x K in {128, 256};
- moco: N = 256 queries against M = 256 batch keys + a queue of 65536, K = 128 (MSCL / MCL):
  the keys come from the momentum encoder and the queue, detached: only dQ is computed.
``--quick``: N in {1024, 2048, 4096}, K = 128, a 16384 queue. ``--sizes``, ``--dims`` and
``--moco-queue`` override either set; the JSON records exactly what ran.

Implementations:
- ``fused``: ``zoo.kernels.info_nce(backend='auto')``: the Triton kernels on CUDA, the chunked
  PyTorch path (``zoo.kernels.reference``, INFO_NCE_CHUNK_ELEMENTS logits per chunk) on CPU.
- ``materialized``: ``F.normalize``, ``q @ k.T / tau``, ``F.cross_entropy``: the (N, M) logits,
  their softmax and its gradient live in memory. Skipped, with its estimate recorded, when
  3 x N x M elements exceed ``--max-materialized-gib``.

Peak memory is the extra memory above the inputs, gradients included, measured by ``_common.py``:
- CUDA: ``torch.cuda.max_memory_allocated()`` during the call minus ``memory_allocated()`` before
  it, after three warm-up calls (autotuning, compilation, allocator).
- CPU: each (case, implementation) runs in a fresh subprocess that makes one tiny call (N = 8,
  M = 16: PyTorch's lazy one-time state), creates its inputs, resets the resident-set high-water
  mark (``echo 5 > /proc/self/clear_refs``), runs the call once and reads ``VmHWM - VmRSS(before)``
  from ``/proc/self/status``: the resident memory the call added at its peak (a fresh process has
  no cached blocks to hide behind).
Times: CUDA events (median of ``--repeats`` after warm-up); CPU ``perf_counter`` (median of
``--repeats`` after the memory run, which doubles as warm-up), plus the process CPU time.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    device_slug,
    env_info,
    measure_cpu_call,
    measure_cuda_call,
    run_worker,
    write_result,
)

TAU = 0.07
FULL = {"sizes": [4096, 16384, 65536], "dims": [128, 256], "moco_queue": 65536}
QUICK = {"sizes": [1024, 2048, 4096], "dims": [128], "moco_queue": 16384}
MOCO_BATCH, MOCO_DIM = 256, 128
IMPLS = ["fused", "materialized"]
# GPU targets of issue 4, checked at N = M = 16384 (any K) when that case ran on CUDA.
TARGET_SIZE, TARGET_MEMORY_FRACTION, TARGET_SPEEDUP = 16384, 0.05, 2.0


def make_inputs(case: dict, dtype: torch.dtype, device: str):
    """query (N, K) and keys (M, K), both with grad in the square case; in the MoCo case the keys
    (momentum-encoder batch keys and the queue) are detached, as in MoCo. Targets arange(N)."""
    gen = torch.Generator(device=device).manual_seed(0)
    query = torch.randn(case["n"], case["dim"], generator=gen, device=device, dtype=dtype).requires_grad_()
    keys = torch.randn(case["m"], case["dim"], generator=gen, device=device, dtype=dtype)
    keys.requires_grad_(case["kind"] == "square")
    return query, keys, torch.arange(case["n"], device=device)


def one_call(impl: str, query, keys, target) -> None:
    """Forward + backward; the gradients are returned by autograd.grad and dropped."""
    from zoo.kernels import info_nce
    from zoo.kernels.reference import info_nce_materialized

    fn = info_nce if impl == "fused" else info_nce_materialized
    loss = fn(query, keys, target, TAU)
    torch.autograd.grad(loss, [x for x in (query, keys) if x.requires_grad])


# ------------------------------------------------------------------------------------------- CPU


def cpu_worker(spec: dict) -> dict:
    """One (case, impl) in this fresh process: peak extra RSS of one call, then the median time."""
    import zoo.kernels.contrastive  # noqa: F401  (import cost stays out of the measurement)

    dtype = getattr(torch, spec["dtype"])
    one_call(spec["impl"], *make_inputs(dict(spec["case"], n=8, m=16), dtype, "cpu"))  # PyTorch's lazy state
    inputs = make_inputs(spec["case"], dtype, "cpu")
    return measure_cpu_call(lambda: one_call(spec["impl"], *inputs), spec["repeats"])


def measure_cpu(case: dict, impl: str, dtype: torch.dtype, repeats: int) -> dict:
    spec = {"case": case, "impl": impl, "dtype": str(dtype).split(".")[1], "repeats": repeats}
    return run_worker(__file__, spec)


# ------------------------------------------------------------------------------------------ CUDA


def measure_cuda(case: dict, impl: str, dtype: torch.dtype, repeats: int) -> dict:
    inputs = make_inputs(case, dtype, "cuda")
    return measure_cuda_call(lambda: one_call(impl, *inputs), repeats)


# ------------------------------------------------------------------------------------------ main


def check_agreement(case: dict, device: str, dtype: torch.dtype) -> dict:
    """Loss and largest gradient difference of the fused version from the materialised one in float64,
    on the case cut to at most 2048 queries and 4096 keys."""
    from zoo.kernels import info_nce
    from zoo.kernels.reference import info_nce_materialized

    n = min(case["n"], 2048)
    small = dict(case, n=n, m=n if case["kind"] == "square" else min(case["m"], 4096))
    query, keys, target = make_inputs(small, dtype, device)
    out = {}
    for fn, (q, k) in ((info_nce, (query, keys)), (info_nce_materialized, (query.double(), keys.double()))):
        q, k = q.detach().requires_grad_(), k.detach().requires_grad_(keys.requires_grad)
        loss = fn(q, k, target, TAU)
        grads = torch.autograd.grad(loss, [x for x in (q, k) if x.requires_grad])
        out[fn] = (loss.double(), *(g.double() for g in grads))
    fused, oracle = out[info_nce], out[info_nce_materialized]
    return {
        "shape_checked": [small["n"], small["m"], small["dim"]],
        "loss_abs_diff": (fused[0] - oracle[0]).abs().item(),
        "grad_max_abs_diff": max((a - b).abs().max().item() for a, b in zip(fused[1:], oracle[1:])),
    }


def build_cases(sizes: list[int], dims: list[int], moco_queue: int) -> list[dict]:
    cases = [{"name": f"square_n{n}_k{dim}", "kind": "square", "n": n, "m": n, "dim": dim}
             for dim in dims for n in sizes]
    if moco_queue > 0:
        cases.append({"name": f"moco_n{MOCO_BATCH}_queue{moco_queue}_k{MOCO_DIM}", "kind": "moco",
                      "n": MOCO_BATCH, "m": MOCO_BATCH + moco_queue, "dim": MOCO_DIM})
    return cases


def summarize(entry: dict, on_cuda: bool) -> None:
    """Ratios fused / materialised, and on CUDA the issue's targets at N = M = 16384."""
    fused, mat = entry["fused"], entry["materialized"]
    if "error" in fused or "error" in mat or "skipped" in mat:
        return
    entry["speedup_vs_materialized"] = round(mat["time_ms"] / fused["time_ms"], 3)
    entry["memory_fraction_of_materialized"] = round(fused["peak_mib"] / max(mat["peak_mib"], 1e-3), 4)
    if on_cuda and entry["kind"] == "square" and entry["n"] == TARGET_SIZE:
        entry["targets"] = {
            "memory_fraction_at_most": TARGET_MEMORY_FRACTION,
            "speedup_at_least": TARGET_SPEEDUP,
            "met": (entry["memory_fraction_of_materialized"] <= TARGET_MEMORY_FRACTION
                    and entry["speedup_vs_materialized"] >= TARGET_SPEEDUP),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        choices=["cpu", "cuda"])
    parser.add_argument("--quick", action="store_true", help="N in {1024, 2048, 4096}, K = 128, queue 16384")
    parser.add_argument("--sizes", type=int, nargs="*", help="N = M of the square cases")
    parser.add_argument("--dims", type=int, nargs="*", help="K of the square cases")
    parser.add_argument("--moco-queue", type=int, help="queue length of the MoCo case (0: no MoCo case)")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per measurement")
    parser.add_argument("--dtype", default=None, help="float32 (CPU default) or bfloat16 (CUDA default), ...")
    parser.add_argument("--max-materialized-gib", type=float, default=None,
                        help="skip the materialised version above 3 x N x M elements of this many GiB "
                             "(default 8 on CPU, 70 on CUDA)")
    parser.add_argument("--tag", default="", help="suffix of the JSON's name, for runs of other sizes")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(cpu_worker(json.loads(args.worker))))
        return

    on_cuda = args.device == "cuda"
    dtype = getattr(torch, args.dtype or ("bfloat16" if on_cuda else "float32"))
    repeats = args.repeats or (20 if on_cuda else 2)
    max_materialized = (args.max_materialized_gib or (70.0 if on_cuda else 8.0)) * 2**30
    measure = measure_cuda if on_cuda else measure_cpu
    preset = QUICK if args.quick else FULL
    sizes = args.sizes if args.sizes is not None else preset["sizes"]
    dims = args.dims if args.dims is not None else preset["dims"]
    moco_queue = args.moco_queue if args.moco_queue is not None else preset["moco_queue"]
    element_bytes = torch.tensor([], dtype=dtype).element_size()

    load_before = os.getloadavg()
    results = []
    for case in build_cases(sizes, dims, moco_queue):
        logits_bytes = case["n"] * case["m"] * element_bytes
        entry = dict(case, logits_mib=logits_bytes / 2**20,
                     max_abs_diff_vs_float64_oracle=check_agreement(case, args.device, dtype))
        for impl in IMPLS:
            if impl == "materialized" and 3 * logits_bytes > max_materialized:
                gib = 3 * logits_bytes / 2**30
                entry[impl] = {"skipped": f"3 x N x M x {element_bytes} B = {gib:.1f} GiB "
                                          f"> {max_materialized / 2**30:.0f} GiB"}
            else:
                entry[impl] = measure(case, impl, dtype, repeats)
            print(f"{case['name']:32s} {impl:13s} {entry[impl]}", flush=True)
        summarize(entry, on_cuda)
        results.append(entry)

    import zoo.kernels.reference as reference

    payload = {
        "benchmark": "contrastive",
        "env": env_info(args.device),
        "dtype": str(dtype).split(".")[1],
        "temperature": TAU,
        "quick": args.quick,
        "sizes": sizes,
        "dims": dims,
        "moco_queue": moco_queue,
        "repeats": repeats,
        "load_average_1min": {"before": load_before[0], "after": os.getloadavg()[0],
                              "note": "other processes shared the machine; times are noisy where high"},
        "implementations": {
            "fused": "zoo.kernels.info_nce(backend='auto'): "
                     + ("Triton kernels" if on_cuda else
                        f"chunked PyTorch path, {reference.INFO_NCE_CHUNK_ELEMENTS} logits per chunk"),
            "materialized": "F.normalize, q @ k.T / tau, F.cross_entropy (zoo.kernels.reference)",
        },
        "memory_method": (
            "torch.cuda.max_memory_allocated() - memory_allocated() before the call, after warm-up"
            if on_cuda else
            "fresh subprocess per measurement; VmHWM (reset via /proc/self/clear_refs) minus VmRSS before "
            "the call: resident memory added at the call's peak, gradients included"),
        "cases": results,
    }
    path = write_result("_".join(filter(None, ["contrastive", device_slug(args.device), args.tag])), payload)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
