"""HCML Fig. 6 analogue: Grad-CAM of the last stage, R2D-18 beside HCML R2D-18, on Moving-Digits val clips.

Draws ``zoo.adapters.render_cam`` for the quickstart's two models (``zoo train recipes/quickstart.yaml``
trains both: ``runs/quickstart/last.pt``, HCML R2D-18, and ``runs/quickstart_baseline/last.pt``, R2D-18) on
one val clip of each of ``--classes`` (default: both directions of two motion pairs), stacked into
``benchmarks/results/<name>.png``, and measures over ``--videos`` val clips where each model's CAM lies: the
share of its mass on the moving digit (pixels whose value changes by more than 0.1 between neighbouring
frames, in [0, 1] units), against the share of the frame those pixels cover. Top-1 on the same clips, with
the CAM of the labelled class, go to ``benchmarks/results/<name>.json``.

    zoo train recipes/quickstart.yaml                 # the checkpoints (about 13 minutes on a 2-core CPU)
    python benchmarks/hcml_cam.py                     # then the figure
    python benchmarks/hcml_cam.py --train             # or: train them first if they are missing
    python benchmarks/hcml_cam.py --plain A.pt --hcml B.pt --name hcml_cam_plugin_cpu    # any two checkpoints
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _claims import load_run  # noqa: E402
from _common import RESULTS_DIR, env_info, moving_digits_version, write_result  # noqa: E402
from PIL import Image  # noqa: E402

from zoo.adapters import frames_to_uint8, grad_cam, render_cam  # noqa: E402
from zoo.train import recipe_dataset  # noqa: E402

RECIPES = Path(__file__).resolve().parent.parent / "recipes"


def motion_mask(clip: torch.Tensor, mean, std, threshold: float = 0.1) -> torch.Tensor:
    """``(T, H, W)`` bool: pixels of a normalised ``(C, T, H, W)`` clip that change by more than ``threshold``
    (any channel, [0, 1] units) from the previous or to the next frame."""
    frames = frames_to_uint8(clip.transpose(0, 1).float(), mean, std).float() / 255  # (T, 3, H, W)
    diff = (frames[1:] - frames[:-1]).abs().amax(dim=1) > threshold  # (T - 1, H, W)
    mask = torch.zeros(frames.shape[0], *frames.shape[2:], dtype=torch.bool)
    mask[1:] |= diff
    mask[:-1] |= diff
    return mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plain", type=Path, default=Path("runs/quickstart_baseline/last.pt"))
    parser.add_argument("--hcml", type=Path, default=Path("runs/quickstart/last.pt"))
    parser.add_argument("--train", action="store_true", help="train the quickstart's models first if missing")
    parser.add_argument("--classes", nargs="+", default=["left", "right", "clockwise", "counterclockwise"])
    parser.add_argument("--videos", type=int, default=64, help="val clips the CAM statistics are measured on")
    parser.add_argument("--name", default="hcml_cam_cpu")
    parser.add_argument("--layer", default=None, help="the module whose map is used (default: the last stage)")
    args = parser.parse_args()
    missing = [p for p in (args.plain, args.hcml) if not p.is_file()]
    if missing and args.train:
        from zoo.cli import main as zoo_main

        zoo_main(["train", str(RECIPES / "quickstart.yaml")])
        missing = [p for p in (args.plain, args.hcml) if not p.is_file()]
    if missing:
        sys.exit(f"no checkpoint at {', '.join(map(str, missing))}: run `zoo train recipes/quickstart.yaml` (about 13 "
                 "minutes on a 2-core CPU; it trains HCML R2D-18 and the plain R2D-18 into runs/), or pass --train, "
                 "or give --plain and --hcml checkpoints")
    torch.set_num_threads(min(torch.get_num_threads(), os.cpu_count() or 1))
    loaded = {}
    for key, path in (("plain", args.plain), ("hcml", args.hcml)):
        ckpt, model, recipe = load_run(path)
        loaded[key] = (ckpt, model, recipe)
    _, _, recipe = loaded["hcml"]
    names = {}
    for key, (c, m, _) in loaded.items():  # 'r2d_18', 'HCML r2d_18' (create_model('hcml', backbone=...) or hcml_*)
        backbone = getattr(m, "model_args", {}).get("backbone") if c["model_name"] == "hcml" else None
        names[key] = f"HCML {backbone or c['model_name'].removeprefix('hcml_')}" if key == "hcml" else c["model_name"]
    models = {names[key]: m for key, (_, m, _) in loaded.items()}
    dataset = recipe_dataset(recipe, recipe.data.val_split, train=False)
    classes = list(dataset.classes)
    mean, std = recipe.data.mean, recipe.data.std
    cfg = loaded["hcml"][1].pretrained_cfg
    mean, std = mean or getattr(cfg, "mean", None), std or getattr(cfg, "std", None)

    # The figure: one val clip of each asked class, every model's CAM of the labelled class.
    grids, drawn = [], []
    for cls in args.classes:
        index = next(i for i in range(len(dataset)) if dataset[i]["label"] == classes.index(cls))
        clip = dataset[index]["video"]
        grids.append(render_cam(models, clip, target=classes.index(cls), mean=mean, std=std, label_names=classes,
                                scale=3, layer=args.layer))
        drawn.append({"index": index, "class": cls})
    width = max(g.shape[2] for g in grids)
    grid = torch.cat([torch.nn.functional.pad(g, (0, width - g.shape[2], 0, 6)) for g in grids], dim=1)
    png = RESULTS_DIR / f"{args.name}.png"
    Image.fromarray(grid.permute(1, 2, 0).numpy()).save(png)

    # Where the CAM lies, over the first --videos val clips (spread over the classes).
    step = max(1, len(dataset) // args.videos)
    indices = list(range(0, len(dataset), step))[: args.videos]
    stats = {name: {"correct": 0, "on_motion": [], "layer": None} for name in models}
    coverage = []
    for index in indices:
        item = dataset[index]
        clip, label = item["video"], int(item["label"])
        mask = motion_mask(clip, mean, std)
        coverage.append(mask.float().mean().item())
        for name, model in models.items():
            cam, _, layer = grad_cam(model, clip[None], target=label, layer=args.layer)
            stats[name]["layer"] = layer
            with torch.no_grad():
                stats[name]["correct"] += int(model(clip[None]).argmax(1).item() == label)
            stats[name]["on_motion"].append((cam[0] * mask).sum().item() / max(cam[0].sum().item(), 1e-12))
    side = dataset[0]["video"].shape[-1]
    reductions = {name: {i["module"]: i["reduction"] for i in m.feature_info} for name, m in models.items()}
    summary = {name: {"top1": round(100 * s["correct"] / len(indices), 2), "layer": s["layer"],
                      "map_side_px": side // reductions[name].get(s["layer"], side), "frame_side_px": side,
                      "cam_share_on_moving_pixels": round(sum(s["on_motion"]) / len(indices), 4)}
               for name, s in stats.items()}
    path = write_result(args.name, {
        "benchmark": "Grad-CAM of the last stage (zoo.adapters.render_cam), a model beside its HCML version",
        "env": {**env_info("cpu"), "moving_digits_generator": moving_digits_version()},
        "checkpoints": {key: str(p) for key, p in (("plain", args.plain), ("hcml", args.hcml))},
        "figure": f"benchmarks/results/{png.name}", "drawn": drawn, "videos": len(indices),
        "moving_pixel_share_of_frame": round(sum(coverage) / len(coverage), 4), "models": summary,
    })
    print(f"wrote {png} and {path}: {summary}")


if __name__ == "__main__":
    main()
