"""torchrun with 2 CPU processes (gloo): a few training steps, identical parameters on both ranks,
contrastive keys gathered from both ranks with gradients, key batches shuffled across ranks (shuffled BN)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from zoo.data import create_dataset

SCRIPT = textwrap.dedent(
    """
    import json, sys

    import torch
    import torch.distributed as dist
    import torch.nn.functional as F

    from zoo.train import Trainer, gather_with_grad, recipe_from_dict

    out_dir, raw = sys.argv[1], json.loads(sys.argv[2])
    trainer = Trainer(recipe_from_dict(raw))
    result = trainer.run()  # joins the process group torchrun describes
    rank, world = dist.get_rank(), dist.get_world_size()

    flat = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
    copies = [torch.empty_like(flat) for _ in range(world)]
    dist.all_gather(copies, flat)

    # InfoNCE with keys gathered across ranks: 2 queries per rank, 4 keys in all.
    torch.manual_seed(0)
    queries, all_keys = torch.randn(4, 8), torch.randn(4, 8)
    mine = slice(2 * rank, 2 * rank + 2)
    keys = all_keys[mine].clone().requires_grad_()
    gathered = gather_with_grad(keys)
    loss = F.cross_entropy(queries[mine] @ gathered.T, torch.arange(2) + 2 * rank)
    loss.backward()
    reference = all_keys.clone().requires_grad_()
    F.cross_entropy(queries @ reference.T, torch.arange(4)).backward()  # one process, the whole batch

    # HCML's contrastive loss: the keys (easy negatives) of both ranks. With every location sampled
    # (N = H * W), the mean of the ranks' losses equals the loss of one process on the whole batch.
    from zoo.adapters.hcml import MotionPredictor
    from zoo.methods.hcml import contrastive_motion_loss

    torch.manual_seed(1)
    predictor = MotionPredictor(24, 16, 8, (1,))
    upper_all, lower_all = torch.randn(4, 16, 3, 2, 2), torch.randn(4, 8, 3, 4, 4)
    part = slice(2 * rank, 2 * rank + 2)
    hcml_loss, _ = contrastive_motion_loss(predictor, upper_all[part], lower_all[part], num_samples=4)
    hcml_local, _ = contrastive_motion_loss(predictor, upper_all[part], lower_all[part], num_samples=4,
                                            global_keys=False)
    hcml_mean = hcml_loss.detach().clone()
    dist.all_reduce(hcml_mean)
    hcml_reference, _ = contrastive_motion_loss(predictor, upper_all, lower_all, num_samples=4, global_keys=False)

    # MoCo's shuffled BN: both ranks' rows dealt out by one permutation (rank 0's), then put back.
    from zoo.utils.distributed import shuffle_batch, unshuffle_batch

    rows = torch.arange(8.0).view(4, 2) + 8 * rank
    torch.manual_seed(10 + rank)  # the ranks' generators differ; rank 0's permutation is used
    shuffled, inverse = shuffle_batch(rows)
    dealt = [torch.empty_like(shuffled) for _ in range(world)]
    dist.all_gather(dealt, shuffled)
    dealt = torch.cat(dealt)
    restored = unshuffle_batch(shuffled * 10, inverse)  # "outputs" computed on the shuffled rows

    with open(f"{out_dir}/rank{rank}.json", "w") as f:
        json.dump({
            "world": world,
            "steps": trainer.step,
            "params_equal": all(torch.equal(copies[0], c) for c in copies),
            "top1": result.metrics["top1"],
            "gathered_shape": list(gathered.shape),
            "gathered_is_all_keys": torch.equal(gathered.detach(), all_keys),
            "grad_matches_one_process": torch.allclose(keys.grad / world, reference.grad[mine], atol=1e-6),
            "hcml_mean_matches_one_process": abs(hcml_mean.item() / world - hcml_reference.item()) < 1e-5,
            "hcml_global_harder_than_local": hcml_loss.item() > hcml_local.item(),
            "shuffle_deals_all_rows": sorted(dealt.flatten().tolist()) == list(range(16)),
            "shuffle_takes_other_ranks_rows": bool(((shuffled // 8) != rank).any()),
            "unshuffle_restores_own_rows": torch.equal(restored, rows * 10),
        }, f)
    """
)


def test_torchrun_two_cpu_processes(tmp_path):
    data = {
        "kind": "moving_digits", "num_frames": 4, "frame_stride": 2, "batch_size": 2, "num_workers": 0,
        "options": {"classes": ["left", "right", "up", "down"], "videos_per_class": 2, "eval_videos_per_class": 1,
                    "frame_size": 32, "progress": False},
    }
    create_dataset("moving_digits", split="train", **data["options"])  # generated once, before both ranks read it
    raw = {
        "name": "ddp", "output_dir": str(tmp_path / "run"), "progress": False, "log_every": 1,
        "max_steps_per_epoch": 2, "data": data, "model": {"name": "r2d_18"},
        "optim": {"lr": 0.01, "base_batch_size": 4},
        "stages": [{"name": "ssl-like", "epochs": 1, "global_bn": True}],
    }
    script = tmp_path / "ddp_script.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(script), str(tmp_path), json.dumps(raw)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for r in ranks:
        assert r["world"] == 2 and r["steps"] == 2
        assert r["params_equal"]
        assert r["gathered_shape"] == [4, 8] and r["gathered_is_all_keys"]
        assert r["grad_matches_one_process"]
        assert r["hcml_mean_matches_one_process"] and r["hcml_global_harder_than_local"]
        assert r["shuffle_deals_all_rows"] and r["unshuffle_restores_own_rows"]
    assert any(r["shuffle_takes_other_ranks_rows"] for r in ranks)
    assert ranks[0]["top1"] == ranks[1]["top1"]  # evaluation gathered from both shards
    records = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")]
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2]  # rank 0 alone writes
    # lr scales with the global batch: 2 clips x 2 ranks at 0.01 per 4 clips.
    assert "lr 0.01 (global batch 4)" in proc.stdout
    assert "global_bn needs CUDA" in proc.stdout
