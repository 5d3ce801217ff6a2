"""Paper claim (Fig. 5): the motion features of each level retrieve videos of the same motion.

Reads a checkpoint of HCML R2D-18 on Moving-Digits: by default the self-supervised one of
``claim_supervision_levels.py`` (its ``contrastive`` run: the quickstart's stages level1, level2,
level3, no labels seen). Every val video (one centred clip) is a query; the gallery is the
training split. Features: each level's motion features ``P^l`` averaged over T, H and W, and the
pooled backbone features (the classifier's input); the same for the network at initialisation
(same seed) as the reference a trained model must beat: a cost volume of random features already
carries some motion. Nearest neighbours by cosine similarity (``zoo.train.knn_recall``): recall@1
and @5 (a same-class video among the k nearest) and kNN top-1 (k = 5). Writes
``benchmarks/results/<name>.json`` and ``<name>.png``: for four queries (rows of a block per level),
the query and its 4 nearest training videos, each drawn as a time-coloured composite (red: first
frame, green: middle, blue: last; the static background stays grey, a moving digit leaves a trail)
with its class; green captions are the query's class.

    python benchmarks/claim_retrieval.py [--checkpoint runs/claims/table1/seed0/contrastive/last.pt]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _claims import load_run, motion_features  # noqa: E402
from _common import RESULTS_DIR, env_info, write_result  # noqa: E402

import zoo  # noqa: E402
from zoo.adapters import frames_to_uint8  # noqa: E402
from zoo.train import knn_accuracy, knn_recall  # noqa: E402

QUERY_CLASSES = ("left", "down", "counterclockwise", "shrink")
NEIGHBOURS = 4
TILE = 96  # pixels per drawn video


def retrieval(train_set: dict, val_set: dict) -> dict[str, dict[str, float]]:
    """recall@1, @5 and kNN top-1 (k = 5) of every feature set: val queries, training gallery."""
    out = {}
    names = [*(f"level{lv}" for lv in train_set["levels"]), "backbone"]
    for name in names:
        gallery = train_set["head"] if name == "backbone" else train_set["levels"][int(name[len("level"):])]
        queries = val_set["head"] if name == "backbone" else val_set["levels"][int(name[len("level"):])]
        figures = knn_recall(queries, val_set["labels"], gallery, train_set["labels"], (1, 5))
        figures["knn_top1@5"] = knn_accuracy(queries, val_set["labels"], gallery, train_set["labels"], 5)
        out[name] = {k: round(v, 2) for k, v in figures.items()}
    return out


def _composite(video: torch.Tensor, mean, std) -> Image.Image:
    """A clip ``(C, T, H, W)`` as one RGB image: red = first frame, green = middle, blue = last (grey levels)."""
    frames = frames_to_uint8(video.transpose(0, 1).float(), mean, std).float().mean(1)  # (T, H, W)
    t = frames.shape[0]
    rgb = torch.stack([frames[0], frames[t // 2], frames[-1]], dim=-1).round().to(torch.uint8)
    return Image.fromarray(rgb.numpy()).resize((TILE, TILE), Image.Resampling.NEAREST)


def draw(path: Path, model_cfg, train_set: dict, val_set: dict, classes: list[str]) -> Path:
    """Query and nearest training videos of four queries, one block of rows per feature set."""
    names = [f"level{lv}" for lv in train_set["levels"]]
    queries = [int((val_set["labels"] == classes.index(c)).nonzero()[0]) for c in QUERY_CLASSES]
    caption, gap = 14, 12
    cols, rows = 1 + NEIGHBOURS, len(queries) * len(names)
    width = 60 + cols * (TILE + 4) + gap
    height = rows * (TILE + caption + 4) + gap * len(names) + caption
    canvas = Image.new("RGB", (width, height), "white")
    pen = ImageDraw.Draw(canvas)
    pen.text((62, 1), "query", fill="black")
    pen.text((62 + TILE + 4 + gap, 1), f"its {NEIGHBOURS} nearest training videos", fill="black")
    y = caption
    for name in names:
        level = int(name[len("level"):])
        q = torch.nn.functional.normalize(val_set["levels"][level], dim=1)
        g = torch.nn.functional.normalize(train_set["levels"][level], dim=1)
        for row, qi in enumerate(queries):
            pen.text((2, y + TILE // 2), f"level {level}" if row == 0 else "", fill="black")
            nearest = (q[qi] @ g.T).topk(NEIGHBOURS).indices.tolist()
            videos = [(val_set["dataset"], int(val_set["indices"][qi]), int(val_set["labels"][qi]))]
            videos += [(train_set["dataset"], int(train_set["indices"][j]), int(train_set["labels"][j]))
                       for j in nearest]
            for col, (dataset, index, label) in enumerate(videos):
                x = 60 + col * (TILE + 4) + (gap if col else 0)
                canvas.paste(_composite(dataset[index]["video"], model_cfg.mean, model_cfg.std), (x, y))
                same = label == int(val_set["labels"][qi])
                pen.text((x + 2, y + TILE + 1), classes[label],
                         fill="black" if col == 0 else ("green" if same else "red"))
            y += TILE + caption + 4
        y += gap
    canvas.save(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="runs/claims/table1/seed0/contrastive/last.pt")
    parser.add_argument("--name", default="claim_retrieval_cpu", help="the JSON and PNG files' name")
    args = parser.parse_args()
    torch.set_num_threads(min(torch.get_num_threads(), os.cpu_count() or 1))
    ckpt, model, recipe = load_run(args.checkpoint)
    train_set = motion_features(model, recipe, recipe.data.train_split)
    val_set = motion_features(model, recipe, recipe.data.val_split)
    classes = list(val_set["dataset"].classes)
    trained = retrieval(train_set, val_set)
    torch.manual_seed(recipe.seed)  # the network before training (the trainer seeds it so)
    initial = zoo.create_model(ckpt["model_name"], num_classes=ckpt["num_classes"], **ckpt["model_args"]).eval()
    initial_figures = retrieval(motion_features(initial, recipe, recipe.data.train_split),
                                motion_features(initial, recipe, recipe.data.val_split))
    picture = draw(RESULTS_DIR / f"{args.name}.png", model.pretrained_cfg, train_set, val_set, classes)
    for name, figures in trained.items():
        print(f"{name:9s} trained {figures}  at initialisation {initial_figures[name]}", flush=True)
    payload = {
        "benchmark": "claim: nearest-neighbour retrieval with the motion features of each level (paper Fig. 5); "
                     "Moving-Digits val queries, training-split gallery, cosine similarity",
        "env": env_info("cpu"),
        "checkpoint": str(args.checkpoint),
        "checkpoint_recipe": recipe.name,
        "stages": [f"{s.name}: {s.epochs} epochs" for s in recipe.stages],
        "labels_seen_in_training": any(s.objective != "hcml" or s.objective_cfg.get("stage") == "joint"
                                       for s in recipe.stages),
        "queries": len(val_set["labels"]),
        "gallery": len(train_set["labels"]),
        "chance_top1": 12.5,
        "trained": trained,
        "at_initialisation": initial_figures,
        "picture": str(picture.relative_to(RESULTS_DIR.parent.parent)),
        "picture_queries": list(QUERY_CLASSES),
        "paper": "Fig. 5: the nearest neighbours of a query by the motion features of each level share its motion "
                 "(qualitative)",
    }
    path = write_result(args.name, payload)
    print(f"written: {path}, {picture}")


if __name__ == "__main__":
    main()
