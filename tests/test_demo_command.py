"""`recon demo`: the window when there is a display and a terminal, headless otherwise.

Training and the window are replaced by stand-ins: what is checked is which one runs.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from reconstruction import cli


@pytest.fixture
def demo_env(tmp_path, monkeypatch):
    """A demo folder whose capture exists, with subprocesses and training recorded."""
    capture = tmp_path / "demo" / "capture"
    capture.mkdir(parents=True)
    (capture / "transforms_train.json").write_text("{}")
    calls: list[list[str]] = []
    fits: list[str] = []

    def fake_run(cmd, check=False, **_kw):
        calls.append([str(c) for c in cmd])
        if "app.main" in cmd:  # the window writes the result
            out = cmd[cmd.index("--out") + 1]
            (tmp_path / "demo" / "result").mkdir(exist_ok=True)
            (tmp_path / "demo" / "result" / "metrics.json").write_text(
                json.dumps({"steps": 7, "seconds": 1.5}))
            assert out == str(tmp_path / "demo" / "result")
        return subprocess.CompletedProcess(cmd, 0)

    def fake_fit(data, method, out, **_kw):
        fits.append(out)
        return {"steps": 3, "seconds": 0.5}

    monkeypatch.setattr(cli.subprocess, "run", fake_run)
    monkeypatch.setattr(cli, "run_fit", fake_fit)
    return tmp_path / "demo", calls, fits


def test_demo_with_show_trains_in_the_window(demo_env, capsys):
    out, calls, fits = demo_env
    assert cli.main(["demo", "--out", str(out), "--show", "--budget", "12"]) == 0
    assert fits == []  # no headless fit
    (window,) = calls
    assert window[:3] == [sys.executable, "-m", "app.main"]
    assert window[3] == str(out / "capture")
    assert window[4:] == ["--method", "sdf", "--start", "--budget", "12.0",
                          "--out", str(out / "result")]
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line == {"out": str(out), "steps": 7, "seconds": 1.5}


def test_demo_without_show_stays_headless(demo_env, capsys):
    out, calls, fits = demo_env
    assert cli.main(["demo", "--out", str(out), "--no-show"]) == 0
    assert fits == [str(out / "result")]
    assert all("app.main" not in c for c in calls)
    assert any("render.preview" in c for c in calls)  # preview.png as before
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line == {"out": str(out), "steps": 3, "seconds": 0.5}


def test_demo_without_a_display_is_headless_by_default(demo_env, monkeypatch):
    out, calls, fits = demo_env
    monkeypatch.delenv("DISPLAY", raising=False)
    assert cli.main(["demo", "--out", str(out)]) == 0
    assert fits and all("app.main" not in c for c in calls)
