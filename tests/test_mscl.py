"""MSCL: flow rotation (FRA), motion differential sampling (MDS), MoCo machinery, the objective and its recipes."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import zoo
from zoo.data import create_dataset, video_collate
from zoo.flow import FlowRecord, rotate_flow
from zoo.flow.motion import mds_clip_scores, mds_keep
from zoo.methods import create_objective, list_objectives
from zoo.methods.moco import MomentumQueue, cosine_momentum, momentum_update
from zoo.methods.mscl import FRA_ANGLES, MDSSampler, fra_angles, normalize_flow
from zoo.train import Trainer, load_recipe, load_training_checkpoint

torch.set_num_threads(2)
RECIPES = Path(__file__).resolve().parent.parent / "recipes"


def _record(mds: np.ndarray, num_frames: int, gap: int = 1) -> FlowRecord:
    return FlowRecord("video.mp4", num_frames, gap, 1, 8, 8, 20.0, np.asarray(mds, dtype=np.float64),
                      np.zeros(len(mds)), Path("unused.npy"))


def _views(batch: int = 2, frames: int = 8, size: int = 16, seed: int = 0) -> torch.Tensor:
    """Query and key views of ``batch`` videos, (B * 2, 5, T, S, S): RGB noise and a smooth flow."""
    g = torch.Generator().manual_seed(seed)
    rgb = torch.randn(batch * 2, 3, frames, size, size, generator=g)
    flow = torch.nn.functional.interpolate(torch.randn(batch * 2, 2, frames, 4, 4, generator=g),
                                           size=(frames, size, size), mode="trilinear") * 3
    return torch.cat([rgb, flow], dim=1)


def _objective(**kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_objective("mscl", zoo.create_model("r3d_18", num_classes=8), queue_size=16, **kwargs)


# ---------------------------------------------------------------------------------------------- FRA


def test_objectives_are_registered():
    assert {"hcml", "mscl", "mcl"} <= set(list_objectives())


def test_fra_rotates_flow_vectors_by_the_angle_and_keeps_their_length():
    flow = torch.randn(len(FRA_ANGLES), 2, 3, 5, 5)
    angles = torch.tensor(FRA_ANGLES)
    rotated = rotate_flow(flow, angles)
    torch.testing.assert_close(rotated.norm(dim=1), flow.norm(dim=1))
    turned = torch.atan2(rotated[:, 1], rotated[:, 0]) - torch.atan2(flow[:, 1], flow[:, 0])
    turned = torch.remainder(turned, 2 * math.pi)
    torch.testing.assert_close(turned, angles.view(-1, 1, 1, 1).expand_as(turned), atol=1e-4, rtol=0)
    # u to the right turned by 90 degrees points down (+v), the image convention.
    torch.testing.assert_close(rotate_flow(torch.tensor([[1.0, 0.0]]), math.pi / 2), torch.tensor([[0.0, 1.0]]),
                               atol=1e-6, rtol=0)


def test_fra_draws_the_official_angles_one_per_sample():
    assert [round(math.degrees(a)) for a in FRA_ANGLES] == [36, 72, 108, 144, 180, 216, 252, 288]
    torch.manual_seed(0)
    drawn = fra_angles(4000)
    assert drawn.shape == (4000,)
    assert set(np.round(np.degrees(drawn.numpy())).astype(int)) == {36, 72, 108, 144, 180, 216, 252, 288}


def test_normalize_flow_divides_each_frame_by_its_longest_vector():
    flow = torch.randn(2, 2, 3, 6, 6) * torch.tensor([1.0, 5.0, 0.1]).view(1, 1, 3, 1, 1)
    lengths = normalize_flow(flow).norm(dim=1).amax(dim=(2, 3))
    torch.testing.assert_close(lengths, torch.ones(2, 3), atol=1e-4, rtol=0)


# ---------------------------------------------------------------------------------------------- MDS


def test_mds_keeps_exactly_the_clips_above_the_median():
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 50, 51):
        scores = rng.random(n)
        kept = mds_keep(scores)
        assert kept.tolist() == [i for i in range(n) if scores[i] > np.median(scores)]
    assert mds_keep(np.ones(10)).tolist() == []  # ties with the median are not above it
    assert mds_keep(np.array([0.0, 0.0, 1.0, 5.0])).tolist() == [2, 3]


def test_mds_sampler_draws_query_and_key_among_kept_starts():
    # Flow frames whose score is high only in two places: clip scores (8 frames, 4 apart) are above the
    # median for the starts that reach them.
    mds = np.zeros(120)
    mds[[40, 41, 100]] = 1.0
    record = _record(mds, num_frames=240, gap=2)
    kept = set(mds_keep(mds_clip_scores(mds, 8, 4)).tolist())
    assert kept and len(kept) < 60
    sampler = MDSSampler(num_frames=8, frame_stride=4)
    torch.manual_seed(0)
    for _ in range(50):
        query, key = sampler.starts(record)
        assert query in kept and key in kept
    frames = sampler(record)
    assert [f.shape for f in frames] == [(8,), (8,)]
    assert all(np.all(np.diff(f) % 240 == 4) for f in frames) and all(f[0] % 2 == 0 for f in frames)
    # No motion anywhere: nothing is above the median; the query takes the first flow frame.
    flat = _record(np.zeros(30), num_frames=30)
    assert sampler.starts(flat)[0] == 0


# ---------------------------------------------------------------------------------------------- MoCo machinery


def test_cosine_momentum_rises_from_base_to_one():
    assert cosine_momentum(0, 100) == pytest.approx(0.994)
    assert cosine_momentum(50, 100) == pytest.approx(0.997)
    assert cosine_momentum(100, 100) == pytest.approx(1.0)
    assert cosine_momentum(150, 100) == pytest.approx(1.0)


def test_momentum_update_and_queue():
    online, target = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = target.weight.detach().clone()
    momentum_update(online, target, 0.9)
    torch.testing.assert_close(target.weight, 0.9 * before + 0.1 * online.weight.detach())
    queue = MomentumQueue(5, 4)
    keys = torch.randn(7, 4)
    queue.push(keys[:3])
    queue.push(keys[3:])  # wraps around: slots 3, 4, 0, 1
    expected = torch.nn.functional.normalize(keys, dim=1)
    torch.testing.assert_close(queue.keys, expected[[5, 6, 2, 3, 4]])
    assert int(queue.pointer) == 2
    assert queue.with_batch(keys[:2]).shape == (7, 4)


# ---------------------------------------------------------------------------------------------- the objective


def test_key_encoders_follow_the_cosine_momentum():
    objective = _objective()
    with torch.no_grad():
        for p in objective.model.parameters():
            p.add_(1.0)
    key_before = next(objective.rgb_key.parameters()).clone()
    online = next(objective.model.parameters()).detach().clone()
    objective.after_step(step=0, total_steps=10, steps_per_epoch=5)
    torch.testing.assert_close(next(objective.rgb_key.parameters()), 0.994 * key_before + 0.006 * online)


@pytest.fixture(scope="module")
def overfit():
    """Four SGD steps on one tiny batch. The queues are filled with this batch's keys once (a forward
    without grad), then held fixed (reloaded before every step), so that every step optimises the
    same loss; FRA draws the same angles every step."""
    objective = _objective()
    objective.train()
    optimizer = torch.optim.SGD(objective.trainable_parameters(), lr=0.01, momentum=0.9)
    clips = _views()
    with torch.no_grad():
        objective(clips)
        key_flow = normalize_flow(clips.view(2, 2, 5, 8, 16, 16)[:, 1, 3:])
        expected_keys = objective._key(objective.flow_key, objective.flow_key_proj, key_flow)
    queues = {k: v.clone() for k, v in objective.state_dict().items() if "queue." in k}
    outputs = []
    for step in range(4):
        objective.load_state_dict(queues, strict=False)
        torch.manual_seed(1)
        out = objective(clips)
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
        objective.after_step(step + 1, 4, 4)
        outputs.append({k: v.detach() for k, v in out.items()})
    return {"objective": objective, "clips": clips, "queues": queues, "expected_keys": expected_keys,
            "outputs": outputs}


def test_objective_terms_keys_and_queues(overfit):
    objective, out = overfit["objective"], overfit["outputs"][0]
    assert sum(p.numel() for p in objective.trainable_parameters()) < sum(
        p.numel() for p in objective.parameters())  # key encoders are not trained
    assert not any(p.requires_grad for p in objective.rgb_key.parameters())
    terms = {"loss_rgb", "loss_flow", "loss_flow_rotated", "loss_cross", "loss_cross_rotated", "loss_lmcl"}
    diagnostics = {"loss_rgb_flow", "loss_flow_rgb", "loss_rgb_flow_rotated", "loss_flow_rotated_rgb",
                   "logit_pos_rgb", "logit_neg_rgb", "logit_pos_flow", "logit_neg_flow", "logit_pos_cross",
                   "logit_neg_cross", "queue_fill_rgb", "queue_fill_flow"}  # issue 20: each term, logits, fill
    assert set(out) == terms | diagnostics | {"loss", "acc_rgb", "acc_cross", "acc_lmcl"}
    torch.testing.assert_close(out["loss_cross"], out["loss_rgb_flow"] + out["loss_flow_rgb"])
    torch.testing.assert_close(out["loss_cross_rotated"], out["loss_rgb_flow_rotated"] + out["loss_flow_rotated_rgb"])
    assert all(torch.isfinite(v) for v in out.values())
    torch.testing.assert_close(out["loss"], sum(out[k] for k in terms))
    assert objective.flow_model.stem[0].weight.grad is not None and objective.rgb_local[0].weight.grad is not None
    # Only the original flow's keys are queued (rotated keys never are): after the first forward the flow
    # queue's new rows are the key encoder's embeddings of the normalised, unrotated key flow.
    queues = overfit["queues"]
    assert int(queues["rgb_queue.pointer"]) == 2 and int(queues["flow_queue.pointer"]) == 2
    torch.testing.assert_close(queues["flow_queue.keys"][:2], overfit["expected_keys"], atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match=r"MSCL expects its views \(B \* 2, 5, T, H, W\)"):
        objective(overfit["clips"][:3])


def test_loss_weights_weigh_the_terms_and_a_zero_weight_trains_nothing():
    torch.manual_seed(0)
    objective = _objective(loss_weights={"cross": 0.0, "cross_rotated": 0.0, "lmcl": 2.5})
    assert "cross_weight=0" in repr(objective) and "lmcl_weight=2.5" in repr(objective)
    clips = _views()
    torch.manual_seed(1)
    out = objective(clips)
    expected = out["loss_rgb"] + out["loss_flow"] + out["loss_flow_rotated"] + 2.5 * out["loss_lmcl"]
    torch.testing.assert_close(out["loss"], expected)
    assert out["loss_cross"] > 0  # still computed and logged
    # The RGB projection feeds the RGB term and the RGB-query cross terms only (LMCL reads the backbone's map,
    # keys carry no gradient): with the cross terms at weight 0 its gradient is the RGB term's alone.
    objective.zero_grad()
    out["loss"].backward(retain_graph=True)
    weighted = objective.rgb_proj[0].weight.grad.clone()
    objective.zero_grad()
    out["loss_rgb"].backward()
    torch.testing.assert_close(objective.rgb_proj[0].weight.grad, weighted)
    assert weighted.abs().sum() > 0


@pytest.mark.parametrize("weights, match", [({"cros": 0.0}, "unknown MSCL loss terms"),
                                            ({"rgb": -1.0}, "finite and >= 0"),
                                            ({"flow": float("nan")}, "finite and >= 0")])
def test_loss_weights_refuse_unknown_terms_and_bad_values(weights, match):
    with pytest.raises(ValueError, match=match):
        _objective(loss_weights=weights)


def test_loss_falls_when_a_tiny_batch_is_overfit(overfit):
    losses = [out["loss"].item() for out in overfit["outputs"]]
    assert losses[-1] < 0.8 * losses[0], losses


# ---------------------------------------------------------------------------------------------- recipes


def test_recipes_hold_the_official_settings():
    k400 = load_recipe(RECIPES / "mscl_r3d18_k400.yaml")
    cfg = k400.stages[0].objective_cfg
    assert (k400.model.name, k400.data.num_frames, k400.data.frame_stride, k400.data.input_size) == ("r3d_18", 8, 16,
                                                                                                     112)
    assert (cfg["flow_model"], cfg["queue_size"], cfg["temperature"], cfg["momentum"]) == ("r2d_18", 65536, 0.07, 0.994)
    assert (cfg["flow"]["provider"], cfg["flow"]["gap"], cfg["flow"]["adjacent"]) == ("raft", 2, 8)
    assert (k400.optim.lr, k400.optim.base_batch_size, k400.optim.weight_decay, k400.optim.clip_grad) == (
        0.02, 128, 1e-4, 40.0)
    assert (k400.stages[0].epochs, k400.stages[0].warmup_epochs) == (400, 5)
    custom = load_recipe(RECIPES / "mscl_r3d18_custom.yaml")
    assert custom.data.kind == "folder" and custom.stages[0].objective_cfg["flow"]["provider"] == "farneback"
    assert custom.optim == k400.optim and custom.data.num_frames == 8


def test_recipe_trains_two_steps_on_generated_data(tmp_path):
    overrides = [
        f"output_dir={tmp_path / 'run'}", "progress=false", "max_epochs=1", "max_steps_per_epoch=2", "threads=2",
        "data.kind=moving_digits", "data.root=null", "data.reader=pyav",
        "data.options={frame_size: 32, videos_per_class: 1, eval_videos_per_class: 1, frames_per_video: 16, "
        "progress: false}",
        "data.num_frames=8", "data.frame_stride=1", "data.input_size=16", "data.train_short_side=[32, 32]",
        "data.test_short_side=32", "data.batch_size=2", "data.num_workers=0", "eval.knn=[]",
        "stages.0.objective_cfg.queue_size=8", "stages.0.objective_cfg.flow.provider=farneback",
        "stages.0.objective_cfg.flow.provider_kwargs={}", "stages.0.objective_cfg.flow.progress=false",
    ]
    recipe = load_recipe(RECIPES / "mscl_r3d18_k400.yaml", overrides)
    result = Trainer(recipe).run()
    ckpt = load_training_checkpoint(result.checkpoint)
    assert ckpt["step"] == 2 and ckpt["finished"] and result.metrics["videos"] == 8
    ckpt = load_training_checkpoint(result.run_dir / "stage_mscl.pt")  # the stage's end: with the objective's state
    assert {"rgb_queue.keys", "flow_queue.pointer", "flow_model.stem.0.weight"} <= set(ckpt["objective"])
    assert int(ckpt["objective"]["rgb_queue.pointer"]) == 4  # two steps of two keys


def test_wrapped_training_set_gives_query_and_key_views(tmp_path):
    digits = create_dataset("moving_digits", split="train", num_frames=8, frame_stride=2, videos_per_class=1,
                            eval_videos_per_class=1, frame_size=32, frames_per_video=16, progress=False, reader="pyav")
    objective = _objective(crop_size=24, flow={"root": str(tmp_path / "flow"), "progress": False})
    views = objective.wrap_train_set(digits)
    torch.manual_seed(0)
    batch = video_collate([views[0], views[5]])
    assert batch["video"].shape == (4, 5, 8, 24, 24)
    rgb = batch["video"][:, :3]
    assert rgb.mean().abs() < 3 and batch["video"][:, 3:].abs().max() < 20
    with pytest.raises(ValueError, match="unknown flow settings"):
        _objective(flow={"providr": "raft"})
