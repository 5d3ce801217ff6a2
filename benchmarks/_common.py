"""Shared helpers of the benchmark scripts: where they ran, writing their JSON, and timing a call.

Every script in ``benchmarks/`` writes one JSON file to ``benchmarks/results/`` holding
``env_info()`` (device, versions, git revision, timestamp) next to its measurements, so a
number in the README can always be traced to the machine and the code that produced it.

The kernel benchmarks (``correlation.py``, ``contrastive.py``) time one call the same way:
- CPU: each measurement runs in a fresh subprocess (:func:`run_worker`: the script again with
  ``--worker <spec JSON>``, printing its result as the last line of JSON), which resets the
  kernel's resident-set high-water mark (``echo 5 > /proc/self/clear_refs``), runs the call
  once and reads ``VmHWM - VmRSS(before)`` from ``/proc/self/status``: the resident memory the
  call added at its peak (a fresh process has no cached blocks to hide behind); then the median
  ``perf_counter`` and ``process_time`` of the timed calls (:func:`measure_cpu_call`).
- CUDA: three warm-up calls (autotuning, compilation, allocator), then
  ``torch.cuda.max_memory_allocated()`` during one call minus ``memory_allocated()`` before it,
  then the median of CUDA events around each timed call (:func:`measure_cuda_call`).
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from zoo.train.runtime import cpu_has_native_bf16

RESULTS_DIR = Path(os.environ.get("ZOO_BENCH_RESULTS") or Path(__file__).resolve().parent / "results")
"""Where the JSON files go: ``benchmarks/results/``, or ``$ZOO_BENCH_RESULTS`` (dry runs write to a temporary one)."""

# Peak figures of the GPUs the suite expects (the zoo.kernels docstring; dense, no sparsity), by name substring.
DEVICE_PEAKS = {
    "h200": {"hbm_bytes_per_s": 4.8e12, "fp32_flops": 67e12, "tf32_flops": 495e12, "bf16_flops": 989e12},
    "h100": {"hbm_bytes_per_s": 3.35e12, "fp32_flops": 67e12, "tf32_flops": 495e12, "bf16_flops": 989e12},
}


def device_name(device: str | torch.device) -> str:
    """Human-readable name of a device: the GPU's name, or the CPU's model name."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_slug(device: str | torch.device) -> str:
    """A file-name-safe short form of :func:`device_name`, e.g. ``nvidia_h100_80gb_hbm3`` or ``cpu``."""
    device = torch.device(device)
    if device.type != "cuda":
        return device.type
    return re.sub(r"[^a-z0-9]+", "_", device_name(device).lower()).strip("_")


def git_revision() -> str:
    """The repository's HEAD commit, ``+dirty`` if tracked files differ from it, 'unknown' outside git."""
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + ("+dirty" if dirty else "")


def moving_digits_version() -> int:
    """The Moving-Digits generator's version (``zoo.data.moving_digits._VERSION``): version 2 is the first whose
    videos are the same bytes on every generation."""
    from zoo.data import moving_digits

    return moving_digits._VERSION


def env_info(device: str | torch.device = "cpu") -> dict:
    """Where a benchmark ran: device, threads, Python/torch/triton/CUDA versions, git revision, load, time."""
    try:
        import triton
        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    return {
        "device": str(torch.device(device)),
        "device_name": device_name(device),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),  # AVX2 / AVX512 / ...: oneDNN's kernels differ
        "cpu_bf16": cpu_has_native_bf16(),  # whether amp: bf16 autocasts on this CPU (else float32)
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "triton": triton_version,
        "cuda": torch.version.cuda,
        "git_revision": git_revision(),
        "moving_digits_generator": moving_digits_version(),  # which Moving-Digits the figures were measured on
        "load_average_1m": round(os.getloadavg()[0], 2),  # CPU timings on a busy machine are noisy
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def device_peaks(device: str | torch.device) -> dict | None:
    """The peak memory bandwidth and FLOP/s of a CUDA device named in :data:`DEVICE_PEAKS` (H100 SXM, H200), with
    ``"name"`` the entry it matched; None for other devices (a CPU, an unlisted GPU)."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    name = device_name(device).lower()
    for key, peaks in DEVICE_PEAKS.items():
        if key in name:
            return {"name": key, **peaks}
    return None


def achieved(flops: float, nbytes: float, time_ms: float, peaks: dict | None, dtype: torch.dtype) -> dict:
    """Achieved FLOP/s and bandwidth of a call that did ``flops`` useful FLOPs over at least ``nbytes`` bytes in
    ``time_ms``, and their fractions of the device's peaks (the compute peak of ``dtype``: fp32 FMA for float32,
    the tensor cores for bf16/fp16)."""
    seconds = time_ms / 1e3
    out = {"tflop_per_s": round(flops / seconds / 1e12, 3), "tb_per_s": round(nbytes / seconds / 1e12, 4)}
    if peaks:
        compute = peaks["fp32_flops"] if dtype == torch.float32 else peaks["bf16_flops"]
        out["fraction_of_peak_flops"] = round(flops / seconds / compute, 4)
        out["fraction_of_peak_bandwidth"] = round(nbytes / seconds / peaks["hbm_bytes_per_s"], 4)
    return out


def time_interleaved(calls: dict[str, Callable[[], object]], repeats: int, warmup: int = 1,
                     sync: Callable[[], None] | None = None) -> dict[str, dict]:
    """Median wall and CPU time of each call, measured in rounds that run every call once in turn (so that a
    machine's load drifting over the rounds hits every call alike), after ``warmup`` untimed rounds; plus the
    median over rounds of each call's time divided by the first call's (``ratio_to_first``)."""
    for _ in range(warmup):
        for call in calls.values():
            call()
            if sync:
                sync()
    times: dict[str, list[float]] = {k: [] for k in calls}
    cpu: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(repeats):
        for key, call in calls.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            call()
            if sync:
                sync()
            times[key].append(time.perf_counter() - start)
            cpu[key].append(time.process_time() - start_cpu)
    first = next(iter(calls))
    return {key: {"time_ms": 1e3 * statistics.median(v), "min_time_ms": 1e3 * min(v),
                  "cpu_time_ms": 1e3 * statistics.median(cpu[key]), "repeats": repeats,
                  "ratio_to_first": statistics.median(a / b for a, b in zip(v, times[first]))}
            for key, v in times.items()}


def write_result(name: str, payload: dict) -> Path:
    """Write ``payload`` as indented JSON to ``benchmarks/results/<name>.json`` and return the path. The file is
    replaced whole (written beside it, then renamed), so a script running in parallel never reads half of it."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(partial, path)
    return path


# ------------------------------------------------------------------------------ timing one call


def proc_status_mib(field: str) -> float:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``, ...) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure_cpu_peak(call: Callable[[], object]) -> tuple[float, float]:
    """``(peak extra resident MiB, seconds)`` of one ``call()``: the kernel's high-water mark, reset first (``echo 5 >
    /proc/self/clear_refs``), minus the resident memory before. Meant for a fresh process."""
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = proc_status_mib("VmRSS")
    start = time.perf_counter()
    call()
    seconds = time.perf_counter() - start
    return proc_status_mib("VmHWM") - before, seconds


def measure_cpu_call(call: Callable[[], object], repeats: int) -> dict:
    """In a fresh process: the peak extra resident memory of one ``call()``, then its median time over ``repeats``
    more calls (the memory run doubles as warm-up; ``repeats=0``: the memory only). Create the inputs before
    calling this."""
    peak, first = measure_cpu_peak(call)
    if repeats == 0:
        return {"first_call_ms": 1e3 * first, "peak_mib": peak}
    times, cpu_times = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        call()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - start_cpu)
    return {"time_ms": 1e3 * statistics.median(times), "min_time_ms": 1e3 * min(times),
            "cpu_time_ms": 1e3 * statistics.median(cpu_times), "first_call_ms": 1e3 * first,
            "peak_mib": peak, "repeats": repeats}


def run_worker(script: str, spec: dict) -> dict:
    """Run ``script --worker <spec as JSON>`` in a fresh Python process and return the JSON of its last stdout
    line, or ``{"error": <its last stderr line>}`` if it failed."""
    proc = subprocess.run([sys.executable, script, "--worker", json.dumps(spec)], capture_output=True, text=True)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        return {"error": lines[-1] if lines else f"exit status {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_cuda_call(call: Callable[[], object], repeats: int, warmup: int = 3) -> dict:
    """Peak extra CUDA memory of one ``call()`` after ``warmup`` calls, then the median of CUDA events around
    ``repeats`` calls; ``{"error": ...}`` when it runs out of memory."""
    try:
        for _ in range(warmup):  # autotuning, compilation, allocator
            call()
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        call()
        torch.cuda.synchronize()
        peak = (torch.cuda.max_memory_allocated() - before) / 2**20
        times = []
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            call()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
    except torch.cuda.OutOfMemoryError as err:
        torch.cuda.empty_cache()
        return {"error": f"out of memory: {str(err).splitlines()[0]}"}
    return {"time_ms": statistics.median(times), "min_time_ms": min(times), "peak_mib": peak, "repeats": repeats}
