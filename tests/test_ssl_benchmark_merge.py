"""benchmarks/ssl_moving_digits.py --merge-from: seeds run apart joined into one results file."""
import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def bench(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("ssl_moving_digits_under_test",
                                                  ROOT / "benchmarks" / "ssl_moving_digits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    common = sys.modules["_common"]
    monkeypatch.setattr(module, "RESULTS_DIR", tmp_path)
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path)
    return module


def _run(seed: int, probe: float, knn: float) -> dict:
    return {"seed": seed, "probe_test_top1": probe, "knn_top1@5": knn, "probe_train_top1": 100.0,
            "probe_test_se": 1.5, "knn_se": 1.5, "test_videos": 512, "train_wall_time_s": 60.0 + seed}


def _write(directory: Path, name: str, seed: int, probe: float, random_probe: float, **settings) -> None:
    payload = {"benchmark": "b", "env": {"git_revision": f"rev{seed}"}, "status": "done",
               "settings": {"steps": 960, "seeds": [seed], "threads": 1, "queue_size": 256, **settings},
               "results": {"random": {"runs": [_run(seed, random_probe, 13.0)]},
                           "mcl": {"runs": [_run(seed, probe, 15.0)]}}}
    (directory / f"{name}.json").write_text(json.dumps(payload))


def test_merge_joins_seeds_and_recomputes_the_comparison(bench, tmp_path):
    _write(tmp_path, "s0", 0, 21.0, 13.0)  # written before mscl_loss_weights was a setting: it had the default
    _write(tmp_path, "s1", 1, 23.0, 14.0, mscl_loss_weights="official (every term 1)")
    _write(tmp_path, "s2", 2, 19.0, 12.0, mscl_loss_weights="official (every term 1)")
    out = bench.merge(["s1", "s0", "s2"], "all")
    on_disk = json.loads((tmp_path / "all.json").read_text())
    assert on_disk["settings"]["seeds"] == [0, 1, 2]
    assert [r["seed"] for r in on_disk["results"]["mcl"]["runs"]] == [0, 1, 2]
    probe = on_disk["results"]["mcl"]["summary"]["probe_test_top1"]
    assert probe["mean"] == pytest.approx(21.0)
    assert probe["se"] == pytest.approx(2.0 / math.sqrt(3), abs=0.01)  # std of 21, 23, 19 is 2
    cmp = on_disk["comparison"]["mcl"]["probe_test_top1"]
    assert cmp["difference"] == pytest.approx(8.0)
    random_se = on_disk["results"]["random"]["summary"]["probe_test_top1"]["se"]
    assert cmp["two_se"] == pytest.approx(2 * math.sqrt(probe["se"] ** 2 + random_se ** 2), abs=0.01)
    assert [m["name"] for m in out["merged_from"]] == ["s1", "s0", "s2"]
    assert out["merged_from"][0]["env"] == {"git_revision": "rev1"}


def test_merge_refuses_other_settings_duplicates_and_unfinished_files(bench, tmp_path):
    _write(tmp_path, "a", 0, 21.0, 13.0)
    _write(tmp_path, "b", 1, 23.0, 14.0, queue_size=512)
    with pytest.raises(SystemExit, match="queue_size"):
        bench.merge(["a", "b"], "out")
    _write(tmp_path, "w", 1, 23.0, 14.0, mscl_loss_weights={"cross": 0.0})
    with pytest.raises(SystemExit, match="mscl_loss_weights"):
        bench.merge(["a", "w"], "out")
    _write(tmp_path, "c", 0, 22.0, 13.0)
    with pytest.raises(SystemExit, match="seed 0 is in more than one file"):
        bench.merge(["a", "c"], "out")
    data = json.loads((tmp_path / "c.json").read_text())
    (tmp_path / "d.json").write_text(json.dumps({**data, "status": "running", "settings": {**data["settings"],
                                                                                            "seeds": [3]}}))
    with pytest.raises(SystemExit, match="not done"):
        bench.merge(["a", "d"], "out")
    with pytest.raises(SystemExit, match="no results file"):
        bench.merge(["a", "missing"], "out")
    assert not (tmp_path / "out.json").exists()
