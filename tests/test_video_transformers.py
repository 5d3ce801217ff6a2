"""torchvision's video transformers (MViT v1 / v2, Swin3D) against the zoo's ``mvit`` and ``swin3d`` families.

Each torchvision Kinetics-400 weights file (the six ``*.tv_k400*`` tags) is stood in for by torchvision's
randomly initialised model (LayerNorm affine terms and linear biases randomised too), saved under the
file's exact name in a temporary ``$TORCH_HOME/hub/checkpoints``; ``create_model(tag, pretrained=True)``
finds it there (``HF_HUB_OFFLINE`` is set, nothing is downloaded) and must give torchvision's stage
maps, final map and logits. MViT runs at its only size, 16 x 224 x 224; Swin3D at a small odd-sized clip
that still pads patches, windows and patch merging and shifts windows in time and space.

Also: every tag's cfg against torchvision's weights enum (transforms, metrics, size, cost), features_only,
the class token path of MViT's head, grad checkpointing per block, and input errors.
"""

import os
import re

import pytest
import torch
from torch import nn
from torchvision.models import video as tv

import zoo
from zoo.models import mvit as zoo_mvit
from zoo.models import swin3d as zoo_swin3d
from zoo.utils import count_flops

# tag -> (torchvision builder, weights enum member)
TAGS = {
    "mvit_v1_b.tv_k400": ("mvit_v1_b", tv.MViT_V1_B_Weights.KINETICS400_V1),
    "mvit_v2_s.tv_k400": ("mvit_v2_s", tv.MViT_V2_S_Weights.KINETICS400_V1),
    "swin3d_t.tv_k400": ("swin3d_t", tv.Swin3D_T_Weights.KINETICS400_V1),
    "swin3d_s.tv_k400": ("swin3d_s", tv.Swin3D_S_Weights.KINETICS400_V1),
    "swin3d_b.tv_k400": ("swin3d_b", tv.Swin3D_B_Weights.KINETICS400_V1),
    "swin3d_b.tv_k400_in22k": ("swin3d_b", tv.Swin3D_B_Weights.KINETICS400_IMAGENET22K_V1),
}
MVIT_CLIP = (1, 3, 16, 224, 224)
SWIN_CLIP = (1, 3, 17, 62, 70)  # patches 9 x 16 x 18 (padded from 17, 62, 70): T > 8 shifts windows in time too


def assert_same(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """Equal up to float32 rounding, relative to the magnitude of ``expected``."""
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-6 * max(1.0, expected.abs().max().item()))


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


@torch.no_grad()
def _randomise(model: nn.Module) -> nn.Module:
    """Non-trivial LayerNorm affine terms and linear biases (torchvision initialises them to 1 and 0, which
    would hide a swapped norm or a dropped bias)."""
    for m in model.modules():
        if isinstance(m, nn.LayerNorm):
            m.weight.uniform_(0.5, 1.5)
            m.bias.normal_(0, 0.1)
        elif isinstance(m, nn.Linear) and m.bias is not None:
            m.bias.normal_(0, 0.02)
    return model.eval()


def _capture(modules: dict[str, nn.Module]) -> tuple[dict, list]:
    """Forward hooks storing each module's output under its name; returns (outputs, handles)."""
    out: dict = {}
    handles = [m.register_forward_hook(lambda _m, _i, o, k=k: out.__setitem__(k, o)) for k, m in modules.items()]
    return out, handles


@pytest.mark.parametrize("tag", list(TAGS))
def test_torchvision_weights_file_gives_torchvision_outputs(tag, tmp_path, monkeypatch):
    arch, weights = TAGS[tag]
    ref = _randomise(getattr(tv, arch)(weights=None))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = tmp_path / "hub" / "checkpoints" / os.path.basename(weights.url)
    path.parent.mkdir(parents=True)
    torch.save(ref.state_dict(), path)

    model = zoo.create_model(tag, pretrained=True).eval()
    path.unlink()  # 140-350 MB each: gone as soon as it is loaded
    assert model.pretrained_cfg.url == weights.url and model.num_classes == 400

    x = torch.randn(MVIT_CLIP if arch.startswith("mvit") else SWIN_CLIP)
    info = model.feature_info
    ours, ours_handles = _capture({f"level{i}": model.get_submodule(level["module"]) for i, level in enumerate(info)})
    if arch.startswith("mvit"):  # torchvision's stage ends are the blocks before each pooling block
        ends = {f"level{i}": ref.blocks[blocks[-1]] for i, blocks in enumerate(model.stage_blocks)}
    else:  # torchvision's features.0, .2, .4, .6 hold the stages, channels-last
        ends = {f"level{i}": ref.features[int(level["module"].split(".")[1])] for i, level in enumerate(info)}
    theirs, ref_handles = _capture({**ends, "norm": ref.norm})
    with torch.no_grad():
        feats = model.forward_features(x)
        logits = model.forward_head(feats)
        expected = ref(x)
    for h in ours_handles + ref_handles:
        h.remove()

    assert_same(logits, expected)
    for i, level in enumerate(info):
        if arch.startswith("mvit"):
            tokens, thw = theirs[f"level{i}"]
            their_map = tokens[:, 1:].transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], *thw)
        else:
            their_map = theirs[f"level{i}"].permute(0, 4, 1, 2, 3)
        assert ours[f"level{i}"].shape[1] == level["num_chs"]
        assert_same(ours[f"level{i}"], their_map)
    normed = theirs["norm"]
    if arch.startswith("mvit"):
        assert_same(feats, normed[:, 1:].transpose(1, 2).reshape(feats.shape))
        assert_same(feats.cls_token, normed[:, 0])
    else:
        assert_same(feats, normed.permute(0, 4, 1, 2, 3))
    assert feats.shape[1] == model.num_features == model.head_hidden_size


@pytest.mark.parametrize("tag", list(TAGS))
def test_cfg_equals_torchvision_weights_meta(tag):
    arch, weights = TAGS[tag]
    cfg = zoo.get_pretrained_cfg(tag)
    meta, transform = weights.meta, weights.transforms()
    file_name = os.path.basename(weights.url)

    assert cfg.url == weights.url and cfg.has_weights
    assert file_name.endswith(f"-{cfg.hash_prefix}.pth") and re.fullmatch(r"[0-9a-f]{8}", cfg.hash_prefix)
    assert cfg.num_classes == len(meta["categories"]) == 400 and cfg.dataset == "Kinetics-400"
    assert cfg.recipe == meta["recipe"] and cfg.license == "BSD-3-Clause" and cfg.paper.startswith("https://arxiv")
    # the eval transform: resize (short side), centre crop, normalisation
    crop = tuple(transform.crop_size)
    assert cfg.input_size[2:] == crop
    assert [cfg.resize_size] == transform.resize_size  # torchvision's (256,): the short side
    assert cfg.crop_pct == pytest.approx(crop[0] / transform.resize_size[0])
    assert cfg.mean == pytest.approx(tuple(transform.mean)) and cfg.std == pytest.approx(tuple(transform.std))
    assert cfg.min_size == meta["min_size"][0] == meta["min_size"][1] and cfg.min_frames == meta["min_temporal_size"]
    # metrics as torchvision states them: accuracies from _metrics, the evaluation protocol from _docs
    accuracy = meta["_metrics"]["Kinetics-400"]
    assert (cfg.metrics["top1"], cfg.metrics["top5"]) == (accuracy["acc@1"], accuracy["acc@5"])
    for key in ("frame_rate", "clips_per_video", "clip_len"):
        assert re.search(rf"`{key}={cfg.metrics[key]}`", meta["_docs"]), key
    assert cfg.metrics["views"] == f"{cfg.metrics['clips_per_video']}x1"
    assert cfg.input_size[1] == cfg.metrics["clip_len"] and cfg.frame_stride == 1
    assert cfg.num_params == meta["num_params"] and cfg.gflops == meta["_ops"]
    assert cfg.classifier == "head.fc"


@pytest.mark.parametrize("arch", ["mvit_v1_b", "mvit_v2_s", "swin3d_t", "swin3d_s", "swin3d_b"])
def test_size_and_cost_equal_torchvision_meta(arch):
    """Parameters and multiply-adds (``count_flops``' ``gflops``, MACs / 1e9) on the meta device equal
    torchvision's ``num_params`` and ``_ops``; torchvision measured ``_ops`` on 16 x 224 x 224 clips for
    every model (for Swin3D, half the cost of its 32-frame evaluation clips)."""
    weights = next(w for a, w in TAGS.values() if a == arch)
    with torch.device("meta"):
        model = zoo.create_model(arch)
    assert sum(p.numel() for p in model.parameters()) == weights.meta["num_params"]
    assert round(count_flops(model, (3, 16, 224, 224))["gflops"], 3) == weights.meta["_ops"]
    cfg = model.pretrained_cfg
    assert cfg.first_conv and isinstance(model.get_submodule(cfg.first_conv), nn.Conv3d)
    assert model.get_submodule(cfg.classifier) is model.get_classifier()


def test_swin3d_features_only_equal_intermediates():
    torch.manual_seed(0)
    feats = zoo.create_model("swin3d_t", features_only=True, out_indices=(3, 0, 1)).eval()
    torch.manual_seed(0)
    model = zoo.create_model("swin3d_t").eval()  # the same weights
    assert feats.feature_info == [model.feature_info[3], model.feature_info[0], model.feature_info[1]]
    assert isinstance(feats.model.norm, nn.Identity) and isinstance(feats.model.get_classifier(), nn.Identity)
    x = torch.randn(2, 3, 4, 64, 64)
    with torch.no_grad():
        maps = feats(x)
        expected = model.forward_intermediates(x, indices=(3, 0, 1))
    assert len(maps) == 3
    for m, e, level in zip(maps, expected, feats.feature_info):
        size = 64 // level["reduction"]
        assert m.shape == (2, level["num_chs"], 4 // level["temporal_reduction"], size, size)
        assert_same(m, e)
    # inputs are padded to whole patches and windows: a single pixel of a single frame runs
    with torch.no_grad():
        tiny = feats(torch.randn(1, 3, 1, 1, 1))
    assert [m.shape[2:] for m in tiny] == [(1, 1, 1)] * 3


def test_mvit_features_only_prunes_later_blocks():
    feats = zoo.create_model("mvit_v2_s", features_only=True, out_indices=(1, 0)).eval()
    model = feats.model
    assert len(model.blocks) == 3 and len(model.stage_blocks) == 2  # blocks of stages 0 and 1 only
    assert isinstance(model.norm, nn.Identity) and isinstance(model.get_classifier(), nn.Identity)
    with torch.no_grad():
        maps = feats(torch.randn(MVIT_CLIP))
    for m, level in zip(maps, feats.feature_info):
        assert m.shape == (1, level["num_chs"], 16 // level["temporal_reduction"], *(2 * (224 // level["reduction"],)))
    assert [m.shape[1] for m in maps] == [192, 96]


def _tiny_mvit(**kwargs) -> zoo_mvit.MViT:
    """A 4-block MViTv2 on 4 x 32 x 32 clips: the family's code paths at a fraction of the cost."""
    blocks = zoo_mvit._block_settings(
        num_heads=[1, 2, 2, 2],
        input_channels=[8, 8, 16, 16],
        output_channels=[8, 16, 16, 16],
        kernel_q=[(3, 3, 3)] * 4,
        kernel_kv=[(3, 3, 3)] * 4,
        stride_q=[(1, 1, 1), (1, 2, 2), (1, 1, 1), (1, 1, 1)],
        stride_kv=[(1, 2, 2), (1, 1, 1), (1, 1, 1), (1, 1, 1)],
    )
    args = dict(residual_pool=True, residual_with_cls_embed=False, rel_pos_embed=True, proj_after_attn=True)
    return zoo_mvit.MViT(blocks, spatial_size=(32, 32), temporal_size=4, num_classes=3, **dict(args, **kwargs))


def test_mvit_head_reads_the_class_token():
    model = _tiny_mvit(drop_rate=0.0).eval()
    assert model.feature_info.reduction() == [4, 8]
    assert model.feature_info.module_name() == ["stage_maps.0", "stage_maps.1"]
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        feats = model.forward_features(x)
        logits = model(x)
        assert_same(model.forward_head(feats), logits)
        assert_same(model.forward_head(feats.clone(), cls_token=feats.cls_token), logits)
        assert_same(model.forward_head(feats, pre_logits=True), feats.cls_token)
        with pytest.raises(ValueError, match="class token"):
            model.forward_head(feats.clone())  # operations drop the attribute
        model.reset_classifier(5, global_pool="avg")
        assert_same(model.forward_head(feats.clone(), pre_logits=True), feats.mean(dim=(2, 3, 4)))
        model.reset_classifier(0, global_pool="token")
        assert model.forward_head(feats).shape == (2, 16) and model.head.global_pool == "token"


def test_mvit_stage_map_wrapper_feeds_the_next_stage():
    """A wrapper replacing a ``feature_info`` module (as HCML's adapters do) changes what later stages see."""

    class Doubler(nn.Module):
        def __init__(self, inner: nn.Module):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return 2 * self.inner(x)

    model = _tiny_mvit().eval()
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        before = model.forward_intermediates(x)
        model.set_submodule("stage_maps.0", Doubler(model.stage_maps[0]))
        after = model.forward_intermediates(x)
    assert_same(after[0], 2 * before[0])
    assert not torch.allclose(after[1], before[1])


@pytest.mark.parametrize("family", ["mvit", "swin3d"])
def test_grad_checkpointing_recomputes_each_block_with_same_grads(family, monkeypatch):
    module = zoo_mvit if family == "mvit" else zoo_swin3d
    if family == "mvit":
        model, x, num_blocks = _tiny_mvit(drop_path_rate=0.0, drop_rate=0.0), torch.randn(2, 3, 4, 32, 32), 4
    else:
        model = zoo.create_model("swin3d_t", num_classes=3, drop_path_rate=0.0)
        x, num_blocks = torch.randn(1, 3, 2, 32, 32), 12

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
    assert len(calls) == num_blocks
    for n in plain:
        torch.testing.assert_close(checkpointed[n], plain[n], msg=n)
    model.eval()
    calls.clear()
    with torch.no_grad():
        model(x)
    assert not calls


def test_input_errors():
    with torch.device("meta"):
        mvit = zoo.create_model("mvit_v1_b")
    assert (mvit.min_frames, mvit.min_size) == (16, 224)
    with pytest.raises(ValueError, match=r"built for 16 x 224 x 224 clips only"):
        mvit(torch.zeros(1, 3, 16, 256, 256))
    with pytest.raises(ValueError, match="T >= 16"):
        mvit(torch.zeros(1, 3, 8, 224, 224))
    with pytest.raises(ValueError, match="H, W >= 224"):
        mvit(torch.zeros(1, 3, 16, 112, 112))
    swin = zoo.create_model("swin3d_t")
    assert (swin.min_frames, swin.min_size) == (1, 1)
    with pytest.raises(ValueError, match="dtype"):
        swin(torch.zeros(1, 3, 2, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="channels"):
        swin(torch.zeros(1, 4, 2, 32, 32))


def test_checkpoint_filter_keeps_zoo_keys():
    """The filters map torchvision's keys only: the zoo's own state dicts pass unchanged."""
    for name, module in (("swin3d_t", zoo_swin3d), ("mvit_v2_s", zoo_mvit)):
        with torch.device("meta"):
            model = zoo.create_model(name)
            ref = getattr(tv, name)(weights=None)
        own = model.state_dict()
        assert list(module.checkpoint_filter_fn(own, model)) == list(own)
        ref_keys = set(module.checkpoint_filter_fn(ref.state_dict(), model))
        assert ref_keys == set(own)
