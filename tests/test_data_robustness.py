"""Bad videos never stop a run: skipped, replaced, counted across workers, reported; strict mode raises."""
import argparse
import json
import logging
import shutil

import numpy as np
import pytest
from torch.utils.data import DataLoader

from zoo.data import create_dataset, write_video
from zoo.data.check import add_subparser, check_dataset
from zoo.data.readers import VideoReadError

SMALL = dict(num_frames=4, frame_stride=2, input_size=32)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A folder dataset: 4 good videos, and a truncated, an empty, a non-video and a too-short file."""
    root = tmp_path_factory.mktemp("robust")
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (40, 48, 64, 3), dtype=np.uint8)
    good = write_video(root / "run" / "good0.mp4", frames, 25, options={"g": "10"})
    for name in ("run/good1.mp4", "jump/good2.mp4", "jump/good3.mp4"):
        (root / name).parent.mkdir(exist_ok=True)
        shutil.copy(good, root / name)
    data = write_video(root / "whole.mp4", frames, 25).read_bytes()  # index at the end, as downloads write it
    (root / "jump" / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (root / "whole.mp4").unlink()
    (root / "jump" / "empty.mp4").touch()
    (root / "run" / "notes.mp4").write_text("this is not a video\n" * 40)
    write_video(root / "run" / "short.mp4", frames[:2], 25)
    return root


BAD = {"jump/truncated.mp4", "jump/empty.mp4", "run/notes.mp4", "run/short.mp4"}


def relative(paths, root):
    return {str(p).removeprefix(f"{root}/") for p in paths}


def test_bad_files_are_skipped_replaced_and_merged_across_two_workers(root):
    ds = create_dataset("folder", root, min_frames=3, **SMALL)
    assert len(ds) == 8
    loader = DataLoader(ds, batch_size=2, num_workers=2, shuffle=False)
    for epoch in range(2):
        seen = [p for batch in loader for p in batch["path"]]
        assert len(seen) == 8 and not relative(seen, root) & BAD  # every bad item was replaced by a good video
        reasons = ds.report_bad_files(reset=True)
        assert relative(reasons, root) == BAD, f"epoch {epoch}"
        assert ds.bad_files == {}
    assert "too short: 2 frames" in reasons[str(root / "run" / "short.mp4")]
    assert reasons[str(root / "jump" / "empty.mp4")] == "empty file"
    assert "cannot open" in reasons[str(root / "run" / "notes.mp4")]


def test_each_bad_file_is_logged_once_and_reported_at_the_end_of_the_epoch(root, caplog):
    ds = create_dataset("folder", root, train=False, min_frames=3, **SMALL)
    with caplog.at_level(logging.WARNING, logger="zoo.data.dataset"):
        for _ in range(2):
            items = [ds[i] for i in range(len(ds))]
        skipped = [r.message for r in caplog.records if "skipping" in r.message]
        assert len(skipped) == len(BAD)
        caplog.clear()
        report = ds.report_bad_files()
    assert relative(report, root) == BAD
    assert f"{len(BAD)} of 8 videos could not be read" in caplog.text
    # testing replaces a bad video by the next readable one: jump/[empty good2 good3 truncated],
    # run/[good0 good1 notes short]
    assert [it["index"] for it in items] == [1, 1, 2, 4, 4, 5, 1, 1]
    assert all(it["path"] == ds.samples[it["index"]].path for it in items)


def test_strict_mode_raises_naming_the_file(root):
    ds = create_dataset("folder", root, strict=True, train=False, **SMALL)
    with pytest.raises(VideoReadError, match="empty.mp4: empty file"):
        ds[0]
    loader = DataLoader(ds, batch_size=8, num_workers=2)
    with pytest.raises(VideoReadError, match="empty.mp4"):
        next(iter(loader))


def test_a_dataset_of_only_bad_files_stops_with_a_clear_error(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "x.mp4").touch()
    ds = create_dataset("folder", tmp_path, **SMALL)
    with pytest.raises(RuntimeError, match="videos in a row could not be read"):
        ds[0]


def test_check_dataset_lists_unreadable_files(root):
    report = check_dataset(root, kind="folder", progress=False)
    assert report["num_videos"] == 8 and report["num_classes"] == 2
    assert relative(report["bad_files"], root) == {"jump/truncated.mp4", "jump/empty.mp4", "run/notes.mp4"}
    full = check_dataset(root, kind="folder", reader="pyav", full=True, num_workers=1, progress=False)
    assert full["num_bad"] == 3


def test_zoo_data_check_command_line(root, tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="zoo")
    add_subparser(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / "report.json"
    args = parser.parse_args(["data", "check", str(root), "--kind", "folder", "--no-progress", "--json", str(out),
                              "-o", 'extensions=[".mp4"]'])
    assert args.func(args) == 1  # unreadable files found
    printed = capsys.readouterr().out
    assert "folder: 8 videos, 2 classes, 3 unreadable" in printed and "empty.mp4: empty file" in printed
    assert json.loads(out.read_text())["num_bad"] == 3
    good = tmp_path / "good"
    (good / "run").mkdir(parents=True)
    shutil.copy(root / "run" / "good0.mp4", good / "run")
    args = parser.parse_args(["data", "check", str(good), "--no-progress"])
    assert args.func(args) == 0
