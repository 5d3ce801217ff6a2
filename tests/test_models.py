"""The model contract, in timm's manner, over every registered model at a tiny input.

Each registered architecture gets one test that builds it once and checks forward/backward,
pooled features, intermediates against ``feature_info`` (channels, spatial and temporal
reduction, the named module's output) and input errors; another builds it ``features_only``.
Sizes are the smallest the model allows (``min_frames``, ``min_size``; MViT built for its smallest clip,
``conftest.small_clip_kwargs``) so the file stays fast.
"""

import importlib

import pytest
import torch
from conftest import small_clip_kwargs
from torch import nn

import zoo

MODELS = zoo.list_models()
BATCH = 2
NUM_CLASSES = 42


def _clip_shape(model: nn.Module) -> tuple[int, int, int, int, int]:
    """Smallest clip with every level at its nominal reduction (and at least 2 frames)."""
    frames = max(2, model.min_frames)
    size = max(model.feature_info[-1]["reduction"], getattr(model, "min_size", 1))
    return (BATCH, model.in_chans, frames, size, size)


pytestmark = pytest.mark.usefixtures("one_thread")  # one intra-op thread for this module (conftest.py)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_every_family_is_registered():
    assert {"video_resnet", "s3d"} <= set(zoo.list_modules())
    expected = {"r2d_18", "r2d_50", "r3d_18", "r3d_50", "mc3_18", "i3d_50", "s3d"}
    expected |= {f"r2plus1d_{d}" for d in (18, 34, 50, 101)}
    assert expected <= set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_model_contract(name):
    model = zoo.create_model(name, num_classes=NUM_CLASSES, **small_clip_kwargs(name))
    shape = _clip_shape(model)
    x = torch.randn(shape)
    info = model.feature_info

    # bad input: a clear ValueError naming the expected shape
    with pytest.raises(ValueError, match=r"expected .*\(B, 3, T, H, W\)"):
        model(x[0])
    with pytest.raises(ValueError, match="channels"):
        model(torch.randn(BATCH, 4, *shape[2:]))
    with pytest.raises(ValueError, match="dtype"):
        model(x.to(torch.uint8))
    if model.min_frames > 1:
        with pytest.raises(ValueError, match=f"T >= {model.min_frames}"):
            model.forward_features(x[:, :, : model.min_frames - 1])
        with pytest.raises(ValueError, match=f"T >= {model.min_frames}"):
            model.forward_intermediates(x[:, :, : model.min_frames - 1])

    # train-mode forward and backward reach every parameter
    model.train()
    out = model(x)
    assert out.shape == (BATCH, NUM_CLASSES) and torch.isfinite(out).all()
    out.square().mean().backward()
    # an HCML model's side branch (model.hcml: flow heads, predictors) feeds only the method losses
    side_branch = "hcml." if hasattr(model, "hcml_cfg") else None
    for pname, p in model.named_parameters():
        if side_branch and pname.startswith(side_branch):
            continue
        assert p.grad is not None, f"{pname} gets no gradient"
        assert torch.isfinite(p.grad).all(), f"{pname} has a non-finite gradient"

    model.eval()
    with torch.no_grad():
        # intermediates: one map per level, each the output of the module feature_info names
        hooked = {}
        handles = [
            model.get_submodule(level["module"]).register_forward_hook(lambda _m, _i, o, i=i: hooked.__setitem__(i, o))
            for i, level in enumerate(info)
        ]
        maps = model.forward_intermediates(x)
        for h in handles:
            h.remove()
        assert len(maps) == len(info)
        for i, (m, level) in enumerate(zip(maps, info)):
            assert m.ndim == 5 and m.shape[:2] == (BATCH, level["num_chs"]), (i, m.shape)
            assert shape[-1] // m.shape[-1] == level["reduction"], (i, m.shape)
            assert shape[-2] // m.shape[-2] == level["reduction"], (i, m.shape)
            assert shape[2] // m.shape[2] == level["temporal_reduction"], (i, m.shape)
            torch.testing.assert_close(hooked[i], m)
        torch.testing.assert_close(model.forward_intermediates(x, indices=(1,))[0], maps[1])  # stops early

        feats = model.forward_features(x)
        assert feats.ndim == 5 and feats.shape[:2] == (BATCH, model.num_features)
        assert model.forward_head(feats, pre_logits=True).shape == (BATCH, model.head_hidden_size)
        assert model.forward_head(feats).shape == (BATCH, NUM_CLASSES)

        model.reset_classifier(0)
        assert model.forward_head(feats).shape == (BATCH, model.head_hidden_size) and model.num_classes == 0
        assert isinstance(model.get_classifier(), nn.Identity)
        model.reset_classifier(5, global_pool="max")
        assert model.forward_head(feats).shape == (BATCH, 5)
        assert model.get_classifier().out_features == 5


@pytest.mark.parametrize("name", MODELS)
def test_features_only(name):
    feats = zoo.create_model(name, features_only=True, out_indices=(2, 0), **small_clip_kwargs(name))
    base_info = feats.model.feature_info
    assert feats.feature_info == [base_info[2], base_info[0]]
    shape = _clip_shape(feats.model)
    x = torch.randn(shape)
    with torch.no_grad():
        maps = feats.eval()(x)
    assert len(maps) == 2
    for m, level in zip(maps, feats.feature_info):
        assert m.shape[1] == level["num_chs"]
        assert shape[-1] // m.shape[-1] == level["reduction"]
        assert shape[2] // m.shape[2] == level["temporal_reduction"]


@pytest.mark.parametrize("name", ["r2d_18", "r2plus1d_18", "s3d"])
def test_stage_can_be_wrapped(name):
    """The HCML adapter replaces the module of a feature level by a wrapper; the model must run it."""

    class Doubler(nn.Module):
        def __init__(self, inner: nn.Module):
            super().__init__()
            self.inner = inner
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            return 2 * self.inner(x)

    model = zoo.create_model(name, num_classes=3).eval()
    x = torch.randn(_clip_shape(model))
    module_name = model.feature_info[1]["module"]
    with torch.no_grad():
        before = model.forward_intermediates(x, indices=(1,))[0]
        wrapper = Doubler(model.get_submodule(module_name))
        model.set_submodule(module_name, wrapper)
        after = model.forward_intermediates(x, indices=(1,))[0]
        model(x)
    torch.testing.assert_close(after, 2 * before)
    assert wrapper.calls == 2


@pytest.mark.parametrize("name, family", [("r2d_18", "video_resnet"), ("s3d", "s3d")])
def test_grad_checkpointing_recomputes_each_stage_with_same_grads(name, family, monkeypatch):
    module = importlib.import_module(f"zoo.models.{family}")
    model = zoo.create_model(name, num_classes=3, drop_rate=0.0)
    x = torch.randn(_clip_shape(model))

    def grads():
        model.zero_grad()
        model(x).square().sum().backward()
        return {n: p.grad.clone() for n, p in model.named_parameters()}

    plain = grads()
    calls = []
    real_checkpoint = module.checkpoint

    def counting_checkpoint(fn, *args, **kwargs):
        calls.append(fn)
        return real_checkpoint(fn, *args, **kwargs)

    monkeypatch.setattr(module, "checkpoint", counting_checkpoint)
    model.set_grad_checkpointing(True)
    checkpointed = grads()
    assert len(calls) == len(model.feature_info) - (1 if name == "r2d_18" else 0)  # every stage (r2d: not the stem)
    for n in plain:
        torch.testing.assert_close(checkpointed[n], plain[n], msg=n)
    model.eval()
    calls.clear()
    with torch.no_grad():
        model(x)
    assert not calls  # only in training


def test_hcml_table7_geometry():
    """R2D-50 and R(2+1)D-101 of HCML's Table 7: T x 56, T/2 x 28, T/4 x 14, T/4 x 7 at 224 px."""
    for name in ("r2d_50", "r2plus1d_101"):
        model = zoo.create_model(name)
        info = model.feature_info
        assert [224 // r for r in info.reduction()[1:]] == [56, 28, 14, 7]
        assert info.temporal_reduction()[1:] == [1, 2, 4, 4]
        assert info.channels()[1:] == [256, 512, 1024, 2048]
        assert model.stem[0].kernel_size == (1, 7, 7) and model.stem[0].stride == (1, 2, 2)
    r101 = zoo.create_model("r2plus1d_101")
    assert [len(getattr(r101, s)) for s in r101.stage_names] == [3, 4, 23, 3]
    for stage_name, width in zip(r101.stage_names, (64, 128, 256, 512)):
        convs = [m for m in getattr(r101, stage_name).modules() if isinstance(m, nn.Conv3d)]
        temporal = [c for c in convs if c.kernel_size[0] == 3]
        if stage_name in ("layer1", "layer2"):
            assert not temporal  # top-heavy: no temporal conv below res4
        else:
            # one 3x1x1 conv per block, before the 1x3x3 one, at the constant bottleneck width
            assert len(temporal) == len(getattr(r101, stage_name))
            for block in getattr(r101, stage_name):
                t_conv, s_conv = block.conv2[0][0], block.conv2[0][3]
                assert t_conv.kernel_size == (3, 1, 1) and s_conv.kernel_size == (1, 3, 3)
                assert t_conv.out_channels == s_conv.in_channels == width
    r2d = zoo.create_model("r2d_50")
    assert all(m.kernel_size[0] == 1 for m in r2d.modules() if isinstance(m, nn.Conv3d))


def test_parameter_counts_match_torchvision():
    from torchvision.models import video as tv

    weights = {
        "r3d_18": tv.R3D_18_Weights,
        "mc3_18": tv.MC3_18_Weights,
        "r2plus1d_18": tv.R2Plus1D_18_Weights,
        "s3d": tv.S3D_Weights,
    }
    for name, enum in weights.items():
        model = zoo.create_model(name)
        assert sum(p.numel() for p in model.parameters()) == enum.DEFAULT.meta["num_params"], name


def test_default_cfgs():
    for name in ("r3d_18", "mc3_18", "r2plus1d_18"):
        cfg = zoo.create_model(name).pretrained_cfg
        assert cfg.input_size == (3, 16, 112, 112) and cfg.mean == zoo._pretrained.KINETICS_MEAN
    assert zoo.get_pretrained_cfg("s3d").input_size == (3, 16, 224, 224)
    assert zoo.get_pretrained_cfg("r2plus1d_101").input_size == (3, 32, 224, 224)
    for name in ("r2d_50", "r3d_50", "i3d_50"):
        cfg = zoo.get_pretrained_cfg(name)
        assert cfg.input_size == (3, 16, 224, 224) and cfg.frame_stride == 2 and cfg.num_classes == 400
    assert "r2d_50.timm_in1k" in zoo.list_models(pretrained=True)
    assert "r2d_50.timm_in1k" not in zoo.list_pretrained()  # an initialisation, not a carded checkpoint
    assert zoo.get_pretrained_cfg("r2d_50.timm_in1k").hf_hub_id == "timm/resnet50.a1_in1k"


def test_bad_model_arguments():
    with pytest.raises(ValueError, match="weight_inflation"):
        zoo.create_model("r3d_50", weight_inflation="edge")
    with pytest.raises(ValueError, match="global_pool"):
        zoo.create_model("r2d_18", global_pool="median")
    with pytest.raises(ValueError, match="out of range"):
        zoo.create_model("r2d_18").forward_intermediates(torch.randn(1, 3, 2, 32, 32), indices=(7,))
