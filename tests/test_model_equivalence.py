"""The zoo's networks against their references, on random weights saved to files.

- timm's 2D ResNets load into ``r2d_*`` (exact per frame) and, inflated, into ``r3d_50`` / ``i3d_50``:
  centre inflation is exact on any clip; mean inflation is exact on a static clip away from its ends.
- torchvision's ``r3d_18``, ``mc3_18``, ``r2plus1d_18`` and ``s3d`` checkpoints give torchvision's outputs.
"""

import pytest
import timm
import torch
from safetensors.torch import save_file
from torch import nn
from torchvision.models import video as tv

import zoo
from zoo.layers import inflate_conv_weight, inflate_state_dict


def assert_same(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """Equal up to float32 rounding, relative to the magnitude of ``expected`` (deep random nets
    with random BN reach logits in the hundreds)."""
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-6 * max(1.0, expected.abs().max().item()))


pytestmark = pytest.mark.usefixtures("one_thread")  # one intra-op thread for this module (conftest.py)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _randomise_batchnorm(model: nn.Module) -> nn.Module:
    """Non-trivial BN statistics and affine terms (timm zero-initialises each block's last BN)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.1)
    return model.eval()


def _save(model: nn.Module, path) -> str:
    state_dict = {k: v.contiguous() for k, v in model.state_dict().items()}
    if str(path).endswith(".safetensors"):
        save_file(state_dict, str(path))
    else:
        torch.save(state_dict, path)
    return str(path)


@pytest.fixture(scope="module")
def resnet50_file(tmp_path_factory):
    """timm ``resnet50`` (random weights, 1000 classes) and its state dict in a safetensors file."""
    torch.manual_seed(1)
    ref = _randomise_batchnorm(timm.create_model("resnet50", pretrained=False))
    return ref, _save(ref, tmp_path_factory.mktemp("timm") / "resnet50.safetensors")


def _static_clip(frame: torch.Tensor, frames: int) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, C, frames, H, W)``, the frame repeated."""
    return frame[:, :, None].expand(-1, -1, frames, -1, -1).contiguous()


def test_r2d_18_equals_timm_resnet18_per_frame(tmp_path):
    ref = _randomise_batchnorm(timm.create_model("resnet18", pretrained=False))
    path = _save(ref, tmp_path / "resnet18.pth")
    model = zoo.create_model("r2d_18", num_classes=1000, pretrained_cfg_overlay=dict(file=path)).eval()
    frame = torch.randn(2, 3, 64, 64)
    clip = torch.randn(2, 3, 3, 64, 64)
    with torch.no_grad():
        assert_same(model(_static_clip(frame, 2)), ref(frame))
        # no temporal mixing: each frame's map is timm's map of that frame
        feats = model.forward_features(clip)
        per_frame = ref.forward_features(clip.transpose(1, 2).flatten(0, 1))
        assert_same(feats.transpose(1, 2).flatten(0, 1), per_frame)


def test_r2d_50_timm_tag_equals_timm_resnet50(resnet50_file):
    ref, path = resnet50_file
    model = zoo.create_model("r2d_50.timm_in1k", pretrained=True, pretrained_cfg_overlay=dict(file=path)).eval()
    assert model.num_classes == 1000
    frame = torch.randn(2, 3, 64, 64)
    clip = torch.randn(1, 3, 8, 64, 64)
    with torch.no_grad():
        assert_same(model(_static_clip(frame, 4)), ref(frame))
        # HCML's temporal strides keep every 4th frame by res5: those frames' timm maps
        feats = model.forward_features(clip)
        per_frame = ref.forward_features(clip[:, :, ::4].transpose(1, 2).flatten(0, 1))
        assert_same(feats.transpose(1, 2).flatten(0, 1), per_frame)


@pytest.mark.parametrize("name", ["r3d_50", "i3d_50"])
def test_centre_inflation_is_exact_on_any_clip(name, resnet50_file):
    """Centre-inflated 3D kernels see only the centre frame: the net equals R2D-50 on any clip."""
    ref, path = resnet50_file
    r2d = zoo.create_model("r2d_50", num_classes=1000, pretrained_cfg_overlay=dict(file=path)).eval()
    model = zoo.create_model(name, num_classes=1000, pretrained_cfg_overlay=dict(file=path)).eval()
    assert model.weight_inflation == "centre"
    assert any(m.kernel_size[0] > 1 for m in model.modules() if isinstance(m, nn.Conv3d))
    clip = torch.randn(1, 3, 8, 32, 32)
    frame = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert_same(model(clip), r2d(clip))
        assert_same(model(_static_clip(frame, 4)), ref(frame))


def test_mean_inflation_is_exact_inside_a_static_clip(resnet50_file):
    """Mean inflation spreads the kernel over kT frames: on a static clip the stem equals timm's
    in the frames whose window stays inside the clip; at the ends zero padding drops taps."""
    ref, path = resnet50_file
    model = zoo.create_model(
        "r3d_50", num_classes=1000, weight_inflation="mean", pretrained_cfg_overlay=dict(file=path)
    ).eval()
    stem = model.stem[0].weight
    assert stem.shape[2] == 3
    torch.testing.assert_close(stem, ref.conv1.weight[:, :, None].expand_as(stem) / 3)
    frame = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        ours = model.forward_intermediates(_static_clip(frame, 5), indices=(0,))[0]
        theirs = ref.forward_intermediates(frame, indices=[0], intermediates_only=True)[0]
    for t in range(1, 4):
        assert_same(ours[:, :, t], theirs)
    assert not torch.allclose(ours[:, :, 0], theirs, rtol=1e-2, atol=1e-2)


def test_inflated_conv_on_clips():
    conv2d = nn.Conv2d(4, 6, 3, padding=1, bias=False)
    conv3d = nn.Conv3d(4, 6, 3, padding=1, bias=False)
    frame = torch.randn(2, 4, 9, 9)
    with torch.no_grad():
        ref = conv2d(frame)
        conv3d.weight.copy_(inflate_conv_weight(conv2d.weight, 3, "mean"))
        out = conv3d(_static_clip(frame, 5))
        for t in (1, 2, 3):
            assert_same(out[:, :, t], ref)
        for t in (0, 4):  # one of the three taps falls on the zero padding
            assert_same(out[:, :, t], ref * 2 / 3)
        conv3d.weight.copy_(inflate_conv_weight(conv2d.weight, 3, "center"))
        clip = torch.randn(2, 4, 5, 9, 9)
        per_frame = conv2d(clip.transpose(1, 2).flatten(0, 1)).unflatten(0, (2, 5)).transpose(1, 2)
        assert_same(conv3d(clip), per_frame)
    assert inflate_conv_weight(conv2d.weight, 1, "mean").shape == (6, 4, 1, 3, 3)
    with pytest.raises(ValueError, match="inflation mode"):
        inflate_conv_weight(conv2d.weight, 3, "edge")
    with pytest.raises(ValueError, match="4-D"):
        inflate_conv_weight(conv3d.weight, 3)
    with pytest.raises(ValueError, match="cannot inflate w"):
        inflate_state_dict({"w": torch.zeros(6, 4, 3, 3)}, {"w": torch.zeros(6, 4, 3, 5, 5)})


def test_2d_weights_into_a_2plus1d_net_is_a_clear_error(resnet50_file):
    _, path = resnet50_file
    with pytest.raises(ValueError, match="do not map onto"):
        zoo.create_model("r2plus1d_50", pretrained_cfg_overlay=dict(file=path))


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
@pytest.mark.parametrize("name", ["r3d_18", "mc3_18", "r2plus1d_18"])
def test_torchvision_video_resnet_checkpoint(name, suffix, tmp_path):
    ref = _randomise_batchnorm(getattr(tv, name)(weights=None))
    path = _save(ref, tmp_path / f"{name}{suffix}")
    model = zoo.create_model(name, pretrained_cfg_overlay=dict(file=path)).eval()
    x = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        assert_same(model(x), ref(x))
    assert set(ref.state_dict()) == {k.removeprefix("head.") for k in model.state_dict()}


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_torchvision_s3d_checkpoint(suffix, tmp_path):
    ref = _randomise_batchnorm(tv.s3d(weights=None))
    path = _save(ref, tmp_path / f"s3d{suffix}")
    model = zoo.create_model("s3d", pretrained_cfg_overlay=dict(file=path)).eval()
    x = torch.randn(1, 3, 8, 32, 32)
    # torchvision's (2, 7, 7) pooling window needs a map of at least that size (a 16 x 224 x 224 clip)
    feature_map = torch.randn(2, 1024, 3, 9, 8)
    with torch.no_grad():
        assert_same(model.forward_features(x), ref.features(x))
        theirs = ref.classifier(ref.avgpool(feature_map)).mean(dim=(2, 3, 4))
        assert_same(model.forward_head(feature_map), theirs)
