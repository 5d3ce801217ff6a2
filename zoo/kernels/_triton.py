"""Triton, when it is installed: the guarded import, the backend choice and the interpreter, for every kernel file.

``import zoo.kernels`` works without Triton (it ships for Linux only): the kernel functions are then plain
Python functions that are never launched, ``backend='auto'`` runs the PyTorch references of
:mod:`zoo.kernels.reference`, and ``backend='triton'`` raises :class:`TritonUnavailableError`, which says
why and points to ``backend='torch'``.

Public names: ``triton`` and ``tl`` (the modules, or None), :data:`TRITON_AVAILABLE`, :data:`BACKENDS`,
:func:`jit`, :func:`check_backend`, :func:`resolve_backend`, :func:`require_triton`, :func:`interpreted`,
:func:`is_interpreted`, :class:`TritonUnavailableError`, and :func:`use_backend` / :func:`get_default_backend`:
what ``backend='auto'`` means inside a block (``'torch'`` there runs the references on CUDA too, so that a
benchmark or a test can compare a model's step with either kernels without a ``backend`` argument on every
module that calls them).
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Literal

import torch

try:
    import triton
    import triton.language as tl
    from triton.runtime.interpreter import InterpretedFunction
except ImportError as err:  # Triton ships for Linux; elsewhere the 'torch' backend still runs
    triton = tl = InterpretedFunction = None
    _IMPORT_ERROR: str | None = f"{type(err).__name__}: {err}"
else:
    _IMPORT_ERROR = None

__all__ = [
    "BACKENDS",
    "Backend",
    "TRITON_AVAILABLE",
    "TritonUnavailableError",
    "check_backend",
    "get_default_backend",
    "interpreted",
    "is_interpreted",
    "jit",
    "require_triton",
    "resolve_backend",
    "tl",
    "triton",
    "use_backend",
]

TRITON_AVAILABLE: bool = triton is not None
"""Whether ``import triton`` succeeded."""

Backend = Literal["auto", "triton", "torch"]
BACKENDS: tuple[str, ...] = ("auto", "triton", "torch")


class TritonUnavailableError(RuntimeError):
    """``backend='triton'`` was asked for, but Triton is not installed."""


_DEFAULT_BACKEND = ["auto"]  # what backend='auto' resolves through; use_backend() sets it for a block


def get_default_backend() -> str:
    """What ``backend='auto'`` stands for now: ``'auto'`` (Triton on CUDA, the references elsewhere) outside a
    :func:`use_backend` block."""
    return _DEFAULT_BACKEND[0]


@contextlib.contextmanager
def use_backend(backend: str) -> Iterator[None]:
    """Within the block, ops called with ``backend='auto'`` (the default) run ``backend``.

    ``with use_backend('torch'):`` runs the PyTorch references everywhere, CUDA included;
    ``use_backend('triton')`` the kernels (interpreted on CPU tensors). An op given an explicit
    ``'triton'`` or ``'torch'`` keeps it. Blocks nest; the previous choice comes back on exit.
    """
    check_backend(backend, "use_backend")
    previous = _DEFAULT_BACKEND[0]
    _DEFAULT_BACKEND[0] = backend
    try:
        yield
    finally:
        _DEFAULT_BACKEND[0] = previous


def jit(fn: Callable) -> Callable:
    """``triton.jit(fn)``, or ``fn`` itself without Triton (a kernel that is then never launched)."""
    return triton.jit(fn) if triton is not None else fn


def require_triton(op: str) -> None:
    """Raise :class:`TritonUnavailableError` for ``op`` if Triton is not installed."""
    if triton is None:
        raise TritonUnavailableError(
            f"{op}: backend='triton' needs the triton package, which is not installed ({_IMPORT_ERROR}). "
            f"Install it (pip install triton; Linux only) or pass backend='torch' to run the PyTorch reference."
        )


def check_backend(backend: str, op: str) -> None:
    """Raise ValueError unless ``backend`` is one of :data:`BACKENDS`."""
    if backend not in BACKENDS:
        raise ValueError(f"{op}: backend must be one of 'auto', 'triton' or 'torch', got {backend!r}")


def resolve_backend(backend: str, device: torch.device, op: str, triton_ok: bool = True) -> str:
    """The backend to run, 'triton' or 'torch'.

    ``'auto'`` is what :func:`use_backend` set, if anything, else Triton for CUDA tensors when Triton is installed
    and ``triton_ok`` (the op's own condition, e.g. a dtype its kernels take), the PyTorch reference otherwise.
    ``'triton'`` without Triton raises :class:`TritonUnavailableError`.
    """
    check_backend(backend, op)
    if backend == "auto" and _DEFAULT_BACKEND[0] != "auto":
        # use_backend('triton') runs the kernels where they take the inputs (triton_ok), the reference elsewhere
        backend = _DEFAULT_BACKEND[0] if triton_ok or _DEFAULT_BACKEND[0] == "torch" else "torch"
    if backend == "auto":
        return "triton" if device.type == "cuda" and TRITON_AVAILABLE and triton_ok else "torch"
    if backend == "triton":
        require_triton(op)
    return backend


def is_interpreted(kernel) -> bool:
    """Whether ``kernel`` already runs under the Triton interpreter (``TRITON_INTERPRET=1`` when it was jitted)."""
    return InterpretedFunction is not None and isinstance(kernel, InterpretedFunction)


def interpreted(kernel):
    """The same kernel (a plain function or a ``triton.jit`` one) run by the Triton interpreter on CPU tensors,
    whatever ``TRITON_INTERPRET`` said at import."""
    require_triton("interpreted")
    if is_interpreted(kernel):
        return kernel
    return InterpretedFunction(getattr(kernel, "fn", kernel))
