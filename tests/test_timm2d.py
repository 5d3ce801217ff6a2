"""timm2d: a timm 2D CNN run per frame equals timm on each frame; stages, strides, weights, errors."""
import copy

import pytest
import timm
import torch
from torch import nn

from zoo import create_model
from zoo.models.timm2d import Timm2d

BACKBONES = ["resnet18", "convnext_atto", "efficientnet_b0", "regnetx_002"]
# Heads with layers after the pooling: convnext's norm + MLP pre-logits, mobilenetv3's conv_head.
POST_POOL_HEADS = [
    pytest.param("convnext_atto", {"head_hidden_size": 64}, id="convnext_atto_mlp"),
    pytest.param("mobilenetv3_small_050", {}, id="mobilenetv3_small_050"),
]
LINEAR_HEADS = ["resnet18", "efficientnet_b0", "regnetx_002"]  # avg pool + fc: logits commute with the time average
NUM_CLASSES = 7


def _randomize_norms(model: nn.Module) -> nn.Module:
    """Give every 1-D parameter and buffer (norm affine, running stats, biases, layer scales) random values,
    so that a mis-mapped or re-initialised weight changes the outputs (timm zero-inits some of them)."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point() and t.ndim == 1:
                lo, hi = (0.5, 1.5) if name.endswith(("weight", "running_var")) else (-0.1, 0.1)
                t.copy_(torch.empty(t.shape).uniform_(lo, hi, generator=gen))
    return model


def _timm_model(name: str, num_classes: int = NUM_CLASSES, **kwargs) -> nn.Module:
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, num_classes=num_classes, **kwargs)
    return _randomize_norms(model).eval()


def _save(model: nn.Module, path) -> str:
    if str(path).endswith(".safetensors"):
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    else:
        torch.save(model.state_dict(), path)
    return str(path)


def _fold(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, T, H, W)`` -> the ``(B*T, C, H, W)`` batch of its frames."""
    b, c, t, h, w = x.shape
    return x.transpose(1, 2).reshape(b * t, c, h, w)


def _unfold(y: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Per-frame outputs ``(B*T, ...)`` -> ``(B, C', T, H', W')`` for maps, ``(B, T, N)`` for vectors."""
    y = y.reshape(batch_size, -1, *y.shape[1:])
    return y.transpose(1, 2) if y.ndim == 5 else y


def _per_frame(fn, x: torch.Tensor) -> torch.Tensor:
    """A 2D ``fn`` applied to every frame of ``(B, C, T, H, W)``."""
    return _unfold(fn(_fold(x)), x.shape[0])


@pytest.fixture(scope="module")
def clip() -> torch.Tensor:
    return torch.randn(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name, backbone_kwargs", [pytest.param(n, {}, id=n) for n in BACKBONES] + POST_POOL_HEADS)
def test_timm_weights_give_timm_outputs_per_frame(name, backbone_kwargs, clip, tmp_path):
    ref = _timm_model(name, **backbone_kwargs)
    ext = ".safetensors" if name in ("resnet18", "convnext_atto") else ".pth"
    path = _save(ref, tmp_path / f"{name}{ext}")
    model = create_model(
        "timm2d",
        backbone=name,
        backbone_kwargs=backbone_kwargs,
        num_classes=NUM_CLASSES,
        pretrained_cfg_overlay=dict(file=path),
    ).eval()

    with torch.no_grad():
        feats = model.forward_features(clip)
        ref_feats = _per_frame(ref.forward_features, clip)
        assert feats.shape == ref_feats.shape == (2, model.num_features, 4, 1, 1)
        torch.testing.assert_close(feats, ref_feats, rtol=1e-4, atol=1e-5)

        # The head pools over (T, H, W): timm's head on the time-averaged map.
        logits = model(clip)
        assert logits.shape == (2, NUM_CLASSES)
        torch.testing.assert_close(logits, ref.forward_head(ref_feats.mean(2)), rtol=1e-4, atol=1e-5)
        if name in LINEAR_HEADS:
            torch.testing.assert_close(logits, _per_frame(ref, clip).mean(1), rtol=1e-4, atol=1e-5)
        # One frame: exactly timm's logits.
        torch.testing.assert_close(model(clip[:, :, :1]), ref(clip[:, :, 0]), rtol=1e-4, atol=1e-5)

        # Every level's map is timm's intermediate of each frame.
        maps = model.forward_intermediates(clip)
        ref_maps = [_unfold(r, 2) for r in ref.forward_intermediates(_fold(clip), intermediates_only=True)]
        assert len(maps) == len(ref.feature_info)
        for m, r in zip(maps, ref_maps):
            torch.testing.assert_close(m, r, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", BACKBONES)
def test_feature_info_and_features_only_match_timm(name, clip):
    ref_info = timm.create_model(name, pretrained=False, num_classes=0).feature_info
    model = create_model("timm2d", backbone=name)
    assert model.feature_info.channels() == [f["num_chs"] for f in ref_info]
    assert model.feature_info.reduction() == [f["reduction"] for f in ref_info]
    assert model.feature_info.temporal_reduction() == [1] * len(ref_info)
    for i, module in enumerate(model.feature_info.module_name()):
        assert model.get_submodule(module) is model.stages[i]

    n = len(ref_info)
    out_indices = (1, n - 2)
    features = create_model("timm2d", backbone=name, features_only=True, out_indices=out_indices).eval()
    with torch.no_grad():
        maps = features(clip)
    assert len(maps) == len(out_indices)
    for m, i in zip(maps, out_indices):
        assert m.shape == (2, ref_info[i]["num_chs"], 4, 32 // ref_info[i]["reduction"], 32 // ref_info[i]["reduction"])
    assert features.feature_info.channels() == [ref_info[i]["num_chs"] for i in out_indices]


def test_temporal_strides_average_frames_between_stages():
    torch.manual_seed(0)
    strided = create_model("timm2d", backbone="resnet18", temporal_strides=(2, 1, 1, 1, 1), num_classes=5).eval()
    plain = create_model("timm2d", backbone="resnet18", num_classes=5).eval()
    plain.load_state_dict(strided.state_dict())
    assert strided.feature_info.temporal_reduction() == [1, 2, 2, 2, 2]
    assert strided.min_frames == 2

    # Frames a, a, b, b averaged in pairs after level 0 are a, b: every later level is the plain net on (a, b).
    ab = torch.randn(1, 3, 2, 32, 32)
    aabb = ab.repeat_interleave(2, dim=2)
    with torch.no_grad():
        s_maps, p_maps = strided.forward_intermediates(aabb), plain.forward_intermediates(ab)
        assert s_maps[0].shape[2] == 4
        for s, p in zip(s_maps[1:], p_maps[1:]):
            assert s.shape[2] == 2
            torch.testing.assert_close(s, p, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(strided(aabb), plain(ab), rtol=1e-4, atol=1e-5)


def test_temporal_strides_shapes_and_min_frames():
    model = create_model("timm2d", backbone="convnext_atto", temporal_strides=(1, 2, 2, 2), num_classes=3).eval()
    assert model.feature_info.temporal_reduction() == [1, 1, 2, 4]
    assert model.min_frames == 8
    with torch.no_grad():
        maps = model.forward_intermediates(torch.randn(1, 3, 8, 32, 32))
        assert [m.shape[2] for m in maps] == [8, 8, 4, 2]
        assert model.forward_features(torch.randn(1, 3, 8, 32, 32)).shape[2] == 1
        # A length that is not a multiple: the last window is shorter, no frame is dropped (T -> ceil(T / s)).
        assert [m.shape[2] for m in model.forward_intermediates(torch.randn(1, 3, 9, 32, 32))] == [9, 9, 5, 3]
    with pytest.raises(ValueError, match=r"\(B, 3, T, H, W\) with T >= 8"):
        model(torch.randn(1, 3, 7, 32, 32))
    with pytest.raises(ValueError, match="one int >= 1 per feature level of 'convnext_atto' \\(4 levels"):
        create_model("timm2d", backbone="convnext_atto", temporal_strides=(2, 2))
    with pytest.raises(ValueError, match="one int >= 1 per feature level"):
        create_model("timm2d", backbone="resnet18", temporal_strides=(1, 0, 1, 1, 1))


def test_stage_can_be_wrapped_by_an_adapter():
    """An adapter replaces ``feature_info[i]['module']`` and sees that level's (B, C, T, H, W) map."""

    class AddOne(nn.Module):
        def __init__(self, stage: nn.Module):
            super().__init__()
            self.stage = stage
            self.seen: tuple[int, ...] = ()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.stage(x)
            self.seen = tuple(y.shape)
            return y + 1.0

    model = create_model("timm2d", backbone="efficientnet_b0", temporal_strides=(1, 1, 2, 1, 1), num_classes=4).eval()
    clip = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        before = model.forward_intermediates(clip, indices=(2, 3))
        wrapper = AddOne(model.get_submodule(model.feature_info.module_name(2)))
        model.set_submodule(model.feature_info.module_name(2), wrapper)
        after = model.forward_intermediates(clip, indices=(2, 3))
    assert wrapper.seen == (1, 40, 4, 4, 4)
    torch.testing.assert_close(after[0], before[0] + 1.0)
    assert after[1].shape == before[1].shape == (1, 112, 2, 2, 2)
    assert not torch.allclose(after[1], before[1])


def test_grad_checkpointing_gives_same_outputs_and_grads():
    torch.manual_seed(0)
    model = create_model("timm2d", backbone="resnet18", temporal_strides=(1, 2, 1, 1, 1), num_classes=3)
    ckpt = copy.deepcopy(model)
    ckpt.set_grad_checkpointing(True)
    x = torch.randn(2, 3, 2, 32, 32)
    outs, grads = [], []
    for m in (model, ckpt):
        xi = x.clone().requires_grad_(True)
        out = m(xi)
        out.square().sum().backward()
        outs.append(out.detach())
        grads.append((xi.grad, m.stages[0].conv1.weight.grad, m.stages[3].layer3[0].conv1.weight.grad))
    torch.testing.assert_close(outs[0], outs[1])
    for g0, g1 in zip(*grads):
        torch.testing.assert_close(g0, g1, rtol=1e-4, atol=1e-6)


def test_head_reinitialised_when_classes_differ_and_first_conv_adapted(tmp_path):
    ref = _timm_model("resnet18", num_classes=1000)
    path = _save(ref, tmp_path / "resnet18.pth")
    model = create_model("timm2d", backbone="resnet18", num_classes=10, pretrained_cfg_overlay=dict(file=path)).eval()
    assert model.get_classifier().weight.shape == (10, 512)
    clip = torch.randn(1, 3, 2, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.forward_features(clip), _per_frame(ref.forward_features, clip))

    gray = create_model("timm2d", backbone="resnet18", in_chans=1, pretrained_cfg_overlay=dict(file=path))
    assert gray.pretrained_cfg.first_conv == "stages.0.conv1"
    torch.testing.assert_close(gray.stages[0].conv1.weight, ref.conv1.weight.sum(1, keepdim=True))
    assert gray(torch.randn(1, 1, 2, 32, 32)).shape == (1, 400)


def test_pretrained_cfg_and_classifier_contract():
    model = create_model("timm2d")  # defaults: resnet18, the generic model test builds it like this
    cfg = model.pretrained_cfg
    assert model.backbone == "resnet18" and model.num_classes == cfg.num_classes == 400
    assert isinstance(model.get_submodule(cfg.first_conv), nn.Conv2d)
    assert model.get_submodule(cfg.classifier) is model.get_classifier()
    assert cfg.input_size == (3, 8, 224, 224)

    convnext = create_model("timm2d", backbone="convnext_atto", num_classes=5)
    assert convnext.pretrained_cfg.first_conv == "stages.0.stem.0"
    x = torch.randn(2, 3, 2, 32, 32)
    assert convnext.forward_head(convnext.forward_features(x), pre_logits=True).shape == (2, convnext.num_features)
    convnext.reset_classifier(0)
    assert convnext(x).shape == (2, 320)
    convnext.reset_classifier(11, global_pool="max")
    assert convnext(x).shape == (2, 11)
    convnext.reset_classifier(0, global_pool="")
    assert convnext(x).shape == (2, 320, 2, 1, 1)


def test_bad_input_and_unknown_backbone_raise():
    model = create_model("timm2d", backbone="regnetx_002", num_classes=2)
    with pytest.raises(ValueError, match=r"\(B, 3, T, H, W\).*4-D"):
        model(torch.randn(3, 2, 32, 32))
    with pytest.raises(ValueError, match=r"\(B, 3, T, H, W\).*1 channels"):
        model(torch.randn(1, 1, 2, 32, 32))
    with pytest.raises(ValueError, match="dtype"):
        model(torch.zeros(1, 3, 2, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="unknown timm backbone 'resnet19'.*resnet18"):
        Timm2d(backbone="resnet19")
