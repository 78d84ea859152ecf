"""Editing in the window: panel edits and dragged handles, undo, and export through `recon edit`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh
from test_app_window import (  # noqa: F401  (no_leftovers: autouse; window: a fixture)
    METRICS,
    needs_display,
    no_leftovers,
    window,  # noqa: F811
)

pytestmark = needs_display
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CURVES = [
    {"type": "line", "points": [[-1.0, -1.0, 1.2], [1.0, -1.0, 1.2]]},
    {"type": "bezier", "control_points": [[-1, 1, 1.2], [-0.3, 1.6, 1.2], [0.3, 1.6, 1.2], [1, 1, 1.2]]},
    {"type": "line", "points": [[1.0, -1.0, 1.2], [1.0, 1.0, 1.2]]},
]


def _dumbbell_result(folder: Path) -> Path:
    from reconstruction.extract.curves import write_curves_json
    from reconstruction.extract.mesh_io import write_mesh

    parts = [trimesh.creation.box([1, 1, 1]).apply_translation([-1, 0, 0]),
             trimesh.creation.box([1, 1, 1]).apply_translation([1, 0, 0]),
             trimesh.creation.box([1.2, 0.3, 0.3])]
    m = trimesh.util.concatenate(parts).subdivide_to_size(0.1)
    colors = np.zeros((len(m.vertices), 4), np.uint8)
    colors[:, 0] = np.clip(100 + 60 * m.vertices[:, 0], 0, 255).astype(np.uint8)
    colors[:, 1], colors[:, 2], colors[:, 3] = 140, 90, 255
    write_mesh(folder / "mesh.ply", m.vertices, m.faces, colors)
    write_curves_json(folder / "curves.json", CURVES)
    (folder / "metrics.json").write_text(json.dumps(METRICS))
    return folder


@pytest.fixture()
def result(tmp_path):
    folder = tmp_path / "result"
    folder.mkdir()
    return _dumbbell_result(folder)


def _open(qtbot, window, folder):  # noqa: F811
    with qtbot.waitSignal(window.mesh_shown, timeout=30_000):
        assert window.open_path(folder)
    window.viewport.render()


def _shown_vertices(window) -> np.ndarray:  # noqa: F811
    return np.asarray(window.mesh_data.points, np.float64)


def _to_display(window, p) -> tuple[int, int]:  # noqa: F811
    """Qt widget coordinates of world point p in the viewport."""
    ren = window.viewport.renderer
    ren.SetWorldPoint(*[float(v) for v in p], 1.0)
    ren.WorldToDisplay()
    x, y, _ = ren.GetDisplayPoint()
    ratio = window.viewport.devicePixelRatioF()
    h = window.viewport.ren_win.GetSize()[1]
    return int(round(x / ratio)), int(round((h - y) / ratio))


def _drag(qtbot, widget, start, end, steps: int = 6) -> None:
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest

    QTest.mousePress(widget, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(*start))
    for k in range(1, steps + 1):
        t = k / steps
        QTest.mouseMove(widget, QPoint(round(start[0] + t * (end[0] - start[0])),
                                       round(start[1] + t * (end[1] - start[1]))))
        qtbot.wait(10)
    QTest.mouseRelease(widget, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(*end))


def _recon_edit(result: Path, ops: list[dict], out: Path) -> subprocess.CompletedProcess:
    ops_file = out.parent / f"{out.name}_ops.json"
    ops_file.write_text(json.dumps(ops))
    return subprocess.run([sys.executable, "-m", "reconstruction.cli", "edit", str(result), "--ops",
                           str(ops_file), "--out", str(out)], capture_output=True, text=True,
                          timeout=300)


def test_window_edits_give_the_same_mesh_as_recon_edit_and_undo_restores_it(qtbot, window, result,  # noqa: F811
                                                                            tmp_path):
    _open(qtbot, window, result)
    original = _shown_vertices(window).copy()
    editor, panel = window.editor, window.editor.panel
    # through the Edit panel, as a user would
    panel.cage_kind.setCurrentText("polycube")
    panel.cage_cubes.setValue(3)
    panel.fit_cage_button.click()
    assert editor.doc.cage is not None and len(editor.doc.cage.boxes) == 3
    assert editor.cage_actor is not None and len(editor.cage_handles) == len(editor.doc.cage.vertices)
    right = int(np.argmax(editor.doc.cage.vertices[editor.doc.cage.boxes].min(1)[:, 0]))
    panel.box_index.setValue(right)
    panel.box_factor.setValue(1.3)
    panel.scale_box_button.click()
    panel.face.setCurrentText("+z")
    panel.face_offset.setValue(0.2)
    panel.move_face_button.click()
    moved = _shown_vertices(window)
    assert np.abs(moved - original).max() > 0.1  # the viewport shows the deformed mesh
    panel.crop_box_button.setChecked(True)
    editor.place_crop_box([-1.4, -0.6, -0.6], [2.0, 0.6, 1.0])
    panel.apply_crop_button.click()
    assert len(editor.history) == 4 and window.undo_stack.count() >= 4
    shown = _shown_vertices(window)
    assert shown[:, 0].min() >= -1.4 - 1e-6
    # the crop bounds the next training started from this window
    lo, hi = editor.crop_box()
    np.testing.assert_allclose(lo, [-1.4, -0.6, -0.6])
    np.testing.assert_allclose(hi, [2.0, 0.6, 1.0])
    window.save_window_screenshot(ARTIFACTS / "edit_cage_crop.png")

    # the same operations headless
    proc = _recon_edit(result, editor.ops_json(), tmp_path / "headless")
    assert proc.returncode == 0, proc.stderr
    headless = trimesh.load(tmp_path / "headless" / "mesh.ply", process=False)
    assert len(headless.vertices) == len(shown)
    np.testing.assert_allclose(headless.vertices, shown, atol=1e-5)
    assert np.array_equal(np.asarray(window.mesh_data.regular_faces), headless.faces)
    # and the window's own export (recon edit in a subprocess) writes the same
    with qtbot.waitSignal(editor.exported, timeout=120_000):
        assert editor.export_to(tmp_path / "from_window")
    exported = trimesh.load(tmp_path / "from_window" / "mesh.ply", process=False)
    np.testing.assert_allclose(exported.vertices, headless.vertices, atol=0)

    # undo everything: the viewport is back to the original mesh, exactly
    while window.undo_stack.canUndo():
        window.undo_stack.undo()
    assert editor.history == []
    assert np.array_equal(_shown_vertices(window), original)
    window.undo_stack.redo()  # the cage again
    assert editor.doc.cage is not None and len(editor.history) == 1


def test_dragging_a_curve_control_point_changes_the_exported_curves(qtbot, window, result,  # noqa: F811
                                                                   tmp_path):
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest

    _open(qtbot, window, result)
    editor = window.editor
    window.viewport.view_xy()  # look down -z at the curves (z = 1.2, above the mesh)
    window.viewport.render()
    editor.panel.pick_curves.setChecked(True)
    # click the middle of curve 0 (a line along x at y = -1)
    QTest.mouseClick(window.viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     QPoint(*_to_display(window, [0.0, -1.0, 1.2])))
    qtbot.waitUntil(lambda: editor.selected == 0, timeout=5000)
    assert len(editor.handles) == 2
    # drag the line's second end from (1, -1) towards (1.3, -1.4)
    start = _to_display(window, CURVES[0]["points"][1])
    end = _to_display(window, [1.3, -1.4, 1.2])
    _drag(qtbot, window.viewport, start, end)
    qtbot.waitUntil(lambda: bool(editor.history) and editor.history[-1].op == "move_control_point",
                    timeout=5000)
    moved = np.array(editor.doc.curves[0]["points"][1])
    assert np.linalg.norm(moved[:2] - [1.3, -1.4]) < 0.08  # where the mouse let go
    assert editor.doc.curves[0]["points"][0] == CURVES[0]["points"][0]
    np.testing.assert_allclose(editor.handle_centers()[1], moved)
    window.save_window_screenshot(ARTIFACTS / "edit_curve_drag.png")

    with qtbot.waitSignal(editor.exported, timeout=120_000):
        assert editor.export_to(tmp_path / "edited")
    curves = json.loads((tmp_path / "edited" / "curves.json").read_text())["curves"]
    np.testing.assert_allclose(curves[0]["points"][1], moved)
    assert curves[1:] == json.loads((result / "curves.json").read_text())["curves"][1:]
    assert (tmp_path / "edited" / "curves.dxf").is_file()
    # the panel's curve edits, then undo of the drag restores the file's curve
    editor.select_curve(1)
    editor.panel.to_line_button.click()
    assert editor.doc.curves[1]["type"] == "line"
    window.undo_stack.undo()
    window.undo_stack.undo()
    assert editor.doc.curves == json.loads((result / "curves.json").read_text())["curves"]


def test_dragging_a_cage_handle_deforms_the_mesh(qtbot, window, result):  # noqa: F811
    _open(qtbot, window, result)
    editor = window.editor
    assert editor.apply({"op": "cage", "kind": "lattice", "cubes": 1})
    window.viewport.view_xz()
    window.viewport.render()
    before = _shown_vertices(window).copy()
    corner = int(np.argmax(editor.doc.cage.vertices @ [1.0, -1e-3, 1.0]))  # +x, +z corner
    p = editor.doc.cage.vertices[corner]
    _drag(qtbot, window.viewport, _to_display(window, p), _to_display(window, p + [0.4, 0, 0.4]))
    qtbot.waitUntil(lambda: editor.history[-1].op == "move_cage", timeout=5000)
    after = _shown_vertices(window)
    assert editor.history[-1].vertices == [corner]
    w = editor.doc.cage.binding.weights(corner)
    near = w > 0.5
    assert near.any() and np.linalg.norm(after[near] - before[near], axis=1).min() > 0.1
    window.undo_stack.undo()
    assert np.array_equal(_shown_vertices(window), before)


def test_measuring_the_distance_of_two_picked_points(qtbot, window, result):  # noqa: F811
    _open(qtbot, window, result)
    window.viewport.view_xz()
    window.viewport.render()
    tool = window.scale_tool
    window.measure_action.trigger()
    assert tool.picking and tool.measuring
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest

    got = []
    tool.measured.connect(got.append)
    # two mesh vertices on the front faces (y = -0.5) of the two ends, seen from -y
    verts = _shown_vertices(window)
    front = verts[np.abs(verts[:, 1] + 0.5) < 1e-6]
    picks = [front[np.argmin(np.linalg.norm(front - p, axis=1))] for p in ([-1.2, -0.5, 0.1],
                                                                            [1.2, -0.5, 0.1])]
    for p in picks:
        QTest.mouseClick(window.viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                         QPoint(*_to_display(window, p)))
        qtbot.wait(50)
    qtbot.waitUntil(lambda: bool(got), timeout=5000)
    assert got[0] == pytest.approx(np.linalg.norm(picks[1] - picks[0]), abs=1e-4)
    assert f"Distance: {got[0]:.6g} (scene units)" in window.statusBar().currentMessage()


def test_dragging_a_box_face_handle_moves_that_face(qtbot, window, result):  # noqa: F811
    _open(qtbot, window, result)
    editor = window.editor
    assert editor.apply({"op": "cage", "kind": "polycube", "cubes": 3})
    cage = editor.doc.cage
    right = int(np.argmax(cage.vertices[cage.boxes].min(1)[:, 0]))
    editor.panel.box_index.setValue(right)
    assert set(editor.face_handles) == {"-x", "+x", "-y", "+y", "-z", "+z"}
    window.viewport.view_xz()
    window.viewport.render()
    top = editor.face_centers(right)["+z"]
    before = _shown_vertices(window).copy()
    _drag(qtbot, window.viewport, _to_display(window, top), _to_display(window, top + [0.05, 0, 0.3]))
    qtbot.waitUntil(lambda: editor.history[-1].op == "move_face", timeout=5000)
    op = editor.history[-1]
    assert op.box == right and op.face == "+z"
    assert op.delta[0] == 0 and op.delta[1] == 0 and abs(op.delta[2] - 0.3) < 0.05
    np.testing.assert_allclose(editor.face_handle_centers()["+z"], editor.face_centers(right)["+z"])
    after = _shown_vertices(window)
    top_of_box = before[:, 2] > before[before[:, 0] > 0.6][:, 2].max() - 1e-6
    assert np.all(after[top_of_box & (before[:, 0] > 0.6), 2] > before[top_of_box & (before[:, 0] > 0.6), 2] + 0.2)
    window.undo_stack.undo()
    assert np.array_equal(_shown_vertices(window), before)
