"""Test-wide settings: never reach the network, never write to the user's cache."""
import os

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"

# Models whose clip size is a constructor argument (MViT's position tables are built for one size, 16 x 224 x 224
# by default): the contract tests build them for their smallest clip, the same architecture at 1/40 of the
# compute. The default size is tested where it matters: torchvision's weight files against torchvision's
# outputs (tests/test_video_transformers.py) and the default cfg's input on the meta device.
def small_clip_kwargs(name: str) -> dict:
    """``create_model`` keyword arguments that build ``name`` for its smallest clip (none for most models)."""
    return {"temporal_size": 4, "spatial_size": (32, 32)} if name in ("mvit_v1_b", "mvit_v2_s") else {}


def conv_outputs_and_grads(conv, x):
    """``(out, d input, d weight[, d bias])`` of ``conv`` at ``x`` against a fixed random output gradient: what
    the tests of the CPU convolution routes (``zoo.layers.weight_grad``, ``zoo.layers.temporal_conv``) compare."""
    import torch

    x = x.clone().requires_grad_(True)
    out = conv(x)
    target = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    params = [conv.weight] + ([conv.bias] if conv.bias is not None else [])
    return (out, *torch.autograd.grad((out * target).sum(), [x, *params]))


def tiny_cpu_recipe(tmp_path, model: str, num_frames: int, **top) -> dict:
    """A one-stage CPU recipe on a 2-class Moving-Digits of 32 px (``top``: further top-level settings)."""
    return {"name": "tiny", "output_dir": str(tmp_path), "device": "cpu", "progress": False, "log_every": 1, **top,
            "model": {"name": model},
            "data": {"kind": "moving_digits", "num_frames": num_frames, "batch_size": 2, "num_workers": 0,
                     "options": {"classes": ["left", "right"], "videos_per_class": 2, "eval_videos_per_class": 1,
                                 "frame_size": 32, "progress": False}},
            "optim": {"lr": 0.01, "base_batch_size": 2},
            "stages": [{"name": "s", "epochs": 1}],
            "eval": {"every": 1, "confusion_matrix": False}}


def train_counting_switched_convs(recipe, monkeypatch) -> tuple[int, list[float]]:
    """Train ``recipe``; how many modules of its stage's objective had a switched ``_conv_forward``, and the
    logged training losses."""
    import json

    from zoo.train import Trainer

    trainer = Trainer(recipe)
    build, seen = trainer._build_stage, {}

    def spy(index):
        stage = build(index)
        seen["count"] = sum("_conv_forward" in m.__dict__ for m in stage.objective.modules())
        return stage

    monkeypatch.setattr(trainer, "_build_stage", spy)
    result = trainer.run()
    rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    return seen["count"], [r["loss"] for r in rows if r.get("kind") == "train"]


@pytest.fixture(autouse=True, scope="session")
def _zoo_home(tmp_path_factory):
    """Point $ZOO_HOME (generated datasets, caches) at a per-session temporary folder."""
    if "ZOO_HOME" not in os.environ or not os.environ.get("ZOO_TEST_KEEP_HOME"):
        os.environ["ZOO_HOME"] = str(tmp_path_factory.mktemp("zoo_home"))
    yield


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a whole test module (``pytestmark = pytest.mark.usefixtures("one_thread")``): on the
    CI machine's shared, oversubscribed cores, OpenMP barriers make 2 threads several times slower than 1."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_collection_modifyitems(config, items):
    """Skip the tests marked ``@pytest.mark.cuda`` when no NVIDIA GPU is visible."""
    cuda_items = [item for item in items if item.get_closest_marker("cuda") is not None]
    if not cuda_items:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU")
    for item in cuda_items:
        item.add_marker(skip)
