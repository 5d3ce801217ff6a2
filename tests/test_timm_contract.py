"""timm's own model tests (pytorch-image-models ``tests/test_models.py``), transcribed to video clips.

Every registered zoo model goes through the checks timm runs over every timm model, with inputs
``(B, C, T, H, W)``; each test names the timm test it follows. Clips are the smallest valid clip of the
model (as in ``tests/test_models.py``; MViT built for its smallest clip, ``conftest.small_clip_kwargs``), not
the cfg's full input size: that one is checked on the meta device (shapes only, no compute), where timm runs it
for real (it caps sizes at 384-448 px; a 16x224x224 clip through a 3-D ResNet-101 takes minutes on one CPU
thread).

Left out of timm's file: the pretrained-weights tests that download (``test_model_inference``,
``test_model_load_pretrained*``: tests never reach the network; the zoo's loading is tested with local
files in tests/test_hub.py, test_model_equivalence.py and test_pretrained_weights.py), the TorchScript
and FX tracing tests (the zoo promises neither), and ``test_model_default_cfgs_non_std`` (for models whose
features are not a ``(B, C, ...)`` map: the zoo's contract has none).
"""
from __future__ import annotations

import copy
import math

import pytest
import torch
from conftest import small_clip_kwargs
from torch import nn

import zoo

MODELS = zoo.list_models()
BATCH = 2  # timm's: 2 where the model trains (BatchNorm needs 2 values per channel), 1 in eval mode
NUM_CLASSES = 42

# The fields of the pretrained cfg that DESIGN.md's model contract names (timm's keys, with the video ones).
CFG_KEYS = (
    "input_size", "frame_stride", "mean", "std", "crop_pct", "num_classes", "label_names", "classifier",
    "first_conv", "hf_hub_id", "hf_hub_filename", "sha256", "license", "recipe", "metrics",
)


def _clip_shape(model: nn.Module, batch: int = BATCH) -> tuple[int, int, int, int, int]:
    """Smallest clip with every level at its nominal reduction (and at least 2 frames); tests/test_models.py's."""
    frames = max(2, model.min_frames)
    size = max(model.feature_info[-1]["reduction"], getattr(model, "min_size", 1))
    return (batch, model.in_chans, frames, size, size)


def _map_size(shape: tuple[int, ...], temporal: int, spatial: int) -> tuple[int, int, int]:
    """``(T', H', W')`` of a map at these reductions of a ``(B, C, T, H, W)`` input (padded convs: ceil)."""
    t, h, w = shape[2:]
    return math.ceil(t / temporal), math.ceil(h / spatial), math.ceil(w / spatial)


def _names(value: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    """A cfg's ``classifier`` / ``first_conv``: one module path or several (timm allows a tuple)."""
    assert isinstance(value, (str, tuple, list)), f"expected a module path (or paths), got {value!r}"
    return (value,) if isinstance(value, str) else tuple(value)


def _assert_same(actual: torch.Tensor, expected: torch.Tensor, rtol: float = 1e-5) -> None:
    """Equal up to ``rtol`` of the largest value: randomly initialised deep nets in eval mode can give
    features of 1e-6 (s3d's), which assert_close's default absolute tolerance (1e-5) would not test."""
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=rtol * expected.abs().max().item())


def _side_branch_prefix(model: nn.Module) -> str | None:
    """An HCML model's side branch (``model.hcml``: flow heads, predictors) feeds only the HCML objective's
    losses (zoo.methods.hcml), never the logits; tests/test_hcml.py checks that those losses reach it."""
    return "hcml." if hasattr(model, "hcml_cfg") else None


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: on a shared, oversubscribed CPU, OpenMP barriers make 2 threads 10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="module", params=MODELS)
def name(request) -> str:
    """The model under test. Module-scoped, so pytest runs every test of one model before the next model's,
    and the model built for it (``built``) is built once and freed before the next one."""
    return request.param


@pytest.fixture(scope="module")
def built(name: str) -> nn.Module:
    """``create_model(name, num_classes=42)``, as timm's test_model_backward builds it; tests that change it
    take a copy."""
    torch.manual_seed(0)
    return zoo.create_model(name, num_classes=NUM_CLASSES, **small_clip_kwargs(name))


def test_model_default_cfgs(name):
    """timm ``test_model_default_cfgs``: the default cfg's fields, its input size, the unpooled and pooled
    widths (``num_features``, ``head_hidden_size``), classifier removal, and the cfg's module names."""
    model = zoo.create_model(name).eval()
    assert model.num_classes >= 0 and model.num_features > 0 and model.head_hidden_size > 0
    state_dict = model.state_dict()
    cfg = model.pretrained_cfg
    assert model.default_cfg == cfg  # timm's alias
    assert set(CFG_KEYS) <= set(cfg.to_dict()), sorted(set(CFG_KEYS) - set(cfg.to_dict()))
    assert cfg.architecture == name and cfg.num_classes == model.num_classes

    # the input size, normalisation and sampling: (C, T, H, W) a clip of which the model accepts
    c, t, h, w = cfg.input_size
    assert all(isinstance(v, int) and v > 0 for v in cfg.input_size) and c == model.in_chans
    assert t >= max(model.min_frames, cfg.min_frames or 1), (cfg.input_size, model.min_frames)
    assert min(h, w) >= max(getattr(model, "min_size", 1), cfg.min_size or 1), cfg.input_size
    assert len(cfg.mean) == len(cfg.std) == c and all(s > 0 for s in cfg.std)
    assert 0 < cfg.crop_pct <= 1 and cfg.frame_stride >= 1
    assert cfg.label_names is None or len(cfg.label_names) == cfg.num_classes

    # the classifier(s) the cfg names: the model's classifier, num_classes x head_hidden_size
    if cfg.num_classes:
        for path in _names(cfg.classifier):
            assert path + ".weight" in state_dict, f"{path} not in model params"
            classifier = model.get_submodule(path)
            assert isinstance(classifier, nn.Linear), type(classifier)
            assert classifier.out_features == model.num_classes and classifier.in_features == model.head_hidden_size
        assert model.get_classifier() is model.get_submodule(_names(cfg.classifier)[0])

    # the first conv(s) the cfg names: convs over in_chans channels, the model's first conv among them
    first_convs = [model.get_submodule(path) for path in _names(cfg.first_conv)]
    for path, conv in zip(_names(cfg.first_conv), first_convs):
        assert path + ".weight" in state_dict, f"{path} not in model params"
        assert isinstance(conv, (nn.Conv2d, nn.Conv3d)) and conv.in_channels == model.in_chans, conv
    first = next(m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d)))
    assert any(first is conv for conv in first_convs), "the cfg's first_conv is not the model's first conv"

    # forward_features (always unpooled) and forward_head(pre_logits=True), at the smallest clip. The map's
    # spatial reduction is the last level's; its temporal one need not be (slowfast's map is at the slow rate,
    # its feature_info the fast pathway's; timm2d's tail may stride), so it is measured here.
    x = torch.randn(_clip_shape(model, batch=1))
    with torch.no_grad():
        feats = model.forward_features(x)
        pre = model.forward_head(feats, pre_logits=True)
        assert feats.ndim == 5 and feats.shape[:2] == (1, model.num_features), feats.shape
        spatial = model.feature_info[-1]["reduction"]
        assert feats.shape[3:] == _map_size(x.shape, 1, spatial)[1:], (feats.shape, spatial)
        temporal = x.shape[2] // feats.shape[2]
        assert feats.shape[2] * temporal == x.shape[2], feats.shape
        assert pre.shape == (1, model.head_hidden_size), pre.shape
        assert model.forward_head(feats).shape == (1, model.num_classes)

        # without the classifier: pooled pre-logits out (forward_head: forward is forward_head(forward_features))
        model.reset_classifier(0)
        assert model.num_classes == 0 and isinstance(model.get_classifier(), nn.Identity)
        out = model.forward_head(feats)
        assert out.shape == (1, model.head_hidden_size)
        _assert_same(out, pre)

        # without the classifier and the pooling: the unpooled map out
        model.reset_classifier(0, "")
        _assert_same(model.forward_head(feats), feats)

        # the same from the constructor, through forward
        model = zoo.create_model(name, num_classes=0, global_pool="").eval()
        out = model(x)
        assert out.shape == feats.shape, out.shape
        assert model.num_classes == 0 and model.pretrained_cfg.num_classes == 0

    # the cfg's input size forwards: shapes on the meta device (timm's pool_size check, in T', H', W')
    model.to("meta")
    full = torch.empty(1, *cfg.input_size, device="meta")
    out = model(full)
    assert tuple(out.shape) == (1, model.num_features, *_map_size(full.shape, temporal, spatial)), (out.shape, temporal)
    model.reset_classifier(0, "avg")
    assert tuple(model(full).shape) == (1, model.head_hidden_size)


def test_model_forward(name, built):
    """timm ``test_model_forward``: a forward pass, no NaN; grad checkpointing does not change the output.

    In train mode with gradients (timm: eval), as the zoo's video families checkpoint only in training; the
    seed gives both passes the same dropout masks."""
    model = copy.deepcopy(built).train()
    x = torch.randn(_clip_shape(model))
    torch.manual_seed(1)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (BATCH, NUM_CLASSES) and torch.isfinite(out).all()
    model.set_grad_checkpointing()
    torch.manual_seed(1)
    _assert_same(model(x), out, rtol=1e-4)  # with gradients: checkpointing acts only then


def test_model_backward(name, built):
    """timm ``test_model_backward``: with ``num_classes`` set, logits of that size and a gradient for every
    parameter (but an HCML side branch's, see ``_side_branch_prefix``)."""
    model = copy.deepcopy(built).train()
    side_branch = _side_branch_prefix(model)
    x = torch.randn(_clip_shape(model))
    out = model(x)
    out.mean().backward()
    num_params = num_grad = 0
    for pname, p in model.named_parameters():
        if side_branch and pname.startswith(side_branch):
            assert p.grad is None, f"{pname}: the side branch should not feed the logits"
            continue
        assert p.grad is not None, f"no gradient for {pname}"
        num_params += p.numel()
        num_grad += p.grad.numel()
    assert num_params == num_grad > 0
    assert out.shape == (BATCH, NUM_CLASSES) and model.num_classes == NUM_CLASSES
    assert not torch.isnan(out).any()


def _check_maps(maps: list[torch.Tensor], feature_info: list[dict], shape: tuple[int, ...]) -> None:
    """timm's per-level checks (channels, reductions, batch, no NaN), exact here: the clip is a multiple of
    every reduction, where timm allows one pixel more than ``ceil(size / reduction)``."""
    assert len(maps) == len(feature_info)
    for i, (m, level) in enumerate(zip(maps, feature_info)):
        assert m.ndim == 5 and m.shape[:2] == (shape[0], level["num_chs"]), (i, m.shape)
        assert m.shape[2:] == _map_size(shape, level["temporal_reduction"], level["reduction"]), (i, m.shape)
        assert not torch.isnan(m).any(), i


def test_model_forward_features(name):
    """timm ``test_model_forward_features``: ``features_only=True`` gives one map per level of feature_info."""
    model = zoo.create_model(name, features_only=True, **small_clip_kwargs(name)).eval()
    info = model.feature_info
    assert len(info.channels()) >= 3 and len(info) == len(model.model.feature_info)
    x = torch.randn(_clip_shape(model.model, batch=1))
    with torch.no_grad():
        maps = model(x)
    _check_maps(maps, info, x.shape)


def test_model_forward_intermediates(name, built):
    """timm ``test_model_forward_intermediates``: ``forward_intermediates`` gives one map per level of
    feature_info. timm's other two checks have no analogue or are elsewhere: its ``forward_intermediates``
    also returns the final map (ours returns the levels only, and the final map may follow more layers: a norm,
    X3D's conv5, SlowFast's fusion; tests/test_models.py checks that each map is its module's output), and
    its grad checkpointing check is test_model_forward's here."""
    model = built.eval()
    info = model.feature_info
    assert len(info) >= 3
    x = torch.randn(_clip_shape(model, batch=1))
    with torch.no_grad():
        maps = model.forward_intermediates(x)
    _check_maps(maps, info, x.shape)
