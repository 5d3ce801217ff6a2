"""HCML adapters and objectives: attach, stages (what trains, what is frozen), losses, deploy, bad input."""
import math

import pytest
import torch

import zoo
from zoo.adapters import HCMLStage, attach_adapter, attach_hcml, capture_motion, hcml_stages, level_feature_index
from zoo.methods import create_objective, list_objectives

STAGES = ("level1", "level2", "level3", "joint")

# name -> (create_model kwargs, clip shape): tiny inputs on which every level has T > max(deltas) = 2
# time steps and maps larger than its displacement window.
BACKBONES = {
    "r2d_18": ({}, (2, 3, 8, 64, 64)),
    "r2plus1d_18": ({}, (2, 3, 12, 48, 48)),
    "timm2d_convnext": (dict(backbone="convnext_atto"), (2, 3, 4, 64, 64)),
}


pytestmark = pytest.mark.usefixtures("one_thread")  # one intra-op thread for this module (conftest.py)


def _model(key: str, **adapter_cfg):
    kwargs, shape = BACKBONES[key]
    name = "timm2d" if key.startswith("timm2d") else key
    torch.manual_seed(0)
    model = zoo.create_model("hcml", backbone=name, num_classes=5, hcml_cfg=adapter_cfg, backbone_args=kwargs)
    return model, torch.randn(shape)


def test_registered():
    assert "hcml" in list_objectives()
    for name in ("hcml_r2d_18", "hcml_r2d_50", "hcml_r3d_18", "hcml_r2plus1d_18", "hcml_r2plus1d_101"):
        assert zoo.is_model(name)


@pytest.mark.parametrize("key", list(BACKBONES))
def test_attach_starts_as_identity(key):
    kwargs, shape = BACKBONES[key]
    name = "timm2d" if key.startswith("timm2d") else key
    torch.manual_seed(0)
    model = zoo.create_model(name, num_classes=5, **kwargs).eval()
    x = torch.randn(shape)
    with torch.no_grad():
        before = model(x)
        attach_hcml(model, levels=(1, 2, 3))
        after = model(x)
    stages = hcml_stages(model)
    assert list(stages) == [1, 2, 3]
    for level, stage in stages.items():
        info = model.feature_info[level_feature_index(model, level)]
        assert model.get_submodule(info["module"]) is stage
        assert info["reduction"] in (2 ** level, 2 ** (level + 1))  # torchvision's video ResNets have no max-pool
    torch.testing.assert_close(after, before, rtol=0, atol=0)


def test_level_mapping():
    r2d = zoo.create_model("r2d_18")  # stem + layer1..4
    convnext = zoo.create_model("timm2d", backbone="convnext_atto")  # four stages
    def modules(model):
        return [model.feature_info[level_feature_index(model, level)]["module"] for level in (1, 2, 3)]

    assert modules(r2d) == ["layer1", "layer2", "layer3"]
    assert modules(convnext) == ["stages.0", "stages.1", "stages.2"]


def test_create_model_paths_agree():
    torch.manual_seed(0)
    a = zoo.create_model("hcml_r2d_18", num_classes=3, hcml_cfg=dict(levels=(1, 2)))
    torch.manual_seed(0)
    b = attach_adapter(zoo.create_model("r2d_18", num_classes=3), "hcml", levels=(1, 2))
    assert a.state_dict().keys() == b.state_dict().keys()
    assert list(hcml_stages(a)) == [1, 2]
    assert a.pretrained_cfg.architecture == "hcml_r2d_18"
    with pytest.raises(ValueError, match="already has HCML"):
        attach_hcml(a)
    with pytest.raises(ValueError, match="unknown adapter"):
        attach_adapter(b, "hcmlx")


@pytest.mark.parametrize("key", list(BACKBONES))
@pytest.mark.parametrize("stage", STAGES)
def test_stage_trains_exactly_its_parameters(key, stage):
    model, x = _model(key)
    labels = torch.tensor([1, 3])
    objective = create_objective("hcml", model, stage=stage).train()
    trained = {n for n, _ in objective.named_trainable_parameters()}
    assert trained == {n for n, p in model.named_parameters() if p.requires_grad}
    before = {k: v.clone() for k, v in model.state_dict().items()}

    out = objective(x, labels)
    assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])
    assert all(torch.isfinite(v) for v in out.values())
    expected = {
        "level1": {"loss_photometric_l1", "loss_smoothness_l1", "loss_reconstruct_l1"},
        "level2": {"loss_contrastive_l2", "acc_contrastive_l2"},
        "level3": {"loss_contrastive_l3", "acc_contrastive_l3"},
    }
    want = set().union(*expected.values()) | {"loss_cls"} if stage == "joint" else expected[stage]
    assert set(out) == want | {"loss"}
    out["loss"].backward()
    assert {n for n, p in model.named_parameters() if p.grad is not None} == trained

    # An optimizer over *all* parameters: frozen ones (no grad) and frozen BatchNorm statistics must not move.
    torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3).step()
    after = model.state_dict()
    for name, _ in model.named_parameters():
        if name not in trained:
            torch.testing.assert_close(after[name], before[name], rtol=0, atol=0, msg=name)
    # BatchNorms of untrained parts keep their statistics (frozen ones are in eval mode, later ones do not run).
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and f"{name}.weight" not in trained:
            for buffer in ("running_mean", "running_var"):
                torch.testing.assert_close(after[f"{name}.{buffer}"], before[f"{name}.{buffer}"], rtol=0, atol=0)
    changed = [n for n in trained if not torch.equal(after[n], before[n])]
    assert len(changed) == len(trained)


def test_progressive_stage_freezes_lower_levels():
    model, _ = _model("r2d_18")
    objective = create_objective("hcml", model, stage="level3")
    names = {n for n, _ in objective.named_trainable_parameters()}
    assert names and all(n.startswith(("layer3.stage.", "layer3.motion.", "hcml.predict.3.")) for n in names)
    objective.train()
    assert model.training and model.layer3.training
    assert not model.stem.training and not model.layer1.training and not model.layer2.training
    assert not model.hcml["flow"].training and not model.hcml["predict"]["2"].training
    model.train()  # an engine may reset the modes: the objective puts the frozen parts back in eval mode
    objective(torch.randn(2, 3, 8, 64, 64))
    assert not model.layer2.training
    joint = create_objective("hcml", model, stage="joint")
    assert len(joint.trainable_parameters()) == len(list(model.parameters()))
    assert all(p.requires_grad for p in model.parameters())


def test_contrastive_loss_starts_at_chance_and_overfits():
    model, x = _model("r2d_18")
    objective = create_objective("hcml", model, stage="level2", generator=torch.Generator().manual_seed(0)).train()
    b, _, t, h, w = x.shape
    num_keys = b * t * min(32, (h // 8) * (w // 8))  # level 2 of r2d_18: reduction 8, no temporal stride
    first = objective(x)
    assert abs(first["loss_contrastive_l2"].item() - math.log(num_keys)) < 0.5
    assert first["acc_contrastive_l2"].item() < 0.05
    optimizer = torch.optim.Adam(objective.trainable_parameters(), lr=1e-3)
    for _ in range(15):
        out = objective(x)
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
    assert out["loss_contrastive_l2"].item() < first["loss_contrastive_l2"].item() - 1.0


def test_capture_motion_shapes_and_stop():
    model, x = _model("r2plus1d_18")
    model.eval()
    with torch.no_grad(), capture_motion(model) as motion:
        logits = model(x)
    assert logits.shape == (2, 5)
    channels = model.hcml_cfg.channels
    # r2plus1d_18 at 48 px: levels at 24, 12, 6 px, T 12, 6, 3; P has C/8 channels at level 1, C/4 above (min 16).
    assert motion[1].shape == (2, channels(1, 64)[1], 12, 24, 24) == (2, 16, 12, 24, 24)
    assert motion[2].shape == (2, 32, 6, 12, 12)
    assert motion[3].shape == (2, 64, 3, 6, 6)
    with torch.no_grad(), capture_motion(model, stop_after_level=2) as motion:
        model(x)
        pytest.fail("the forward pass should stop after level 2")
    assert sorted(motion) == [1, 2]
    assert all(stage._captured is None for stage in hcml_stages(model).values())


def test_deploy_keeps_outputs_and_drops_side_branch(tmp_path):
    model, x = _model("r2d_18")
    objective = create_objective("hcml", model, stage="joint").train()
    objective(x, torch.tensor([0, 1]))["loss"].backward()
    torch.optim.SGD(model.parameters(), lr=0.5).step()  # the fusion convs g are no longer zero
    assert any(s.fuse.weight.abs().sum() > 0 for s in hcml_stages(model).values())
    model.eval()
    with torch.no_grad():
        before = model(x)
        assert model.deploy() is model
        after = model(x)
    torch.testing.assert_close(after, before, rtol=0, atol=0)
    state = model.state_dict()
    assert not any(k.startswith("hcml.") for k in state)
    assert any(".motion." in k for k in state) and any(".fuse." in k for k in state)
    assert model.hcml_cfg.side_branch is False

    # The export loads strictly into the deployed architecture and gives the same outputs.
    path = tmp_path / "hcml_r2d_18.safetensors"
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    fresh = zoo.create_model(
        "hcml", backbone="r2d_18", num_classes=5, hcml_cfg=dict(side_branch=False), checkpoint_path=path
    ).eval()
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), before, rtol=0, atol=0)
    with pytest.raises(ValueError, match="deployed"):
        create_objective("hcml", model, stage="level1")


def test_bad_input_raises_clear_errors():
    model, x = _model("r2d_18")
    objective = create_objective("hcml", model, stage="level1")
    with pytest.raises(ValueError, match="at least 2 frames"):
        model(x[:, :, :1])
    with pytest.raises(ValueError, match="at least 2"):
        objective(x[:, :, :1])
    # Level 1 of r2d_18 reduces by 4: 16 px frames give a 4x4 map, smaller than d=6's window.
    with pytest.raises(ValueError, match="smaller than the displacement window"):
        model(torch.randn(1, 3, 4, 16, 16))
    with pytest.raises(ValueError, match="pass labels"):
        create_objective("hcml", model, stage="joint")(x)
    with pytest.raises(ValueError, match="stage must be one of"):
        create_objective("hcml", model, stage="level4")
    with pytest.raises(ValueError, match="deltas"):
        create_objective("hcml", model, stage="level2")(x[:, :, :2])
    with pytest.raises(ValueError, match="no HCML adapters"):
        create_objective("hcml", zoo.create_model("r2d_18"), stage="joint")
    with pytest.raises(ValueError, match="unknown objective"):
        create_objective("hcm", model)


def test_hcml_stage_check_names_the_fix():
    model, _ = _model("r2d_18")
    stage = model.layer1
    assert isinstance(stage, HCMLStage)
    with pytest.raises(ValueError, match="clips of at least 2 frames"):
        stage.check_features(torch.zeros(1, 64, 1, 16, 16))
    with pytest.raises(ValueError, match="frames of at least 28 pixels"):
        stage.check_features(torch.zeros(1, 64, 4, 6, 16))


@pytest.mark.parametrize(
    "name, backbone, input_size, paper_ratio",
    [
        ("hcml_r2d_50", "r2d_50", (3, 16, 224, 224), 1.18),
        ("hcml_r2plus1d_101", "r2plus1d_101", (3, 32, 224, 224), 1.11),
    ],
)
def test_default_flops_within_paper_overhead(name, backbone, input_size, paper_ratio):
    """HCML Table 2: the deployed defaults cost at most the paper's overhead (meta device: nothing is computed)."""
    from zoo.utils import count_flops

    with torch.device("meta"):
        plain, hcml = zoo.create_model(backbone), zoo.create_model(name)
    hcml.deploy()
    stats = count_flops(hcml, input_size)
    macs = stats["macs"]
    assert stats["by_op"]["zoo.temporal_correlation"] > 0  # the cost volume is counted (the op's formula)
    assert macs / count_flops(plain, input_size)["macs"] <= paper_ratio


def test_grad_checkpointing_and_autocast():
    """Motion features captured inside checkpointed stages give the same gradients; bf16 autocast runs."""
    x, labels = torch.randn(2, 3, 8, 64, 64), torch.tensor([0, 1])
    grads = []
    for checkpointing in (False, True):
        model, _ = _model("r2d_18")
        model.set_grad_checkpointing(checkpointing)
        objective = create_objective("hcml", model, stage="joint", generator=torch.Generator().manual_seed(1))
        objective.train()(x, labels)["loss"].backward()
        grads.append({n: p.grad for n, p in model.named_parameters()})
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, msg=name)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = objective(x, labels)
    assert all(torch.isfinite(v) and v.dtype == torch.float32 for k, v in out.items() if k.startswith("loss"))
    out["loss"].backward()


def test_config_defaults_and_validation():
    from zoo.adapters import HCMLConfig

    cfg = HCMLConfig(max_displacement={"2": 5})  # JSON keys are strings
    assert cfg.contrastive_levels == (2, 3) and cfg.flow_levels == (1,)
    assert cfg.displacement(1) == (6, 2) and cfg.displacement(2) == (5, 1) and cfg.displacement(3) == (2, 1)
    assert cfg.channels(1, 256) == (32, 32) and cfg.channels(2, 512) == (64, 128) and cfg.channels(1, 64) == (16, 16)
    assert cfg.lower_level(3) == 2
    with pytest.raises(ValueError, match="subset of 1..4"):
        HCMLConfig(levels=(0, 1))
    with pytest.raises(ValueError, match="not in levels"):
        HCMLConfig(levels=(2, 3), flow_levels=(1,))
    with pytest.raises(ValueError, match="lowest"):
        HCMLConfig(levels=(1, 2), contrastive_levels=(1, 2))
    with pytest.raises(ValueError, match="mapping"):
        HCMLConfig(max_displacement=[6, 3, 2])


def test_zero_init_fuse_can_be_turned_off():
    torch.manual_seed(0)
    model = zoo.create_model("r2d_18", num_classes=5).eval()
    x = torch.randn(2, 3, 8, 64, 64)
    with torch.no_grad():
        before = model(x)
        attach_hcml(model, zero_init_fuse=False)
        after = model(x)
    assert all(stage.fuse.weight.abs().sum() > 0 for stage in hcml_stages(model).values())
    assert not torch.allclose(after, before)  # the motion features reach the classifier from the start


def test_cost_volume_is_batch_normalised_before_encoding():
    model, clips = _model("r2d_18")
    block = hcml_stages(model)[1].motion
    assert block.cost_norm.num_features == block.cost_channels
    model.train()
    model(clips)
    assert block.cost_norm.num_batches_tracked.item() == 1  # it sees every forward pass's cost volume


def test_reconstruction_at_the_level_resolution_warps_pooled_frames():
    """reconstruct_at='level' warps the frames area-averaged to the flow's map; 'frame' upsamples the flow."""
    from zoo.methods.hcml import reconstruction_loss

    model, clips = _model("r2d_18", contrastive_levels=())
    losses = {}
    for where in ("level", "frame"):
        objective = create_objective("hcml", model, stage="level1", reconstruct_at=where)
        model.eval()  # same BN statistics in both calls
        objective.eval()
        with capture_motion(model, stop_after_level=1) as motion:
            model(clips)
        flow = model.hcml["flow"]["1"](motion[1])
        frames = clips if where == "frame" else torch.nn.functional.adaptive_avg_pool3d(clips, flow.shape[2:])
        expected = reconstruction_loss(flow, frames)["reconstruct"]
        losses[where] = objective(clips)["loss_reconstruct_l1"]
        torch.testing.assert_close(losses[where], expected)
    assert not torch.isclose(losses["level"], losses["frame"])
    with pytest.raises(ValueError, match="reconstruct_at"):
        create_objective("hcml", model, stage="level1", reconstruct_at="pixels")
