"""Batch statistics of MSCL's and MCL's encoders: MoCo's shuffled BN and its one-process stand-in, BN groups
(``SplitBatchNorm``): ``zoo.methods.moco.encode_in_groups`` / ``encode_keys`` and the objectives' ``bn_groups``."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import zoo
from zoo.methods import create_objective
from zoo.methods.moco import check_bn_groups, encode_in_groups, encode_keys


def _bn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5)).train()


def _rows(n: int = 8) -> torch.Tensor:
    return torch.randn(n, 6, generator=torch.Generator().manual_seed(1)) * 3 + 1


def test_groups_get_their_own_batch_statistics():
    encode, x = _bn(), _rows()
    grouped = encode_in_groups(encode, x, 2)
    # each half normalised by its own mean and variance: both halves have zero mean per channel
    torch.testing.assert_close(grouped, torch.cat([encode(x[:4]), encode(x[4:])]))
    torch.testing.assert_close(grouped[:4].mean(0), torch.zeros(5), atol=1e-5, rtol=0)
    torch.testing.assert_close(grouped[4:].mean(0), torch.zeros(5), atol=1e-5, rtol=0)
    assert not torch.allclose(grouped, encode(x), atol=1e-3)  # the whole batch's statistics differ
    torch.testing.assert_close(encode_in_groups(encode, x, 1), encode(x))
    pair = encode_in_groups(lambda r: (encode(r), r.sum(1)), x, 4)  # tuples of outputs, each concatenated
    torch.testing.assert_close(pair[1], x.sum(1))
    torch.testing.assert_close(pair[0], torch.cat([encode(c) for c in x.chunk(4)]))


def test_groups_must_divide_the_batch_and_be_positive_ints():
    with pytest.raises(ValueError, match="bn_groups=3 must divide this process's batch of 8 clips"):
        encode_in_groups(_bn(), _rows(), 3)
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="bn_groups must be an int >= 1"):
            check_bn_groups(bad)
    with pytest.raises(ValueError, match="bn_groups must be an int >= 1"):
        create_objective("mscl", zoo.create_model("r3d_18", num_classes=8), queue_size=8, bn_groups=0)


def test_shuffled_keys_come_back_in_order_with_their_group_statistics():
    encode, x = _bn(), _rows()
    torch.manual_seed(5)
    perm = torch.randperm(8)
    torch.manual_seed(5)
    keys = encode_keys(encode, x, shuffle=True, groups=2)
    # the key of row i: normalised with the statistics of the shuffled group row i was dealt into
    expected = torch.empty_like(keys)
    for group in perm.chunk(2):
        expected[group] = encode(x[group])
    torch.testing.assert_close(keys, expected)
    assert not torch.allclose(keys, encode_in_groups(encode, x, 2), atol=1e-3)  # other groups than in order
    assert not keys.requires_grad


def test_one_group_in_one_process_draws_no_shuffle():
    encode, x = _bn(), _rows()
    state = torch.get_rng_state()
    keys = encode_keys(encode, x, shuffle=True, groups=1)
    assert torch.equal(torch.get_rng_state(), state)  # nothing drawn: the shuffle could change nothing
    torch.testing.assert_close(keys, encode(x))


def _views(batch: int, views: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    rgb = torch.randn(batch * views, 3, 8, 16, 16, generator=g)
    flow = torch.nn.functional.interpolate(torch.randn(batch * views, 2, 8, 4, 4, generator=g), size=(8, 16, 16),
                                           mode="trilinear") * 3
    return torch.cat([rgb, flow], dim=1)


def _bn_batches(module: nn.Module) -> tuple[list[int], object]:
    sizes: list[int] = []
    bn = next(m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm))
    return sizes, bn.register_forward_pre_hook(lambda m, args: sizes.append(args[0].shape[0]))


@pytest.mark.parametrize("method", ["mscl", "mcl"])
def test_objectives_encode_queries_and_keys_in_bn_groups(method):
    torch.manual_seed(0)
    objective = create_objective(method, zoo.create_model("r3d_18", num_classes=8), queue_size=16, bn_groups=2)
    assert "bn_groups=2" in repr(objective)
    key_encoder = objective.rgb_key if method == "mscl" else objective.key_model
    query_sizes, h1 = _bn_batches(objective.model)
    key_sizes, h2 = _bn_batches(key_encoder)
    views = 2 if method == "mscl" else 4
    clips = _views(4, views)
    kwargs = {} if method == "mscl" else {"view_target": torch.tensor([1, 0, 1, 0])}
    try:
        out = objective.train()(clips, **kwargs)
    finally:
        h1.remove()
        h2.remove()
    assert query_sizes == [2, 2]  # 4 queries, 2 groups of 2
    assert key_sizes == [2, 2] * (views - 1)  # every key batch likewise (MCL: three of them)
    assert torch.isfinite(out["loss"])
    out["loss"].backward()
    assert objective.model.stem[0].weight.grad is not None and objective.model.stem[0].weight.grad.abs().sum() > 0
    if method == "mcl":
        assert torch.isfinite(out["loss_mal"])  # MAL's gradient map joins both groups' conv maps
    with pytest.raises(ValueError, match="bn_groups=2 must divide this process's batch of 3 clips"):
        objective(_views(3, views), **({} if method == "mscl" else {"view_target": torch.tensor([1, 0, 1])}))
