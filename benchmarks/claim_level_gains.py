"""Paper claim (Fig. 3): gains at each level, as motion learning blocks are added at levels 1, 1-2, 1-2-3.

The quickstart's HCML R2D-18 (``recipes/quickstart.yaml``) is trained with adapters at levels (1,),
(1, 2) and (1, 2, 3): each variant runs the recipe's self-supervised stages for its own levels
(``level1``, then ``level2`` if present, ...) and the same joint stage, from the same seed. The
plain R2D-18 (no adapter) is the quickstart's baseline. Val top-1 of each variant and seed goes to
``benchmarks/results/claim_level_gains_cpu.json``, rewritten after each run and merged with what the file
already holds (other seeds, other variants; runs of several seeds may go in parallel), with the mean and
standard deviation over seeds of each variant.

    python benchmarks/claim_level_gains.py                      # levels 1, 1-2, 1-2-3, seed 0
    python benchmarks/claim_level_gains.py --variants 1 12      # 1-2-3 taken from quickstart_cpu.json
    python benchmarks/claim_level_gains.py --seed 1             # another seed, added to the file

Moving-Digits saturates at level 1 (its digits move within level 1's cost-volume window). A faster
variant, frames 12 apart (digits move 6.75-13.5 px per frame pair at 48 px, level 1's window is
+-8 px, level 2's +-16 px; rotation 48-96 degrees per pair):

    python benchmarks/claim_level_gains.py --name claim_level_gains_fast_cpu --variants none 1 12 123 \
        --task "Moving-Digits, frames 12 apart" -- data.frame_stride=12 data.options.frames_per_video=96
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _claims import claim_recipe, mean_std  # noqa: E402
from _common import RESULTS_DIR, env_info, write_result  # noqa: E402

from zoo.train import train  # noqa: E402

NAME = "claim_level_gains_cpu"
VARIANTS = {"none": (), "1": (1,), "12": (1, 2), "123": (1, 2, 3)}


def _recipe(levels: tuple[int, ...], seed: int, out: Path, overrides: list[str]):
    """The quickstart recipe with adapters at ``levels`` only, and only the level stages it then has
    (no level: the quickstart's baseline recipe, the plain R2D-18)."""
    if not levels:
        return claim_recipe("quickstart_baseline.yaml", seed, out, overrides)
    recipe = claim_recipe("quickstart.yaml", seed, out, overrides)
    cfg = dict(recipe.model.kwargs.get("hcml_cfg") or {})
    cfg["levels"] = list(levels)
    cfg["max_displacement"] = {k: v for k, v in dict(cfg.get("max_displacement", {})).items() if int(k) in levels}
    recipe.model.kwargs = {**recipe.model.kwargs, "hcml_cfg": cfg}
    keep = {f"level{lv}" for lv in levels} | {"joint"}
    recipe.stages = [s for s in recipe.stages if s.objective_cfg.get("stage") in keep]
    recipe.name = f"quickstart_levels_{''.join(map(str, levels))}"
    return recipe


def _key(variant: str) -> str:
    return "no_adapter" if variant == "none" else f"levels_{variant}"


def _previous_runs(path: Path) -> dict:
    """The runs the file already holds, keyed ``<variant>_seed<seed>``."""
    return json.loads(path.read_text()).get("runs", {}) if path.is_file() else {}


def _summary(runs: dict) -> dict:
    """Per variant: seeds, mean, standard deviation, min and max of val top-1 (percent)."""
    out = {}
    for variant in VARIANTS:
        tops = [r["top1"] for k, r in sorted(runs.items()) if k.rsplit("_seed", 1)[0] == _key(variant)]
        if tops:
            mean, std = mean_std(tops)
            out[_key(variant)] = {"levels": list(VARIANTS[variant]), "seeds": len(tops), "mean": mean, "std": std,
                                  "min": min(tops), "max": max(tops)}
    return out


def _payload(runs: dict, overrides: list[str], baseline: dict | None, task: str) -> dict:
    return {
        "benchmark": "claim: gains at each HCML level (paper Fig. 3); quickstart recipe on Moving-Digits with "
                     "adapters at levels 1, 1-2, 1-2-3",
        "env": env_info("cpu"),
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "overrides": overrides,
        "task": task,
        "chance_top1": 12.5,
        "baseline_from_quickstart_cpu": baseline,
        "runs": dict(sorted(runs.items())),
        "summary": _summary(runs),
        "paper": "UCF-101 top-1 grows with every level added, for R2D and R(2+1)D (Fig. 3)",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["1", "12", "123"], choices=list(VARIANTS),
                        help="adapter levels; 'none': the plain R2D-18 (default: taken from quickstart_cpu.json)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default=NAME, help="the JSON file's name (another task: another name)")
    parser.add_argument("--task", default="Moving-Digits as the quickstart generates it",
                        help="what the overrides make of the task, recorded in the JSON")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="recipe overrides")
    args = parser.parse_args()
    torch.set_num_threads(min(torch.get_num_threads(), os.cpu_count() or 1))
    path = RESULTS_DIR / f"{args.name}.json"
    mine = {}  # this invocation's runs; each write merges them into the file as it is then
    quickstart = RESULTS_DIR / "quickstart_cpu.json"
    baseline = None
    if quickstart.is_file() and not args.overrides:
        quick = json.loads(quickstart.read_text())["runs"]
        base = quick["quickstart_baseline"]
        baseline = {"model": base["model"], "top1": base["top1"], "seed": 0}
        if "123" not in args.variants and "levels_123_seed0" not in _previous_runs(path) and args.seed == 0:
            # The quickstart recipe is the levels 1-2-3 variant: benchmarks/quickstart.py ran it with seed 0.
            hcml = quick["quickstart"]
            mine["levels_123_seed0"] = {"levels": [1, 2, 3], "stages": hcml["stages"], "seed": 0,
                                        "top1": hcml["top1"], "top5": hcml["top5"],
                                        "wall_time_s": hcml["wall_time_s"], "source": "quickstart_cpu.json"}
    with tempfile.TemporaryDirectory(prefix="zoo-claim-levels-") as tmp:
        for variant in args.variants:
            levels = VARIANTS[variant]
            recipe = _recipe(levels, args.seed, Path(tmp) / variant, args.overrides)
            start = time.perf_counter()
            result = train(recipe)
            mine[f"{_key(variant)}_seed{args.seed}"] = {
                "levels": list(levels),
                "stages": [f"{s.name}: {s.epochs} epochs" for s in recipe.stages],
                "seed": args.seed,
                "top1": result.metrics["top1"],
                "top5": result.metrics["top5"],
                "wall_time_s": round(time.perf_counter() - start, 1),
            }
            print(f"levels {levels}, seed {args.seed}: top-1 {result.metrics['top1']:.1f}%", flush=True)
            # Other seeds may run in parallel: merge with the file as it is now, ours replacing the same keys.
            runs = {**_previous_runs(path), **mine}
            write_result(args.name, _payload(runs, args.overrides, baseline, args.task))
    print(f"written: {path}")


if __name__ == "__main__":
    main()
