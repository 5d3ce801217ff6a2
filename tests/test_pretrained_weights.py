"""External pretrained weights through torch.hub's cache: torchvision's Kinetics-400 files as zoo tags.

Nothing is downloaded from the network: each test saves torchvision's randomly initialised model under
the exact file name in a temporary ``$TORCH_HOME`` (or serves a file through a ``file://`` URL), and
compares our outputs with torchvision's.
"""
import hashlib
from pathlib import Path

import pytest
import torch
from huggingface_hub import constants
from torch import nn
from torchvision.models import video as tv

import zoo
from zoo._hub import WeightsUnavailableError, url_cache_path
from zoo.data import create_transform, resolve_data_config
from zoo.train import load_recipe
from zoo.train.loaders import pretrained_data_cfg

pytestmark = pytest.mark.usefixtures("one_thread")

RECIPES = Path(__file__).resolve().parent.parent / "recipes"
TV_TAGS = {  # tag -> torchvision builder, its weights enum, the smallest clip (B, C, T, H, W) we test at
    "r3d_18.tv_k400": (tv.r3d_18, tv.R3D_18_Weights.KINETICS400_V1, (1, 3, 8, 32, 32)),
    "mc3_18.tv_k400": (tv.mc3_18, tv.MC3_18_Weights.KINETICS400_V1, (1, 3, 8, 32, 32)),
    "r2plus1d_18.tv_k400": (tv.r2plus1d_18, tv.R2Plus1D_18_Weights.KINETICS400_V1, (1, 3, 8, 32, 32)),
    "s3d.tv_k400": (tv.s3d, tv.S3D_Weights.KINETICS400_V1, (1, 3, 14, 224, 224)),
}


def _randomise(model: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    return tmp_path / "torch_home"


def _place(model: nn.Module, url: str) -> Path:
    path = url_cache_path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return path


@pytest.mark.parametrize("tag", sorted(TV_TAGS))
def test_torchvision_tag_loads_from_the_torch_hub_cache(tag, torch_home):
    build, weights, shape = TV_TAGS[tag]
    ref = _randomise(build())
    cfg = zoo.get_pretrained_cfg(tag)
    assert cfg.url == weights.url and Path(weights.url).stem.endswith(cfg.hash_prefix)
    path = _place(ref, cfg.url)
    assert path == torch_home / "hub" / "checkpoints" / Path(weights.url).name
    model = zoo.create_model(tag, pretrained=True).eval()
    x = torch.randn(shape)
    with torch.no_grad():
        expected = ref(x)
        torch.testing.assert_close(model(x), expected, rtol=1e-4, atol=1e-5 * max(1.0, expected.abs().max().item()))
    # the source's statements, as torchvision's meta gives them
    meta = weights.meta
    assert cfg.metrics["top1"] == meta["_metrics"]["Kinetics-400"]["acc@1"]
    assert cfg.metrics["top5"] == meta["_metrics"]["Kinetics-400"]["acc@5"]
    assert (cfg.num_params, cfg.gflops) == (meta["num_params"], meta["_ops"])
    assert cfg.license and cfg.dataset == "Kinetics-400"
    assert path.with_name(path.name + ".sha256").read_text().split()[0] == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("tag", sorted(TV_TAGS))
def test_data_config_gives_torchvisions_eval_transform(tag):
    _, weights, _ = TV_TAGS[tag]
    preset = weights.transforms()
    cfg = resolve_data_config(pretrained_cfg=zoo.get_pretrained_cfg(tag))
    assert cfg["mean"] == tuple(preset.mean) and cfg["std"] == tuple(preset.std)
    assert list(cfg["crop_size"]) == list(preset.crop_size)
    resize = cfg["resize_size"]
    assert ([resize] if isinstance(resize, int) else list(resize)) == list(preset.resize_size)
    frames = torch.randint(0, 256, (4, 240, 320, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    ours = create_transform(cfg, is_training=False)(frames)
    theirs = preset(frames.permute(0, 3, 1, 2))  # torchvision: (T, C, H, W) in, (C, T, H, W) out
    assert ours.shape == theirs.shape
    std = torch.tensor(preset.std).view(-1, 1, 1, 1)
    assert ((ours - theirs).abs() * std).max() <= 1 / 255 + 1e-6


def test_missing_file_offline_names_the_url_the_cache_path_and_the_ways_out(torch_home):
    cfg = zoo.get_pretrained_cfg("r3d_18.tv_k400")
    with pytest.raises(WeightsUnavailableError) as info:
        zoo.create_model("r3d_18.tv_k400", pretrained=True)
    message = str(info.value)
    assert cfg.url in message and str(url_cache_path(cfg.url)) in message and "HF_HUB_OFFLINE" in message
    assert "Traceback" not in message and not url_cache_path(cfg.url).exists()


def test_truncated_file_is_refused_and_removed_from_the_cache(torch_home):
    cfg = zoo.get_pretrained_cfg("r3d_18.tv_k400")
    path = _place(tv.r3d_18(), cfg.url)
    path.write_bytes(path.read_bytes()[: 10_000])
    with pytest.raises(ValueError, match="removed from torch.hub's cache"):
        zoo.create_model("r3d_18.tv_k400", pretrained=True)
    assert not path.exists() and not path.with_name(path.name + ".sha256").exists()


def test_a_file_that_changed_after_first_use_is_refused_naming_both_hashes(torch_home):
    cfg = zoo.get_pretrained_cfg("mc3_18.tv_k400")
    path = _place(tv.mc3_18(), cfg.url)
    zoo.create_model("mc3_18.tv_k400", pretrained=True)
    first = path.with_name(path.name + ".sha256").read_text().split()[0]
    torch.save(tv.mc3_18().state_dict(), path)
    second = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(ValueError) as info:
        zoo.create_model("mc3_18.tv_k400", pretrained=True)
    assert first in str(info.value) and second in str(info.value)


def _file_url_cfg(tmp_path, name: str, prefix: str | None) -> tuple[str, dict]:
    source = tmp_path / "server" / name
    source.parent.mkdir(parents=True)
    torch.save(_randomise(tv.r3d_18()).state_dict(), source)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    url = source.as_uri()
    return digest, dict(url=url, hash_prefix=digest[:8] if prefix is None else prefix)


def test_download_checks_the_hash_prefix_and_keeps_nothing_partial(torch_home, tmp_path, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    digest, overlay = _file_url_cfg(tmp_path, "r3d_18-deadbeef.pth", prefix="00000000")
    with pytest.raises(ValueError, match="sha256 prefix 00000000"):
        zoo.create_model("r3d_18.tv_k400", pretrained=True, pretrained_cfg_overlay=overlay)
    cache = url_cache_path(overlay["url"]).parent
    assert not cache.exists() or not any(cache.iterdir())  # no partial file passes as good later
    overlay["hash_prefix"] = digest[:8]
    model = zoo.create_model("r3d_18.tv_k400", pretrained=True, pretrained_cfg_overlay=overlay)
    assert url_cache_path(overlay["url"]).is_file() and model.num_classes == 400


def test_pretrained_tag_with_a_new_head_and_hcml_on_it_starting_as_an_identity(torch_home):
    cfg = zoo.get_pretrained_cfg("r2plus1d_18.tv_k400")
    ref = _randomise(tv.r2plus1d_18())
    _place(ref, cfg.url)
    fine_tune = zoo.create_model("r2plus1d_18.tv_k400", pretrained=True, num_classes=10)
    assert fine_tune.num_classes == 10 and fine_tune.get_classifier().out_features == 10
    torch.testing.assert_close(fine_tune.stem[0].weight, ref.stem[0].weight)
    plain = zoo.create_model("r2plus1d_18.tv_k400", pretrained=True).eval()
    adapted = zoo.create_model("hcml", backbone="r2plus1d_18.tv_k400", pretrained=True).eval()
    assert adapted.pretrained_cfg.architecture == "hcml" and adapted.pretrained_cfg.url == cfg.url
    x = torch.randn(1, 3, 8, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(adapted(x), plain(x))


def test_a_recipe_from_a_pretrained_tag_takes_its_sizes_and_normalisation():
    recipe = load_recipe(RECIPES / "finetune.yaml", ["model.name=r2plus1d_18.tv_k400", "model.pretrained=true",
                                                     "data.root=/nonexistent"])
    cfg = pretrained_data_cfg(recipe)
    assert cfg["crop_size"] == (112, 112) and cfg["mean"] == zoo.get_pretrained_cfg("r2plus1d_18.tv_k400").mean
    plain = load_recipe(RECIPES / "finetune.yaml", ["model.name=r2d_18", "model.pretrained=false",
                                                    "data.root=/nonexistent"])
    assert pretrained_data_cfg(plain) is None
