"""What a new user meets in the first hour: `zoo data check` on the fine-tune layout, run folders that never
resume another model, typos caught before anything is printed or created, `zoo predict`, exit codes."""
import json
import os
import signal

import pytest
import torch
from test_train import tiny_recipe  # tests/ is on sys.path (pytest rootdir import mode)

import zoo
from zoo.cli import main
from zoo.data import write_video
from zoo.train import Trainer, TrainingInterrupted, recipe_from_dict

pytestmark = pytest.mark.usefixtures("one_thread")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _video(path, frames: int = 12, size: int = 32, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    write_video(path, torch.randint(0, 256, (frames, size, size, 3), dtype=torch.uint8, generator=g), fps=10)


def test_data_check_reads_the_split_layout_the_fine_tune_recipes_document(tmp_path, capsys):
    for split in ("train", "val"):
        for label in ("bikes", "cars"):
            (tmp_path / split / label).mkdir(parents=True)
            _video(tmp_path / split / label / "a.mp4")
    (tmp_path / "val" / "cars" / "broken.mp4").write_bytes(b"not a video")
    code = main(["data", "check", str(tmp_path), "--no-progress", "--workers", "1", "--reader", "pyav"])
    out = capsys.readouterr().out
    assert code == 1
    assert "folder [train]: 2 videos, 2 classes, 0 unreadable" in out
    assert "folder [val]: 3 videos, 2 classes, 1 unreadable" in out and "broken.mp4" in out
    assert main(["data", "check", str(tmp_path), "--split", "train", "--no-progress", "--reader", "pyav"]) == 0


def test_a_run_folder_of_another_model_is_neither_resumed_nor_overwritten(tmp_path, capsys):
    first = recipe_from_dict(tiny_recipe(tmp_path, max_epochs=1, stages=[{"name": "a", "epochs": 1}]))
    Trainer(first).run()
    last = tmp_path / "run" / "last.pt"
    before = last.stat().st_mtime_ns, (tmp_path / "run" / "recipe.yaml").read_text()
    other = tiny_recipe(tmp_path, max_epochs=1, stages=[{"name": "a", "epochs": 1}])
    other["model"] = {"name": "r3d_18"}
    other["data"] = dict(other["data"], num_frames=8)  # R3D-18's temporal strides need 8 frames
    recipe_path = tmp_path / "other.yaml"
    recipe_path.write_text(json.dumps(other))
    assert main(["train", str(recipe_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds a run of r2d_18" in err[0]
    assert "output_dir=" in err[0] and "resume=false" in err[0]
    assert (last.stat().st_mtime_ns, (tmp_path / "run" / "recipe.yaml").read_text()) == before
    # the same model resumes (finished: reported), and resume=false starts over
    assert main(["train", str(recipe_path), "model.name=r2d_18", "model.kwargs.drop_rate=0.5"]) == 0
    assert main(["train", str(recipe_path), "resume=false"]) == 0
    assert zoo.train.load_training_checkpoint(last)["model_name"] == "r3d_18"


def test_a_model_name_typo_is_one_line_before_anything_is_printed_or_created(tmp_path, capsys):
    raw = tiny_recipe(tmp_path)
    raw["model"] = {"name": "r2d_81"}
    recipe_path = tmp_path / "typo.yaml"
    recipe_path.write_text(json.dumps(raw))
    assert main(["train", str(recipe_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "Unknown model 'r2d_81'" in captured.err and "r2d_18" in captured.err
    assert len(captured.err.strip().splitlines()) == 1 and "model.name=" in captured.err
    assert not (tmp_path / "run").exists()


def test_predict_gives_the_models_probabilities_with_labels(tmp_path, capsys):
    run = recipe_from_dict(tiny_recipe(tmp_path, max_epochs=1, stages=[{"name": "a", "epochs": 1}]))
    result = Trainer(run).run()
    video = tmp_path / "clip.mp4"
    _video(video, frames=16)
    model = zoo.inference.load_model(result.checkpoint)
    assert model.pretrained_cfg.label_names == ("left", "right", "up", "down")
    assert model.pretrained_cfg.input_size == (3, 4, 32, 32)
    top = zoo.predict(result.checkpoint, video, topk=3)
    scores = zoo.inference.predict_scores(model, video)
    assert len(top) == 3 and top[0][1] == pytest.approx(float(scores.max()))
    assert [p for _, p in top] == sorted((p for _, p in top), reverse=True)
    capsys.readouterr()
    assert main(["predict", str(result.checkpoint), str(video), "--topk", "2", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [d["label"] for d in printed[str(video)]] == [label for label, _ in top[:2]]


def test_sigint_saves_a_checkpoint_and_exits_130(tmp_path):
    recipe = recipe_from_dict(tiny_recipe(tmp_path))

    def interrupt(trainer):
        if trainer.step == 1:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingInterrupted) as info:
        Trainer(recipe, callbacks=[interrupt]).run()
    assert info.value.exit_code == 130 and (tmp_path / "run" / "last.pt").is_file()


def test_an_unreachable_hub_fails_at_once_with_the_clear_message(monkeypatch, tmp_path):
    """Without HF_HUB_OFFLINE and no Hub to reach: one short connection attempt, then the two ways out."""
    import socket

    from huggingface_hub import constants

    from zoo._hub import HubFileUnavailableError, endpoint_reachable, hub_download

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(HubFileUnavailableError, match="the Hub could not be reached"):
        hub_download("motion-zoo-test/none", "config.json")
    assert endpoint_reachable(constants.ENDPOINT) is False  # asked once; the client then read the cache only


def test_the_model_cards_usage_code_runs_for_three_classes(tmp_path):
    torch.manual_seed(0)
    model = zoo.create_model("r2d_18", num_classes=3)
    folder = zoo.save_for_hub(model, tmp_path / "export", label_names=["a", "b", "c"], recipe={}).folder
    card = (folder / "README.md").read_text()
    code = card.split("```python\n", 1)[1].split("```", 1)[0].replace("PATH/TO/THIS/FOLDER", str(folder))
    exec(compile(code, "README.md", "exec"), {})


def test_an_export_that_fails_its_card_leaves_nothing_behind(tmp_path):
    torch.manual_seed(0)
    model = zoo.create_model("r2d_18", num_classes=3)
    first = zoo.save_for_hub(model, tmp_path / "first", label_names=["a", "b", "c"], recipe={})
    card = {"name": "r2d_18.unit_atomic", "architecture": "r2d_18", "model_args": {}, "hf_hub_id": "org/x",
            "hf_hub_filename": "model.safetensors",
            "sha256": "0" * 64, "size": 1, "dataset": "unit", "split": "val", "recipe": "recipes/x.yaml",
            "metrics": [{"views": "1x1", "frames": 4, "resolution": 32, "top1": 50.0}],
            "input": {"size": [3, 4, 32, 32], "frame_stride": 1, "mean": [0.5] * 3, "std": [0.5] * 3},
            "label_names": ["a", "b", "c"], "license": "apache-2.0", "paper": "x",
            "status": "trained, not yet published"}
    with pytest.raises(ValueError, match="sha256"):
        zoo.save_for_hub(model, tmp_path / "second", card=zoo.WeightsCard.from_dict(card), recipe={})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first"]  # no target, no temporary folder
    assert sorted(p.name for p in first.folder.iterdir()) == sorted(first.files)
    modes = {(first.folder / name).stat().st_mode & 0o777 for name in first.files}
    assert len(modes) == 1 and modes.pop() & 0o044 == 0o044 & ~_umask()  # the weights as readable as the rest


def test_decords_own_error_messages_go_to_the_reason_not_the_terminal(tmp_path, capfd):
    from zoo.data.readers import VideoReadError, open_video

    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 1000)
    with pytest.raises(VideoReadError, match="decoder said: .*ERROR opening"):
        open_video(bad, reader="decord")
    captured = capfd.readouterr()
    assert "ERROR opening" not in captured.err and "ERROR opening" not in captured.out


def test_the_quickstart_cards_export_command_fits_what_the_quickstart_trains(tmp_path, capsys, monkeypatch):
    """The export command in the header of weights_cards/hcml_r2d_18.moving_digits.yaml, run on a checkpoint of
    recipes/quickstart.yaml (shortened to one step per stage), passes every check of the card but the weights' own
    sha256 (another training's weights), leaving nothing behind; with the sha256 and size of this export the same
    card exports, and the folder loads back. The card's sha256 itself is that of the quickstart's 13-minute run
    (benchmarks/quickstart.py), too long for this suite."""
    import re
    import shutil

    import yaml

    from zoo._helpers import sha256_file
    from zoo.train import load_recipe, train

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    card_path = os.path.join(repo, "weights_cards", "hcml_r2d_18.moving_digits.yaml")
    header = open(card_path).read()
    (command,) = re.findall(r"`(zoo export [^`]+)`", header)
    args = command.split()[1:]
    assert args[1] == "runs/quickstart/last.pt"
    assert args[3:] == ["--card", "weights_cards/hcml_r2d_18.moving_digits.yaml"]

    monkeypatch.chdir(repo)  # the card names the recipe by its path in the repository, as the command is run
    recipe = load_recipe(os.path.join(repo, "recipes", "quickstart.yaml"), [
        f"output_dir={tmp_path / 'quickstart'}", "compare=[]", "progress=false", "max_steps_per_epoch=1",
        "data.num_workers=0", "data.batch_size=2", "optim.base_batch_size=2", "eval.knn=[]",
        "data.options.videos_per_class=2", "data.options.eval_videos_per_class=1", f"data.root={tmp_path / 'md'}",
        "data.options.progress=false"])
    for stage in recipe.stages:
        stage.epochs, stage.warmup_epochs = 1, 0.0
    checkpoint = train(recipe).run_dir / "last.pt"
    out = tmp_path / "export"
    cli_args = [args[0], str(checkpoint), str(out), *args[3:]]
    assert main(cli_args) != 0
    err = capsys.readouterr().err
    assert "sha256" in err and "hcml_r2d_18.moving_digits" in err
    assert not out.exists() and not any(p.name.startswith(".") for p in tmp_path.iterdir())

    card = yaml.safe_load(open(card_path))  # the same card, with this export's sha256 and size
    unchecked = tmp_path / "unchecked"
    assert main([args[0], str(checkpoint), str(unchecked)]) == 0
    weights = unchecked / card["hf_hub_filename"]
    card.update(sha256=sha256_file(weights), size=weights.stat().st_size,
                name="hcml_r2d_18.moving_digits_unit")
    local_card = tmp_path / "hcml_r2d_18.moving_digits_unit.yaml"
    local_card.write_text(yaml.safe_dump(card))
    assert main([args[0], str(checkpoint), str(out), "--card", str(local_card)]) == 0
    model = zoo.create_model(f"local-dir:{out}").eval()
    reference = zoo.create_model(f"local-dir:{unchecked}").eval()
    clip = torch.randn(1, *card["input"]["size"])
    with torch.no_grad():
        torch.testing.assert_close(model(clip), reference(clip))
    shutil.rmtree(unchecked)
