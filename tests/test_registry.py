"""Registry, pretrained cfgs, create_model and weight loading (timm's conventions for video)."""
import pytest
import torch
from safetensors.torch import save_file

import zoo
from zoo._builder import adapt_input_conv
from zoo._helpers import load_state_dict_file
from zoo._pretrained import PretrainedCfg
from zoo._registry import get_arch_pretrained_cfgs, register_pretrained_cfg, split_model_name_tag
from zoo.cli import main as cli_main

CLIP = (2, 3, 4, 32, 32)


@pytest.fixture
def registered_tag():
    """A temporary ``r2d_18.unit_test`` tag, removed afterwards."""
    name = "r2d_18.unit_test"
    register_pretrained_cfg(name, PretrainedCfg(num_classes=7, label_names=tuple("abcdefg")))
    yield name
    from zoo._registry import _arch_cfgs

    _arch_cfgs["r2d_18"].pop("unit_test", None)


def test_list_models_wildcards_and_modules():
    names = zoo.list_models()
    assert "r2d_50" in names and "r2plus1d_101" in names and "timm2d" in names
    assert zoo.list_models("r2plus1d_*") == [n for n in names if n.startswith("r2plus1d_")]
    assert set(zoo.list_models(["r2d_*", "r3d_*"])) == {n for n in names if n[:4] in ("r2d_", "r3d_")}
    assert "r2d_18" not in zoo.list_models("r2d_*", exclude_filters="r2d_18")
    assert set(zoo.list_models(module="video_resnet")) >= {"r2d_18", "r2plus1d_101", "i3d_50"}
    assert zoo.list_models("no_such_*") == []


def test_split_and_is_model():
    assert split_model_name_tag("r2d_50.k400") == ("r2d_50", "k400")
    assert split_model_name_tag("r2d_50") == ("r2d_50", "")
    assert zoo.is_model("r2d_50") and zoo.is_model("r2d_50.anything")
    assert not zoo.is_model("r2d_51")


def test_unknown_name_lists_closest():
    with pytest.raises(ValueError, match="r2d_50"):
        zoo.create_model("r2d_5O")
    with pytest.raises(ValueError, match="Closest registered names"):
        zoo.create_model("r2plus1d101")


def test_unknown_tag_lists_tags(registered_tag):
    with pytest.raises(ValueError, match="unit_test"):
        zoo.get_pretrained_cfg("r2d_18.no_such_tag")


def test_pretrained_listing_only_has_weighted_tags(registered_tag, tmp_path):
    assert registered_tag not in zoo.list_models(pretrained=True)  # no weights source
    assert registered_tag in zoo.list_models(include_tags=True)
    cfg = get_arch_pretrained_cfgs("r2d_18")["unit_test"]
    cfg.file = str(tmp_path / "w.safetensors")
    assert registered_tag in zoo.list_models("r2d_*", pretrained=True)
    assert registered_tag not in zoo.list_pretrained()  # weights, but no weights card: not a zoo checkpoint


def test_pretrained_without_weights_is_a_clear_error():
    with pytest.raises(ValueError, match="has no weights"):
        zoo.create_model("r2d_18", pretrained=True)


def test_video_cfg_fields_and_overlay():
    model = zoo.create_model("r2d_50", num_classes=5)
    cfg = model.pretrained_cfg
    assert len(cfg.input_size) == 4 and cfg.input_size[0] == 3
    assert cfg.num_classes == 5 and model.num_classes == 5
    assert isinstance(cfg.frame_stride, int) and len(cfg.mean) == 3 and len(cfg.std) == 3
    with pytest.raises(ValueError, match="unknown pretrained cfg field"):
        zoo.create_model("r2d_18", pretrained_cfg_overlay=dict(no_such_field=1))


def _saved_weights(tmp_path, num_classes=7, suffix=".safetensors"):
    torch.manual_seed(0)
    src = zoo.create_model("r2d_18", num_classes=num_classes).eval()
    path = tmp_path / f"w{suffix}"
    if suffix == ".safetensors":
        save_file(src.state_dict(), str(path))
    else:
        torch.save({"model": src.state_dict(), "epoch": 3}, path)
    return src, path


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_overlay_file_loads_same_outputs(tmp_path, suffix):
    src, path = _saved_weights(tmp_path, suffix=suffix)
    model = zoo.create_model("r2d_18", num_classes=7, pretrained_cfg_overlay=dict(file=str(path))).eval()
    x = torch.randn(CLIP)
    torch.testing.assert_close(model(x), src(x))


def test_checkpoint_path_loads_same_outputs(tmp_path):
    src, path = _saved_weights(tmp_path, suffix=".pth")
    model = zoo.create_model("r2d_18", num_classes=7, checkpoint_path=path).eval()
    x = torch.randn(CLIP)
    torch.testing.assert_close(model(x), src(x))


def test_head_reinitialised_when_num_classes_differs(tmp_path):
    src, path = _saved_weights(tmp_path, num_classes=7)
    model = zoo.create_model("r2d_18", num_classes=3, pretrained_cfg_overlay=dict(file=str(path))).eval()
    assert model.get_classifier().out_features == 3
    assert model.pretrained_cfg.num_classes == 3 and model.pretrained_cfg.label_names is None
    x = torch.randn(CLIP)
    src.reset_classifier(0)
    model.reset_classifier(0)
    torch.testing.assert_close(model(x), src(x))  # the trunk is the loaded one


def test_in_chans_adapts_first_conv(tmp_path):
    src, path = _saved_weights(tmp_path)
    model = zoo.create_model("r2d_18", num_classes=7, in_chans=1, pretrained_cfg_overlay=dict(file=str(path))).eval()
    first = model.pretrained_cfg.first_conv
    w = model.get_submodule(first).weight
    assert w.shape[1] == 1
    torch.testing.assert_close(w, src.get_submodule(first).weight.sum(dim=1, keepdim=True))
    gray = torch.randn(2, 1, 4, 32, 32)
    torch.testing.assert_close(model(gray), src(gray.expand(-1, 3, -1, -1, -1)))


def test_adapt_input_conv_5d_keeps_scale():
    w = torch.randn(8, 3, 3, 7, 7)
    torch.testing.assert_close(adapt_input_conv(3, w), w)
    w2 = adapt_input_conv(2, w)
    assert w2.shape == (8, 2, 3, 7, 7)
    w6 = adapt_input_conv(6, w)
    assert w6.shape == (8, 6, 3, 7, 7)
    # a 6-channel input made of the 3-channel one twice gives the same response
    torch.testing.assert_close(w6[:, :3] + w6[:, 3:], w)


def test_pickle_with_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("executed",))

    path = tmp_path / "evil.pth"
    torch.save({"model": Evil()}, path)
    with pytest.raises(ValueError, match="weights_only"):
        load_state_dict_file(path)


def test_sha256_mismatch_is_refused(tmp_path):
    _, path = _saved_weights(tmp_path)
    with pytest.raises(ValueError, match="sha256 mismatch"):
        load_state_dict_file(path, expected_sha256="0" * 64)


def test_features_only_and_out_indices():
    feats = zoo.create_model("r2d_18", features_only=True, out_indices=(1, 3))
    x = torch.randn(CLIP)
    maps = feats(x)
    assert len(maps) == 2
    for m, info in zip(maps, feats.feature_info):
        assert m.ndim == 5 and m.shape[1] == info["num_chs"]
        assert x.shape[-1] // m.shape[-1] == info["reduction"]
        assert x.shape[2] // m.shape[2] == info["temporal_reduction"]
    with pytest.raises(ValueError, match="out_indices"):
        zoo.create_model("r2d_18", features_only=True, out_indices=(9,))


def test_cli_models_table(capsys):
    assert cli_main(["models", "r2d_*"]) == 0
    out = capsys.readouterr().out
    assert "r2d_18" in out and "r2d_50" in out and "r3d_18" not in out
    assert "GFLOPs" in out and "params (M)" in out
    assert cli_main(["models", "nothing_matches_*"]) == 2
    assert "no registered model" in capsys.readouterr().err
