"""Paper claim (Fig. 4, Table 1's reconstruction column): frame reconstruction makes a level's flow
head learn the motion, more accurately at lower levels.

Reads a trained checkpoint with HCML flow heads: by default the quickstart's
(``zoo train recipes/quickstart.yaml`` writes ``runs/quickstart/last.pt``; a flow head at level 1);
the reconstruction run of ``claim_supervision_levels.py`` has one at every level. For every level
with a flow head and every val video of Moving-Digits' four translation classes, it measures on
the pixels that change between frames (the moving digit) the mean flow against the class's
direction: the share of videos whose mean flow points the class's way, and the mean flow's size
in input pixels per frame pair (the generator moves digits 2.25 to 4.5 pixels per pair at 48 px
and frame stride 4). The photometric loss of the learned flow is compared with that of zero flow,
at the level's resolution. Writes ``benchmarks/results/<name>.json`` and the paper's Fig. 4 layout,
``<name>.png`` (``zoo.adapters.render_flow_levels``): one val video of each of four classes per
row, frames t and t+1, the reference flow (OpenCV's Farneback; the paper used TV-L1), and the flow
of every level.

    python benchmarks/claim_flow.py                        # the quickstart: claim_flow_cpu
    python benchmarks/claim_flow.py --checkpoint runs/claims/table1/seed0/reconstruction/last.pt \\
        --name claim_flow_levels_cpu                       # flow heads at levels 1, 2, 3
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _claims import load_run  # noqa: E402
from _common import RESULTS_DIR, env_info, write_result  # noqa: E402

from zoo.adapters import estimate_flows, frames_to_uint8, hcml_stages, render_flow_levels  # noqa: E402
from zoo.adapters.flow import photometric_loss  # noqa: E402
from zoo.flow.providers import FarnebackFlow  # noqa: E402
from zoo.methods.hcml import level_frames  # noqa: E402
from zoo.train import recipe_dataset  # noqa: E402

DIRECTIONS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
PICTURE_CLASSES = ("right", "up", "clockwise", "grow")
PAIR = 2  # the frame pair drawn


def measure(model: torch.nn.Module, levels: list[int], items: list[dict], direction: tuple[int, int]) -> dict:
    """Per level: direction agreement, flow size (input px per pair) and photometric losses on ``items``
    (one forward pass per video for all levels)."""
    dx, dy = direction
    stages = hcml_stages(model)
    sums = {level: {"agree": 0, "size": 0.0, "learned": 0.0, "zero": 0.0} for level in levels}
    for item in items:
        clip = item["video"].unsqueeze(0)
        for level, flow in estimate_flows(model, clip, levels).items():  # (1, 2, T_l, h, w) in map pixels
            r = stages[level].temporal_reduction
            frames = F.adaptive_avg_pool3d(level_frames(clip, r, flow.shape[2]).float(), flow.shape[2:])
            change = (frames[:, :, 1:] - frames[:, :, :-1]).abs().sum(1)  # (1, T_l-1, h, w)
            moving = (change > change.mean() + change.std()).float()
            weight = moving / moving.sum().clamp_min(1)
            u = (flow[:, 0, :-1] * weight).sum().item()
            v = (flow[:, 1, :-1] * weight).sum().item()
            scale = clip.shape[-1] / flow.shape[-1]  # input pixels per map pixel
            acc = sums[level]
            acc["agree"] += int(u * dx + v * dy > 0)
            acc["size"] += scale * (u * u + v * v) ** 0.5 / r
            acc["learned"] += photometric_loss(frames, flow).item()
            acc["zero"] += photometric_loss(frames, torch.zeros_like(flow)).item()
    n = len(items)
    return {level: {"videos": n, "direction_agrees_pct": round(100 * acc["agree"] / n, 1),
                    "mean_flow_px_per_pair": round(acc["size"] / n, 2),
                    "photometric_learned": round(acc["learned"] / n, 5),
                    "photometric_zero_flow": round(acc["zero"] / n, 5)} for level, acc in sums.items()}


def _pooled(per_class: dict[str, dict], key: str, digits: int) -> float:
    """``key`` over all videos of ``per_class`` (each class weighted by its videos)."""
    n = sum(c["videos"] for c in per_class.values())
    return round(sum(c[key] * c["videos"] for c in per_class.values()) / n, digits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="runs/quickstart/last.pt")
    parser.add_argument("--name", default="claim_flow_cpu", help="the JSON and PNG files' name")
    args = parser.parse_args()
    torch.set_num_threads(min(torch.get_num_threads(), os.cpu_count() or 1))
    _, model, recipe = load_run(args.checkpoint)
    dataset = recipe_dataset(recipe, recipe.data.val_split, train=False)
    classes = list(dataset.classes)
    levels = sorted(int(level) for level in model.hcml["flow"])
    by_class = {name: [dataset[i] for i, s in enumerate(dataset.samples) if s.label == classes.index(name)]
                for name in {*DIRECTIONS, *PICTURE_CLASSES}}
    per_level: dict[str, dict] = {}
    with torch.no_grad():
        by_direction = {name: measure(model, levels, by_class[name], d) for name, d in DIRECTIONS.items()}
        for level in levels:
            per_class = {name: figures[level] for name, figures in by_direction.items()}
            per_level[f"level{level}"] = {
                "per_class": per_class,
                "direction_agrees_pct": _pooled(per_class, "direction_agrees_pct", 1),
                "photometric_learned": _pooled(per_class, "photometric_learned", 5),
                "photometric_zero_flow": _pooled(per_class, "photometric_zero_flow", 5),
            }
            print(f"level {level}: direction right in {per_level[f'level{level}']['direction_agrees_pct']:.1f}% "
                  f"of videos; " + ", ".join(f"{k} |flow| {c['mean_flow_px_per_pair']:.2f} px"
                                            for k, c in per_class.items()), flush=True)
        clips = torch.stack([by_class[name][0]["video"] for name in PICTURE_CLASSES])
        cfg = model.pretrained_cfg
        frames = [frames_to_uint8(clips[:, :, t].float(), cfg.mean, cfg.std).permute(0, 2, 3, 1)
                  for t in (PAIR, PAIR + 1)]
        reference = FarnebackFlow()(frames[0], frames[1])
    picture = render_flow_levels(model, clips, RESULTS_DIR / f"{args.name}.png", pair=PAIR, reference=reference)
    image = Image.open(picture)  # 48-px tiles: enlarged 3x (nearest) to be seen in the README
    image.resize((3 * image.width, 3 * image.height), Image.Resampling.NEAREST).save(picture)
    payload = {
        "benchmark": "claim: frame reconstruction makes each level's flow head learn the motion (paper Fig. 4, "
                     "Table 1); Moving-Digits val, translation classes",
        "env": env_info("cpu"),
        "checkpoint": str(args.checkpoint),
        "checkpoint_recipe": recipe.name,
        "stages": [f"{s.name}: {s.epochs} epochs" for s in recipe.stages],
        "flow_levels": levels,
        "levels": per_level,
        "true_motion_px_per_pair": [2.25, 4.5],
        "picture": str(picture.relative_to(RESULTS_DIR.parent.parent)),
        "picture_rows": list(PICTURE_CLASSES),
        "picture_columns": ["frame t", "frame t+1", "reference (Farneback)"] + [f"level {lv}" for lv in levels],
    }
    path = write_result(args.name, payload)
    print(f"written: {path}, {picture}")


if __name__ == "__main__":
    main()
