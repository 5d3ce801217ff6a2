"""Grad-CAM of the last stage (zoo.adapters.grad_cam) and the side-by-side drawing (render_cam)."""
from __future__ import annotations

import copy

import pytest
import torch
from PIL import Image

import zoo
from zoo.adapters import attach_hcml, grad_cam, render_cam

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    plain = zoo.create_model("r2d_18", num_classes=4).eval()
    adapted = attach_hcml(copy.deepcopy(plain), zero_init_fuse=False).eval()
    return plain, adapted


def test_grad_cam_is_the_last_stage_map_weighted_by_its_mean_gradient(models):
    plain, _ = models
    x = torch.randn(2, 3, 4, 64, 64)
    cams, targets, layer = grad_cam(plain, x, target=[1, 2])
    assert layer == "layer4" and targets.tolist() == [1, 2]
    assert cams.shape == (2, 4, 64, 64) and cams.min() >= 0 and cams.max() <= 1
    assert all(p.grad is None for p in plain.parameters())  # only the map's gradient is taken

    maps = {}
    hook = plain.layer4.register_forward_hook(lambda m, i, o: maps.setdefault("a", o))
    logits = plain(x)
    hook.remove()
    act = maps["a"]
    (grad,) = torch.autograd.grad(logits[0, 1] + logits[1, 2], act)
    cam = torch.relu((grad.mean(dim=(2, 3, 4), keepdim=True) * act).sum(1, keepdim=True)).detach()
    cam = torch.nn.functional.interpolate(cam, size=(4, 64, 64), mode="trilinear", align_corners=False)[:, 0]
    torch.testing.assert_close(cams, cam / cam.flatten(1).amax(1).clamp_min(1e-12)[:, None, None, None])
    predicted = grad_cam(plain, x)[1]
    assert predicted.tolist() == plain(x).argmax(1).tolist()
    with pytest.raises(ValueError, match="no map"):
        grad_cam(models[1], x, layer="hcml.flow.1")  # the side branch never feeds the logits


def test_render_cam_draws_a_model_and_its_hcml_version_side_by_side(models, tmp_path):
    plain, adapted = models
    clip = torch.randn(3, 6, 64, 64)
    grid = render_cam({"R2D-18": plain, "HCML R2D-18": adapted}, clip, target=3, path=tmp_path / "cam.png",
                      max_frames=4, label_names=list("abcd"), scale=2)
    tile, pad, caption = 128, 2, 14
    assert grid.dtype == torch.uint8 and grid.shape == (3, 2 * (caption + tile + 2 * pad), 4 * (tile + pad) + pad)
    assert Image.open(tmp_path / "cam.png").size == (grid.shape[2], grid.shape[1])
    single = render_cam(adapted, clip, max_frames=2)
    assert single.shape[1] == caption + 64 + 2 * pad
