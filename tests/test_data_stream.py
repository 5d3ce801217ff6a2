"""WebDataset shards: packing (round trip, manifest, resumable), streaming (disjoint ranks and workers, fixed-length
epochs, exact resume mid-epoch), corrupt members skipped and counted, and a run that trains on shards and resumes."""
from __future__ import annotations

import io
import json
import os
import signal
import tarfile

import numpy as np
import pytest
import torch

from zoo.cli import main
from zoo.data import create_dataset, shard_dataset, write_video
from zoo.data.readers import VideoReadError
from zoo.data.shards import parse_size, read_manifest
from zoo.data.stream import WebDatasetStream
from zoo.train import Trainer, TrainingInterrupted, load_training_checkpoint, recipe_from_dict
from zoo.train.runtime import Runtime
from zoo.train.streaming import StreamLoader
from zoo.utils.distributed import DistInfo

pytestmark = pytest.mark.usefixtures("one_thread")

CLASSES, PER_CLASS, FRAMES = 4, 4, 10
CLIP = {"num_frames": 4, "frame_stride": 2, "input_size": 32}


def _frames(label: int, i: int) -> np.ndarray:
    """A clip whose colour says its class and whose brightness ramp says the video (64x48, FRAMES frames)."""
    t = np.arange(FRAMES, dtype=np.float32)[:, None, None]
    x = np.linspace(0, 1, 64, dtype=np.float32)[None, None, :]
    base = np.broadcast_to(30 + 8 * i + 10 * t + 60 * x, (FRAMES, 48, 64))
    frames = np.zeros((FRAMES, 48, 64, 3), np.uint8)
    frames[..., label % 3] = base.astype(np.uint8)
    frames[..., (label + 1) % 3] = 40 * (label // 3)
    return frames


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    for c in range(CLASSES):
        for i in range(PER_CLASS):
            write_video(root / f"class{c}" / f"v{i}.mp4", _frames(c, i), fps=25, options={"g": "4", "bf": "2"})
    return root


@pytest.fixture(scope="module")
def shards(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("shards")
    manifest = shard_dataset(folder, out, kind="folder", shard_size="21KB", progress=False)
    return out, manifest


def _loader(stream, rank=0, world=1, workers=0, train=True, batch_size=2, seed=0):
    return StreamLoader(stream, Runtime(dist=DistInfo(rank, world)), workers, train, batch_size, seed)


def test_parse_size():
    assert parse_size("1GB") == 10**9 and parse_size("2GiB") == 2 * 2**30 and parse_size("500 MB") == 5 * 10**8
    assert parse_size(4096) == 4096
    with pytest.raises(ValueError, match="unit"):
        parse_size("1 parsec")


def test_shard_round_trip_gives_the_same_clips_and_labels(folder, shards):
    out, manifest = shards
    assert manifest["complete"] and manifest["num_samples"] == CLASSES * PER_CLASS
    assert len(manifest["shards"]) > 3 and sum(s["samples"] for s in manifest["shards"]) == manifest["num_samples"]
    assert manifest["classes"] == [f"class{c}" for c in range(CLASSES)]
    import hashlib

    for s in manifest["shards"]:  # the manifest's counts and sha256 describe the files
        data = (out / s["name"]).read_bytes()
        assert len(data) == s["bytes"] and hashlib.sha256(data).hexdigest() == s["sha256"]
        assert s["bytes"] <= 21_000 or s["samples"] == 1
        with tarfile.open(out / s["name"]) as tar:
            names = tar.getnames()
        assert len(names) == 2 * s["samples"] and all(n.endswith((".mp4", ".json")) for n in names)
    reference = create_dataset("folder", folder, train=False, **CLIP)
    stream = create_dataset("webdataset", out, train=False, **CLIP)
    assert isinstance(stream, WebDatasetStream) and stream.classes == reference.classes
    items = {}
    for batch in _loader(stream, train=False, batch_size=3, workers=2):
        for k, index in enumerate(batch["index"].tolist()):
            items[index] = (batch["video"][k], int(batch["label"][k]), batch["path"][k])
    assert sorted(items) == list(range(len(reference)))  # every video once
    for index, (video, label, path) in items.items():
        expected = reference[index]
        assert label == expected["label"] and path == os.path.relpath(expected["path"], folder)
        assert torch.equal(video, expected["video"]), index
    # The bytes in the tar are the file's bytes.
    with tarfile.open(out / manifest["shards"][0]["name"]) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(".json"))
        meta = json.loads(tar.extractfile(member).read())
        video = tar.extractfile(member.name.replace(".json", ".mp4")).read()
    assert video == (folder / meta["path"]).read_bytes()


def test_packing_resumes_where_it_stopped(folder, shards, tmp_path, monkeypatch):
    out, manifest = shards
    import zoo.data.shards as shards_module

    calls = {"n": 0}
    real = shards_module._sha256

    def dies_after_three_shards(path):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(path)

    monkeypatch.setattr(shards_module, "_sha256", dies_after_three_shards)
    with pytest.raises(KeyboardInterrupt):
        shard_dataset(folder, tmp_path, kind="folder", shard_size="21KB", progress=False)
    partial = read_manifest(tmp_path)
    assert len(partial["shards"]) == 3 and not partial["complete"]
    monkeypatch.setattr(shards_module, "_sha256", real)
    resumed = shard_dataset(folder, tmp_path, kind="folder", shard_size="21KB", progress=False)
    assert resumed["shards"] == manifest["shards"] and resumed["complete"]  # byte-identical shards
    assert not list(tmp_path.glob("*.partial"))
    with pytest.raises(ValueError, match="other settings"):
        shard_dataset(folder, tmp_path, kind="folder", shard_size="20KB", progress=False)


def test_zoo_data_shard_command(folder, tmp_path, capsys):
    for split, n in (("train", 3), ("val", 1)):  # ROOT/train/CLASS/..., ROOT/val/CLASS/...
        for c in range(2):
            for i in range(n):
                _copy(folder / f"class{c}" / f"v{i}.mp4", tmp_path / "src" / split / f"c{c}" / f"{i}.mp4")
    assert main(["data", "shard", str(tmp_path / "src"), str(tmp_path / "out"), "--shard-size", "1MB",
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "6 videos in 1 shards, 2 classes" in printed and "2 videos in 1 shards" in printed
    assert read_manifest(tmp_path / "out" / "train")["num_samples"] == 6
    val = create_dataset("webdataset", tmp_path / "out", split="val", train=False, **CLIP)
    assert val.num_samples == 2


def _copy(src, dst):
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(src.read_bytes())


def _epoch(stream_args, rank, world, workers, epoch=0, batch_size=2):
    stream = create_dataset("webdataset", *stream_args, train=True, **CLIP)
    loader = _loader(stream, rank=rank, world=world, workers=workers, batch_size=batch_size)
    loader.sampler.set_epoch(epoch)
    return [b["index"].tolist() for b in loader], len(loader)


def test_ranks_and_workers_read_disjoint_shards_in_epochs_of_one_length(folder, tmp_path):
    out = tmp_path
    manifest = shard_dataset(folder, out, kind="folder", shard_size="10KB", progress=False)  # one video a shard
    assert len(manifest["shards"]) == 16
    n = manifest["num_samples"]
    per_rank = {}
    for rank in (0, 1):
        batches, length = _epoch((out,), rank, 2, workers=2)
        assert len(batches) == length == (n // 2) // 2  # the fixed epoch length, on every rank
        per_rank[rank] = [i for b in batches for i in b]
    seen = per_rank[0] + per_rank[1]
    assert len(set(per_rank[0]) & set(per_rank[1])) == 0
    assert len(set(seen)) == len(seen)  # nobody read a sample twice in the epoch
    # Workers of one rank: the shards of reader g = rank * workers + worker.
    stream = create_dataset("webdataset", out, train=True, **CLIP)
    stream.world_size, stream.batch_size = 2, 2
    readers = [{s["__key__"] for s in stream.round_samples(0, g, 4)} for g in range(4)]
    assert all(not (readers[a] & readers[b]) for a in range(4) for b in range(a + 1, 4))
    assert sum(len(r) for r in readers) == n
    # Another epoch draws another order.
    again, _ = _epoch((out,), 0, 2, workers=2, epoch=1)
    assert [i for b in again for i in b] != per_rank[0]


def test_fewer_shards_than_readers_still_split_by_sample(folder, tmp_path):
    shard_dataset(folder, tmp_path, kind="folder", shard_size="1GB", progress=False)  # one shard
    stream = create_dataset("webdataset", tmp_path, train=True, **CLIP)
    readers = [[s["__key__"] for s in stream.round_samples(0, g, 3)] for g in range(3)]
    assert sorted(sum(readers, [])) == sorted({k for r in readers for k in r}) and sum(map(len, readers)) == 16


def _corrupt_shards(folder, out):
    """Shards of the folder with a corrupt video member, a member without JSON and a truncated shard."""
    manifest = shard_dataset(folder, out, kind="folder", shard_size="21KB", progress=False)
    first = out / manifest["shards"][0]["name"]
    with tarfile.open(first) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for k, (m, data) in enumerate(members):
            if k == 1:  # the first video (members are key.json, key.mp4, ...)
                assert m.name.endswith(".mp4")
                data = b"\x00" * 300  # not a video any more
                m.size = len(data)
            tar.addfile(m, io.BytesIO(data))
        garbage = tarfile.TarInfo("999999999.mp4")  # a video without its JSON
        garbage.size = 10
        tar.addfile(garbage, io.BytesIO(b"0123456789"))
    first.write_bytes(buf.getvalue())
    last = out / manifest["shards"][-1]["name"]
    last.write_bytes(last.read_bytes()[:700])  # truncated mid-member
    return manifest


def test_corrupt_members_are_skipped_and_counted(folder, tmp_path):
    _corrupt_shards(folder, tmp_path)
    stream = create_dataset("webdataset", tmp_path, train=False, **CLIP)
    indices = [i for b in _loader(stream, train=False, batch_size=4) for i in b["index"].tolist()]
    bad = stream.report_bad_files()
    reasons = " | ".join(bad.values())
    assert len(bad) == 3, bad
    assert "no readable JSON" in reasons and "truncated or corrupt" in reasons
    assert len(indices) == len(set(indices)) == CLASSES * PER_CLASS - 1 - _lost(tmp_path)
    strict = create_dataset("webdataset", tmp_path, train=False, strict=True, **CLIP)
    with pytest.raises(VideoReadError):
        list(_loader(strict, train=False, batch_size=4))


def _lost(out) -> int:
    """Samples of the truncated last shard."""
    return read_manifest(out)["shards"][-1]["samples"]


def test_resume_mid_epoch_reads_the_same_batches(folder, tmp_path):
    _corrupt_shards(folder, tmp_path)  # skipped samples: a reader's position is not batches x batch size

    def stream():
        return create_dataset("webdataset", tmp_path, train=True, shuffle_buffer=4, **CLIP)

    whole = [b for b in _loader(stream(), workers=2, batch_size=2)]
    assert len(whole) == 8
    first = _loader(stream(), workers=2, batch_size=2)
    batches = iter(first)
    head = [next(batches) for _ in range(3)]
    state = json.loads(json.dumps(first.state_dict()))  # what a checkpoint keeps (JSON-able: weights_only)
    del batches
    assert sum(p["drawn"] for p in state["progress"].values()) > 3 * 2  # the corrupt member was drawn too
    second = _loader(stream(), workers=2, batch_size=2)
    second.load_state_dict(state)
    second.sampler.set_start(3 * 2)
    tail = list(second)
    assert len(tail) == len(second) == 5
    for a, b in zip(whole, head + tail):
        assert a["index"].tolist() == b["index"].tolist()
        assert torch.equal(a["video"], b["video"])


WEB_DATA = {"kind": "webdataset", **{k: v for k, v in CLIP.items()}, "batch_size": 2, "num_workers": 2,
            "train_split": "train", "val_split": "train"}


def test_training_on_shards_resumes_exactly(folder, tmp_path):
    root = tmp_path / "shards"
    shard_dataset(folder, root / "train", kind="folder", shard_size="21KB", progress=False)

    def recipe(name):
        return recipe_from_dict({
            "name": name, "output_dir": str(tmp_path / name), "progress": False, "log_every": 1,
            "model": {"name": "r2d_18", "kwargs": {"drop_rate": 0.5}}, "data": {**WEB_DATA, "root": str(root)},
            "optim": {"lr": 0.01, "base_batch_size": 2}, "stages": [{"name": "a", "epochs": 2}],
            "eval": {"every": 0, "confusion_matrix": False},
        })

    whole = Trainer(recipe("whole")).run()

    def stop_at(step):
        def callback(trainer):
            if trainer.step == step:
                os.kill(os.getpid(), signal.SIGTERM)
        return callback

    with pytest.raises(TrainingInterrupted):
        Trainer(recipe("cut"), callbacks=[stop_at(11)]).run()  # epoch 2 of 2, its third step of 8
    saved = load_training_checkpoint(tmp_path / "cut" / "last.pt")
    assert (saved["epoch"], saved["step_in_epoch"]) == (1, 3)
    assert saved["data_state"][0]["progress"] and saved["data_state"][0]["epoch"] == 1
    resumed = Trainer(recipe("cut")).run()
    a, b = (load_training_checkpoint(r.checkpoint) for r in (whole, resumed))
    assert a["step"] == b["step"] == 16
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert a["metrics"]["top1"] == b["metrics"]["top1"]
