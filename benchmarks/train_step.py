"""Benchmark of whole training steps: forward + backward + optimizer step, against the step they are compared with.

    python benchmarks/train_step.py [--device cpu|cuda] [--groups G ...] [--frames T] [--size S] [--batch B]
                                    [--steps N] [--warmup W] [--threads N] [--amp none|bf16|fp16]
                                    [--backbones M ...] [--model M] [--cases C ...] [--merge] [--name NAME]
                                    [--dry-run]

Writes ``benchmarks/results/<name>.json`` (default ``train_step_<device>``): per group of cases, the median time of
a step (the engine's optimizer: ``zoo.train.optim.build_optimizer``, SGD with momentum, fused), clips/s, the
step's peak extra memory, and each case's ratio to its baseline (with the targets the case is held to), plus
device, versions, revision and the machine's load before and after the group.

How (so that ratios hold on a noisy, shared machine): every case of a group is built first; then each round runs
one step of every case in turn (interleaved; every other round in reverse order), after ``--warmup`` untimed
steps each (lazy initialisation, and compilation for the compiled cases, with inductor's on-disk caches off:
timed apart as ``first_steps_s``). A case's ratio to its baseline is the median over rounds of the per-round
ratio (a load that drifts between rounds cancels), next to the ratio of the medians, and the ratio of the
fastest rounds (load only ever adds time). On a CPU the wall time and the process CPU time (``process_time``:
with one thread, the time the step computed, not the time it waited for a busy core) are both recorded; the
ratios are given for both. Memory: CPU: the resident memory a step adds at its peak (``malloc_trim`` to hand
freed memory back, the kernel's high-water mark reset via ``/proc/self/clear_refs``, ``VmHWM - VmRSS`` before the
step), measured after the timed rounds; CUDA: ``max_memory_allocated()`` during a step minus
``memory_allocated()`` before it.

Groups:
- ``hcml``: ``r2d_18`` (classification) against ``hcml_r2d_18`` with each HCML stage's objective (``level1``,
  ``level2``, ``level3``, ``joint``) and deployed (classification), with the reference kernels
  (``zoo.kernels.use_backend('torch')``); on CUDA also the joint step with the Triton kernels. Targets on a CPU:
  joint at most 1.25x the backbone's step, deployed at most 1.12x. Also a breakdown of the joint step's extra
  cost (``profile``): forward + backward of each HCML part alone at the step's shapes (the prime motion blocks
  and their cost volumes, the flow head with its loss, each level's predictor + InfoNCE), as fractions of the
  backbone's step.
- ``backbones``: for each of ``--backbones``, the plain model, HCML's joint step and the deployed model (clips of
  at least the HCML model's shortest length).
- ``peers``: the zoo's torchvision-compatible ``r3d_18``, ``mc3_18``, ``r2plus1d_18`` against
  ``torchvision.models.video``'s (target: at most 1.02x); ``peers_video``: ``s3d``, ``mvit_v1_b``, ``mvit_v2_s``,
  ``swin3d_t`` at 16 x 224 x 224, batch 1 (MViT's positional embeddings fix that size).
- ``compile``: eager against ``torch.compile`` (inductor) for ``r2d_18`` and HCML's joint step.
- ``channels_last``: contiguous against channels-last (``zoo.train.runtime.to_channels_last``) for ``r2d_18``,
  HCML's joint step and ``r3d_18``: what the recipes' ``channels_last`` default follows.
- ``weight_grad``: PyTorch's own convolution weight gradients against ``zoo.layers.use_weight_grad_as_conv``'s (what
  the recipes' ``conv_weight_grad`` setting switches) for ``r2d_18`` and HCML's joint step at the quickstart's
  clips (8 x 48 x 48, batch 8), ``r3d_18`` at the SSL benchmarks' (8 x 32 x 32, batch 8) and at the group's
  default size, and ``r2plus1d_18``.
- ``temporal_conv``: PyTorch's ``conv3d`` against ``zoo.layers.use_conv2d_for_temporal_convs`` (what the recipes'
  ``temporal_conv`` setting switches: ``kt x 1 x 1`` convolutions as 2-D ones) for ``r2plus1d_18`` (the group's
  size) and ``s3d`` (16 x 112 x 112, batch 2), the featured models with temporal convolutions.
- ``cpu_bf16``: float32 against bf16 autocast on a CPU (what ``amp: bf16`` does there, on a CPU that computes
  bf16 in hardware) for ``r2d_18`` and HCML's joint step at the quickstart's clips (8 x 48 x 48, batch 8) and at
  the group's size, and ``r3d_18``.
- ``gpu``: ``--model`` (default ``hcml_r2d_50``) at the CUDA sizes: its backbone, the joint step with the reference
  kernels and with the Triton kernels, and the deployed model; ``gpu_compile``: the joint step with the Triton
  kernels, eager and compiled (``benchmarks/gpu_suite.sh`` runs the two apart, so that a compile running out of
  its time leaves the eager figures).

Defaults: CPU 8 frames at 112 px, batch 4, 1 thread, float32, 7 timed rounds after 2 warm-up steps; CUDA
16 frames at 224 px, batch 8, bf16 autocast, 20 rounds after 3. ``--dry-run``: every step at tiny sizes (4 frames
at 32 px, batch 2, one round), HCML with 1-pixel displacements, Triton kernels through the interpreter on a CPU
and ``aot_eager`` for the compiled cases: it checks that the benchmark runs, it measures nothing.
``--merge`` keeps the groups of an existing JSON that this run does not measure.
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, device_slug, env_info, proc_status_mib, write_result  # noqa: E402

NUM_CLASSES = 10
TINY_HCML = {"levels": (1, 2), "max_displacement": 1, "displacement_stride": 1}
TINY_TRITON_INPUT = (3, 16, 1)  # the Triton interpreter runs one program at a time: the smallest clip HCML takes
AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}
CPU_TARGETS = {"hcml_joint_vs_backbone_max": 1.25, "hcml_deployed_vs_backbone_max": 1.12,
               "zoo_vs_torchvision_max": 1.02}


@dataclass
class Case:
    """One training step to time.

    Attributes:
        name: the case's name in the JSON.
        model: a zoo model name, or ``tv:<name>`` for ``torchvision.models.video.<name>``.
        objective: the zoo objective (``classification``, ``hcml``).
        objective_cfg: its keyword arguments (HCML: ``stage``).
        model_kwargs: further ``create_model`` arguments (``hcml_cfg``).
        deploy: drop the HCML side branch before training (the deployed architecture).
        kernels: ``zoo.kernels.use_backend`` during the step: ``torch`` (references) or ``triton``.
        compile: ``torch.compile`` the objective.
        channels_last: channels-last weights and clips.
        weight_grad: weight gradients as convolutions (``zoo.layers.use_weight_grad_as_conv``, what the engine's
            ``conv_weight_grad: conv`` does); otherwise PyTorch's own kernel.
        temporal_conv: temporal convolutions as 2-D ones (``zoo.layers.use_conv2d_for_temporal_convs``, what the
            engine's ``temporal_conv: conv2d`` does); otherwise PyTorch's ``conv3d``.
        amp: this case's autocast dtype (``none``, ``bf16``, ``fp16``) where it differs from the run's ``--amp``.
        baseline: the case this one is compared with.
        target: the ratio to the baseline this case must not exceed (None: no target).
        input: ``(frames, size, batch)`` when it differs from the group's.
    """

    name: str
    model: str
    objective: str = "classification"
    objective_cfg: dict[str, Any] = field(default_factory=dict)
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    deploy: bool = False
    kernels: str = "torch"
    compile: bool = False
    channels_last: bool = False
    weight_grad: bool = False
    temporal_conv: bool = False
    amp: str | None = None
    baseline: str | None = None
    target: float | None = None
    input: tuple[int, int, int] | None = None


# ------------------------------------------------------------------------------------------------ groups


def _hcml_kwargs(settings: dict) -> dict[str, Any]:
    return {"hcml_cfg": dict(TINY_HCML)} if settings["dry_run"] else {}


def group_hcml(settings: dict) -> list[Case]:
    kw = _hcml_kwargs(settings)
    cases = [Case("r2d_18", "r2d_18")]
    levels = kw.get("hcml_cfg", {}).get("levels", (1, 2, 3))  # the dry run's tiny HCML has levels 1 and 2
    for stage in (*(f"level{lv}" for lv in levels), "joint"):
        cases.append(Case(f"hcml_r2d_18.{stage}", "hcml_r2d_18", "hcml", {"stage": stage}, kw, baseline="r2d_18",
                          target=CPU_TARGETS["hcml_joint_vs_backbone_max"] if stage == "joint" else None))
    cases.append(Case("hcml_r2d_18.deployed", "hcml_r2d_18", model_kwargs=kw, deploy=True, baseline="r2d_18",
                      target=CPU_TARGETS["hcml_deployed_vs_backbone_max"]))
    if settings["cuda"] or settings["dry_run"]:
        cases.append(Case("hcml_r2d_18.joint.triton", "hcml_r2d_18", "hcml", {"stage": "joint"}, kw, kernels="triton",
                          baseline="hcml_r2d_18.joint"))
    if settings["cuda"]:  # the targets are the CPU's
        for case in cases:
            case.target = None
    return cases


def group_backbones(settings: dict) -> list[Case]:
    kw = _hcml_kwargs(settings)
    cases = []
    for name in settings["backbones"]:
        hcml = f"hcml_{name}" if f"hcml_{name}" in _registered() else "hcml"
        extra = dict(kw) if hcml != "hcml" else dict(kw, backbone=name)
        frames = max(settings["frames"], _hcml_min_frames(hcml, extra))
        size = max(settings["size"], _hcml_min_size(hcml, extra))
        shape = (frames, size, settings["batch"])
        cases += [Case(name, name, input=shape),
                  Case(f"hcml_{name}.joint", hcml, "hcml", {"stage": "joint"}, extra, baseline=name, input=shape),
                  Case(f"hcml_{name}.deployed", hcml, model_kwargs=extra, deploy=True, baseline=name, input=shape)]
    return cases


def group_peers(settings: dict) -> list[Case]:
    target = None if settings["cuda"] else CPU_TARGETS["zoo_vs_torchvision_max"]
    cases = []
    for name in ("r3d_18", "mc3_18", "r2plus1d_18"):
        cases += [Case(f"tv:{name}", f"tv:{name}"), Case(name, name, baseline=f"tv:{name}", target=target)]
    return cases


def group_peers_video(settings: dict) -> list[Case]:
    target = None if settings["cuda"] else CPU_TARGETS["zoo_vs_torchvision_max"]
    shape = (4, 32, 1) if settings["dry_run"] else (16, 224, 1)
    cases = []
    for name in ("s3d", "mvit_v1_b", "mvit_v2_s", "swin3d_t"):
        if settings["dry_run"] and name.startswith("mvit"):
            continue  # MViT takes 16 x 224 x 224 clips only
        cases += [Case(f"tv:{name}", f"tv:{name}", input=shape),
                  Case(name, name, baseline=f"tv:{name}", target=target, input=shape)]
    return cases


def group_compile(settings: dict) -> list[Case]:
    kw = _hcml_kwargs(settings)
    joint = {"stage": "joint"}
    return [Case("r2d_18", "r2d_18"), Case("r2d_18.compiled", "r2d_18", compile=True, baseline="r2d_18"),
            Case("hcml_r2d_18.joint", "hcml_r2d_18", "hcml", joint, kw),
            Case("hcml_r2d_18.joint.compiled", "hcml_r2d_18", "hcml", joint, kw, compile=True,
                 baseline="hcml_r2d_18.joint")]


def group_channels_last(settings: dict) -> list[Case]:
    kw = _hcml_kwargs(settings)
    joint = {"stage": "joint"}
    return [Case("r2d_18", "r2d_18"), Case("r2d_18.channels_last", "r2d_18", channels_last=True, baseline="r2d_18"),
            Case("hcml_r2d_18.joint", "hcml_r2d_18", "hcml", joint, kw),
            Case("hcml_r2d_18.joint.channels_last", "hcml_r2d_18", "hcml", joint, kw, channels_last=True,
                 baseline="hcml_r2d_18.joint"),
            Case("r3d_18", "r3d_18"), Case("r3d_18.channels_last", "r3d_18", channels_last=True, baseline="r3d_18")]


def _switched_pairs(settings: dict, steps: list[tuple], suffix: str, base: dict[str, Any],
                    switched: dict[str, Any]) -> list[Case]:
    """For each ``(name, model, objective, objective_cfg, input)`` step: the step with the ``base`` Case settings, and
    ``<name>.<suffix>`` with the ``switched`` ones, compared with it."""
    kw = _hcml_kwargs(settings)
    cases = []
    for name, model, objective, cfg, shape in steps:
        extra = kw if model.startswith("hcml") else {}
        cases += [Case(name, model, objective, cfg, extra, input=shape, **base),
                  Case(f"{name}.{suffix}", model, objective, cfg, extra, baseline=name, input=shape, **switched)]
    return cases


def group_weight_grad(settings: dict) -> list[Case]:
    joint = {"stage": "joint"}
    # the quickstart's clips (8 x 48 x 48, batch 8), the SSL benchmarks' (8 x 32 x 32, batch 8), the default 112 px
    quick, ssl = ((8, 32, 2), (8, 32, 2)) if settings["dry_run"] else ((8, 48, 8), (8, 32, 8))
    return _switched_pairs(settings, [
        ("r2d_18.48px", "r2d_18", "classification", {}, quick),
        ("hcml_r2d_18.joint.48px", "hcml_r2d_18", "hcml", joint, quick),
        ("r3d_18.32px", "r3d_18", "classification", {}, ssl),
        ("r3d_18", "r3d_18", "classification", {}, None),
        ("r2plus1d_18", "r2plus1d_18", "classification", {}, None)], "weight_grad", {}, {"weight_grad": True})


def group_temporal_conv(settings: dict) -> list[Case]:
    s3d = (8, 32, 2) if settings["dry_run"] else (16, 112, 2)
    cases = []
    for name, shape in (("r2plus1d_18", None), ("s3d", s3d)):
        cases += [Case(name, name, input=shape),
                  Case(f"{name}.temporal_conv", name, temporal_conv=True, baseline=name, input=shape)]
    return cases


def group_cpu_bf16(settings: dict) -> list[Case]:
    """float32 against bf16 autocast on a CPU (what a recipe's ``amp: bf16`` does there): ``r2d_18`` and HCML's joint
    step at the quickstart's clips and at the group's size, ``r3d_18`` at the group's size."""
    joint = {"stage": "joint"}
    quick = (8, 32, 2) if settings["dry_run"] else (8, 48, 8)
    return _switched_pairs(settings, [
        ("r2d_18.48px", "r2d_18", "classification", {}, quick),
        ("hcml_r2d_18.joint.48px", "hcml_r2d_18", "hcml", joint, quick),
        ("r2d_18", "r2d_18", "classification", {}, None),
        ("hcml_r2d_18.joint", "hcml_r2d_18", "hcml", joint, None),
        ("r3d_18", "r3d_18", "classification", {}, None)], "bf16", {"amp": "none"}, {"amp": "bf16"})


def group_gpu(settings: dict) -> list[Case]:
    name = settings["model"]
    kw = _hcml_kwargs(settings)
    backbone = name[len("hcml_"):] if name.startswith("hcml_") else name
    joint = {"stage": "joint"}
    shape = TINY_TRITON_INPUT if settings["dry_run"] else None
    cases = [Case(backbone, backbone),
             Case(f"{name}.joint", name, "hcml", joint, kw, kernels="torch", baseline=backbone),
             Case(f"{name}.joint.triton", name, "hcml", joint, kw, kernels="triton", baseline=f"{name}.joint"),
             Case(f"{name}.deployed", name, model_kwargs=kw, deploy=True, kernels="triton", baseline=backbone)]
    for case in cases:
        case.input = shape
    return cases


def group_gpu_compile(settings: dict) -> list[Case]:
    """The gpu group's joint step with the Triton kernels, eager and compiled (apart: compiling takes minutes)."""
    name = settings["model"]
    kw = _hcml_kwargs(settings)
    joint = {"stage": "joint"}
    shape = TINY_TRITON_INPUT if settings["dry_run"] else None
    kernels = "torch" if settings["dry_run"] and not settings["cuda"] else "triton"  # the gpu group interprets once
    return [Case(f"{name}.joint.triton", name, "hcml", joint, kw, kernels=kernels, input=shape),
            Case(f"{name}.joint.triton.compiled", name, "hcml", joint, kw, kernels=kernels, compile=True,
                 baseline=f"{name}.joint.triton", input=shape)]


GROUPS: dict[str, Callable[[dict], list[Case]]] = {
    "hcml": group_hcml, "backbones": group_backbones, "peers": group_peers, "peers_video": group_peers_video,
    "compile": group_compile, "channels_last": group_channels_last, "weight_grad": group_weight_grad,
    "temporal_conv": group_temporal_conv, "cpu_bf16": group_cpu_bf16,
    "gpu": group_gpu, "gpu_compile": group_gpu_compile,
}
DEFAULT_GROUPS = {"cpu": ["hcml", "peers", "channels_last"], "cuda": ["gpu"]}


def _registered() -> set[str]:
    from zoo import list_models

    return set(list_models())


def _hcml_min_frames(name: str, kwargs: dict) -> int:
    from zoo import create_model

    model = create_model(name, num_classes=NUM_CLASSES, **kwargs)
    return int(getattr(model, "min_train_frames", model.min_frames))  # the contrastive deltas need more frames


def _hcml_min_size(name: str, kwargs: dict) -> int:
    from zoo import create_model

    return int(getattr(create_model(name, num_classes=NUM_CLASSES, **kwargs), "min_size", 1))


# ------------------------------------------------------------------------------------------------ building


def build_model(case: Case) -> nn.Module:
    if case.model.startswith("tv:"):
        import torchvision.models.video as tv

        return getattr(tv, case.model[3:])(num_classes=NUM_CLASSES)
    from zoo import create_model

    model = create_model(case.model, num_classes=NUM_CLASSES, **case.model_kwargs)
    if case.deploy:
        model.deploy()
    return model


@dataclass
class Built:
    """A case ready to step: its step function and what it was built with."""

    case: Case
    step: Callable[[], None]
    shape: tuple[int, int, int]
    params_m: float
    times: list[float] = field(default_factory=list)
    cpu_times: list[float] = field(default_factory=list)
    first_steps_s: float = 0.0
    fallback: str | None = None
    forward: nn.Module | None = None


def build_case(case: Case, settings: dict) -> Built:
    from zoo.kernels import use_backend
    from zoo.layers import use_conv2d_for_temporal_convs, use_weight_grad_as_conv
    from zoo.methods import create_objective
    from zoo.train.optim import build_optimizer
    from zoo.train.recipe import OptimConfig
    from zoo.train.runtime import CompiledObjective, to_channels_last

    device = settings["device"]
    if settings["dry_run"] and case.kernels == "triton" and not settings["cuda"]:
        case.input = TINY_TRITON_INPUT
        if case.compile or case.deploy:  # the interpreter once (the joint step) is enough for a dry run
            case.kernels = "torch"
    frames, size, batch = case.input or (settings["frames"], settings["size"], settings["batch"])
    torch.manual_seed(0)
    model = build_model(case)  # a torchvision model goes behind the same classification objective
    objective = create_objective(case.objective, model, **case.objective_cfg).to(device)
    if case.channels_last:
        to_channels_last(objective)
    if case.weight_grad:
        use_weight_grad_as_conv(objective)
    if case.temporal_conv:
        use_conv2d_for_temporal_convs(objective)
    params = objective.trainable_parameters()
    names = {id(p): n for n, p in objective.named_parameters()}
    # the engine's optimizer (SGD, momentum 0.9, weight decay on weights; fused where torch has the kernel)
    optimizer = build_optimizer([(names[id(p)], p) for p in params], OptimConfig(), lr=1e-3)
    objective.train()
    forward: nn.Module = objective
    if case.compile:
        backend = "eager" if settings["dry_run"] else "inductor"  # dry run: dynamo's tracing, no code generation
        _cold_compile_caches()
        forward = CompiledObjective(objective, backend=backend, label=case.name)
    gen = torch.Generator(device="cpu").manual_seed(1)
    clips = torch.randn(batch, 3, frames, size, size, generator=gen).to(device)
    if case.channels_last:
        clips = clips.contiguous(memory_format=torch.channels_last_3d)
    labels = torch.randint(0, NUM_CLASSES, (batch,), generator=gen).to(device)
    amp = settings["amp"] if case.amp is None else AMP_DTYPES[case.amp]
    autocast = torch.autocast(device.type, dtype=amp) if amp is not None else contextlib.nullcontext()
    cuda = device.type == "cuda"

    def step() -> None:
        with use_backend(case.kernels), autocast:
            out = forward(clips, labels)
        out["loss"].backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize(device)

    return Built(case, step, (frames, size, batch), sum(p.numel() for p in params) / 1e6, forward=forward)


def _cold_compile_caches() -> None:
    """Turn off inductor's and AOTAutograd's on-disk caches, so that ``first_steps_s`` is the compile a first run
    pays, not a cache hit from an earlier benchmark."""
    import torch._functorch.config as functorch_config
    import torch._inductor.config as inductor_config

    for config, name in ((inductor_config, "fx_graph_cache"), (functorch_config, "enable_autograd_cache")):
        if hasattr(config, name):
            setattr(config, name, False)


# ------------------------------------------------------------------------------------------------ measuring


def _malloc_trim() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_memory_mib(step: Callable[[], None], device: torch.device) -> float | None:
    """The memory one more step adds at its peak (see the module docstring), in MiB."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        step()
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    _malloc_trim()
    try:
        Path("/proc/self/clear_refs").write_text("5")
        before = proc_status_mib("VmRSS")
    except OSError:
        return None
    step()
    return proc_status_mib("VmHWM") - before


def _median_ratio(a: list[float], b: list[float]) -> float:
    return statistics.median(x / y for x, y in zip(a, b))


def run_group(name: str, settings: dict) -> dict:
    device = settings["device"]
    cases = GROUPS[name](settings)
    if settings.get("cases"):  # only these cases, with the baselines they are compared with
        wanted = set(settings["cases"]) | {c.baseline for c in cases if c.name in settings["cases"] and c.baseline}
        cases = [c for c in cases if c.name in wanted]
        if not cases:
            raise SystemExit(f"--cases {settings['cases']}: none is a case of group {name!r}")
    load_before = os.getloadavg()
    start = time.perf_counter()
    built = []
    for case in cases:
        built.append(build_case(case, settings))
        print(f"[{name}] built {case.name}", flush=True)
    for b in built:  # warm-up: lazy initialisation, autotuning, compilation
        t0 = time.perf_counter()
        for _ in range(settings["warmup"]):
            b.step()
        b.first_steps_s = time.perf_counter() - t0
        b.fallback = getattr(b.forward, "fallback_reason", None)
    for round_index in range(settings["steps"]):
        # every other round in reverse order: no case always runs right after the same one (the cache and the
        # allocator's state a step leaves behind favour or slow the next)
        for b in (built if round_index % 2 == 0 else built[::-1]):
            t0, c0 = time.perf_counter(), time.process_time()
            b.step()
            b.times.append(time.perf_counter() - t0)
            b.cpu_times.append(time.process_time() - c0)
        print(f"[{name}] round {round_index + 1}/{settings['steps']}: "
              + ", ".join(f"{b.case.name} {1e3 * b.times[-1]:.0f} ms" for b in built), flush=True)
    # One more step each for the memory (in a dry run, not for the interpreted kernels: they are slow)
    peaks = {b.case.name: None if settings["dry_run"] and b.case.kernels == "triton" and not settings["cuda"]
             else peak_memory_mib(b.step, device) for b in built}
    by_name = {b.case.name: b for b in built}
    results = []
    for b in built:
        c = b.case
        frames, size, batch = b.shape
        median_s = statistics.median(b.times)
        entry: dict[str, Any] = {
            "name": c.name, "model": c.model, "objective": c.objective, **({"stage": c.objective_cfg["stage"]}
                                                                         if "stage" in c.objective_cfg else {}),
            "deployed": c.deploy, "kernels": c.kernels, "compiled": c.compile, "channels_last": c.channels_last,
            "weight_grad": c.weight_grad, "temporal_conv": c.temporal_conv,
            "amp": c.amp or next(k for k, v in AMP_DTYPES.items() if v == settings["amp"]),
            "frames": frames, "size": size, "batch": batch, "trainable_params_m": round(b.params_m, 3),
            "median_ms": round(1e3 * median_s, 2), "min_ms": round(1e3 * min(b.times), 2),
            "median_cpu_ms": round(1e3 * statistics.median(b.cpu_times), 2),
            "clips_per_s": round(batch / median_s, 3), "peak_mib": None if peaks[c.name] is None else
            round(peaks[c.name], 1), "first_steps_s": round(b.first_steps_s, 2), "warmup_steps": settings["warmup"],
            "times_ms": [round(1e3 * t, 2) for t in b.times],
        }
        if c.compile:
            entry["compile_fallback"] = b.fallback
        if c.baseline:
            base = by_name[c.baseline]
            entry["baseline"] = c.baseline
            entry["ratio"] = round(_median_ratio(b.times, base.times), 4)
            entry["ratio_of_medians"] = round(median_s / statistics.median(base.times), 4)
            entry["ratio_of_minima"] = round(min(b.times) / min(base.times), 4)  # load only adds time
            entry["cpu_time_ratio"] = round(_median_ratio(b.cpu_times, base.cpu_times), 4)
            if c.target is not None:
                entry["target_max"] = c.target
                entry["met"] = entry["ratio"] <= c.target
        results.append(entry)
    out = {"env": env_info(device), "load_average_before": [round(v, 2) for v in load_before],
           "load_average_after": [round(v, 2) for v in os.getloadavg()], "cpu_count": os.cpu_count(),
           "wall_time_s": round(time.perf_counter() - start, 1),
           "settings": {k: (str(v) if isinstance(v, (torch.device, torch.dtype)) else v) for k, v in settings.items()
                        if k not in ("backbones", "model") or name in ("backbones", "gpu", "gpu_compile")},
           "cases": results}
    if name == "hcml" and not settings["cuda"] and not settings["dry_run"]:
        out["profile"] = profile_hcml(settings, by_name["r2d_18"].times)
    return out


# ------------------------------------------------------------------------------------------------ HCML's parts


def profile_hcml(settings: dict, backbone_times: list[float]) -> dict:
    """Where the joint step's extra time goes: forward + backward of each HCML part alone, at the joint step's
    shapes, interleaved; in ms and as a fraction of the backbone's step (median of ``backbone_times``)."""
    from zoo import create_model
    from zoo.adapters import capture_motion, hcml_stages
    from zoo.kernels import use_backend
    from zoo.methods.hcml import contrastive_motion_loss, level_frames, reconstruction_loss

    torch.manual_seed(0)
    frames, size, batch = settings["frames"], settings["size"], settings["batch"]
    clips = torch.randn(batch, 3, frames, size, size)
    model = create_model("hcml_r2d_18", num_classes=NUM_CLASSES)
    stages = hcml_stages(model)
    features: dict[int, torch.Tensor] = {}
    hooks = [s.stage.register_forward_hook(lambda _m, _i, out, lv=lv: features.__setitem__(lv, out.detach()))
             for lv, s in stages.items()]
    with torch.no_grad(), capture_motion(model) as motion:
        model(clips)
    for h in hooks:
        h.remove()
    motion = {lv: p.detach().requires_grad_() for lv, p in motion.items()}
    parts: dict[str, Callable[[], None]] = {}
    for lv, s in stages.items():
        f = features[lv].requires_grad_()
        parts[f"prime_motion_block_l{lv}"] = lambda s=s, f=f: (f + s.fuse(s.motion(f))).sum().backward()
        reduced = s.motion.reduce(f).detach().requires_grad_()
        parts[f"cost_volume_l{lv}"] = lambda s=s, r=reduced: s.motion.cost_volume(r).sum().backward()
    cfg = model.hcml_cfg
    for lv in cfg.flow_levels:
        def flow(lv: int = lv) -> None:
            p = motion[lv]
            fl = model.hcml["flow"][str(lv)](p[:, :, :-1])
            fl = torch.cat([fl, fl.new_zeros(fl[:, :, -1:].shape)], dim=2)
            fr = F.adaptive_avg_pool3d(level_frames(clips, stages[lv].temporal_reduction, p.shape[2]), fl.shape[2:])
            reconstruction_loss(fl, fr)["reconstruct"].backward()
        parts[f"flow_head_and_loss_l{lv}"] = flow
    for lv in cfg.contrastive_levels:
        lower = cfg.lower_level(lv)
        parts[f"predictor_and_info_nce_l{lv}"] = lambda lv=lv, lower=lower: contrastive_motion_loss(
            model.hcml["predict"][str(lv)], motion[lv], motion[lower], global_keys=False)[0].backward()
    times: dict[str, list[float]] = {k: [] for k in parts}
    with use_backend("torch"):
        for fn in parts.values():
            fn()
        for _ in range(settings["steps"]):
            for k, fn in parts.items():
                t0 = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t0)
    backbone = statistics.median(backbone_times)
    return {"method": "forward + backward of each part alone at the joint step's shapes (hcml_r2d_18, default "
                      "config), interleaved; fraction = median ms / the r2d_18 step's median ms",
            "parts": {k: {"median_ms": round(1e3 * statistics.median(v), 2),
                          "fraction_of_backbone_step": round(statistics.median(v) / backbone, 4)}
                      for k, v in times.items()}}


# ------------------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    parser.add_argument("--groups", nargs="*", choices=list(GROUPS), help="default: hcml peers channels_last (CPU), "
                                                                           "gpu (CUDA)")
    parser.add_argument("--frames", type=int)
    parser.add_argument("--size", type=int)
    parser.add_argument("--batch", type=int)
    parser.add_argument("--steps", type=int, help="timed rounds (every case steps once per round)")
    parser.add_argument("--warmup", type=int, help="untimed steps per case first (compilation included)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default 1 on a CPU)")
    parser.add_argument("--amp", choices=["none", "bf16", "fp16"], help="autocast dtype (default: bf16 on CUDA)")
    parser.add_argument("--backbones", nargs="*", default=None, help="the backbones group's models")
    parser.add_argument("--model", default="hcml_r2d_50", help="the gpu group's HCML model")
    parser.add_argument("--cases", nargs="*", default=None, help="only these cases of the groups (and their baselines)")
    parser.add_argument("--merge", action="store_true", help="keep the other groups of an existing JSON")
    parser.add_argument("--name", default=None, help="result file name (default train_step_<device>)")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes, one round: check that it runs")
    args = parser.parse_args(argv)

    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no GPU")
    if args.dry_run:
        defaults = dict(frames=8, size=32, batch=2, steps=1, warmup=0)
    elif cuda:
        defaults = dict(frames=16, size=224, batch=8, steps=20, warmup=3)
    else:
        defaults = dict(frames=8, size=112, batch=4, steps=7, warmup=2)
    given = {k: getattr(args, k) for k in defaults if getattr(args, k) is not None}
    settings: dict[str, Any] = {**defaults, **given}
    amp = args.amp or ("bf16" if cuda else "none")
    settings.update(device=torch.device(args.device), cuda=cuda, dry_run=args.dry_run, cases=args.cases,
                    amp=AMP_DTYPES[amp],
                    backbones=args.backbones or (["r2d_50", "r2plus1d_18", "s3d"] if cuda else ["r2d_50"]),
                    model=args.model if not args.dry_run or args.model != "hcml_r2d_50" else "hcml_r2d_18")
    if not cuda:
        torch.set_num_threads(args.threads or 1)
    settings["threads"] = torch.get_num_threads()
    groups = args.groups or DEFAULT_GROUPS["cuda" if cuda else "cpu"]

    name = args.name or f"train_step_{device_slug(args.device)}" + ("_dry_run" if args.dry_run else "")
    path = RESULTS_DIR / f"{name}.json"
    payload: dict[str, Any] = {"benchmark": "train_step", "groups": {}}
    if args.merge and path.is_file():
        payload = json.loads(path.read_text())
    payload["description"] = __doc__.split("\n\n")[2].replace("\n", " ")
    if not cuda:
        payload["targets"] = CPU_TARGETS
    for group in groups:
        payload["groups"][group] = run_group(group, settings)
        print_group(group, payload["groups"][group])
    payload["env"] = env_info(args.device)
    out = write_result(name, payload)
    print(f"wrote {out}")
    return 0


def print_group(name: str, group: dict) -> None:
    print(f"\n{name}: load {group['load_average_before'][0]} -> {group['load_average_after'][0]}, "
          f"{group['settings']['threads']} thread(s)")
    for c in group["cases"]:
        ratio = f"{c['ratio']:.3f}x {c['baseline']}" if "ratio" in c else ""
        met = "" if "met" not in c else (" (target met)" if c["met"] else f" (target {c['target_max']}x NOT met)")
        shape = f"{c['batch']}x{c['frames']}x{c['size']}"
        print(f"  {c['name']:34s} {shape:>10s} {c['median_ms']:9.1f} ms {c['clips_per_s']:8.2f} clips/s "
              f"{c['peak_mib'] if c['peak_mib'] is not None else '-':>8} MiB  {ratio}{met}")


if __name__ == "__main__":
    sys.exit(main())

