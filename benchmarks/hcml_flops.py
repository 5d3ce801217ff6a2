"""Parameters and GFLOPs of the deployed HCML models against their plain backbones (HCML Table 2).

The paper's HCML overheads are 1.18x on R2D-50 (T=16, 224x224) and 1.11x on R(2+1)D-101 (T=32,
224x224); the adapters' defaults (``zoo.adapters.HCMLConfig``) must stay under them. Counted with
``torch.utils.flop_counter`` on the meta device (nothing is allocated or computed), one clip,
``gflops`` in multiply-adds as video papers count them (``gflops_2x``: 2 FLOPs per multiply-add).
The deployed model is counted: the side branch (flow heads, predictors) is training-only.

The cost volume is counted: ``zoo::temporal_correlation`` registers ``2 B C T H W D`` FLOPs with
the flop counter (``C`` the reduced channels, ``D = (2r+1)^2`` displacements), as the ``zoo.kernels`` docstring counts.

``families`` (the second table): every registered architecture of every family, ``create_model('hcml',
backbone=ARCH)`` with the default adapters, at the architecture's default input (its default cfg's
``input_size``: the clip its weights were evaluated on), plain and deployed, with the cost volumes' share, and
the weights' source GFLOPs where its tag gives them (torchvision and pytorchvideo count differently; a
cross-check of the plain count only).

    python benchmarks/hcml_flops.py
"""
from __future__ import annotations

import argparse

import torch
from _common import env_info, write_result
from torch.utils.flop_counter import FlopCounterMode

import zoo
from zoo.adapters import hcml_stages
from zoo.utils import count_flops

# hcml model -> (plain backbone, input (C, T, H, W), the paper's HCML overhead, Table 2)
MODELS = {
    "hcml_r2d_50": ("r2d_50", (3, 16, 224, 224), 1.18),
    "hcml_r2plus1d_101": ("r2plus1d_101", (3, 32, 224, 224), 1.11),
}


def level_gflops(model: torch.nn.Module, input_size: tuple[int, ...]) -> dict[str, dict[str, float]]:
    """Multiply-adds (G) of each level's prime motion block, its cost volume and its fusion conv ``g``."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(1, *input_size, device="meta"))
    counts = counter.get_flop_counts()
    root = type(model).__name__
    out = {}
    for level, stage in hcml_stages(model).items():
        name = stage.stage_name

        def total(path: str) -> float:
            return sum(counts.get(f"{root}.{path}", {}).values()) / 2 / 1e9

        correlation = counts.get(f"{root}.{name}.motion", {}).get(torch.ops.zoo.temporal_correlation, 0) / 2 / 1e9
        out[f"level{level}"] = {
            "module": name,
            "motion_gflops": round(total(f"{name}.motion"), 4),
            "cost_volume_gflops": round(correlation, 4),
            "fuse_gflops": round(total(f"{name}.fuse"), 4),
            "cost_channels": stage.motion.cost_channels,
            "motion_channels": stage.motion.out_channels,
            "reduced_channels": stage.motion.reduce.out_channels,
            "max_displacement": stage.motion.max_displacement,
            "displacement_stride": stage.motion.displacement_stride,
        }
    return out


def measure(name: str, input_size: tuple[int, ...]) -> tuple[torch.nn.Module, dict]:
    with torch.device("meta"):
        model = zoo.create_model(name)
    if hasattr(model, "deploy"):
        model.deploy()
    stats = count_flops(model, input_size)
    row = {
        "params": stats["params"],
        "params_m": round(stats["params"] / 1e6, 3),
        "gflops": round(stats["gflops"], 3),
        "gflops_2x": round(stats["gflops_2x"], 3),
    }
    return model, row


def family_rows() -> dict[str, dict]:
    """Every registered backbone (not the ``hcml*`` ones): plain and deployed-HCML GFLOPs at its default input."""
    rows = {}
    for family in zoo.list_modules():
        if family == "hcml":
            continue
        for arch in zoo.list_models(module=family):
            with torch.device("meta"):
                input_size = tuple(zoo.create_model(arch).pretrained_cfg.input_size)
            _, plain = measure(arch, input_size)
            with torch.device("meta"):
                model = zoo.create_model("hcml", backbone=arch).deploy()
            stats = count_flops(model, input_size)
            levels = level_gflops(model, input_size)
            source = zoo.get_pretrained_cfg(arch, prefer_weights=True)
            rows[arch] = {
                "family": family,
                "input_size": list(input_size),
                "plain": plain,
                "deployed": {"params": stats["params"], "params_m": round(stats["params"] / 1e6, 3),
                             "gflops": round(stats["gflops"], 3), "gflops_2x": round(stats["gflops_2x"], 3)},
                "gflops_ratio": round(stats["gflops"] / plain["gflops"], 4),
                "params_ratio": round(stats["params"] / plain["params"], 4),
                "cost_volume_gflops": round(sum(v["cost_volume_gflops"] for v in levels.values()), 4),
                "modules": [v["module"] for v in levels.values()],
                "min_frames": model.min_frames,
                "source_tag": f"{arch}.{source.tag}" if source.has_weights and source.tag else None,
                "source_gflops": source.gflops if source.has_weights else None,
                "levels": levels,
            }
            print(f"{arch:16s} {'x'.join(map(str, input_size[1:])):12s} {plain['gflops']:8.2f} -> "
                  f"{rows[arch]['deployed']['gflops']:8.2f} GFLOPs ({rows[arch]['gflops_ratio']:.3f}x)")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    rows = {}
    for name, (backbone, input_size, paper_overhead) in MODELS.items():
        _, plain = measure(backbone, input_size)
        model, hcml = measure(name, input_size)
        ratio = hcml["gflops"] / plain["gflops"]
        rows[name] = {
            "backbone": backbone,
            "input_size": list(input_size),
            "deployed": hcml,
            "plain": plain,
            "gflops_ratio": round(ratio, 4),
            "params_ratio": round(hcml["params"] / plain["params"], 4),
            "paper_gflops_ratio": paper_overhead,
            "within_paper_budget": ratio <= paper_overhead,
            "levels": level_gflops(model, input_size),
            "hcml_cfg": model.hcml_cfg.to_dict(),
        }
        print(
            f"{name:18s} {hcml['gflops']:8.2f} GFLOPs vs {backbone} {plain['gflops']:8.2f}: {ratio:.3f}x "
            f"(paper {paper_overhead}x); params {hcml['params_m']:.2f} M vs {plain['params_m']:.2f} M"
        )
    path = write_result(
        "hcml_flops",
        {
            "env": env_info("cpu"),
            "flops_unit": "multiply-adds",
            "models": rows,
            "paper_max_gflops_ratio": max(MODELS[n][2] for n in MODELS),
            "families": family_rows(),
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
