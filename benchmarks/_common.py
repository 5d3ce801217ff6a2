"""Shared helpers of the benchmark scripts: where they ran, and writing their JSON.

Every script in ``benchmarks/`` writes one JSON file to ``benchmarks/results/`` holding
``env_info()`` (device, versions, git revision, timestamp) next to its measurements, so a
number in the README can always be traced to the machine and the code that produced it.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import re
import subprocess
from pathlib import Path

import torch

RESULTS_DIR = Path(__file__).resolve().parent / "results"


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


def write_result(name: str, payload: dict) -> Path:
    """Write ``payload`` as indented JSON to ``benchmarks/results/<name>.json`` and return the path. The file is
    replaced whole (written beside it, then renamed), so a script running in parallel never reads half of it."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(partial, path)
    return path
