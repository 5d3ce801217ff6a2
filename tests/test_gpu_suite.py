"""benchmarks/gpu_suite.sh cannot rot: its --dry-run runs every step of the GPU suite on the CPU at tiny sizes
(Triton kernels through the interpreter), and the summary table reads what the steps wrote."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None,
                                reason="the suite is a bash script using coreutils' timeout")


def test_gpu_suite_dry_run(tmp_path):
    env = dict(os.environ, ZOO_BENCH_RESULTS=str(tmp_path), OMP_NUM_THREADS="1")
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_suite.sh"), "--dry-run", "--python", sys.executable],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "every step finished" in proc.stdout

    steps = json.loads((tmp_path / "train_step_cpu.json").read_text())
    assert set(steps["groups"]) == {"gpu", "gpu_compile"}
    gpu = {c["name"]: c for c in steps["groups"]["gpu"]["cases"]}
    assert set(gpu) == {"r2d_18", "hcml_r2d_18.joint", "hcml_r2d_18.joint.triton", "hcml_r2d_18.deployed"}
    assert gpu["hcml_r2d_18.joint.triton"]["kernels"] == "triton"  # the interpreter ran the kernels in a step
    assert gpu["hcml_r2d_18.joint.triton"]["baseline"] == "hcml_r2d_18.joint"
    compiled = {c["name"]: c for c in steps["groups"]["gpu_compile"]["cases"]}["hcml_r2d_18.joint.triton.compiled"]
    assert compiled["compiled"] and compiled["compile_fallback"] is None
    assert all(c["median_ms"] > 0 for g in steps["groups"].values() for c in g["cases"])

    correlation = json.loads((tmp_path / "correlation_cpu.json").read_text())
    assert correlation["dry_run"] and set(correlation["implementations"]) == {"triton", "reference", "naive"}
    contrastive = json.loads((tmp_path / "contrastive_cpu.json").read_text())
    assert contrastive["dry_run"] and {c["kind"] for c in contrastive["cases"]} == {"square", "moco"}
    assert all("time_ms" in c["fused"] for c in contrastive["cases"])

    table = proc.stdout.split("=== summary", 1)[1]
    for row in ("correlation", "info_nce", "train_step/gpu ", "train_step/gpu_compile", "hcml_r2d_18.joint.triton"):
        assert row in table
    assert not list(Path(ROOT / "benchmarks" / "results").glob("*_dry_run.json"))  # dry runs stay out of results/
