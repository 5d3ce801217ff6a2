"""MCL: the tubelet crop's overlap rules, motion-focused sampling, the motion alignment loss, the order loss,
shuffled BN, the objective, recipes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import zoo
from zoo.data import create_dataset, video_collate
from zoo.flow import FlowRecord, ViewFrames
from zoo.methods import create_objective
from zoo.methods.mcl import (
    MotionFocusedSampler,
    box_coverage,
    gradient_map,
    mal_loss,
    motion_box,
    overlap_threshold,
    tubelet_crop,
)
from zoo.train import Trainer, load_recipe, load_training_checkpoint

torch.set_num_threads(2)
RECIPES = Path(__file__).resolve().parent.parent / "recipes"


def _views(batch: int = 2, frames: int = 8, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Anchor (twice) and two more clips of ``batch`` videos, (B * 4, 5, T, S, S); the flow moves a square."""
    g = torch.Generator().manual_seed(seed)
    clips = torch.randn(batch * 4, 5, frames, size, size, generator=g)
    clips[:, 3:] = 0
    clips[:, 3, :, size // 4:size // 2, size // 4:size // 2] = 2.0
    return clips


def _order(batch: int = 2) -> torch.Tensor:
    """Order labels of ``batch`` videos (1: the anchor comes first), alternating."""
    return torch.arange(batch) % 2 == 0


def _objective(**kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_objective("mcl", zoo.create_model("r3d_18", num_classes=8), queue_size=8, **kwargs)


# ---------------------------------------------------------------------------------------------- tubelet crop


def test_overlap_thresholds_are_the_official_ones():
    assert [overlap_threshold(c) for c in (1, 4, 5, 8, 9, 12, 13, 49)] == [0.9, 0.9, 0.8, 0.8, 0.7, 0.7, None, None]


def test_motion_box_spans_the_most_moving_tenth_of_the_cells():
    grid = torch.zeros(7, 7)
    grid[1, 2], grid[1, 3], grid[2, 3], grid[2, 2], grid[6, 6] = 5.0, 4.0, 3.0, 2.0, 1.0
    assert motion_box(grid) == (1, 3, 2, 4)  # floor(49 * 0.1) = 4 cells: rows 1-2, columns 2-3
    assert motion_box(torch.zeros(7, 7)) is None


def test_tubelet_crops_overlap_the_motion_box_as_the_thresholds_say():
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    seen = set()
    for trial in range(300):
        height, width = (int(rng.integers(48, 129)), int(rng.integers(48, 129)))
        grid = torch.from_numpy(rng.random((7, 7)) * 0.1).float()
        rows = cols = 1
        while rows * cols < 4:  # a box of at least the 4 top cells
            r0, c0 = int(rng.integers(0, 6)), int(rng.integers(0, 6))
            rows, cols = int(rng.integers(1, 8 - r0)), int(rng.integers(1, 8 - c0))
        grid[r0:r0 + rows, c0:c0 + cols] = 5.0
        # the most moving cells at the ends of the box: the top 4 span it
        for r, c in ((r0, c0), (r0 + rows - 1, c0 + cols - 1), (r0, c0 + cols - 1), (r0 + rows - 1, c0)):
            grid[r, c] = 10.0 + rng.random()
        cells = motion_box(grid)
        assert cells == (r0, r0 + rows, c0, c0 + cols)
        threshold = overlap_threshold(rows * cols)
        crop = tubelet_crop(height, width, grid)
        top, left, h, w = crop
        assert 0 <= top and 0 <= left and top + h <= height + 1e-6 and left + w <= width + 1e-6 and h > 0 and w > 0
        box = (r0 * height / 7, c0 * width / 7, rows * height / 7, cols * width / 7)
        if threshold is not None:
            assert box_coverage(box, crop) >= threshold - 1e-6, (trial, rows, cols, crop, box)
            seen.add(threshold)
    assert seen == {0.9, 0.8, 0.7}


def test_box_coverage():
    assert box_coverage((10, 10, 20, 20), (0, 0, 100, 100)) == 1.0
    assert box_coverage((10, 10, 20, 20), (20, 0, 100, 100)) == 0.5
    assert box_coverage((10, 10, 20, 20), (20, 20, 100, 100)) == 0.25
    assert box_coverage((10, 10, 20, 20), (40, 40, 10, 10)) == 0.0


# ---------------------------------------------------------------------------------------------- temporal sampling


def test_motion_focused_sampling_takes_moving_windows_from_the_two_halves():
    motion = np.zeros(100)
    motion[10:20] = 1.0  # the first half moves at frames 10-19, the second at 70-79
    motion[70:80] = 1.0
    record = FlowRecord("v.mp4", 100, 1, 1, 8, 8, 20.0, np.zeros(100), motion, Path("unused.npy"))
    sampler = MotionFocusedSampler(num_frames=4, frame_stride=2, focus_p=1.0)
    scores = sampler.window_scores(record, 8)
    assert scores.shape == (100,) and scores[12] == 1.0 and scores[40] == 0.0
    first_top = set(np.argsort(-scores[:43], kind="stable")[:int(43 * 0.5) + 1].tolist())
    second = np.arange(50, 93)
    second_top = set(second[np.argsort(-scores[second], kind="stable")[:int(43 * 0.5) + 1]].tolist())
    torch.manual_seed(0)
    halves = set()
    for _ in range(40):
        (anchor, *others), anchor_first = sampler.draw(record)
        if anchor < 50:
            assert anchor in first_top and all(o in second_top for o in others)
        else:
            assert anchor in second_top and all(o in first_top for o in others)
        assert anchor_first == (anchor < 50) and others == sorted(others)  # the order label: the anchor's half first
        halves.add(anchor < 50)
    assert halves == {True, False}
    views = sampler(record)
    assert isinstance(views, ViewFrames) and views.target in (0, 1)
    assert len(views) == 4 and np.array_equal(views[0], views[1]) and all(v.shape == (4,) for v in views)
    assert views.target == int(views[0][0] < views[2][0])
    short = FlowRecord("v.mp4", 10, 1, 1, 8, 8, 20.0, np.zeros(10), np.zeros(10), Path("unused.npy"))
    targets = set()
    for _ in range(20):  # too short for halves: random, clamped to the last frame; the anchor first or last
        views = sampler(short)
        assert all(v.max() <= 9 for v in views)
        starts = [int(v[0]) for v in views[1:]]
        assert starts[0] == (min(starts) if views.target else max(starts)) and starts[1] <= starts[2]
        targets.add(views.target)
    assert targets == {0, 1}


# ---------------------------------------------------------------------------------------------- MAL


def test_mal_loss_is_the_official_formula():
    torch.manual_seed(0)
    predicted, target = torch.rand(3, 4, 2, 3), torch.rand(3, 4, 2, 3)
    out = mal_loss(predicted, target)
    p, t = predicted.reshape(3, 4, -1), target.reshape(3, 4, -1)
    attention = torch.softmax(t.sum(-1), dim=1)
    cos_st = (F.cosine_similarity(p, t, dim=-1) * attention).sum(-1)
    cos_t = F.cosine_similarity(p.sum(-1), t.sum(-1), dim=-1)
    cos_s = F.cosine_similarity(p.mean(1), t.mean(1), dim=-1)
    expected = (1 - cos_st).mean() + (1 - cos_t).mean() + (1 - cos_s).mean()
    torch.testing.assert_close(out["mal"], expected)
    assert mal_loss(target * 3, target)["mal"].item() == pytest.approx(0.0, abs=1e-6)  # scale does not matter
    zero = torch.zeros(1, 4, 2, 2, requires_grad=True)
    mal_loss(zero, torch.rand(1, 4, 2, 2))["mal"].backward()
    assert torch.isfinite(zero.grad).all()  # a dead (all-zero) map has a gradient, not NaN


def test_gradient_map_is_grad_cam_per_temporal_slot():
    g = torch.randn(2, 5, 4, 3, 3)
    weights = g.mean(dim=(3, 4), keepdim=True)
    torch.testing.assert_close(gradient_map(g, 4), torch.relu((weights * g).sum(1)))
    assert gradient_map(torch.randn(2, 5, 2, 3, 3), 4).shape == (2, 4, 3, 3)  # T' = 2 repeated onto 4 slots


def test_mal_gradient_reaches_backbone_parameters():
    objective = _objective()
    objective.train()
    assert objective.mal_module == "layer4.1.conv2.0"  # r3d_18's last conv
    out = objective(_views(), view_target=_order())
    assert set(out) == {"loss", "loss_inter", "loss_intra", "loss_mal", "mal_weight", "acc_inter", "cos_st",
                        "cos_t", "cos_s", "loss_order", "order_weight", "acc_order",
                        # diagnostics (issue 20): the inter terms apart, the logits, the queue's fill
                        "loss_inter_same", "loss_inter_other", "logit_pos", "logit_neg", "queue_fill"}
    assert all(torch.isfinite(v) for v in out.values()) and out["mal_weight"] == 2.0
    before = [objective.model.stem[0].weight, objective.model.layer1[0].conv1[0].weight,
              objective.model.layer4[1].conv2[0].weight]
    grads = torch.autograd.grad(out["loss_mal"], before, allow_unused=True)
    assert all(g is not None and g.abs().sum() > 0 for g in grads)  # through the double backward
    # The query's inter-positives are three key batches; all of them are queued.
    assert int(objective.queue.pointer) == 6
    with pytest.raises(ValueError, match=r"MCL expects its views \(B \* 4, 5, T, H, W\)"):
        objective(_views()[:6], view_target=_order())
    with torch.no_grad(), pytest.raises(RuntimeError, match="grad on"):
        objective(_views(), view_target=_order())


def test_mal_weight_warms_up():
    objective = _objective()
    assert objective.current_mal_weight == 2.0
    objective.after_step(step=49, total_steps=100, steps_per_epoch=10)  # 4.9 epochs done
    assert objective.current_mal_weight == 2.0
    objective.after_step(step=50, total_steps=100, steps_per_epoch=10)
    assert objective.current_mal_weight == 1.0
    assert "epochs_done" in objective.state_dict()  # resumes with the run


def test_loss_falls_when_a_tiny_batch_is_overfit():
    objective = _objective()
    objective.train()
    optimizer = torch.optim.SGD(objective.trainable_parameters(), lr=0.01, momentum=0.9)
    objective.after_step(0, 4, 4)  # a 1-epoch stage: the order loss weighs 1 at every step (0 before it is known)
    clips, order = _views(), _order()
    objective(clips, view_target=order)  # fills the queue with this batch's keys; it is held fixed from here
    queue = {k: v.clone() for k, v in objective.state_dict().items() if k.startswith("queue.")}
    losses = []
    for step in range(4):
        objective.load_state_dict(queue, strict=False)
        loss = objective(clips, view_target=order)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        objective.after_step(step + 1, 4, 4)
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


# ---------------------------------------------------------------------------------------------- order loss


def test_order_loss_is_there_as_configured_and_trains_the_order_head():
    objective = _objective()
    objective.train()
    assert objective.current_order_weight == 0.0  # a stage's first step: its length is not known yet
    objective.after_step(step=10, total_steps=40, steps_per_epoch=10)  # 1 of 4 epochs done: epoch 2 / 4 next
    assert objective.current_order_weight == 0.5 and objective.current_mal_weight == 2.0
    out = objective(_views(), view_target=_order())
    assert out["order_weight"] == 0.5 and 0.0 <= out["acc_order"] <= 1.0 and torch.isfinite(out["loss_order"])
    torch.testing.assert_close(out["loss"], out["loss_inter"] + out["loss_intra"] + 2.0 * out["loss_mal"]
                               + 0.5 * out["loss_order"])
    # L_order trains the online order head, its classifier and the backbone, never the key encoder.
    trainable = {id(p) for p in objective.trainable_parameters()}
    heads = [*objective.order_head.parameters(), *objective.order_classifier.parameters()]
    assert all(id(p) in trainable for p in heads)
    assert not any(p.requires_grad for p in objective.key_order.parameters())
    reached = [objective.order_head[0].weight, objective.order_head[2].weight, objective.order_classifier.weight,
               objective.model.stem[0].weight]
    grads = torch.autograd.grad(out["loss"], reached, retain_graph=True)
    assert all(g.abs().sum() > 0 for g in grads)
    grads_order = torch.autograd.grad(out["loss_order"], reached[:3])
    assert all(g.abs().sum() > 0 for g in grads_order)
    # The weight follows the epochs to 1 at the last one.
    objective.after_step(step=35, total_steps=40, steps_per_epoch=10)
    assert objective.current_order_weight == 1.0 and {"epochs_total", "order_head.0.weight"} <= set(
        objective.state_dict())
    with pytest.raises(ValueError, match="order loss needs view_target"):
        objective(_views())

    off = _objective(order_loss=False)
    off.train()
    out = off(_views())  # no view_target needed
    assert not {"loss_order", "order_weight", "acc_order"} & set(out)
    torch.testing.assert_close(out["loss"], out["loss_inter"] + out["loss_intra"] + 2.0 * out["loss_mal"])
    assert not any(k.startswith(("order_", "key_order")) for k in off.state_dict())
    assert len(off.trainable_parameters()) == len(objective.trainable_parameters()) - len(heads)


def test_wrapped_training_set_serves_the_order_label(tmp_path):
    digits = create_dataset("moving_digits", split="train", num_frames=4, frame_stride=1, videos_per_class=1,
                            eval_videos_per_class=1, frame_size=32, frames_per_video=16, progress=False, reader="pyav")
    objective = _objective(crop_size=16, flow={"root": str(tmp_path / "flow"), "progress": False})
    views = objective.wrap_train_set(digits)
    torch.manual_seed(0)
    items = [views[i] for i in range(4)]
    assert all(item["view_target"] in (0, 1) for item in items)
    batch = video_collate(items)
    assert batch["video"].shape == (16, 5, 4, 16, 16)
    assert batch["view_target"].dtype == torch.int64 and batch["view_target"].tolist() == [
        item["view_target"] for item in items]


# ---------------------------------------------------------------------------------------------- shuffled BN


def test_shuffled_bn_deals_the_keys_into_other_bn_groups():
    objective = _objective(bn_groups=2)
    clips = torch.randn(4, 3, 8, 32, 32, generator=torch.Generator().manual_seed(3))
    seen: list[torch.Tensor] = []
    handle = objective.key_model.stem.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach()))
    try:
        objective.eval()  # BN from running statistics: every row is computed on its own
        torch.manual_seed(0)
        shuffled = objective._keys(clips)
        objective.shuffle_bn = False
        plain = objective._keys(clips)
        for a, b in zip(shuffled, plain):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
        objective.shuffle_bn = True
        objective.train()  # BN from each group of the batch: the key encoder sees the rows dealt out anew
        seen.clear()
        torch.manual_seed(1)
        shuffled = objective._keys(clips)
        objective.shuffle_bn = False
        in_order = objective._keys(clips)
    finally:
        handle.remove()
    fed = torch.cat(seen[:2])
    assert torch.equal(torch.cat(seen[2:]), clips)  # unshuffled: the groups in order
    order = [next(j for j in range(4) if torch.equal(fed[i], clips[j])) for i in range(4)]
    assert sorted(order) == [0, 1, 2, 3] and {frozenset(order[:2]), frozenset(order[2:])} != {
        frozenset({0, 1}), frozenset({2, 3})}  # torch.manual_seed(1) deals the rows into other groups
    for a, b in zip(shuffled, in_order):  # other groups, other statistics
        assert not torch.allclose(a, b, atol=1e-4)


# ---------------------------------------------------------------------------------------------- recipes


def test_recipes_hold_the_official_settings():
    k400 = load_recipe(RECIPES / "mcl_r2plus1d50_k400.yaml")
    cfg = k400.stages[0].objective_cfg
    assert (k400.model.name, k400.model.kwargs) == ("r2plus1d_50", {"temporal_strides": [1, 2, 2, 1],
                                                                   "stem_pool": True})
    assert (k400.data.num_frames, k400.data.frame_stride, k400.data.input_size) == (16, 2, 224)
    assert (cfg["queue_size"], cfg["temperature"], cfg["momentum"], cfg["mal_warmup_epochs"]) == (131072, 0.1, 0.999, 5)
    assert (cfg["flow"]["provider"], cfg["flow"]["gap"], cfg["flow"]["adjacent"]) == ("tvl1", 1, 1)
    assert (k400.optim.lr, k400.optim.base_batch_size, k400.stages[0].epochs, k400.stages[0].warmup_epochs) == (
        0.02, 32, 400, 5)
    ucf = load_recipe(RECIPES / "mcl_r2plus1d50_ucf101.yaml")
    assert (ucf.data.kind, ucf.optim.lr, ucf.stages[0].epochs, ucf.model) == ("ucf101", 0.01, 200, k400.model)
    # The order loss: off on Kinetics-400, on for UCF-101, as the official code has it; shuffled BN in both.
    assert (cfg["order_loss"], ucf.stages[0].objective_cfg["order_loss"]) == (False, True)
    assert cfg["shuffle_bn"] and ucf.stages[0].objective_cfg["shuffle_bn"]
    # The official grid: reductions 4 in time and 32 in space at the last conv, 4 x 7 x 7 for 16 x 224 x 224.
    model = zoo.create_model(k400.model.name, num_classes=0, **k400.model.kwargs)
    objective = create_objective("mcl", model, queue_size=8)
    assert (model.feature_info[-1]["temporal_reduction"], model.feature_info[-1]["reduction"]) == (4, 32)
    shapes = []
    handle = model.get_submodule(objective.mal_module).register_forward_hook(lambda m, a, out: shapes.append(out.shape))
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, 16, 64, 64))
    handle.remove()
    assert tuple(shapes[0][2:]) == (4, 2, 2)


def test_recipe_trains_two_steps_on_generated_data(tmp_path):
    overrides = [
        f"output_dir={tmp_path / 'run'}", "progress=false", "max_epochs=1", "max_steps_per_epoch=2", "threads=2",
        "data.kind=moving_digits", "data.root=null", "data.reader=pyav",
        "data.options={frame_size: 32, videos_per_class: 1, eval_videos_per_class: 1, frames_per_video: 16, "
        "progress: false}",
        "data.num_frames=8", "data.frame_stride=1", "data.input_size=16", "data.train_short_side=[32, 32]",
        "data.test_short_side=32", "data.batch_size=2", "data.num_workers=0", "eval.knn=[]", "eval.efficacy=false",
        "stages.0.objective_cfg.queue_size=16", "stages.0.objective_cfg.flow.provider=farneback",
        "stages.0.objective_cfg.flow.progress=false",
    ]
    recipe = load_recipe(RECIPES / "mcl_r2plus1d50_k400.yaml", overrides)
    result = Trainer(recipe).run()
    ckpt = load_training_checkpoint(result.checkpoint)
    assert ckpt["step"] == 2 and ckpt["finished"] and result.metrics["videos"] == 8
    ckpt = load_training_checkpoint(result.run_dir / "stage_mcl.pt")  # the stage's end: with the objective's state
    assert {"queue.keys", "key_model.stem.0.weight", "epochs_done"} <= set(ckpt["objective"])
    assert int(ckpt["objective"]["queue.pointer"]) == 4 * 3  # two steps, three key batches of two
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())
