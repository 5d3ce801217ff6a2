"""Where an MSCL and an MCL training step spend their time, against an HCML step on the same backbone, batch and clip.

    python benchmarks/ssl_step_profile.py [--rounds 5] [--name ssl_step_profile_cpu]

The settings are ``ssl_moving_digits.py``'s (R3D-18, 8 frames 2 apart at 32 x 32, 8 videos a step,
queues of 256 keys). Three parts, all in one process:

- ``step``: one optimizer step (forward, backward, gradient clip, SGD step, ``after_step``) on a batch
  collated beforehand, so that no data loading is inside it. The methods are timed interleaved,
  round by round (HCML at levels 1, 2 and 3 and its joint stage, then MSCL, then MCL, then a plain R3D-18
  classification step), and each round gives a ratio ``method step / HCML step`` (HCML's: the mean of its
  three levels, as the benchmark trains a third of its steps at each; a level stage runs the backbone only
  up to its level, so the joint step, the whole backbone's forward and backward with every adapter and loss,
  and the classification step are the other yardsticks: ``ratio_to_hcml_joint_median``);
  the figures are the medians over the rounds, with the 1-minute load average before and after (the
  machine may be shared). Convolution weight gradients are computed as ``zoo train`` computes them on
  this CPU (``conv_weight_grad: auto``, ``zoo.layers.weight_grad``).
- ``profile``: one step per method under ``torch.profiler`` (CPU), the top operators by self CPU time.
- ``flops``: one step per method under ``torch.utils.flop_counter.FlopCounterMode``: the FLOPs of its matrix
  products and convolutions, forward and backward (the operators that counter knows; elementwise work, the
  reference cost volume's among it, is not counted), their ratio to an HCML step's, and the achieved GFLOP/s
  (counted FLOPs over the median step time). A step ratio well above 2x with a FLOP ratio as high says the
  time goes to the work the method does, not to overhead around it.
- ``item``: the DataLoader side, a dataset item (``dataset[i]``) timed alone: the plain training set
  (HCML's), and MSCL's and MCL's views with flow (``wrap_train_set``), whose flow cache is built once
  beforehand (its build time is recorded apart: training only reads it).

Writes ``benchmarks/results/<name>.json`` (``env_info()``, settings, per-method figures).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import env_info, write_result  # noqa: E402

import zoo  # noqa: E402
from zoo.data import create_dataset, video_collate  # noqa: E402
from zoo.layers.weight_grad import default_weight_grad_mode  # noqa: E402
from zoo.methods import create_objective  # noqa: E402
from zoo.train.runtime import Runtime  # noqa: E402

FRAMES, STRIDE, SIZE, BATCH, QUEUE = 8, 2, 32, 8, 256
DATA_OPTIONS = {"frame_size": SIZE, "frames_per_video": 32, "videos_per_class": 40, "eval_videos_per_class": 8,
                "progress": False}
WEIGHT_GRAD = default_weight_grad_mode("cpu")
FLOW = {"mscl": {"provider": "farneback", "gap": 2, "adjacent": 8, "progress": False},
        "mcl": {"provider": "farneback", "gap": 1, "adjacent": 1, "progress": False}}


def train_set() -> Any:
    return create_dataset("moving_digits", split="train", num_frames=FRAMES, frame_stride=STRIDE, train=True,
                          reader="pyav", input_size=SIZE, **DATA_OPTIONS)


class Runner:
    """One method's model, objective and optimizer, and a fixed collated batch."""

    def __init__(self, method: str, stage: str | None = None):
        torch.manual_seed(0)
        self.method = method
        dataset = train_set()
        if method == "hcml":
            model = zoo.create_model("hcml", backbone="r3d_18", hcml_cfg={"deltas": [1]}, num_classes=8)
            self.objective = create_objective("hcml", model, stage=stage)
            data = dataset
        elif method == "classification":  # a plain R3D-18 step: the whole backbone forward and backward
            self.objective = create_objective("classification", zoo.create_model("r3d_18", num_classes=8))
            data = dataset
        else:
            model = zoo.create_model("r3d_18", num_classes=8)
            self.objective = create_objective(method, model, queue_size=QUEUE, flow=FLOW[method])
            start = time.perf_counter()
            data = self.objective.wrap_train_set(dataset)
            self.wrap_s = time.perf_counter() - start  # the flow cache's build (or its check, once built)
        self.data = data
        self.batch = video_collate([data[i] for i in range(BATCH)])
        # what `zoo train` does on this CPU (the recipes' conv_weight_grad: auto)
        self.switched = Runtime(conv_weight_grad=WEIGHT_GRAD).switch_weight_grads(self.objective)
        self.objective.train()
        self.params = self.objective.trainable_parameters()
        self.optimizer = torch.optim.SGD(self.params, lr=0.01, momentum=0.9, weight_decay=1e-4)
        self.count = 0

    def step(self) -> dict[str, torch.Tensor]:
        extra = {"view_target": self.batch["view_target"]} if "view_target" in self.batch else {}
        out = self.objective(self.batch["video"], self.batch["label"], **extra)
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(self.params, 5.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.count += 1
        self.objective.after_step(self.count, 1000, 40)
        return out

    def timed_step(self) -> float:
        start = time.perf_counter()
        self.step()
        return time.perf_counter() - start

    def profile(self, top: int = 12) -> list[dict[str, Any]]:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            self.step()
        events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        total = sum(e.self_cpu_time_total for e in events) or 1.0
        return [{"op": e.key, "self_cpu_ms": round(e.self_cpu_time_total / 1e3, 2),
                 "share": round(e.self_cpu_time_total / total, 3), "calls": e.count} for e in events[:top]]

    def flops(self) -> int:
        """Matrix-product and convolution FLOPs of one step, forward and backward (``FlopCounterMode``)."""
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter:
            self.step()
        return int(counter.get_total_flops())

    def item_time(self, count: int = 16) -> float:
        start = time.perf_counter()
        for i in range(count):
            self.data[(i * 7) % len(self.data)]
        return (time.perf_counter() - start) / count


def run(rounds: int) -> dict[str, Any]:
    torch.set_num_threads(2)
    load_before = os.getloadavg()[0]
    runners = {f"hcml_level{lv}": Runner("hcml", f"level{lv}") for lv in (1, 2, 3)}
    runners["hcml_joint"] = Runner("hcml", "joint")
    runners["mscl"] = Runner("mscl")
    runners["mcl"] = Runner("mcl")
    runners["classification"] = Runner("classification")
    for r in runners.values():  # warm-up
        r.step()
    times: dict[str, list[float]] = {k: [] for k in runners}
    ratios: dict[str, list[float]] = {"mscl": [], "mcl": [], "classification": []}
    to_joint: dict[str, list[float]] = {"mscl": [], "mcl": [], "classification": []}
    for _ in range(rounds):
        this = {k: r.timed_step() for k, r in runners.items()}
        for k, v in this.items():
            times[k].append(v)
        hcml = statistics.mean(this[f"hcml_level{lv}"] for lv in (1, 2, 3))
        for m in ratios:
            ratios[m].append(this[m] / hcml)
            to_joint[m].append(this[m] / this["hcml_joint"])
    load_after_steps = os.getloadavg()[0]
    profiles = {k: r.profile() for k, r in runners.items()}
    flops = {k: r.flops() for k, r in runners.items()}
    hcml_flops = statistics.mean(flops[f"hcml_level{lv}"] for lv in (1, 2, 3))
    items = {"hcml": runners["hcml_level1"].item_time(), "mscl": runners["mscl"].item_time(),
             "mcl": runners["mcl"].item_time()}
    hcml_median = statistics.mean(statistics.median(times[f"hcml_level{lv}"]) for lv in (1, 2, 3))
    return {
        "benchmark": "one MSCL / MCL training step against an HCML step (R3D-18, same batch and clip)",
        "env": env_info("cpu"),
        "cpu_count": os.cpu_count(),
        "settings": {"backbone": "r3d_18", "frames": FRAMES, "frame_stride": STRIDE, "size": SIZE,
                     "batch_size": BATCH, "queue_size": QUEUE, "rounds": rounds, "flow": FLOW,
                     "hcml_reference": "mean of the level1/2/3 step times (the benchmark trains a third at each)",
                     "hcml_joint": "HCML's joint stage (labels): every adapter and loss, the whole backbone",
                     "classification": "a plain R3D-18 cross-entropy step (the whole backbone's forward and backward)",
                     "conv_weight_grad": WEIGHT_GRAD,
                     "switched_convolutions": {k: r.switched for k, r in runners.items()}},
        "load_average_1m": {"before": round(load_before, 2), "after_steps": round(load_after_steps, 2),
                            "end": round(os.getloadavg()[0], 2)},
        "step_s_median": {k: round(statistics.median(v), 4) for k, v in times.items()},
        "step_s_all": {k: [round(x, 4) for x in v] for k, v in times.items()},
        "hcml_step_s_median": round(hcml_median, 4),
        "ratio_to_hcml_median": {m: round(statistics.median(v), 3) for m, v in ratios.items()},
        "ratio_to_hcml_all": {m: [round(x, 3) for x in v] for m, v in ratios.items()},
        "ratio_to_hcml_joint_median": {m: round(statistics.median(v), 3) for m, v in to_joint.items()},
        "ratio_to_hcml_joint_all": {m: [round(x, 3) for x in v] for m, v in to_joint.items()},
        "gflop_per_step": {k: round(v / 1e9, 2) for k, v in flops.items()},
        "flop_ratio_to_hcml": {m: round(flops[m] / hcml_flops, 3) for m in ratios},
        "flop_ratio_to_hcml_joint": {m: round(flops[m] / flops["hcml_joint"], 3) for m in ratios},
        "gflop_per_s": {k: round(flops[k] / 1e9 / statistics.median(v), 1) for k, v in times.items()},
        "item_s_mean": {k: round(v, 4) for k, v in items.items()},
        "item_batch_s": {k: round(v * BATCH, 4) for k, v in items.items()},
        "flow_cache_wrap_s": {m: round(runners[m].wrap_s, 2) for m in ("mscl", "mcl")},
        "profile_top": profiles,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timed steps per method")
    parser.add_argument("--name", default="ssl_step_profile_cpu", help="results file name")
    args = parser.parse_args(argv)
    payload = run(args.rounds)
    print({k: payload[k] for k in ("step_s_median", "ratio_to_hcml_median", "flop_ratio_to_hcml", "gflop_per_s",
                                  "item_batch_s", "load_average_1m")})
    for k, v in payload["profile_top"].items():
        print(k, [(e["op"], e["self_cpu_ms"]) for e in v[:6]])
    print(write_result(args.name, payload))


if __name__ == "__main__":
    main()
