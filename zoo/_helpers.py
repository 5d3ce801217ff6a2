"""Weights files: their sha256, and reading a state dict from safetensors or a ``weights_only`` torch file."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

__all__ = ["sha256_file", "unwrap_state_dict", "load_state_dict_file"]


def sha256_file(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()


def unwrap_state_dict(obj: Any) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state", "module"):
            if key in obj and isinstance(obj[key], dict):
                return unwrap_state_dict(obj[key])
        return {k[7:] if k.startswith("module.") else k: v for k, v in obj.items() if torch.is_tensor(v)}
    raise ValueError(f"expected a state dict (a dict of tensors), got {type(obj).__name__}")


def load_state_dict_file(path: str | Path, expected_sha256: str | None = None) -> dict[str, torch.Tensor]:
    """Read weights from ``path``: safetensors, or a torch file with ``weights_only=True``.

    Training checkpoints (``{'model': ..., 'optimizer': ...}``) are unwrapped to the model's
    state dict. With ``expected_sha256`` the file's digest is checked first and a mismatch raises.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    if expected_sha256:
        actual = sha256_file(path)
        if actual.lower() != expected_sha256.lower():
            raise ValueError(
                f"sha256 mismatch for {path}: expected {expected_sha256}, got {actual}. "
                "The file is corrupt or was replaced; it was not loaded."
            )
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle with non-tensor objects is refused, not executed
        raise ValueError(
            f"{path} could not be loaded with torch.load(weights_only=True): {e}. "
            "Only safetensors and plain tensor state dicts are accepted."
        ) from e
    return unwrap_state_dict(obj)
