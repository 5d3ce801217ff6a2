"""Where the zoo keeps generated data and caches: ``$ZOO_HOME``, default ``~/.cache/zoo``."""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["zoo_home"]


def zoo_home() -> Path:
    """The zoo's cache folder: ``$ZOO_HOME`` if set, else ``~/.cache/zoo`` (not created here)."""
    return Path(os.environ.get("ZOO_HOME") or Path.home() / ".cache" / "zoo").expanduser()
