"""Convolution weight gradients computed as convolutions (zoo.layers.weight_grad): the same gradients as PyTorch's
own kernel, on the convolutions the rule names and no others, through deepcopy, pickle, no_grad, channels-last
and torch.compile, and the engine's conv_weight_grad setting."""
from __future__ import annotations

import copy
import pickle
from pathlib import Path

import pytest
import torch
from conftest import conv_outputs_and_grads, tiny_cpu_recipe, train_counting_switched_convs
from torch import nn

from zoo import create_model
from zoo.layers import conv_weight_grad, use_weight_grad_as_conv, weight_grad_as_conv_applies
from zoo.layers.weight_grad import default_weight_grad_mode
from zoo.train import recipe_from_dict
from zoo.train.recipe import RecipeError
from zoo.train.runtime import Runtime, setup_runtime

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("conv, shape", [
    (nn.Conv3d(12, 7, 3, padding=1), (2, 12, 4, 6, 5)),
    (nn.Conv3d(9, 8, (1, 3, 3), padding=(0, 1, 1), bias=False), (3, 9, 2, 5, 7)),
    (nn.Conv3d(8, 8, (3, 5, 3), padding=(0, 2, 1)), (2, 8, 5, 4, 4)),
    (nn.Conv2d(10, 6, 3, padding=0), (4, 10, 7, 6)),
    (nn.Conv2d(7, 5, (5, 3), padding=(2, 0), bias=False), (2, 7, 6, 6)),
])
def test_gradients_equal_pytorchs_own(conv, shape):
    """Output, input, weight and bias gradients of a switched convolution equal the plain one's."""
    torch.manual_seed(0)
    x = torch.randn(shape)
    plain = copy.deepcopy(conv)
    conv.in_channels = 10_000  # the rule's size threshold aside: the arithmetic is what is tested
    assert weight_grad_as_conv_applies(conv) and use_weight_grad_as_conv(conv) == 1
    conv.in_channels = plain.in_channels
    for got, want in zip(conv_outputs_and_grads(conv, x), conv_outputs_and_grads(plain, x)):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_conv_weight_grad_matches_autograd():
    torch.manual_seed(0)
    x, w = torch.randn(3, 5, 4, 6, 6), torch.randn(4, 5, 3, 3, 3, requires_grad=True)
    out = nn.functional.conv3d(x, w, padding=(1, 0, 1))
    grad_out = torch.randn_like(out)
    (want,) = torch.autograd.grad(out, w, grad_out)
    torch.testing.assert_close(conv_weight_grad(x, grad_out, (3, 3, 3), (1, 0, 1)), want, rtol=1e-5, atol=1e-5)


def test_the_rule_switches_only_the_measured_kind():
    assert weight_grad_as_conv_applies(nn.Conv3d(64, 64, 3, padding=1))  # 64 x 27 = 1728
    assert weight_grad_as_conv_applies(nn.Conv3d(256, 512, (1, 3, 3), padding=(0, 1, 1)))
    assert weight_grad_as_conv_applies(nn.Conv2d(256, 256, 3, padding=1))
    assert not weight_grad_as_conv_applies(nn.Conv3d(128, 128, (1, 3, 3)))  # 1152: below the crossover
    assert not weight_grad_as_conv_applies(nn.Conv3d(512, 512, 3, stride=2))
    assert not weight_grad_as_conv_applies(nn.Conv3d(512, 512, 3, dilation=2))
    assert not weight_grad_as_conv_applies(nn.Conv3d(512, 512, 3, groups=512))
    assert not weight_grad_as_conv_applies(nn.Conv3d(512, 512, 1))
    assert not weight_grad_as_conv_applies(nn.Conv3d(512, 512, (3, 1, 1)))
    assert not weight_grad_as_conv_applies(nn.Conv3d(512, 512, 3, padding="same"))
    assert not weight_grad_as_conv_applies(nn.Conv3d(512, 512, 3, padding=1, padding_mode="reflect"))
    assert not weight_grad_as_conv_applies(nn.Linear(512, 512))


def test_large_inputs_take_pytorchs_kernel():
    conv = nn.Conv3d(64, 64, 3, padding=1)
    use_weight_grad_as_conv(conv)
    small, large = torch.randn(1, 64, 4, 8, 8), torch.randn(1, 64, 2, 48, 48)  # 256 and 4608 positions
    assert "WeightGradAsConv" in type(conv(small).grad_fn).__name__
    assert "Convolution" in type(conv(large).grad_fn).__name__
    assert weight_grad_as_conv_applies(conv, small.shape) and not weight_grad_as_conv_applies(conv, large.shape)


def test_a_switched_model_trains_like_the_plain_one_and_survives_copies():
    """r2d_18 (its layer3 and layer4 3x3 convs switch): same outputs and gradients, unchanged state_dict keys;
    deepcopy and pickle keep the switch; idempotent; no_grad forwards and frozen weights take the plain path."""
    torch.manual_seed(0)
    plain = create_model("r2d_18", num_classes=3).train()
    model = copy.deepcopy(plain)
    assert use_weight_grad_as_conv(model) == 6 and use_weight_grad_as_conv(model) == 6
    assert model.state_dict().keys() == plain.state_dict().keys()
    x, y = torch.randn(2, 3, 2, 32, 32), torch.tensor([0, 2])
    for m in (plain, model):
        nn.functional.cross_entropy(m(x), y).backward()
    for (name, a), b in zip(plain.named_parameters(), model.parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-5, msg=name)
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        switched = [m for m in clone.modules() if "_conv_forward" in m.__dict__]
        assert len(switched) == 6
        clone.zero_grad()
        nn.functional.cross_entropy(clone(x), y).backward()
        for a, b in zip(model.parameters(), clone.parameters()):
            torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), plain.eval()(x))
    model.requires_grad_(False)
    assert model(x).grad_fn is None


def test_channels_last_and_compiled_switched_convs_give_the_same_gradients():
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Conv3d(64, 64, 3, padding=1), nn.ReLU(), nn.Conv3d(64, 8, 3, padding=1))
    switched = copy.deepcopy(plain)
    assert use_weight_grad_as_conv(switched) == 2
    x = torch.randn(2, 64, 3, 5, 5)
    (_, *want) = conv_outputs_and_grads(plain[0], x)
    last = copy.deepcopy(switched[0]).to(memory_format=torch.channels_last_3d)
    for got, ref in zip(conv_outputs_and_grads(last, x.contiguous(memory_format=torch.channels_last_3d))[1:], want):
        torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)
    compiled = torch.compile(switched, backend="aot_eager", fullgraph=True)
    compiled(x).sum().backward()
    plain(x).sum().backward()
    for a, b in zip(plain.parameters(), switched.parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-4)


def test_auto_is_conv_on_avx2_cpus_only(monkeypatch):
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert default_weight_grad_mode("cpu") == "conv"
    assert default_weight_grad_mode("cuda") == "native"
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    assert default_weight_grad_mode("cpu") == "native"


@pytest.mark.parametrize("setting, capability, expected", [
    ("auto", "AVX2", "conv"), ("auto", "AVX512", "native"), ("conv", "AVX512", "conv"), ("native", "AVX2", "native"),
])
def test_the_recipe_setting_resolves_per_cpu(tmp_path, monkeypatch, setting, capability, expected):
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    runtime = setup_runtime(recipe_from_dict(tiny_cpu_recipe(tmp_path, "r2d_18", 2, conv_weight_grad=setting)))
    assert runtime.conv_weight_grad == expected
    model = create_model("r2d_18", num_classes=2)
    assert runtime.switch_weight_grads(model) == (6 if expected == "conv" else 0)
    assert Runtime().switch_weight_grads(model) == 0  # the default runtime leaves models alone


def test_a_bad_setting_is_refused(tmp_path):
    with pytest.raises(RecipeError, match="conv_weight_grad must be one of auto, conv, native"):
        recipe_from_dict(tiny_cpu_recipe(tmp_path, "r2d_18", 2, conv_weight_grad="fast"))


def test_the_engine_switches_the_objectives_convolutions(tmp_path, monkeypatch):
    """A CPU stage with conv_weight_grad: conv trains with the switched convolutions, to the plain run's loss."""
    seen, losses = {}, {}
    for setting in ("native", "conv"):
        recipe = recipe_from_dict(tiny_cpu_recipe(tmp_path / setting, "r2d_18", 2, conv_weight_grad=setting,
                                                  max_steps_per_epoch=2))
        seen[setting], losses[setting] = train_counting_switched_convs(recipe, monkeypatch)
    assert seen == {"native": 0, "conv": 6}
    assert len(losses["conv"]) == 2 and losses["conv"] == pytest.approx(losses["native"], rel=1e-3)


def test_the_benchmark_times_both_ways_and_compares_them(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import conv_weight_grad as bench

    row = bench.time_conv(nn.Conv3d(8, 8, 3, padding=1), (2, 8, 2, 4, 4), repeats=1)
    assert row["max_rel_diff"] < 1e-5 and row["as_conv_ms"] > 0 and row["native_ms"] > 0
    assert not row["switched_by_rule"]  # 8 x 27 < 1728
    strided = bench.time_conv(nn.Conv3d(8, 8, 3, stride=2), (1, 8, 4, 6, 6), repeats=1)
    assert "as_conv_ms" not in strided and strided["native_ms"] > 0
