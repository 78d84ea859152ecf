"""The recon-studio window, driven for real under Xvfb with pytest-qt.

The window tests need a display (``make test`` runs the suite under ``xvfb-run``); the
model tests at the end do not. Every window test runs under an autouse fixture that fails
it if it leaves a mesh job, a Python thread or a child process running, and closes the
windows afterwards.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

needs_display = pytest.mark.skipif(
    not os.environ.get("DISPLAY"),
    reason="needs a display for the Qt/VTK window: run under xvfb-run (make test does)",
)

TOP_COLOR = (200, 40, 40)
"""Vertex colour of the test sphere's upper half (z > 0); the lower half is BOTTOM_COLOR."""
BOTTOM_COLOR = (40, 60, 200)
N_VERTICES, N_FACES = 642, 1280  # icosphere, 3 subdivisions
METRICS = {
    "method": "nerf",
    "steps": 123,
    "seconds": 4.5,
    "test_psnr": 27.25,
    "final_train_metrics": {"loss": 0.0123, "psnr": 26.5},
}


def write_sphere(path: Path) -> Path:
    """A coloured icosphere PLY (radius 1, centre 0): red where z > 0, blue below."""
    import trimesh

    mesh = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
    colors = np.where(mesh.vertices[:, 2:3] > 0, TOP_COLOR, BOTTOM_COLOR)
    mesh.visual.vertex_colors = np.concatenate(
        [colors, np.full((len(colors), 1), 255)], axis=1
    ).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    mesh.export(path)
    return path


def write_cameras(folder: Path, n: int = 3) -> Path:
    """A tiny NeRF-synthetic capture: n cameras on a circle looking at the origin."""
    frames = []
    for i in range(n):
        a = 2 * np.pi * i / n
        eye = np.array([3 * np.cos(a), 3 * np.sin(a), 1.0])
        z = eye / np.linalg.norm(eye)
        x = np.cross([0.0, 0.0, 1.0], z)
        x /= np.linalg.norm(x)
        m = np.eye(4)
        m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = x, np.cross(z, x), z, eye
        frames.append({"file_path": f"./train/r_{i}", "transform_matrix": m.tolist()})
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "transforms_train.json"
    path.write_text(json.dumps({"camera_angle_x": 0.69, "frames": frames}))
    return path


@pytest.fixture
def result_dir(tmp_path) -> Path:
    """A result folder as `recon fit` writes it: mesh.ply and metrics.json."""
    folder = tmp_path / "result"
    write_sphere(folder / "mesh.ply")
    (folder / "metrics.json").write_text(json.dumps(METRICS))
    return folder


def _leftovers(threads_before: set, children_before: set, timeout_ms: int = 5000) -> list[str]:
    """What is still running after a test: mesh jobs, Python threads, child processes."""
    from PySide6.QtCore import QProcess, QThreadPool
    from PySide6.QtWidgets import QApplication

    from app.window import MainWindow

    problems = []
    app = QApplication.instance()
    windows = [w for w in app.topLevelWidgets() if isinstance(w, MainWindow)] if app else []
    for w in windows:
        if not w.thread_pool.waitForDone(timeout_ms):
            problems.append(f"{w!r}: a mesh job is still running after {timeout_ms} ms")
        if w.engine is not None and w.engine.is_alive():
            problems.append(f"{w!r}: its engine process (pid {w.engine.pid}) is still running")
        for proc in w.findChildren(QProcess):
            if proc.state() != QProcess.ProcessState.NotRunning and not proc.waitForFinished(
                timeout_ms
            ):
                problems.append(f"{w!r}: subprocess {proc.program()} {proc.arguments()} runs")
    if not QThreadPool.globalInstance().waitForDone(timeout_ms):
        problems.append("QThreadPool.globalInstance() still has a job running")
    # Threads Python did not start (a pool's worker that ran Python code) appear as
    # _DummyThread and never end in its eyes; the pool checks above cover them.
    dummy = getattr(threading, "_DummyThread", ())
    for t in set(threading.enumerate()) - threads_before:
        if isinstance(t, dummy):
            continue
        t.join(timeout_ms / 1000)
        if t.is_alive():
            problems.append(f"thread {t.name!r} is still running")
    for p in set(multiprocessing.active_children()) - children_before:
        p.join(timeout_ms / 1000)
        if p.is_alive():
            problems.append(f"child process {p.name!r} (pid {p.pid}) is still running")
    return problems


@pytest.fixture(autouse=True)
def no_leftovers(request):
    """Fail a window test that leaves work running; then close every window it opened."""
    if "qtbot" not in request.fixturenames:
        yield  # a test without Qt
        return
    qapp = request.getfixturevalue("qapp")
    threads_before = set(threading.enumerate())
    children_before = set(multiprocessing.active_children())
    yield
    problems = _leftovers(threads_before, children_before)
    for widget in qapp.topLevelWidgets():
        widget.close()
        widget.deleteLater()
    qapp.processEvents()
    if problems:
        pytest.fail("test left work running: " + "; ".join(problems))


@pytest.fixture
def window(qtbot, tmp_path):
    """A shown MainWindow (closed by `no_leftovers`, which checks for running jobs first).

    Its settings (recent captures, last method) go to a file of the test's own.
    """
    from PySide6.QtCore import QSettings

    from app.window import MainWindow

    w = MainWindow(settings=QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    w.resize(1000, 700)
    w.show()
    qtbot.waitExposed(w)
    return w


def _open_and_wait(qtbot, window, path) -> None:
    with qtbot.waitSignal(window.mesh_shown, timeout=30_000):
        assert window.open_path(path)


def _background_rgb() -> tuple[int, int, int]:
    from render.preview import BACKGROUND

    h = BACKGROUND.lstrip("#")
    return tuple(int(h[i : i + 2], 16) for i in (0, 2, 4))


@needs_display
def test_result_folder_shows_mesh_and_metrics(qtbot, window, result_dir):
    _open_and_wait(qtbot, window, result_dir)

    actor = window.mesh_actor
    assert actor is not None
    data = actor.mapper.dataset
    assert (data.n_points, data.n_cells) == (N_VERTICES, N_FACES)
    assert actor.mapper.scalar_visibility  # vertex colours drawn ...
    assert actor.prop.lighting is False  # ... unlit
    assert window.model.mesh_info.has_colors

    rows = set(window.result_rows())
    assert ("", "Result", str(result_dir.resolve())) in rows
    assert {lab for sec, lab, _ in rows if sec == "Files"} == {"mesh.ply", "metrics.json"}
    assert ("Geometry", "vertices", f"{N_VERTICES:,}") in rows
    assert ("Geometry", "faces", f"{N_FACES:,}") in rows
    assert ("Metrics", "steps", "123") in rows
    assert ("Metrics", "training time", "4.5 s") in rows
    assert ("Metrics", "test PSNR", "27.25 dB") in rows
    assert ("Metrics", "psnr", "26.50 dB") in rows  # nested final_train_metrics
    assert f"{N_VERTICES:,} vertices" in window.status_label.text()
    assert "27.25 dB" in window.status_label.text()
    assert window.windowTitle().startswith("result")


@needs_display
def test_wireframe_toggle_changes_representation(qtbot, window, result_dir):
    import vtk

    _open_and_wait(qtbot, window, result_dir)
    prop = window.mesh_actor.prop
    assert prop.GetRepresentation() == vtk.VTK_SURFACE
    window.wireframe_action.trigger()
    assert window.model.wireframe and window.wireframe_action.isChecked()
    assert prop.GetRepresentation() == vtk.VTK_WIREFRAME
    window.wireframe_action.trigger()
    assert prop.GetRepresentation() == vtk.VTK_SURFACE
    # The setting survives opening something else.
    window.wireframe_action.trigger()
    _open_and_wait(qtbot, window, result_dir / "mesh.ply")
    assert window.mesh_actor.prop.GetRepresentation() == vtk.VTK_WIREFRAME


@needs_display
def test_keys_go_through_the_window_not_vtk(qtbot, window, result_dir):
    import vtk
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    _open_and_wait(qtbot, window, result_dir)
    prop = window.mesh_actor.prop
    # VTK's own 'w' (every actor to wireframe) must not bypass the model ...
    window.viewport.iren._simulate_keypress("w")
    assert prop.GetRepresentation() == vtk.VTK_SURFACE and not window.model.wireframe
    # ... while the window's W shortcut works with the viewport focused.
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5000)
    window.viewport.setFocus()
    qtbot.keyClick(window.viewport, Qt.Key.Key_W)
    assert window.model.wireframe and prop.GetRepresentation() == vtk.VTK_WIREFRAME


@needs_display
def test_screenshot_probe_pixels(qtbot, window, result_dir, tmp_path):
    _open_and_wait(qtbot, window, result_dir)
    window.reset_view_action.trigger()
    qtbot.wait(50)
    img = window.viewport.screenshot(str(tmp_path / "viewport.png"), return_img=True)
    shutil.copyfile(tmp_path / "viewport.png", "/tmp/app_window.png")
    window.grab().save("/tmp/app_window_full.png")  # with the dock, to look at
    assert (tmp_path / "viewport.png").stat().st_size > 0

    h, w = img.shape[:2]
    assert (w, h) == (
        window.viewport.width() * window.viewport.devicePixelRatio(),
        window.viewport.height() * window.viewport.devicePixelRatio(),
    )
    background = np.array(_background_rgb())
    centre = img[h // 2, w // 2, :3].astype(int)
    corner = img[2, w - 3, :3].astype(int)  # top right; the axes widget sits bottom left
    assert np.abs(corner - background).max() <= 2, f"corner {corner} is not the background"
    assert np.abs(centre - background).max() > 30, f"centre {centre} shows no mesh"
    # The view looks from above (elevation 28 deg): the centre sees the red upper half,
    # unlit, so the pixel is the vertex colour itself.
    assert np.abs(centre - np.array(TOP_COLOR)).max() <= 8, f"centre {centre} != {TOP_COLOR}"
    # The sphere is framed: it covers a good part of the picture, not a dot, not all of it.
    covered = (np.abs(img[..., :3].astype(int) - background).max(axis=-1) > 30).mean()
    assert 0.15 < covered < 0.9, covered


def _drag_events(path: Path):
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    pos = QPointF(400, 300)
    enter = QDragEnterEvent(
        pos,
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    drop = QDropEvent(
        pos,
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    return mime, enter, drop


@needs_display
@pytest.mark.parametrize("what", ["folder", "mesh file"])
def test_drop_opens_it(qtbot, window, result_dir, what):
    from PySide6.QtWidgets import QApplication

    path = result_dir if what == "folder" else result_dir / "mesh.ply"
    mime, enter, drop = _drag_events(path)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    with qtbot.waitSignal(window.mesh_shown, timeout=30_000) as blocker:
        QApplication.sendEvent(window, drop)
        assert drop.isAccepted()
    assert blocker.args == [str((result_dir / "mesh.ply").resolve())]
    assert window.model.source.kind == ("result" if what == "folder" else "mesh")
    assert window.mesh_actor.mapper.dataset.n_points == N_VERTICES


@needs_display
def test_drag_of_text_is_refused(window):
    from PySide6.QtCore import QMimeData, QPointF, Qt
    from PySide6.QtGui import QDragEnterEvent
    from PySide6.QtWidgets import QApplication

    mime = QMimeData()
    mime.setText("not a file")
    enter = QDragEnterEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(window, enter)
    assert not enter.isAccepted()
    # The viewport must not take drops itself (pyvistaqt's handler would bypass the model).
    assert not window.viewport.acceptDrops()


@needs_display
def test_capture_shows_cameras_and_toggle_hides_them(qtbot, window, tmp_path):
    capture = tmp_path / "capture"
    write_cameras(capture, n=3)
    assert window.open_path(capture)
    actor = window.cameras_actor
    assert actor is not None and actor.GetVisibility()
    assert actor.mapper.dataset.n_points == 3 * 8  # 5 frustum corners + 3 for the up mark
    assert window.cameras_action.isChecked() and window.cameras_action.isEnabled()
    assert ("Geometry", "cameras", "3") in window.result_rows()
    window.cameras_action.trigger()
    assert not actor.GetVisibility() and not window.model.show_cameras
    window.cameras_action.trigger()
    assert actor.GetVisibility()


@needs_display
def test_result_cameras_come_from_its_capture_and_start_hidden(qtbot, window, result_dir, tmp_path):
    capture = tmp_path / "capture"
    write_cameras(capture, n=4)
    (result_dir / "metrics.json").write_text(json.dumps({**METRICS, "data": str(capture)}))
    _open_and_wait(qtbot, window, result_dir)
    assert window.cameras_actor is not None
    assert not window.cameras_actor.GetVisibility()
    assert not window.cameras_action.isChecked()
    window.cameras_action.trigger()
    assert window.cameras_actor.GetVisibility()


@needs_display
@pytest.mark.filterwarnings("ignore:The VTK reader:UserWarning")
def test_bad_paths_give_a_message_and_keep_what_was_open(qtbot, window, result_dir, tmp_path):
    _open_and_wait(qtbot, window, result_dir)
    with qtbot.waitSignal(window.load_failed) as blocker:
        assert not window.open_path(tmp_path / "nope")
    assert "does not exist" in blocker.args[0]
    assert window.model.source.path == result_dir.resolve()  # nothing lost
    assert window.mesh_actor is not None

    broken = tmp_path / "broken.ply"
    broken.write_bytes(b"ply\nformat ascii 1.0\nelement vertex 3\nend_header\n1 2\n")
    with qtbot.waitSignal(window.load_failed, timeout=30_000) as blocker:
        assert window.open_path(broken)
    assert "broken.ply" in blocker.args[0]
    assert window.mesh_actor is None
    assert "broken.ply" in window.status_label.text()


@needs_display
def test_a_newer_open_wins_over_a_slower_older_one(qtbot, window, tmp_path):
    first = write_sphere(tmp_path / "a" / "first.ply")
    second = write_sphere(tmp_path / "b" / "second.ply")
    shown = []
    window.mesh_shown.connect(shown.append)
    window.open_path(first)
    with qtbot.waitSignal(window.mesh_shown, timeout=30_000):
        window.open_path(second)
    window.thread_pool.waitForDone(10_000)
    qtbot.wait(50)  # let any late reply arrive
    assert shown == [str(second.resolve())]
    assert window.model.source.mesh_path == second.resolve()


@needs_display
def test_leftover_check_notices_a_running_job(qtbot, window):
    """The autouse fixture's check itself: a job still running is reported."""
    from PySide6.QtCore import QRunnable

    release = threading.Event()

    class Blocked(QRunnable):
        def run(self):
            release.wait(10)

    window.thread_pool.start(Blocked())
    try:
        problems = _leftovers(set(threading.enumerate()), set(), timeout_ms=50)
        assert any("still running" in p for p in problems)
    finally:
        release.set()
        window.thread_pool.waitForDone(5000)


@pytest.fixture(scope="module")
def tiny_capture(tmp_path_factory) -> Path:
    """A demo capture of 8 images at 32 px (6 train, 1 val, 1 test), made once."""
    from render.demo_capture import make_demo_capture

    out = tmp_path_factory.mktemp("capture") / "tiny"
    make_demo_capture(out, size=32, n_train=6, n_val=1, n_test=1)
    return out


@needs_display
def test_capture_panel_lists_every_image_and_the_broken_one_as_skipped(
    qtbot, window, tiny_capture, tmp_path
):
    capture = tmp_path / "capture"
    shutil.copytree(tiny_capture, capture)
    (capture / "train" / "r_2.png").write_bytes(b"\x89PNG garbage, not an image" * 8)
    window.resize(1280, 800)
    with qtbot.waitSignal(window.capture_listed, timeout=30_000) as listed:
        assert window.open_path(capture)
    assert listed.args == [8]
    assert window.capture_dock.isVisible()
    rows = {name: (status, reason) for name, status, reason in window.capture_panel.rows()}
    assert set(rows) == {f"train/r_{i}" for i in range(6)} | {"val/r_0", "test/r_0"}
    assert rows["train/r_2"][0] == "skipped"
    assert "not a readable image" in rows["train/r_2"][1]
    assert rows["train/r_0"] == ("train", "") and rows["val/r_0"][0] == "val"
    assert rows["test/r_0"][0] == "test"
    info = window.capture_info
    assert (info.format, info.n_images, info.resolution, info.masks) == (
        "nerf-synthetic", 7, (32, 32), True)
    panel = window.capture_panel
    items = [panel.list.item(i) for i in range(panel.list.count())]
    assert [it.text().split("\n")[0] for it in items] == [n for n, _, _ in panel.rows()]
    skipped = next(it for it in items if it.text().startswith("train/r_2"))
    assert "skipped" in skipped.text() and "not a readable image" in skipped.toolTip()
    assert "7 used, 1 skipped" in panel.summary_label.text()

    # thumbnails arrive from the thread pool (capture facts come from a `recon info`
    # subprocess: the window process stays torch-free, which the scripted-mode test checks
    # in a clean process; here other tests of the session may have loaded torch already)
    qtbot.waitUntil(lambda: window._thumbs_missing == 0, timeout=30_000)
    good = next(it for it in items if it.text().startswith("train/r_1"))
    assert good.icon().pixmap(64, 64).toImage().pixelColor(32, 32).name() != "#d0d4da"

    # a click shows the image larger and highlights its camera
    row = [n for n, _, _ in panel.rows()].index("train/r_3")
    panel.list.setCurrentRow(row)
    qtbot.waitUntil(lambda: panel.preview_label.pixmap() is not None
                    and not panel.preview_label.pixmap().isNull(), timeout=10_000)
    assert window.highlight_actor is not None and window.highlighted_frustum == 3
    hl = np.asarray(window.highlight_actor.mapper.dataset.points)
    assert np.allclose(hl, np.asarray(window.cameras_actor.mapper.dataset.points)[24:32])
    assert "train/r_3: training" in panel.detail_label.text()
    panel.list.setCurrentRow([n for n, _, _ in panel.rows()].index("train/r_2"))
    assert "not a readable image" in panel.detail_label.text()

    # a click on a camera in the viewport selects its image
    renderer = window.viewport.renderer
    corners = np.asarray(window.cameras_actor.mapper.dataset.points)[8 * 4:8 * 4 + 5]
    renderer.SetWorldPoint(*(0.5 * (corners[0] + corners[1])), 1.0)  # on the edge 0-1
    renderer.WorldToDisplay()
    x, y, _ = renderer.GetDisplayPoint()
    assert window.pick_camera_at(int(round(x)), int(round(y))) == 4
    assert panel.rows()[panel.list.currentRow()][0] == "train/r_4"
    assert window.highlighted_frustum == 4
    assert window.pick_camera_at(2, 2) is None  # empty background
    # the same through a real mouse click (Qt's origin is top left, VTK's bottom left)
    from PySide6.QtCore import QPoint, Qt

    corners = np.asarray(window.cameras_actor.mapper.dataset.points)[8 * 5:8 * 5 + 5]
    renderer.SetWorldPoint(*(0.5 * (corners[0] + corners[2])), 1.0)
    renderer.WorldToDisplay()
    x, y, _ = renderer.GetDisplayPoint()
    ratio = window.viewport.devicePixelRatio()
    qx, qy = round(x / ratio), round(window.viewport.height() - y / ratio)
    qtbot.mouseClick(window.viewport, Qt.MouseButton.LeftButton, pos=QPoint(qx, qy))
    qtbot.waitUntil(lambda: window.highlighted_frustum == 5, timeout=5000)
    assert panel.rows()[panel.list.currentRow()][0] == "train/r_5"

    window.thread_pool.waitForDone(10_000)  # the larger picture of train/r_5
    qtbot.wait(50)
    pix = panel.preview_label.pixmap()
    assert pix is not None and pix.width() > 64  # larger than the thumbnail
    artifacts = Path(__file__).resolve().parent / "artifacts"
    window.save_window_screenshot(artifacts / "capture_panel.png")

    # opening something else empties and hides the panel
    write_sphere(tmp_path / "m" / "sphere.ply")
    _open_and_wait(qtbot, window, tmp_path / "m" / "sphere.ply")
    assert not window.capture_dock.isVisible() and window.capture_panel.rows() == []


@needs_display
def test_capture_panel_says_why_a_capture_cannot_be_read(qtbot, window, tmp_path):
    capture = tmp_path / "capture"
    write_cameras(capture, n=3)  # cameras but no images
    assert window.open_path(capture)
    label = window.capture_panel.summary_label
    qtbot.waitUntil(lambda: "cannot be trained on" in label.text(), timeout=30_000)
    assert window.capture_panel.rows() == []


@needs_display
def test_bounding_box_and_colour_toggles(qtbot, window, result_dir):
    import vtk

    _open_and_wait(qtbot, window, result_dir)
    renderer = window.viewport.renderer
    assert window.bounds_actor is None and not window.bounds_action.isChecked()
    window.bounds_action.trigger()
    actor = window.bounds_actor
    assert actor is not None and window.model.show_bounds
    assert renderer.GetActors().IsItemPresent(actor)
    outline = actor.mapper.dataset
    assert (outline.n_points, outline.n_lines) == (8, 12)
    assert np.allclose(outline.bounds, window.mesh_actor.GetBounds())
    window.bounds_action.trigger()
    assert window.bounds_actor is None and not renderer.GetActors().IsItemPresent(actor)

    mesh = window.mesh_actor
    assert mesh.prop.GetRepresentation() == vtk.VTK_SURFACE
    window.wireframe_action.trigger()
    assert mesh.prop.GetRepresentation() == vtk.VTK_WIREFRAME
    window.wireframe_action.trigger()
    assert mesh.prop.GetRepresentation() == vtk.VTK_SURFACE

    assert mesh.mapper.scalar_visibility and window.colors_action.isChecked()
    window.colors_action.trigger()
    assert not window.model.show_colors
    assert not mesh.mapper.scalar_visibility and mesh.prop.lighting
    window.colors_action.trigger()
    assert mesh.mapper.scalar_visibility and not mesh.prop.lighting

    # the outline follows a newly opened mesh
    window.bounds_action.trigger()
    small = write_sphere(result_dir.parent / "other" / "small.ply")
    import trimesh

    trimesh.load(small).apply_scale(0.5).export(small)
    _open_and_wait(qtbot, window, small)
    assert window.bounds_actor is not None
    assert np.allclose(window.bounds_actor.mapper.dataset.bounds, window.mesh_actor.GetBounds())
    assert window.mesh_actor.GetBounds()[1] < 0.6


# -- without a display --------------------------------------------------------------------


def test_importing_the_app_does_not_import_torch():
    """app may use the engine client, which imports torch lazily; app itself must not."""
    code = (
        "import sys, app.main, app.model, app.window, app.panels, app.training, app.capture; sys.exit(1 if 'torch' in sys.modules else 0)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr or "importing app imported torch"


def test_model_resolves_sources(result_dir, tmp_path):
    from app.model import OpenError, resolve_source

    src = resolve_source(result_dir)
    assert src.kind == "result" and src.mesh_path == (result_dir / "mesh.ply").resolve()
    assert src.metrics["steps"] == 123 and src.cameras_json is None
    assert resolve_source(result_dir / "metrics.json").path == src.path  # json = its folder
    assert resolve_source(result_dir / "mesh.ply").kind == "mesh"

    capture = tmp_path / "capture"
    write_cameras(capture)
    cap = resolve_source(capture)
    assert cap.kind == "capture" and cap.cameras_json.name == "transforms_train.json"

    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(OpenError, match="not a mesh file"):
        resolve_source(tmp_path / "notes.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(OpenError, match="transforms_train.json"):
        resolve_source(tmp_path / "empty")


def test_model_rows_and_events(result_dir):
    from app.model import MeshInfo, ViewerModel

    model = ViewerModel()
    changes = []
    model.connect(changes.append)
    model.open(result_dir)
    assert model.status_text().startswith("Loading mesh.ply")
    model.set_mesh_info(MeshInfo(642, 1280, True, (-1, 1, -1, 1, -1, 1)))
    model.set_wireframe(True)
    model.set_wireframe(True)  # no change, no event
    assert changes == ["source", "mesh", "display"]
    metrics = {label: value for label, value, _ in model.metric_rows()}
    assert metrics["steps"] == "123" and metrics["test PSNR"] == "27.25 dB"
    assert ("vertices", "642") in model.geometry_rows()
    assert model.status_text() == "mesh.ply: 642 vertices, 1,280 faces; test PSNR 27.25 dB"


def test_broken_metrics_json_is_a_note_not_an_error(result_dir):
    from app.model import resolve_source

    (result_dir / "metrics.json").write_text("{not json")
    src = resolve_source(result_dir)
    assert src.metrics == {} and src.mesh_path is not None
    assert any("metrics.json" in n for n in src.notes)


def test_main_rejects_a_bad_path_before_opening_a_window(tmp_path, capsys):
    from app.main import main

    assert main([str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_capture_info_parses_recon_info_json(tmp_path):
    from app.capture import parse_capture_info

    root = tmp_path / "cap"
    text = json.dumps({
        "format": "nerfstudio", "images": 2, "resolution": [64, 48], "masks": False,
        "split": {"train": 1, "test": 1}, "problems": ["x"],
        "frames": [
            {"name": "f10", "file_path": "images/f10.jpg", "image": str(root / "images/f10.jpg"),
             "split": "train"},
            {"name": "f2", "file_path": "images/f2.jpg", "image": str(root / "images/f2.jpg"),
             "split": "test"},
        ],
        "skipped": [
            {"path": str(root / "images/f3.jpg"), "problem": "image is 10x10", "fix": "resize it"},
            {"path": "images/f4", "problem": "camera pose is NaN", "fix": "fix the pose"},
        ],
    })
    info = parse_capture_info(text, root)
    assert [(im.name, im.status) for im in info.images] == [
        ("images/f2", "test"), ("images/f3", "skipped"), ("images/f4", "skipped"),
        ("images/f10", "train")]  # natural order of the paths
    f3, f4 = info.images[1], info.images[2]
    assert f3.reason == "image is 10x10. resize it" and f3.path.endswith("f3.jpg")
    assert f4.path == "" and "NaN" in f4.reason  # no file to show
    assert ("images", "2 used, 1 skipped") in info.summary_rows()
    with pytest.raises(ValueError, match="recon info"):
        parse_capture_info("not json", root)


DTU = Path(__file__).resolve().parents[2] / "shared" / "data" / "dtu_scan24"


@needs_display
@pytest.mark.skipif(not DTU.is_dir(), reason="needs ../shared/data/dtu_scan24")
def test_idr_capture_without_transforms_shows_its_cameras(qtbot, window):
    # DTU (IDR layout: cameras_sphere.npz) has no transforms file: the frustums come from
    # the cameras `recon info --json` reports
    with qtbot.waitSignal(window.capture_listed, timeout=120_000) as listed:
        assert window.open_path(DTU)
    assert listed.args == [49]
    actor = window.cameras_actor
    assert actor is not None and actor.mapper.dataset.n_points == 49 * 8
    # every frustum apex is its camera centre, which DTU's own cameras put about 2.5-4
    # object radii away from the object (the loaders' world = cameras_sphere's frame)
    apex = np.asarray(actor.mapper.dataset.points)[0::8]
    spread = np.linalg.norm(apex - apex.mean(0), axis=1)
    assert spread.max() > 0.1 * np.linalg.norm(apex, axis=1).mean()
    panel = window.capture_panel
    row = [n for n, _, _ in panel.rows()].index("images/000003")
    panel.list.setCurrentRow(row)
    qtbot.waitUntil(lambda: window.highlighted_frustum is not None, timeout=10_000)
    assert window.highlighted_frustum == window._frustum_index["images/000003"]
