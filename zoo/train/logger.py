"""Training records: ``metrics.jsonl`` (every ``log_every`` steps and once per epoch), ``metrics.csv`` (the
epoch rows) and TensorBoard when it is installed."""
from __future__ import annotations

import contextlib
import csv
import json
import time
from pathlib import Path
from typing import Any

from .plots import read_metrics

__all__ = ["MetricsLogger", "epoch_line", "time_line", "TIME_SPLIT_KEYS", "TimeSplit", "BadFileReport"]


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


def epoch_line(stage: str, epochs: int, record: dict[str, Any], clips: int) -> str:
    """The one line an epoch prints: stage, epoch (from 1), the loss terms, train and val top-1, clips/s, time."""
    terms = {k[len("train_"):]: v for k, v in record.items() if k.startswith("train_loss")}
    loss = f"loss {terms.pop('loss'):.4f}" if "loss" in terms else ""
    if terms:
        loss += " (" + ", ".join(f"{k} {v:.4f}" for k, v in terms.items()) + ")"
    parts = [f"{stage} epoch {record['epoch']}/{epochs}", loss]
    if "train_acc1" in record:
        parts.append(f"train top-1 {100 * record['train_acc1']:.1f}%")
    if "val_top1" in record:
        val_time = f" (validation {record['val_time_s']:.0f} s)" if "val_time_s" in record else ""
        parts.append(f"val top-1 {record['val_top1']:.1f}%{val_time}")
    seconds = record.get("epoch_time_s", 0.0)
    if seconds:
        parts.append(f"{clips / seconds:.1f} clips/s")
    parts.append(f"{seconds:.0f} s")
    return " | ".join(p for p in parts if p)


TIME_SPLIT_KEYS = ("setup_s", "train_s", "data_wait_s", "val_s", "final_eval_s", "checkpoint_s", "plots_s", "other_s")
"""The parts of a run's wall time (``RunResult.time_split``, the ``"kind": "time"`` record of ``metrics.jsonl``);
``data_wait_s`` is the part of ``train_s`` the loop waited for batches, the others add up to the wall time."""

_TIME_NAMES = {"setup_s": "setup", "train_s": "training", "val_s": "validation", "final_eval_s": "final evaluation",
               "checkpoint_s": "checkpoints", "plots_s": "plots", "other_s": "other"}


class TimeSplit:
    """Seconds of a run's wall time per part (:data:`TIME_SPLIT_KEYS`), added up as the run goes."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(TIME_SPLIT_KEYS, 0.0)

    @contextlib.contextmanager
    def timed(self, key: str):
        """Add the block's wall time to ``key``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[key] += time.perf_counter() - start

    def finish(self, wall_time_s: float) -> dict[str, float]:
        """The split, rounded to 10 ms, with ``other_s`` the wall time no part accounts for."""
        accounted = sum(v for k, v in self.seconds.items() if k not in ("data_wait_s", "other_s"))
        self.seconds["other_s"] = max(0.0, wall_time_s - accounted)
        return {k: round(v, 2) for k, v in self.seconds.items()}


def time_line(wall_time_s: float, split: dict[str, float]) -> str:
    """The line a run prints at its end: where its wall time went, e.g. ``time 6.2 min: training 301 s (waiting
    for data 4 s), validation 21 s, ...``; parts under half a second are left out."""
    parts = []
    for key, name in _TIME_NAMES.items():
        seconds = split.get(key, 0.0)
        if seconds < 0.5:
            continue
        wait = split.get("data_wait_s", 0.0) if key == "train_s" else 0.0
        parts.append(f"{name} {seconds:.0f} s" + (f" (waiting for data {wait:.0f} s)" if wait >= 0.5 else ""))
    return f"time {wall_time_s / 60:.1f} min: " + ", ".join(parts)


class BadFileReport:
    """The unreadable videos of a run: a line when an epoch meets new ones, the full list at the end."""

    def __init__(self) -> None:
        self.files: dict[str, str] = {}

    def update(self, dataset: Any) -> str | None:
        """Take the dataset's records of the epoch (and reset them); a line to print when some are new."""
        report = getattr(dataset, "report_bad_files", None)
        if report is None:  # a stream counts its own
            return None
        bad = report(reset=True, log=False)
        new = [p for p in bad if p not in self.files]
        self.files.update(bad)
        if not new:
            return None
        return (f"{len(new)} more unreadable videos replaced by others ({len(self.files)} in all so far; "
                "listed at the end of the run)")

    def summary(self) -> str:
        lines = "\n".join(f"  {path}: {why}" for path, why in sorted(self.files.items()))
        return f"{len(self.files)} unreadable videos were replaced by others during training:\n{lines}"
