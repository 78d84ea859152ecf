"""Nothing lost: `recon fit` saves its state as it goes, and --resume continues the same numbers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

STEPS = 60


def _recon(*args, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "reconstruction.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=600, env=env, **kw)


def _history(folder: Path) -> list[list[float]]:
    return json.loads((folder / "history.json").read_text())["loss"]


@pytest.fixture(scope="module")
def uninterrupted(demo_small, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("resume") / "full"
    proc = _recon("fit", demo_small, "--method", "nerf", "--steps", STEPS, "--out", out,
                  "--checkpoint-every", "0", "--quiet")
    assert proc.returncode == 0, proc.stderr
    return out


def test_a_killed_fit_resumes_where_it_was_saved_with_the_same_losses(demo_small, uninterrupted,
                                                                      tmp_path):
    import torch

    out = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "reconstruction.cli", "fit", str(demo_small),
                             "--method", "nerf", "--steps", str(STEPS), "--out", str(out),
                             "--checkpoint-every", "0.5", "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    ck = out / "checkpoint.pt"
    deadline = time.monotonic() + 300
    while not ck.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # mid-step, after the first save
    assert proc.poll() is None, "the fit ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert not (out / "metrics.json").exists()  # it really died before the end
    saved = torch.load(ck, weights_only=True)
    saved_step = int(saved["state"]["step"])
    assert 0 < saved_step < STEPS
    run = json.loads((out / "run.json").read_text())
    assert run["method"] == "nerf" and run["steps"] == STEPS

    resumed = _recon("fit", "--resume", out, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout.strip().splitlines()[-1])["steps"] == STEPS
    full, again = _history(uninterrupted), _history(out)
    assert [s for s, _ in again] == list(range(1, STEPS + 1))  # the curve continues, no gap
    # the same seed: the same numbers, before the kill and after the resume
    assert again == full, next((a, b) for a, b in zip(again, full, strict=True) if a != b)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == STEPS and metrics["steps_this_run"] == STEPS - saved_step


def test_a_project_folder_holds_the_run_and_resumes_to_a_new_target(demo_small, tmp_path):
    project = tmp_path / "chair.recon"
    proc = _recon("fit", demo_small, "--method", "nerf", "--steps", "5", "--out", project, "--quiet")
    assert proc.returncode == 0, proc.stderr
    data = json.loads((project / "project.json").read_text())
    assert data["format"] == "reconstudio-project" and data["method"] == "nerf"
    assert Path(data["capture"]) == Path(demo_small).resolve()
    assert (project / "run" / "mesh.ply").is_file() and (project / "run" / "checkpoint.pt").is_file()
    proc = _recon("fit", "--resume", project, "--steps", "9", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert [s for s, _ in _history(project / "run")] == list(range(1, 10))
    assert json.loads((project / "run" / "metrics.json").read_text())["steps"] == 9


def test_resume_refuses_what_it_cannot_continue(demo_small, tmp_path):
    proc = _recon("fit", "--resume", tmp_path / "nothing")
    assert proc.returncode == 2 and "no such folder" in proc.stderr
    (tmp_path / "empty").mkdir()
    proc = _recon("fit", "--resume", tmp_path / "empty")
    assert proc.returncode == 2 and "run.json" in proc.stderr
    bad = tmp_path / "bad.recon"
    bad.mkdir()
    (bad / "project.json").write_text(json.dumps({
        "format": "reconstudio-project", "version": 1, "capture": str(demo_small),
        "method": "nerf", "settings": {}, "edits": [], "run": "../../elsewhere"}))
    proc = _recon("fit", "--resume", bad)
    assert proc.returncode == 2 and "leaves the project" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = _recon("fit", "--quiet")
    assert proc.returncode == 2 and "needs DATA and --out" in proc.stderr
