"""The zoo's pytorchvideo families against pytorchvideo's own builders, on random weights saved to files.

For every ``.pv_k400`` / ``.pv_ssv2`` tag, pytorchvideo's hub builder (random weights, random BN statistics)
is saved as ``{"model_state": state_dict}`` under the tag's URL file name in a temporary torch.hub cache;
``create_model(tag, pretrained=True)`` loads it from there and must give pytorchvideo's outputs in eval
mode on a clip at the tag's eval size (SlowFast: pytorchvideo gets ``[slow, fast]`` by the
``PackPathway`` rule, ours the one clip). X3D and R(2+1)D: pytorchvideo's hub heads end in a softmax
and ours return logits, so the reference is built with ``head_activation=None`` (and one test checks
that the hub's softmax output is the softmax of our logits).

Input sizes: the eval size (``pretrained_cfg.input_size``) except for ``r2plus1d_r50`` and ``csn_r101``,
whose eval clips (16 x 256, 32 x 256) take over 30 s a test on one CPU thread; they run at the smallest
clip at which pytorchvideo's fixed head window still fits (``(4, 7, 7)`` at res5: 13 x 193 and 25 x 193).

pytorchvideo 0.1.5 is the oracle only (``pip install --no-deps pytorchvideo==0.1.5`` and
``pip install fvcore iopath``); without it this file is skipped, with the reason.
"""

import importlib
import inspect
import os
from pathlib import Path
from urllib.parse import urlparse

import pytest
import torch
from torch import nn

pv_models = pytest.importorskip(
    "pytorchvideo.models",
    reason="pytorchvideo is the oracle of these tests: pip install --no-deps pytorchvideo==0.1.5 && "
    "pip install fvcore iopath",
)
from pytorchvideo.models import hub  # noqa: E402

import zoo  # noqa: E402

ALPHA = 4

# tag -> (pytorchvideo hub builder, its kwargs, clip (T, H, W) or None for the eval size, key prefix in the file)
CASES = {
    "x3d_xs.pv_k400": ("x3d_xs", dict(head_activation=None), None, ""),
    "x3d_s.pv_k400": ("x3d_s", dict(head_activation=None), None, ""),
    "x3d_m.pv_k400": ("x3d_m", dict(head_activation=None), None, ""),
    "x3d_l.pv_k400": ("x3d_l", dict(head_activation=None), None, ""),
    "slowfast_r50.pv_k400": ("slowfast_r50", {}, None, ""),
    "slowfast_r101.pv_k400": ("slowfast_r101", {}, None, ""),
    "slow_r50.pv_k400": ("slow_r50", {}, None, ""),
    "c2d_r50.pv_k400": ("c2d_r50", {}, None, ""),
    "i3d_r50.pv_k400": ("i3d_r50", {}, None, ""),
    "r2plus1d_r50.pv_k400": ("r2plus1d_r50", dict(head_activation=None), (13, 193, 193), ""),
    "csn_r101.pv_k400": ("csn_r101", {}, (25, 193, 193), ""),
    # no hub builders: PySlowFast's PTVResNet / PTVSlowFast with 174 classes; their checkpoints may keep
    # PySlowFast's ``model.`` prefix (unverified offline), which the filter strips: tested with it
    "slow_r50.pv_ssv2": ("slow_r50", dict(model_num_class=174), None, "model."),
    "slowfast_r50.pv_ssv2": ("slowfast_r50", dict(model_num_class=174), None, "model."),
}


def assert_same(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """Equal up to float32 rounding, relative to the magnitude of ``expected`` (as in test_model_equivalence)."""
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-6 * max(1.0, expected.abs().max().item()))


@pytest.fixture(autouse=True, scope="module")
def _one_thread_seeded():
    """One intra-op thread (on the shared, oversubscribed CPU 2 threads are several times slower) and a seed."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _randomise_batchnorm(model: nn.Module) -> nn.Module:
    """Non-trivial BN statistics and affine terms (pytorchvideo zero-initialises each block's last BN)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.1)
    return model.eval()


def _pytorchvideo_input(builder: str, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
    """pytorchvideo's input for the zoo's one clip: SlowFast gets ``[slow, fast]`` (``PackPathway``)."""
    if not builder.startswith("slowfast"):
        return x
    frames = x.shape[2]
    return [x.index_select(2, torch.linspace(0, frames - 1, frames // ALPHA).long()), x]


def _save_to_hub_cache(url: str, state_dict: dict[str, torch.Tensor], prefix: str = "") -> Path:
    """``{"model_state": state_dict}`` at torch.hub's cache path of ``url`` (``$TORCH_HOME/hub/checkpoints``)."""
    path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model_state": {prefix + k: v for k, v in state_dict.items()}}, path)
    return path


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty torch.hub cache (``TORCH_HOME``) and no network."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "torch"


@pytest.mark.parametrize("tag", list(CASES))
def test_pytorchvideo_checkpoint_gives_pytorchvideos_outputs(tag, hub_cache):
    builder, kwargs, clip, prefix = CASES[tag]
    cfg = zoo.get_pretrained_cfg(tag)
    assert cfg.url and cfg.url.startswith("https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/")
    ref = _randomise_batchnorm(getattr(hub, builder)(pretrained=False, **kwargs))
    path = _save_to_hub_cache(cfg.url, ref.state_dict(), prefix)
    assert path.is_relative_to(hub_cache)

    model = zoo.create_model(tag, pretrained=True).eval()
    assert model.num_classes == cfg.num_classes == ref.blocks[-1].proj.out_features
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in ref.parameters())
    frames, height, width = clip or cfg.input_size[1:]
    x = torch.randn(1, 3, frames, height, width)
    with torch.no_grad():
        expected = ref(_pytorchvideo_input(builder, x))
        assert_same(model(x), expected)


def test_pytorchvideo_hub_softmax_is_the_softmax_of_our_logits():
    """pytorchvideo's hub X3D (and R(2+1)D) end in a softmax; where its map has one window it is ours'."""
    ref = _randomise_batchnorm(hub.x3d_xs(pretrained=False))
    assert isinstance(ref.blocks[-1].activation, nn.Softmax)
    model = zoo.create_model("x3d_xs", pretrained_cfg_overlay=dict(state_dict=ref.state_dict())).eval()
    x = torch.randn(2, 3, 4, 160, 160)  # the hub's training crop: one (4, 5, 5) window
    with torch.no_grad():
        assert_same(model(x).softmax(dim=1), ref(x))
    # the hub entrypoints keep their builders' head_activation: a softmax for X3D and R(2+1)D only
    from pytorchvideo.models import csn, r2plus1d, resnet, slowfast, x3d

    defaults = {
        f.__name__: inspect.signature(f).parameters["head_activation"].default
        for f in (
            x3d.create_x3d,
            r2plus1d.create_r2plus1d,
            resnet.create_resnet,
            csn.create_csn,
            slowfast.create_slowfast,
        )
    }
    assert defaults == dict(
        create_x3d=nn.Softmax, create_r2plus1d=nn.Softmax, create_resnet=None, create_csn=None, create_slowfast=None
    )


# small clips, and the head window of pytorchvideo's that fits the map (the hub entrypoints fix theirs)
SMALL = {
    "x3d_xs": ((4, 64, 64), (4, 2, 2)),
    "slow_r50": ((4, 64, 64), (4, 2, 2)),
    "i3d_r50": ((4, 64, 64), (2, 2, 2)),
    "r2plus1d_r50": ((4, 64, 64), (1, 2, 2)),
    "csn_r101": ((8, 64, 64), (1, 2, 2)),
    "slowfast_r50": ((8, 64, 64), (2, 2, 2)),
}


def _set_head_window(ref: nn.Module, name: str, window: tuple[int, int, int]) -> None:
    """Replace the fixed ``AvgPool3d`` of a pytorchvideo model's head (SlowFast: both, the fast one alpha x longer)."""
    if name.startswith("slowfast"):
        ref.blocks[-2].pool[0] = nn.AvgPool3d(window, stride=1)
        ref.blocks[-2].pool[1] = nn.AvgPool3d((ALPHA * window[0], *window[1:]), stride=1)
    elif name.startswith("x3d"):
        ref.blocks[-1].pool.pool = nn.AvgPool3d(window, stride=1)
    else:
        ref.blocks[-1].pool = nn.AvgPool3d(window, stride=1)


@pytest.mark.parametrize("name", list(SMALL))
def test_small_clips_run_with_the_window_clipped(name):
    """Below pytorchvideo's fixed head window ours averages the whole map: pytorchvideo with a window that fits."""
    (frames, height, width), window = SMALL[name]
    kwargs = dict(head_activation=None) if name in ("x3d_xs", "r2plus1d_r50") else {}
    ref = _randomise_batchnorm(getattr(hub, name)(pretrained=False, **kwargs))
    _set_head_window(ref, name, window)
    model = zoo.create_model(name, pretrained_cfg_overlay=dict(state_dict=ref.state_dict())).eval()
    x = torch.randn(2, 3, frames, height, width)
    with torch.no_grad():
        assert_same(model(x), ref(_pytorchvideo_input(name, x)))


@pytest.mark.parametrize("pathway", ["fast", "slow"])
def test_slowfast_feature_levels_are_pytorchvideos_pathway_maps(pathway):
    """``feature_info`` level i = the output of pytorchvideo's ``blocks[i].multipathway_blocks[p]``."""
    ref = _randomise_batchnorm(hub.slowfast_r50(pretrained=False))
    _set_head_window(ref, "slowfast_r50", (2, 2, 2))
    model = zoo.create_model(
        "slowfast_r50", feature_pathway=pathway, pretrained_cfg_overlay=dict(state_dict=ref.state_dict())
    ).eval()
    index = 1 if pathway == "fast" else 0
    seen = {}
    for i in range(5):
        ref.blocks[i].multipathway_blocks[index].register_forward_hook(
            lambda _m, _i, out, i=i: seen.__setitem__(i, out.clone())
        )
    x = torch.randn(1, 3, 8, 64, 64)
    with torch.no_grad():
        ref(_pytorchvideo_input("slowfast_r50", x))
        maps = model.forward_intermediates(x)
    for i, (m, info) in enumerate(zip(maps, model.feature_info)):
        assert m.shape[1] == info["num_chs"] and x.shape[2] // m.shape[2] == info["temporal_reduction"]
        assert_same(m, seen[i])
    assert model.feature_info.channels() == ([8, 32, 64, 128, 256] if pathway == "fast" else [64, 256, 512, 1024, 2048])


def test_slowfast_needs_frames_a_multiple_of_alpha():
    model = zoo.create_model("slowfast_r50", num_classes=3).eval()
    with pytest.raises(ValueError, match="multiple of alpha=4"):
        model(torch.randn(1, 3, 6, 32, 32))
    with pytest.raises(ValueError, match=r"T >= 4"):
        model(torch.randn(1, 3, 2, 32, 32))


def test_head_widths():
    """X3D: the map is conv_5's 432 channels, the pre-logits lin_5's 2048 (timm's head_hidden_size)."""
    x3d = zoo.create_model("x3d_xs", num_classes=5).eval()
    x = torch.randn(1, 3, 4, 64, 64)
    with torch.no_grad():
        feats = x3d.forward_features(x)
        assert feats.shape == (1, 432, 4, 2, 2) and x3d.num_features == 432
        assert x3d.forward_head(feats, pre_logits=True).shape == (1, 2048) == (1, x3d.head_hidden_size)
    slowfast = zoo.create_model("slowfast_r50", num_classes=5)
    assert slowfast.num_features == slowfast.head_hidden_size == 2304
    assert zoo.create_model("slow_r50").head_hidden_size == 2048


@pytest.mark.parametrize(
    "name, family, calls",
    [("x3d_xs", "x3d", 5), ("slow_r50", "pv_resnet", 5), ("c2d_r50", "pv_resnet", 6), ("slowfast_r50", "slowfast", 5)],
)
def test_grad_checkpointing_recomputes_each_stage_with_same_grads(name, family, calls, monkeypatch):
    module = importlib.import_module(f"zoo.models.{family}")
    model = zoo.create_model(name, num_classes=3, drop_rate=0.0)
    x = torch.randn(1, 3, 8, 32, 32)

    def grads():
        model.zero_grad()
        model(x).square().sum().backward()
        return {n: p.grad.clone() for n, p in model.named_parameters()}

    plain = grads()
    seen = []
    real_checkpoint = module.checkpoint

    def counting_checkpoint(fn, *args, **kwargs):
        seen.append(fn)
        return real_checkpoint(fn, *args, **kwargs)

    monkeypatch.setattr(module, "checkpoint", counting_checkpoint)
    model.set_grad_checkpointing(True)
    checkpointed = grads()
    assert len(seen) == calls  # the stem and every stage (C2D: and its temporal pool)
    for n in plain:
        torch.testing.assert_close(checkpointed[n], plain[n], msg=n)


def test_default_cfgs():
    for tag in CASES:
        cfg = zoo.get_pretrained_cfg(tag)
        assert cfg.hash_prefix is None and "no hash" in cfg.notes, tag
        assert cfg.license == "Apache-2.0" and cfg.mean == (0.45,) * 3 and cfg.std == (0.225,) * 3, tag
        assert {"top1", "top5", "views", "clip_len", "frame_stride"} <= set(cfg.metrics), tag
        assert cfg.metrics["clip_len"] == cfg.input_size[1] and cfg.metrics["frame_stride"] == cfg.frame_stride, tag
        assert cfg.gflops and cfg.num_params and cfg.paper and cfg.resize_size == cfg.input_size[2], tag
        model = zoo.create_model(tag.split(".")[0], num_classes=cfg.num_classes)
        assert model.get_submodule(cfg.classifier) is model.get_classifier(), tag
        assert cfg.min_frames == model.min_frames, tag
        assert isinstance(model.get_submodule(cfg.first_conv), nn.Conv3d), tag
        # the table's params (millions, 2 decimals) are ours, up to rounding (SSv2 Slow: its 31.96 is ours less 0.03)
        assert abs(sum(p.numel() for p in model.parameters()) - cfg.num_params) < 50_000, tag
    assert zoo.get_pretrained_cfg("slow_r50.pv_ssv2").num_classes == 174
    assert zoo.get_pretrained_cfg("x3d_m.pv_k400").input_size == (3, 16, 256, 256)
    assert set(CASES) <= set(zoo.list_models(pretrained=True))
