"""Benchmark of the fused InfoNCE against the materialised PyTorch version (forward + backward).

    python benchmarks/contrastive.py [--device cpu|cuda] [--quick] [--sizes N ...] [--dims K ...]
                                     [--moco-queue Q] [--repeats R] [--dtype DTYPE] [--threads N] [--dry-run]

Writes ``benchmarks/results/contrastive_<device>[_<tag>].json``: per case and implementation, the median time
of forward + backward (the gradients of the inputs that require grad) and its peak extra memory, the ratios of
the two, and the targets they are held to.

Cases (issue 4):
- square: N = M queries and keys, targets ``arange(N)`` (HCML's per-level loss), N in
  {4096, 16384, 65536} x K in {128, 256};
- moco: N = 256 queries against M = 256 batch keys + a queue of 65536, K = 128 (MSCL / MCL):
  the keys come from the momentum encoder and the queue, detached: only dQ is computed.
``--quick``: N in {1024, 2048, 4096}, K = 128, a 16384 queue. ``--sizes``, ``--dims`` and
``--moco-queue`` override either set; the JSON records exactly what ran. ``--dry-run``: N = 32, K = 16, MoCo's
8 queries against a 32-key queue, one timed round, no memory runs and no targets, the fused version through
the Triton kernels (interpreted on a CPU): it checks that the benchmark runs.

Implementations:
- ``fused``: ``zoo.kernels.info_nce(backend='auto')``: the Triton kernels on CUDA, the chunked
  PyTorch path (``zoo.kernels.reference``, INFO_NCE_CHUNK_ELEMENTS logits per chunk, the gradients
  accumulated in the forward pass: three matmuls, as the materialised version) on CPU.
- ``materialized``: ``F.normalize``, ``q @ k.T / tau``, ``F.cross_entropy``: the (N, M) logits,
  their softmax and its gradient live in memory. Skipped, with its estimate recorded, when
  3 x N x M elements exceed ``--max-materialized-gib``.

Peak memory is the extra memory above the inputs, gradients included, measured by ``_common.py``:
- CUDA: ``torch.cuda.max_memory_allocated()`` during the call minus ``memory_allocated()`` before
  it, after three warm-up calls (autotuning, compilation, allocator).
- CPU: each (case, implementation) runs once in a fresh subprocess that makes one tiny call (N = 8,
  M = 16: PyTorch's lazy one-time state), creates its inputs, resets the resident-set high-water
  mark (``echo 5 > /proc/self/clear_refs``), runs the call once and reads ``VmHWM - VmRSS(before)``
  from ``/proc/self/status``: the resident memory the call added at its peak (a fresh process has
  no cached blocks to hide behind).
Times: CUDA events (median of ``--repeats`` after warm-up); CPU: both implementations in this one process,
interleaved (each round calls each once, after one warm-up round), ``perf_counter`` and ``process_time``
medians, and the median over rounds of the per-round ratio (a machine's load drifting between rounds
cancels in it): on a shared machine the ratio holds where the absolute times do not. CPU runs use
``--threads`` torch threads (default 1: oversubscribed OpenMP threads measure the contention, not the code).
On CUDA each implementation's achieved TFLOP/s (the useful 6 N M K FLOPs of forward + backward) is given
against the device's peak (``_common.DEVICE_PEAKS``).

Targets: on CUDA (issue 4) at N = M = 16384, memory at most 5% of the materialised version's and a speed-up of
at least 2x; on a CPU (issue 24) the fused (chunked) path at most 1.1x the materialised version's time at every
size, and its memory at most 10% of the materialised version's from N x M = 8192 x 8192 up.
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

TAU = 0.07
FULL = {"sizes": [4096, 16384, 65536], "dims": [128, 256], "moco_queue": 65536}
QUICK = {"sizes": [1024, 2048, 4096], "dims": [128], "moco_queue": 16384}
MOCO_BATCH, MOCO_DIM = 256, 128
IMPLS = ["fused", "materialized"]
DRY_RUN = {"sizes": [32], "dims": [16], "moco_queue": 32, "moco_batch": 8, "moco_dim": 16}
# GPU targets of issue 4, checked at N = M = 16384 (any K) when that case ran on CUDA.
TARGET_SIZE, TARGET_MEMORY_FRACTION, TARGET_SPEEDUP = 16384, 0.05, 2.0
# CPU targets of issue 24: time at every size; memory from N x M = 8192 x 8192 up.
CPU_TIME_RATIO_MAX, CPU_MEMORY_FRACTION_MAX, CPU_MEMORY_FROM = 1.1, 0.10, 8192 * 8192


def make_inputs(case: dict, dtype: torch.dtype, device: str):
    """query (N, K) and keys (M, K), both with grad in the square case; in the MoCo case the keys
    (momentum-encoder batch keys and the queue) are detached, as in MoCo. Targets arange(N)."""
    gen = torch.Generator(device=device).manual_seed(0)
    query = torch.randn(case["n"], case["dim"], generator=gen, device=device, dtype=dtype).requires_grad_()
    keys = torch.randn(case["m"], case["dim"], generator=gen, device=device, dtype=dtype)
    keys.requires_grad_(case["kind"] == "square")
    return query, keys, torch.arange(case["n"], device=device)


def one_call(impl: str, query, keys, target, backend: str = "auto") -> None:
    """Forward + backward; the gradients are returned by autograd.grad and dropped."""
    from zoo.kernels import info_nce
    from zoo.kernels.reference import info_nce_materialized

    if impl == "fused":
        loss = info_nce(query, keys, target, TAU, backend=backend)
    else:
        loss = info_nce_materialized(query, keys, target, TAU)
    torch.autograd.grad(loss, [x for x in (query, keys) if x.requires_grad])


# ------------------------------------------------------------------------------------------- CPU


def cpu_worker(spec: dict) -> dict:
    """One (case, impl) in this fresh process: peak extra RSS of one call (and ``repeats`` timed calls)."""
    import zoo.kernels.contrastive  # noqa: F401  (import cost stays out of the measurement)

    torch.set_num_threads(spec["threads"])
    dtype = getattr(torch, spec["dtype"])
    one_call(spec["impl"], *make_inputs(dict(spec["case"], n=8, m=16), dtype, "cpu"))  # PyTorch's lazy state
    inputs = make_inputs(spec["case"], dtype, "cpu")
    return measure_cpu_call(lambda: one_call(spec["impl"], *inputs), spec["repeats"])


def measure_cpu_memory(case: dict, impl: str, dtype: torch.dtype) -> dict:
    """Peak extra memory of one call, in a fresh subprocess."""
    spec = {"case": case, "impl": impl, "dtype": str(dtype).split(".")[1], "repeats": 0,
            "threads": torch.get_num_threads()}
    return run_worker(__file__, spec)


def measure_cpu_times(case: dict, impls: list[str], dtype: torch.dtype, repeats: int, backend: str,
                      warmup: int = 1) -> dict:
    """The implementations' times, interleaved in this process (see the module docstring)."""
    inputs = make_inputs(case, dtype, "cpu")
    return time_interleaved({impl: (lambda impl=impl: one_call(impl, *inputs, backend=backend)) for impl in impls},
                            repeats, warmup=warmup)


# ------------------------------------------------------------------------------------------ CUDA


def measure_cuda(case: dict, impl: str, dtype: torch.dtype, repeats: int) -> dict:
    inputs = make_inputs(case, dtype, "cuda")
    out = measure_cuda_call(lambda: one_call(impl, *inputs), repeats)
    if "time_ms" in out:
        # useful FLOPs: logits 2NMK, dQ and dK 2NMK each (the fused kernels recompute the logits: 8NMK done)
        flops = 6 * case["n"] * case["m"] * case["dim"]
        if case["kind"] == "moco":
            flops = 4 * case["n"] * case["m"] * case["dim"]  # no dK for the detached keys
        element = torch.tensor([], dtype=dtype).element_size()
        nbytes = 2 * (case["n"] + case["m"]) * case["dim"] * element  # read q, k; write dq, dk
        out["achieved"] = achieved(flops, nbytes, out["time_ms"], device_peaks("cuda"), dtype)
    return out


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


def build_cases(sizes: list[int], dims: list[int], moco_queue: int, moco_batch: int = MOCO_BATCH,
                moco_dim: int = MOCO_DIM) -> list[dict]:
    cases = [{"name": f"square_n{n}_k{dim}", "kind": "square", "n": n, "m": n, "dim": dim}
             for dim in dims for n in sizes]
    if moco_queue > 0:
        cases.append({"name": f"moco_n{moco_batch}_queue{moco_queue}_k{moco_dim}", "kind": "moco",
                      "n": moco_batch, "m": moco_batch + moco_queue, "dim": moco_dim})
    return cases


def summarize(entry: dict, on_cuda: bool, dry_run: bool = False) -> None:
    """Ratios fused / materialised, and the targets: on CUDA at N = M = 16384, on a CPU at every size (time) and from
    8192 x 8192 up (memory)."""
    fused, mat = entry["fused"], entry["materialized"]
    if "error" in fused or "error" in mat or "skipped" in mat:
        return
    entry["speedup_vs_materialized"] = round(mat["time_ms"] / fused["time_ms"], 3)
    if "time_ratio" in fused:  # CPU: the median of the per-round ratios (interleaved)
        entry["time_ratio_vs_materialized"] = round(fused["time_ratio"], 3)
    if fused.get("peak_mib") is not None and mat.get("peak_mib") is not None:
        entry["memory_fraction_of_materialized"] = round(fused["peak_mib"] / max(mat["peak_mib"], 1e-3), 4)
    if dry_run:
        return
    if on_cuda and entry["kind"] == "square" and entry["n"] == TARGET_SIZE:
        entry["targets"] = {
            "memory_fraction_at_most": TARGET_MEMORY_FRACTION,
            "speedup_at_least": TARGET_SPEEDUP,
            "met": (entry["memory_fraction_of_materialized"] <= TARGET_MEMORY_FRACTION
                    and entry["speedup_vs_materialized"] >= TARGET_SPEEDUP),
        }
    elif not on_cuda and "time_ratio_vs_materialized" in entry:
        targets: dict = {"time_ratio_at_most": CPU_TIME_RATIO_MAX,
                         "time_met": entry["time_ratio_vs_materialized"] <= CPU_TIME_RATIO_MAX}
        if entry["n"] * entry["m"] >= CPU_MEMORY_FROM and "memory_fraction_of_materialized" in entry:
            targets["memory_fraction_at_most"] = CPU_MEMORY_FRACTION_MAX
            targets["memory_met"] = entry["memory_fraction_of_materialized"] <= CPU_MEMORY_FRACTION_MAX
        targets["met"] = targets["time_met"] and targets.get("memory_met", True)
        entry["targets"] = targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        choices=["cpu", "cuda"])
    parser.add_argument("--quick", action="store_true", help="N in {1024, 2048, 4096}, K = 128, queue 16384")
    parser.add_argument("--sizes", type=int, nargs="*", help="N = M of the square cases")
    parser.add_argument("--dims", type=int, nargs="*", help="K of the square cases")
    parser.add_argument("--moco-queue", type=int, help="queue length of the MoCo case (0: no MoCo case)")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls (CPU: rounds) per measurement")
    parser.add_argument("--dtype", default=None, help="float32 (CPU default) or bfloat16 (CUDA default), ...")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default 1)")
    parser.add_argument("--max-materialized-gib", type=float, default=None,
                        help="skip the materialised version above 3 x N x M elements of this many GiB "
                             "(default 8 on CPU, 70 on CUDA)")
    parser.add_argument("--tag", default="", help="suffix of the JSON's name, for runs of other sizes")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes, Triton kernels (interpreted on a CPU)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(cpu_worker(json.loads(args.worker))))
        return

    on_cuda = args.device == "cuda"
    if not on_cuda:
        torch.set_num_threads(args.threads or 1)
    env = env_info(args.device)  # before the run: the revision measured
    dtype = getattr(torch, args.dtype or ("bfloat16" if on_cuda else "float32"))
    repeats = args.repeats or (20 if on_cuda else (1 if args.dry_run else 3))
    max_materialized = (args.max_materialized_gib or (70.0 if on_cuda else 8.0)) * 2**30
    preset = DRY_RUN if args.dry_run else QUICK if args.quick else FULL
    sizes = args.sizes if args.sizes is not None else preset["sizes"]
    dims = args.dims if args.dims is not None else preset["dims"]
    moco_queue = args.moco_queue if args.moco_queue is not None else preset["moco_queue"]
    element_bytes = torch.tensor([], dtype=dtype).element_size()
    backend = "triton" if args.dry_run else "auto"

    load_before = os.getloadavg()
    results = []
    moco = {k: preset[k] for k in ("moco_batch", "moco_dim") if k in preset}
    for case in build_cases(sizes, dims, moco_queue, **moco):
        logits_bytes = case["n"] * case["m"] * element_bytes
        entry = dict(case, logits_mib=logits_bytes / 2**20,
                     max_abs_diff_vs_float64_oracle=check_agreement(case, args.device, dtype))
        skip = 3 * logits_bytes > max_materialized
        impls = [i for i in IMPLS if not (i == "materialized" and skip)]
        if skip:
            entry["materialized"] = {"skipped": f"3 x N x M x {element_bytes} B = {3 * logits_bytes / 2**30:.1f} GiB "
                                                f"> {max_materialized / 2**30:.0f} GiB"}
        if on_cuda:
            for impl in impls:
                entry[impl] = measure_cuda(case, impl, dtype, repeats)
        else:
            times = measure_cpu_times(case, impls, dtype, repeats, backend, warmup=0 if args.dry_run else 1)
            for impl in impls:
                t = times[impl]
                entry[impl] = {"time_ms": t["time_ms"], "min_time_ms": t["min_time_ms"],
                               "cpu_time_ms": t["cpu_time_ms"], "repeats": repeats, "peak_mib": None}
                if impl == "fused" and "materialized" in times:
                    entry[impl]["time_ratio"] = 1.0 / times["materialized"]["ratio_to_first"]
                if not args.dry_run:  # the memory of one call in a fresh process
                    memory = measure_cpu_memory(case, impl, dtype)
                    entry[impl].update({k: memory[k] for k in ("peak_mib", "first_call_ms") if k in memory})
                    if "error" in memory:
                        entry[impl]["memory_error"] = memory["error"]
        for impl in IMPLS:
            print(f"{case['name']:32s} {impl:13s} {entry[impl]}", flush=True)
        summarize(entry, on_cuda, args.dry_run)
        results.append(entry)

    import zoo.kernels.reference as reference

    payload = {
        "benchmark": "contrastive",
        "env": env,
        "dtype": str(dtype).split(".")[1],
        "temperature": TAU,
        "quick": args.quick,
        "dry_run": args.dry_run,
        "sizes": sizes,
        "dims": dims,
        "moco_queue": moco_queue,
        "repeats": repeats,
        "load_average_1min": {"before": load_before[0], "after": os.getloadavg()[0],
                              "note": "other processes shared the machine; times are noisy where high"},
        "implementations": {
            "fused": "zoo.kernels.info_nce(backend='auto'): "
                     + ("Triton kernels" if on_cuda or args.dry_run else
                        f"chunked PyTorch path, {reference.INFO_NCE_CHUNK_ELEMENTS} logits per chunk, gradients "
                        "accumulated in the forward pass"),
            "materialized": "F.normalize, q @ k.T / tau, F.cross_entropy (zoo.kernels.reference)",
        },
        "timing_method": "CUDA events, median after warm-up" if on_cuda else
        "both implementations interleaved in one process (one warm-up round), perf_counter medians; time ratio = "
        "median over rounds of fused / materialised",
        "memory_method": (
            "torch.cuda.max_memory_allocated() - memory_allocated() before the call, after warm-up"
            if on_cuda else
            "fresh subprocess per measurement; VmHWM (reset via /proc/self/clear_refs) minus VmRSS before "
            "the call: resident memory added at the call's peak, gradients included"),
        "targets": ({"cuda": {"size": TARGET_SIZE, "memory_fraction_at_most": TARGET_MEMORY_FRACTION,
                              "speedup_at_least": TARGET_SPEEDUP}} if on_cuda else
                    {"cpu": {"time_ratio_at_most": CPU_TIME_RATIO_MAX,
                             "memory_fraction_at_most": CPU_MEMORY_FRACTION_MAX,
                             "memory_from_n_times_m": CPU_MEMORY_FROM}}),
        "cases": results,
    }
    if on_cuda:
        payload["device_peaks"] = device_peaks(args.device)
    path = write_result("_".join(filter(None, ["contrastive", device_slug(args.device), args.tag])), payload)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
