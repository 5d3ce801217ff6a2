"""The ``zoo`` command line: export and push wiring, and one-line errors for user mistakes."""
import json

import huggingface_hub
import pytest
import torch

import zoo
from zoo.cli import main


class RecordingApi:
    """Stands in for ``huggingface_hub.HfApi`` (the Hub cannot be reached from the tests)."""

    instances: list["RecordingApi"] = []

    def __init__(self, token=None, library_name=None):
        self.calls = []
        RecordingApi.instances.append(self)

    def create_repo(self, repo_id, repo_type=None, private=False, exist_ok=False):
        self.calls.append(("create_repo", repo_id, private))
        return huggingface_hub.RepoUrl(f"https://huggingface.co/{repo_id}")

    def upload_folder(self, repo_id, folder_path, repo_type=None, revision=None, commit_message=None):
        self.calls.append(("upload_folder", repo_id, commit_message))
        return f"https://huggingface.co/{repo_id}/commit/0"


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    model = zoo.create_model("r2d_18", num_classes=3).eval()
    path = tmp_path / "last.pt"
    torch.save(
        {
            "model": model.state_dict(),
            "model_name": "r2d_18",
            "model_args": {"num_classes": 3},
            "num_classes": 3,
            "label_names": ["a", "b", "c"],
            "recipe": {"model": {"name": "r2d_18"}},
        },
        path,
    )
    return model, path


def test_export_then_push(checkpoint, tmp_path, capsys, monkeypatch):
    model, path = checkpoint
    out = tmp_path / "export"
    assert main(["export", str(path), str(out)]) == 0
    printed = capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert "model.safetensors" in printed and "sha256" in printed
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors", "recipe.yaml"]
    assert config["architecture"] == "r2d_18" and config["num_classes"] == 3
    loaded = zoo.create_model(f"local-dir:{out}").eval()
    x = torch.randn(1, 3, 4, 32, 32)
    torch.testing.assert_close(loaded(x), model(x))

    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingApi)
    RecordingApi.instances.clear()
    assert main(["push", str(out), "someone/r2d", "--private", "-m", "first"]) == 0
    (api,) = RecordingApi.instances
    assert api.calls == [("create_repo", "someone/r2d", True), ("upload_folder", "someone/r2d", "first")]
    assert "someone/r2d" in capsys.readouterr().out


def test_user_errors_are_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path / "missing.pt"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("zoo export: error:") and "Traceback" not in err
    assert main(["push", str(tmp_path), "someone/r2d"]) == 2
    assert "model.safetensors" in capsys.readouterr().err


def test_data_check_is_wired(tmp_path, capsys):
    (tmp_path / "cls_a").mkdir()
    (tmp_path / "cls_a" / "broken.mp4").write_bytes(b"not a video")
    code = main(["data", "check", str(tmp_path), "--no-progress", "--workers", "1"])
    out = capsys.readouterr().out
    assert code == 1 and "broken.mp4" in out and "1 unreadable" in out


def test_timm2d_export_keeps_its_backbone(tmp_path):
    """create_model records its arguments, so an export of a timm2d model rebuilds the same backbone."""
    torch.manual_seed(0)
    model = zoo.create_model("timm2d", backbone="regnetx_002", temporal_strides=(1, 1, 2, 1, 1), num_classes=4).eval()
    assert model.model_args == {"backbone": "regnetx_002", "temporal_strides": (1, 1, 2, 1, 1)}
    folder = zoo.save_for_hub(model, tmp_path / "export", label_names=list("abcd"), recipe={}).folder
    loaded = zoo.create_model(f"local-dir:{folder}").eval()
    assert loaded.backbone == "regnetx_002"
    x = torch.randn(1, 3, 4, 32, 32)
    torch.testing.assert_close(loaded(x), model(x))
