"""Every dataset layout parsed from small annotation files written here; items, multi-view, readers."""
import json
import logging
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from zoo.data import VideoSample, create_dataset, list_datasets, load_classes, video_collate, write_video
from zoo.data.dataset import sample_frame_range
from zoo.data.readers import VideoReadError

FRAMES, HEIGHT, WIDTH, FPS = 12, 48, 64, 25


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """One small H.264 video (12 frames, 64x48, 25 fps) to copy wherever a dataset needs one."""
    frames = np.random.default_rng(0).integers(0, 255, (FRAMES, HEIGHT, WIDTH, 3), dtype=np.uint8)
    return write_video(tmp_path_factory.mktemp("clip") / "clip.mp4", frames, FPS, options={"crf": "18"})


def put(clip, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(clip, path)
    return path


def frame_folder(path, n=6):
    path.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)).save(path / f"{i + 1:05d}.jpg")
    return path


SMALL = dict(num_frames=4, frame_stride=2, input_size=32)


def check_item(ds, index=0, views=None):
    item = ds[index]
    assert set(item) == {"video", "label", "index", "path"}
    shape = (3, 4, 32, 32) if views is None else (views, 3, 4, 32, 32)
    assert item["video"].shape == shape and item["video"].dtype == torch.float32
    assert item["label"] == ds.samples[item["index"]].label and item["path"] == ds.samples[item["index"]].path
    return item


def test_list_datasets_and_unknown_kind():
    assert list_datasets() == ["csv", "folder", "kinetics", "moving_digits", "ssv1", "ssv2", "ucf101", "webdataset"]
    with pytest.raises(ValueError, match="unknown dataset kind 'hmdb'.*ucf101"):
        create_dataset("hmdb", "/nowhere")


def test_folder_dataset(clip, tmp_path):
    root = tmp_path / "data"
    put(clip, root / "train" / "walk" / "b.mp4")
    put(clip, root / "train" / "walk" / "a.MKV")
    put(clip, root / "train" / "jump" / "c.avi")
    frame_folder(root / "train" / "jump" / "d_frames")
    (root / "train" / "jump" / "readme.txt").write_text("not a video")
    ds = create_dataset("folder", root, split="train", **SMALL)
    assert ds.classes == ["jump", "walk"]
    assert [(s.path.split("/")[-1], s.label) for s in ds.samples] == [
        ("c.avi", 0), ("d_frames", 0), ("a.MKV", 1), ("b.mp4", 1)]
    for i in range(len(ds)):
        check_item(ds, i)
    saved = ds.save_classes(tmp_path / "run" / "classes.json")
    assert load_classes(saved) == ["jump", "walk"]
    # a validation set with the training classes, one of which it lacks
    put(clip, root / "val" / "walk" / "e.mp4")
    val = create_dataset("folder", root, split="val", train=False, classes=saved, **SMALL)
    assert val.classes == ["jump", "walk"] and val.samples[0].label == 1
    with pytest.raises(ValueError, match=r"\['walk'\].*not in the given classes"):
        create_dataset("folder", root, split="val", classes=["jump", "run"])
    with pytest.raises(ValueError, match="no videos found"):
        create_dataset("folder", tmp_path / "run")


def test_csv_dataset(clip, tmp_path):
    put(clip, tmp_path / "videos" / "a.mp4")
    put(clip, tmp_path / "videos" / "b.mp4")
    (tmp_path / "train.csv").write_text("path,label,start,end\nvideos/a.mp4,2,,\n\nvideos/b.mp4,0,0.1,0.3\n")
    ds = create_dataset("csv", tmp_path, split="train", **SMALL)
    assert ds.classes == ["0", "1", "2"]
    assert ds.samples == [VideoSample(str(tmp_path / "videos/a.mp4"), 2),
                          VideoSample(str(tmp_path / "videos/b.mp4"), 0, 0.1, 0.3)]
    check_item(ds, 1)
    (tmp_path / "named.csv").write_text("videos/a.mp4,throw\nvideos/b.mp4,catch\n")
    named = create_dataset("csv", tmp_path, annotations=tmp_path / "named.csv", **SMALL)
    assert named.classes == ["catch", "throw"] and named.labels == [1, 0]
    given = create_dataset("csv", tmp_path, annotations=tmp_path / "named.csv", classes=["throw", "catch", "x"])
    assert given.labels == [0, 1]
    (tmp_path / "mixed.csv").write_text("videos/a.mp4,throw\nvideos/b.mp4,1\n")
    with pytest.raises(ValueError, match="mix indices and names"):
        create_dataset("csv", tmp_path, annotations=tmp_path / "mixed.csv")
    (tmp_path / "bad.csv").write_text("videos/a.mp4,1,2\n")
    with pytest.raises(ValueError, match=r"line 1: expected path,label\[,start,end\]"):
        create_dataset("csv", tmp_path, annotations=tmp_path / "bad.csv")
    with pytest.raises(ValueError, match="annotations=PATH.csv"):
        create_dataset("csv", tmp_path)


class _FakeReader:
    num_frames, fps = 50, 25.0


def test_sample_frame_range_uses_start_and_end_seconds():
    assert sample_frame_range(VideoSample("v", 0), _FakeReader()) == range(0, 50)
    assert sample_frame_range(VideoSample("v", 0, 0.1, 0.3), _FakeReader()) == range(2, 8)
    assert sample_frame_range(VideoSample("v", 0, 1.5, None), _FakeReader()) == range(37, 50)
    with pytest.raises(VideoReadError, match="too short: 0 frames"):
        sample_frame_range(VideoSample("v", 0, 3.0, 4.0), _FakeReader())
    with pytest.raises(VideoReadError, match="too short: 6 frames"):
        sample_frame_range(VideoSample("v", 0, 0.1, 0.3), _FakeReader(), min_frames=8)


def test_kinetics_dataset(clip, tmp_path, caplog):
    root = tmp_path / "k400"
    put(clip, root / "train" / "abseiling" / "aaa_000010_000020.mp4")  # ROOT/SPLIT/LABEL layout
    put(clip, root / "train" / "bbb_000000_000010.mp4")  # ROOT/SPLIT layout
    put(clip, root / "train" / "ccc.mp4")  # untrimmed: cut to the annotated seconds
    (root / "annotations").mkdir()
    (root / "annotations" / "train.csv").write_text(
        "label,youtube_id,time_start,time_end,split,is_cc\n"
        "abseiling,aaa,10,20,train,0\n"
        "air drumming,bbb,0,10,train,0\n"
        "zumba,ccc,0,1,train,0\n"
        "zumba,ddd,5,15,train,0\n"  # not downloaded
    )
    with caplog.at_level(logging.WARNING, logger="zoo.data.dataset"):
        ds = create_dataset("kinetics", root, **SMALL)
    assert "1 of 4 annotated videos" in caplog.text
    assert ds.classes == ["abseiling", "air drumming", "zumba"]
    assert [(s.path.removeprefix(str(root)), s.label, s.start, s.end) for s in ds.samples] == [
        ("/train/abseiling/aaa_000010_000020.mp4", 0, None, None),
        ("/train/bbb_000000_000010.mp4", 1, None, None),
        ("/train/ccc.mp4", 2, 0.0, 1.0),
    ]
    check_item(ds, 2)
    # the validation split from ROOT/validate.csv and ROOT/val
    put(clip, root / "val" / "eee_000001_000011.mp4")
    (root / "validate.csv").write_text("label,youtube_id,time_start,time_end,split\nzumba,eee,1,11,val\n")
    val = create_dataset("kinetics", root, train=False, classes=ds.classes, **SMALL)
    assert val.split == "val" and val.labels == [2] and not val.train


def test_ssv2_dataset(clip, tmp_path):
    root = tmp_path / "ssv2"
    labels = {"Pushing something from left to right": "0", "Pushing something from right to left": "1",
              "Putting something on a surface": "2"}
    (root / "labels").mkdir(parents=True)
    (root / "labels" / "something-something-v2-labels.json").write_text(json.dumps(labels))
    train = [
        {"id": "11", "label": "pushing a cup from left to right", "template": "Pushing [something] from left to right",
         "placeholders": ["a cup"]},
        {"id": "12", "label": "putting a pen on a table", "template": "Putting [something] on a surface",
         "placeholders": ["a pen"]},
        {"id": "13", "label": "pushing a box from right to left", "template": "Pushing [something] from right to left",
         "placeholders": ["a box"]},
    ]
    (root / "labels" / "something-something-v2-train.json").write_text(json.dumps(train))
    (root / "labels" / "something-something-v2-validation.json").write_text(json.dumps(train[:1]))
    for video_id in ("11", "12", "13"):
        put(clip, root / "20bn-something-something-v2" / f"{video_id}.webm")
    ds = create_dataset("ssv2", root, **SMALL)
    assert ds.classes == list(labels)
    assert [(s.path.split("/")[-1], s.label) for s in ds.samples] == [("11.webm", 0), ("12.webm", 2), ("13.webm", 1)]
    assert not any(isinstance(t, v2.RandomHorizontalFlip) for t in ds.transform.transforms)  # left/right classes
    check_item(ds, 0)
    val = create_dataset("ssv2", root, train=False, **SMALL)
    assert val.split == "validation" and val.labels == [0]
    with pytest.raises(ValueError, match="split must be 'train' or 'validation'"):
        create_dataset("ssv2", root, split="test")


def test_ssv1_dataset_reads_jpeg_frame_folders(tmp_path):
    root = tmp_path / "ssv1"
    root.mkdir()
    (root / "something-something-v1-labels.csv").write_text(
        "Holding something\nPushing something from left to right\nPushing something from right to left\n")
    (root / "something-something-v1-train.csv").write_text(
        "100;Pushing something from right to left\n101;Holding something\n102;Holding something\n")
    (root / "something-something-v1-validation.csv").write_text("103;Pushing something from left to right\n")
    for video_id in ("100", "101", "103"):
        frame_folder(root / "20bn-something-something-v1" / video_id)
    ds = create_dataset("ssv1", root, **SMALL)  # 102 was never extracted: left out
    assert ds.classes[2] == "Pushing something from right to left"
    assert [(s.path.split("/")[-1], s.label) for s in ds.samples] == [("100", 2), ("101", 0)]
    assert ds.fps == 12.0
    assert not any(isinstance(t, v2.RandomHorizontalFlip) for t in ds.transform.transforms)
    check_item(ds, 0)
    val = create_dataset("ssv1", root, train=False, **SMALL)
    assert val.labels == [1]
    check_item(val, 0)


def test_ucf101_dataset_and_its_folds(clip, tmp_path):
    root = tmp_path / "ucf"
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 HandstandPushups\n3 YoYo\n")
    videos = {
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", "HandstandPushups/v_HandStandPushups_g08_c01.avi",
        "YoYo/v_YoYo_g01_c01.avi", "HandstandPushups/v_HandStandPushups_g01_c02.avi",
    }
    for rel in videos:
        put(clip, root / "UCF-101" / rel)
    (lists / "trainlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\nHandstandPushups/v_HandStandPushups_g08_c01.avi 2\n")
    (lists / "testlist01.txt").write_text("YoYo/v_YoYo_g01_c01.avi\nHandstandPushups/v_HandStandPushups_g01_c02.avi\n")
    (lists / "trainlist02.txt").write_text("YoYo/v_YoYo_g01_c01.avi 3\n")
    (lists / "testlist02.txt").write_text("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi\n")
    train = create_dataset("ucf101", root, **SMALL)
    assert train.classes == ["ApplyEyeMakeup", "HandstandPushups", "YoYo"] and train.labels == [0, 1]
    test = create_dataset("ucf101", root, train=False, **SMALL)
    assert test.split == "test" and test.labels == [2, 1]  # labels from the class folders
    check_item(test, 1)
    assert create_dataset("ucf101", root, fold=2).labels == [2]
    assert create_dataset("ucf101", root, fold=2, train=False).labels == [0]
    with pytest.raises(ValueError, match="fold must be 1, 2 or 3"):
        create_dataset("ucf101", root, fold=4)


@pytest.fixture
def folder_root(clip, tmp_path):
    for name in ("a", "b", "c"):
        put(clip, tmp_path / "data" / name / f"{name}.mp4")
    return tmp_path / "data"


def test_multi_view_items_and_collate(folder_root):
    ds = create_dataset("folder", folder_root, train=False, n_clips=2, n_crops=3, **SMALL)
    check_item(ds, 0, views=6)
    batch = next(iter(DataLoader(ds, batch_size=2, collate_fn=video_collate)))
    assert batch["video"].shape == (12, 3, 4, 32, 32) and batch["num_views"] == 6
    assert batch["label"].tolist() == [0, 1]
    # the two clips of a 12-frame video: frames [0, 2, 4, 6] and [5, 7, 9, 11]
    assert ds.read_clips(0).shape == (2, 4, HEIGHT, WIDTH, 3)
    assert np.array_equal(ds.sampler(FRAMES), [[0, 2, 4, 6], [5, 7, 9, 11]])


def test_decord_and_pyav_datasets_give_the_same_items(folder_root):
    items = [create_dataset("folder", folder_root, train=False, reader=r, **SMALL)[1]["video"]
             for r in ("decord", "pyav")]
    assert torch.equal(items[0], items[1])


def test_segment_sampling_and_padding_options(folder_root):
    ds = create_dataset("folder", folder_root, train=False, sampling="segment", num_frames=5, input_size=32)
    assert ds[0]["video"].shape == (3, 5, 32, 32)
    assert ds.sampler(FRAMES).tolist() == [[1, 3, 6, 8, 10]]
    long = create_dataset("folder", folder_root, train=False, num_frames=8, frame_stride=2, input_size=32,
                          pad_mode="repeat_last")
    assert long.sampler(FRAMES).tolist() == [[0, 2, 4, 6, 8, 10, 11, 11]]
    assert long[0]["video"].shape == (3, 8, 32, 32)
    with pytest.raises(ValueError, match="unknown reader"):
        create_dataset("folder", folder_root, reader="cv2")
