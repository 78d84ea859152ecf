"""Projects in the window: File > Save Project As, File > Open of a ``NAME.recon`` folder,
autosave, and continuing the project's run.

A project (see :mod:`reconstruction.project`) keeps the capture's path, the method, its
changed settings and its budget or steps, the edits made to the result and the viewport's
camera in ``project.json``, and the training run in ``run/``: a run started while a project
is open trains there, and its engine saves its full training state every
:attr:`MainWindow.checkpoint_every` seconds, so a crash loses at most that much.
``project.json`` is written (atomically) two seconds after any change, every
:attr:`ProjectManager.autosave_ms` and when the window closes. Opening a project shows its
result (or its capture), selects its method and settings, replays its edits and puts the
camera back. Training > Continue Project Run resumes the run from its last save, with the
same numbers as if it had not stopped.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from reconstruction.project import (
    PROJECT_SUFFIX,
    ProjectError,
    is_project,
    new_project,
    read_project,
    run_dir,
    write_project,
)

RESULT_FILES = ("mesh.ply", "curves.json", "splats.ply")


class ProjectManager(QObject):
    """The open project of a window, if any."""

    saved = Signal(str)
    """Emitted with the project folder after project.json is written."""
    restored = Signal(str)
    """Emitted with the project folder once its method, settings and edits are back."""

    autosave_ms = 30_000
    change_delay_ms = 2_000

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.folder: Path | None = None
        self.data: dict[str, Any] | None = None
        self._restoring = False
        self.timer = QTimer(self)
        self.timer.setInterval(self.autosave_ms)
        self.timer.timeout.connect(self.autosave)
        self.soon = QTimer(self)
        self.soon.setSingleShot(True)
        self.soon.setInterval(self.change_delay_ms)
        self.soon.timeout.connect(self.autosave)

    # -- paths -------------------------------------------------------------------------------
    @staticmethod
    def is_project(path: str | Path) -> bool:
        return is_project(path)

    @property
    def run(self) -> Path | None:
        return None if self.folder is None else run_dir(self.folder, self.data)

    def has_result(self) -> bool:
        run = self.run
        return run is not None and any((run / n).is_file() for n in RESULT_FILES)

    def can_continue(self) -> bool:
        run = self.run
        return run is not None and (run / "checkpoint.pt").is_file() and (run / "run.json").is_file()

    # -- state -------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """project.json for the window as it is now."""
        w = self.window
        data = dict(self.data or {})
        capture = w._capture_path()
        if capture is None and data.get("capture"):
            capture = Path(data["capture"])
        panel = w.method_panel
        method = panel.method.name if panel.method is not None else data.get("method", "nerf")
        try:
            settings = panel.changed_settings()
        except ValueError:
            settings = data.get("settings", {})
        budget, steps = panel.limit()
        base = new_project(capture or "", method, settings, steps, budget)
        base["run"] = data.get("run", "run")
        base["edits"] = w.editor.ops_json() if w.editor.doc is not None else data.get("edits", [])
        cam = w.viewport.renderer.GetActiveCamera()
        base["view"] = {"position": list(cam.GetPosition()), "focal_point": list(cam.GetFocalPoint()),
                        "view_up": list(cam.GetViewUp()), "view_angle": cam.GetViewAngle()}
        return base

    def mark_changed(self, *_args) -> None:
        if self.folder is not None and not self._restoring:
            self.soon.start()

    def autosave(self) -> bool:
        if self.folder is None:
            return False
        try:
            self.data = self.state()
            write_project(self.folder, self.data)
        except OSError as exc:
            self.window._log("warning", f"project not saved: {exc.strerror or exc}")
            return False
        self.saved.emit(str(self.folder))
        return True

    # -- save and open -----------------------------------------------------------------------
    def save_as(self, folder: str | Path) -> bool:
        """Make ``folder`` (``.recon`` added) the window's project; the open result is copied
        into its run folder."""
        folder = Path(folder)
        if folder.suffix != PROJECT_SUFFIX:
            folder = folder.with_name(folder.name + PROJECT_SUFFIX)
        w = self.window
        src = w.model.source
        try:
            folder.mkdir(parents=True, exist_ok=True)
            run = folder / "run"
            if src is not None and src.kind == "result" and src.path.resolve() != run.resolve():
                shutil.copytree(src.path, run, dirs_exist_ok=True)
        except OSError as exc:
            w._show_error(f"{folder}: project not saved ({exc.strerror or exc}); choose "
                          f"another folder")
            return False
        self.folder, self.data = folder, {"run": "run"}
        if not self.autosave():
            return False
        self.timer.start()
        w._log("info", f"project saved: {folder}")
        return True

    def open(self, folder: str | Path) -> bool:
        """Open a project: its result (or capture), then method, settings, edits, camera."""
        w = self.window
        folder = Path(folder)
        try:
            data = read_project(folder)
        except ProjectError as exc:
            w._show_error(str(exc))
            return False
        run = run_dir(folder, data)
        self.folder, self.data = folder, data
        self._restoring = True
        try:
            target = run if any((run / n).is_file() for n in RESULT_FILES) else Path(data["capture"])
            if not target.exists():
                w._show_error(f"{folder}: its capture {data['capture']} is not there any more; "
                              f"put it back, or edit \"capture\" in project.json")
                self._restoring = False
                return False
            self.folder, self.data = None, None  # open_path forgets any project; set it after
            ok = w.model_open(target)
            self.folder, self.data = folder, data
            if not ok:
                self._restoring = False
                return False
            for spec in data.get("edits", []):
                if not w.editor.apply(spec):
                    w._log("warning", f"edit {spec.get('op')!r} of the project not replayed")
                    break
            self._restore_view(data.get("view"))
            if w.methods is not None:
                self._restore_method()
            else:
                w.methods_loaded.connect(self._restore_method_once)
                if w._capture_path() is not None:
                    w.load_methods()
                else:
                    self._finish_restore()
        finally:
            self.timer.start()
        return True

    def _restore_method_once(self) -> None:
        self.window.methods_loaded.disconnect(self._restore_method_once)
        self._restore_method()

    def _restore_method(self) -> None:
        w, data = self.window, self.data or {}
        panel = w.method_panel
        name = data.get("method")
        if w.methods and name in w.methods:
            panel.method_combo.setCurrentText(name)
            for key, value in (data.get("settings") or {}).items():
                if key in panel.settings_form.editors:
                    panel.settings_form.set_value(key, value)
        panel.set_limit(budget=data.get("budget"), steps=data.get("steps"))
        w._reset_settings_baseline()
        self._finish_restore()

    def _finish_restore(self) -> None:
        self._restoring = False
        self.window._refresh_training()
        if self.folder is not None:
            self.restored.emit(str(self.folder))

    def _restore_view(self, view: dict | None) -> None:
        if not isinstance(view, dict):
            return
        try:
            cam = self.window.viewport.renderer.GetActiveCamera()
            cam.SetPosition(*map(float, view["position"]))
            cam.SetFocalPoint(*map(float, view["focal_point"]))
            cam.SetViewUp(*map(float, view["view_up"]))
            cam.SetViewAngle(float(view["view_angle"]))
            self.window.viewport.renderer.ResetCameraClippingRange()
            self._view = view
        except (KeyError, TypeError, ValueError):
            return

    def mesh_shown(self) -> None:
        """The result's mesh is drawn (and the camera was fitted to it): the project's camera
        goes back on top, once."""
        view, self._view = getattr(self, "_view", None), None
        if view is not None:
            self._restore_view(view)
            self._view = None

    def continue_request(self) -> dict[str, Any] | None:
        """What Training > Continue Project Run starts (from run.json), or None."""
        if not self.can_continue():
            return None
        try:
            run = json.loads((self.run / "run.json").read_text())
        except (OSError, ValueError):
            return None
        return run

    def close(self) -> None:
        self.soon.stop()
        self.timer.stop()
        if self.folder is not None:
            self.autosave()
