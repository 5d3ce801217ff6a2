"""``zoo train RECIPE [key=value ...]``, ``zoo eval RECIPE checkpoint=...`` and ``zoo flow RECIPE [key=value ...]``.

All accept dotted ``key=value`` overrides of the recipe (``optim.lr=0.01``, ``stages.0.epochs=2``,
``data.root=/data/ucf101``); the resolved recipe is printed at start and saved in the run folder.
Run several processes with torchrun (``torchrun --nproc_per_node 8 -m zoo.cli train RECIPE``).
``zoo flow`` computes ahead of training the optical-flow cache that the recipe's MSCL / MCL stages
would build before their first step (the same videos, provider and settings, so the same folder).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

import torch

from .common import UserError, format_table

__all__ = ["add_train_commands", "cmd_train", "cmd_eval", "cmd_flow", "format_results"]

_OOM_HINT = ("out of GPU memory: lower data.batch_size (raise optim.accum_steps to keep the global batch), "
             "set model.grad_checkpointing=true, or use amp=bf16")


def _is_main() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO if _is_main() else logging.WARNING, format="%(levelname)s %(message)s")


def _user_error(message: str) -> Exception:
    return UserError(message)


def format_results(rows: list[dict[str, Any]]) -> str:
    """The final table: one row per trained recipe with its top-1/top-5 and where its files are."""
    table = []
    for row in rows:
        m = row["metrics"]
        top1, top5 = m.get("multiview_top1", m.get("top1")), m.get("multiview_top5", m.get("top5"))
        entry = {
            "recipe": row["name"],
            "model": row["model"],
            "top-1 (%)": "-" if top1 is None else f"{top1:.1f}",
            "top-5 (%)": "-" if top5 is None else f"{top5:.1f}",
            "views": str(m.get("views", "1x1")),
        }
        entry.update({f"{k} (%)": f"{v:.1f}" for k, v in m.items() if k.startswith("knn_recall@")})
        entry["time (min)"] = f"{row['wall_time_s'] / 60:.1f}" if row["wall_time_s"] else "-"
        table.append(entry)
    columns = list(dict.fromkeys(k for entry in table for k in entry))
    return format_table([{k: entry.get(k, "-") for k in columns} for entry in table])


def _compare_overrides(overrides: list[str], main_run_dir: Path, name: str) -> list[str]:
    """A companion recipe takes the same overrides, except the run folder: its own, ``name``, beside the main one."""
    kept = [o for o in overrides if o.partition("=")[0].strip() != "output_dir"]
    return [*kept, f"output_dir={main_run_dir.parent / name}"]


def _check_before_start(recipe: Any) -> None:
    """The checks that need no data: the model's name and the run folder's contents."""
    from .._factory import parse_model_name
    from .._registry import model_entrypoint, split_model_name_tag
    from ..train.run_folder import check_run_folder

    for key, name in (("model.name", recipe.model.name),
                      ("model.kwargs.backbone", recipe.model.kwargs.get("backbone") if recipe.model.name == "hcml"
                       else None)):
        if name and parse_model_name(name)[0] is None:
            try:
                model_entrypoint(split_model_name_tag(name)[0])
            except ValueError as e:
                raise _user_error(f"{e} (`zoo models` lists them; set {key}=...)") from None
    check_run_folder(recipe)


def cmd_train(args: argparse.Namespace) -> int:
    from ..train import TrainingInterrupted, train
    from ..train.recipe import load_recipe, recipe_to_yaml

    _setup_logging()
    recipe = load_recipe(args.recipe, args.overrides)
    _check_before_start(recipe)  # a typo or a run folder of another model: one line, nothing printed or created
    if _is_main():
        print(f"# zoo train {args.recipe}" + (f" {' '.join(args.overrides)}" if args.overrides else ""))
        print(recipe_to_yaml(recipe), flush=True)
    if args.dry_run:
        return 0
    main_dir = Path(recipe.output_dir or Path("runs") / recipe.name)
    plan = [recipe] + [load_recipe(p, _compare_overrides(list(args.overrides), main_dir, Path(p).stem))
                       for p in recipe.compare]
    rows = []
    try:
        for i, item in enumerate(plan):
            if i and _is_main():
                print(f"\n# companion recipe {recipe.compare[i - 1]} (run folder {item.output_dir})", flush=True)
            result = train(item, resume=args.resume if i == 0 else None)
            backbone = item.model.kwargs.get("backbone") if item.model.name == "hcml" else None
            model = f"hcml({backbone})" if backbone else item.model.name
            rows.append({"name": item.name, "model": model, "metrics": result.metrics,
                         "wall_time_s": result.wall_time_s, "run_dir": result.run_dir,
                         "checkpoint": result.checkpoint, "plots": result.plots})
    except TrainingInterrupted as e:
        print(f"zoo train: {e}", file=sys.stderr)
        return e.exit_code
    except torch.OutOfMemoryError:
        raise _user_error(_OOM_HINT) from None
    except FloatingPointError as e:
        raise _user_error(str(e)) from None
    except ImportError as e:  # an optional dependency a recipe asks for, e.g. tvl1 flow without OpenCV contrib
        raise _user_error(str(e)) from None
    if _is_main():
        split = rows[0]["metrics"].get("split", "val")
        print(f"\nResults on the {split} split:\n{format_results(rows)}\n")
        for row in rows:
            print(f"{row['name']}: checkpoint {row['checkpoint']}")
            if row["plots"]:
                print(f"  plots: {', '.join(str(p) for p in row['plots'])}")
            print(f"  metrics: {row['run_dir'] / 'metrics.csv'}, {row['run_dir'] / 'eval.json'}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from ..train import evaluate_checkpoint
    from ..train.evaluator import recipe_of_run
    from ..train.recipe import load_recipe

    _setup_logging()
    target = Path(args.recipe)
    if target.suffix in (".yaml", ".yml"):
        recipe = load_recipe(target, args.overrides)
    else:  # a checkpoint or a run folder: the recipe saved with the run, overrides on top
        recipe = recipe_of_run(target, args.overrides)
    try:
        metrics = evaluate_checkpoint(recipe)
    except torch.OutOfMemoryError:
        raise _user_error(_OOM_HINT) from None
    if _is_main():
        rows = [{"metric": k, "value": f"{v:.2f}" if isinstance(v, float) else str(v)} for k, v in metrics.items()]
        print(format_table(rows))
        print(f"\nwritten: {metrics['written']}")
    return 0


def cmd_flow(args: argparse.Namespace) -> int:
    """Build the flow caches of a recipe's stages whose objective reads optical flow (resumable)."""
    from ..flow.cache import check_flow_cfg, flow_cache_from_cfg
    from ..methods import get_objective_class
    from ..train import recipe_dataset
    from ..train.recipe import load_recipe

    _setup_logging()
    recipe = load_recipe(args.recipe, args.overrides)
    stages = [s for s in recipe.stages if hasattr(get_objective_class(s.objective), "flow_defaults")]
    if args.stage is not None:
        stages = [s for s in stages if s.name == args.stage]
    if not stages:
        which = f"no stage {args.stage!r} whose" if args.stage is not None else "no stage whose"
        raise _user_error(f"{args.recipe}: {which} objective reads optical flow (mscl, mcl); "
                          f"its stages: {', '.join(f'{s.name} ({s.objective})' for s in recipe.stages)}")
    # The caches first: an unknown provider or a root holding another configuration fails before any video is read.
    caches = {}
    for stage in stages:
        defaults = get_objective_class(stage.objective).flow_defaults
        try:
            flow = check_flow_cfg(dict(stage.objective_cfg.get("flow") or {}))
            cache = flow_cache_from_cfg(flow, reader=recipe.data.reader, **defaults)
        except ValueError as e:
            raise _user_error(f"stage {stage.name!r}: {e}") from None
        caches.setdefault(cache.root, (stage, cache))
    try:
        dataset = recipe_dataset(recipe, recipe.data.train_split, train=True)
    except FileNotFoundError as e:
        raise _user_error(f"{e} (set data.root=PATH to the {recipe.data.kind} dataset)") from None
    for stage, cache in caches.values():
        print(f"stage {stage.name!r} ({stage.objective}): {len(dataset)} videos of {dataset.name}, {cache!r}",
              flush=True)
        try:
            report = cache.build(dataset, progress=recipe.progress and not args.no_progress)
        except ImportError as e:  # e.g. tvl1 without OpenCV's contrib modules
            raise _user_error(f"stage {stage.name!r}: {e}") from None
        failed = report["failed"]
        print(f"flow cache {cache.root}: {report['computed']} computed, {report['cached']} already cached, "
              f"{len(failed)} unreadable (skipped in training)")
        for path, reason in failed.items():
            print(f"  {path}: {reason}")
    return 0


def add_train_commands(sub: Any) -> None:
    """Add the ``train``, ``eval`` and ``flow`` sub-commands to the ``zoo`` parser's sub-parsers."""
    p = sub.add_parser("train", help="train a recipe: zoo train RECIPE [key=value ...]",
                       description="Train a recipe (recipes/*.yaml); a run folder holding last.pt resumes.")
    p.add_argument("recipe", help="a recipe file, e.g. recipes/quickstart.yaml")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="recipe overrides, dotted: optim.lr=0.01 stages.0.epochs=2 data.root=/data")
    p.add_argument("--resume", metavar="PATH", help="checkpoint or run folder to resume from "
                   "(default: the run folder's last.pt, when it exists)")
    p.add_argument("--dry-run", action="store_true", help="print the resolved recipe and exit")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="evaluate a checkpoint: zoo eval CHECKPOINT_OR_RUN_DIR [key=value ...]",
                       description="Evaluate a checkpoint on its recipe's evaluation split (multi-view, kNN, "
                                   "efficacy as the recipe's eval section asks); writes eval_<clips>x<crops>.json "
                                   "beside it (eval.output=NAME to choose).")
    p.add_argument("recipe", metavar="TARGET",
                   help="a checkpoint (runs/NAME/last.pt) or run folder (runs/NAME): evaluated with the recipe saved "
                        "in the run; or a recipe file, with checkpoint=PATH (default: its run folder's last.pt)")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="checkpoint=PATH (default: the run folder's last.pt), eval.n_clips=10 eval.n_crops=3 ...")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("flow", help="compute a recipe's optical-flow cache ahead of training: zoo flow RECIPE "
                                    "[key=value ...]",
                       description="Compute the optical flow of the training videos of a recipe's MSCL / MCL "
                                   "stages into the flow cache that `zoo train` then reads (their flow settings: "
                                   "provider, gap, adjacent, short_side, root). An interrupted build resumes.")
    p.add_argument("recipe", help="a recipe with an mscl or mcl stage, e.g. recipes/mscl_r3d18_custom.yaml")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="recipe overrides, dotted: data.root=/data stages.0.objective_cfg.flow.provider=farneback")
    p.add_argument("--stage", default=None, help="only this stage's cache (default: every stage that reads flow)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_flow)
