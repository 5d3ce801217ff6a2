"""Every convolution's weight gradient, PyTorch's own kernel against the gradient computed as a convolution, in the
models and at the clip sizes CPU training uses: the measurement behind ``zoo.layers.weight_grad_as_conv_applies``.

    python benchmarks/conv_weight_grad.py [--threads N] [--repeats N] [--name NAME]

For each model and input below, a forward pass with hooks lists its convolutions (input shape, weight shape,
stride, padding, groups); for each distinct one, the weight gradient of a random output gradient is computed
both ways (``torch.ops.aten.convolution_backward`` asking for the weight only, as autograd does, and
``zoo.layers.conv_weight_grad``), interleaved, ``--repeats`` times after one warm-up, and the fastest time of
each is kept (load only ever adds time). Grouped and strided convolutions are timed with PyTorch's kernel only
(the switch does not apply to them). The two gradients are compared (largest difference relative to the largest
entry). Every row says whether the rule switches that convolution, so the JSON shows both what the rule gains
and what it leaves alone; per model, the summed weight-gradient time of one forward's convolutions each way
(under the rule, and were every stride-1 one-group convolution switched); all of it at each ``--threads``
count (default 1 and 2).

Models: ``r2d_18`` at the quickstart's clips (8 x 8 x 48 x 48), ``r3d_18`` at the SSL benchmarks'
(8 x 8 x 32 x 32) and at 112 px (4 x 8 x 112 x 112), ``r2plus1d_18`` at 112 px. Writes
``benchmarks/results/<name>.json`` (default ``conv_weight_grad_cpu``; ``threads``: per thread count, the
models) with ``env_info()`` and the CPU's PyTorch capability (``torch.backends.cpu.get_cpu_capability()``).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import env_info, write_result  # noqa: E402

from zoo import create_model  # noqa: E402
from zoo.layers import conv_weight_grad, weight_grad_as_conv_applies  # noqa: E402

CASES = (("r2d_18", (8, 3, 8, 48, 48)), ("r3d_18", (8, 3, 8, 32, 32)), ("r3d_18", (4, 3, 8, 112, 112)),
         ("r2plus1d_18", (4, 3, 8, 112, 112)))


def model_convs(name: str, shape: tuple[int, ...]) -> list[tuple[nn.Module, tuple[int, ...]]]:
    """The convolutions of one forward pass of ``name`` on a clip of ``shape``, with their input shapes."""
    model = create_model(name, num_classes=8).eval()
    found: list[tuple[nn.Module, tuple[int, ...]]] = []
    hooks = [m.register_forward_hook(lambda m, args, out: found.append((m, tuple(args[0].shape))))
             for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d))]
    with torch.no_grad():
        model(torch.randn(shape))
    for h in hooks:
        h.remove()
    return found


def time_conv(conv: nn.Module, input_shape: tuple[int, ...], repeats: int) -> dict:
    """The weight gradient of ``conv`` on an input of ``input_shape``, both ways where the switch can apply."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(input_shape, generator=gen)
    weight = conv.weight.detach()
    n = x.ndim - 2
    out = (F.conv3d if n == 3 else F.conv2d)(x, weight, None, conv.stride, conv.padding, conv.dilation, conv.groups)
    grad_out = torch.randn(out.shape, generator=gen)

    def native():
        return torch.ops.aten.convolution_backward(grad_out, x, weight, None, list(conv.stride), list(conv.padding),
                                                   list(conv.dilation), False, [0] * n, conv.groups,
                                                   [False, True, False])[1]

    def as_conv():
        return conv_weight_grad(x, grad_out, weight.shape[2:], conv.padding)

    possible = conv.groups == 1 and all(s == 1 for s in conv.stride) and all(d == 1 for d in conv.dilation)
    calls = {"native": native, **({"as_conv": as_conv} if possible else {})}
    best = {k: math.inf for k in calls}
    results = {k: f() for k, f in calls.items()}  # warm-up
    for _ in range(repeats):
        for k, f in calls.items():
            start = time.perf_counter()
            f()
            best[k] = min(best[k], time.perf_counter() - start)
    row = {"input": list(input_shape), "weight": list(weight.shape), "stride": list(conv.stride),
           "padding": list(conv.padding), "groups": conv.groups, "output_positions": math.prod(out.shape[2:]),
           "switched_by_rule": weight_grad_as_conv_applies(conv, input_shape),
           "native_ms": round(1000 * best["native"], 3)}
    if possible:
        ref = results["native"]
        row.update(as_conv_ms=round(1000 * best["as_conv"], 3), ratio=round(best["as_conv"] / best["native"], 3),
                   max_rel_diff=float(f"{((results['as_conv'] - ref).abs().max() / ref.abs().max()).item():.2e}"))
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="torch CPU thread counts, each measured in turn (1: as train_step.py; 2: a 2-core run)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--name", default="conv_weight_grad_cpu")
    args = parser.parse_args(argv)
    by_threads = {}
    for threads in args.threads:
        torch.set_num_threads(threads)
        by_threads[str(threads)] = measure_models(args.repeats)
    payload = {"benchmark": "convolution weight gradients: PyTorch's kernel against a convolution",
               "cpu_capability": torch.backends.cpu.get_cpu_capability(), "repeats": args.repeats,
               "threads": by_threads, "env": env_info("cpu")}
    print(f"wrote {write_result(args.name, payload)}")


def measure_models(repeats: int) -> list[dict]:
    """Every model of :data:`CASES` at the current thread count: its convolutions' rows and their sums."""
    models = []
    for name, shape in CASES:
        rows, seen = [], {}
        for conv, input_shape in model_convs(name, shape):
            key = (input_shape, tuple(conv.weight.shape), conv.stride, conv.padding, conv.groups)
            if key in seen:
                seen[key]["count"] += 1
                continue
            row = {**time_conv(conv, input_shape, repeats), "count": 1}
            seen[key] = row
            rows.append(row)
            print(f"{name} {shape}: {row}", flush=True)
        native = sum(r["native_ms"] * r["count"] for r in rows)
        rule = sum((r["as_conv_ms"] if r["switched_by_rule"] else r["native_ms"]) * r["count"] for r in rows)
        every = sum(r.get("as_conv_ms", r["native_ms"]) * r["count"] for r in rows)
        models.append({"model": name, "input": list(shape), "convolutions": rows,
                       "weight_grad_ms": {"native": round(native, 1), "rule": round(rule, 1),
                                          "every_stride1_conv": round(every, 1)},
                       "rule_vs_native": round(rule / native, 3), "every_vs_native": round(every / native, 3)})
        print(f"{name} {shape}, {torch.get_num_threads()} thread(s): weight gradients {native:.0f} ms native, "
              f"{rule:.0f} ms under the rule ({rule / native:.2f}x), {every:.0f} ms with every stride-1 conv switched",
              flush=True)
    return models


if __name__ == "__main__":
    main()
