"""The Hub: weights cards, export, loading from a Hugging Face cache offline, sha256 checks, push.

The Hub is never reached: exported files are placed in a Hugging Face cache layout in a temporary
HF_HOME, with HF_HUB_OFFLINE=1, and the push goes to a recording stand-in for ``HfApi``.
"""
import json
import os
import pickle
from pathlib import Path

import pytest
import torch
import yaml
from huggingface_hub import RepoUrl, constants
from safetensors.torch import load_file

import zoo
from zoo import _cards, _registry
from zoo._cards import WeightsCard, load_weights_cards, shipped_cards_dir
from zoo._export import export_checkpoint, push_folder, save_for_hub
from zoo._hub import HubFileUnavailableError, split_hub_id

REPO_ROOT = Path(__file__).resolve().parents[1]
ARCH = "r2d_18"
NUM_CLASSES = 5
LABELS = ["archery", "bowling", "climbing", "diving", "juggling"]
REPO_ID = "motion-zoo-test/r2d_18.unit"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
RECIPE = {"model": {"name": ARCH}, "data": {"frames": 4, "size": 32}, "optim": {"lr": 0.01, "epochs": 1}}


def card_dict(**overrides):
    """A valid card for the r2d_18 test checkpoint (sha256 and size are filled in by the tests)."""
    card = {
        "name": f"{ARCH}.unit_hub",
        "architecture": ARCH,
        "model_args": {"drop_rate": 0.0},
        "hf_hub_id": REPO_ID,
        "hf_hub_filename": "model.safetensors",
        "sha256": "0" * 64,
        "size": 1,
        "dataset": "synthetic5",
        "split": "val",
        "recipe": "recipes/unit_hub.yaml",
        "metrics": [
            {"views": "1x1", "frames": 4, "resolution": 32, "top1": 40.0, "top5": 100.0},
            {"views": "10x3", "frames": 4, "resolution": 32, "top1": 45.5},
        ],
        "input": {"size": [3, 4, 32, 32], "frame_stride": 2, "mean": [0.45, 0.45, 0.45], "std": [0.225] * 3},
        "label_names": list(LABELS),
        "license": "apache-2.0",
        "paper": "https://arxiv.org/abs/2007.10321",
        "citation": "@inproceedings{unit_hub, title={Unit}}",
        "status": "published",
    }
    card.update(overrides)
    return card


@pytest.fixture
def cleanup_cards():
    """Remove the cards (and their registry tags) a test registers."""
    before = set(_cards._cards)
    yield
    for name in set(_cards._cards) - before:
        _cards._cards.pop(name)
        _cards._card_cfgs.pop(name, None)
        arch, tag = _registry.split_model_name_tag(name)
        _registry._arch_cfgs[arch].pop(tag, None)


@pytest.fixture
def hf_home(tmp_path, monkeypatch):
    """An empty Hugging Face cache under a temporary HF_HOME, offline.

    huggingface_hub reads HF_HOME / HF_HUB_CACHE / HF_HUB_OFFLINE into ``constants`` at import, and
    ``hf_hub_download`` reads ``constants.HF_HUB_CACHE`` and ``constants.HF_HUB_OFFLINE`` per call.
    """
    home = tmp_path / "hf_home"
    cache = home / "hub"
    cache.mkdir(parents=True)
    for var, value in (("HF_HOME", home), ("HF_HUB_CACHE", cache), ("HF_HUB_OFFLINE", "1")):
        monkeypatch.setenv(var, str(value))
    monkeypatch.setattr(constants, "HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


def place_in_cache(cache: Path, repo_id: str, files: dict[str, Path], commit: str = COMMIT) -> Path:
    """Lay ``files`` (repo name -> local file) out as ``hf_hub_download`` leaves them:
    ``models--ORG--NAME/{blobs/HASH, snapshots/COMMIT/NAME -> ../../blobs/HASH, refs/main}``."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    for name, src in files.items():
        blob = repo / "blobs" / zoo._helpers.sha256_file(src)
        blob.write_bytes(Path(src).read_bytes())
        os.symlink(os.path.relpath(blob, snapshot), snapshot / name)
    (repo / "refs" / "main").write_text(commit)
    return repo


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return zoo.create_model(ARCH, num_classes=NUM_CLASSES).eval()


@pytest.fixture(scope="module")
def clip():
    return torch.randn(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def reference(model, clip):
    with torch.no_grad():
        return model(clip)


@pytest.fixture(scope="module")
def carded_export(model, tmp_path_factory):
    """Export without a card, write the card of the result, export again with it: the Hub folder."""
    first = save_for_hub(model, tmp_path_factory.mktemp("first"), recipe=RECIPE, label_names=LABELS)
    card_path = tmp_path_factory.mktemp("cards") / f"{ARCH}.unit_hub.yaml"
    card_path.write_text(yaml.safe_dump(card_dict(sha256=first.sha256, size=first.size)))
    card = WeightsCard.from_file(card_path)
    result = save_for_hub(model, tmp_path_factory.mktemp("export"), card=card, recipe=RECIPE)
    return card, result


def outputs(m, clip):
    with torch.no_grad():
        return m.eval()(clip)


# ------------------------------------------------------------------------------------------- cards


def test_card_parses_to_registry_cfg(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(card_dict()))
    card = WeightsCard.from_file(path)
    assert card.name == f"{ARCH}.unit_hub" and card.tag == "unit_hub" and card.num_classes == NUM_CLASSES
    assert card.metrics[1].views == "10x3" and card.metrics[1].values == {"top1": 45.5}
    cfg = card.to_pretrained_cfg()
    assert cfg.input_size == (3, 4, 32, 32) and cfg.frame_stride == 2 and cfg.std == (0.225,) * 3
    assert cfg.label_names == tuple(LABELS) and cfg.num_classes == NUM_CLASSES
    assert cfg.hf_hub_id == REPO_ID and cfg.sha256 == "0" * 64 and cfg.recipe == "recipes/unit_hub.yaml"
    assert cfg.metrics == {"views": "1x1", "frames": 4, "resolution": 32, "top1": 40.0, "top5": 100.0}
    assert WeightsCard.from_dict(yaml.safe_load(card.to_yaml())) == card


@pytest.mark.parametrize(
    "change, key",
    [
        (lambda c: c.pop("sha256"), "sha256"),
        (lambda c: c.update(weights_url="x"), "weights_url"),
        (lambda c: c["input"].pop("frame_stride"), "input.frame_stride"),
        (lambda c: c["input"].update(mean=[0.5, 0.5]), "input.mean"),
        (lambda c: c["input"].update(size=[3, 4, 32]), "input.size"),
        (lambda c: c.update(sha256="abc"), "sha256"),
        (lambda c: c.update(size=0), "size"),
        (lambda c: c.update(status="published soon"), "status"),
        (lambda c: c.update(hf_hub_filename="pytorch_model.bin"), "hf_hub_filename"),
        (lambda c: c.update(architecture="r2d_50"), "architecture"),
        (lambda c: c.update(name="r2d_18"), "name"),
        (lambda c: c.update(label_names=["a", "a"]), "label_names"),
        (lambda c: c.update(model_args={"num_classes": 5}), "model_args.num_classes"),
        (lambda c: c["metrics"][0].pop("views"), "metrics[0].views"),
        (lambda c: c["metrics"][1].update(views="ten"), "metrics[1].views"),
        (lambda c: c.update(metrics=[{"views": "1x1", "frames": 4, "resolution": 32}]), "metrics[0]"),
        (lambda c: c.update(recipe="my_recipe.txt"), "recipe"),
    ],
)
def test_card_schema_errors_name_key_and_file(tmp_path, change, key):
    data = card_dict()
    change(data)
    path = tmp_path / "bad_card.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError) as info:
        WeightsCard.from_file(path)
    assert str(path) in str(info.value) and repr(key) in str(info.value)


def test_shipped_cards_are_valid_and_listed():
    """Every card in weights_cards/ validates, is named after its file, names a registered architecture
    and an existing recipe, and is what list_pretrained() shows for its name."""
    directory = shipped_cards_dir()
    assert directory.resolve() == (REPO_ROOT / "weights_cards").resolve()
    cards = load_weights_cards()
    assert sorted(c.name for c in cards) == sorted(p.stem for p in directory.glob("*.yaml"))
    for card in cards:
        assert zoo.is_model(card.architecture), card.source
        assert card.name in zoo.list_pretrained()
        if card.external:  # another project's file (tests/test_pretrained_cards.py checks these cards)
            assert zoo.get_pretrained_cfg(card.name).url == card.url
            continue
        assert (REPO_ROOT / card.recipe).is_file(), f"{card.source}: recipe {card.recipe} not in the repository"
        assert zoo.get_pretrained_cfg(card.name).sha256 == card.sha256
    assert set(zoo.list_pretrained()) == set(_cards.list_weights_cards())  # exactly the carded checkpoints


def test_load_weights_cards_registers_and_refuses_duplicates(tmp_path, cleanup_cards):
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(card_dict()))
    unpublished = card_dict(name=f"{ARCH}.unit_hub2", status="trained, not yet published")
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(unpublished))
    cards = load_weights_cards(tmp_path)
    assert [c.name for c in cards] == [f"{ARCH}.unit_hub", f"{ARCH}.unit_hub2"]
    assert {f"{ARCH}.unit_hub", f"{ARCH}.unit_hub2"} <= set(zoo.list_pretrained(f"{ARCH}.*"))
    assert zoo.get_weights_card(f"{ARCH}.unit_hub2").status == "trained, not yet published"
    assert zoo.get_pretrained_cfg(f"{ARCH}.unit_hub").label_names == tuple(LABELS)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(card_dict()))
    with pytest.raises(ValueError, match="defined twice"):
        load_weights_cards(tmp_path)


# ------------------------------------------------------------------------------------------ export


def test_export_writes_hub_folder(model, carded_export):
    card, result = carded_export
    folder = result.folder
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors", "recipe.yaml"]
    assert result.sha256 == card.sha256 and result.size == card.size  # the export is deterministic
    state = load_file(str(folder / "model.safetensors"))
    assert state.keys() == model.state_dict().keys()
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())

    config = json.loads((folder / "config.json").read_text())
    assert config["architecture"] == ARCH and config["num_classes"] == NUM_CLASSES
    assert config["label_names"] == LABELS and config["model_args"] == {"drop_rate": 0.0}
    cfg = config["pretrained_cfg"]
    assert cfg["input_size"] == [3, 4, 32, 32] and cfg["frame_stride"] == 2 and cfg["mean"] == [0.45] * 3
    assert cfg["sha256"] == result.sha256 and cfg["hf_hub_id"] == REPO_ID and cfg["tag"] == "unit_hub"
    assert (cfg["classifier"], cfg["first_conv"]) == (model.pretrained_cfg.classifier, model.pretrained_cfg.first_conv)
    assert yaml.safe_load((folder / "recipe.yaml").read_text()) == RECIPE

    readme = (folder / "README.md").read_text()
    _, front, body = readme.split("---\n", 2)
    front = yaml.safe_load(front)
    assert front["library_name"] == "motion-zoo" and front["license"] == "apache-2.0"
    assert "video-classification" in front["tags"] and front["datasets"] == ["synthetic5"]
    (index,) = front["model-index"]
    assert index["name"] == card.name
    metrics = index["results"][0]["metrics"]
    assert [(m["type"], m["value"]) for m in metrics] == [("top1", 40.0), ("top5", 100.0), ("top1", 45.5)]
    assert metrics[2]["name"] == "top1 (10x3 views, 4 frames, 32 px)"
    assert index["results"][0]["dataset"]["split"] == "val"
    assert f'zoo.create_model("hf-hub:{REPO_ID}")' in body and f'create_model("{card.name}", pretrained=True)' in body
    assert "| 10x3 | 4 | 32 px | 45.50 | - |" in body
    assert "lr: 0.01" in body and card.citation in body and result.sha256 in body


def test_export_refuses_card_that_does_not_match(model, carded_export, tmp_path):
    card, _ = carded_export
    with pytest.raises(ValueError, match="says sha256"):
        save_for_hub(model, tmp_path / "a", card=WeightsCard.from_dict(card_dict()))
    with pytest.raises(ValueError, match="label_names"):
        save_for_hub(model, tmp_path / "b", card=card, label_names=LABELS[::-1])
    with pytest.raises(ValueError, match="model_args"):
        save_for_hub(model, tmp_path / "c", card=card, model_args={"drop_rate": 0.5})
    with pytest.raises(ValueError, match="number of classes"):
        save_for_hub(zoo.create_model(ARCH, num_classes=3), tmp_path / "d", card=card)


def test_export_checkpoint_contract(model, reference, clip, tmp_path):
    """A training checkpoint as the engine writes it exports to a folder that loads to the same model."""
    checkpoint = {
        "model": model.state_dict(),
        "model_name": ARCH,
        "model_args": {"drop_rate": 0.1},
        "num_classes": NUM_CLASSES,
        "label_names": LABELS,
        "recipe": RECIPE,
        "pretrained_cfg": {"input_size": [3, 4, 32, 32], "dataset": "synthetic5"},
        "optimizer": {"state": {}, "param_groups": []},
        "epoch": 3,
    }
    path = tmp_path / "last.pt"
    torch.save(checkpoint, path)
    result = export_checkpoint(path, tmp_path / "out")
    config = json.loads((result.folder / "config.json").read_text())
    assert config["model_args"] == {"drop_rate": 0.1} and config["pretrained_cfg"]["input_size"] == [3, 4, 32, 32]
    loaded = zoo.create_model(f"local-dir:{result.folder}")
    assert loaded.head.drop_rate == 0.1
    torch.testing.assert_close(outputs(loaded, clip), reference, rtol=0, atol=0)
    assert loaded.pretrained_cfg.label_names == tuple(LABELS) and loaded.pretrained_cfg.dataset == "synthetic5"

    del checkpoint["recipe"], checkpoint["label_names"]
    torch.save(checkpoint, path)
    with pytest.raises(ValueError, match=r"lacks \['label_names', 'recipe'\]"):
        export_checkpoint(path, tmp_path / "out2")


@pytest.mark.parametrize("name, args", [("hcml_r2d_18", {}), ("hcml", {"backbone": "r2d_18"})])
def test_export_deploys_hcml_and_records_its_config(name, args, tmp_path, hf_home, cleanup_cards):
    """The side branch is not exported; model_args rebuild the deployed model (hcml_cfg, and the backbone),
    from the folder and by the name of a card that carries them."""
    torch.manual_seed(0)
    model = zoo.create_model(name, num_classes=NUM_CLASSES, **args).eval()
    with torch.no_grad():
        for param_name, param in model.named_parameters():
            if ".fuse." in param_name:  # g starts at zero (an identity adapter): make the motion path count
                param.normal_(0, 0.1)
    clip = torch.randn(1, 3, 4, 48, 48, generator=torch.Generator().manual_seed(2))
    reference = outputs(model, clip)
    assert any(k.startswith("hcml.") for k in model.state_dict())
    checkpoint = {  # as the training engine writes it: num_classes repeated in model_args
        "model": model.state_dict(),
        "model_name": name,
        "model_args": dict(args, num_classes=NUM_CLASSES),
        "num_classes": NUM_CLASSES,
        "label_names": LABELS,
        "recipe": RECIPE,
    }
    result = export_checkpoint(checkpoint, tmp_path / "out")
    assert hasattr(model, "hcml")  # the model given is not deployed in place
    state = load_file(str(result.folder / "model.safetensors"))
    assert not any(k.startswith("hcml.") for k in state) and any(".motion." in k for k in state)
    model_args = json.loads((result.folder / "config.json").read_text())["model_args"]
    hcml_cfg = model_args["hcml_cfg"]
    assert hcml_cfg["side_branch"] is False and hcml_cfg["levels"] == [1, 2, 3]
    assert "num_classes" not in model_args

    loaded = zoo.create_model(f"local-dir:{result.folder}")
    assert not hasattr(loaded, "hcml")
    torch.testing.assert_close(outputs(loaded, clip), reference, rtol=0, atol=0)

    fields = dict(name=f"{name}.unit_hcml", architecture=name, model_args=model_args, hf_hub_id="motion-zoo-test/hcml")
    card = zoo.register_weights_card(WeightsCard.from_dict(card_dict(sha256=result.sha256, size=result.size, **fields)))
    place_in_cache(hf_home, "motion-zoo-test/hcml", {p.name: p for p in result.folder.iterdir()})
    by_card = zoo.create_model(card.name, pretrained=True)
    torch.testing.assert_close(outputs(by_card, clip), reference, rtol=0, atol=0)


# ------------------------------------------------------------------------------------------ loading


def test_load_offline_from_hf_cache_by_hub_id_and_card_name(carded_export, hf_home, clip, reference, cleanup_cards):
    card, result = carded_export
    place_in_cache(hf_home, REPO_ID, {p.name: p for p in result.folder.iterdir()})

    by_id = zoo.create_model(f"hf-hub:{REPO_ID}")
    torch.testing.assert_close(outputs(by_id, clip), reference, rtol=0, atol=0)
    assert by_id.pretrained_cfg.label_names == tuple(LABELS) and by_id.pretrained_cfg.input_size == (3, 4, 32, 32)
    assert by_id.pretrained_cfg.file.startswith(str(hf_home))
    at_commit = zoo.create_model(f"hf-hub:{REPO_ID}@{COMMIT}")
    torch.testing.assert_close(outputs(at_commit, clip), reference, rtol=0, atol=0)

    zoo.register_weights_card(card)
    assert card.name in zoo.list_pretrained()
    by_card = zoo.create_model(card.name, pretrained=True)
    torch.testing.assert_close(outputs(by_card, clip), reference, rtol=0, atol=0)
    assert by_card.pretrained_cfg.label_names == tuple(LABELS)

    # A different num_classes re-initialises the classifier only, and drops the label names.
    fine_tune = zoo.create_model(card.name, pretrained=True, num_classes=3).eval()
    assert fine_tune.get_classifier().out_features == 3 and fine_tune.pretrained_cfg.label_names is None
    with torch.no_grad():
        torch.testing.assert_close(fine_tune.forward_features(clip), by_card.forward_features(clip), rtol=0, atol=0)


def test_tampered_weights_fail_the_sha256_check(carded_export, hf_home, cleanup_cards):
    card, result = carded_export

    def place_tampered(names):
        repo = place_in_cache(hf_home, REPO_ID, {name: result.folder / name for name in names})
        blob = repo / "blobs" / result.sha256
        data = bytearray(blob.read_bytes())
        data[-1] ^= 0xFF  # one flipped bit in the last tensor
        blob.write_bytes(bytes(data))
        return blob

    blob = place_tampered([p.name for p in result.folder.iterdir()])
    zoo.register_weights_card(card)
    with pytest.raises(ValueError, match=f"sha256 mismatch.*expected {card.sha256}.*not loaded"):
        zoo.create_model(card.name, pretrained=True)
    assert not blob.exists()  # removed from the cache (tests/test_pretrained_cards.py: a retry downloads it)
    place_tampered(["model.safetensors"])
    with pytest.raises(ValueError, match="sha256 mismatch"):  # config.json carries the sha256 too
        zoo.create_model(f"hf-hub:{REPO_ID}")


def test_offline_and_not_cached_is_one_clear_error(carded_export, hf_home, cleanup_cards):
    card, _ = carded_export
    zoo.register_weights_card(card)
    with pytest.raises(HubFileUnavailableError) as info:
        zoo.create_model(card.name, pretrained=True)
    message = str(info.value)
    for part in (REPO_ID, "model.safetensors", "HF_HUB_OFFLINE", "go online", "local-dir:"):
        assert part in message
    with pytest.raises(HubFileUnavailableError, match="config.json of the Hub repo motion-zoo-test/nothing"):
        zoo.create_model("hf-hub:motion-zoo-test/nothing")


def test_unpublished_card_says_so(carded_export, hf_home, cleanup_cards):
    card, _ = carded_export
    zoo.register_weights_card(WeightsCard.from_dict({**card.to_dict(), "status": "trained, not yet published"}))
    with pytest.raises(HubFileUnavailableError, match="not yet published"):
        zoo.create_model(card.name, pretrained=True)


class _Payload:
    """Unpickling this runs ``open(path, 'w')``: the marker file must never appear."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_pickle_only_repo_loads_with_weights_only_or_is_refused(carded_export, hf_home, clip, reference, tmp_path):
    _, result = carded_export
    config = result.folder / "config.json"
    plain = tmp_path / "pytorch_model.bin"
    torch.save(load_file(str(result.folder / "model.safetensors")), plain)
    place_in_cache(hf_home, "motion-zoo-test/pickled", {"config.json": config, "pytorch_model.bin": plain})
    loaded = zoo.create_model("hf-hub:motion-zoo-test/pickled")
    torch.testing.assert_close(outputs(loaded, clip), reference, rtol=0, atol=0)

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.bin"
    with open(evil, "wb") as f:
        pickle.dump({"conv.weight": _Payload(str(marker))}, f, protocol=2)
    place_in_cache(hf_home, "motion-zoo-test/evil", {"config.json": config, "pytorch_model.bin": evil})
    with pytest.raises(ValueError, match="weights_only=True"):
        zoo.create_model("hf-hub:motion-zoo-test/evil")
    assert not marker.exists()


def test_local_dir(carded_export, clip, reference, tmp_path):
    _, result = carded_export
    loaded = zoo.create_model(f"local-dir:{result.folder}")
    torch.testing.assert_close(outputs(loaded, clip), reference, rtol=0, atol=0)
    with pytest.raises(FileNotFoundError, match="no config.json"):
        zoo.create_model(f"local-dir:{tmp_path}")


def test_split_hub_id():
    assert split_hub_id("org/repo") == ("org/repo", None)
    assert split_hub_id("org/repo@v1.0") == ("org/repo", "v1.0")
    for bad in ("org/repo@", "@main", "org/repo@a@b"):
        with pytest.raises(ValueError, match="org/repo@revision"):
            split_hub_id(bad)


# --------------------------------------------------------------------------------------------- push


class RecordingHfApi:
    """Stands in for ``huggingface_hub.HfApi`` (the Hub cannot be reached from the tests): records the
    calls and the files each commit would upload."""

    def __init__(self):
        self.calls = []

    def create_repo(self, repo_id, repo_type=None, private=False, exist_ok=False):
        self.calls.append(("create_repo", {"repo_id": repo_id, "repo_type": repo_type, "exist_ok": exist_ok}))
        return RepoUrl(f"https://huggingface.co/{repo_id}")

    def upload_folder(self, repo_id, folder_path, repo_type=None, revision=None, commit_message=None):
        files = {p.name: p.read_bytes() for p in Path(folder_path).iterdir() if p.is_file()}
        self.calls.append(("upload_folder", {"repo_id": repo_id, "files": files, "commit_message": commit_message}))
        return f"https://huggingface.co/{repo_id}/commit/{COMMIT}"


def test_push_folder_creates_repo_and_uploads_in_one_commit(carded_export):
    _, result = carded_export
    api = RecordingHfApi()
    push_folder(result.folder, REPO_ID, api=api)
    assert [name for name, _ in api.calls] == ["create_repo", "upload_folder"]
    assert api.calls[0][1] == {"repo_id": REPO_ID, "repo_type": "model", "exist_ok": True}
    upload = api.calls[1][1]
    assert upload["repo_id"] == REPO_ID
    assert sorted(upload["files"]) == ["README.md", "config.json", "model.safetensors", "recipe.yaml"]
    assert upload["files"]["model.safetensors"] == (result.folder / "model.safetensors").read_bytes()
    with pytest.raises(ValueError, match="exported for 'motion-zoo-test/r2d_18.unit'"):
        push_folder(result.folder, "someone/else", api=RecordingHfApi())


def test_push_to_hub_and_refusals(model, tmp_path):
    # Initialised from other weights: their provenance (Hub id, tag, metrics, dataset) is not exported.
    model = zoo.create_model(
        ARCH,
        num_classes=NUM_CLASSES,
        pretrained_cfg_overlay=dict(hf_hub_id="timm/resnet18.a1_in1k", tag="in1k", dataset="imagenet-1k"),
    )
    api = RecordingHfApi()
    zoo.push_to_hub(model, "motion-zoo-test/plain", recipe=RECIPE, label_names=LABELS, api=api)
    upload = api.calls[1][1]
    assert sorted(upload["files"]) == ["README.md", "config.json", "model.safetensors", "recipe.yaml"]
    assert 'create_model("hf-hub:motion-zoo-test/plain")' in upload["files"]["README.md"].decode()
    cfg = json.loads(upload["files"]["config.json"])["pretrained_cfg"]
    assert (cfg["hf_hub_id"], cfg["tag"], cfg["dataset"], cfg["metrics"]) == (None, "", None, {})

    folder = save_for_hub(model, tmp_path / "export").folder
    (folder / "extra.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="pickle files"):
        push_folder(folder, "motion-zoo-test/plain", api=RecordingHfApi())
    (folder / "extra.pt").unlink()
    (folder / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes()[:-1] + b"\0")
    with pytest.raises(ValueError, match="re-export"):
        push_folder(folder, "motion-zoo-test/plain", api=RecordingHfApi())
    with pytest.raises(FileNotFoundError, match="model.safetensors is missing"):
        push_folder(tmp_path, "motion-zoo-test/plain", api=RecordingHfApi())
