"""The ReconStudio main window: a 3D viewport, a "Result" panel, menus and a status bar.

It is a view of an :class:`app.model.ViewerModel`: menu actions and drops call the model,
and :meth:`MainWindow._on_model_changed` brings the panels and the viewport up to date.
Mesh files are read off the GUI thread (a :class:`MeshLoadJob` in the window's
``QThreadPool``); the actor is added on the GUI thread when the job's signal arrives, and
a reply to an older request (the user opened something else meanwhile) is dropped.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pyvista as pv
from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QHeaderView,
    QLabel,
    QMainWindow,
    QMessageBox,
    QTreeWidget,
    QTreeWidgetItem,
    QWidget,
)
from pyvistaqt import QtInteractor

from app.model import KIND_LABELS, MESH_SUFFIXES, MeshInfo, OpenError, ViewerModel
from render.preview import (
    BACKGROUND,
    FRUSTUM_COLOR,
    PLAIN_COLOR,
    camera_frustums,
    fit_camera,
    vertex_colors,
)

COLOR_ARRAY = "_rgb"
"""Name of the uint8 [N, 3] colour array :func:`read_mesh` adds when the file has colours."""


def read_mesh(path: Path) -> pv.PolyData:
    """Read a mesh file for display; safe to call off the GUI thread (no rendering).

    Vertex colours, if present, are copied to a uint8 [N, 3] point array ``_rgb``; a mesh
    without colours gets point normals so it is smooth-shaded without work on the GUI
    thread. Raises ValueError with the file's name and the reason.
    """
    path = Path(path)
    try:
        data = pv.read(str(path))
    except Exception as exc:  # VTK readers raise a variety of errors
        raise ValueError(f"could not read {path.name}: {exc}") from exc
    if isinstance(data, pv.MultiBlock):  # glTF scenes
        data = data.combine()
    if data is None or data.n_points == 0:
        raise ValueError(
            f"{path.name} has no vertices: the file is empty or damaged; export it again"
        )
    mesh = data if isinstance(data, pv.PolyData) else data.extract_surface()
    colors = vertex_colors(mesh)
    if colors is not None:
        mesh.point_data[COLOR_ARRAY] = colors
        mesh.point_data.active_scalars_name = COLOR_ARRAY
    elif mesh.n_faces_strict > 0:
        mesh.compute_normals(cell_normals=False, split_vertices=False, inplace=True)
    return mesh


class _LoadSignals(QObject):
    """Signals of the mesh jobs (a QRunnable is not a QObject). Lives on the GUI thread."""

    loaded = Signal(int, object)  # request id, pv.PolyData
    failed = Signal(int, str)  # request id, message


class MeshLoadJob(QRunnable):
    """Reads one mesh file in a thread pool and reports through `signals`."""

    def __init__(self, request: int, path: Path, signals: _LoadSignals) -> None:
        super().__init__()
        self.request = request
        self.path = Path(path)
        self.signals = signals

    def run(self) -> None:
        try:
            mesh = read_mesh(self.path)
        except Exception as exc:  # noqa: BLE001 - every failure goes to the window
            message = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
            self._emit(self.signals.failed, self.request, message)
        else:
            self._emit(self.signals.loaded, self.request, mesh)

    @staticmethod
    def _emit(signal, *args) -> None:
        try:
            signal.emit(*args)
        except RuntimeError:  # the window (and its signals object) is gone
            pass


class MainWindow(QMainWindow):
    """The viewer window. ``open_path`` opens a result folder, a mesh or a capture."""

    mesh_shown = Signal(str)
    """Emitted with the mesh path once its actor is in the viewport."""
    load_failed = Signal(str)
    """Emitted with the message when opening or reading fails."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = ViewerModel()
        self.thread_pool = QThreadPool(self)
        self.thread_pool.setMaxThreadCount(1)  # one mesh at a time; a newer request wins
        self._load_signals = _LoadSignals(self)
        self._load_signals.loaded.connect(self._on_mesh_loaded)
        self._load_signals.failed.connect(self._on_mesh_failed)
        self._request = 0
        self.mesh_actor: pv.Actor | None = None
        self.cameras_actor: pv.Actor | None = None
        self.last_error: str | None = None
        self._closed = False

        self.setWindowTitle(self.model.title)
        self.resize(1280, 800)
        self._build_viewport()
        self._build_dock()
        self._build_menus()
        self.status_label = QLabel()
        self.statusBar().addWidget(self.status_label, 1)
        self.setAcceptDrops(True)
        self.model.connect(self._on_model_changed)
        self._refresh_panels()

    # -- construction ------------------------------------------------------------------------
    def _build_viewport(self) -> None:
        # auto_update=False: no 5 Hz redraw timer; the window renders after each change.
        self.viewport = QtInteractor(self, auto_update=False)
        # pyvistaqt's own drop handler reads files synchronously and adds them behind the
        # model's back; let drops reach the window instead.
        self.viewport.setAcceptDrops(False)
        self.viewport.set_background(BACKGROUND)
        self.viewport.add_axes(interactive=False)
        self._own_viewport_keys()
        self.setCentralWidget(self.viewport)

    def _own_viewport_keys(self) -> None:
        """Keys go through the window's actions, not VTK's built-in letter keys.

        VTK's interactor style turns every actor to wireframe/surface on w/s, picks on p,
        goes stereo on 3, ... behind the model's back; an observer of the style's CharEvent
        replaces that default handling (vtkInteractorStyle calls OnChar only when nobody
        observes CharEvent). pyvista's own q (screenshot into memory) and b/C (picking)
        go too; its arrow, +/- and v keys stay.
        """
        self.viewport.iren.style.AddObserver("CharEvent", lambda *_: None)
        for key in ("q", "b", "C"):
            self.viewport.clear_events_for_key(key)

    def _build_dock(self) -> None:
        self.result_tree = QTreeWidget()
        self.result_tree.setColumnCount(2)
        self.result_tree.setHeaderLabels(["", ""])
        self.result_tree.setHeaderHidden(True)
        self.result_tree.setRootIsDecorated(True)
        self.result_tree.setUniformRowHeights(True)
        self.result_tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # paths keep their end
        header = self.result_tree.header()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.result_dock = QDockWidget("Result", self)
        self.result_dock.setObjectName("result_dock")
        self.result_dock.setWidget(self.result_tree)
        self.result_dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.result_dock)
        self.resizeDocks([self.result_dock], [300], Qt.Orientation.Horizontal)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.open_action = QAction("&Open...", self)
        self.open_action.setShortcut(QKeySequence.StandardKey.Open)
        self.open_action.setStatusTip("Open a mesh, or a result/capture folder through its json")
        self.open_action.triggered.connect(self._on_open)
        file_menu.addAction(self.open_action)
        self.open_folder_action = QAction("Open &Folder...", self)
        self.open_folder_action.setShortcut(QKeySequence("Ctrl+Shift+O"))
        self.open_folder_action.setStatusTip("Open a result folder (recon fit) or a capture")
        self.open_folder_action.triggered.connect(self._on_open_folder)
        file_menu.addAction(self.open_folder_action)
        file_menu.addSeparator()
        self.quit_action = QAction("&Quit", self)
        self.quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        self.quit_action.triggered.connect(self._on_quit)
        file_menu.addAction(self.quit_action)

        view_menu = self.menuBar().addMenu("&View")
        self.reset_view_action = QAction("&Reset View", self)
        self.reset_view_action.setShortcut(QKeySequence("R"))
        self.reset_view_action.triggered.connect(self._on_reset_view)
        view_menu.addAction(self.reset_view_action)
        view_menu.addSeparator()
        self.wireframe_action = QAction("&Wireframe", self, checkable=True)
        self.wireframe_action.setShortcut(QKeySequence("W"))
        self.wireframe_action.setChecked(self.model.wireframe)
        self.wireframe_action.toggled.connect(self._on_wireframe_changed)
        view_menu.addAction(self.wireframe_action)
        self.cameras_action = QAction("Show &Cameras", self, checkable=True)
        self.cameras_action.setShortcut(QKeySequence("C"))
        self.cameras_action.setChecked(self.model.show_cameras)
        self.cameras_action.toggled.connect(self._on_show_cameras_changed)
        view_menu.addAction(self.cameras_action)
        view_menu.addSeparator()
        view_menu.addAction(self.result_dock.toggleViewAction())

    # -- opening -------------------------------------------------------------------------------
    def open_path(self, path: str | Path) -> bool:
        """Open a result folder, mesh file or capture folder. False (and a message) on failure.

        Returns once the source is resolved; the mesh arrives later (``mesh_shown``).
        """
        try:
            self.model.open(path)
        except OpenError as exc:
            self._show_error(str(exc))
            return False
        return True

    @property
    def is_loading(self) -> bool:
        """True while a mesh of the current source is still being read."""
        src = self.model.source
        return (
            src is not None
            and src.mesh_path is not None
            and self.model.mesh_info is None
            and self.model.mesh_error is None
        )

    def _start_mesh_load(self, path: Path) -> None:
        self._request += 1
        self.thread_pool.start(MeshLoadJob(self._request, path, self._load_signals))

    @Slot(int, object)
    def _on_mesh_loaded(self, request: int, mesh: pv.PolyData) -> None:
        if request != self._request or self.model.source is None:
            return  # a reply to something no longer open
        has_colors = COLOR_ARRAY in mesh.point_data
        if has_colors:
            # Baked colours already hold the shading: draw them unlit.
            self.mesh_actor = self.viewport.add_mesh(
                mesh,
                scalars=COLOR_ARRAY,
                rgb=True,
                lighting=False,
                show_scalar_bar=False,
                name="mesh",
                reset_camera=False,
                render=False,
            )
        else:
            self.mesh_actor = self.viewport.add_mesh(
                mesh, color=PLAIN_COLOR, specular=0.2, name="mesh", reset_camera=False, render=False
            )
        self._apply_display()
        self._reset_camera()
        self.model.set_mesh_info(
            MeshInfo(
                n_points=int(mesh.n_points),
                n_cells=int(mesh.n_cells),
                has_colors=has_colors,
                bounds=tuple(float(b) for b in mesh.bounds),
            )
        )
        self.mesh_shown.emit(str(self.model.source.mesh_path))

    @Slot(int, str)
    def _on_mesh_failed(self, request: int, message: str) -> None:
        if request != self._request:
            return
        self.model.set_mesh_error(message)
        self._show_error(message)

    def _show_error(self, message: str) -> None:
        self.last_error = message
        self.status_label.setText(message)
        self.load_failed.emit(message)
        if self.isVisible():
            box = QMessageBox(
                QMessageBox.Icon.Warning,
                "ReconStudio",
                message,
                QMessageBox.StandardButton.Ok,
                self,
            )
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            box.open()  # window-modal but does not block the caller

    # -- model -> view -------------------------------------------------------------------------
    def _on_model_changed(self, change: str) -> None:
        if change == "source":
            self._show_source()
        elif change == "display":
            # display toggles change no panel content: only the actions and the status line
            self._apply_display()
            self.viewport.render()
            self._refresh_actions()
            return
        self._refresh_panels()

    def _show_source(self) -> None:
        """Clear the scene and draw the new source: cameras now, the mesh when it is read."""
        source = self.model.source
        self._request += 1  # any job still running answers an outdated request
        for actor in (self.mesh_actor, self.cameras_actor):
            if actor is not None:
                self.viewport.remove_actor(actor, render=False)
        self.mesh_actor = self.cameras_actor = None
        self.setWindowTitle(self.model.title)
        if source is None:
            return
        if source.cameras_json is not None:
            try:
                frustums = camera_frustums(source.cameras_json)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                self.last_error = f"cameras in {source.cameras_json.name} not drawn: {exc}"
            else:
                if frustums.n_points:
                    self.cameras_actor = self.viewport.add_mesh(
                        frustums,
                        color=FRUSTUM_COLOR,
                        line_width=1.5,
                        lighting=False,
                        name="cameras",
                        reset_camera=False,
                        render=False,
                    )
        if source.mesh_path is not None:
            self._start_mesh_load(source.mesh_path)
        self._apply_display()
        self._reset_camera()

    def _apply_display(self) -> None:
        if self.mesh_actor is not None:
            self.mesh_actor.prop.style = "wireframe" if self.model.wireframe else "surface"
        if self.cameras_actor is not None:
            self.cameras_actor.SetVisibility(self.model.show_cameras)

    def _refresh_panels(self) -> None:
        tree = self.result_tree
        tree.clear()
        source = self.model.source
        if source is None:
            QTreeWidgetItem(tree, ["Nothing open", "File > Open, or drop a folder or mesh"])
        else:
            top = QTreeWidgetItem(tree, [KIND_LABELS[source.kind], str(source.path)])
            top.setToolTip(1, str(source.path))
            for title, rows in (
                ("Files", self.model.file_rows()),
                ("Geometry", self.model.geometry_rows()),
            ):
                if rows:
                    section = QTreeWidgetItem(tree, [title, ""])
                    for label, value in rows:
                        QTreeWidgetItem(section, [label, value])
                    section.setExpanded(True)
            metric_rows = self.model.metric_rows()
            if metric_rows:
                section = QTreeWidgetItem(tree, ["Metrics", ""])
                for label, value, children in metric_rows:
                    item = QTreeWidgetItem(section, [label, value])
                    item.setToolTip(1, value)
                    for child_label, child_value in children:
                        QTreeWidgetItem(item, [child_label, child_value])
                section.setExpanded(True)
            if source.notes:
                section = QTreeWidgetItem(tree, ["Notes", ""])
                for note in source.notes:
                    item = QTreeWidgetItem(section, ["", note])
                    item.setToolTip(1, note)
                section.setExpanded(True)
        self._refresh_actions()

    def _refresh_actions(self) -> None:
        self.status_label.setText(self.model.status_text())
        for action, checked in (
            (self.wireframe_action, self.model.wireframe),
            (self.cameras_action, self.model.show_cameras),
        ):
            if action.isChecked() != checked:
                action.blockSignals(True)
                action.setChecked(checked)
                action.blockSignals(False)
        self.cameras_action.setEnabled(self.cameras_actor is not None)

    def result_rows(self) -> list[tuple[str, ...]]:
        """Every row of the Result panel as (section, label, value), depth first."""
        rows = []

        def walk(item: QTreeWidgetItem, section: str) -> None:
            for i in range(item.childCount()):
                child = item.child(i)
                rows.append((section, child.text(0), child.text(1)))
                walk(child, section)

        for i in range(self.result_tree.topLevelItemCount()):
            top = self.result_tree.topLevelItem(i)
            rows.append(("", top.text(0), top.text(1)))
            walk(top, top.text(0))
        return rows

    # -- camera --------------------------------------------------------------------------------
    def _reset_camera(self) -> None:
        """Frame the mesh (else whatever is visible) from the preview's direction, +Z up."""
        renderer = self.viewport.renderer
        if self.mesh_actor is not None and self.mesh_actor.GetVisibility():
            bounds = self.mesh_actor.GetBounds()
        else:
            bounds = renderer.ComputeVisiblePropBounds()
        if bounds[0] <= bounds[1]:
            corners = np.array(list(itertools.product(bounds[0:2], bounds[2:4], bounds[4:6])))
            width, height = max(self.viewport.width(), 1), max(self.viewport.height(), 1)
            fit_camera(renderer.GetActiveCamera(), corners, width / height, margin=1.1)
            renderer.ResetCameraClippingRange()
        self.viewport.render()

    # -- actions ---------------------------------------------------------------------------------
    @Slot()
    def _on_open(self) -> None:
        patterns = " ".join(f"*{s}" for s in MESH_SUFFIXES)
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Open a mesh, result or capture",
            self._dialog_dir(),
            f"Meshes, results and captures ({patterns} metrics.json transforms*.json);;"
            f"Meshes ({patterns});;Results and captures (metrics.json transforms*.json);;"
            "All files (*)",
        )
        if path:
            self.open_path(path)

    @Slot()
    def _on_open_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(
            self, "Open a result folder or a capture", self._dialog_dir()
        )
        if path:
            self.open_path(path)

    def _dialog_dir(self) -> str:
        source = self.model.source
        if source is None:
            return str(Path.cwd())
        return str(source.path.parent)

    @Slot()
    def _on_quit(self) -> None:
        self.close()

    @Slot()
    def _on_reset_view(self) -> None:
        self._reset_camera()

    @Slot(bool)
    def _on_wireframe_changed(self, checked: bool) -> None:
        self.model.set_wireframe(checked)

    @Slot(bool)
    def _on_show_cameras_changed(self, checked: bool) -> None:
        self.model.set_show_cameras(checked)

    # -- drag and drop ---------------------------------------------------------------------------
    @staticmethod
    def dropped_path(mime) -> Path | None:
        """The first local file or folder in a drag's mime data, if any."""
        if mime is None or not mime.hasUrls():
            return None
        for url in mime.urls():
            if url.isLocalFile():
                path = Path(url.toLocalFile())
                if path.exists():
                    return path
        return None

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if self.dropped_path(event.mimeData()) is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        path = self.dropped_path(event.mimeData())
        if path is None:
            event.ignore()
            return
        event.acceptProposedAction()
        self._on_drop(path)

    def _on_drop(self, path: Path) -> None:
        # Open after the drop returns, so the drag source is not kept waiting.
        QTimer.singleShot(0, self, lambda: self.open_path(path))

    # -- closing ---------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        if not self._closed:
            self._closed = True
            self._request += 1  # late replies are dropped
            self.thread_pool.clear()  # jobs not started yet
            self.thread_pool.waitForDone(10_000)  # a read in progress cannot be interrupted
            self.model.disconnect(self._on_model_changed)
            self.viewport.close()  # stops VTK before the GL context goes
        super().closeEvent(event)
