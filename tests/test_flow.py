"""zoo.flow: providers, quantisation, motion maps and scores, the flow cache and the dataset of views."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.models.optical_flow import raft_small
from torchvision.transforms.v2 import functional as TF

import zoo
from zoo.cli import main
from zoo.data import VideoSample, create_dataset, open_video, video_collate, write_video
from zoo.data.moving_digits import render_video
from zoo.flow import (
    FlowCache,
    FlowViewDataset,
    HCMLFlow,
    RAFTFlow,
    TVL1Flow,
    create_flow_provider,
    crop_with_flow,
    dequantize_flow,
    flow_starts,
    list_flow_providers,
    mds_clip_scores,
    mds_frame_scores,
    motion_grid,
    motion_map,
    motion_maps,
    motion_target,
    quantize_flow,
    transform_settings,
    tvl1_available,
)
from zoo.flow.cache import flow_cache_from_cfg
from zoo.methods.mscl import MSCLObjective
from zoo.train import load_recipe, recipe_dataset

torch.set_num_threads(2)
RECIPES = Path(__file__).resolve().parent.parent / "recipes"


def _texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth random RGB texture, uint8 (H, W, 3): enough structure for flow to lock on."""
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.random((1, 3, height // 4, width // 4))).float()
    image = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)
    return (image[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255).astype(np.uint8)


def _shifted_pair(dx: int, dy: int, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """A texture and the same texture moved by (dx, dy) pixels: uint8 (1, H, W, 3) each."""
    first = _texture(size, size)
    second = np.roll(first, shift=(dy, dx), axis=(0, 1))
    return torch.from_numpy(first)[None], torch.from_numpy(np.ascontiguousarray(second))[None]


@pytest.fixture(scope="module")
def digits():
    """A tiny generated Moving-Digits training split: 8 videos of 16 frames at 32 pixels."""
    return create_dataset("moving_digits", split="train", num_frames=8, frame_stride=1, videos_per_class=1,
                          eval_videos_per_class=1, frame_size=32, frames_per_video=16, progress=False, reader="pyav")


# ---------------------------------------------------------------------------------------------- providers


def test_providers_are_listed():
    assert list_flow_providers() == ["farneback", "hcml", "raft", "tvl1"]
    with pytest.raises(ValueError, match="unknown flow provider 'flownet'.*farneback"):
        create_flow_provider("flownet")


def test_farneback_recovers_a_translation():
    first, second = _shifted_pair(dx=2, dy=-1)
    flow = create_flow_provider("farneback")(first, second)
    assert flow.shape == (1, 2, 64, 64) and flow.dtype == torch.float32
    inner = flow[0, :, 12:-12, 12:-12]
    assert inner[0].median().item() == pytest.approx(2.0, abs=0.25)
    assert inner[1].median().item() == pytest.approx(-1.0, abs=0.25)


@pytest.mark.skipif(not tvl1_available(), reason="OpenCV contrib (cv2.optflow) is not installed")
def test_tvl1_recovers_a_translation():
    first, second = _shifted_pair(dx=-2, dy=1)
    flow = create_flow_provider("tvl1")(first, second)
    inner = flow[0, :, 12:-12, 12:-12]
    assert inner[0].median().item() == pytest.approx(-2.0, abs=0.25)
    assert inner[1].median().item() == pytest.approx(1.0, abs=0.25)


@pytest.mark.skipif(tvl1_available(), reason="OpenCV contrib is installed")
def test_tvl1_without_contrib_says_what_to_install():
    with pytest.raises(ImportError, match="opencv-contrib-python-headless"):
        TVL1Flow()


def test_raft_runs_from_a_local_file(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "raft_small.pth"
    torch.save(raft_small(weights=None).state_dict(), path)
    provider = create_flow_provider("raft", weights=path, variant="raft_small", num_flow_updates=2)
    assert isinstance(provider, RAFTFlow)
    frames = torch.randint(0, 256, (3, 40, 48, 3), dtype=torch.uint8)  # under RAFT's 128 pixels: resized inside
    flow = provider(frames[:2], frames[1:])
    assert flow.shape == (2, 2, 40, 48) and torch.isfinite(flow).all()
    assert provider.config() == {"provider": "raft", "variant": "raft_small", "weights": str(path),
                                 "num_flow_updates": 2}
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        RAFTFlow(tmp_path / "missing.pth")


def test_hcml_provider_uses_the_flow_head():
    torch.manual_seed(0)
    model = zoo.create_model("hcml_r2d_18")
    provider = HCMLFlow(model)
    assert provider.level == 1
    frames = torch.randint(0, 256, (3, 64, 64, 3), dtype=torch.uint8)
    flow = provider(frames[:2], frames[1:])
    assert flow.shape == (2, 2, 64, 64) and torch.isfinite(flow).all()
    # The same as running the model on the clip [first, second] and upsampling its level-1 flow.
    from zoo.adapters import capture_motion, upsample_flow

    clip = torch.stack([frames[0], frames[1]])[None].permute(0, 4, 1, 2, 3).float() / 255
    mean, std = torch.tensor(provider.mean).view(1, 3, 1, 1, 1), torch.tensor(provider.std).view(1, 3, 1, 1, 1)
    with torch.no_grad(), capture_motion(model, stop_after_level=1) as motion:
        model((clip - mean) / std)
    with torch.no_grad():
        expected = upsample_flow(model.hcml["flow"]["1"](motion[1])[:, :, 0], (64, 64))
    torch.testing.assert_close(flow[:1], expected, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="flow head"):
        HCMLFlow(zoo.create_model("r2d_18"))


def test_providers_refuse_bad_frames():
    provider = create_flow_provider("farneback")
    frames = torch.zeros(2, 32, 32, 3, dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"uint8 tensors of shape \(N, H, W, 3\)"):
        provider(frames.float(), frames.float())
    with pytest.raises(ValueError, match="differ in shape"):
        provider(frames, frames[:1])


# ---------------------------------------------------------------------------------------------- quantisation, maps


def test_quantisation_round_trip_within_half_a_step():
    flow = torch.linspace(-25, 25, 1001).view(1, 1, 1, -1).expand(1, 2, 1, -1)
    q = quantize_flow(flow)
    assert q.dtype == torch.uint8 and int(q.min()) == 0 and int(q.max()) == 255
    back = dequantize_flow(q)
    assert (back - flow.clamp(-20, 20)).abs().max() <= 20 / 255 + 1e-5


def test_motion_map_marks_motion_boundaries():
    flow = torch.zeros(1, 2, 56, 56)
    flow[0, 0, 16:40, 16:40] = 3.0  # a square moving right
    boundaries = motion_map(flow)
    assert boundaries[20:36, 20:36].abs().max() == 0  # inside: no boundary
    assert boundaries[16:40, 15].min() > 0 and boundaries[16:40, 40].min() > 0  # its left and right edges
    assert boundaries[:2].abs().max() == 0  # the border (8 at 224 -> 2 at 56) is zeroed
    grid = motion_grid(flow.expand(3, -1, -1, -1), (7, 7))
    assert grid.shape == (7, 7) and grid[0, 0] == 0 and grid[2, 2] > 0
    clip = torch.zeros(2, 2, 8, 56, 56)
    clip[1, :, 4:] = flow[0, :, None]  # second video: moves only in its last two chunks
    target = motion_target(clip, slots=4, grid=(7, 7))
    assert target.shape == (2, 4, 7, 7)
    assert target[0].abs().max() == 0 and target[1, :2].abs().max() == 0 and target[1, 2:].min() >= 0
    assert target[1, 2].sum() > 0
    chunk = motion_map(clip[1, :, 4:6].transpose(0, 1))  # slot 2 holds frames 4 and 5
    torch.testing.assert_close(target[1, 2], torch.nn.functional.adaptive_avg_pool2d(chunk[None, None], (7, 7))[0, 0])
    frames = torch.randn(3, 2, 20, 20)
    torch.testing.assert_close(motion_maps(frames), torch.stack([motion_map(f[None]) for f in frames]))


def test_mds_scores_measure_changes_of_the_flow():
    still = torch.zeros(1, 2, 32, 32)
    still[0, 0, 8:24, 8:24] = 2.0
    moved = torch.zeros(1, 2, 32, 32)
    moved[0, 1, 8:24, 8:24] = -2.0  # the same region now moves up
    scores = mds_frame_scores(torch.cat([still, still, moved, moved]))
    assert scores.shape == (4,)
    assert scores[0] == 0 and scores[1] > 0 and scores[2] == 0 and scores[3] == 0
    frame = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    clip = mds_clip_scores(frame, clip_len=2, stride=3)
    np.testing.assert_allclose(clip, [(1 + 4) / 2, (2 + 5) / 2, (3 + 6) / 2, 4 / 2, 5 / 2, 6 / 2])


# ---------------------------------------------------------------------------------------------- cache


def test_flow_starts():
    np.testing.assert_array_equal(flow_starts(20, gap=2, adjacent=8), [0, 2, 4, 6, 8, 10])
    np.testing.assert_array_equal(flow_starts(5, gap=1, adjacent=1), [0, 1, 2, 3])
    np.testing.assert_array_equal(flow_starts(3, gap=2, adjacent=8), [0])  # short: first frame to last


def test_cache_builds_once_resumes_and_serves(digits, tmp_path):
    cache = FlowCache(tmp_path / "flow", provider="farneback", gap=2, adjacent=3, reader="pyav")
    report = cache.build(digits, progress=False)
    assert report == {"videos": 8, "computed": 8, "cached": 0, "failed": {}}
    sample = digits.samples[0]
    record = cache.record(sample)
    assert record.num_frames == 16 and record.num_flows == len(flow_starts(16, 2, 3)) == 7
    assert (record.height, record.width) == (32, 32) and len(record.mds) == len(record.motion) == 7
    flow = record.load([0, 6])
    assert flow.shape == (2, 2, 32, 32) and flow.abs().max() <= 20
    np.testing.assert_array_equal(record.flow_index([0, 1, 2, 5, 15]), [0, 1, 1, 3, 6])  # nearest flow frame
    # The stored flow is the provider's, quantised.
    with open_video(sample.path, "pyav") as video:
        frames = video.get_frames([0, 3])
    direct = create_flow_provider("farneback")(frames[:1], frames[1:])
    torch.testing.assert_close(record.load([0]), dequantize_flow(quantize_flow(direct)), atol=20 / 255 + 1e-4,
                               rtol=0)
    # A second build finds everything; a video whose index is missing (stopped mid-write) is recomputed.
    assert cache.build(digits, progress=False)["cached"] == 8
    data_file = record.file
    data_file.with_suffix(".json").unlink()
    fresh = FlowCache(tmp_path / "flow", provider="farneback", gap=2, adjacent=3, reader="pyav")
    assert fresh.record(sample) is None
    assert fresh.build(digits, progress=False)["computed"] == 1 and fresh.record(sample) is not None
    assert json.loads((tmp_path / "flow" / "cache.json").read_text())["adjacent"] == 3
    with pytest.raises(ValueError, match="another configuration.*adjacent"):
        FlowCache(tmp_path / "flow", provider="farneback", gap=2, adjacent=8)


def test_cache_reports_unreadable_videos(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video")
    cache = FlowCache(tmp_path / "flow", provider="farneback")
    report = cache.build([VideoSample(str(bad), 0)], progress=False)
    assert report["computed"] == 0 and str(bad) in report["failed"]
    assert cache.record(VideoSample(str(bad), 0)) is None


# ---------------------------------------------------------------------------------------------- views


def test_crop_with_flow_scales_and_flips_vectors():
    frames = torch.arange(32 * 48, dtype=torch.float32).view(1, 32, 48, 1).expand(2, -1, -1, 3)
    frames = (frames / frames.max() * 255).round().to(torch.uint8).contiguous()
    flow = torch.zeros(2, 2, 16, 24)
    flow[:, 0], flow[:, 1] = 1.0, 0.5  # pixels of the 16 x 24 map
    box = (8.0, 12.0, 16.0, 24.0)  # top, left, h, w in frame pixels: half the frame, 12 x 8 map pixels
    video, cropped = crop_with_flow(frames, flow, box, size=32)
    assert video.shape == (2, 3, 32, 32) and cropped.shape == (2, 2, 32, 32)
    torch.testing.assert_close(video, TF.resized_crop(frames.permute(0, 3, 1, 2), 8, 12, 16, 24, [32, 32],
                                                      antialias=True))
    torch.testing.assert_close(cropped[:, 0], torch.full((2, 32, 32), 32 / 12))  # u: 12 map pixels -> 32
    torch.testing.assert_close(cropped[:, 1], torch.full((2, 32, 32), 0.5 * 32 / 8))  # v: 8 map pixels -> 32
    flipped, flipped_flow = crop_with_flow(frames, flow, box, size=32, hflip=True)
    torch.testing.assert_close(flipped, video.flip(-1))
    torch.testing.assert_close(flipped_flow[:, 0], -cropped[:, 0])
    torch.testing.assert_close(flipped_flow[:, 1], cropped[:, 1])


def test_view_dataset_serves_frames_with_their_flow(digits, tmp_path):
    cache = FlowCache(tmp_path / "flow", provider="farneback", reader="pyav")
    cache.build(digits, progress=False)
    assert transform_settings(digits.transform) == {"hflip": False, "size": 32, "mean": (0.485, 0.456, 0.406),
                                                    "std": (0.229, 0.224, 0.225)}

    def sample_views(record):
        return [np.arange(4), np.arange(4) + 2]

    def make_view(frames, flow, view):
        assert frames.shape == (4, 32, 32, 3) and flow.shape == (4, 2, 32, 32)
        rgb = frames.permute(3, 0, 1, 2).float() / 255
        return torch.cat([rgb, flow.transpose(0, 1)])

    views = FlowViewDataset(digits, cache, sample_views, make_view)
    item = views[3]
    assert item["video"].shape == (2, 5, 4, 32, 32) and item["label"] == digits.samples[3].label
    record = cache.record(digits.samples[3])
    torch.testing.assert_close(item["video"][1, 3:], record.load([2, 3, 4, 5]).transpose(0, 1))
    torch.testing.assert_close(item["video"][0, 3:, 2:], item["video"][1, 3:, :2])  # frames 2, 3 in both views
    batch = video_collate([views[0], views[1]])
    assert batch["video"].shape == (4, 5, 4, 32, 32) and batch["num_views"] == 2
    # A video without flow is replaced (training: by a random other video) and reported.
    record.file.with_suffix(".json").unlink()
    cache._records.clear()
    torch.manual_seed(0)
    replaced = views[3]
    assert replaced["index"] != 3 and digits.samples[3].path in digits.bad_files


# ---------------------------------------------------------------------------------------------- zoo flow


def test_zoo_flow_builds_the_cache_a_recipe_trains_with(tmp_path, capsys):
    """`zoo flow RECIPE`: the cache of the recipe's MSCL stage, from a tiny generated folder dataset."""
    root, flow_root = tmp_path / "videos", tmp_path / "flow"
    for split, per_class in (("train", 2), ("val", 1)):
        for label in ("left", "right"):
            for i in range(per_class):
                clip = render_video(label, np.random.default_rng([i, len(label)]), 32, 12)
                write_video(root / split / label / f"v{i}.mp4", clip, fps=8.0)
    recipe = RECIPES / "mscl_r3d18_custom.yaml"
    flow = "stages.0.objective_cfg.flow"
    args = ["flow", str(recipe), f"data.root={root}", f"{flow}.provider=farneback", f"{flow}.root={flow_root}",
            f"{flow}.short_side=32"]
    assert main([*args, "progress=false"]) == 0
    out = capsys.readouterr().out
    assert "'mscl' (mscl): 4 videos" in out and "4 computed, 0 already cached, 0 unreadable" in out
    assert len(list(flow_root.glob("*/*.npy"))) == 4
    assert json.loads((flow_root / "cache.json").read_text())["adjacent"] == 8  # MSCL's gap 2, adjacent 8
    # Resumable: a video whose index is missing (a build stopped mid-write) is the only one computed again,
    # under a progress bar.
    next(flow_root.glob("*/*.json")).unlink()
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "1 computed, 3 already cached" in captured.out and "optical flow (farneback)" in captured.err
    # Training finds all of it: the objective's cache of the same settings is complete.
    loaded = load_recipe(recipe, args[2:])
    cache = flow_cache_from_cfg(loaded.stages[0].objective_cfg["flow"], reader=loaded.data.reader,
                                **MSCLObjective.flow_defaults)
    assert cache.root == flow_root
    assert cache.build(recipe_dataset(loaded, "train", train=True), progress=False)["cached"] == 4

    # One-line errors: a missing data folder, an unknown provider, a recipe without flow.
    for extra, message in (([f"data.root={tmp_path / 'missing'}"], "root folder .*missing does not exist"),
                           ([f"{flow}.provider=farneback2"], "unknown flow provider 'farneback2'")):
        assert main([*args, *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert re.search(message, err) and err.startswith("zoo flow: error:") and "\n" not in err, err
    assert main(["flow", str(RECIPES / "finetune.yaml")]) == 2
    assert "no stage whose objective reads optical flow" in capsys.readouterr().err
    if not tvl1_available():  # an optional dependency the recipe needs: one line, also from `zoo train`
        for command in ("flow", "train"):
            tvl1 = [f"{flow}.provider=tvl1", f"{flow}.root={tmp_path / 'tvl1'}", f"output_dir={tmp_path / 'run'}",
                    "data.num_workers=0"]
            assert main([command, *args[1:], *tvl1]) == 2
            err = capsys.readouterr().err.strip().splitlines()[-1]
            assert err.startswith(f"zoo {command}: error:") and "opencv-contrib-python-headless" in err, err
