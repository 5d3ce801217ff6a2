"""Parameters and GFLOPs of the HCML paper's backbones and of every pretrained tag, beside the stated figures.

The paper reports 49 GFLOPs per view for HCML R2D-50 (T=16, 224x224) and 150 for HCML
R(2+1)D-101 (T=32, 224x224), both including HCML's overhead of 1.18x and 1.11x (Table 2), so the
plain backbones it implies are 49 / 1.18 = 41.5 and 150 / 1.11 = 135.1 GFLOPs. Video papers count
multiply-adds as FLOPs; ``gflops`` below does the same (``gflops_2x`` counts 2 per multiply-add).

The pretrained tags (``*.tv_k400``, ``*.pv_k400``, ``*.pv_ssv2``) are counted at their eval input (the
tag's ``input_size``) beside the GFLOPs and parameters their source states (torchvision's weights meta
``_ops`` / ``num_params``; pytorchvideo's model zoo table), both in the tag's cfg. Two more counts explain
where they differ: ``gflops_with_bn_5`` adds 5 per batch-norm output element (fvcore's count of a
``batch_norm`` with affine parameters run in training mode, which pytorchvideo's table includes for most
rows), and Swin3D's count at 16 frames (torchvision's ``_ops`` are for 16 frames, its eval uses 32).
``hcml_overhead``: deployed HCML (``create_model('hcml', backbone=ARCH)``) against the plain backbone at
the tag's input, for ``x3d_m`` and ``slowfast_r50``.

Counting runs on the meta device: no weights are allocated and nothing is computed.

    python benchmarks/model_flops.py
"""
from __future__ import annotations

import argparse

import torch
from _common import env_info, write_result
from torch import nn

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


HCML_BACKBONES = {"x3d_m": "x3d_m.pv_k400", "slowfast_r50": "slowfast_r50.pv_k400"}  # backbone -> its input's tag


def _batch_norm_elements(model: nn.Module, input_size: tuple[int, ...]) -> int:
    """Output elements of all batch-norm layers on one clip (meta device: shapes only)."""
    count = [0]

    def hook(module, inputs, output):
        count[0] += output.numel()

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *input_size, device="meta"))
    finally:
        for h in hooks:
            h.remove()
    return count[0]


def measure_tag(name: str) -> dict:
    """One pretrained tag at its eval input: ours beside the source's stated figures."""
    cfg = zoo.get_pretrained_cfg(name)
    input_size = tuple(cfg.input_size)
    with torch.device("meta"):
        model = zoo.create_model(name)
    stats = count_flops(model, input_size)
    bn = _batch_norm_elements(model, input_size)
    row = {
        "source": "torchvision" if ".tv_" in name else "pytorchvideo",
        "dataset": cfg.dataset,
        "input_size": list(input_size),
        "frame_stride": cfg.frame_stride,
        "params": stats["params"],
        "params_m": round(stats["params"] / 1e6, 3),
        "gflops": round(stats["gflops"], 3),
        "stated_params": cfg.num_params,
        "stated_gflops": cfg.gflops,
        "ratio_to_stated": round(stats["gflops"] / cfg.gflops, 4),
        "batch_norm_output_elements": bn,
        "gflops_with_bn_5": round(stats["gflops"] + 5 * bn / 1e9, 3),
    }
    if name.startswith("swin3d_"):
        sixteen = (input_size[0], 16, *input_size[2:])
        row["gflops_at_16_frames"] = round(count_flops(model, sixteen)["gflops"], 3)
    return row


def measure_hcml(backbone: str, tag: str) -> dict:
    input_size = tuple(zoo.get_pretrained_cfg(tag).input_size)
    plain = measure(backbone, input_size)
    with torch.device("meta"):
        model = zoo.create_model("hcml", backbone=backbone)
    model.deploy()
    stats = count_flops(model, input_size)
    return {
        "input_size": list(input_size),
        "plain": plain,
        "deployed": {"params": stats["params"], "params_m": round(stats["params"] / 1e6, 3),
                     "gflops": round(stats["gflops"], 3)},
        "gflops_ratio": round(stats["gflops"] / plain["gflops"], 4),
        "params_ratio": round(stats["params"] / plain["params"], 4),
        "hcml_cfg": model.hcml_cfg.to_dict(),
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
    tags = [n for n in zoo.list_models(pretrained=True) if zoo.get_pretrained_cfg(n).url]
    pretrained = {}
    for name in tags:
        row = pretrained[name] = measure_tag(name)
        print(f"{name:24s} params {row['params_m']:8.2f} M  GFLOPs {row['gflops']:8.2f}  "
              f"(stated {row['stated_gflops']}; +5/BN element {row['gflops_with_bn_5']})")
    hcml = {}
    for backbone, tag in HCML_BACKBONES.items():
        row = hcml[backbone] = measure_hcml(backbone, tag)
        print(f"hcml on {backbone:14s} {row['deployed']['gflops']:8.2f} GFLOPs vs {row['plain']['gflops']:8.2f}: "
              f"{row['gflops_ratio']:.3f}x")
    payload = {"env": env_info("cpu"), "flops_unit": "multiply-adds", "models": rows, "pretrained": pretrained,
               "hcml_overhead": hcml}
    path = write_result("model_flops", payload)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
