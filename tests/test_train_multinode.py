"""Two "machines" on one: ``torchrun --nnodes 2 --nproc-per-node 1`` started twice (node ranks 0 and 1) on the
loopback address, training on WebDataset shards: the ranks read disjoint samples, run the same number of steps and
end with identical weights."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np

from zoo.data import shard_dataset, write_video

SCRIPT = textwrap.dedent(
    """
    import json, sys

    import torch
    import torch.distributed as dist

    from zoo.train import Trainer, recipe_from_dict

    out_dir, raw = sys.argv[1], json.loads(sys.argv[2])
    seen = []
    original = Trainer._optimizer_step

    def recording(self, stage, batches):
        for batch in batches:
            seen.extend(batch["index"].tolist())
        return original(self, stage, batches)

    Trainer._optimizer_step = recording
    trainer = Trainer(recipe_from_dict(raw))
    result = trainer.run()  # joins the process group torchrun describes
    rank, world = dist.get_rank(), dist.get_world_size()
    flat = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
    copies = [torch.empty_like(flat) for _ in range(world)]
    dist.all_gather(copies, flat)
    with open(f"{out_dir}/rank{rank}.json", "w") as f:
        json.dump({"world": world, "steps": trainer.step, "seen": seen, "top1": result.metrics["top1"],
                   "params_equal": all(torch.equal(copies[0], c) for c in copies)}, f)
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_nodes_on_loopback_with_shards(tmp_path):
    videos = tmp_path / "videos"
    for c in range(2):
        for i in range(8):
            t = np.arange(6, dtype=np.uint8)[:, None, None, None]
            frames = np.zeros((6, 48, 64, 3), np.uint8) + (20 * i + 8 * t).astype(np.uint8)
            frames[..., c] = 200
            write_video(videos / f"class{c}" / f"{i}.mp4", frames, fps=25)
    shard_dataset(videos, tmp_path / "shards" / "train", kind="folder", shard_size="10KB", progress=False)
    raw = {
        "name": "nodes", "output_dir": str(tmp_path / "run"), "progress": False, "log_every": 1,
        "model": {"name": "r2d_18"},
        "data": {"kind": "webdataset", "root": str(tmp_path / "shards"), "train_split": "train", "val_split": "train",
                 "num_frames": 4, "frame_stride": 1, "input_size": 32, "batch_size": 2, "num_workers": 1},
        "optim": {"lr": 0.01, "base_batch_size": 4},
        "stages": [{"name": "ssl-like", "epochs": 1, "global_bn": True}],
        "eval": {"confusion_matrix": False},
    }
    script = tmp_path / "node_script.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    port = str(_free_port())
    procs = []
    for node in (0, 1):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
               "--node-rank", str(node), "--master-addr", "127.0.0.1", "--master-port", port,
               str(script), str(tmp_path), json.dumps(raw)]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = []
    try:
        for p in procs:
            outputs.append(p.communicate(timeout=600))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-4000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for r in ranks:
        assert r["world"] == 2 and r["steps"] == 4  # (16 videos // 2 ranks) // 2 per batch: the same on both
        assert r["params_equal"]
        assert len(r["seen"]) == 8 and len(set(r["seen"])) == 8
    assert not set(ranks[0]["seen"]) & set(ranks[1]["seen"])  # disjoint samples
    assert sorted(ranks[0]["seen"] + ranks[1]["seen"]) == list(range(16))
    assert ranks[0]["top1"] == ranks[1]["top1"]
    assert "global_bn needs CUDA" in outputs[0][0]
