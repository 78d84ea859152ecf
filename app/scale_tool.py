"""Metric scale from two points picked in the viewport, and measuring distances.

SfM cannot know how big a scene is. The user picks two points whose real distance they know
(on the capture's sparse points, its cameras, or a result's mesh), types the distance in
metres, and ``recon scale CAPTURE --points ... --distance D`` rescales the capture in a
subprocess (the same code as the command line); the capture then reopens in its new units.
In measuring mode (Edit > Measure Distance) the two points' distance is shown instead, in
the units of what is open.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QProcess, Signal
from PySide6.QtWidgets import QInputDialog

from app.training import recon_error

MARKER_COLOR = "#e8175d"


def scale_command(capture: Path, p1, p2, distance: float) -> list[str]:
    """The `recon scale` command line for two points [3] and their distance in metres."""
    pts = [f"{float(v):.9g}" for v in (*p1, *p2)]
    return [sys.executable, "-m", "reconstruction.cli", "scale", str(capture), "--points", *pts,
            "--distance", f"{float(distance):.9g}"]


class ScaleTool(QObject):
    """Collects two picked points, asks for their distance and runs `recon scale`."""

    scaled = Signal(float)
    """Emitted with the factor once the capture is rescaled."""
    failed = Signal(str)
    """Emitted with the reason when scaling did not happen."""
    measured = Signal(float)
    """Emitted with the distance of the two points picked in measuring mode."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.points: list[np.ndarray] = []
        self.capture: Path | None = None
        self.process: QProcess | None = None
        self.picking = False
        self.measuring = False
        self.distance: float | None = None
        self.ask_distance: Callable[[float], float | None] = self._ask_distance

    # -- picking ---------------------------------------------------------------------------
    def start(self, measure: bool = False) -> bool:
        """Begin picking on the open capture (False, with a message, when there is none);
        with ``measure``, on whatever is shown, to show the distance of two points."""
        if self.picking:
            self.cancel()
        self.measuring = measure
        capture = self.window._capture_path()
        if capture is None and not measure:
            self.window._show_error("Open a capture (or a result of one) to set its scale.")
            return False
        self.capture = capture
        self.points = []
        self._clear_markers()
        plotter = self.window.viewport
        plotter.enable_point_picking(callback=self.add_point, use_picker=True, left_clicking=True,
                                     show_message=False, show_point=False)
        self.picking = True
        self.window.statusBar().showMessage(
            "Measure: click the first point" if measure else
            "Set scale: click the first of two points whose distance you know")
        return True

    def cancel(self) -> None:
        if self.picking:
            self.window.viewport.disable_picking()
            self.picking = False
        self.points = []
        self._clear_markers()

    def add_point(self, point, *_picker) -> None:
        """A picked point [3] (world coordinates of the capture); pyvista's point picking
        passes its picker too."""
        if point is None or len(self.points) >= 2:
            return
        self.points.append(np.asarray(point, dtype=float).reshape(3))
        self._draw_markers()
        if len(self.points) == 1:
            self.window.statusBar().showMessage(
                "Measure: click the second point" if self.measuring
                else "Set scale: click the second point")
            return
        self.window.viewport.disable_picking()
        self.picking = False
        now = float(np.linalg.norm(self.points[1] - self.points[0]))
        if self.measuring:  # the markers stay until the next pick
            self.distance = now
            text = f"Distance: {now:.6g}" + (" m" if self._in_metres() else " (scene units)")
            self.window.statusBar().showMessage(text)
            self.window._log("info", f"{text} between {np.round(self.points[0], 6).tolist()} "
                                     f"and {np.round(self.points[1], 6).tolist()}")
            self.measured.emit(now)
            return
        if now <= 0:
            self.failed.emit("the two points are the same; pick two different points")
            self.cancel()
            return
        metres = self.ask_distance(now)
        if metres is None or metres <= 0:
            self.failed.emit("no distance given")
            self.cancel()
            return
        self.run(self.points[0], self.points[1], metres)

    def scale_measured(self, metres: float | None = None) -> bool:
        """Rescale the open capture so the last measured points are ``metres`` apart (asked
        for when not given). False, with a message, when there is nothing to scale."""
        capture = self.window._capture_path()
        if capture is None or len(self.points) != 2 or self.distance is None:
            self.window._show_error("Measure two points (Edit > Measure Distance) on an open "
                                    "capture or a result of one first")
            return False
        if metres is None:
            metres = self.ask_distance(self.distance)
        if metres is None or metres <= 0:
            return False
        self.capture = capture
        self.run(self.points[0], self.points[1], metres)
        return True

    def _in_metres(self) -> bool:
        """Whether the open capture was given metric scale (`recon scale` wrote its note)."""
        capture = self.window._capture_path()
        return capture is not None and (Path(capture) / "scale.json").is_file()

    def _ask_distance(self, now: float) -> float | None:
        value, ok = QInputDialog.getDouble(
            self.window, "Set Scale",
            f"The two points are {now:.4g} apart in the capture's units.\n"
            "Their real distance in metres:", 1.0, 1e-6, 1e6, 4)
        return value if ok else None

    # -- markers ---------------------------------------------------------------------------
    def _draw_markers(self) -> None:
        import pyvista as pv

        pts = np.array(self.points)
        cloud = pv.PolyData(pts)
        self.window.viewport.add_mesh(cloud, color=MARKER_COLOR, point_size=14,
                                      render_points_as_spheres=True, name="scale_points",
                                      pickable=False, reset_camera=False)
        if len(pts) == 2:
            self.window.viewport.add_mesh(pv.Line(pts[0], pts[1]), color=MARKER_COLOR, line_width=3,
                                          name="scale_line", pickable=False, reset_camera=False)

    def _clear_markers(self) -> None:
        for name in ("scale_points", "scale_line"):
            self.window.viewport.remove_actor(name, render=False)

    # -- the command -----------------------------------------------------------------------
    def run(self, p1, p2, metres: float) -> None:
        """`recon scale` on the capture in a subprocess; the capture reopens after it."""
        assert self.capture is not None
        cmd = scale_command(self.capture, p1, p2, metres)
        proc = QProcess(self)
        proc.setProgram(cmd[0])
        proc.setArguments(cmd[1:])
        proc.finished.connect(lambda code, _status: self._on_finished(proc, code))
        self.process = proc
        self.window._log("info", f"scaling {self.capture.name}: the picked points are {metres:g} m apart")
        proc.start()

    def _on_finished(self, proc: QProcess, code: int) -> None:
        out = bytes(proc.readAllStandardOutput()).decode(errors="replace").strip()
        err = bytes(proc.readAllStandardError()).decode(errors="replace").strip()
        self.process = None
        proc.deleteLater()
        self._clear_markers()
        if code != 0:
            reason = recon_error(err, code)
            self.window._show_error(f"Scale not set: {reason}")
            self.failed.emit(reason)
            return
        try:
            factor = float(json.loads(out.splitlines()[-1])["factor"])
        except (ValueError, KeyError, IndexError):
            factor = float("nan")
        self.window._log("info", f"{self.capture.name} scaled by {factor:.6g}: now in metres")
        self.window.open_path(self.capture)
        self.scaled.emit(factor)

    def close(self) -> None:
        if self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning:
            self.process.kill()
            self.process.waitForFinished(3000)
