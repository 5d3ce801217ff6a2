"""Parameters and GFLOPs of the HCML paper's backbones, beside the paper's Table 3 figures.

The paper reports 49 GFLOPs per view for HCML R2D-50 (T=16, 224x224) and 150 for HCML
R(2+1)D-101 (T=32, 224x224), both including HCML's overhead of 1.18x and 1.11x (Table 2), so the
plain backbones it implies are 49 / 1.18 = 41.5 and 150 / 1.11 = 135.1 GFLOPs. Video papers count
multiply-adds as FLOPs; ``gflops`` below does the same (``gflops_2x`` counts 2 per multiply-add).

Counting runs on the meta device: no weights are allocated and nothing is computed.

    python benchmarks/model_flops.py
"""
from __future__ import annotations

import argparse

import torch
from _common import env_info, write_result

import zoo
from zoo.utils import count_flops

# name -> (input (C, T, H, W), paper's GFLOPs per view with HCML, paper's HCML overhead)
PAPER = {
    "r2d_50": ((3, 16, 224, 224), 49.0, 1.18),
    "r2plus1d_101": ((3, 32, 224, 224), 150.0, 1.11),
}


def measure(name: str, input_size: tuple[int, int, int, int]) -> dict:
    with torch.device("meta"):
        model = zoo.create_model(name)
    stats = count_flops(model, input_size)
    return {
        "params": stats["params"],
        "params_m": round(stats["params"] / 1e6, 3),
        "gflops": round(stats["gflops"], 3),
        "gflops_2x": round(stats["gflops_2x"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    rows = {}
    for name, (input_size, paper_hcml, overhead) in PAPER.items():
        row = measure(name, input_size)
        row.update(
            input_size=list(input_size),
            paper_hcml_gflops=paper_hcml,
            paper_hcml_overhead=overhead,
            paper_implied_backbone_gflops=round(paper_hcml / overhead, 1),
        )
        row["ratio_to_paper_backbone"] = round(row["gflops"] / row["paper_implied_backbone_gflops"], 3)
        rows[name] = row
        print(f"{name:14s} params {row['params_m']:8.2f} M  GFLOPs {row['gflops']:8.2f}  "
              f"(paper's backbone implied: {row['paper_implied_backbone_gflops']})")
    path = write_result("model_flops", {"env": env_info("cpu"), "flops_unit": "multiply-adds", "models": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
