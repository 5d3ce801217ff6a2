"""HCML's reconstruction branch: warping, the Charbonnier losses, a flow head that learns motion, rendering."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.utils import flow_to_image

import zoo
from zoo.adapters import (
    FlowHead,
    PrimeMotionBlock,
    backward_warp,
    charbonnier,
    estimate_flows,
    frames_to_uint8,
    photometric_loss,
    render_flow,
    render_flow_levels,
    smoothness_loss,
    upsample_flow,
)
from zoo.methods.hcml import reconstruction_loss

pytestmark = pytest.mark.usefixtures("one_thread")  # one intra-op thread for this module (conftest.py)


def _texture_clip(batch: int, frames: int, size: int, shift: tuple[int, int], generator: torch.Generator):
    """Smooth periodic random texture moving by ``shift = (dx, dy)`` pixels per frame: (B, 3, T, size, size)."""
    noise = torch.rand(batch, 3, size, size, generator=generator)
    texture = F.avg_pool2d(noise.repeat(1, 1, 3, 3), 5, stride=1, padding=2)[:, :, size : 2 * size, size : 2 * size]
    dx, dy = shift
    return torch.stack([torch.roll(texture, (dy * t, dx * t), dims=(2, 3)) for t in range(frames)], dim=2)


def test_charbonnier_values():
    x = torch.tensor([0.0, 1.0, -2.0])
    expected = (x**2 + 1e-6) ** 0.45
    torch.testing.assert_close(charbonnier(x), expected)
    assert charbonnier(torch.tensor(0.0)).item() == pytest.approx(1e-3**0.9)


def test_backward_warp_integer_shift_and_mask():
    image = torch.randn(2, 3, 5, 7)
    flow = torch.zeros(2, 2, 5, 7)
    flow[:, 0] = 2.0  # u = +2: sample 2 pixels to the right
    flow[:, 1] = -1.0  # v = -1: sample one row up
    warped, valid = backward_warp(image, flow)
    torch.testing.assert_close(warped[:, :, 1:, :-2], image[:, :, :-1, 2:])
    expected_valid = torch.zeros(2, 1, 5, 7)
    expected_valid[:, :, 1:, :-2] = 1
    torch.testing.assert_close(valid, expected_valid)


def test_upsample_flow_scales_values():
    flow = torch.ones(1, 2, 4, 4)
    flow[:, 1] = 2.0
    up = upsample_flow(flow, (8, 16))
    assert up.shape == (1, 2, 8, 16)
    torch.testing.assert_close(up[:, 0], torch.full((1, 8, 16), 4.0))
    torch.testing.assert_close(up[:, 1], torch.full((1, 8, 16), 4.0))


def test_photometric_loss_is_minimal_at_the_true_flow():
    gen = torch.Generator().manual_seed(0)
    frames = _texture_clip(2, 2, 16, (2, -1), gen)
    true_flow = torch.zeros(2, 2, 2, 8, 8)  # at half resolution: 1 and -0.5 map pixels
    true_flow[:, 0], true_flow[:, 1] = 1.0, -0.5
    at_truth = photometric_loss(frames, true_flow)
    assert at_truth.item() == pytest.approx(1e-3**0.9, rel=1e-3)  # rho(0) on every valid pixel
    assert photometric_loss(frames, torch.zeros_like(true_flow)) > 10 * at_truth
    # The last time step pairs the last frame with itself: its flow is not used.
    garbage = true_flow.clone()
    garbage[:, :, -1] = 5.0
    torch.testing.assert_close(photometric_loss(frames, garbage), at_truth)
    # A constant flow has no gradient to penalise.
    assert smoothness_loss(true_flow, (16, 16)).item() == pytest.approx(4 * 1e-3**0.9, rel=1e-3)


def test_flow_head_learns_a_known_motion():
    """A PMB on the frames and a flow head, trained by reconstruction on a texture moving by (+2, -1)."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    pmb = PrimeMotionBlock(3, 16, 16, max_displacement=3, displacement_stride=1)
    head = FlowHead(16, (32, 32, 16, 16))
    optimizer = torch.optim.Adam([*pmb.parameters(), *head.parameters()], lr=1e-3)
    photometric = []
    for _ in range(60):
        clip = (_texture_clip(2, 3, 16, (2, -1), gen) - 0.5) / 0.25
        flow = head(pmb(clip))
        terms = reconstruction_loss(flow, clip)
        optimizer.zero_grad()
        terms["reconstruct"].backward()
        optimizer.step()
        photometric.append(terms["photometric"].item())
    assert sum(photometric[-10:]) / 10 < 0.3 * photometric[0]
    mean_flow = flow[:, :, :-1].mean(dim=(0, 2, 3, 4))
    torch.testing.assert_close(mean_flow, torch.tensor([2.0, -1.0]), atol=0.3, rtol=0)


def test_render_flow_writes_a_grid(tmp_path):
    torch.manual_seed(0)
    model = zoo.create_model("hcml_r2d_18", num_classes=5)
    path = render_flow(model, torch.randn(3, 4, 64, 64), tmp_path / "flow.png")
    image = Image.open(path)
    # One level with a flow head, 3 frame pairs: 3 rows of (frame t, frame t+1, flow), 64 px tiles, padding 2.
    assert image.mode == "RGB" and image.size == (3 * 66 + 2, 3 * 66 + 2)
    assert model.training
    model.deploy()
    with pytest.raises(ValueError, match="flow heads"):
        render_flow(model, torch.randn(3, 4, 64, 64), tmp_path / "deployed.png")


def test_render_flow_levels_draws_one_row_per_clip_with_every_level(tmp_path):
    torch.manual_seed(0)
    model = zoo.create_model("hcml_r2d_18", num_classes=5, hcml_cfg={"flow_levels": (1, 2, 3)})
    clips = torch.randn(2, 3, 4, 64, 64)
    reference = torch.zeros(2, 2, 64, 64)
    reference[:, 0] = 1.0  # rightwards: flow_to_image's colour for +u
    path = render_flow_levels(model, clips, tmp_path / "levels.png", pair=1, reference=reference)
    image = Image.open(path)
    # 2 rows of (frame t, frame t+1, reference, levels 1, 2, 3): 6 tiles of 64 px, padding 2.
    assert image.size == (6 * 66 + 2, 2 * 66 + 2)
    tile = torch.from_numpy(np.array(image)).permute(2, 0, 1)[:, 2:66, 2 * 66 + 2:3 * 66]
    expected = flow_to_image(reference[:1])[0]
    torch.testing.assert_close(tile, expected)
    with pytest.raises(ValueError, match="pair"):
        render_flow_levels(model, clips, tmp_path / "bad.png", pair=3)
    with pytest.raises(ValueError, match="reference"):
        render_flow_levels(model, clips, tmp_path / "bad.png", reference=reference[:1])
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\)"):
        render_flow_levels(model, clips[0], tmp_path / "bad.png")


def test_estimate_flows_gives_every_flow_level_in_map_pixels_from_one_pass():
    torch.manual_seed(0)
    model = zoo.create_model("hcml_r2d_18", num_classes=5, hcml_cfg={"flow_levels": (1, 3)})
    model.train()
    flows = estimate_flows(model, torch.randn(2, 3, 4, 64, 64))
    assert {k: tuple(v.shape) for k, v in flows.items()} == {1: (2, 2, 4, 16, 16), 3: (2, 2, 4, 4, 4)}
    assert model.training  # restored
    assert list(estimate_flows(model, torch.randn(1, 3, 4, 64, 64), levels=[1])) == [1]
    with pytest.raises(ValueError, match="flow heads at levels"):
        estimate_flows(model, torch.randn(1, 3, 4, 64, 64), levels=[2])
    model.deploy()
    with pytest.raises(ValueError, match="flow heads at levels"):
        estimate_flows(model, torch.randn(1, 3, 4, 64, 64))


def test_frames_to_uint8_undoes_the_normalisation():
    images = torch.randint(0, 256, (2, 3, 8, 10), dtype=torch.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    normalised = (images / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.equal(frames_to_uint8(normalised, mean, std), images)
    grey = frames_to_uint8(torch.full((1, 1, 4, 4), 2.0))  # no normalisation: [0, 1] units, clamped; grey -> RGB
    assert grey.shape == (1, 3, 4, 4) and int(grey.min()) == 255
    with pytest.raises(ValueError, match=r"\(N, C, H, W\) frames"):
        frames_to_uint8(torch.zeros(3, 8, 8))
