"""Where and how a run computes: device, mixed precision, memory format, process group, batch norms.

:func:`setup_runtime` turns a recipe's ``device``, ``amp``, ``channels_last``, ``conv_weight_grad``, ``temporal_conv``,
``threads`` and ``deterministic`` settings into a :class:`Runtime`, with the process group torchrun describes.
:func:`to_channels_last` puts a model's weights in the channels-last formats, :class:`CompiledObjective`
is ``torch.compile`` of a stage's objective with its fallback (the recipe's ``compile`` settings), and
:func:`conv3d_precision_warning` names a cuDNN whose reduced-precision 3-D convolutions are known bad.
"""
from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..layers.temporal_conv import default_temporal_conv_mode, use_conv2d_for_temporal_convs
from ..layers.weight_grad import default_weight_grad_mode, use_weight_grad_as_conv
from ..utils.distributed import DistInfo, init_distributed

__all__ = ["Runtime", "setup_runtime", "resolve_device", "resolve_amp", "cpu_has_native_bf16", "convert_batchnorm",
           "in_main_thread", "to_channels_last", "CompiledObjective", "COMPILE_MODES", "conv3d_precision_warning"]

_logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    """What a run computes on: the process group, the device, the autocast dtype (None: float32), whether
    clips go channels-last, how convolutions' weight gradients are computed (``conv`` or ``native``) and temporal
    3-D convolutions (``conv2d`` or ``native``)."""

    dist: DistInfo = field(default_factory=DistInfo)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    amp_dtype: torch.dtype | None = None
    channels_last: bool = False
    conv_weight_grad: str = "native"
    temporal_conv: str = "native"

    def switch_weight_grads(self, module: nn.Module) -> int:
        """With ``conv_weight_grad == 'conv'``, the convolutions of ``module`` where it was measured faster
        compute their weight gradients as convolutions (``zoo.layers.use_weight_grad_as_conv``); how many."""
        return use_weight_grad_as_conv(module) if self.conv_weight_grad == "conv" else 0

    def switch_temporal_convs(self, module: nn.Module) -> int:
        """With ``temporal_conv == 'conv2d'``, the temporal 3-D convolutions of ``module`` run as 2-D ones on a CPU
        (``zoo.layers.use_conv2d_for_temporal_convs``); how many."""
        return use_conv2d_for_temporal_convs(module) if self.temporal_conv == "conv2d" else 0

    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    def autocast(self) -> Any:
        """The autocast context of the run's precision (a null context in float32)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)


def resolve_device(spec: str, local_rank: int = 0) -> torch.device:
    """``'auto'`` (CUDA when present), ``'cpu'``, ``'cuda'`` or ``'cuda:N'``; CUDA asked for but absent raises."""
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(spec)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={spec!r} asked for CUDA, but torch sees no GPU "
                             f"(torch {torch.__version__}, CUDA build {torch.version.cuda}); use device=cpu")
        if device.index is None:
            device = torch.device("cuda", local_rank)
    elif device.type != "cpu":
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N; got {spec!r}")
    return device


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (x86 AVX512_BF16 or AMX-BF16, Arm BF16): oneDNN's bf16
    convolutions and matmuls then run faster than float32; without it they are emulated, slower than float32."""
    caps = torch.cpu.get_capabilities() if hasattr(torch.cpu, "get_capabilities") else {}
    return any(bool(caps.get(key)) for key in ("avx512_bf16", "amx_bf16", "bf16", "sve_bf16"))


def resolve_amp(spec: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``amp`` on ``device`` (None: float32).

    CUDA: ``auto`` is bf16 where the GPU has it, else fp16; ``bf16`` / ``fp16`` as asked. CPU: ``auto`` stays
    float32 (the same numbers on every host); ``bf16`` autocasts in bf16 where the CPU computes bf16 in hardware
    (:func:`cpu_has_native_bf16`) and falls back to float32, with a warning, where it would be emulated (slower
    than float32); ``fp16`` is CUDA-only (float32, with a note).
    """
    if device.type != "cuda":
        if spec == "bf16":
            if cpu_has_native_bf16():
                return torch.bfloat16
            _logger.warning("amp=bf16: this CPU has no bf16 arithmetic (AVX512_BF16, AMX or Arm BF16), so bf16 "
                            "autocast would be emulated and slower than float32; training in float32")
        elif spec == "fp16":
            _logger.info("amp=fp16 applies to CUDA only; training in float32 on %s", device)
        return None
    if spec == "none":
        return None
    if spec == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[spec]


def setup_runtime(recipe: Any) -> Runtime:
    """The process group, device and precision a recipe asks for (see the module docstring)."""
    r = recipe
    spec_type = "cuda" if r.device.startswith("cuda") or (r.device == "auto" and torch.cuda.is_available()) \
        else "cpu"
    if spec_type == "cuda" and not torch.cuda.is_available():
        resolve_device(r.device)  # raises the clear message
    dist = init_distributed(spec_type)
    device = resolve_device(r.device, dist.local_rank)
    amp_dtype = resolve_amp(r.amp, device)
    channels_last = r.channels_last if r.channels_last is not None else device.type == "cuda"
    if r.threads:
        torch.set_num_threads(r.threads)
    if r.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    weight_grad = default_weight_grad_mode(device) if r.conv_weight_grad == "auto" else r.conv_weight_grad
    temporal = default_temporal_conv_mode(device) if r.temporal_conv == "auto" else r.temporal_conv
    cpu = device.type == "cpu"
    return Runtime(dist, device, amp_dtype, channels_last, weight_grad if cpu else "native",
                   temporal if cpu else "native")


def convert_batchnorm(module: nn.Module, sync: bool) -> None:
    """Swap BatchNorm layers for SyncBatchNorm (``sync``) or back, in place, keeping their tensors."""
    for name, child in module.named_children():
        target = None
        if sync and isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(child, nn.SyncBatchNorm):
            target = nn.SyncBatchNorm.convert_sync_batchnorm(child)
        elif not sync and isinstance(child, nn.SyncBatchNorm):
            target = nn.BatchNorm3d(child.num_features, child.eps, child.momentum, child.affine,
                                    child.track_running_stats)
            target.load_state_dict(child.state_dict())
            target.to(child.weight.device if child.affine else child.running_mean.device)
            target.train(child.training)
        if target is not None:
            setattr(module, name, target)
        else:
            convert_batchnorm(child, sync)


def in_main_thread() -> bool:
    """True in the main thread (where signal handlers can be installed)."""
    return threading.current_thread() is threading.main_thread()


def to_channels_last(module: nn.Module) -> nn.Module:
    """Channels-last weights, in place: ``channels_last_3d`` for 5-D tensors (3-D convs), ``channels_last`` for 4-D
    ones (the 2-D convs of flow heads and per-frame ``timm2d`` backbones), others unchanged.

    ``module.to(memory_format=torch.channels_last_3d)`` refuses a model holding any 4-D weight, such as an HCML
    model's flow head; this converts each tensor to the format of its rank. Returns ``module``.
    """
    formats = {5: torch.channels_last_3d, 4: torch.channels_last}
    for m in module.modules():
        for param in m.parameters(recurse=False):
            if param.dim() in formats:
                param.data = param.data.contiguous(memory_format=formats[param.dim()])
        for name, buf in m.named_buffers(recurse=False):
            if buf is not None and buf.dim() in formats:
                setattr(m, name, buf.contiguous(memory_format=formats[buf.dim()]))
    return module


# -------------------------------------------------------------------------------------- torch.compile

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def _dynamo_budget(limit: int) -> Any:
    """A ``torch._dynamo.config.patch`` making ``limit`` recompilations per frame the most, and one more an error
    (not dynamo's silent fall-back to eager), whatever the torch version calls the settings."""
    import torch._dynamo.config as config

    limit_key = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
    fail_key = "fail_on_recompile_limit_hit" if hasattr(config, "fail_on_recompile_limit_hit") \
        else "fail_on_cache_limit_hit"
    settings: dict[str, Any] = {limit_key: limit}
    if hasattr(config, fail_key):
        settings[fail_key] = True
    return config.patch(**settings)


def _compile_errors() -> tuple[type[BaseException], ...]:
    """What torch.compile raises when it cannot compile (dynamo, the backend, a spent recompile budget)."""
    import torch._dynamo.exc as exc

    errors: list[type[BaseException]] = [exc.TorchDynamoException]
    for name in ("FailOnRecompileLimitHit", "FailOnCacheLimitHit", "RecompileLimitExceeded", "CacheLimitExceeded"):
        if isinstance(getattr(exc, name, None), type):
            errors.append(getattr(exc, name))
    return tuple(errors)


class CompiledObjective(nn.Module):
    """``torch.compile`` of a stage's objective (model and loss in one graph; the kernels' ``torch.library`` custom
    ops are single nodes of it), falling back to the eager objective when compiling fails.

    The first call compiles; a call that raises one of torch.compile's own errors (a failed trace or backend, or
    more than ``recompile_limit`` recompilations of one frame, e.g. for ever-new shapes) prints one message that
    says why and runs that call and every later one eagerly: the run goes on, at eager speed. Errors of the
    objective itself (bad input, ...) propagate as they are. The eager objective is the submodule
    ``objective``; the compiled callable shares its parameters.

    Args:
        objective: the module to compile.
        mode: ``torch.compile``'s mode (:data:`COMPILE_MODES`).
        backend: ``torch.compile``'s backend (``'inductor'``; ``'aot_eager'`` traces without generating code).
        recompile_limit: recompilations allowed per compiled frame.
        label: what the messages call it (e.g. ``"stage 'joint'"``).
        log: where the message goes.
    """

    def __init__(self, objective: nn.Module, mode: str = "default", backend: str = "inductor",
                 recompile_limit: int = 8, label: str = "the objective", log: Callable[[str], None] = print):
        super().__init__()
        if mode not in COMPILE_MODES:
            raise ValueError(f"compile_mode must be one of {', '.join(COMPILE_MODES)}; got {mode!r}")
        self.objective = objective
        self.recompile_limit = recompile_limit
        self.label = label
        self.fallback_reason: str | None = None
        self._log = log
        compiled = torch.compile(objective, mode=None if mode == "default" else mode, backend=backend)
        object.__setattr__(self, "_compiled", compiled)  # not a submodule: the objective's parameters once

    @property
    def compiled(self) -> bool:
        """Whether calls still go through the compiled callable (False after a fall-back)."""
        return self._compiled is not None

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self._compiled is not None:
            try:
                with _dynamo_budget(self.recompile_limit):
                    return self._compiled(*args, **kwargs)
            except _compile_errors() as err:
                if "limit" in type(err).__name__.lower():
                    reason = (f"one function was recompiled more than compile_recompile_limit={self.recompile_limit} "
                              "times: its shapes or guarded values keep changing (TORCH_LOGS=recompiles says why); "
                              "raise the limit if they settle")
                else:
                    lines = str(err).strip().splitlines()
                    reason = f"{type(err).__name__}: {lines[0] if lines else 'no message'}"
                self.fallback_reason = reason
                object.__setattr__(self, "_compiled", None)
                self._log(f"{self.label}: torch.compile gave up ({reason}); training continues eagerly "
                          "(set compile=false to skip compiling)")
        return self.objective(*args, **kwargs)


# -------------------------------------------------------------------------------------- cuDNN 3-D convolutions

# cuDNN 9.8 up to 9.14 give wrong results for some bf16 3-D convolutions (pytorch/pytorch#163539); PyTorch 2.9
# routes those convs around cuDNN (a slower, more memory-hungry path: pytorch/pytorch#166643) until cuDNN 9.15.
_BAD_CUDNN_CONV3D = (90800, 91500)


def conv3d_precision_warning(model: nn.Module, runtime: Runtime) -> str | None:
    """A warning when a run computes ``model``'s 3-D convolutions in bf16 with a cuDNN known to get them wrong
    (cuDNN 9.8 to 9.14), None otherwise (CPU, float32, fp16, no Conv3d, a good cuDNN)."""
    if runtime.device.type != "cuda" or runtime.amp_dtype != torch.bfloat16:
        return None
    if not any(isinstance(m, nn.Conv3d) for m in model.modules()):
        return None
    version = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    if version is None or not _BAD_CUDNN_CONV3D[0] <= version < _BAD_CUDNN_CONV3D[1]:
        return None
    major, minor = version // 10000, version // 100 % 100
    return (f"cuDNN {major}.{minor} (torch {torch.__version__}) has a defect in bf16 3-D convolutions: wrong results "
            "with cuDNN 9.8 to 9.14 (pytorch/pytorch#163539), and PyTorch's workaround sends them around cuDNN, "
            "several times slower and with more memory (pytorch/pytorch#166643). Install cuDNN 9.15 or later "
            "(pip install 'nvidia-cudnn-cu12>=9.15', or -cu13 for CUDA 13 builds) or train with amp=none.")
