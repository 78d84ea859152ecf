"""`recon batch` on a local Ray instance: three tiny captures, one of them broken."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("ray")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def captures(tmp_path_factory) -> Path:
    from render.demo_capture import make_demo_capture

    root = tmp_path_factory.mktemp("batch") / "captures"
    make_demo_capture(root / "cube", size=32, n_train=8, n_val=1, n_test=1, seed=0)
    shutil.copytree(root / "cube", root / "cube_again")
    (root / "broken").mkdir()
    (root / "broken" / "transforms_train.json").write_text("{not json")
    return root


def test_list_jobs(captures, tmp_path):
    from reconstruction.batch import list_jobs

    assert [j.name for j in list_jobs(captures)] == ["broken", "cube", "cube_again"]
    manifest = tmp_path / "list.txt"
    manifest.write_text(f"# two of them\n{captures / 'cube'}\n{captures / 'broken'}\n")
    assert [j.name for j in list_jobs(manifest)] == ["cube", "broken"]
    (tmp_path / "list.json").write_text(json.dumps([{"path": str(captures / "cube"), "name": "x"}]))
    assert [j.name for j in list_jobs(tmp_path / "list.json")] == ["x"]


def test_batch_fails_the_broken_capture_and_resumes(captures, tmp_path, capsys):
    from reconstruction.batch import run_batch
    from reconstruction.cli import main

    out = tmp_path / "out"
    argv = ["batch", str(captures), "--out", str(out), "--num-cpus", "2", "--steps", "10",
            "--set", "mesh_resolution=32", "--set", "target_samples=8192", "--quiet"]
    assert main(argv) == 1  # one capture failed
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (line["done"], line["failed"], line["skipped"]) == (2, 1, 0)
    with open(out / "summary.csv", newline="") as f:
        rows = {r["capture"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"cube", "cube_again", "broken"}
    for name in ("cube", "cube_again"):
        r = rows[name]
        assert r["status"] == "done" and r["message"] == "" and int(r["steps"]) == 10
        assert float(r["seconds"]) > 0 and float(r["test_psnr"]) > 5
        assert (out / name / "mesh.ply").is_file() and r["outputs"].endswith("mesh.ply")
    broken = rows["broken"]
    assert broken["status"] == "failed"
    assert broken["message"].startswith("recon: error:") and "transforms_train.json" in broken["message"]
    assert broken["attempts"] == "1"  # bad input is not retried
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"] == {"done": 2, "failed": 1, "skipped": 0}

    # again: the finished ones are skipped, the broken one fails again
    mtime = (out / "cube" / "mesh.ply").stat().st_mtime
    again = run_batch(str(captures), "nerf", str(out), num_cpus=2, steps=10,
                      settings=["mesh_resolution=32"], quiet=True)
    status = {r["capture"]: r["status"] for r in again["captures"]}
    assert status == {"cube": "skipped", "cube_again": "skipped", "broken": "failed"}
    assert (out / "cube" / "mesh.ply").stat().st_mtime == mtime
    skipped = next(r for r in again["captures"] if r["capture"] == "cube")
    assert skipped["steps"] == 10 and skipped["test_psnr"] > 5


def test_batch_bad_inputs(tmp_path, capsys):
    from reconstruction.cli import main

    assert main(["batch", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 2
    assert "no such folder or manifest" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["batch", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert "no captures in it" in capsys.readouterr().err
