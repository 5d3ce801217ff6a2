"""The MoCo diagnostics MSCL and MCL log (issue 20): the queue's fill level and the positive / negative logits."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from zoo.methods.moco import MomentumQueue, logit_stats


def test_queue_counts_what_it_holds_and_old_state_dicts_load():
    queue = MomentumQueue(5, 4)
    assert queue.fill == 0.0
    queue.push(torch.randn(3, 4))
    assert queue.fill == 0.6
    queue.push(torch.randn(4, 4))
    assert queue.fill == 1.0 and int(queue.written) == 7
    old = {k: v for k, v in queue.state_dict().items() if k != "written"}  # saved before ``written`` existed
    fresh = MomentumQueue(5, 4)
    fresh.load_state_dict(old)  # strict
    assert fresh.fill == 1.0
    torch.testing.assert_close(fresh.keys, queue.keys)


def test_logit_stats_read_the_positives_and_the_real_negatives_only():
    q = F.normalize(torch.randn(3, 8), dim=1)
    k = F.normalize(q + 0.1 * torch.randn(3, 8), dim=1)
    queue = MomentumQueue(6, 8)
    stats = logit_stats(q, k, queue)  # an empty queue: the negatives are the batch's other keys
    sims = q @ k.t()
    torch.testing.assert_close(stats["pos"], sims.diagonal().mean())
    torch.testing.assert_close(stats["neg"], sims[~torch.eye(3, dtype=torch.bool)].mean())
    written = F.normalize(torch.randn(2, 8), dim=1)
    queue.push(written)  # two real keys; the other four slots keep their random vectors and are left out
    stats = logit_stats(q, k, queue)
    expected = torch.cat([sims[~torch.eye(3, dtype=torch.bool)], (q @ written.t()).flatten()]).mean()
    torch.testing.assert_close(stats["neg"], expected)
