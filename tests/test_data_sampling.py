"""Clip sampling, video transforms and the multi-view collate."""
import numpy as np
import pytest
import torch
from torchvision.transforms import v2

from zoo.data.collate import average_views, video_collate
from zoo.data.sampling import ClipSampler, clip_span, dense_indices, pad_indices, segment_indices
from zoo.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    NormalizeToCTHW,
    RandomShortSideCrop,
    ThreeCrop,
    ToCTHW,
    create_video_transform,
)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_dense_training_clips_are_strided_windows_at_random_starts():
    starts = set()
    for seed in range(40):
        idx = dense_indices(100, 16, 2, train=True, generator=gen(seed))
        assert idx.shape == (1, 16) and idx.dtype == np.int64
        assert np.all(np.diff(idx[0]) == 2)
        assert 0 <= idx[0, 0] and idx[0, -1] <= 99
        starts.add(int(idx[0, 0]))
    assert len(starts) > 10  # random
    assert max(starts) <= 100 - clip_span(16, 2)


def test_dense_testing_clips_are_centred_or_evenly_spread():
    assert dense_indices(100, 16, 2, train=False)[0, 0] == (100 - 31) // 2
    ten = dense_indices(100, 16, 2, train=False, n_clips=10)
    assert ten.shape == (10, 16)
    assert ten[0, 0] == 0 and ten[-1, -1] == 99
    assert np.all(np.diff(ten[:, 0]) > 0)
    assert np.array_equal(ten, dense_indices(100, 16, 2, train=False, n_clips=10))  # deterministic


def test_short_videos_loop_or_repeat_their_last_frame():
    assert dense_indices(5, 4, 2, train=False, pad_mode="loop").tolist() == [[0, 2, 4, 1]]
    assert dense_indices(5, 4, 2, train=False, pad_mode="repeat_last").tolist() == [[0, 2, 4, 4]]
    assert dense_indices(1, 3, 1, train=True, generator=gen()).tolist() == [[0, 0, 0]]
    assert pad_indices(np.array([3, 7, 12]), 5, "loop").tolist() == [3, 2, 2]
    with pytest.raises(ValueError, match="pad_mode"):
        pad_indices(np.array([1]), 5, "mirror")


def test_temporal_jitter_keeps_order_and_range():
    for seed in range(20):
        idx = dense_indices(40, 8, 4, train=True, temporal_jitter=True, generator=gen(seed))[0]
        assert np.all(np.diff(idx) >= 1) and np.all(np.diff(idx) <= 7)
        assert idx.min() >= 0 and idx.max() <= 39
    gaps = [np.diff(dense_indices(40, 8, 4, True, temporal_jitter=True, generator=gen(s))[0]) for s in range(5)]
    assert any(np.any(g != 4) for g in gaps)
    # no jitter when testing
    assert np.all(np.diff(dense_indices(40, 8, 4, train=False, temporal_jitter=True)[0]) == 4)


def test_segment_sampling_takes_one_frame_per_segment():
    test = segment_indices(80, 8, train=False)
    assert test.tolist() == [[5, 15, 25, 35, 45, 55, 65, 75]]  # segment middles
    for seed in range(10):
        idx = segment_indices(80, 8, train=True, generator=gen(seed))[0]
        assert np.array_equal(idx // 10, np.arange(8))  # frame k lies in segment k
    assert segment_indices(3, 6, train=False).tolist() == [[0, 0, 1, 1, 2, 2]]  # fewer frames than segments
    three = segment_indices(90, 3, train=False, n_clips=3)
    assert three.shape == (3, 3) and three[:, 0].tolist() == [5, 15, 25]


def test_clip_sampler_binds_the_settings():
    sampler = ClipSampler(num_frames=4, frame_stride=3, mode="dense", train=False, n_clips=2)
    assert np.array_equal(sampler(50), dense_indices(50, 4, 3, train=False, n_clips=2))
    assert ClipSampler(5, mode="segment", train=False)(50).tolist() == [[5, 15, 25, 35, 45]]
    for bad in [dict(mode="random"), dict(pad_mode="zeros"), dict(num_frames=0), dict(n_clips=0)]:
        with pytest.raises(ValueError):
            ClipSampler(**bad)


def frames_with_marks(t=4, h=240, w=320):
    """uint8 (T, H, W, 3): a bright left half, a gradient along x, the frame number in channel 1."""
    video = torch.zeros((t, h, w, 3), dtype=torch.uint8)
    video[..., 0] = torch.linspace(0, 255, w).to(torch.uint8)
    video[:, :, : w // 2, 2] = 200
    video[..., 1] = (torch.arange(t) * 10).view(t, 1, 1).to(torch.uint8)
    return video


def unnormalise(x):  # (C, T, H, W) -> [0, 1]
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1, 1)
    return x * std + mean


def test_train_transform_shapes_and_one_crop_for_all_frames():
    video = frames_with_marks()
    transform = create_video_transform(train=True, input_size=112)
    torch.manual_seed(0)
    out = transform(video)
    assert out.shape == (3, 4, 112, 112) and out.dtype == torch.float32
    # the same crop in every frame: channels 0 and 2 agree across time, channel 1 holds the frame number
    assert torch.allclose(out[0, 0], out[0, 3]) and torch.allclose(out[2, 0], out[2, 3])
    assert torch.allclose(unnormalise(out)[1, :, 0, 0], torch.arange(4) * 10 / 255, atol=1e-5)


def test_train_transform_scale_range_and_flips():
    video = frames_with_marks(t=2)
    transform = create_video_transform(train=True, input_size=64, short_side=(64, 64), hflip=True)
    blue_left = []
    for seed in range(30):
        torch.manual_seed(seed)
        out = unnormalise(transform(video))
        blue_left.append(bool(out[2, 0, :, 0].mean() > 0.5))  # short side 64 = whole height: blue half visible
    assert 0 < sum(blue_left) < 30  # flipped sometimes
    no_flip = create_video_transform(train=True, input_size=64, short_side=(64, 64), hflip=False)
    for seed in range(10):
        torch.manual_seed(seed)
        out = unnormalise(no_flip(video))
        assert torch.all(out[0, 0, 0, 1:] >= out[0, 0, 0, :-1] - 1e-6)  # the x gradient keeps its direction


def test_test_transform_resizes_and_centre_crops_exactly():
    video = frames_with_marks(t=3, h=256, w=340)
    out = create_video_transform(train=False, input_size=224)(video)  # short side 256: no resize
    expected = video[:, 16:240, 58:282].permute(3, 0, 1, 2).float() / 255
    assert torch.allclose(unnormalise(out), expected, atol=1e-5)


def test_three_crop_covers_the_long_side():
    video = frames_with_marks(t=2, h=128, w=256).permute(0, 3, 1, 2)  # (T, C, H, W)
    crops = ThreeCrop(128)(video)
    assert crops.shape == (3, 2, 3, 128, 128)
    assert torch.equal(crops[0], video[..., :128]) and torch.equal(crops[2], video[..., 128:])
    assert torch.equal(crops[1], video[..., 64:192])
    out = create_video_transform(train=False, input_size=112, n_crops=3)(frames_with_marks(t=2))
    assert out.shape == (3, 3, 2, 112, 112)


def test_transform_argument_checks():
    with pytest.raises(ValueError, match="n_crops"):
        create_video_transform(train=False, n_crops=5)
    with pytest.raises(ValueError, match="testing"):
        create_video_transform(train=True, n_crops=3)
    with pytest.raises(ValueError, match="at least input_size"):
        create_video_transform(train=True, input_size=224, short_side=(200, 300))
    with pytest.raises(ValueError, match=r"\(T, H, W, C\)"):
        create_video_transform(train=False)(torch.zeros((3, 240, 320), dtype=torch.uint8))
    assert not any(isinstance(t, v2.RandomHorizontalFlip) for t in create_video_transform(True, hflip=False).transforms)


def smooth_video(t=2, h=240, w=426):  # (T, C, H, W) uint8 without edges, so sub-pixel shifts change little
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    channels = [torch.sin(6 * x + 2 * y), torch.cos(5 * y - 3 * x), torch.sin(4 * (x + y))]
    frame = (torch.stack(channels) * 100 + 128).round().to(torch.uint8)
    return frame.expand(t, -1, -1, -1).contiguous()


@pytest.mark.parametrize("size", [(240, 426), (480, 854), (426, 240)])
def test_random_short_side_crop_is_a_resize_then_crop_of_the_same_draw(size):
    from torchvision.transforms.v2 import functional as TF

    video = smooth_video(h=size[0], w=size[1])
    step = RandomShortSideCrop(256, 320, 224)
    shorts = set()
    for seed in range(8):
        torch.manual_seed(seed)
        (top, left, box_h, box_w), (short, crop_top, crop_left) = step.get_params(*size)
        torch.manual_seed(seed)
        out = step(video)
        # torchvision's chain with the same draw: the whole frame resized to the short side, then cropped
        full = TF.resize(video, [short], antialias=True)
        expected = TF.crop(full, crop_top, crop_left, 224, 224)
        assert out.shape == expected.shape == (2, 3, 224, 224) and out.dtype == torch.uint8
        assert 256 <= min(full.shape[-2:]) == short <= 320
        assert 0 <= top and top + box_h <= size[0] and 0 <= left and left + box_w <= size[1]
        diff = (out.float() - expected.float()).abs()
        assert diff.mean() < 1.0 and diff.max() <= 4, (seed, diff.mean(), diff.max())  # measured: <= 0.7, <= 3
        shorts.add(short)
    assert len(shorts) > 3  # the scale is drawn, not fixed


def test_random_short_side_crop_at_the_frame_size_is_an_exact_crop():
    video = smooth_video(h=64, w=100)
    step = RandomShortSideCrop(64, 64, 64)
    for seed in range(5):
        torch.manual_seed(seed)
        (top, left, box_h, box_w), (short, crop_top, crop_left) = step.get_params(64, 100)
        torch.manual_seed(seed)
        assert (box_h, box_w, top, left) == (64, 64, crop_top, crop_left) and short == 64
        assert torch.equal(step(video), video[..., :, left:left + 64])
    with pytest.raises(ValueError, match="size <= low <= high"):
        RandomShortSideCrop(200, 300, 224)


def test_normalize_to_cthw_equals_torchvision_chain():
    from torchvision import tv_tensors

    video = tv_tensors.Video(torch.randint(0, 256, (4, 3, 20, 30), dtype=torch.uint8))
    mean, std = (0.43, 0.4, 0.38), (0.23, 0.22, 0.21)
    expected = ToCTHW()(v2.Normalize(list(mean), list(std))(v2.ToDtype(torch.float32, scale=True)(video)))
    out = NormalizeToCTHW(mean, std)(video)
    assert out.shape == (3, 4, 20, 30) and out.is_contiguous() and type(out) is torch.Tensor
    assert torch.allclose(out, expected, atol=1e-5, rtol=0)
    crops = NormalizeToCTHW(mean, std)(torch.stack([video, video]))  # three-crop layout (n, T, C, H, W)
    assert crops.shape == (2, 3, 4, 20, 30) and torch.allclose(crops[1], expected, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="uint8"):
        NormalizeToCTHW(mean, std)(video.float())
    with pytest.raises(ValueError, match="std > 0"):
        NormalizeToCTHW(mean, (0.2, 0.0, 0.2))


def test_collate_keeps_the_views_of_a_video_together():
    items = [
        {"video": torch.full((6, 3, 4, 8, 8), float(b)), "label": b, "index": 10 + b, "path": f"v{b}.mp4"}
        for b in range(3)
    ]
    batch = video_collate(items)
    assert batch["video"].shape == (18, 3, 4, 8, 8) and batch["num_views"] == 6
    assert batch["label"].tolist() == [0, 1, 2] and batch["index"].tolist() == [10, 11, 12]
    assert batch["path"] == ["v0.mp4", "v1.mp4", "v2.mp4"]
    assert batch["video"][6:12].eq(1).all()  # rows of video 1
    scores = batch["video"].flatten(1)[:, :5]  # (18, 5): each view's score is its video's number
    assert torch.equal(average_views(scores, 6), torch.arange(3.0).view(3, 1).expand(3, 5))
    single = video_collate([{"video": torch.zeros(3, 4, 8, 8), "label": 0, "index": 0, "path": "a"}] * 2)
    assert single["video"].shape == (2, 3, 4, 8, 8) and single["num_views"] == 1
    with pytest.raises(ValueError, match="groups of 4"):
        average_views(torch.zeros(6, 2), 4)
