"""The training engine: schedule, data order, checkpoints, exact resume after SIGTERM, metrics, the CLI's errors."""
from __future__ import annotations

import json
import os
import random
import signal

import numpy as np
import pytest
import torch
import yaml
from torch.utils.data import Dataset

import zoo
from zoo.cli import main
from zoo.train import (
    Trainer,
    TrainingInterrupted,
    WarmupCosine,
    get_rng_state,
    load_training_checkpoint,
    recipe_from_dict,
    save_checkpoint,
    set_rng_state,
)
from zoo.train.loaders import ResumableSampler, SeededItems

TINY_DATA = {
    "kind": "moving_digits",
    "num_frames": 4,
    "frame_stride": 2,
    "batch_size": 2,
    "num_workers": 0,
    "options": {"classes": ["left", "right", "up", "down"], "videos_per_class": 2, "eval_videos_per_class": 1,
                "frame_size": 32, "progress": False},
}


def tiny_recipe(tmp_path, **changes) -> dict:
    """Two stages of R2D-18 with dropout on 8 Moving-Digits videos of 32x32 pixels: 2 steps per epoch."""
    raw = {
        "name": "tiny",
        "output_dir": str(tmp_path / "run"),
        "progress": False,
        "log_every": 1,
        "max_steps_per_epoch": 2,
        "model": {"name": "r2d_18", "kwargs": {"drop_rate": 0.5}},
        "data": TINY_DATA,
        "optim": {"lr": 0.01, "base_batch_size": 2},
        "stages": [
            {"name": "a", "epochs": 1},
            {"name": "b", "epochs": 2, "warmup_epochs": 1, "freeze": ["stem.*"]},
        ],
        "eval": {"every": 1},
    }
    raw.update(changes)
    return raw


# ---------------------------------------------------------------------------------------------- pieces


def test_warmup_cosine_schedule():
    f = WarmupCosine(total_steps=10, warmup_steps=2, start_factor=0.1, min_factor=0.0)
    assert f(0) == pytest.approx(0.1)
    assert f(1) == pytest.approx(0.55)
    assert f(2) == pytest.approx(1.0)
    assert f(6) == pytest.approx(0.5)  # half-way through the cosine
    assert f(10) == pytest.approx(0.0)
    assert all(f(s) >= f(s + 1) for s in range(2, 10))


class _Range(Dataset):
    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict:
        return {"index": index, "noise": torch.rand(3)}


def test_sampler_resumes_mid_epoch_and_shards_ranks():
    data = _Range(10)
    full = ResumableSampler(data, num_replicas=1, rank=0, seed=3)
    full.set_epoch(1)
    keys = list(full)
    assert sorted(k[0] for k in keys) == list(range(10))
    resumed = ResumableSampler(data, num_replicas=1, rank=0, seed=3)
    resumed.set_epoch(1)
    resumed.set_start(4)
    assert list(resumed) == keys[4:] and len(resumed) == 6
    full.set_epoch(2)
    assert list(full) != keys  # a new order every epoch
    shards = [list(ResumableSampler(data, num_replicas=2, rank=r, seed=3)) for r in (0, 1)]
    assert sorted(k[0] for s in shards for k in s) == list(range(10))
    assert {k[1] for k in shards[0]}.isdisjoint({k[1] for k in shards[1]})


def test_seeded_items_do_not_depend_on_or_touch_the_global_rng():
    items = SeededItems(_Range(4))
    torch.manual_seed(0)
    first = items[(2, 123)]["noise"]
    after = torch.rand(1)
    torch.manual_seed(99)
    assert torch.equal(items[(2, 123)]["noise"], first)
    torch.manual_seed(0)
    items[(1, 5)]
    assert torch.equal(torch.rand(1), after)


def test_checkpoint_is_atomic_and_loads_with_weights_only(tmp_path):
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    state = get_rng_state()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    path = save_checkpoint({"model": {"w": torch.ones(2)}, "rng": [state], "epoch": 1}, tmp_path / "c" / "last.pt")
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]  # no temporary file left
    ckpt = torch.load(path, weights_only=True)
    set_rng_state(ckpt["rng"][0])
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable training checkpoint"):
        load_training_checkpoint(tmp_path / "bad.pt")


# ---------------------------------------------------------------------------------------------- runs


def _stop_at(step: int):
    def callback(trainer: Trainer) -> None:
        if trainer.step == step:
            os.kill(os.getpid(), signal.SIGTERM)

    return callback


def test_resume_after_sigterm_gives_the_same_parameters(tmp_path):
    """A run stopped by SIGTERM mid-epoch in its second stage and resumed ends with the same weights,
    optimizer state and metrics records as an uninterrupted run (CPU, dropout on)."""
    whole = Trainer(recipe_from_dict(tiny_recipe(tmp_path / "whole"))).run()

    interrupted = recipe_from_dict(tiny_recipe(tmp_path / "cut"))
    with pytest.raises(TrainingInterrupted, match="SIGTERM"):
        Trainer(interrupted, callbacks=[_stop_at(3)]).run()  # stage b, its first epoch, after its first step
    stopped = load_training_checkpoint(tmp_path / "cut" / "run" / "last.pt")
    assert (stopped["stage_name"], stopped["epoch"], stopped["step_in_epoch"], stopped["step"]) == ("b", 0, 1, 3)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is removed again
    resumed = Trainer(interrupted).run()  # the run folder's last.pt is picked up

    a = load_training_checkpoint(whole.checkpoint)
    b = load_training_checkpoint(resumed.checkpoint)
    assert a["step"] == b["step"] == 6 and a["finished"] and b["finished"]
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    a_end, b_end = (load_training_checkpoint(r.run_dir / "stage_b.pt") for r in (whole, resumed))
    momenta = [[s["momentum_buffer"] for s in c["optimizer"]["state"].values()] for c in (a_end, b_end)]
    assert len(momenta[0]) == len(momenta[1]) > 0
    assert all(torch.equal(x, y) for x, y in zip(*momenta))
    assert a_end["scheduler"] == b_end["scheduler"]
    assert a["metrics"] == b["metrics"]
    runs = [[json.loads(line) for line in open(r.run_dir / "metrics.jsonl")] for r in (whole, resumed)]
    epochs = [[(e["step"], e["train_loss"], e["val_top1"]) for e in run if e["kind"] == "epoch"] for run in runs]
    assert epochs[0] == epochs[1]
    records = [json.loads(line) for line in open(tmp_path / "cut" / "run" / "metrics.jsonl")]
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2, 3, 4, 5, 6]  # no duplicates
    # Per-stage checkpoints, plots, CSV and the resolved recipe are in the run folder.
    run = tmp_path / "cut" / "run"
    for name in ("stage_a.pt", "stage_b.pt", "loss.png", "accuracy.png", "confusion_matrix.png", "metrics.csv",
                 "eval.json", "recipe.yaml"):
        assert (run / name).is_file(), name
    assert yaml.safe_load((run / "recipe.yaml").read_text())["stages"][1]["freeze"] == ["stem.*"]
    saved = json.loads((run / "eval.json").read_text())
    matrix = torch.tensor(saved["confusion_matrix"])  # counts, true class by predicted class
    assert matrix.shape == (4, 4) and matrix.sum() == saved["videos"]
    assert matrix.diagonal().sum() / saved["videos"] * 100 == pytest.approx(saved["top1"])
    # The checkpoint fits zoo export's contract and rebuilds the model.
    from zoo._checkpoint import CHECKPOINT_KEYS
    from zoo.train import build_model_from_checkpoint

    assert set(CHECKPOINT_KEYS) <= set(b)
    assert b["label_names"] == ["left", "right", "up", "down"] and b["num_classes"] == 4
    model = build_model_from_checkpoint(b).eval()
    assert model(torch.zeros(1, 3, 4, 32, 32)).shape == (1, 4)


def test_finished_run_is_reported_not_retrained(tmp_path, capsys):
    raw = tiny_recipe(tmp_path, stages=[{"name": "a", "epochs": 1}], max_steps_per_epoch=1)
    first = Trainer(recipe_from_dict(raw)).run()
    again = Trainer(recipe_from_dict(raw)).run()
    assert again.metrics == first.metrics and again.wall_time_s == 0.0
    assert "holds a finished run" in capsys.readouterr().out


def test_run_reports_where_its_wall_time_went(tmp_path, capsys):
    """The time split adds up to the wall time, agrees with the epoch records, and is printed and logged."""
    from zoo.train.logger import TIME_SPLIT_KEYS, time_line

    result = Trainer(recipe_from_dict(tiny_recipe(tmp_path))).run()
    split = result.time_split
    assert set(split) == set(TIME_SPLIT_KEYS)
    assert sum(v for k, v in split.items() if k != "data_wait_s") == pytest.approx(result.wall_time_s, abs=0.05)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r["kind"] == "epoch"]
    # three epochs; the last one's validation is the final evaluation, the two before are timed validations
    assert len(epochs) == 3 and sum("val_time_s" in r for r in epochs) == 2
    assert split["train_s"] == pytest.approx(sum(r["epoch_time_s"] for r in epochs), abs=0.02)
    assert split["val_s"] == pytest.approx(sum(r.get("val_time_s", 0.0) for r in epochs), abs=0.02)
    assert 0 <= split["data_wait_s"] <= split["train_s"]
    assert min(split["setup_s"], split["train_s"], split["val_s"], split["final_eval_s"], split["checkpoint_s"]) > 0
    (logged,) = [r for r in records if r["kind"] == "time"]
    assert {k: logged[k] for k in TIME_SPLIT_KEYS} == split
    out = capsys.readouterr().out
    (line,) = [x for x in out.splitlines() if x.startswith("time ")]
    assert line == time_line(result.wall_time_s, split)  # which parts it names depends on this machine's speed
    # the format, on a split of known parts: parts under half a second are left out
    known = {"setup_s": 0.2, "train_s": 301.2, "data_wait_s": 4.1, "val_s": 21.0, "checkpoint_s": 0.4, "other_s": 0.6}
    assert time_line(372.0, known) == "time 6.2 min: training 301 s (waiting for data 4 s), validation 21 s, other 1 s"


def test_linear_probe_freezes_all_but_the_classifier(tmp_path):
    raw = tiny_recipe(tmp_path, stages=[{"name": "probe", "epochs": 1, "trainable": ["head.fc.*"]}],
                      eval={"efficacy": True, "knn": [1, 3]}, max_steps_per_epoch=2)
    raw["model"]["kwargs"] = {}
    trainer = Trainer(recipe_from_dict(raw))
    result = trainer.run()
    torch.manual_seed(0)  # the recipe's seed: the engine's initial weights
    initial = zoo.create_model("r2d_18", num_classes=4).state_dict()
    after = trainer.model.state_dict()
    changed = {k for k in after if not torch.equal(after[k], initial[k])}
    assert changed == {"head.fc.weight", "head.fc.bias"}  # BN statistics frozen too
    m = result.metrics
    assert 0 <= m["probe_val_top1"] <= 100 and m["efficacy"] > 0
    assert set(m) >= {"top1", "top5", "knn_recall@1", "knn_recall@3", "knn_top1@3"}


# ---------------------------------------------------------------------------------------------- CLI


@pytest.mark.parametrize(
    "change, message",
    [
        ({"model": {"nmae": "r2d_18"}}, "unknown key 'model.nmae'; did you mean 'name'"),
        ({"model": {"name": "r2d_81"}}, "Unknown model 'r2d_81'. Closest registered names: r2d_18"),
        ({"device": "cuda"}, "asked for CUDA, but torch sees no GPU"),
        ({"data": {"kind": "folder", "root": "/no/such/folder"}}, "root folder /no/such/folder does not exist"),
    ],
)
def test_user_errors_end_with_one_line(tmp_path, capsys, change, message):
    if change.get("device") == "cuda" and torch.cuda.is_available():
        pytest.skip("CUDA is present")
    raw = tiny_recipe(tmp_path)
    for key, value in change.items():
        raw[key] = {**raw[key], **value} if isinstance(value, dict) and key in raw else value
    if raw["data"]["kind"] == "folder":
        raw["data"] = {k: v for k, v in raw["data"].items() if k != "options"}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    if "unknown key" in message:
        assert str(path) in err[0]


def test_override_typo_names_the_key(tmp_path, capsys):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(tiny_recipe(tmp_path)))
    assert main(["train", str(path), "optim.lrr=0.1"]) == 2
    assert "unknown key 'optim.lrr'; did you mean 'optim.lr'?" in capsys.readouterr().err
