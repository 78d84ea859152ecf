"""Training from the window, for real: the engine process, live snapshots, errors, export.

The window tests need a display (run under xvfb-run). They train the signed-distance method
(its first snapshot is already a closed surface, so a mesh shows at once) on a 32 px demo
capture with a small hash grid for a few steps. The autouse ``no_leftovers`` fixture (from
test_app_window) fails a test that leaves the engine, a subprocess or a thread running;
every test here closes its window itself, which closes the engine.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_app_window import (  # noqa: F401  (no_leftovers: autouse; result_dir: a fixture)
    METRICS,
    _background_rgb,
    _drag_events,
    needs_display,
    no_leftovers,
    result_dir,
    write_sphere,
)

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "tests" / "artifacts"
TINY = {
    "preview_resolution": 24,
    "mesh_resolution": 32,
    "n_levels": 4,
    "log2_hashmap_size": 12,
    "finest_resolution": 64,
}
"""sdf settings that keep a step and a snapshot well under a second on two cores."""


@pytest.fixture(scope="module")
def tiny_capture(tmp_path_factory) -> Path:
    from render.demo_capture import make_demo_capture

    out = tmp_path_factory.mktemp("tiny") / "capture"
    make_demo_capture(out, size=32, n_train=8, n_val=1, n_test=1, seed=0)
    return out


@pytest.fixture
def capture(tiny_capture, tmp_path) -> Path:
    """The tiny capture copied into the test's folder (results are written beside it)."""
    dest = tmp_path / "capture"
    shutil.copytree(tiny_capture, dest)
    return dest


@pytest.fixture
def settings_file(tmp_path) -> Path:
    return tmp_path / "settings.ini"


@pytest.fixture
def twindow(qtbot, settings_file):
    from PySide6.QtCore import QSettings

    from app.window import MainWindow

    w = MainWindow(settings=QSettings(str(settings_file), QSettings.Format.IniFormat))
    w.resize(1280, 800)
    w.show()
    qtbot.waitExposed(w)
    return w


def _open_capture(qtbot, window, path: Path) -> None:
    assert window.open_path(path)
    if window.methods is None:
        with qtbot.waitSignal(window.methods_loaded, timeout=60_000):
            pass
    assert window.method_panel.start_button.isEnabled()


def _close(window) -> None:
    window.close()
    assert window.engine is None


def _save_artifact(window, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return window.save_window_screenshot(ARTIFACTS / name)


# -- the window --------------------------------------------------------------------------------


@needs_display
@pytest.mark.timeout(90)
def test_dropping_a_capture_folder_shows_its_frustums_and_enables_start(qtbot, twindow, capture):
    from PySide6.QtWidgets import QApplication

    window = twindow
    assert not window.method_panel.start_button.isEnabled()  # nothing to train yet
    _mime, enter, drop = _drag_events(capture)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    QApplication.sendEvent(window, drop)
    qtbot.waitUntil(lambda: window.cameras_actor is not None, timeout=10_000)
    assert window.model.source.kind == "capture"
    assert window.cameras_actor.mapper.dataset.n_points == 8 * 8  # 8 frustums of 8 points
    assert window.cameras_actor.GetVisibility()
    if window.methods is None:
        with qtbot.waitSignal(window.methods_loaded, timeout=60_000):
            pass
    panel = window.method_panel
    assert {"nerf", "sdf"} <= set(window.methods)
    assert panel.start_button.isEnabled() and not panel.pause_button.isEnabled()
    assert not panel.resume_button.isEnabled() and not panel.stop_button.isEnabled()
    # the form is the config: one editor per field, its docstring as tooltip
    method = panel.method
    assert set(panel.settings_form.editors) == {f.name for f in method.fields}
    lr = method.field("lr")
    assert lr.doc and lr.doc in panel.settings_form.editors["lr"].toolTip()
    assert str(capture) in window.recent_captures()
    _close(window)


@needs_display
@pytest.mark.timeout(240)
def test_training_shows_a_live_mesh_that_changes_pauses_resumes_and_loads_the_result(
    qtbot, twindow, capture, settings_file
):
    from PySide6.QtCore import QSettings

    from app.window import MainWindow
    from reconstruction import protocol as P

    window = twindow
    _open_capture(qtbot, window, capture)
    seen: list[tuple[int, int, tuple]] = []  # (step, n_points, bounds) per drawn mesh

    def on_snapshot(kind, step):
        if kind == "mesh":
            mesh = window.live_mesh
            seen.append((step, mesh.n_points, tuple(np.round(mesh.bounds, 5))))

    window.snapshot_shown.connect(on_snapshot)
    progress: list[int] = []
    real_handle = window.training.handle

    def counting_handle(ev):
        if isinstance(ev, P.Progress):
            progress.append(ev.step)
        return real_handle(ev)

    window.training.handle = counting_handle
    assert window.start_training("sdf", steps=100_000, settings=TINY)
    panel = window.method_panel
    assert not panel.start_button.isEnabled() and panel.stop_button.isEnabled()

    # a mesh actor appears ...
    qtbot.waitUntil(lambda: window.live_mesh_actor is not None, timeout=90_000)
    actor, data = window.live_mesh_actor, window.live_mesh
    assert actor.mapper.dataset is data and data.n_cells > 0
    # ... and then changes, in place (same actor, same PolyData)
    qtbot.waitUntil(
        lambda: len({(n, b) for _, n, b in seen}) >= 2, timeout=90_000
    )
    assert window.live_mesh_actor is actor and actor.mapper.dataset is data
    assert window.training.state == "training"
    assert window.training_panel.progress_bar.value() >= 0
    assert "step" in window.training_panel.progress_label.text()
    assert "ETA" in window.training_panel.progress_label.text()
    assert window.training.history, "no loss/PSNR history for the plot"
    assert any("capture" in text for _, text in window.training.log)  # the engine's log
    shot = _save_artifact(window, "training_live.png")
    viewport = window.viewport.screenshot(return_img=True)
    h, w = viewport.shape[:2]
    centre = viewport[h // 2 - 20 : h // 2 + 20, w // 2 - 20 : w // 2 + 20, :3].astype(int)
    assert (np.abs(centre - np.array(_background_rgb())).max(axis=-1) > 30).mean() > 0.5
    assert shot.stat().st_size > 0

    # Pause: Progress stops (after what was already on its way) ...
    panel.pause_button.click()
    assert window.training.state == "paused"
    assert panel.resume_button.isEnabled() and not panel.pause_button.isEnabled()
    for _ in range(10):  # a step (and a snapshot) already under way still reports
        count = len(progress)
        qtbot.wait(2500)
        if len(progress) == count:
            break
    count = len(progress)
    qtbot.wait(3000)
    assert len(progress) == count, "Progress events kept coming while paused"
    # ... Resume continues it
    paused_at = window.training.last_step
    panel.resume_button.click()
    assert window.training.state in ("training", "starting")
    qtbot.waitUntil(lambda: window.training.last_step > paused_at, timeout=60_000)

    # Stop: the result is written and loaded with its metrics
    with qtbot.waitSignal(window.training_finished, timeout=120_000) as finished:
        panel.stop_button.click()
    out = Path(finished.args[0])
    assert (out / "mesh.ply").is_file() and (out / "metrics.json").is_file()
    assert out.parent == capture.parent  # beside the capture
    qtbot.waitUntil(lambda: window.mesh_actor is not None, timeout=30_000)
    rows = set(window.result_rows())
    assert ("Metrics", "method", "sdf") in rows
    assert window.live_mesh_actor is None  # the final mesh replaced the live one
    assert panel.start_button.isEnabled() and window.export_action.isEnabled()
    _close(window)

    # the next window remembers the method, its settings and the capture
    again = MainWindow(settings=QSettings(str(settings_file), QSettings.Format.IniFormat))
    qtbot.addWidget(again)
    assert again.methods is not None  # the catalogue is read once per app
    assert again.method_panel.method.name == "sdf"
    assert again.method_panel.changed_settings() == TINY
    assert again.recent_captures()[0] == str(capture)
    again.close()


@needs_display
@pytest.mark.timeout(240)
def test_killing_the_engine_shows_the_error_and_restart_resumes_from_the_checkpoint(
    qtbot, twindow, capture
):
    window = twindow
    window.checkpoint_every = 1.0
    _open_capture(qtbot, window, capture)
    assert window.start_training("sdf", steps=100_000, settings=TINY)
    out = Path(window.training.request.out)
    qtbot.waitUntil(lambda: (out / "checkpoint.pt").is_file(), timeout=120_000)
    pid = window.engine.pid
    with qtbot.waitSignal(window.training_failed, timeout=30_000) as failed:
        os.kill(pid, signal.SIGKILL)
    assert "killed" in failed.args[0]
    assert window.training.state == "died"
    assert "killed" in window.status_label.text() and "Restart" in window.status_label.text()
    assert any("killed" in text for level, text in window.training.log if level == "error")
    assert window.restart_action.isEnabled() and window.method_panel.restart_button.isVisible()
    assert not window.method_panel.stop_button.isEnabled()
    qtbot.wait(200)  # the window keeps running its event loop
    assert window.isVisible()
    _save_artifact(window, "engine_killed.png")

    window.restart_action.trigger()
    assert window.engine is not None and window.engine.pid != pid
    assert window.training.request.resume == str(out / "checkpoint.pt")
    qtbot.waitUntil(
        lambda: any("resumed from step" in text for _, text in window.training.log),
        timeout=120_000,
    )
    qtbot.waitUntil(lambda: window.training.state == "training", timeout=60_000)
    _close(window)


@needs_display
@pytest.mark.timeout(120)
def test_bad_capture_shows_the_message_and_hint(qtbot, twindow, capture):
    window = twindow
    _open_capture(qtbot, window, capture)
    (capture / "transforms_train.json").write_text("{broken")
    with qtbot.waitSignal(window.training_failed, timeout=90_000) as failed:
        assert window.start_training("sdf", steps=5, settings=TINY)
    assert "transforms_train.json" in failed.args[0]
    assert window.training.state == "failed"
    assert "transforms_train.json" in window.last_error
    assert window.method_panel.start_button.isEnabled()  # fix the file and try again
    assert window.engine.is_alive()  # the engine waits for the next Start
    _close(window)


@needs_display
@pytest.mark.timeout(120)
def test_export_writes_a_file_trimesh_opens(qtbot, twindow, result_dir, tmp_path):  # noqa: F811
    import trimesh

    from app.panels import ExportDialog

    window = twindow
    with qtbot.waitSignal(window.mesh_shown, timeout=30_000):
        window.open_path(result_dir)
    assert window.export_action.isEnabled()

    dialog = ExportDialog(result_dir, window)
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("glb"))
    dialog.faces_spin.setValue(300)
    assert dialog.path == result_dir / "mesh_300.glb"  # never over the full mesh.ply
    target = tmp_path / "exported" / "sphere.glb"
    dialog.path_edit.setText(str(target))
    dialog.close()

    target.parent.mkdir()
    with qtbot.waitSignal(window.export_finished, timeout=60_000) as done:
        assert window.export_mesh(result_dir, dialog.path, dialog.fmt, dialog.faces)
    assert Path(done.args[0]) == target
    mesh = trimesh.load(target, force="mesh", process=False)
    assert 0 < len(mesh.faces) <= 300
    assert "Exported" in window.status_label.text()

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with qtbot.waitSignal(window.export_failed, timeout=60_000) as failed:
        window.export_mesh(result_dir, blocker / "mesh.ply", "ply", None)
    assert "cannot be written" in failed.args[0]
    _close(window)


@needs_display
@pytest.mark.timeout(90)
def test_save_screenshot_writes_the_viewport(qtbot, twindow, result_dir, tmp_path):  # noqa: F811
    from PIL import Image

    window = twindow
    with qtbot.waitSignal(window.mesh_shown, timeout=30_000):
        window.open_path(result_dir)
    path = window.save_screenshot(tmp_path / "view")
    assert path.suffix == ".png"
    w, h = Image.open(path).size
    assert (w, h) == (window.viewport.width(), window.viewport.height())
    _close(window)


# -- scripted mode, in its own process ------------------------------------------------------


@needs_display
@pytest.mark.timeout(180)
def test_scripted_start_screenshot_quit_and_no_torch_in_the_window(tmp_path, capture):
    from PIL import Image

    shot = tmp_path / "window.png"
    sets = [a for k, v in TINY.items() for a in ("--set", f"{k}={v}")]
    argv = [str(capture), "--method", "sdf", "--start", "--steps", "100000", *sets,
            "--screenshot", str(shot), "--after", "6", "--quit"]
    code = (
        "import sys, multiprocessing as mp\n"
        "from app.main import main\n"
        f"rc = main({argv!r})\n"
        "print(json.dumps({'rc': rc, 'torch': 'torch' in sys.modules,"
        " 'children': len(mp.active_children())}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", "import json\n" + code], cwd=REPO, capture_output=True,
        text=True, timeout=170, env={**os.environ, "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"rc": 0, "torch": False, "children": 0}, done.stderr
    assert shot.is_file()
    w, h = Image.open(shot).size
    assert w >= 800 and h >= 600  # the whole window, not just the viewport
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(shot, ARTIFACTS / "scripted_window.png")


# -- without a display ---------------------------------------------------------------------------


def test_training_model_follows_events_and_keeps_the_newest_snapshot():
    from app.training import RunRequest, TrainingModel
    from reconstruction import protocol as P

    m = TrainingModel()
    m.start(RunRequest(data="cap", method="sdf", out="out", steps=100))
    assert m.state == "starting" and m.active
    m.handle(P.Progress(10, 100, 5.0, {"loss": 0.1, "psnr": 20.0}))
    assert m.state == "training"
    assert m.fraction() == pytest.approx(0.1)
    assert m.eta() == pytest.approx(45.0)
    assert "step 10/100" in m.progress_text() and "ETA 0:45" in m.progress_text()
    m.handle(P.SnapshotEvent("mesh", {"n": 1}, 10))
    m.handle(P.SnapshotEvent("mesh", {"n": 2}, 12))
    m.handle(P.SnapshotEvent("points", {"n": 3}, 12))
    snaps = m.take_snapshots()
    assert [(s.kind, s.payload["n"]) for s in snaps] == [("mesh", 2), ("points", 3)]
    assert m.take_snapshots() == []
    m.pause()
    assert m.state == "paused"
    m.resume()
    assert m.state == "training"
    budget = TrainingModel()
    budget.start(RunRequest(data="cap", method="sdf", out="out", budget=60.0))
    budget.handle(P.Progress(5, None, 15.0, {}, 60.0))
    assert budget.eta() == pytest.approx(45.0) and budget.fraction() == pytest.approx(0.25)
    m.handle(P.Error("capture", "no images", "add images"))
    assert m.state == "failed" and "no images" in m.log[-1][1]
    assert m.died(-9).startswith("The engine process was killed")


def test_catalog_and_changed_settings():
    from app.training import default_output, parse_catalog

    text = json.dumps({"methods": [{"name": "m", "doc": "d", "fields": [
        {"name": "lr", "type": "float", "default": 0.01, "doc": "rate"},
        {"name": "tiny", "type": "float", "default": 1e-15, "doc": "eps"},
        {"name": "on", "type": "bool", "default": True, "doc": ""},
    ]}]})
    method = parse_catalog(text)["m"]
    assert method.field("tiny").parse(method.field("tiny").format(1e-15)) == 1e-15
    assert method.changed({"lr": 0.01, "tiny": 1e-15, "on": False}) == {"on": False}
    with pytest.raises(ValueError):
        parse_catalog("{}")
    with pytest.raises(ValueError):
        method.field("lr").parse("fast")
    assert default_output(Path("/nonexistent/cap"), "sdf") == Path("/nonexistent/cap_sdf")


class _FakeEngine:
    """Stands in for EngineProcess: a burst of mesh snapshots on every poll."""

    pid = 0
    exitcode = None

    def __init__(self, per_poll: int = 20):
        self.per_poll = per_poll
        self.sent: list = []
        self.n = 0

    def is_alive(self) -> bool:
        return True

    def send(self, cmd) -> None:
        self.sent.append(cmd)

    def events(self, timeout: float = 0.0, max_events: int = 1000) -> list:
        import trimesh

        from reconstruction import protocol as P

        assert timeout == 0, "the window must never wait for the engine"
        out = []
        for _ in range(self.per_poll):
            self.n += 1
            sphere = trimesh.creation.icosphere(subdivisions=1 + self.n % 3, radius=1.0)
            out.append(P.SnapshotEvent("mesh", {
                "vertices": sphere.vertices.astype(np.float32),
                "faces": sphere.faces.astype(np.int64),
                "colors": np.full((len(sphere.vertices), 3), 0.5, np.float32)}, self.n))
            out.append(P.Progress(self.n, 10_000, 0.01 * self.n, {"loss": 0.1, "psnr": 20.0}))
        return out

    def close(self, timeout: float = 10.0) -> None:
        pass


@needs_display
@pytest.mark.timeout(60)
def test_snapshots_are_throttled_and_only_the_newest_is_drawn(qtbot, twindow):
    import time

    from app.training import RunRequest

    window = twindow
    fake = _FakeEngine()
    window.engine = fake
    window.training.start(RunRequest(data="cap", method="sdf", out="out", steps=10_000))
    drawn: list[tuple[float, int]] = []
    window.snapshot_shown.connect(lambda kind, step: drawn.append((time.monotonic(), step)))
    window.poll_timer.start()
    qtbot.wait(2000)
    window.poll_timer.stop()
    assert 5 <= len(drawn) <= 12, drawn  # ~5 redraws a second for 2 s, not 60 polls' worth
    gaps = np.diff([t for t, _ in drawn])
    # (emitted after each draw, whose own length varies: the throttle acts before it)
    assert gaps.min() >= 0.75 * window.redraw_interval
    # each redraw showed the newest snapshot of its poll, replacing the data in place
    actor, data = window.live_mesh_actor, window.live_mesh
    assert actor is not None and actor.mapper.dataset is data
    last_step = drawn[-1][1]
    assert all(step % fake.per_poll == 0 for _, step in drawn), drawn
    expected = 1 + last_step % 3
    assert data.n_cells == 20 * 4**expected
    window.engine = None  # nothing to close
    _close(window)


@needs_display
@pytest.mark.timeout(90)
def test_start_sends_the_capture_the_changed_settings_and_the_limit(qtbot, twindow, capture):
    from reconstruction import protocol as P

    window = twindow
    _open_capture(qtbot, window, capture)
    fake = _FakeEngine(per_poll=0)
    window.engine = fake
    panel = window.method_panel
    panel.method_combo.setCurrentText("nerf")
    panel.settings_form.set_value("lr", 0.005)
    panel.settings_form.set_value("random_background", False)
    panel.set_limit(budget=42)
    assert window.start_training()
    start = fake.sent[-1]
    assert isinstance(start, P.Start)
    assert start.data == str(capture) and start.method == "nerf"
    assert start.settings == {"lr": 0.005, "random_background": False}
    assert start.budget == 42.0 and start.steps is None
    assert start.snapshot_every == pytest.approx(1.0)
    assert Path(start.out) == capture.parent / "capture_nerf"
    states = {"start": panel.start_button, "pause": panel.pause_button,
              "resume": panel.resume_button, "stop": panel.stop_button}

    def enabled():
        return {k for k, b in states.items() if b.isEnabled()}

    assert enabled() == {"pause", "stop"}
    panel.pause_button.click()
    assert isinstance(fake.sent[-1], P.Pause) and enabled() == {"resume", "stop"}
    panel.resume_button.click()
    assert isinstance(fake.sent[-1], P.Resume) and enabled() == {"pause", "stop"}
    panel.stop_button.click()
    assert isinstance(fake.sent[-1], P.Stop) and enabled() == set()
    window.training.handle(P.Finished({}, {"steps": 3}))
    window._refresh_training()
    assert enabled() == {"start"}
    # a setting that does not parse is a message, not a Start
    panel.settings_form.editors["lr"].setText("fast")
    n = len(fake.sent)
    assert not window.start_training()
    assert "lr" in window.last_error and len(fake.sent) == n
    window.engine = None
    _close(window)
