"""Every recipe parses and trains two steps on a tiny dataset generated in its own format; the
shortened quickstart runs end to end through ``zoo train``."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import save_file

import zoo
from zoo.cli import main
from zoo.data import write_video
from zoo.data.moving_digits import render_video
from zoo.methods import get_objective_class
from zoo.train import Trainer, load_recipe, load_training_checkpoint
from zoo.train.recipe import RecipeError

RECIPES = Path(__file__).resolve().parent.parent / "recipes"
ALL_RECIPES = sorted(p.name for p in RECIPES.glob("*.yaml"))
CLASSES = ("left", "right", "up")
SIZE, FRAMES = 48, 12


def _clip(label: int, index: int) -> np.ndarray:
    """A 48x48, 12-frame Moving-Digits clip, uint8 (T, H, W, 3)."""
    return render_video(CLASSES[label], np.random.default_rng([label, index]), SIZE, FRAMES)


def _write(path: Path, label: int, index: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, _clip(label, index), fps=8.0)


def _videos(split: str) -> list[tuple[int, int]]:
    """(label, index) of a split: 2 videos per class for training, 1 for evaluation."""
    per_class = 2 if split == "train" else 1
    return [(label, i + (0 if split == "train" else 10)) for label in range(len(CLASSES)) for i in range(per_class)]


def make_kinetics(root: Path) -> None:
    for split in ("train", "val"):
        rows = []
        for label, i in _videos(split):
            youtube_id = f"yt{label}{i:02d}"
            _write(root / split / f"{youtube_id}_000001_000011.mp4", label, i)
            rows.append([CLASSES[label], youtube_id, 1, 11, split])
        with open(root / f"{split}.csv", "w", newline="") as f:
            csv.writer(f).writerows([["label", "youtube_id", "time_start", "time_end", "split"], *rows])


def _templates() -> list[str]:
    return [f"Moving [something] {c}" for c in CLASSES]


def make_ssv2(root: Path) -> None:
    labels = {t.replace("[", "").replace("]", ""): str(i) for i, t in enumerate(_templates())}
    root.mkdir(parents=True)
    (root / "something-something-v2-labels.json").write_text(json.dumps(labels))
    for split, name in (("train", "train"), ("val", "validation")):
        entries = []
        for label, i in _videos(split):
            video_id = f"{label}{i:02d}"
            _write(root / "videos" / f"{video_id}.mp4", label, i)
            entries.append({"id": video_id, "template": _templates()[label], "label": "", "placeholders": []})
        (root / f"something-something-v2-{name}.json").write_text(json.dumps(entries))


def make_ssv1(root: Path) -> None:
    names = [t.replace("[", "").replace("]", "") for t in _templates()]
    root.mkdir(parents=True)
    (root / "something-something-v1-labels.csv").write_text("\n".join(names) + "\n")
    for split, name in (("train", "train"), ("val", "validation")):
        lines = []
        for label, i in _videos(split):
            video_id = f"{label}{i:02d}"
            for t, frame in enumerate(_clip(label, i)):
                (root / video_id).mkdir(exist_ok=True)
                Image.fromarray(frame).save(root / video_id / f"{t + 1:05d}.jpg", quality=95)
            lines.append(f"{video_id};{names[label]}")
        (root / f"something-something-v1-{name}.csv").write_text("\n".join(lines) + "\n")


def make_ucf101(root: Path) -> None:
    names = [c.capitalize() for c in CLASSES]
    root.mkdir(parents=True)
    (root / "classInd.txt").write_text("".join(f"{i + 1} {n}\n" for i, n in enumerate(names)))
    for split in ("train", "test"):
        lines = []
        for label, i in _videos("train" if split == "train" else "val"):
            rel = f"{names[label]}/v_{names[label]}_g{i:02d}_c01.mp4"
            _write(root / rel, label, i)
            lines.append(f"{rel} {label + 1}" if split == "train" else rel)
        (root / f"{split}list01.txt").write_text("\n".join(lines) + "\n")


def make_folder(root: Path) -> None:
    for split in ("train", "val"):
        for label, i in _videos(split):
            _write(root / split / CLASSES[label] / f"video{i:02d}.mp4", label, i)


def make_csv(root: Path) -> None:
    for split in ("train", "val"):
        rows = []
        for label, i in _videos(split):
            rel = f"clips/{split}_{label}_{i:02d}.mp4"
            _write(root / rel, label, i)
            rows.append([rel, CLASSES[label]])
        with open(root / f"{split}.csv", "w", newline="") as f:
            csv.writer(f).writerows([["path", "label"], *rows])


MAKERS = {"kinetics": make_kinetics, "ssv2": make_ssv2, "ssv1": make_ssv1, "ucf101": make_ucf101,
          "folder": make_folder, "csv": make_csv}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("formats")
    for kind, make in MAKERS.items():
        make(base / kind)
    return {kind: base / kind for kind in MAKERS}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """Stand-ins for the Kinetics checkpoints the fine-tuning recipes start from (400 classes)."""
    base = tmp_path_factory.mktemp("checkpoints")
    out = {}
    for key, name, kwargs in (("hcml_r2d_50", "hcml_r2d_50", {}), ("s3d", "hcml", {"backbone": "s3d"})):
        model = zoo.create_model(name, num_classes=400, **kwargs)
        out[key] = base / f"{key}.safetensors"
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out[key]))
    return out


# ---------------------------------------------------------------------------------------------- parsing


@pytest.mark.parametrize("name", ALL_RECIPES)
def test_recipe_parses(name):
    recipe = load_recipe(RECIPES / name)
    assert recipe.name == Path(name).stem
    assert zoo.is_model(recipe.model.name)
    from zoo.methods import list_objectives

    assert all(stage.objective in list_objectives() for stage in recipe.stages)


def test_paper_hyperparameters():
    """Appendix C.2 as the recipes hold it (lr per 8 clips, T, stride, epochs, warm-up, global BN, loss weights)."""
    k400 = load_recipe(RECIPES / "k400_r2d50_hcml.yaml")
    assert (k400.optim.name, k400.optim.lr, k400.optim.base_batch_size, k400.data.batch_size) == ("sgd", 0.0025, 8, 8)
    assert (k400.data.num_frames, k400.data.frame_stride, k400.data.train_short_side) == (16, 2, [256, 320])
    assert [(s.objective_cfg["stage"], s.epochs, s.warmup_epochs, s.global_bn) for s in k400.stages] == [
        ("level1", 80, 10, True), ("level2", 80, 10, True), ("level3", 80, 10, True), ("joint", 200, 40, False)]
    assert k400.stages[-1].objective_cfg == {"stage": "joint", "reconstruct_weight": 15.0, "contrastive_weight": 0.25}
    r101 = load_recipe(RECIPES / "k400_r2plus1d101_hcml.yaml")
    assert (r101.model.name, r101.data.num_frames, r101.data.train_short_side) == ("hcml_r2plus1d_101", 32, [256, 340])
    assert r101.stages == k400.stages  # inherited
    for name, kind in (("ssv1_r2d50_hcml.yaml", "ssv1"), ("ssv2_r2d50_hcml.yaml", "ssv2")):
        ss = load_recipe(RECIPES / name)
        assert (ss.data.kind, ss.data.num_frames, ss.data.frame_stride, ss.data.hflip) == (kind, 32, 1, False)
        assert (ss.stages[-1].epochs, ss.stages[-1].warmup_epochs, ss.optim.lr) == (150, 50, 0.0025)
    ucf = load_recipe(RECIPES / "ucf101_r2d50_finetune.yaml")
    assert (ucf.stages[0].epochs, ucf.optim.lr, ucf.optim.base_batch_size) == (30, 0.002, 32)
    ssl = load_recipe(RECIPES / "k400_s3d_hcml_ssl.yaml")
    assert [s.objective_cfg["stage"] for s in ssl.stages] == ["level1", "level2", "level3"]
    assert (ssl.model.name, ssl.model.kwargs["backbone"]) == ("hcml", "s3d")


def test_unknown_key_names_key_and_file(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("base: " + str(RECIPES / "finetune.yaml") + "\noptim: {lr: 0.1, wieght_decay: 0.0}\n")
    with pytest.raises(RecipeError, match=r"typo\.yaml: unknown key 'optim.wieght_decay'; did you mean 'weight_decay'"):
        load_recipe(path)
    path.write_text("name: x\nmodel: {name: r2d_18}\ndata: {kind: folder}\nstages: [{name: a, epochs: two}]\n")
    with pytest.raises(RecipeError, match="epochs"):
        load_recipe(path)
    path.write_text("name: x\nmodel: {name: r2d_18}\n")
    with pytest.raises(RecipeError, match="missing value for data.kind"):
        load_recipe(path)


def test_inheritance_and_overrides(tmp_path):
    recipe = load_recipe(RECIPES / "linear_probe.yaml", ["stages.0.epochs=3", "data.train_short_side=[120, 140]",
                                                          "model.kwargs.drop_rate=0.1", "eval.knn=[1]"])
    assert recipe.data.kind == "folder" and recipe.model.name == "r2plus1d_18"  # from finetune.yaml
    assert [s.name for s in recipe.stages] == ["probe"]  # the list is replaced, not merged
    assert recipe.stages[0].epochs == 3 and recipe.stages[0].trainable == ["head.fc.*"]
    assert recipe.data.train_short_side == [120, 140] and recipe.model.kwargs == {"drop_rate": 0.1}
    with pytest.raises(RecipeError, match="stages has 1 items"):
        load_recipe(RECIPES / "linear_probe.yaml", ["stages.1.epochs=3"])
    quickstart = load_recipe(RECIPES / "quickstart.yaml")
    assert quickstart.compare == [str(RECIPES / "quickstart_baseline.yaml")]


# ---------------------------------------------------------------------------------------------- two steps


def _overrides(recipe, root: Path, out: Path, steps: int) -> list[str]:
    """Shrink a recipe to a tiny run: one clip of 8 frames per step, ``steps`` steps per stage, 32x32
    pixels (64x64 for S3D, whose pooling needs them), at most 3 test views."""
    size = 64 if recipe.model.kwargs.get("backbone", recipe.model.name) == "s3d" else 32
    changes = [
        f"output_dir={out}", "progress=false", "max_epochs=1", f"max_steps_per_epoch={steps}", f"data.root={root}",
        "data.num_frames=8", "data.frame_stride=1", "data.batch_size=1", "data.num_workers=0",
        f"data.input_size={size}", f"data.train_short_side=[{size}, {size + 8}]", f"data.test_short_side={size}",
        "eval.n_clips=1", "eval.every=1", "eval.batch_size=4",
    ]
    # At T=8 the third HCML level has 2 time steps and, at 32 pixels, a 2x2 map: predict one step
    # ahead, and correlate over one pixel.
    hcml = "model.kwargs.hcml_cfg"
    if recipe.model.name.startswith("hcml"):
        changes += [f"{hcml}.deltas=[1]", f"{hcml}.max_displacement={{3: 1}}"]
    return changes


CASES = [
    ("k400_r2d50_hcml.yaml", "kinetics"),
    ("k400_r2plus1d101_hcml.yaml", "kinetics"),
    ("ssv1_r2d50_hcml.yaml", "ssv1"),
    ("ssv2_r2d50_hcml.yaml", "ssv2"),
    ("ucf101_r2d50_finetune.yaml", "ucf101"),
    ("k400_s3d_hcml_ssl.yaml", "kinetics"),
    ("ucf101_s3d_finetune.yaml", "ucf101"),
    ("finetune.yaml", "folder"),
    ("finetune.yaml", "csv"),
    ("linear_probe.yaml", "folder"),
    # Objectives with optical flow: their flow caches are computed from the generated videos (Farneback).
    ("mscl_r3d18_k400.yaml", "kinetics"),
    ("mscl_r3d18_custom.yaml", "folder"),
    ("mcl_r2plus1d50_k400.yaml", "kinetics"),
    ("mcl_r2plus1d50_ucf101.yaml", "ucf101"),
]


def test_every_recipe_is_covered():
    covered = {name for name, _ in CASES} | {"quickstart.yaml", "quickstart_baseline.yaml"}
    covered |= {"hcml_finetune.yaml"}  # from a pretrained tag whose file a test makes: tests/test_hcml_finetune.py
    assert covered == set(ALL_RECIPES)


def _flow_overrides(recipe, flow_root: Path) -> list[str]:
    """Stages whose objective reads optical flow (MSCL, MCL): Farneback flow (the recipes' RAFT and TV-L1
    need weights or OpenCV contrib) cached under ``flow_root``, queues of 8 keys, and 2 videos per step (at
    one, BN normalises 2 values per channel at the last level of 32-pixel clips and the contrastive
    gradients blow the weights up)."""
    changes = []
    for i, stage in enumerate(recipe.stages):
        if hasattr(get_objective_class(stage.objective), "flow_defaults"):
            key = f"stages.{i}.objective_cfg"
            changes += [f"{key}.flow.provider=farneback", f"{key}.flow.provider_kwargs={{}}",
                        f"{key}.flow.root={flow_root / stage.name}", f"{key}.flow.progress=false",
                        f"{key}.queue_size=8"]
    return changes + ["data.batch_size=2"] if changes else []


@pytest.mark.parametrize("name, kind", CASES, ids=[f"{n[:-5]}-{k}" for n, k in CASES])
def test_recipe_trains_two_steps(name, kind, datasets, checkpoints, tmp_path):
    recipe = load_recipe(RECIPES / name)
    steps = 2 if len(recipe.stages) == 1 else 1  # multi-stage recipes: one step per stage
    overrides = _overrides(recipe, datasets[kind], tmp_path / "run", steps)
    if kind != recipe.data.kind:
        overrides.append(f"data.kind={kind}")
    if name != "k400_r2d50_hcml.yaml":  # one recipe tests three-crop views; the others save the time
        overrides.append("eval.n_crops=1")
    if recipe.model.checkpoint:
        overrides.append(f"model.checkpoint={checkpoints[recipe.model.kwargs.get('backbone', recipe.model.name)]}")
    overrides += _flow_overrides(recipe, tmp_path / "flow")
    recipe = load_recipe(RECIPES / name, overrides)
    result = Trainer(recipe).run()
    ckpt = load_training_checkpoint(result.checkpoint)
    assert ckpt["step"] == steps * len(recipe.stages) and ckpt["finished"]
    assert ckpt["num_classes"] == len(CLASSES) and len(ckpt["label_names"]) == len(CLASSES)
    for stage in recipe.stages:
        assert (result.run_dir / f"stage_{stage.name}.pt").is_file()
    if recipe.eval.accuracy:
        assert 0.0 <= result.metrics["top1"] <= 100.0
        if recipe.eval.n_crops > 1:
            assert result.metrics["views"] == f"1x{recipe.eval.n_crops}"
    for k in recipe.eval.knn:
        assert 0.0 <= result.metrics[f"knn_recall@{k}"] <= 100.0
    assert torch.load(result.checkpoint, weights_only=True)["model_name"] == recipe.model.name
    for stage in recipe.stages:
        flow = stage.objective_cfg.get("flow")
        if flow is not None:  # the cache was built from this dataset's videos, one flow file per training video
            assert len(list(Path(flow["root"]).glob("*/*.npy"))) == len(_videos("train"))
        if stage.objective == "mcl":  # the order labels reach the loss where the recipe has it (UCF-101)
            records = [json.loads(line) for line in open(result.run_dir / "metrics.jsonl")]
            epoch = next(r for r in records if r["kind"] == "epoch" and r["stage"] == stage.name)
            assert ("train_loss_order" in epoch) == stage.objective_cfg["order_loss"]


# ---------------------------------------------------------------------------------------------- quickstart


def test_quickstart_end_to_end(tmp_path, capsys):
    """`zoo train recipes/quickstart.yaml`, shortened: HCML then the baseline, then the table."""
    overrides = [
        f"output_dir={tmp_path / 'runs' / 'quickstart'}", "progress=false", "max_epochs=1", "max_steps_per_epoch=2",
        "data.num_workers=0", "data.batch_size=4", "data.num_frames=8", "data.frame_stride=1",
        "data.options.classes=[left, right, up, down]", "data.options.videos_per_class=2",
        "data.options.eval_videos_per_class=1", "data.options.progress=false",
    ]
    assert main(["train", str(RECIPES / "quickstart.yaml"), *overrides]) == 0
    out = capsys.readouterr().out
    assert "name: quickstart" in out  # the resolved recipe is printed first
    table = out[out.index("Results on the val split"):]
    assert "hcml_r2d_18" in table and "r2d_18" in table and "top-1 (%)" in table
    for name in ("quickstart", "quickstart_baseline"):
        run = tmp_path / "runs" / name
        assert (run / "last.pt").is_file() and (run / "loss.png").is_file() and (run / "confusion_matrix.png").is_file()
        assert str(run / "last.pt") in out
        saved = yaml.safe_load((run / "recipe.yaml").read_text())
        assert saved["max_steps_per_epoch"] == 2 and saved["name"] == name
    assert load_training_checkpoint(tmp_path / "runs" / "quickstart_baseline" / "last.pt")["model_name"] == "r2d_18"
    # zoo eval on the HCML checkpoint gives the same single-view top-1 as the end of training.
    trained = json.loads((tmp_path / "runs" / "quickstart" / "eval.json").read_text())
    assert main(["eval", str(RECIPES / "quickstart.yaml"), *overrides,
                 f"checkpoint={tmp_path / 'runs' / 'quickstart' / 'last.pt'}"]) == 0
    evaluated = json.loads((tmp_path / "runs" / "quickstart" / "eval_1x1.json").read_text())
    assert evaluated["top1"] == trained["top1"]
    # and on the run folder alone: the recipe saved in the run (its overrides included), views in the file name
    assert main(["eval", str(tmp_path / "runs" / "quickstart"), "eval.n_clips=2"]) == 0
    assert "top1" in json.loads((tmp_path / "runs" / "quickstart" / "eval_2x1.json").read_text())


def test_model_backbone_is_short_for_kwargs_backbone_of_wrapper_models():
    recipe = load_recipe(RECIPES / "hcml_finetune.yaml", ["model.backbone=r3d_18.tv_k400"])
    assert recipe.model.kwargs["backbone"] == "r3d_18.tv_k400" and recipe.model.backbone is None
    with pytest.raises(RecipeError, match="model.backbone is for models that wrap a backbone"):
        load_recipe(RECIPES / "finetune.yaml", ["model.name=r3d_18", "model.backbone=r2d_18"])
