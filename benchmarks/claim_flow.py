"""Paper claim (Fig. 4, Table 1's reconstruction row): the level-1 flow head learns the motion by frame
reconstruction alone.

Reads a trained quickstart checkpoint (``zoo train recipes/quickstart.yaml`` writes
``runs/quickstart/last.pt``; its side branch holds the flow head), estimates the level-1 flow of
every val video of Moving-Digits' four translation classes, and measures on the pixels that change
between frames (the moving digit) the mean flow against the class's direction: the share of videos
whose mean flow points the class's way, and the mean flow's size in input pixels per frame pair
(the generator moves digits 2.25 to 4.5 pixels per pair at 48 px and frame stride 4). The photometric
loss of the learned flow is compared with that of zero flow. Writes
``benchmarks/results/claim_flow_cpu.json`` and a picture of frames and flow,
``benchmarks/results/claim_flow_cpu.png`` (``zoo.adapters.render_flow``).

    python benchmarks/claim_flow.py [--checkpoint runs/quickstart/last.pt]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, env_info, write_result  # noqa: E402

from zoo.adapters import capture_motion, render_flow  # noqa: E402
from zoo.adapters.flow import photometric_loss  # noqa: E402
from zoo.train import load_recipe, load_training_checkpoint  # noqa: E402
from zoo.train.engine import build_model_from_checkpoint, recipe_dataset  # noqa: E402
from zoo.train.recipe import recipe_from_dict  # noqa: E402

NAME = "claim_flow_cpu"
DIRECTIONS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="runs/quickstart/last.pt")
    args = parser.parse_args()
    torch.set_num_threads(min(torch.get_num_threads(), os.cpu_count() or 1))
    ckpt = load_training_checkpoint(args.checkpoint)
    model = build_model_from_checkpoint(ckpt).eval()
    raw = ckpt["recipe"]
    recipe = recipe_from_dict(raw) if isinstance(raw, dict) else load_recipe(raw)
    dataset = recipe_dataset(recipe, recipe.data.val_split, train=False)
    classes = list(dataset.classes)
    per_class: dict[str, dict[str, float]] = {}
    learned, zero = [], []
    example = None
    with torch.no_grad():
        for name, (dx, dy) in DIRECTIONS.items():
            label = classes.index(name)
            agree, sizes = 0, []
            items = [dataset[i] for i, sample in enumerate(dataset.samples) if sample.label == label]
            for item in items:
                clip = item["video"].unsqueeze(0)
                with capture_motion(model, stop_after_level=1) as motion:
                    model(clip)
                flow = model.hcml["flow"]["1"](motion[1]).float()  # (1, 2, T, h, w) in map pixels
                frames = F.adaptive_avg_pool3d(clip.float(), flow.shape[2:])
                learned.append(photometric_loss(frames, flow).item())
                zero.append(photometric_loss(frames, torch.zeros_like(flow)).item())
                change = (frames[:, :, 1:] - frames[:, :, :-1]).abs().sum(1)  # (1, T-1, h, w)
                moving = (change > change.mean() + change.std()).float()
                weight = moving / moving.sum().clamp_min(1)
                u = (flow[:, 0, :-1] * weight).sum().item()
                v = (flow[:, 1, :-1] * weight).sum().item()
                scale = clip.shape[-1] / flow.shape[-1]  # input pixels per map pixel
                agree += int(u * dx + v * dy > 0)
                sizes.append(scale * (u * u + v * v) ** 0.5)
                if example is None:
                    example = clip
            per_class[name] = {"videos": len(items), "direction_agrees_pct": round(100 * agree / len(items), 1),
                               "mean_flow_px_per_pair": round(sum(sizes) / len(sizes), 2)}
    picture = render_flow(model, example, RESULTS_DIR / f"{NAME}.png", max_pairs=4)
    payload = {
        "benchmark": "claim: the level-1 flow head learns the motion by frame reconstruction (paper Fig. 4, "
                     "Table 1); Moving-Digits val, translation classes",
        "env": env_info("cpu"),
        "checkpoint": str(args.checkpoint),
        "checkpoint_recipe": recipe.name,
        "per_class": per_class,
        "photometric_learned": round(sum(learned) / len(learned), 5),
        "photometric_zero_flow": round(sum(zero) / len(zero), 5),
        "true_motion_px_per_pair": [2.25, 4.5],
        "picture": str(picture.relative_to(RESULTS_DIR.parent.parent)),
    }
    path = write_result(NAME, payload)
    for name, r in per_class.items():
        print(f"{name:6s} direction right in {r['direction_agrees_pct']:5.1f}% of videos, "
              f"|flow| {r['mean_flow_px_per_pair']:.2f} px per pair")
    print(f"photometric: learned {payload['photometric_learned']}, zero flow {payload['photometric_zero_flow']}")
    print(f"written: {path}, {picture}")


if __name__ == "__main__":
    main()
