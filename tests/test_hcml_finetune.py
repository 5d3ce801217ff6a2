"""``recipes/hcml_finetune.yaml``: a pretrained tag (its file made here, in a temporary ``$TORCH_HOME``) with
zero-initialised HCML adapters, trained two steps per stage on a generated folder dataset, offline."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.models import video as tv
from torchvision.transforms import v2

import zoo
from zoo._hub import url_cache_path
from zoo.data import write_video
from zoo.data.moving_digits import render_video
from zoo.data.transforms import NormalizeToCTHW
from zoo.train import Trainer, build_model_from_checkpoint, load_recipe, load_training_checkpoint
from zoo.train.loaders import pretrained_data_cfg, recipe_dataset

pytestmark = pytest.mark.usefixtures("one_thread")

RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "hcml_finetune.yaml"
TAG = "r2plus1d_18.tv_k400"
CLASSES = ("left", "right", "up")  # the classes name directions: the run turns flips off


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("my_videos")
    for split, per_class in (("train", 2), ("val", 1)):
        for label, name in enumerate(CLASSES):
            for i in range(per_class):
                video = render_video(name, np.random.default_rng([label, i, split == "val"]), 48, 12)
                path = root / split / name / f"video{i}.mp4"
                path.parent.mkdir(parents=True, exist_ok=True)
                write_video(path, video, fps=8.0)
    return root


@pytest.fixture
def weights(tmp_path, monkeypatch) -> dict[str, torch.Tensor]:
    """torchvision's randomly initialised R(2+1)D-18 saved where the tag's download would put it."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    torch.manual_seed(0)
    reference = tv.r2plus1d_18()
    for m in reference.modules():
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    path = url_cache_path(zoo.get_pretrained_cfg(TAG).url)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(reference.state_dict(), path)
    return reference.state_dict()


def _ours(key: str) -> str:
    """torchvision's key -> the adapted model's (levels 1-3 wrap layer1-3: their weights move under ``.stage.``)."""
    head, _, rest = key.partition(".")
    return f"{head}.stage.{rest}" if head in ("layer1", "layer2", "layer3") else key


def test_hcml_finetune_recipe_trains_from_a_pretrained_tag(folder, weights, tmp_path):
    overrides = [
        f"data.root={folder}", f"model.backbone={TAG}", f"output_dir={tmp_path / 'run'}", "progress=false",
        "max_epochs=1", "max_steps_per_epoch=2", "data.num_frames=12", "data.frame_stride=1", "data.batch_size=2",
        "data.num_workers=0", "data.hflip=false", "data.input_size=32", "data.train_short_side=[32, 40]",
        "data.test_short_side=32", "eval.n_clips=1", "eval.n_crops=1", "eval.batch_size=3",
    ]
    recipe = load_recipe(RECIPE, overrides)
    assert recipe.model.name == "hcml" and recipe.model.pretrained and recipe.model.kwargs["backbone"] == TAG
    assert [s.objective_cfg["stage"] for s in recipe.stages] == ["level1", "level2", "level3", "joint"]

    # The transform is the tag's (its normalisation; its crop unless overridden, as the size is here), no flips.
    tag = zoo.get_pretrained_cfg(TAG)
    data_cfg = pretrained_data_cfg(load_recipe(RECIPE, [f"data.root={folder}"]))
    assert data_cfg["crop_size"] == (112, 112) and tuple(data_cfg["mean"]) == tuple(tag.mean)
    steps = recipe_dataset(recipe, "train", train=True).transform.transforms
    assert not any(isinstance(t, v2.RandomHorizontalFlip) for t in steps)
    normalize = next(t for t in steps if isinstance(t, NormalizeToCTHW))
    assert tuple(normalize.mean) == tuple(tag.mean) and tuple(normalize.std) == tuple(tag.std)

    result = Trainer(recipe).run()
    ckpt = load_training_checkpoint(result.checkpoint)
    assert ckpt["finished"] and ckpt["step"] == 2 * len(recipe.stages)
    assert ckpt["num_classes"] == len(CLASSES) and ckpt["label_names"] == list(CLASSES)
    assert ckpt["model"]["head.fc.weight"].shape[0] == len(CLASSES)  # the classifier sized to the user's classes
    assert tuple(ckpt["pretrained_cfg"]["mean"]) == tuple(tag.mean)  # what the exported weights will be fed

    # The level stages train the adapters only: after them the backbone is still the tag's file, exactly.
    level3 = torch.load(result.run_dir / "stage_level3.pt", weights_only=True)["model"]
    backbone = {k: v for k, v in weights.items() if not k.startswith("fc.")}
    for key, value in backbone.items():
        torch.testing.assert_close(level3[_ours(key)], value, rtol=0, atol=0, msg=key)
    assert any(not torch.equal(level3[k], ckpt["model"][k]) for k in level3 if ".motion." in k)
    # The joint stage trains everything (the pretrained backbone too).
    assert any(not torch.equal(ckpt["model"][_ours(k)], v) for k, v in backbone.items() if k.endswith("weight"))
    assert 0.0 <= result.metrics["top1"] <= 100.0


def test_a_plain_checkpoint_loads_into_its_hcml_version(tmp_path):
    """``model.checkpoint`` of a plain model (e.g. one the user trained) with ``model.name: hcml``: the wrapped
    stages' weights load under ``.stage.``, the adapters keep their zero ``g``, the outputs are the plain model's."""
    from safetensors.torch import save_file

    from zoo.train.checkpoint import init_weights_from

    torch.manual_seed(0)
    plain = zoo.create_model("r2d_18", num_classes=4).eval()
    save_file({k: v.contiguous() for k, v in plain.state_dict().items()}, str(tmp_path / "plain.safetensors"))
    torch.manual_seed(1)
    model = zoo.create_model("hcml", backbone="r2d_18", num_classes=4)
    missing = init_weights_from(model, tmp_path / "plain.safetensors")
    assert missing and all(".motion." in k or ".fuse." in k or k.startswith("hcml.") for k in missing)
    x = torch.randn(1, 3, 4, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), plain(x), rtol=0, atol=0)


@pytest.mark.parametrize("tag", ["x3d_xs.pv_k400", "swin3d_t.tv_k400"])
def test_hcml_finetune_recipe_runs_on_x3d_and_a_transformer(tag, folder, tmp_path, monkeypatch):
    """The same recipe with an X3D and a Swin3D tag (their files: our random models' weights in the sources'
    formats, where torch.hub caches the downloads), two steps per stage at each model's smallest training clip:
    every stage trains what it should (the level stages leave the tag's backbone weights as they were) and the
    run finishes with a classifier sized to the user's classes. (This suite's stand-in for the plug-in
    experiment on these families, which the README says was not run on a 2-core CPU.)"""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    torch.manual_seed(0)
    state = zoo.create_model(tag.split(".")[0]).state_dict()
    path = url_cache_path(zoo.get_pretrained_cfg(tag).url)
    path.parent.mkdir(parents=True)
    torch.save({"model_state": state} if ".pv_" in tag else state, path)  # pytorchvideo's files hold model_state
    probe = zoo.create_model("hcml", backbone=tag.split(".")[0], num_classes=len(CLASSES))
    frames, size = probe.min_train_frames, probe.min_size
    overrides = [
        f"data.root={folder}", f"model.kwargs.backbone={tag}", f"output_dir={tmp_path / 'run'}", "progress=false",
        "max_epochs=1", "max_steps_per_epoch=2", f"data.num_frames={frames}", "data.frame_stride=1",
        "data.batch_size=2", "data.num_workers=0", f"data.input_size={size}", f"data.train_short_side=[{size}, {size}]",
        f"data.test_short_side={size}", "eval.n_clips=1", "eval.n_crops=1", "eval.batch_size=3",
    ]
    result = Trainer(load_recipe(RECIPE, overrides)).run()
    ckpt = load_training_checkpoint(result.checkpoint)
    assert ckpt["finished"] and ckpt["step"] == 8 and ckpt["label_names"] == list(CLASSES)
    level3 = torch.load(result.run_dir / "stage_level3.pt", weights_only=True)["model"]
    # the tag's weights with zero-initialised adapters, as the run started
    adapted = zoo.create_model("hcml", backbone=tag, pretrained=True, num_classes=len(CLASSES)).state_dict()
    start = {k: v for k, v in adapted.items() if ".motion." not in k and ".fuse." not in k and not k.startswith(
        ("hcml.", "head.", "fc.")) and v.is_floating_point()}
    assert len(start) > 50
    for key, value in start.items():  # the level stages train the adapters only
        torch.testing.assert_close(level3[key], value, rtol=0, atol=0, msg=key)
    assert any(not torch.equal(level3[k], adapted[k]) for k in level3 if ".motion." in k)
    assert any(not torch.equal(ckpt["model"][k], v) for k, v in start.items() if k.endswith("weight"))  # joint: all
    model = build_model_from_checkpoint(ckpt).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, frames, size, size)).shape == (1, len(CLASSES))
