"""What makes the training step fast keeps it the same step: the HCML flow head on the T-1 real pairs, its
channels-last convs, the InfoNCE gradients of the forward pass, the kernels' default backend, channels-last
models with 2-D and 3-D convs, torch.compile with its fall-back, the cuDNN bf16 Conv3d warning, and the
benchmark of whole steps (benchmarks/train_step.py) in its dry run."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from zoo import create_model, kernels
from zoo.adapters import capture_motion
from zoo.adapters.flow import FlowHead
from zoo.methods import create_objective
from zoo.methods.hcml import level_frames, reconstruction_loss
from zoo.train import recipe_from_dict
from zoo.train.recipe import RecipeError
from zoo.train.runtime import CompiledObjective, Runtime, conv3d_precision_warning, to_channels_last

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parent.parent
TINY_HCML = {"levels": (1, 2), "max_displacement": 1, "displacement_stride": 1}


def _tiny_hcml(**cfg):
    torch.manual_seed(0)
    return create_model("hcml_r2d_18", num_classes=4, hcml_cfg={**TINY_HCML, **cfg})


def test_joint_loss_and_gradients_equal_the_full_flow_heads():
    """The objective runs the flow head on the T-1 real pairs; the losses never read the last step's flow, so the
    loss and every gradient equal those of the flow head run on all T steps."""
    model = _tiny_hcml()
    objective = create_objective("hcml", model, stage="level1").train()
    clips = torch.randn(2, 3, 4, 32, 32)
    out = objective(clips)
    fast = torch.autograd.grad(out["loss_reconstruct_l1"], objective.trainable_parameters())

    with capture_motion(model, stop_after_level=1) as motion:
        model(clips)
    flow = model.hcml["flow"]["1"](motion[1]).float()  # all T steps
    frames = F.adaptive_avg_pool3d(level_frames(clips, 1, motion[1].shape[2]), flow.shape[2:])
    full = reconstruction_loss(flow, frames)["reconstruct"]
    slow = torch.autograd.grad(full, objective.trainable_parameters(), allow_unused=True)
    torch.testing.assert_close(out["loss_reconstruct_l1"], full, rtol=1e-5, atol=1e-6)
    for a, b in zip(fast, slow):
        torch.testing.assert_close(a, torch.zeros_like(a) if b is None else b, rtol=1e-4, atol=1e-6)


def test_flow_head_channels_last_convs_compute_the_same_flow():
    head = FlowHead(16)
    motion = torch.randn(2, 16, 3, 12, 12, requires_grad=True)
    flow = head(motion)
    assert flow.shape == (2, 2, 3, 12, 12)
    # the same layers on the NCHW frames, as the head ran before it switched to channels-last
    x = motion.transpose(1, 2).reshape(6, 16, 12, 12).contiguous()
    for layer in head.hidden:
        x = torch.cat([x, layer(x)], dim=1)
    reference = head.predict(x).reshape(2, 3, 2, 12, 12).transpose(1, 2)
    torch.testing.assert_close(flow, reference, rtol=1e-4, atol=1e-5)
    (grad,) = torch.autograd.grad(flow.square().sum(), motion)
    (grad_ref,) = torch.autograd.grad(reference.square().sum(), motion)
    torch.testing.assert_close(grad, grad_ref, rtol=1e-4, atol=1e-5)


def test_info_nce_gradients_come_from_the_forward_pass_when_reduced(monkeypatch):
    """'mean' and 'sum' compute the gradients with the loss (three matmuls); 'none' recomputes in backward."""
    from zoo.kernels import contrastive

    calls = []
    original = contrastive.info_nce_chunked_backward
    monkeypatch.setattr(contrastive, "info_nce_chunked_backward",
                        lambda *a: calls.append("backward") or original(*a))
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(40, 8, generator=gen, dtype=torch.float64, requires_grad=True)
    k = torch.randn(60, 8, generator=gen, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 60, (40,), generator=gen)
    weights = torch.rand(40, generator=gen, dtype=torch.float64)
    for reduction in ("mean", "sum", "none"):
        loss = kernels.info_nce(q, k, target, 0.2, reduction=reduction)
        loss = (loss * weights).sum() if reduction == "none" else 3.0 * loss
        grads = torch.autograd.grad(loss, [q, k])
        logits = F.normalize(q, dim=1) @ F.normalize(k, dim=1).T / 0.2
        oracle = F.cross_entropy(logits, target, reduction=reduction)
        oracle = (oracle * weights).sum() if reduction == "none" else 3.0 * oracle
        for got, want in zip(grads, torch.autograd.grad(oracle, [q, k])):
            torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)
    assert calls == ["backward"]  # only 'none'
    with torch.no_grad():  # no gradients wanted: none computed, the loss is the same
        torch.testing.assert_close(kernels.info_nce(q, k, target, 0.2), F.cross_entropy(
            F.normalize(q, dim=1) @ F.normalize(k, dim=1).T / 0.2, target))


def test_use_backend_sets_what_auto_means_in_a_block():
    from zoo.kernels._triton import TRITON_AVAILABLE, resolve_backend

    cpu = torch.device("cpu")
    assert kernels.get_default_backend() == "auto" and resolve_backend("auto", cpu, "op") == "torch"
    with kernels.use_backend("torch"):
        assert resolve_backend("auto", torch.device("cuda"), "op") == "torch"
        if TRITON_AVAILABLE:
            assert resolve_backend("triton", cpu, "op") == "triton"  # an explicit backend is kept
            with kernels.use_backend("triton"):
                assert resolve_backend("auto", cpu, "op") == "triton"
                assert resolve_backend("auto", cpu, "op", triton_ok=False) == "torch"  # e.g. float64
            assert kernels.get_default_backend() == "torch"
    with pytest.raises(RuntimeError), kernels.use_backend("torch"):
        raise RuntimeError("boom")
    assert kernels.get_default_backend() == "auto"
    with pytest.raises(ValueError, match="backend must be one of"), kernels.use_backend("cuda"):
        pass


@pytest.mark.skipif(not kernels._triton.TRITON_AVAILABLE, reason="needs Triton (its interpreter)")
def test_use_backend_triton_runs_the_kernels_in_a_model():
    model = _tiny_hcml().deploy().eval()
    clips = torch.randn(1, 3, 3, 16, 16)
    with torch.no_grad():
        reference = model(clips)
        with kernels.use_backend("triton"):  # interpreted on CPU tensors
            interpreted = model(clips)
    torch.testing.assert_close(interpreted, reference, rtol=1e-4, atol=1e-5)


def test_channels_last_converts_2d_and_3d_weights_and_trains():
    model = _tiny_hcml()
    with pytest.raises(RuntimeError, match="rank 5"):
        create_model("hcml_r2d_18", num_classes=4, hcml_cfg=TINY_HCML).to(memory_format=torch.channels_last_3d)
    to_channels_last(model)
    assert model.stem[0].weight.is_contiguous(memory_format=torch.channels_last_3d)
    assert model.hcml["flow"]["1"].hidden[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    reference = _tiny_hcml()
    clips = torch.randn(2, 3, 4, 32, 32)
    labels = torch.tensor([0, 1])
    out = create_objective("hcml", model, stage="joint").train()(
        clips.contiguous(memory_format=torch.channels_last_3d), labels)
    ref = create_objective("hcml", reference, stage="joint").train()(clips, labels)
    torch.testing.assert_close(out["loss"], ref["loss"], rtol=1e-4, atol=1e-5)
    out["loss"].backward()


class _Sum(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x):
        return {"loss": self.fc(x).sum()}


def test_compiled_objective_puts_the_kernels_custom_ops_in_the_graph():
    model = _tiny_hcml()
    objective = create_objective("hcml", model, stage="joint").train()
    graphs = []

    def record(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    compiled = CompiledObjective(objective, backend=record, label="joint")
    clips, labels = torch.randn(1, 3, 3, 16, 16), torch.tensor([1])
    torch.manual_seed(0)
    out = compiled(clips, labels)
    torch.manual_seed(0)
    eager = objective(clips, labels)
    assert compiled.compiled and compiled.fallback_reason is None
    torch.testing.assert_close(out["loss"], eager["loss"], rtol=1e-5, atol=1e-6)
    targets = {str(node.target) for gm in graphs for node in gm.graph.nodes if node.op == "call_function"}
    assert any("zoo.temporal_correlation" in t for t in targets), targets
    assert any("zoo.info_nce_forward" in t for t in targets), targets
    out["loss"].backward()
    # another clip size: dynamo retraces with symbolic shapes (the contrastive loss's sampling takes them)
    out = compiled(torch.randn(2, 3, 4, 32, 32), torch.tensor([0, 1]))
    assert compiled.compiled and compiled.fallback_reason is None
    out["loss"].backward()


def test_compiled_objective_falls_back_with_one_message_past_its_recompile_budget():
    import torch._dynamo.config as dynamo_config

    class Other(_Sum):  # a code object of its own: no cache entries from other tests
        def forward(self, x):
            return {"loss": self.fc(x).square().sum()}

    messages = []
    compiled = CompiledObjective(Other(), backend="eager", recompile_limit=2, label="stage 'x'", log=messages.append)
    with dynamo_config.patch(automatic_dynamic_shapes=False):
        for n in range(1, 6):  # a new static shape each call: a recompilation each
            out = compiled(torch.randn(n, 3))
            assert torch.isfinite(out["loss"])
    assert not compiled.compiled
    assert len(messages) == 1 and "stage 'x'" in messages[0] and "compile_recompile_limit=2" in messages[0]
    assert "continues eagerly" in messages[0]


def test_compiled_objective_lets_the_objectives_own_errors_through():
    class Picky(_Sum):
        def forward(self, x):
            if x.shape[1] != 3:
                raise ValueError("expected (N, 3)")
            return super().forward(x)

    compiled = CompiledObjective(Picky(), backend="eager", log=lambda m: pytest.fail(m))
    with pytest.raises(ValueError, match=r"expected \(N, 3\)"):
        compiled(torch.randn(2, 4))


def test_conv3d_precision_warning_names_the_bad_cudnn(monkeypatch):
    model = create_model("r2d_18", num_classes=4)
    cuda_bf16 = Runtime(device=torch.device("cuda"), amp_dtype=torch.bfloat16)
    monkeypatch.setattr(torch.backends.cudnn, "is_available", lambda: True)
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 91002)
    warning = conv3d_precision_warning(model, cuda_bf16)
    assert warning and "cuDNN 9.10" in warning and "9.15" in warning and "163539" in warning
    assert conv3d_precision_warning(model, Runtime(device=torch.device("cuda"), amp_dtype=torch.float16)) is None
    assert conv3d_precision_warning(model, Runtime()) is None  # CPU
    assert conv3d_precision_warning(FlowHead(4), cuda_bf16) is None  # no Conv3d
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 91500)
    assert conv3d_precision_warning(model, cuda_bf16) is None


def _recipe(tmp_path, **changes) -> dict:
    raw = {
        "name": "speed", "output_dir": str(tmp_path / "run"), "progress": False, "log_every": 1,
        "max_steps_per_epoch": 2,
        "model": {"name": "hcml_r2d_18", "kwargs": {"hcml_cfg": {"levels": [1, 2], "max_displacement": 1}}},
        "data": {"kind": "moving_digits", "num_frames": 4, "frame_stride": 2, "batch_size": 2, "num_workers": 0,
                 "options": {"classes": ["left", "right"], "videos_per_class": 2, "eval_videos_per_class": 1,
                             "frame_size": 32, "progress": False}},
        "optim": {"lr": 0.01, "base_batch_size": 2},
        "stages": [{"name": "joint", "objective": "hcml", "objective_cfg": {"stage": "joint"}, "epochs": 1}],
        "eval": {"every": 1, "confusion_matrix": False},
    }
    raw.update(changes)
    return raw


def test_recipe_compile_settings_and_their_checks(tmp_path):
    recipe = recipe_from_dict(_recipe(tmp_path))
    assert recipe.compile is False and recipe.compile_mode == "default" and recipe.compile_recompile_limit == 8
    assert recipe.channels_last is None
    with pytest.raises(RecipeError, match="compile_mode must be one of"):
        recipe_from_dict(_recipe(tmp_path, compile_mode="fastest"))
    with pytest.raises(RecipeError, match="compile_recompile_limit must be at least 1"):
        recipe_from_dict(_recipe(tmp_path, compile_recompile_limit=0))


def test_training_compiled_and_channels_last(tmp_path, capsys):
    """compile: true (aot_eager: AOTAutograd's graphs without code generation) and channels_last: true train an HCML
    model with its 2-D flow head on a CPU, to the same first-step loss as eager."""
    from zoo.train import Trainer

    losses = {}
    for name, changes in {"eager": {}, "compiled": {"compile": True, "compile_backend": "aot_eager"},
                          "channels_last": {"channels_last": True}}.items():
        recipe = recipe_from_dict(_recipe(tmp_path / name, max_epochs=1))
        for key, value in changes.items():
            setattr(recipe, key, value)
        result = Trainer(recipe).run()
        rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
        losses[name] = next(r["loss"] for r in rows if r.get("kind") == "train")
    assert "torch.compile gave up" not in capsys.readouterr().out
    assert losses["compiled"] == pytest.approx(losses["eager"], rel=1e-4)
    assert losses["channels_last"] == pytest.approx(losses["eager"], rel=1e-4)


def test_train_step_benchmark_dry_run(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_BENCH_RESULTS", str(tmp_path))
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    for module in ("_common", "train_step"):
        sys.modules.pop(module, None)
    import train_step

    assert train_step.main(["--dry-run", "--groups", "hcml", "peers", "channels_last", "cpu_bf16", "--name",
                            "steps"]) == 0
    groups = json.loads((tmp_path / "steps.json").read_text())["groups"]
    hcml = {c["name"]: c for c in groups["hcml"]["cases"]}
    assert {"r2d_18", "hcml_r2d_18.joint", "hcml_r2d_18.deployed", "hcml_r2d_18.level1"} <= set(hcml)
    assert hcml["hcml_r2d_18.joint"]["target_max"] == 1.25 and hcml["hcml_r2d_18.deployed"]["target_max"] == 1.12
    assert "ratio" in hcml["hcml_r2d_18.joint"] and "cpu_time_ratio" in hcml["hcml_r2d_18.joint"]
    peers = {c["name"]: c for c in groups["peers"]["cases"]}
    assert peers["r3d_18"]["baseline"] == "tv:r3d_18" and peers["r3d_18"]["target_max"] == 1.02
    assert all(c["peak_mib"] is None or c["peak_mib"] >= 0 for g in groups.values() for c in g["cases"])
    channels_last = {c["name"]: c for c in groups["channels_last"]["cases"]}
    assert channels_last["hcml_r2d_18.joint.channels_last"]["channels_last"]
    bf16 = {c["name"]: c for c in groups["cpu_bf16"]["cases"]}
    assert bf16["r2d_18.48px"]["amp"] == "none" and bf16["r2d_18.48px.bf16"]["amp"] == "bf16"
    assert bf16["hcml_r2d_18.joint.bf16"]["baseline"] == "hcml_r2d_18.joint"
    assert groups["hcml"]["cases"][0]["amp"] == "none"


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_optimizers_run_fused_with_the_same_updates(name):
    from zoo.train.optim import build_optimizer
    from zoo.train.recipe import OptimConfig

    torch.manual_seed(0)
    # no conv bias before the BN: its gradient is rounding noise, which Adam's normalisation would amplify
    models = [nn.Sequential(nn.Conv3d(3, 4, 3, bias=False), nn.BatchNorm3d(4), nn.Flatten(), nn.LazyLinear(2))
              for _ in range(2)]
    x = torch.randn(2, 3, 4, 6, 6)
    for m in models:
        m(x)
    models[1].load_state_dict(models[0].state_dict())
    fused = build_optimizer(list(models[0].named_parameters()), OptimConfig(name=name), lr=0.1)
    plain = build_optimizer(list(models[1].named_parameters()), OptimConfig(name=name), lr=0.1)
    assert fused.defaults["fused"] is True
    plain.param_groups[0]["fused"] = plain.param_groups[-1]["fused"] = None  # the per-parameter loop
    for _ in range(3):
        for m, opt in zip(models, (fused, plain)):
            m(x).square().sum().backward()
            opt.step()
            opt.zero_grad()
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_info_nce_torch_path_computes_in_float32_under_autocast():
    gen = torch.Generator().manual_seed(3)
    q = torch.randn(50, 16, generator=gen, requires_grad=True)
    k = torch.randn(70, 16, generator=gen, requires_grad=True)
    target = torch.randint(0, 70, (50,), generator=gen)
    for reduction in ("mean", "none"):
        plain = kernels.info_nce(q, k, target, 0.1, reduction=reduction).sum()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = kernels.info_nce(q, k, target, 0.1, reduction=reduction).sum()
        assert mixed.dtype == torch.float32
        torch.testing.assert_close(mixed, plain)
        for a, b in zip(torch.autograd.grad(mixed, [q, k]), torch.autograd.grad(plain, [q, k])):
            torch.testing.assert_close(a, b)


def test_cpu_bf16_autocasts_only_where_the_cpu_computes_bf16(monkeypatch, caplog):
    """amp on a CPU: auto and none stay float32; bf16 autocasts in bf16 where the CPU has bf16 arithmetic, and
    falls back to float32 with a warning where bf16 would be emulated; fp16 is CUDA-only."""
    from zoo.train import runtime

    cpu = torch.device("cpu")
    assert runtime.resolve_amp("auto", cpu) is None and runtime.resolve_amp("none", cpu) is None
    assert runtime.resolve_amp("fp16", cpu) is None
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: True)
    assert runtime.resolve_amp("bf16", cpu) is torch.bfloat16
    assert runtime.resolve_amp("auto", cpu) is None
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: False)
    with caplog.at_level("WARNING", logger="zoo.train.runtime"):
        assert runtime.resolve_amp("bf16", cpu) is None
    assert "no bf16 arithmetic" in caplog.text and "training in float32" in caplog.text


def test_training_in_bf16_on_a_cpu(tmp_path, monkeypatch):
    """amp: bf16 on a CPU with bf16 arithmetic trains HCML's joint step under bf16 autocast: the first step's loss is
    the float32 one to bf16's precision, not the same number; validation runs under the same autocast."""
    from zoo.train import Trainer, runtime

    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: True)
    losses, accuracy = {}, {}
    for amp in ("none", "bf16"):
        trainer = Trainer(recipe_from_dict(_recipe(tmp_path / amp, amp=amp)))
        result = trainer.run()
        assert trainer.amp_dtype is (torch.bfloat16 if amp == "bf16" else None)
        rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
        losses[amp] = next(r["loss"] for r in rows if r.get("kind") == "train")
        accuracy[amp] = result.metrics["top1"]
    assert losses["bf16"] != losses["none"]
    assert losses["bf16"] == pytest.approx(losses["none"], rel=5e-2)
    assert 0.0 <= accuracy["bf16"] <= 100.0
