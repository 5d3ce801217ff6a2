"""HCML as a plug-in on a pretrained backbone: fine-tune with and without adapters, same epochs, several seeds.

The way users will use it (``recipes/hcml_finetune.yaml``), on Moving-Digits:

1. Pre-train the plain backbone by classification on a task whose labels do not need the arrow of time:
   Moving-Digits with one direction of each motion pair (``left``, ``up``, ``clockwise``, ``grow``: which
   kind of motion it is, which a set of frames shows without their order). Once per backbone (reused by
   every seed); its checkpoint stands for a pretrained tag.
2. Fine-tune it on the motion task, all 8 classes (each pair a time reversal of the other), from that
   checkpoint (``model.checkpoint``: the plain weights load into the adapted model's wrapped stages,
   :func:`zoo.adapters.hcml_state_dict`), the same number of epochs for both arms:

   - ``plain``: ``recipes/finetune.yaml``'s single classification stage, ``epochs`` epochs;
   - ``hcml``: ``recipes/hcml_finetune.yaml``: zero-initialised adapters, one epoch each of the level
     stages (adapters only), then ``epochs - 3`` of joint training (``--hcml-epochs``: another count for
     this arm, e.g. ``epochs + 3`` for as many epochs of training the backbone as the plain arm has).

   Both with the quickstart's optimiser (AdamW, lr 0.002 at 8 clips, weight decay 0.05, clipping 5), batch 8,
   8 frames 4 apart, and the same seed, so the fresh 8-class classifier starts the same in both.

Before fine-tuning, both models are evaluated on the val split: zero-initialised ``g`` makes the adapted
model's logits equal to the plain model's (``start``: the top-1 of each and the largest logit difference).
Then the final val top-1 of each arm and seed, the per-stage training time (``epoch_time_s`` of the run's
metrics), the mean and standard deviation over seeds. Results go to
``benchmarks/results/hcml_plugin_<backbone>_cpu.json`` (merged with the runs already there for the same
settings, so seeds can be added by later invocations).

    python benchmarks/hcml_plugin.py                                 # r2d_18, seeds 0 1 2
    python benchmarks/hcml_plugin.py --backbone x3d_xs --seeds 0     # another family
    python benchmarks/hcml_plugin.py --backbone r3d_18 --deltas 1 --eval-videos-per-class 32 --hcml-epochs 9

The data (32-pixel Moving-Digits, 40 training and 8 val videos per class) is generated into ``$ZOO_HOME`` on
first use (the fine-tuning set is the configuration other benchmarks use, so it may already be there).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _claims import mean_std, stage_names  # noqa: E402
from _common import RESULTS_DIR, env_info, moving_digits_version, write_result  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

import zoo  # noqa: E402
from zoo.data import video_collate  # noqa: E402
from zoo.train import load_recipe, recipe_dataset, train  # noqa: E402
from zoo.train.checkpoint import init_weights_from  # noqa: E402

RECIPES = Path(__file__).resolve().parent.parent / "recipes"
PRETRAIN_CLASSES = ["left", "up", "clockwise", "grow"]  # one of each pair: the kind of motion, not its direction
OPTIM = ["optim.name=adamw", "optim.lr=0.002", "optim.base_batch_size=8", "optim.weight_decay=0.05",
         "optim.clip_grad=5.0"]


def _data(args: argparse.Namespace, classes: list[str] | None = None) -> list[str]:
    classes = classes or list(zoo.data.MOVING_DIGITS_CLASSES)
    return [
        "data.kind=moving_digits", "data.root=null", f"data.num_frames={args.frames}",
        f"data.frame_stride={args.frame_stride}", "data.batch_size=8", "data.num_workers=1", "data.reader=pyav",
        "data.input_size=null", "data.hflip=null",
        f"data.options={{classes: [{', '.join(classes)}], frame_size: {args.frame_size}, "
        f"videos_per_class: {args.videos_per_class}, eval_videos_per_class: {args.eval_videos_per_class}, "
        "frames_per_video: 32, progress: false}",
        "eval.every=0", "eval.knn=[]", "eval.n_clips=1", "eval.n_crops=1", "eval.confusion_matrix=false",
        "progress=false", "compare=[]", "threads=1",
    ]


def _model(args: argparse.Namespace) -> list[str]:
    extra = f", backbone: {args.timm_backbone}" if args.backbone == "timm2d" else ""
    return [f"model.name={args.backbone}", "model.pretrained=false", f"model.kwargs={{drop_rate: null{extra}}}"]


def pretrain(args: argparse.Namespace, out: Path) -> tuple[Path, dict]:
    """The plain backbone trained on the time-symmetric task (``out/last.pt``, reused when there from the same
    settings; another setting trains it again)."""
    ckpt = out / "last.pt"
    info_path = out / "pretrain.json"
    data_settings = {k: getattr(args, k) for k in ("backbone", "timm_backbone", "pretrain_epochs", "frame_size",
                                                   "frames", "frame_stride", "videos_per_class",
                                                   "eval_videos_per_class")}
    if ckpt.is_file() and info_path.is_file():
        info = json.loads(info_path.read_text())
        if info.get("settings") == data_settings:
            return ckpt, info
        shutil.rmtree(out)
    recipe = load_recipe(RECIPES / "finetune.yaml", [
        *_data(args, PRETRAIN_CLASSES), *_model(args), *OPTIM, "name=pretrain", f"output_dir={out}", "seed=0",
        f"stages.0.epochs={args.pretrain_epochs}", "stages.0.warmup_epochs=0.5",
    ])
    start = time.perf_counter()
    result = train(recipe)
    info = {"classes": PRETRAIN_CLASSES, "epochs": args.pretrain_epochs, "top1": result.metrics["top1"],
            "wall_time_s": round(time.perf_counter() - start, 1), "settings": data_settings}
    info_path.write_text(json.dumps(info))
    return ckpt, info


def recipes(args: argparse.Namespace, ckpt: Path, seed: int, out: Path):
    """The two fine-tuning runs of one seed: plain (finetune.yaml) and HCML (hcml_finetune.yaml)."""
    common = [*_data(args), *OPTIM, f"seed={seed}", f"model.checkpoint={ckpt}"]
    plain = load_recipe(RECIPES / "finetune.yaml", [
        *common, *_model(args), "name=plain", f"output_dir={out / 'plain'}",
        f"stages.0.epochs={args.epochs}", "stages.0.warmup_epochs=0.5",
    ])
    deltas = ", ".join(str(d) for d in args.deltas)
    hcml_cfg = f"{{max_displacement: {{1: 2, 2: 2, 3: 1}}, displacement_stride: 1, deltas: [{deltas}]}}"
    backbone_args = f"{{backbone: {args.timm_backbone}}}" if args.backbone == "timm2d" else "null"
    hcml = load_recipe(RECIPES / "hcml_finetune.yaml", [
        *common, "name=hcml", f"output_dir={out / 'hcml'}", "model.pretrained=false",
        f"model.kwargs={{backbone: {args.backbone}, hcml_cfg: {hcml_cfg}, drop_rate: null, "
        f"backbone_args: {backbone_args}}}",
        *(f"stages.{i}.warmup_epochs=0.5" for i in range(4)), f"stages.3.epochs={args.hcml_epochs - 3}",
    ])
    return plain, hcml


def _build(recipe, ckpt: Path, num_classes: int) -> torch.nn.Module:
    """The model as ``zoo train`` builds it: the recipe's seed, ``create_model``, then ``model.checkpoint``."""
    torch.manual_seed(recipe.seed)
    kwargs = {k: v for k, v in recipe.model.kwargs.items() if v is not None}
    model = zoo.create_model(recipe.model.name, pretrained=recipe.model.pretrained, num_classes=num_classes, **kwargs)
    init_weights_from(model, ckpt)
    return model.eval()


@torch.no_grad()
def start(plain_recipe, hcml_recipe, ckpt: Path) -> dict:
    """Val top-1 of both models before fine-tuning, and the largest difference of their logits."""
    dataset = recipe_dataset(plain_recipe, plain_recipe.data.val_split, train=False)
    models = {name: _build(r, ckpt, len(dataset.classes)) for name, r in (("plain", plain_recipe),
                                                                          ("hcml", hcml_recipe))}
    logits = {name: [] for name in models}
    labels = []
    for batch in DataLoader(dataset, batch_size=16, collate_fn=video_collate):
        labels.append(batch["label"])
        for name, model in models.items():
            logits[name].append(model(batch["video"]).float())
    labels = torch.cat(labels)
    out = {f"{name}_top1": round(100 * (torch.cat(v).argmax(1) == labels).float().mean().item(), 2)
           for name, v in logits.items()}
    out["max_abs_logit_difference"] = (torch.cat(logits["plain"]) - torch.cat(logits["hcml"])).abs().max().item()
    return out


def stage_times(run_dir: Path) -> dict[str, float]:
    """Seconds of training per stage (the sum of its epochs' ``epoch_time_s``)."""
    times: dict[str, float] = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("kind") == "epoch":
            times[record["stage"]] = round(times.get(record["stage"], 0.0) + record.get("epoch_time_s", 0.0), 1)
    return times


def summary(runs: dict) -> dict:
    out = {}
    for arm in ("plain", "hcml"):
        tops = [r["top1"] for k, r in sorted(runs.items()) if k.startswith(arm + "_seed")]
        if tops:
            mean, std = mean_std(tops)
            out[arm] = {"seeds": len(tops), "mean": mean, "std": std, "min": min(tops), "max": max(tops)}
    if {"plain", "hcml"} <= set(out) and min(out["plain"]["seeds"], out["hcml"]["seeds"]) > 1:
        p, h = out["plain"], out["hcml"]
        se2 = 2 * (p["std"] ** 2 / p["seeds"] + h["std"] ** 2 / h["seeds"]) ** 0.5
        out["difference"] = {"hcml_minus_plain": round(h["mean"] - p["mean"], 2), "two_standard_errors": round(se2, 2),
                             "above_by_more_than_two_se": h["mean"] - p["mean"] > se2}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="r2d_18", help="a registered backbone (timm2d: see --timm-backbone)")
    parser.add_argument("--timm-backbone", default="regnetx_002")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=6, help="fine-tuning epochs of each arm (HCML: 3 + joint)")
    parser.add_argument("--hcml-epochs", type=int, default=None,
                        help="the HCML arm's epochs, if not --epochs (e.g. epochs + 3: as many joint epochs as the "
                             "plain arm has; results in hcml_plugin_<backbone>_hcml<N>_cpu.json)")
    parser.add_argument("--pretrain-epochs", type=int, default=6)
    parser.add_argument("--frame-size", type=int, default=32)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--frame-stride", type=int, default=4)
    parser.add_argument("--deltas", type=int, nargs="+", default=[1, 2],
                        help="HCML's prediction steps (the paper's 1 2; 1 where a level has only 2 time steps, "
                             "e.g. R3D's level 3 at 8 frames)")
    parser.add_argument("--videos-per-class", type=int, default=40)
    parser.add_argument("--eval-videos-per-class", type=int, default=8)
    parser.add_argument("--workdir", type=Path, default=Path("runs") / "hcml_plugin")
    args = parser.parse_args()
    args.hcml_epochs = args.hcml_epochs or args.epochs
    if args.hcml_epochs < 4:
        parser.error("HCML's epochs must leave at least one joint epoch after the three level stages")
    torch.set_num_threads(min(torch.get_num_threads(), os.cpu_count() or 1))
    label = args.backbone if args.backbone != "timm2d" else f"timm2d_{args.timm_backbone}"
    name = f"hcml_plugin_{label}_cpu" if args.hcml_epochs == args.epochs else (
        f"hcml_plugin_{label}_hcml{args.hcml_epochs}_cpu")
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                if k not in ("seeds", "workdir")}
    path = RESULTS_DIR / f"{name}.json"
    previous = json.loads(path.read_text()) if path.is_file() else {}
    runs = previous.get("runs", {}) if previous.get("settings") == settings else {}
    work = args.workdir / label
    ckpt, pre = pretrain(args, work / "pretrain")
    print(f"pretrained {label} on {PRETRAIN_CLASSES}: top-1 {pre['top1']:.1f}%", flush=True)
    for seed in args.seeds:
        plain_recipe, hcml_recipe = recipes(args, ckpt, seed, work / f"seed{seed}")
        at_start = start(plain_recipe, hcml_recipe, ckpt)
        print(f"seed {seed} before fine-tuning: {at_start}", flush=True)
        for arm, recipe in (("plain", plain_recipe), ("hcml", hcml_recipe)):
            t0 = time.perf_counter()
            result = train(recipe)
            runs[f"{arm}_seed{seed}"] = {
                "seed": seed, "top1": result.metrics["top1"], "top5": result.metrics["top5"],
                "start_top1": at_start[f"{arm}_top1"], "start_max_abs_logit_difference":
                    at_start["max_abs_logit_difference"],
                "stages": stage_names(recipe),
                "stage_train_time_s": stage_times(result.run_dir),
                "wall_time_s": round(time.perf_counter() - t0, 1),
            }
            print(f"seed {seed} {arm}: top-1 {result.metrics['top1']:.1f}%", flush=True)
            write_result(name, {
                "benchmark": "HCML as a plug-in on a pretrained backbone: plain vs HCML fine-tuning, same epochs",
                "env": {**env_info("cpu"), "moving_digits_generator": moving_digits_version()},
                "load_average": [round(v, 2) for v in os.getloadavg()],
                "backbone": label, "settings": settings, "pretrain": pre,
                "chance_top1": 12.5, "plain_ceiling_top1": 50.0 if args.backbone in ("r2d_18", "r2d_50", "timm2d")
                else None,
                "runs": dict(sorted(runs.items())), "summary": summary(runs),
            })
    print(f"written: {path}")


if __name__ == "__main__":
    main()
