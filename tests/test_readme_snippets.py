"""Every fenced Python and shell block of README.md runs as pasted (offline, on data the test makes).

- Python blocks run as they are, each in a fresh interpreter, in a temporary folder holding a copy of
  ``recipes/`` (``HF_HUB_OFFLINE=1``, ``ZOO_HOME`` and ``TORCH_HOME`` temporary).
- Shell blocks run line by line in the same folder. ``/data/my_videos`` is a small generated folder dataset
  in the README's split layout and ``/data/new/clip.mp4`` a generated video. Training lines get overrides
  that shorten them (one epoch of two steps, tiny clips); every other word of the line runs as written.
- The first block is the two fresh-machine commands: ``.ci/run`` runs them (``tests/test_readme.py``
  checks that), so here they are only checked to be those commands.
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from zoo.data import write_video

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
BLOCKS = [(m.group(1), m.group(2)) for m in re.finditer(r"```(python|bash|sh)\n(.*?)```", README, re.S)]
PYTHON = [code for lang, code in BLOCKS if lang == "python"]
SHELL = [code for lang, code in BLOCKS[1:] if lang in ("bash", "sh")]
ZOO = str(Path(sys.executable).with_name("zoo"))
SHORT = [  # a run of one epoch of two steps on tiny clips, one clip of evaluation
    "max_epochs=1", "max_steps_per_epoch=2", "progress=false", "data.num_workers=0", "data.batch_size=2",
    "data.num_frames=12", "data.frame_stride=1", "data.input_size=32", "data.train_short_side=[32, 36]",
    "data.test_short_side=32", "eval.n_clips=1", "eval.n_crops=1", "eval.knn=[]", "eval.batch_size=2",
]
QUICKSTART_DATA = ["data.options.videos_per_class=2", "data.options.eval_videos_per_class=1",
                   "data.options.progress=false"]


def _video(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    write_video(path, torch.randint(0, 256, (16, 40, 48, 3), dtype=torch.uint8, generator=g), fps=10)


def _place_torchvision_weights(torch_home: Path) -> None:
    """The torchvision files of the tags the README uses, with random weights, where torch.hub caches them."""
    from torchvision.models import video as tv

    import zoo

    for arch in sorted(set(re.findall(r"\b(\w+)\.tv_k400\b", README))):
        url = zoo.get_pretrained_cfg(f"{arch}.tv_k400").url
        path = torch_home / "hub" / "checkpoints" / url.rsplit("/", 1)[-1]
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(getattr(tv, arch)().state_dict(), path)
    pv_tags = sorted(set(re.findall(r"\b(\w+)\.pv_k400\b", README)))
    if pv_tags:  # pytorchvideo's files: its builders' random weights under "model_state" (the test extra)
        from pytorchvideo.models import hub

        for arch in pv_tags:
            url = zoo.get_pretrained_cfg(f"{arch}.pv_k400").url
            path = torch_home / "hub" / "checkpoints" / url.rsplit("/", 1)[-1]
            path.parent.mkdir(parents=True, exist_ok=True)
            kwargs = {"head_activation": None} if arch.startswith(("x3d", "r2plus1d")) else {}
            torch.save({"model_state": getattr(hub, arch)(pretrained=False, **kwargs).state_dict()}, path)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    work = tmp_path_factory.mktemp("readme")
    shutil.copytree(ROOT / "recipes", work / "recipes")
    data = work / "my_videos"
    for split, n in (("train", 2), ("val", 1)):
        for c, label in enumerate(("bikes", "cars")):
            for i in range(n):
                _video(data / split / label / f"{label}_{i}.mp4", seed=10 * c + i)
    _video(work / "new" / "clip.mp4", seed=99)
    _place_torchvision_weights(work / "torch")
    env = dict(os.environ, HF_HUB_OFFLINE="1", ZOO_HOME=str(work / "zoo_home"), TORCH_HOME=str(work / "torch"),
               OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return work, env


def test_the_readme_has_snippets_and_starts_with_the_two_commands():
    assert PYTHON and SHELL
    first = BLOCKS[0][1].strip().splitlines()
    assert [line.split("&&")[-1].strip().split()[0:2] for line in first] == [
        [".venv/bin/zoo", "train"], ["HF_HUB_OFFLINE=1", ".venv/bin/python"]]


@pytest.mark.parametrize("index", range(len(PYTHON)))
def test_python_block_runs_as_pasted(index, workdir):
    work, env = workdir
    out = subprocess.run([sys.executable, "-c", PYTHON[index]], cwd=work, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, f"README python block {index}:\n{PYTHON[index]}\n{out.stderr[-3000:]}"


def _shell_lines() -> list[str]:
    lines = []
    for block in SHELL:
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line and not line.startswith("#") and line.split()[0] in ("zoo", "torchrun"):
                lines.append(line)
    return lines


def _as_run(line: str, work: Path) -> list[str]:
    line = line.replace("/data/my_videos", str(work / "my_videos")).replace("/data/new", str(work / "new"))
    words = shlex.split(line)
    if words[0] == "zoo":
        words[0] = ZOO
    if len(words) > 1 and words[1] in ("train", "flow"):
        words += SHORT + (QUICKSTART_DATA if "quickstart" in words[2] else [])
        if words[1] == "train" and not any(w.startswith("output_dir=") for w in words):
            words.append(f"output_dir={work / 'runs' / Path(words[2]).stem}")
    if len(words) > 1 and words[1] == "eval":
        words += ["progress=false", "data.num_workers=0"]
    return words


SHELL_LINES = _shell_lines()


@pytest.mark.parametrize("index", range(len(SHELL_LINES)))
def test_shell_line_runs_on_generated_data(index, workdir):
    work, env = workdir
    line = SHELL_LINES[index]
    if line.split()[0] == "torchrun":
        pytest.skip("multi-process runs are tested by tests/test_train_distributed.py")
    if "/data/k400" in line or "/shards/" in line:
        pytest.skip("needs a Kinetics-400 folder; packing and reading shards is tested on generated data elsewhere")
    out = subprocess.run(_as_run(line, work), cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, f"README line {line!r}:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
