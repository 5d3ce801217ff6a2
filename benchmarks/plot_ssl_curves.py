"""The per-term training curves of ``ssl_moving_digits.py``'s runs as one PNG.

    python benchmarks/plot_ssl_curves.py [--name ssl_moving_digits_cpu] [--seed 0]

Reads ``benchmarks/results/<name>.json`` (its ``curves``: every scalar the objectives logged, per step)
and writes ``benchmarks/results/<name>.png``: per method its loss terms, and for MSCL and MCL the
positive and mean negative cosines with the queues' fill levels.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR  # noqa: E402

TERMS = {
    "hcml": ["loss", "loss_reconstruct_l1", "loss_contrastive_l2", "loss_contrastive_l3"],
    "mscl": ["loss_rgb", "loss_flow", "loss_flow_rotated", "loss_rgb_flow", "loss_flow_rgb", "loss_rgb_flow_rotated",
             "loss_flow_rotated_rgb", "loss_lmcl"],
    "mcl": ["loss_inter_same", "loss_inter_other", "loss_intra", "loss_mal", "loss_order"],
}
LOGITS = {
    "mscl": [("logit_pos_rgb", "logit_neg_rgb"), ("logit_pos_flow", "logit_neg_flow"),
             ("logit_pos_cross", "logit_neg_cross")],
    "mcl": [("logit_pos", "logit_neg")],
}
FILL = {"mscl": ["queue_fill_rgb", "queue_fill_flow"], "mcl": ["queue_fill"]}


def plot(name: str, seed: int) -> Path:
    data = json.loads((RESULTS_DIR / f"{name}.json").read_text())
    runs = {m: next((r for r in e["runs"] if r["seed"] == seed), None) for m, e in data["results"].items()
            if m != "random"}
    runs = {m: r for m, r in runs.items() if r and "curves" in r}
    planned = data["settings"].get("methods", ["hcml", "mscl", "mcl"])  # a column per method the job ran or meant to
    methods = [m for m in ("hcml", "mscl", "mcl") if m in planned]
    fig, axes = plt.subplots(2, len(methods), figsize=(max(8.0, 16 * len(methods) / 3), 8.5), squeeze=False)
    for col, method in enumerate(methods):
        top, bottom = axes[0][col], axes[1][col]
        run = runs.get(method)
        if run is None:
            top.set_title(f"{method.upper()}: not run")
            bottom.axis("off")
            continue
        c = run["curves"]
        steps = c["step"]
        for term in TERMS[method]:
            if term in c:
                top.plot(steps, c[term], label=term, lw=1.2)
        if method == "mscl" and "loss" in c:
            top.plot(steps, c["loss"], label="loss (total)", color="k", lw=1.6)
        top.set_title(f"{method.upper()} (seed {seed}): loss terms")
        top.set_xlabel("step")
        top.legend(fontsize=7)
        if method not in LOGITS:
            if "grad_norm" in c:
                bottom.plot(steps, c["grad_norm"], label="grad_norm")
                bottom.set_title("HCML: gradient norm")
                bottom.legend(fontsize=7)
            else:
                bottom.axis("off")
            continue
        for pos, neg in LOGITS[method]:
            if pos in c:
                line, = bottom.plot(steps, c[pos], label=pos, lw=1.4)
                bottom.plot(steps, c[neg], label=neg, lw=1.0, ls="--", color=line.get_color())
        for fill in FILL[method]:
            if fill in c:
                bottom.plot(steps, c[fill], label=fill, lw=1.0, ls=":", color="grey")
        bottom.set_title(f"{method.upper()}: positive vs mean negative cosine, queue fill")
        bottom.set_xlabel("step")
        bottom.legend(fontsize=7)
    st = data["settings"]
    fig.suptitle(f"{st['backbone']}, {st['steps']} steps of {st['batch_size']} videos, queue {st['queue_size']} "
                 f"(benchmarks/results/{name}.json)", fontsize=9)
    fig.tight_layout()
    out = RESULTS_DIR / f"{name}.png"
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--name", default="ssl_moving_digits_cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(plot(args.name, args.seed))


if __name__ == "__main__":
    main()
