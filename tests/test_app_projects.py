"""Projects in the window: save, reopen with method, settings, edits and view; a killed run
inside a project continues from its last save."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
from test_app_training import (  # noqa: F401  (fixtures)
    TINY,
    _close,
    _open_capture,
    capture,
    settings_file,
    tiny_capture,
    twindow,
)
from test_app_window import needs_display, no_leftovers  # noqa: F401

pytestmark = needs_display


def _new_window(qtbot, settings_file):  # noqa: F811
    from PySide6.QtCore import QSettings

    from app.window import MainWindow

    w = MainWindow(settings=QSettings(str(settings_file), QSettings.Format.IniFormat))
    w.resize(1280, 800)
    w.show()
    qtbot.waitExposed(w)
    return w


def test_a_project_reopens_with_its_result_method_settings_edits_and_view(
        qtbot, twindow, capture, settings_file, tmp_path):  # noqa: F811
    window = twindow
    _open_capture(qtbot, window, capture)
    with qtbot.waitSignal(window.training_finished, timeout=180_000):
        assert window.start_training("sdf", steps=20, settings=TINY)
    qtbot.waitUntil(lambda: window.mesh_actor is not None, timeout=60_000)
    assert window.editor.apply({"op": "cage", "kind": "lattice", "cubes": 2})
    assert window.editor.apply({"op": "scale_cage", "vertices": "all", "factor": 1.5})
    edited = np.asarray(window.mesh_data.points).copy()
    window.viewport.view_yz()
    cam = window.viewport.renderer.GetActiveCamera()
    position = np.array(cam.GetPosition())
    with qtbot.waitSignal(window.projects.saved, timeout=10_000):
        assert window.projects.save_as(tmp_path / "part")
    project = tmp_path / "part.recon"
    data = json.loads((project / "project.json").read_text())
    assert data["method"] == "sdf" and data["steps"] == 20
    assert data["settings"]["log2_hashmap_size"] == 12
    assert [e["op"] for e in data["edits"]] == ["cage", "scale_cage"]
    assert (project / "run" / "mesh.ply").is_file() and (project / "run" / "checkpoint.pt").is_file()
    _close(window)

    again = _new_window(qtbot, settings_file)
    with qtbot.waitSignal(again.projects.restored, timeout=60_000):
        assert again.open_path(project)
    qtbot.waitUntil(lambda: again.mesh_actor is not None, timeout=60_000)
    assert again.method_panel.method.name == "sdf"
    assert again.method_panel.changed_settings()["log2_hashmap_size"] == 12
    assert again.method_panel.limit() == (None, 20)
    assert [op.op for op in again.editor.history] == ["cage", "scale_cage"]
    np.testing.assert_allclose(np.asarray(again.mesh_data.points), edited, atol=1e-6)
    got = np.array(again.viewport.renderer.GetActiveCamera().GetPosition())
    np.testing.assert_allclose(got, position, atol=1e-6)
    # one more edit: autosaved (atomically) two seconds later
    assert again.editor.apply({"op": "move_cage", "vertices": [0], "delta": [0, 0, 0.1]})
    with qtbot.waitSignal(again.projects.saved, timeout=10_000):
        pass
    assert len(json.loads((project / "project.json").read_text())["edits"]) == 3
    _close(again)


def test_a_killed_run_in_a_project_continues_from_its_last_save(
        qtbot, twindow, capture, settings_file, tmp_path):  # noqa: F811
    window = twindow
    window.checkpoint_every = 1.0
    _open_capture(qtbot, window, capture)
    assert window.projects.save_as(tmp_path / "long")
    project = tmp_path / "long.recon"
    assert window.start_training("sdf", steps=400, settings=TINY)
    run = project / "run"
    assert Path(window.training.request.out) == run  # a project's run trains inside it
    qtbot.waitUntil(lambda: (run / "checkpoint.pt").is_file(), timeout=120_000)
    with qtbot.waitSignal(window.training_failed, timeout=30_000):
        os.kill(window.engine.pid, signal.SIGKILL)
    assert window.isVisible() and window.training.state == "died"
    _close(window)  # the window goes; the project stays

    again = _new_window(qtbot, settings_file)
    with qtbot.waitSignal(again.projects.restored, timeout=60_000):
        assert again.open_path(project)
    assert again.continue_action.isEnabled()
    with qtbot.waitSignal(again.training_finished, timeout=300_000):
        assert again.continue_project_run()
    assert any("resumed from step" in text for _, text in again.training.log)
    history = json.loads((run / "history.json").read_text())["loss"]
    assert [s for s, _ in history] == list(range(1, 401))  # the loss curve has no gap
    assert json.loads((run / "metrics.json").read_text())["steps"] == 400
    _close(again)
