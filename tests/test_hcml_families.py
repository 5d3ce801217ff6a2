"""HCML adapters on every model family: attach, forward, backward, the four objective stages, deploy, export.

One representative per family file (two where a family has two level layouts), each at the smallest clip the
adapted model trains on (``min_train_frames`` x ``min_size``). MViT only takes
``16 x 224 x 224`` clips (about 64 GFLOPs a pass): it gets one test (identity at attach, the parameters each
progressive stage trains, one joint step with every level's loss) instead of the per-stage ones; the outputs
after deploy and after export -> ``local-dir:`` are not compared for it (two more 224-px passes; deploy and export
do not depend on the family, and every other family's are compared).
"""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import zoo
from zoo.adapters import attach_hcml, hcml_stages, level_feature_index
from zoo.methods import create_objective

pytestmark = pytest.mark.usefixtures("one_thread")  # one intra-op thread for this module (conftest.py)

STAGES = ("level1", "level2", "level3", "joint")
# key -> (backbone, backbone arguments): one per family file; pytorchvideo's ResNets twice (C2D pools time
# between res2 and res3, R(2+1)D strides it in convs), SlowFast on each pathway.
FAMILIES = {
    "video_resnet": ("r2plus1d_18", {}),
    "s3d": ("s3d", {}),
    "timm2d": ("timm2d", {"backbone": "convnext_atto"}),
    "x3d": ("x3d_xs", {}),
    "slowfast_fast": ("slowfast_r50", {}),
    "slowfast_slow": ("slowfast_r50", {"feature_pathway": "slow"}),
    "csn": ("csn_r101", {}),
    "pv_resnet_c2d": ("c2d_r50", {}),
    "pv_resnet_r2plus1d": ("r2plus1d_r50", {}),
    "swin3d": ("swin3d_t", {}),
}
NUM_CLASSES = 5


def _hcml(key: str, **kwargs) -> nn.Module:
    backbone, args = FAMILIES[key]
    torch.manual_seed(0)
    return zoo.create_model("hcml", backbone=backbone, num_classes=NUM_CLASSES, backbone_args=args, **kwargs)


def _clip(model: nn.Module, batch: int = 2) -> torch.Tensor:
    """The smallest clip the adapted model trains on: ``min_train_frames`` frames (every level's pairs, and the
    contrastive levels' deltas) of ``min_size`` pixels."""
    size = max(model.min_size, model.feature_info[-1]["reduction"])
    torch.manual_seed(1)
    return torch.randn(batch, 3, model.min_train_frames, size, size)


def _randomise(model: nn.Module) -> nn.Module:
    """Non-zero ``g`` (so the motion features change the output) and BatchNorm statistics away from 0 / 1."""
    torch.manual_seed(2)
    for stage in hcml_stages(model).values():
        nn.init.normal_(stage.fuse.weight, std=0.05)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model


def _adapter_names(model: nn.Module, level: int) -> tuple[str, str]:
    name = hcml_stages(model)[level].stage_name
    return f"{name}.motion.", f"{name}.fuse."


@pytest.mark.parametrize("key", list(FAMILIES))
def test_attach_is_an_identity_and_backward_reaches_the_adapters(key):
    backbone, args = FAMILIES[key]
    torch.manual_seed(0)
    plain = zoo.create_model(backbone, num_classes=NUM_CLASSES, **args).eval()
    model = attach_hcml(copy.deepcopy(plain)).eval()
    x = _clip(model)
    with torch.no_grad():
        torch.testing.assert_close(model(x), plain(x), rtol=0, atol=0)
    stages = hcml_stages(model)
    assert list(stages) == [1, 2, 3]
    for level, stage in stages.items():  # the level rule: level l wraps feature_info[len - 5 + l]'s module
        info = model.feature_info[level_feature_index(model, level)]
        assert model.get_submodule(info["module"]) is stage and stage.stage_name == info["module"]

    model.train()
    maps = {}
    hooks = [s.motion.register_forward_hook(lambda m, i, o, lv=lv: maps.__setitem__(lv, i[0].shape))
             for lv, s in stages.items()]
    model(x).square().mean().backward()
    for hook in hooks:
        hook.remove()
    for level, stage in stages.items():
        info = model.feature_info[level_feature_index(model, level)]
        b, c, t, h, w = maps[level]  # F^l: (B, C, T / temporal_reduction, H / reduction, W / reduction)
        assert (b, c, h, w) == (2, info["num_chs"], x.shape[3] // info["reduction"], x.shape[4] // info["reduction"])
        assert t in (x.shape[2] // info["temporal_reduction"], -(-x.shape[2] // info["temporal_reduction"]))
        assert all(p.grad is not None for p in stage.motion.parameters())
        assert stage.fuse.weight.grad.abs().sum() > 0  # g starts at zero, its gradient does not
    assert all(p.grad is None for n, p in model.named_parameters() if n.startswith("hcml."))  # side branch


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("key", list(FAMILIES))
def test_stage_gives_finite_losses_and_trains_its_parameters(key, stage):
    model = _hcml(key)
    x = _clip(model)
    objective = create_objective("hcml", model, stage=stage).train()
    trained = {n for n, _ in objective.named_trainable_parameters()}
    names = dict(model.named_parameters())
    before = {k: v.clone() for k, v in model.state_dict().items()}

    out = objective(x, torch.tensor([1, 3]))
    assert all(torch.isfinite(v) for v in out.values()), out
    assert set(out) >= {"loss", *({"loss_reconstruct_l1"} if stage in ("level1", "joint") else set())}
    out["loss"].backward()
    # Exactly the trained parameters get a gradient: the objective's tracing found what P^l depends on.
    assert {n for n, p in names.items() if p.grad is not None} == trained
    if stage == "joint":
        assert trained == set(names)
    else:
        level = int(stage[-1])
        motion, fuse = _adapter_names(model, level)
        assert {n for n in names if n.startswith(motion)} <= trained
        assert any(n.startswith(f"hcml.flow.{level}.") or n.startswith(f"hcml.predict.{level}.") for n in trained)
        assert not any(n.startswith(fuse) for n in trained)  # g^l trains in the joint stage
        for lower in range(1, level):  # everything up to the level below is frozen
            assert not any(n.startswith(_adapter_names(model, lower)) for n in trained)
        assert not any(n.startswith(("hcml.flow.", "hcml.predict.")) and int(n.split(".")[2]) != level
                       for n in trained)
        assert any(not n.startswith("hcml.") and ".motion." not in n for n in trained)  # backbone layers too
        if key == "slowfast_fast":  # the slow pathway never feeds the fast one (the lateral links go fast -> slow)
            assert not any(".multipathway_blocks.0." in n or "multipathway_fusion" in n for n in trained)
        if key == "slowfast_slow":  # the fast pathway feeds the slow one's levels through the lateral links
            assert any(".multipathway_blocks.1." in n for n in trained)

    torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9).step()
    after = model.state_dict()
    for name in names:
        if name not in trained:
            torch.testing.assert_close(after[name], before[name], rtol=0, atol=0, msg=name)
    for name, module in model.named_modules():  # untrained BatchNorms keep their statistics
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and f"{name}.weight" not in trained:
            torch.testing.assert_close(after[f"{name}.running_mean"], before[f"{name}.running_mean"], rtol=0, atol=0)
    motion, _ = _adapter_names(model, 1 if stage == "joint" else int(stage[-1]))
    assert any(not torch.equal(after[n], before[n]) for n in trained if n.startswith(motion))


@pytest.mark.parametrize("key", list(FAMILIES))
def test_deploy_and_export_keep_outputs(key, tmp_path):
    model = _randomise(_hcml(key)).eval()
    x = _clip(model, batch=1)
    with torch.no_grad():
        before = model(x)
        frames = model.min_train_frames
        assert model.deploy() is model
        after = model(x)
    torch.testing.assert_close(after, before, rtol=0, atol=0)
    assert not any(k.startswith("hcml.") for k in model.state_dict())
    assert model.min_train_frames == model.min_frames <= frames

    folder = zoo.save_for_hub(model, tmp_path / "export", label_names=list("abcde"), recipe={}).folder
    loaded = zoo.create_model(f"local-dir:{folder}").eval()
    assert isinstance(loaded, type(model)) and loaded.hcml_cfg.side_branch is False
    assert loaded.state_dict().keys() == model.state_dict().keys()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), before)


@pytest.mark.parametrize("tag", ["x3d_xs.pv_k400", "slowfast_r50.pv_k400", "c2d_r50.pv_k400", "s3d.tv_k400",
                                 "swin3d_t.tv_k400"])
def test_a_pretrained_tag_with_adapters_gives_the_tags_outputs(tag, tmp_path, monkeypatch):
    """``create_model('hcml', backbone=TAG, pretrained=True)``: the tag's file (here a random model's weights,
    saved where torch.hub would cache the download) loads before the zero-initialised adapters are attached."""
    from zoo._hub import url_cache_path

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(0)
    state = zoo.create_model(tag.split(".")[0]).state_dict()
    path = url_cache_path(zoo.get_pretrained_cfg(tag).url)
    path.parent.mkdir(parents=True)
    torch.save({"model_state": state} if ".pv_" in tag else state, path)  # pytorchvideo's files hold model_state
    plain = zoo.create_model(tag, pretrained=True).eval()
    model = zoo.create_model("hcml", backbone=tag, pretrained=True).eval()
    assert model.pretrained_cfg.url == plain.pretrained_cfg.url
    x = _clip(model, batch=1)
    first = next(k for k in state if k.endswith("weight"))
    torch.testing.assert_close(plain.state_dict()[first], state[first], rtol=0, atol=0)  # the file's weights
    with torch.no_grad():
        torch.testing.assert_close(model(x), plain(x), rtol=0, atol=0)


def test_short_clips_name_what_each_level_needs():
    """CSN's level 3 has T/4 time steps: its forward pass takes 8 frames (2 steps), the objective 12 (the
    contrastive deltas (1, 2) need 3 steps); both refuse shorter clips saying why, before any layer runs."""
    model = _hcml("csn")
    assert (model.min_frames, model.min_train_frames) == (8, 12)
    with pytest.raises(ValueError, match=r"T >= 12: .*at least 2 .*deltas \(1, 2\).*level 3: 12 frames"):
        create_objective("hcml", model, stage="level3")(torch.randn(2, 3, 8, 64, 64))
    with pytest.raises(ValueError, match=r"T >= 8: .*level 3 has temporal reduction 4"):
        model(torch.randn(1, 3, 4, 64, 64))


def test_mvit_token_maps():
    """MViT-V2-S (built for 8 x 64 x 64 clips, the smallest HCML trains on: its position tables fix one size): the
    adapters read the stage maps (class token passed through), start as an identity, each progressive stage trains
    its own stage's blocks, one joint step is finite. The per-stage forward passes are left to the other families
    (the losses are the same code)."""
    torch.manual_seed(0)
    plain = zoo.create_model("mvit_v2_s", num_classes=NUM_CLASSES, temporal_size=8, spatial_size=(64, 64)).eval()
    model = attach_hcml(copy.deepcopy(plain))
    x = torch.randn(1, 3, 8, 64, 64)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), plain(x), rtol=0, atol=0)
    assert [s.stage_name for s in hcml_stages(model).values()] == ["stage_maps.0", "stage_maps.1", "stage_maps.2"]

    blocks = {level: {int(n.split(".")[1]) for n, _ in create_objective("hcml", model, stage=f"level{level}")
                      .named_trainable_parameters() if n.startswith("blocks.")} for level in (1, 2, 3)}
    # Stages of 1, 2, 11, 2 blocks: level l trains stage l - 1's blocks (the patch embedding with level 1).
    assert blocks == {1: {0}, 2: {1, 2}, 3: set(range(3, 14))}

    objective = create_objective("hcml", model, stage="joint").train()
    out = objective(x, torch.tensor([2]))
    assert {"loss_reconstruct_l1", "loss_contrastive_l2", "loss_contrastive_l3"} <= set(out)
    assert all(torch.isfinite(v) for v in out.values())
    out["loss"].backward()
    stage = hcml_stages(model)[2]
    assert all(p.grad is not None for p in stage.motion.parameters()) and stage.fuse.weight.grad.abs().sum() > 0
    model.deploy()
    assert not any(k.startswith("hcml.") for k in model.state_dict()) and model.min_train_frames == 8
