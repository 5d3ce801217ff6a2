"""A run folder: what a finished run reports of it (:class:`RunResult`), the stop that leaves it resumable
(:class:`TrainingInterrupted`), and the rule that a new run of another model or recipe never resumes (or
overwrites) it: the folder's ``recipe.yaml`` (written when a run starts) says which run ``last.pt`` belongs
to, and :func:`check_run_folder` compares it with the recipe about to run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .recipe import Recipe, load_recipe

__all__ = ["RunResult", "TrainingInterrupted", "RunFolderMismatch", "run_identity", "check_run_folder"]


class TrainingInterrupted(Exception):
    """A run stopped on request (SIGTERM, SIGINT) after saving a checkpoint; run it again to resume."""

    def __init__(self, checkpoint: Path, signal_name: str):
        super().__init__(f"interrupted by {signal_name}; checkpoint saved to {checkpoint}; "
                         "run the same command again to resume")
        self.checkpoint = checkpoint
        self.signal_name = signal_name

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM)."""
        return 130 if self.signal_name == "SIGINT" else 143


@dataclass
class RunResult:
    """What a finished run reports: its final metrics and where its files are."""

    name: str
    run_dir: Path
    checkpoint: Path
    metrics: dict[str, Any]
    plots: list[Path] = field(default_factory=list)
    wall_time_s: float = 0.0
    time_split: dict[str, float] = field(default_factory=dict)
    """Where ``wall_time_s`` went, in seconds (this process's share of a resumed run): ``setup_s`` (datasets,
    model, loaders), ``train_s`` (the training epochs' steps, of which ``data_wait_s`` the loop waited for batches),
    ``val_s`` (the validations between epochs), ``final_eval_s`` (the recipe's evaluation, kNN retrieval included),
    ``checkpoint_s``, ``plots_s`` and ``other_s`` (the rest: printing, logging, signal handling)."""


class RunFolderMismatch(ValueError):
    """The run folder holds another model's or recipe's run: it is neither resumed nor overwritten."""


def run_identity(recipe: Recipe) -> dict[str, Any]:
    """What makes two runs the same run: the recipe's name, its model and its stages (objectives)."""
    m = recipe.model
    return {"name": recipe.name, "model": m.name, "model_kwargs": {k: v for k, v in m.kwargs.items() if v is not None},
            "pretrained": m.pretrained, "num_classes": m.num_classes,
            "stages": [(s.name, s.objective) for s in recipe.stages]}


def check_run_folder(recipe: Recipe) -> None:
    """Raise :class:`RunFolderMismatch` when the recipe's run folder holds a run (``last.pt`` beside its
    ``recipe.yaml``) of another model or recipe, with the two ways out; do nothing otherwise."""
    run_dir = Path(recipe.output_dir or Path("runs") / recipe.name)
    saved = run_dir / "recipe.yaml"
    if not recipe.resume or not (run_dir / "last.pt").is_file() or not saved.is_file():
        return
    try:
        previous = run_identity(load_recipe(saved))
    except Exception:  # noqa: BLE001 - a recipe file of an older zoo: compare what can be compared
        return
    current = run_identity(recipe)
    if previous == current:
        return
    diff = [k for k in current if previous.get(k) != current[k]]
    what = previous["model"] + (f" {previous['model_kwargs']}" if previous["model_kwargs"] else "")
    raise RunFolderMismatch(
        f"{run_dir} holds a run of {what} (recipe {previous['name']!r}); this recipe differs in {', '.join(diff)} "
        f"and would not resume it. Set output_dir=runs/NEW_NAME for a new run, or resume=false to start over "
        f"in {run_dir} (its files are replaced)."
    )
