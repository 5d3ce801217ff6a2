"""One table from the GPU suite's JSON files (``benchmarks/gpu_suite.sh`` prints it at the end).

    python benchmarks/gpu_summary.py --device-slug SLUG [--junit FILE] [--results DIR]

Reads ``correlation_<slug>.json``, ``contrastive_<slug>.json`` and ``train_step_<slug>.json`` from the results
folder (``$ZOO_BENCH_RESULTS`` or ``benchmarks/results``), turns the CUDA tests' JUnit XML (``--junit``) into
``gpu_tests_<slug>.json`` beside them, and prints one row per measurement: what, time, the figure that matters
(achieved fraction of the device's peak, speed-up, ratio to the baseline) and whether a target was met. A part
that did not run (or whose JSON is missing) gets a row saying so, so that the table shows what is missing.
"""
from __future__ import annotations

import argparse
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, env_info, write_result  # noqa: E402


def junit_to_json(junit: Path, slug: str, device: str) -> dict | None:
    """Counts and failures of a pytest JUnit XML, written as ``gpu_tests_<slug>.json``; None without the file."""
    if not junit.is_file():
        return None
    root = ET.parse(junit).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    failed = [f"{case.get('classname')}::{case.get('name')}" for case in root.iter("testcase")
              if case.find("failure") is not None or case.find("error") is not None]
    payload = {"benchmark": "gpu_tests", "env": env_info(device), **counts,
               "passed": counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"], "failed": failed}
    write_result(f"gpu_tests_{slug}", payload)
    return payload


def _load(results: Path, name: str) -> dict | None:
    path = results / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def rows(results: Path, slug: str, tests: dict | None) -> list[list[str]]:
    out: list[list[str]] = []
    if tests is None:
        out.append(["tests", "CUDA kernel tests", "-", "did not run", "-"])
    else:
        ok = tests["failures"] == 0 and tests["errors"] == 0
        out.append(["tests", "CUDA kernel tests (fp32/fp16/bf16)", "-",
                    f"{tests['passed']} passed, {tests['failures'] + tests['errors']} failed, "
                    f"{tests['skipped']} skipped",
                    "met" if ok else "NOT met"])
    corr = _load(results, f"correlation_{slug}")
    if corr is None:
        out.append(["correlation", "-", "-", "no JSON", "-"])
    for s in (corr or {}).get("shapes", []):
        for mode in ("forward", "forward_backward"):
            for impl in corr["implementations"]:
                m = s[mode].get(impl, {})
                if "time_ms" not in m:
                    out.append(["correlation", f"{s['name']} {mode} {impl}", "-", m.get("error", "-"), "-"])
                    continue
                a = m.get("achieved", {})
                figure = (f"{a['tflop_per_s']} TFLOP/s ({100 * a['fraction_of_peak_flops']:.1f}% of peak), "
                          f"{a['tb_per_s']} TB/s ({100 * a['fraction_of_peak_bandwidth']:.1f}%)"
                          if "fraction_of_peak_flops" in a else
                          (f"{a['tflop_per_s']} TFLOP/s, {a['tb_per_s']} TB/s" if a else "-"))
                out.append(["correlation", f"{s['name']} {mode.replace('_', '+')} {impl}", f"{m['time_ms']:.3f}",
                            figure, "-"])
    nce = _load(results, f"contrastive_{slug}")
    if nce is None:
        out.append(["info_nce", "-", "-", "no JSON", "-"])
    for c in (nce or {}).get("cases", []):
        for impl in ("fused", "materialized"):
            m = c.get(impl, {})
            if "time_ms" not in m:
                out.append(["info_nce", f"{c['name']} {impl}", "-", m.get("skipped") or m.get("error", "-"), "-"])
                continue
            a = m.get("achieved", {})
            figure = f"{a['tflop_per_s']} TFLOP/s" + (f" ({100 * a['fraction_of_peak_flops']:.1f}% of peak)"
                                                      if "fraction_of_peak_flops" in a else "") if a else "-"
            if impl == "fused" and "speedup_vs_materialized" in c:
                figure += f"; {c['speedup_vs_materialized']}x faster than materialised"
                if "memory_fraction_of_materialized" in c:
                    figure += f", {100 * c['memory_fraction_of_materialized']:.1f}% of its memory"
            target = c.get("targets", {})
            out.append(["info_nce", f"{c['name']} {impl}", f"{m['time_ms']:.3f}", figure,
                        ("met" if target.get("met") else "NOT met") if impl == "fused" and target else "-"])
    steps = _load(results, f"train_step_{slug}")
    if steps is None:
        out.append(["train_step", "-", "-", "no JSON", "-"])
    for group_name, group in (steps or {}).get("groups", {}).items():
        for c in group["cases"]:
            shape = f"{c['batch']}x{c['frames']}x{c['size']}"
            figure = f"{c['clips_per_s']} clips/s, {c['peak_mib']} MiB"
            if "ratio" in c:
                figure += f"; {c['ratio']}x {c['baseline']}"
            if c.get("compile_fallback"):
                figure += f"; compile fell back: {c['compile_fallback']}"
            out.append([f"train_step/{group_name}", f"{c['name']} ({shape})", f"{c['median_ms']:.1f}", figure,
                        ("met" if c["met"] else "NOT met") if "met" in c else "-"])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device-slug", required=True, help="the JSON files' device part (e.g. nvidia_h100_80gb_hbm3)")
    parser.add_argument("--junit", type=Path, default=None, help="the CUDA tests' JUnit XML")
    parser.add_argument("--results", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    device = "cuda" if args.device_slug != "cpu" else "cpu"
    tests = junit_to_json(args.junit, args.device_slug, device) if args.junit else None
    table = rows(args.results, args.device_slug, tests)
    header = ["part", "measurement", "ms", "figure", "target"]
    widths = [max(len(str(r[i])) for r in [header, *table]) for i in range(len(header))]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths))
    print(line)
    print("-" * len(line))
    for r in table:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
