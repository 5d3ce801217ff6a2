"""The external pretrained tags as the zoo's checkpoints: their weights cards, Kinetics-400 label names,
``zoo export TAG``, ``zoo models --pretrained``, ``zoo publish`` and the Hub cache after a failed sha256 check.

Nothing reaches the network: weights files are made by the tests in a temporary ``$TORCH_HOME``
(torchvision's randomly initialised models under the exact file names), Hub repos are files laid out
in a temporary Hugging Face cache, and pushes go to a recording stand-in for ``HfApi``.
"""
import hashlib
import json
import sys
from pathlib import Path

import pytest
import torch
import yaml
from huggingface_hub import constants
from huggingface_hub.errors import RepositoryNotFoundError
from huggingface_hub.hf_api import RepoFile
from test_hub import RecordingHfApi, hf_home, place_in_cache  # noqa: F401  (hf_home: a fixture, used by name)
from torchvision.models import video as tv
from torchvision.models._meta import _KINETICS400_CATEGORIES

import zoo
from zoo import _cards, _registry
from zoo._cards import WeightsCard
from zoo._export import export_tag, save_for_hub
from zoo._hub import HubFileUnavailableError, url_cache_path
from zoo._pretrained import kinetics400_label_names
from zoo.cli import main
from zoo.cli.publish import publish, publishable_tags

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parent.parent
ORG = "motion-zoo-test"
TV_TAGS = {"r3d_18.tv_k400", "mc3_18.tv_k400", "r2plus1d_18.tv_k400", "s3d.tv_k400", "mvit_v1_b.tv_k400",
           "mvit_v2_s.tv_k400", "swin3d_t.tv_k400", "swin3d_s.tv_k400", "swin3d_b.tv_k400", "swin3d_b.tv_k400_in22k"}
PV_TAGS = {f"{arch}.pv_k400" for arch in ("x3d_xs", "x3d_s", "x3d_m", "x3d_l", "slowfast_r50", "slowfast_r101",
                                         "slow_r50", "c2d_r50", "i3d_r50", "r2plus1d_r50", "csn_r101")}
PV_TAGS |= {"slow_r50.pv_ssv2", "slowfast_r50.pv_ssv2"}
SMALL_CLIP = (8, 32, 32)  # (T, H, W): the torchvision ResNets accept any clip; keeps the checks fast


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    return tmp_path / "torch_home"


def place_torchvision_file(tag: str, seed: int = 0) -> torch.nn.Module:
    """torchvision's model with random weights (and running stats), saved where the tag's file is cached."""
    torch.manual_seed(seed)
    model = getattr(tv, tag.split(".")[0])()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    path = url_cache_path(zoo.get_pretrained_cfg(tag).url)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return model.eval()


def hub_cache() -> Path:
    """The temporary Hugging Face cache of test_hub's ``hf_home`` fixture."""
    return Path(constants.HF_HUB_CACHE)


def outputs(model, clip):
    with torch.no_grad():
        return model.eval()(clip)


# ------------------------------------------------------------------------------------------- cards


def test_every_external_tag_has_a_card_that_agrees_with_its_family():
    external = {n for n in zoo.list_models(pretrained=True) if zoo.get_pretrained_cfg(n).url}
    assert external == TV_TAGS | PV_TAGS and len(external) == 23
    assert external <= set(zoo.list_pretrained()) and set(publishable_tags()) == external
    for name in sorted(external):
        card, cfg = zoo.get_weights_card(name), zoo.get_pretrained_cfg(name)
        assert Path(card.source).name == f"{name}.yaml" and card.external and card.status == "published"
        assert _cards._disagreements(card, cfg) == [], name
        assert _cards.weights_card_model_args(cfg) == {}  # create_model(tag) takes the card's (no) arguments
        family = sys.modules[_registry.model_entrypoint(card.architecture).__module__]
        assert cfg is family.default_cfgs[name]  # the registered cfg is still the family's
        assert (card.url, card.hash_prefix) == (cfg.url, cfg.hash_prefix)
        assert card.metrics[0].values["top1"] == cfg.metrics["top1"] and card.license and card.intended_use
        if name in TV_TAGS:
            assert card.provider == "torchvision" and card.hash_prefix and card.provider_weights.startswith(
                "torchvision.models.video.")
            assert card.metrics[0].frame_rate == cfg.metrics["frame_rate"]
        else:
            assert card.provider == "pytorchvideo" and card.hash_prefix is None
            assert "pytorchvideo publishes no hash" in card.intended_use
        assert WeightsCard.from_dict(yaml.safe_load(card.to_yaml())) == card


def test_kinetics400_label_names_are_torchvisions_and_ship_with_the_package():
    assert kinetics400_label_names() == tuple(_KINETICS400_CATEGORIES)
    for name in TV_TAGS | PV_TAGS:
        cfg = zoo.get_pretrained_cfg(name)
        if name.endswith("_ssv2"):
            assert cfg.num_classes == 174 and cfg.label_names is None
            assert zoo.get_weights_card(name).num_classes == 174
        else:
            assert cfg.label_names == tuple(_KINETICS400_CATEGORIES) and cfg.num_classes == 400
            assert yaml.safe_load(Path(zoo.get_weights_card(name).source).read_text())["label_names"] == "kinetics400"
    package_data = ROOT.joinpath("pyproject.toml").read_text().split("[tool.setuptools.package-data]")[1]
    assert '"zoo" = ["kinetics400_labels.txt"]' in package_data.split("\n[")[0]


def _external_card(**overrides):
    data = yaml.safe_load(Path(zoo.get_weights_card("r3d_18.tv_k400").source).read_text())
    data.update(overrides)
    return data


@pytest.mark.parametrize(
    "change, key",
    [
        (lambda c: c.update(hf_hub_id="org/repo"), "url"),
        (lambda c: c.pop("label_names"), "num_classes"),
        (lambda c: c.update(label_names="kinetics600"), "label_names"),
        (lambda c: c.update(num_classes=10), "num_classes"),
        (lambda c: c.update(hash_prefix="XYZ"), "hash_prefix"),
        (lambda c: c.update(url="download.pytorch.org/x.pth"), "url"),
        (lambda c: c.pop("provider"), "provider"),
        (lambda c: c.update(sha256="0" * 64), "sha256"),
        (lambda c: c["metrics"][0].update(frame_rate="fast"), "metrics[0].frame_rate"),
        (lambda c: c["input"].update(resize_size=[128]), "input.resize_size"),
    ],
)
def test_external_card_schema_errors_name_the_key(tmp_path, change, key):
    data = _external_card()
    change(data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError) as info:
        WeightsCard.from_file(path)
    assert str(path) in str(info.value) and repr(key) in str(info.value)


def test_a_card_that_disagrees_with_its_family_is_refused_naming_the_fields(tmp_path):
    data = _external_card()
    data["metrics"][0]["top1"] = 99.9
    data["input"]["mean"] = [0.5, 0.5, 0.5]
    path = tmp_path / "r3d_18.tv_k400.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match=r"disagrees.*mean: card .*metrics\.top1: card 99\.9, cfg 63\.2") as info:
        zoo.register_weights_card(path)
    assert str(path) in str(info.value)
    assert zoo.get_weights_card("r3d_18.tv_k400").metrics[0].values["top1"] == 63.2  # the shipped card stays


# ------------------------------------------------------------------------------------ export, models


def test_export_tag_writes_the_hub_layout_that_loads_back_with_equal_outputs(torch_home, tmp_path, capsys):
    place_torchvision_file("r3d_18.tv_k400")
    out = tmp_path / "export"
    assert main(["export", "r3d_18.tv_k400", str(out)]) == 0
    assert "sha256" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    tag_model = zoo.create_model("r3d_18.tv_k400", pretrained=True)
    loaded = zoo.create_model(f"local-dir:{out}")
    clip = torch.randn(1, 3, *SMALL_CLIP, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(outputs(loaded, clip), outputs(tag_model, clip), rtol=0, atol=0)
    ours, theirs = loaded.pretrained_cfg, tag_model.pretrained_cfg
    for field in ("tag", "input_size", "frame_stride", "mean", "std", "crop_pct", "resize_size", "num_classes",
                  "label_names", "metrics", "license", "paper", "dataset", "recipe"):
        assert getattr(ours, field) == getattr(theirs, field), field
    config = json.loads((out / "config.json").read_text())
    assert config["pretrained_cfg"]["hf_hub_id"] is None and config["label_names"][0] == "abseiling"
    readme = (out / "README.md").read_text()
    for part in ("## Source", "R3D_18_Weights.KINETICS400_V1", "sha256 prefix `b3b3357e`", "## Intended use",
                 "| 5x1 | 16 at 15 fps | 112 px | 63.2 | 83.479 |", "as torchvision states them",
                 "resize: to 128x171 px"):
        assert part in readme, part


def test_export_of_a_pytorchvideo_tag_says_it_has_no_hash(torch_home, tmp_path):
    cfg = zoo.get_pretrained_cfg("x3d_xs.pv_k400")
    path = url_cache_path(cfg.url)
    path.parent.mkdir(parents=True)
    torch.save({"model_state": zoo.create_model("x3d_xs").state_dict()}, path)  # pytorchvideo's wrapping
    result = export_tag("x3d_xs.pv_k400", tmp_path / "x3d", repo_id=f"{ORG}/x3d_xs.pv_k400")
    readme = (result.folder / "README.md").read_text()
    assert "pytorchvideo publishes no hash for this file" in readme and cfg.url in readme
    assert f'create_model("hf-hub:{ORG}/x3d_xs.pv_k400")' in readme
    assert "| 10x3 | 4, every 12 | 182 px | 69.12 | 88.63 |" in readme
    assert json.loads((result.folder / "config.json").read_text())["pretrained_cfg"]["hf_hub_id"] == (
        f"{ORG}/x3d_xs.pv_k400")
    with pytest.raises(ValueError, match="not built from them"):  # a card describes its tag's weights only
        save_for_hub(zoo.create_model("x3d_xs"), tmp_path / "other", card="x3d_xs.pv_k400")


def test_models_pretrained_shows_each_tag_with_its_acc_and_size(capsys):
    rows = {}
    for pattern in ("r3d_18.*", "x3d_m.*", "slow_r50.*", "hcml_r2d_18.*"):  # all tags: 27 models built, ~10 s
        assert main(["models", "--pretrained", pattern]) == 0
        out = capsys.readouterr().out
        rows.update({parts[0]: parts for parts in map(str.split, out.splitlines()) if parts and zoo.is_model(parts[0])})
    assert set(rows) == {"r3d_18.tv_k400", "x3d_m.pv_k400", "slow_r50.pv_k400", "slow_r50.pv_ssv2",
                         "hcml_r2d_18.moving_digits"}
    assert rows["r3d_18.tv_k400"][1:] == ["torchvision", "Kinetics-400", "63.20", "5x1", "33.37", "3x16x112x112"]
    assert rows["x3d_m.pv_k400"][1:4] == ["pytorchvideo", "Kinetics-400", "75.94"]
    assert rows["slow_r50.pv_ssv2"][2:4] == ["Something-Something-V2", "60.04"]
    assert rows["hcml_r2d_18.moving_digits"][1] == "motion-zoo"
    assert main(["models", "--pretrained", "nothing_*"]) == 2


# ------------------------------------------------------------------------------------------ publish


class FakeHub(RecordingHfApi):
    """The recording HfApi, answering ``get_paths_info`` from what it was sent (``sha256``: repo -> weights)."""

    def __init__(self, sha256=None):
        super().__init__()
        self.sha256 = dict(sha256 or {})

    def get_paths_info(self, repo_id, paths, repo_type=None, revision=None):
        self.calls.append(("get_paths_info", {"repo_id": repo_id, "paths": list(paths)}))
        if repo_id not in self.sha256:
            error = RepositoryNotFoundError.__new__(RepositoryNotFoundError)  # as the Hub's 404 (no HTTP response here)
            Exception.__init__(error, f"404 Client Error: Repository Not Found for {repo_id}")
            raise error
        digest = self.sha256[repo_id]
        return [RepoFile(path="model.safetensors", size=1, oid="x", lfs={"size": 1, "oid": digest, "pointerSize": 134})]

    def upload_folder(self, repo_id, folder_path, **kwargs):
        commit = super().upload_folder(repo_id, folder_path, **kwargs)
        self.sha256[repo_id] = hashlib.sha256((Path(folder_path) / "model.safetensors").read_bytes()).hexdigest()
        return commit


@pytest.mark.usefixtures("hf_home")
def test_publish_converts_verifies_and_pushes_one_repo_per_tag_skipping_unchanged(torch_home, tmp_path):
    references = {tag: place_torchvision_file(tag) for tag in ("r3d_18.tv_k400", "mc3_18.tv_k400")}
    api = FakeHub()
    results = publish(ORG, "*3*_18.tv_k400", api=api, out_dir=tmp_path / "exports", verify_clip=SMALL_CLIP)
    assert [(r.tag, r.repo_id, r.status) for r in results] == [
        ("mc3_18.tv_k400", f"{ORG}/mc3_18.tv_k400", "pushed"), ("r3d_18.tv_k400", f"{ORG}/r3d_18.tv_k400", "pushed")]
    assert all(r.max_abs_diff <= 1e-6 for r in results)
    uploads = {c[1]["repo_id"]: c[1] for c in api.calls if c[0] == "upload_folder"}
    assert sorted(uploads) == [f"{ORG}/mc3_18.tv_k400", f"{ORG}/r3d_18.tv_k400"]
    upload = uploads[f"{ORG}/r3d_18.tv_k400"]
    assert sorted(upload["files"]) == ["README.md", "config.json", "model.safetensors"]
    assert "torchvision's weights, converted by motion-zoo" in upload["commit_message"]
    config = json.loads(upload["files"]["config.json"])
    assert config["pretrained_cfg"]["hf_hub_id"] == f"{ORG}/r3d_18.tv_k400"

    # The same weights again: nothing is pushed. A repo holding other weights is pushed to.
    again = publish(ORG, "*3*_18.tv_k400", api=api, verify_clip=SMALL_CLIP)
    assert [r.status for r in again] == ["unchanged", "unchanged"]
    assert sum(c[0] == "upload_folder" for c in api.calls) == 2
    api.sha256[f"{ORG}/mc3_18.tv_k400"] = "0" * 64
    assert [r.status for r in publish(ORG, "mc3_18.*", api=api, verify_clip=SMALL_CLIP)] == ["pushed"]

    # Once published, hf-hub:ORG/r3d_18.tv_k400 is the tag's model (the repo laid out in the HF cache).
    folder = tmp_path / "published"
    folder.mkdir()
    for name, data in upload["files"].items():
        (folder / name).write_bytes(data)
    place_in_cache(hub_cache(), f"{ORG}/r3d_18.tv_k400", {p.name: p for p in folder.iterdir()})
    from_hub = zoo.create_model(f"hf-hub:{ORG}/r3d_18.tv_k400")
    tag_model = zoo.create_model("r3d_18.tv_k400", pretrained=True)
    clip = torch.randn(1, 3, *SMALL_CLIP, generator=torch.Generator().manual_seed(3))
    expected = outputs(references["r3d_18.tv_k400"], clip)
    torch.testing.assert_close(outputs(from_hub, clip), outputs(tag_model, clip), rtol=0, atol=0)
    torch.testing.assert_close(outputs(from_hub, clip), expected, rtol=1e-4, atol=1e-5 * expected.abs().max().item())
    for field in ("tag", "input_size", "frame_stride", "mean", "std", "crop_pct", "resize_size", "label_names",
                  "num_classes", "metrics", "license", "dataset"):
        assert getattr(from_hub.pretrained_cfg, field) == getattr(tag_model.pretrained_cfg, field), field


def test_publish_command_and_its_refusals(torch_home, tmp_path, monkeypatch, capsys):
    import huggingface_hub

    place_torchvision_file("r3d_18.tv_k400")
    made = []
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda **kw: made.append(FakeHub()) or made[-1])
    assert main(["publish", ORG, "--tags", "r3d_18.tv_k400", "--verify-clip", "8,32,32"]) == 0
    assert "1 pushed" in capsys.readouterr().out
    (api,) = made
    assert [c[0] for c in api.calls] == ["get_paths_info", "create_repo", "upload_folder"]
    assert main(["publish", ORG, "--tags", "r3d_18.tv_k400", "--dry-run", "--verify-clip", "8,32,32"]) == 0
    assert "verified" in capsys.readouterr().out and len(made) == 1  # a dry run makes no HfApi
    assert main(["publish", ORG, "--tags", "nothing_*"]) == 2
    assert "no external pretrained tag matches" in capsys.readouterr().err
    assert main(["publish", ORG, "--tags", "mc3_18.tv_k400", "--dry-run"]) == 2  # its file is not cached, offline
    err = capsys.readouterr().err
    assert "mc3_18-a90a0ba3.pth" in err and "Traceback" not in err


# ----------------------------------------------------------------------------------- Hub cache cleanup


@pytest.mark.usefixtures("hf_home")
def test_a_hub_file_failing_its_sha256_leaves_the_cache_so_a_retry_downloads_it_afresh(tmp_path):
    torch.manual_seed(0)
    model = zoo.create_model("r2d_18", num_classes=3).eval()
    export = save_for_hub(model, tmp_path / "export", label_names=["a", "b", "c"])
    repo_id = f"{ORG}/cache_cleanup"
    repo = place_in_cache(hub_cache(), repo_id, {p.name: p for p in export.folder.iterdir()})
    blob = repo / "blobs" / export.sha256
    link = next((repo / "snapshots").iterdir()) / "model.safetensors"
    blob.write_bytes(blob.read_bytes()[:-1] + b"\x01")  # corrupt in the cache
    with pytest.raises(ValueError, match="sha256 mismatch.*removed from the Hugging Face cache.*afresh") as info:
        zoo.create_model(f"hf-hub:{repo_id}")
    assert str(blob) in str(info.value)
    assert not blob.exists() and not link.is_symlink() and (link.parent / "config.json").is_file()
    # A retry does not meet the bad file again: it asks for a download (offline here: the clear error) ...
    with pytest.raises(HubFileUnavailableError, match="go online"):
        zoo.create_model(f"hf-hub:{repo_id}")
    # ... which, once the file is there again, loads.
    place_in_cache(hub_cache(), repo_id, {"model.safetensors": export.folder / "model.safetensors"})
    clip = torch.randn(1, 3, 4, 32, 32)
    torch.testing.assert_close(outputs(zoo.create_model(f"hf-hub:{repo_id}"), clip), outputs(model, clip))
