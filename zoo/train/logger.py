"""Training records: ``metrics.jsonl`` (every ``log_every`` steps and once per epoch), ``metrics.csv`` (the
epoch rows) and TensorBoard when it is installed."""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from .plots import read_metrics

__all__ = ["MetricsLogger"]


class MetricsLogger:
    """Writes training records to ``metrics.jsonl`` (and TensorBoard when installed), epoch rows to
    ``metrics.csv``. Only rank 0 writes; other ranks hold a disabled logger."""

    def __init__(self, run_dir: Path, enabled: bool, tensorboard: bool = True):
        self.path = run_dir / "metrics.jsonl"
        self.csv_path = run_dir / "metrics.csv"
        self.enabled = enabled
        self.writer = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(run_dir / "tensorboard"))
            except ImportError:  # tensorboard is optional
                self.writer = None

    def truncate(self, step: int) -> None:
        """Drop records after optimizer step ``step`` (written by a run that was then interrupted)."""
        if not self.enabled:
            return
        kept = [r for r in read_metrics(self.path) if r["step"] <= step]
        with open(self.path, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in kept)

    def log(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key not in ("step", "epoch"):
                    self.writer.add_scalar(f"{record['kind']}/{key}", value, record["step"])
        if record["kind"] == "epoch":
            self.write_csv()

    def write_csv(self) -> None:
        rows = [r for r in read_metrics(self.path) if r["kind"] == "epoch"]
        columns = list(dict.fromkeys(k for r in rows for k in r))
        with open(self.csv_path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
