"""The ReconStudio main window: a 3D viewport, Result/Method/Training panels, menus, status bar.

It is a view of an :class:`app.model.ViewerModel`: menu actions and drops call the model,
and :meth:`MainWindow._on_model_changed` brings the panels and the viewport up to date.
Mesh files are read off the GUI thread (a :class:`MeshLoadJob` in the window's
``QThreadPool``); the actor is added on the GUI thread when the job's signal arrives, and
a reply to an older request (the user opened something else meanwhile) is dropped.

Training runs in an :class:`reconstruction.engine.EngineProcess` the window owns (spawned on
the first Start, closed with the window). A 30 ms timer takes its events without waiting
(``events(timeout=0)``); snapshots are kept newest-per-kind and drawn at most
``redraw_interval`` apart by replacing the data of one ``pv.PolyData`` per kind in place.
The method list comes from ``recon methods --json`` in a subprocess and mesh exports run as
``recon export`` subprocesses (``QProcess``), so torch is never imported into this process.
"""

from __future__ import annotations

import itertools
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyvista as pv
from PySide6.QtCore import (
    QObject,
    QProcess,
    QRunnable,
    QSettings,
    Qt,
    QThreadPool,
    QTimer,
    QUrl,
    Signal,
    Slot,
)
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDesktopServices,
    QDragEnterEvent,
    QDropEvent,
    QImage,
    QKeySequence,
    QPixmap,
    QUndoStack,
)
from PySide6.QtWidgets import (
    QDialog,
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

from app.capture import CaptureInfo, info_command, make_thumbnail, parse_capture_info
from app.editor import Editor
from app.model import KIND_LABELS, MESH_SUFFIXES, MeshInfo, OpenError, ViewerModel
from app.panels import CapturePanel, ExportDialog, MethodPanel, TrainingPanel
from app.projects import ProjectManager
from app.scale_tool import ScaleTool
from app.sfm import is_photo_input, left_out, mark_left_out, sfm_command, sfm_error, sfm_output
from app.training import (
    MethodInfo,
    RunRequest,
    TrainingModel,
    catalog_command,
    default_output,
    parse_catalog,
    recon_error,
)
from app.undo import SettingsCommand, ToggleCommand, UndoRecorder
from app.viewport import (
    COLOR_ARRAY,
    bounds_outline,
    curves_polydata,
    edge_points_polydata,
    read_curves,
    read_mesh,
    read_splats,
    snapshot_mesh,
    splat_point_size,
    splats_polydata,
    view_camera,
)
from reconstruction import protocol as P
from reconstruction.engine import CHECKPOINT_NAME, EngineProcess
from render.preview import (
    BACKGROUND,
    FRUSTUM_COLOR,
    PLAIN_COLOR,
    camera_frustums,
    fit_camera,
    frustum_lines,
)

POINTS_COLOR = "#1f6fb2"
"""Colour of the occupancy points shown while training."""
HIGHLIGHT_COLOR = "#d81b60"
"""Colour of the frustum of the image selected in the Capture panel."""
BOUNDS_COLOR = "#4a4f57"
"""Colour of the bounding-box outline (View > Bounding Box)."""
PREVIEW_SIZE = 480
"""Longest side of the larger picture of a selected capture image."""
FRUSTUM_SEGMENTS = ((0, 1), (0, 2), (0, 3), (0, 4), (1, 2), (2, 3), (3, 4), (4, 1),
                    (5, 6), (6, 7), (7, 5))
"""Lines of one frustum as :func:`render.preview.camera_frustums` draws it (8 points)."""
MAX_RECENT = 8
MAX_POINTS = 20_000
"""Training points drawn at most (60k points cost ~50 ms a frame on a software rasteriser)."""
GEOMETRY_KINDS = {"curves": curves_polydata, "edge_points": edge_points_polydata,
                  "splats": splats_polydata}
"""Snapshot kinds drawn by :meth:`MainWindow.show_geometry`, with their converters."""
VIEW_FAILURES = ("view not rendered", "no field to render", "could not load")
"""How the engine's log says a RenderView got no picture."""
_CATALOG: dict[str, MethodInfo] | None = None
"""The method catalogue, once read in this process (it does not change while the app runs)."""


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


class _ImageSignals(QObject):
    """Signals of the thumbnail/preview jobs. Lives on the GUI thread."""

    thumbnail = Signal(int, int, object)  # capture request, image index, QImage or None
    preview = Signal(int, int, object, str)  # capture request, index, QImage or None, message


class ImageJob(QRunnable):
    """Makes thumbnails (or one larger preview) of capture images with Pillow, off the GUI
    thread. Stops between images once `cancel` is set (another capture was opened)."""

    def __init__(self, request: int, items: list[tuple[int, str]], size: int,
                 signals: _ImageSignals, cancel: threading.Event, preview: bool = False) -> None:
        super().__init__()
        self.request, self.items, self.size = request, items, size
        self.signals, self.cancel, self.preview = signals, cancel, preview

    def run(self) -> None:
        for index, path in self.items:
            if self.cancel.is_set():
                return
            message = ""
            try:
                data, w, h = make_thumbnail(path, self.size)
                image = QImage(data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()
            except Exception as exc:  # noqa: BLE001 - any unreadable file gets the broken mark
                image, message = None, f"cannot be shown: {type(exc).__name__}"
            try:
                if self.preview:
                    self.signals.preview.emit(self.request, index, image, message)
                else:
                    self.signals.thumbnail.emit(self.request, index, image)
            except RuntimeError:  # the window is gone
                return


def _frame_key(file_path: str) -> str:
    """A frame's path inside its capture, comparable across spellings ("./train/r_0.png")."""
    p = Path(str(file_path).replace("\\", "/"))
    parts = [x for x in p.with_suffix("").parts if x not in (".", "")]
    return "/".join(parts)


def _frame_index(cameras_json: Path) -> dict[str, int]:
    """Frame key -> index of its frustum in :func:`render.preview.camera_frustums`."""
    try:
        frames = json.loads(Path(cameras_json).read_text()).get("frames", [])
    except (OSError, ValueError, AttributeError):
        return {}
    return {_frame_key(str(f.get("file_path", ""))): i for i, f in enumerate(frames)
            if isinstance(f, dict)}


class MainWindow(QMainWindow):
    """The viewer window. ``open_path`` opens a result folder, a mesh or a capture."""

    mesh_shown = Signal(str)
    """Emitted with the mesh path once its actor is in the viewport."""
    load_failed = Signal(str)
    """Emitted with the message when opening or reading fails."""
    methods_loaded = Signal()
    """Emitted once the method catalogue is in the Method panel."""
    training_state_changed = Signal(str)
    """Emitted with the new state of the run (see :data:`app.training.STATE_LABELS`)."""
    snapshot_shown = Signal(str, int)
    """Emitted with the kind and step of a snapshot once it is drawn."""
    training_finished = Signal(str)
    """Emitted with the result folder when a run has written its outputs."""
    training_failed = Signal(str)
    """Emitted with the message when a run fails or the engine dies."""
    export_finished = Signal(str)
    """Emitted with the written file after an export."""
    export_failed = Signal(str)
    capture_listed = Signal(int)
    """Emitted with the number of images once the Capture panel lists the open capture."""
    thumbnails_done = Signal()
    """Emitted when every thumbnail of the listed capture is in the panel."""
    sfm_finished = Signal(str)
    """Emitted with the capture folder `recon sfm` wrote from dropped photos or a video."""
    sfm_failed = Signal(str)
    """Emitted with the message when `recon sfm` fails."""
    view_rendered = Signal(int)
    """Emitted with the size (longest side, pixels) of a novel view once it is shown."""
    geometry_shown = Signal(str, int)
    """Emitted with the kind ("curves", "edge_points", "splats") and its number of points
    once a result file of that kind is in the viewport."""

    sfm_args: tuple[str, ...] = ()
    """Extra `recon sfm` options for dropped photos (e.g. ("--max-size", "800"))."""
    view_sizes = (32, 96)
    """Longest side of the novel-view preview while the camera moves and once it rests
    (a 96 px view of the sdf field takes ~8 s on two busy CPU cores; a GPU affords more)."""
    view_rest_ms = 300
    """Milliseconds the camera must rest before the sharper novel view is asked for."""
    redraw_interval = 0.2
    """Least seconds between two redraws for snapshots (at most 5 per second)."""
    poll_interval_ms = 30
    engine_niceness = 5
    """Added to the engine process's nice value (the window's event loop comes first)."""
    checkpoint_every = 30.0
    """Seconds between checkpoints of a run (what a restart after a crash resumes from)."""

    def __init__(self, parent: QWidget | None = None, settings: QSettings | None = None) -> None:
        super().__init__(parent)
        self.model = ViewerModel()
        self.settings = settings if settings is not None else QSettings("ReconStudio", "ReconStudio")
        self.training = TrainingModel()
        self.engine: EngineProcess | None = None
        self.methods: dict[str, MethodInfo] | None = None
        self._catalog_process: QProcess | None = None
        self._export_process: QProcess | None = None
        self._export_target: Path | None = None
        self._sfm_process: QProcess | None = None
        self._sfm_out: Path | None = None
        self.live_mesh = pv.PolyData()
        self.live_mesh_actor: pv.Actor | None = None
        self.live_points = pv.PolyData()
        self.points_actor: pv.Actor | None = None
        self.geometry: dict[str, pv.PolyData] = {}
        """Curves, edge points and splats shown now (live or from a result), by kind."""
        self.geometry_actors: dict[str, pv.Actor] = {}
        self.software_gl: bool | None = None  # known once the viewport has a GL context
        self._live_fitted = False
        self._last_draw = 0.0
        self._last_panel = 0.0
        self._log_shown = 0
        self.poll_timer = QTimer(self)
        self.poll_timer.setInterval(self.poll_interval_ms)
        self.poll_timer.timeout.connect(self._on_poll_timer)
        self.thread_pool = QThreadPool(self)
        self.thread_pool.setMaxThreadCount(1)  # one mesh at a time; a newer request wins
        self._load_signals = _LoadSignals(self)
        self._load_signals.loaded.connect(self._on_mesh_loaded)
        self._load_signals.failed.connect(self._on_mesh_failed)
        self._request = 0
        self.mesh_actor: pv.Actor | None = None
        self.mesh_data: pv.PolyData | None = None
        self.cameras_actor: pv.Actor | None = None
        self.last_error: str | None = None
        self._closed = False
        self.capture_info: CaptureInfo | None = None
        self._info_process: QProcess | None = None
        self._capture_request = 0
        self._image_cancel = threading.Event()
        self._thumb_cache: dict[tuple[str, float, int], QImage] = {}
        self._thumbs_missing = 0
        self._image_signals = _ImageSignals(self)
        self._image_signals.thumbnail.connect(self._on_thumbnail_ready)
        self._image_signals.preview.connect(self._on_preview_ready)
        self.highlight_actor: pv.Actor | None = None
        self.bounds_actor: pv.Actor | None = None
        self.bounds_data = pv.PolyData()
        self._frustum_index: dict[str, int] = {}
        self._frustums: pv.PolyData | None = None

        self.undo_stack = QUndoStack(self)
        """Edit > Undo/Redo: method settings and display toggles (geometry edits later)."""
        self._undo = UndoRecorder(self.undo_stack)
        self._settings_baseline: tuple[str, dict] | None = None

        self.view_image: np.ndarray | None = None
        """The latest novel view [H, W, 3] uint8 the field rendered for the viewport's camera."""
        self.view_size = 0
        self._view_request = 0
        self._view_sent = 0.0  # monotonic time of the request in flight (0: none)
        self._view_wanted: int | None = None  # size asked for while one was in flight
        self._last_camera: tuple | None = None
        self.view_timer = QTimer(self)
        self.view_timer.setSingleShot(True)
        self.view_timer.setInterval(self.view_rest_ms)
        self.view_timer.timeout.connect(self._on_camera_rested)

        self.setWindowTitle(self.model.title)
        self.resize(1280, 800)
        self._build_viewport()
        self._build_dock()
        self._build_training_docks()
        self._build_edit_dock()
        self._build_menus()
        self.status_label = QLabel()
        self.statusBar().addWidget(self.status_label, 1)
        self.training_label = QLabel()
        self.statusBar().addPermanentWidget(self.training_label)
        self.setAcceptDrops(True)
        self.model.connect(self._on_model_changed)
        self._refresh_panels()
        self._refresh_training()
        if _CATALOG is not None:
            self._apply_catalog(_CATALOG)

    # -- construction ------------------------------------------------------------------------
    def _build_viewport(self) -> None:
        # auto_update=False: no 5 Hz redraw timer; the window renders after each change.
        self.viewport = QtInteractor(self, auto_update=False)
        # pyvistaqt's own drop handler reads files synchronously and adds them behind the
        # model's back; let drops reach the window instead.
        self.viewport.setAcceptDrops(False)
        # 4x MSAA (pyvista's default) quadruples the fragment work: 127 -> 29 ms a frame for
        # a 200k-face mesh on a software rasteriser. Off here; FXAA instead on a real GPU.
        self.viewport.ren_win.SetMultiSamples(0)
        self._render_quality_set = False
        self.viewport.set_background(BACKGROUND)
        self.viewport.add_axes(interactive=False)
        self._own_viewport_keys()
        self._click_start: tuple[int, int] | None = None
        iren = self.viewport.iren
        iren.add_observer("LeftButtonPressEvent", self._on_viewport_press)
        iren.add_observer("LeftButtonReleaseEvent", self._on_viewport_release)
        self.setCentralWidget(self.viewport)
        self.viewport.renderer.AddObserver("EndEvent", self._on_viewport_rendered)

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
        self.result_dock = self._dock("Result", "result_dock", self.result_tree)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.result_dock)
        self.resizeDocks([self.result_dock], [300], Qt.Orientation.Horizontal)

        self.capture_panel = CapturePanel()
        self.capture_panel.image_selected.connect(self._on_capture_image_changed)
        self.capture_dock = self._dock("Capture", "capture_dock", self.capture_panel)
        self.splitDockWidget(self.result_dock, self.capture_dock, Qt.Orientation.Vertical)
        self.capture_dock.hide()  # shown while a capture is open

    def _dock(self, title: str, name: str, widget: QWidget) -> QDockWidget:
        """A movable, closable dock holding ``widget`` (``name`` keys its saved state)."""
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        return dock

    def _build_training_docks(self) -> None:
        self.method_panel = MethodPanel()
        self.method_panel.start_requested.connect(self._on_start_clicked)
        self.method_panel.pause_requested.connect(self._on_pause_clicked)
        self.method_panel.resume_requested.connect(self._on_resume_clicked)
        self.method_panel.stop_requested.connect(self._on_stop_clicked)
        self.method_panel.restart_requested.connect(self._on_restart_clicked)
        self.method_panel.settings_form.changed.connect(self._on_settings_changed)
        self.method_panel.method_changed.connect(self._on_method_changed)
        self.method_dock = self._dock("Method", "method_dock", self.method_panel)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.method_dock)
        self.resizeDocks([self.method_dock], [310], Qt.Orientation.Horizontal)

        self.view_label = QLabel("The field's own picture of this view appears here while "
                                 "it trains, or for a result with a checkpoint")
        self.view_label.setWordWrap(True)
        self.view_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.view_label.setMinimumSize(200, 140)
        self.view_dock = self._dock("Novel View", "view_dock", self.view_label)
        self.splitDockWidget(self.method_dock, self.view_dock, Qt.Orientation.Vertical)

        self.training_panel = TrainingPanel()
        self.training_dock = self._dock("Training", "training_dock", self.training_panel)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.training_dock)
        self.resizeDocks([self.training_dock], [210], Qt.Orientation.Vertical)

    def _build_edit_dock(self) -> None:
        self.projects = ProjectManager(self)
        """The open project (File > Save Project As / Open Project), autosaved."""
        self.editor = Editor(self)
        """Edits of the open result (curves, cage, crop) on :attr:`undo_stack`."""
        self.editor.panel.export_button.clicked.connect(self._on_export_edits_clicked)
        self.editor.edited.connect(self.projects.mark_changed)
        self.edit_dock = self._dock("Edit", "edit_dock", self.editor.panel)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.edit_dock)
        self.tabifyDockWidget(self.method_dock, self.edit_dock)
        self.method_dock.raise_()

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
        self.open_project_action = QAction("Open &Project...", self)
        self.open_project_action.setStatusTip("Open a NAME.recon project: its result, method, "
                                              "settings, edits and view")
        self.open_project_action.triggered.connect(self._on_open_project)
        file_menu.addAction(self.open_project_action)
        self.save_project_action = QAction("Save Project &As...", self)
        self.save_project_action.setShortcut(QKeySequence("Ctrl+Shift+P"))
        self.save_project_action.setStatusTip("Keep this capture, method, settings, result and "
                                              "edits in a NAME.recon folder (autosaved)")
        self.save_project_action.triggered.connect(self._on_save_project)
        file_menu.addAction(self.save_project_action)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._on_recent_menu_shown)
        self._on_recent_menu_shown()
        file_menu.addSeparator()
        self.export_action = QAction("&Export Mesh...", self)
        self.export_action.setShortcut(QKeySequence("Ctrl+E"))
        self.export_action.setStatusTip("Write the result's mesh as PLY, OBJ, GLB or STL")
        self.export_action.triggered.connect(self._on_export_clicked)
        file_menu.addAction(self.export_action)
        self.export_edits_action = QAction("Export E&dited Result...", self)
        self.export_edits_action.setStatusTip("Write the edited mesh and curves in every format "
                                              "(recon edit)")
        self.export_edits_action.triggered.connect(self._on_export_edits_clicked)
        file_menu.addAction(self.export_edits_action)
        self.screenshot_action = QAction("Save &Screenshot...", self)
        self.screenshot_action.setShortcut(QKeySequence("Ctrl+Shift+S"))
        self.screenshot_action.setStatusTip("Save the 3D view as a PNG")
        self.screenshot_action.triggered.connect(self._on_screenshot_clicked)
        file_menu.addAction(self.screenshot_action)
        file_menu.addSeparator()
        self.quit_action = QAction("&Quit", self)
        self.quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        self.quit_action.triggered.connect(self._on_quit)
        file_menu.addAction(self.quit_action)

        edit_menu = self.menuBar().addMenu("&Edit")
        self.undo_action = self.undo_stack.createUndoAction(self, "&Undo")
        self.undo_action.setShortcut(QKeySequence.StandardKey.Undo)
        edit_menu.addAction(self.undo_action)
        self.redo_action = self.undo_stack.createRedoAction(self, "&Redo")
        self.redo_action.setShortcut(QKeySequence.StandardKey.Redo)
        edit_menu.addAction(self.redo_action)
        edit_menu.addSeparator()
        self.scale_tool = ScaleTool(self)
        self.scale_action = QAction("Set &Scale from Two Points...", self)
        self.scale_action.setStatusTip("Pick two points whose distance you know: the capture "
                                       "is rescaled to metres (recon scale)")
        self.scale_action.triggered.connect(self._on_scale_clicked)
        edit_menu.addAction(self.scale_action)
        self.measure_action = QAction("&Measure Distance", self)
        self.measure_action.setShortcut(QKeySequence("M"))
        self.measure_action.setStatusTip("Pick two points: their distance shows in the status bar")
        self.measure_action.triggered.connect(self._on_measure_clicked)
        edit_menu.addAction(self.measure_action)
        self.scale_measured_action = QAction("Set Scale from the &Measured Points...", self)
        self.scale_measured_action.setStatusTip("Give the measured distance its real length in "
                                                "metres: the capture is rescaled (recon scale)")
        self.scale_measured_action.triggered.connect(self._on_scale_measured_clicked)
        self.scale_measured_action.setEnabled(False)
        self.scale_tool.measured.connect(
            lambda _d: self.scale_measured_action.setEnabled(self._capture_path() is not None))
        edit_menu.addAction(self.scale_measured_action)
        edit_menu.addSeparator()
        edit_menu.addAction(self.edit_dock.toggleViewAction())

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
        self.colors_action = QAction("Vertex C&olours", self, checkable=True)
        self.colors_action.setShortcut(QKeySequence("O"))
        self.colors_action.setChecked(self.model.show_colors)
        self.colors_action.setStatusTip("Off: the mesh in one plain, lit colour (shows its shape)")
        self.colors_action.toggled.connect(self._on_show_colors_changed)
        view_menu.addAction(self.colors_action)
        self.bounds_action = QAction("&Bounding Box", self, checkable=True)
        self.bounds_action.setShortcut(QKeySequence("B"))
        self.bounds_action.setChecked(self.model.show_bounds)
        self.bounds_action.setStatusTip("Outline the box that holds the shown geometry")
        self.bounds_action.toggled.connect(self._on_show_bounds_changed)
        view_menu.addAction(self.bounds_action)
        self.cameras_action = QAction("Show &Cameras", self, checkable=True)
        self.cameras_action.setShortcut(QKeySequence("C"))
        self.cameras_action.setChecked(self.model.show_cameras)
        self.cameras_action.toggled.connect(self._on_show_cameras_changed)
        view_menu.addAction(self.cameras_action)
        self.points_action = QAction("Show Training &Points", self, checkable=True)
        self.points_action.setShortcut(QKeySequence("P"))
        self.points_action.setChecked(True)
        self.points_action.setStatusTip("Occupied cells of the field while it trains")
        self.points_action.toggled.connect(self._on_show_points_changed)
        view_menu.addAction(self.points_action)
        view_menu.addSeparator()
        view_menu.addAction(self.result_dock.toggleViewAction())
        view_menu.addAction(self.capture_dock.toggleViewAction())
        view_menu.addAction(self.method_dock.toggleViewAction())
        view_menu.addAction(self.training_dock.toggleViewAction())
        view_menu.addAction(self.view_dock.toggleViewAction())
        view_menu.addAction(self.edit_dock.toggleViewAction())

        train_menu = self.menuBar().addMenu("&Training")
        self.start_action = QAction("&Start", self)
        self.start_action.setShortcut(QKeySequence("Ctrl+Return"))
        self.start_action.triggered.connect(self._on_start_clicked)
        self.pause_action = QAction("&Pause", self)
        self.pause_action.triggered.connect(self._on_pause_clicked)
        self.resume_action = QAction("&Resume", self)
        self.resume_action.triggered.connect(self._on_resume_clicked)
        self.stop_action = QAction("S&top", self)
        self.stop_action.triggered.connect(self._on_stop_clicked)
        self.restart_action = QAction("Restart &Engine and Resume", self)
        self.restart_action.setStatusTip("After a crash: a new engine, from the last checkpoint")
        self.restart_action.triggered.connect(self._on_restart_clicked)
        self.continue_action = QAction("&Continue Project Run", self)
        self.continue_action.setStatusTip("Resume the open project's run from its last save")
        self.continue_action.triggered.connect(self.continue_project_run)
        for action in (self.start_action, self.pause_action, self.resume_action,
                       self.stop_action, self.restart_action, self.continue_action):
            train_menu.addAction(action)

        help_menu = self.menuBar().addMenu("&Help")
        self.docs_action = QAction("&Documentation", self)
        self.docs_action.setShortcut(QKeySequence.StandardKey.HelpContents)
        self.docs_action.triggered.connect(self._on_docs_clicked)
        help_menu.addAction(self.docs_action)
        self.shortcuts_action = QAction("&Keyboard Shortcuts", self)
        self.shortcuts_action.triggered.connect(self._on_shortcuts_clicked)
        help_menu.addAction(self.shortcuts_action)
        help_menu.addSeparator()
        self.about_action = QAction("&About ReconStudio", self)
        self.about_action.triggered.connect(self._on_about_clicked)
        help_menu.addAction(self.about_action)

    # -- opening -------------------------------------------------------------------------------
    def open_path(self, path: str | Path) -> bool:
        """Open a result folder, mesh file or capture folder. False (and a message) on failure.

        Returns once the source is resolved; the mesh arrives later (``mesh_shown``).
        Plain photos (a folder without camera file) or a video go through `recon sfm` first.
        """
        if Path(path).name == "project.json":  # File > Open on a project's own file
            path = Path(path).parent
        if self.projects.is_project(path):
            return self.projects.open(path)
        folder = self.projects.folder
        if folder is not None and folder.resolve() not in Path(path).resolve().parents:
            self.projects.close()  # something outside the project: saved, then left
            self.projects.folder = self.projects.data = None
        if is_photo_input(Path(path)):
            return self.run_sfm(Path(path))
        return self.model_open(path)

    def model_open(self, path: str | Path) -> bool:
        """Open a result, mesh or capture (no project or SfM handling)."""
        try:
            self.model.open(path)
        except OpenError as exc:
            self._show_error(str(exc))
            return False
        return True

    # -- structure from motion ----------------------------------------------------------------
    def run_sfm(self, path: Path, out: Path | None = None) -> bool:
        """`recon sfm PATH --out <PATH>_capture` in a subprocess; the capture opens after it."""
        if self._sfm_process is not None:
            self._show_error("Camera recovery (SfM) is already running; wait for it to finish")
            return False
        out = Path(out) if out else sfm_output(path)
        program, args = sfm_command(path, out)
        args += list(self.sfm_args)
        proc = QProcess(self)
        proc.readyReadStandardError.connect(self._on_sfm_output_changed)
        proc.finished.connect(self._on_sfm_process_finished)
        self._sfm_process, self._sfm_out, self._sfm_err = proc, out, []
        self.status_label.setText(f"Recovering cameras of {path.name} (SfM)...")
        self._log("info", f"recon sfm {path} --out {out}")
        bar = self.training_panel.progress_bar
        bar.setRange(0, 0)  # busy: SfM reports stages, not a fraction
        proc.start(program, args)
        return True

    @property
    def sfm_running(self) -> bool:
        return self._sfm_process is not None

    @Slot()
    def _on_sfm_output_changed(self) -> None:
        proc = self._sfm_process
        if proc is None:
            return
        text = bytes(proc.readAllStandardError()).decode(errors="replace")
        for line in text.splitlines():
            line = line.strip()
            if not line:
                continue
            self._sfm_err.append(line)
            if not line.startswith(("Traceback", "File ")):
                self._log("warning" if line.startswith(("warning", "recon: error")) else "info",
                          f"sfm: {line}")
                self.status_label.setText(f"SfM: {line}")

    @Slot(int, QProcess.ExitStatus)
    def _on_sfm_process_finished(self, code: int, _status) -> None:
        proc, self._sfm_process = self._sfm_process, None
        if proc is None or self._closed:
            return
        self._on_sfm_output_changed_from(proc)
        proc.deleteLater()
        bar = self.training_panel.progress_bar
        bar.setRange(0, 100)
        out = self._sfm_out
        if code != 0 or out is None:
            message = sfm_error("\n".join(self._sfm_err), code)
            self._show_error(f"Camera recovery failed: {message}")
            self.sfm_failed.emit(message)
            return
        self._log("info", f"capture written to {out}")
        if self.open_path(out):
            self.sfm_finished.emit(str(out))

    def _on_sfm_output_changed_from(self, proc: QProcess) -> None:
        """Whatever the finished process wrote since the last read."""
        self._sfm_process = proc
        try:
            self._on_sfm_output_changed()
        finally:
            self._sfm_process = None

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
        self.mesh_data = mesh  # what the actor draws (edits replace its points or cells)
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
        self.projects.mesh_shown()  # a project's own camera, once its mesh is there
        if self.editor.doc is not None:
            self.editor.refresh()  # edits made before the mesh was read
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
            self._refresh_training()  # Start depends on having a capture
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
        for actor in (self.mesh_actor, self.cameras_actor, self.highlight_actor,
                      self.bounds_actor):
            if actor is not None:
                self.viewport.remove_actor(actor, render=False)
        self.mesh_actor = self.cameras_actor = self.highlight_actor = self.bounds_actor = None
        self.mesh_data = None
        self._frustums = None
        self._frustum_index = {}
        self.editor.reset()
        self._clear_live()
        self._clear_capture()
        self.setWindowTitle(self.model.title)
        if source is None:
            return
        if source.kind == "capture":
            self._remember_capture(source.path)
        if self._capture_path() is not None:
            self.load_methods()
        if source.cameras_json is not None:
            try:
                frustums = camera_frustums(source.cameras_json)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                self.last_error = f"cameras in {source.cameras_json.name} not drawn: {exc}"
            else:
                if frustums.n_points:
                    self._frustums = frustums
                    self._frustum_index = _frame_index(source.cameras_json)
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
        if source.kind == "result":
            self._show_result_geometry(source.path)
        if source.kind == "capture":
            self._describe_capture(source.path)
        self._apply_display()
        self._reset_camera()

    # -- capture panel ---------------------------------------------------------------------------
    def _clear_capture(self) -> None:
        """Forget the listed capture: its description, pending thumbnails, the panel."""
        self._capture_request += 1
        self._image_cancel.set()  # running jobs stop after their current image
        self._image_cancel = threading.Event()
        self.capture_info = None
        proc, self._info_process = self._info_process, None
        if proc is not None and proc.state() != QProcess.ProcessState.NotRunning:
            proc.finished.disconnect()
            proc.kill()
            proc.waitForFinished(2000)
        self.capture_panel.set_message("No capture open")
        self.capture_dock.hide()
        if getattr(self, "sparse_actor", None) is not None:
            self.viewport.remove_actor(self.sparse_actor, render=False)
            self.sparse_actor = None
        if getattr(self, "scale_tool", None) is not None:
            self.scale_tool.cancel()

    def _describe_capture(self, path: Path) -> None:
        """`recon info PATH --json` in a subprocess; the panel fills when it answers."""
        self.capture_panel.set_message(f"Reading {path.name}...")
        if not self.capture_dock.isVisible():
            self.capture_dock.show()
            self.resizeDocks([self.result_dock, self.capture_dock], [160, 520],
                             Qt.Orientation.Vertical)
        proc = QProcess(self)
        request = self._capture_request
        proc.finished.connect(
            lambda code, _status, p=proc, r=request, c=path: self._on_info_finished(p, r, c, code)
        )
        self._info_process = proc
        cmd = info_command(path)
        proc.start(cmd[0], cmd[1:])

    def _on_info_finished(self, proc: QProcess, request: int, path: Path, code: int) -> None:
        if self._info_process is proc:
            self._info_process = None
        out = bytes(proc.readAllStandardOutput()).decode(errors="replace")
        err = bytes(proc.readAllStandardError()).decode(errors="replace").strip()
        proc.deleteLater()
        if self._closed or request != self._capture_request:
            return  # the window moved on
        try:
            if code != 0:
                raise ValueError(recon_error(err, code))
            info = parse_capture_info(out, path)
        except ValueError as exc:
            self.capture_panel.set_message(f"This capture cannot be trained on: {exc}")
            self._log("warning", f"capture {path.name}: {exc}")
            return
        self.show_capture_info(info)

    @Slot()
    def _on_scale_clicked(self) -> None:
        self.scale_tool.start()

    def _draw_sparse_points(self, info: CaptureInfo) -> None:
        """The capture's sparse SfM points (a sample), to see the scene and pick on it."""
        if info.points is None or not len(info.points):
            return
        cloud = pv.PolyData(np.asarray(info.points, dtype=np.float32))
        self.sparse_actor = self.viewport.add_mesh(
            cloud, color=POINTS_COLOR, point_size=3, name="sparse_points", lighting=False,
            reset_camera=False, render=False)

    def _draw_info_frustums(self, info: CaptureInfo) -> None:
        """Cameras of a capture without a transforms file (COLMAP, IDR/DTU), from the
        cameras `recon info --json` reports."""
        posed = [im for im in info.images if im.c2w is not None and im.status != "skipped"]
        if not posed:
            return
        w, h = info.resolution
        frustums = frustum_lines(np.array([im.c2w for im in posed]), posed[0].fov_x or 0.69,
                                 w / h if w and h else 1.0)
        self._frustums = frustums
        self._frustum_index = {_frame_key(im.file_path): i for i, im in enumerate(posed)}
        self.cameras_actor = self.viewport.add_mesh(
            frustums, color=FRUSTUM_COLOR, line_width=1.5, lighting=False, name="cameras",
            reset_camera=False, render=False)
        self._apply_display()
        self._reset_camera()

    def show_capture_info(self, info: CaptureInfo) -> None:
        """List the capture's images; thumbnails follow from the thread pool."""
        info = mark_left_out(info, left_out(info.root))
        self.capture_info = info
        self.capture_panel.set_info(info)
        self._draw_sparse_points(info)
        if self._frustums is None:
            self._draw_info_frustums(info)
        for problem in info.problems:
            self._log("warning", f"skipped {problem}")
        todo = []
        size = self.capture_panel.thumb_size
        for i, image in enumerate(info.images):
            if not image.path:
                continue
            cached = self._thumb_cache.get(self._thumb_key(image.path, size))
            if cached is not None:
                self.capture_panel.set_thumbnail(i, cached)
            else:
                todo.append((i, image.path))
        self._thumbs_missing = len(todo)
        self.capture_listed.emit(len(info.images))
        if todo:
            self.thread_pool.start(ImageJob(self._capture_request, todo, size,
                                            self._image_signals, self._image_cancel))
        else:
            self.thumbnails_done.emit()

    @staticmethod
    def _thumb_key(path: str, size: int) -> tuple[str, float, int]:
        try:
            mtime = Path(path).stat().st_mtime
        except OSError:
            mtime = -1.0
        return (path, mtime, size)

    @Slot(int, int, object)
    def _on_thumbnail_ready(self, request: int, index: int, image) -> None:
        if request != self._capture_request or self.capture_info is None:
            return
        path = self.capture_info.images[index].path
        if image is not None:
            self._thumb_cache[self._thumb_key(path, self.capture_panel.thumb_size)] = image
        self.capture_panel.set_thumbnail(index, image)
        self._thumbs_missing -= 1
        if self._thumbs_missing == 0:
            self.thumbnails_done.emit()

    @Slot(int)
    def _on_capture_image_changed(self, index: int) -> None:
        """A clicked image: shown larger (read off the GUI thread), its frustum highlighted."""
        info = self.capture_info
        if info is None or not 0 <= index < len(info.images):
            return
        image = info.images[index]
        if image.path:
            thumb = self._thumb_cache.get(self._thumb_key(image.path, self.capture_panel.thumb_size))
            if thumb is not None:  # at once, until the sharper preview arrives
                self.capture_panel.set_preview(index, thumb)
            self.thread_pool.start(ImageJob(self._capture_request, [(index, image.path)],
                                            PREVIEW_SIZE, self._image_signals,
                                            self._image_cancel, preview=True))
        else:
            self.capture_panel.set_preview(index, None)
        self.highlight_frustum(self._frustum_of(image))

    @Slot(int, int, object, str)
    def _on_preview_ready(self, request: int, index: int, image, message: str) -> None:
        if request == self._capture_request:
            self.capture_panel.set_preview(index, image, message)

    def _frustum_of(self, image) -> int | None:
        """Index of the drawn frustum of a capture image (None: its camera is not drawn)."""
        keys = [_frame_key(image.file_path)] if image.file_path else []
        if image.path and self.capture_info is not None:
            try:
                rel = Path(image.path).resolve().relative_to(self.capture_info.root.resolve())
                keys.append(_frame_key(str(rel)))
            except (ValueError, OSError):
                pass
        return next((self._frustum_index[k] for k in keys if k in self._frustum_index), None)

    def highlight_frustum(self, index: int | None) -> None:
        """Draw camera `index`'s frustum in the highlight colour (None: no highlight)."""
        if self.highlight_actor is not None:
            self.viewport.remove_actor(self.highlight_actor, render=False)
            self.highlight_actor = None
        self._highlighted = index
        frustums = self._frustums
        n = len(self._frustum_index)
        if index is not None and frustums is not None and n and frustums.n_points % n == 0:
            per = frustums.n_points // n
            pts = np.asarray(frustums.points[index * per:(index + 1) * per])
            lines = np.array([[2, a, b] for a, b in FRUSTUM_SEGMENTS if max(a, b) < per]).ravel()
            self.highlight_actor = self.viewport.add_mesh(
                pv.PolyData(pts, lines=lines), color=HIGHLIGHT_COLOR, line_width=4.0,
                lighting=False, name="highlight", reset_camera=False, render=False,
            )
            self.highlight_actor.SetPickable(False)
            self.highlight_actor.SetVisibility(self.model.show_cameras)
        self.viewport.render()

    def _on_viewport_press(self, *_args) -> None:
        self._click_start = tuple(self.viewport.iren.get_event_position())

    def _on_viewport_release(self, *_args) -> None:
        start, self._click_start = self._click_start, None
        pos = tuple(self.viewport.iren.get_event_position())
        if start is not None and abs(pos[0] - start[0]) + abs(pos[1] - start[1]) <= 3:
            # a click, not the end of a rotation
            if self.editor.picking_curves:
                self.editor.pick_curve_at(*pos)
            else:
                self.pick_camera_at(*pos)

    def pick_camera_at(self, x: int, y: int) -> int | None:
        """The camera whose frustum is under display pixel (x, y) (VTK's origin bottom left):
        highlighted, and its image selected in the Capture panel. None when there is none."""
        actor, frustums = self.cameras_actor, self._frustums
        n = len(self._frustum_index)
        if actor is None or not actor.GetVisibility() or frustums is None or not n:
            return None
        import vtk

        picker = vtk.vtkCellPicker()
        picker.SetTolerance(0.01)
        picker.PickFromListOn()
        picker.AddPickList(actor)
        if not picker.Pick(x, y, 0, self.viewport.renderer) or picker.GetCellId() < 0:
            return None
        index = int(picker.GetCellId()) // (frustums.n_cells // n)
        rows = [self._frustum_of(im) for im in self.capture_info.images] if self.capture_info else []
        if index in rows:
            self.capture_panel.select(rows.index(index))  # previews and highlights
        else:
            self.highlight_frustum(index)
        return index

    @property
    def highlighted_frustum(self) -> int | None:
        """Index of the highlighted camera, if any (for tests and scripts)."""
        return getattr(self, "_highlighted", None) if self.highlight_actor is not None else None

    def _apply_display(self) -> None:
        model = self.model
        for actor in (self.mesh_actor, self.live_mesh_actor):
            if actor is None:
                continue
            actor.prop.style = "wireframe" if model.wireframe else "surface"
            data = actor.mapper.dataset
            has_colors = data is not None and COLOR_ARRAY in data.point_data
            if has_colors:
                # colours hold their own shading (unlit); the plain colour needs the light
                actor.mapper.scalar_visibility = model.show_colors
                actor.prop.lighting = not model.show_colors
                if not model.show_colors:
                    actor.prop.color = PLAIN_COLOR
        if self.cameras_actor is not None:
            self.cameras_actor.SetVisibility(model.show_cameras)
        if self.highlight_actor is not None:
            self.highlight_actor.SetVisibility(model.show_cameras)
        self._update_bounds()

    def shown_bounds(self):
        """Bounds of the geometry in view: the mesh, else the live mesh, else the cameras."""
        if self.live_mesh_actor is not None and self.live_mesh.n_cells and (
            self.mesh_actor is None or not self.mesh_actor.GetVisibility()
        ):
            return self.live_mesh.bounds
        if self.mesh_actor is not None:
            return self.mesh_actor.GetBounds()
        shown = [g.bounds for g in self.geometry.values() if g.n_points]
        if shown:
            b = np.array(shown)
            return (b[:, 0].min(), b[:, 1].max(), b[:, 2].min(), b[:, 3].max(),
                    b[:, 4].min(), b[:, 5].max())
        if self.cameras_actor is not None:
            return self.cameras_actor.GetBounds()
        return None

    def _update_bounds(self) -> None:
        """The bounding-box outline follows the shown geometry (replaced in place)."""
        bounds = self.shown_bounds() if self.model.show_bounds else None
        if bounds is None or bounds[0] > bounds[1]:
            if self.bounds_actor is not None:
                self.viewport.remove_actor(self.bounds_actor, render=False)
                self.bounds_actor = None
            return
        self.bounds_data.shallow_copy(bounds_outline(bounds))
        if self.bounds_actor is None:
            self.bounds_actor = self.viewport.add_mesh(
                self.bounds_data, color=BOUNDS_COLOR, line_width=1.0, lighting=False,
                name="bounds", reset_camera=False, render=False,
            )
            self.bounds_actor.SetPickable(False)
        self.bounds_data.Modified()

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
            (self.bounds_action, self.model.show_bounds),
            (self.colors_action, self.model.show_colors),
        ):
            if action.isChecked() != checked:
                action.blockSignals(True)
                action.setChecked(checked)
                action.blockSignals(False)
        self.cameras_action.setEnabled(self.cameras_actor is not None)
        src = self.model.source
        self.export_action.setEnabled(
            src is not None and src.kind == "result" and src.mesh_path is not None
            and self._export_process is None
        )
        self.export_edits_action.setEnabled(self.editor.editable_path() is not None)

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
        elif self.live_mesh_actor is not None and self.live_mesh.n_cells:
            bounds = self.live_mesh.bounds
        else:
            bounds = renderer.ComputeVisiblePropBounds()
        self._fit_bounds(bounds)

    def _fit_bounds(self, bounds) -> None:
        renderer = self.viewport.renderer
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
            "Open a mesh, result, capture or project",
            self._dialog_dir(),
            f"Meshes, results, captures and projects ({patterns} metrics.json transforms*.json "
            f"project.json);;"
            f"Meshes ({patterns});;Results and captures (metrics.json transforms*.json);;"
            "Projects (project.json);;"
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
        self._undo.push(ToggleCommand(self._undo, self.wireframe_action, checked))
        self.model.set_wireframe(checked)

    @Slot(bool)
    def _on_show_cameras_changed(self, checked: bool) -> None:
        self._undo.push(ToggleCommand(self._undo, self.cameras_action, checked))
        self.model.set_show_cameras(checked)

    @Slot(bool)
    def _on_show_bounds_changed(self, checked: bool) -> None:
        self._undo.push(ToggleCommand(self._undo, self.bounds_action, checked))
        self.model.set_show_bounds(checked)

    @Slot(bool)
    def _on_show_colors_changed(self, checked: bool) -> None:
        self._undo.push(ToggleCommand(self._undo, self.colors_action, checked))
        self.model.set_show_colors(checked)

    # -- method catalogue ----------------------------------------------------------------------
    def load_methods(self) -> None:
        """Read the method catalogue (`recon methods --json`) in a subprocess, once per app."""
        if self.methods is not None or self._catalog_process is not None:
            return
        if _CATALOG is not None:
            self._apply_catalog(_CATALOG)
            return
        proc = QProcess(self)
        proc.finished.connect(self._on_catalog_finished)
        proc.errorOccurred.connect(self._on_catalog_error)
        self._catalog_process = proc
        cmd = catalog_command()
        proc.start(cmd[0], cmd[1:])

    @Slot(int, QProcess.ExitStatus)
    def _on_catalog_finished(self, code: int, _status) -> None:
        global _CATALOG
        proc, self._catalog_process = self._catalog_process, None
        if proc is None or self._closed:
            return
        out = bytes(proc.readAllStandardOutput()).decode(errors="replace")
        err = bytes(proc.readAllStandardError()).decode(errors="replace").strip()
        proc.deleteLater()
        try:
            if code != 0:
                raise ValueError(err.splitlines()[-1] if err else f"exit code {code}")
            catalog = parse_catalog(out)
        except ValueError as exc:
            self._log("error", f"the method list could not be read: {exc}")
            self.status_label.setText(f"Training is unavailable: {exc}")
            return
        _CATALOG = catalog
        self._apply_catalog(catalog)

    @Slot(QProcess.ProcessError)
    def _on_catalog_error(self, error) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._catalog_process = None
            self._log("error", "could not run `recon methods` to list the methods")

    def _apply_catalog(self, catalog: dict[str, MethodInfo]) -> None:
        self.methods = dict(catalog)
        last = self.settings.value("training/method", "nerf")
        saved: dict[str, dict] = {}
        for name, method in catalog.items():
            raw = self.settings.value(f"training/settings/{name}", "")
            try:
                values = json.loads(raw) if raw else {}
            except (TypeError, ValueError):
                values = {}
            names = {f.name for f in method.fields}
            saved[name] = {k: v for k, v in values.items() if k in names}
            for f in method.fields:  # stored changes on top of the defaults
                saved[name].setdefault(f.name, f.default)
        self.method_panel.set_methods(catalog, current=str(last), values=saved)
        budget = self.settings.value("training/budget", None)
        steps = self.settings.value("training/steps", None)
        try:
            if steps not in (None, ""):
                self.method_panel.set_limit(steps=int(steps))
            elif budget not in (None, ""):
                self.method_panel.set_limit(budget=float(budget))
        except (TypeError, ValueError):
            pass
        self._refresh_training()
        self._reset_settings_baseline()
        self.methods_loaded.emit()

    # -- undo of settings, help ------------------------------------------------------------------
    def _reset_settings_baseline(self) -> None:
        form = self.method_panel.settings_form
        try:
            self._settings_baseline = (form.method.name, form.values()) if form.method else None
        except ValueError:
            self._settings_baseline = None

    @Slot(str)
    def _on_method_changed(self, _name: str) -> None:
        self._reset_settings_baseline()

    @Slot()
    def _on_settings_changed(self) -> None:
        """A setting edited: one undo step per field changed (typing in a field merges)."""
        self.projects.mark_changed()
        form = self.method_panel.settings_form
        base = self._settings_baseline
        if form.method is None:
            return
        try:
            values = form.values()
        except ValueError:
            return  # half-typed: recorded once it parses
        if base is None or base[0] != form.method.name:
            self._settings_baseline = (form.method.name, values)
            return
        old = base[1]
        self._settings_baseline = (form.method.name, values)
        for name, value in values.items():
            if old.get(name) != value:
                self._undo.push(SettingsCommand(self._undo, form, form.method.name, name,
                                                old.get(name), value))

    @staticmethod
    def documentation_path() -> Path:
        """The README the Help > Documentation action opens (docs/ sits beside it)."""
        return Path(__file__).resolve().parents[1] / "README.md"

    @staticmethod
    def shortcut_rows(window: QMainWindow) -> list[tuple[str, str]]:
        """(action, shortcut) for every menu action with a shortcut, in menu order."""
        rows = []
        for menu_action in window.menuBar().actions():
            menu = menu_action.menu()
            for action in (menu.actions() if menu else []):
                key = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
                if key:
                    rows.append((action.text().replace("&", ""), key))
        return rows

    @Slot()
    def _on_docs_clicked(self) -> None:
        path = self.documentation_path()
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))):
            self._show_error(f"Could not open {path}; read it in a text editor or browser")

    @Slot()
    def _on_shortcuts_clicked(self) -> None:
        rows = self.shortcut_rows(self) + [("Rotate / pan / zoom", "Left / middle / wheel drag")]
        text = "<table>" + "".join(f"<tr><td>{a}</td><td>&nbsp;&nbsp;<b>{k}</b></td></tr>"
                                   for a, k in rows) + "</table>"
        box = QMessageBox(QMessageBox.Icon.NoIcon, "Keyboard Shortcuts", text,
                          QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    @staticmethod
    def version() -> str:
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("reconstudio")
        except PackageNotFoundError:
            return "0.1.0"

    @Slot()
    def _on_about_clicked(self) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, "About ReconStudio",
                          f"<b>ReconStudio {self.version()}</b><br>3D reconstruction from photos: "
                          "radiance fields, surfaces, edges and Gaussian splats.",
                          QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    # -- training --------------------------------------------------------------------------------
    def _capture_path(self) -> Path | None:
        """The capture to train on: the open capture, or the one a result was trained on."""
        src = self.model.source
        if src is None:
            return None
        if src.kind == "capture":
            return src.path
        if src.kind == "result" and src.cameras_json is not None:
            return src.cameras_json.parent
        return None

    def start_training(self, method: str | None = None, *, budget: float | None = None,
                       steps: int | None = None, settings: dict | None = None,
                       out: str | Path | None = None) -> bool:
        """Start a run on the open capture with the panel's choices (arguments override them).

        False, with a message, when nothing can be trained yet.
        """
        if self.training.active:
            self._show_error("A run is in progress; stop it before starting another")
            return False
        capture = self._capture_path()
        if capture is None:
            self._show_error("Open a capture first (a folder with transforms_train.json), "
                             "then press Start")
            return False
        if self.methods is None:
            self.load_methods()
            self._show_error("The method list is still loading; press Start again in a moment")
            return False
        panel = self.method_panel
        if method is not None:
            if method not in self.methods:
                self._show_error(f"unknown method {method!r}; available: "
                                 f"{', '.join(sorted(self.methods))}")
                return False
            panel.method_combo.setCurrentText(method)
        try:
            changed = panel.changed_settings()
        except ValueError as exc:
            self._show_error(str(exc))
            return False
        if settings:
            changed.update(panel.method.changed(settings))
            self._undo.applying = True  # shown in the form (what runs is what it says), not an edit
            try:
                for key, value in settings.items():
                    if key in panel.settings_form.editors:
                        panel.settings_form.set_value(key, value)
            finally:
                self._undo.applying = False
        if budget is not None or steps is not None:
            panel.set_limit(budget=budget, steps=steps)
        budget, steps = panel.limit()
        name = panel.method.name
        target = Path(out) if out else (
            Path(panel.out_edit.text()).expanduser() if panel.out_edit.text().strip()
            else self.projects.run if self.projects.folder is not None
            else default_output(capture, name)
        )
        request = RunRequest(
            data=str(capture), method=name, out=str(target), settings=changed, budget=budget,
            steps=steps, snapshot_every=1.0, checkpoint_every=self.checkpoint_every,
            bounds=self.editor.crop_box(),  # a crop of the open result bounds the new field
        )
        self.settings.setValue("training/method", name)
        self.settings.setValue("training/settings/" + name, json.dumps(changed))
        self.settings.setValue("training/budget", "" if budget is None else budget)
        self.settings.setValue("training/steps", "" if steps is None else steps)
        self._launch(request)
        return True

    def _launch(self, request: RunRequest) -> None:
        self._ensure_engine()
        self.engine.send(request.start_command())
        self.training.start(request)
        self._live_fitted = False
        self._flush_log()
        self.training_panel.set_history([])
        self._refresh_training()

    def _ensure_engine(self) -> None:
        if self.engine is not None and not self.engine.is_alive():
            self._close_engine()
        if self.engine is None:
            # returns at once (the child imports torch in its own time); training at a lower
            # priority keeps redraws and input ahead of it on a machine with few cores
            self.engine = EngineProcess(niceness=self.engine_niceness)
            self._log("info", f"engine process {self.engine.pid} started")
        if not self.poll_timer.isActive():
            self.poll_timer.start()

    def _close_engine(self) -> None:
        engine, self.engine = self.engine, None
        if engine is not None:
            engine.close(timeout=10.0)

    @Slot()
    def _on_start_clicked(self) -> None:
        self.start_training()

    @Slot()
    def _on_pause_clicked(self) -> None:
        if self.engine is not None and self.training.state in ("starting", "training"):
            self.engine.send(P.Pause())
            self.training.pause()
            self._refresh_training()

    @Slot()
    def _on_resume_clicked(self) -> None:
        if self.engine is not None and self.training.state == "paused":
            self.engine.send(P.Resume())
            self.training.resume()
            self._refresh_training()

    @Slot()
    def _on_stop_clicked(self) -> None:
        if self.engine is not None and self.training.state in ("starting", "training", "paused"):
            self.engine.send(P.Stop())
            self.training.stop()
            self._refresh_training()

    @Slot()
    def _on_restart_clicked(self) -> None:
        """After the engine died: a new engine, resuming from the run's last checkpoint."""
        old = self.training.request
        if old is None or self.training.state != "died":
            return
        checkpoint = Path(old.out) / CHECKPOINT_NAME
        resume = str(checkpoint) if checkpoint.is_file() else None
        self._close_engine()
        request = RunRequest(**{**old.__dict__, "resume": resume})
        self._launch(request)
        self._log("info", f"resuming from {checkpoint}" if resume
                  else "no checkpoint was written yet: starting again from the beginning")
        self._flush_log()

    @Slot()
    def _on_poll_timer(self) -> None:
        engine = self.engine
        if engine is None:
            self.poll_timer.stop()
            return
        changed = False
        try:
            events = engine.events(timeout=0, max_events=200)
        except (OSError, EOFError, ValueError) as exc:  # the queue broke with the process
            events = []
            self._log("warning", f"engine messages could not be read: {exc}")
        for ev in events:
            if isinstance(ev, P.ViewImage):
                self._on_view_image(ev)
                continue
            if isinstance(ev, P.Log) and ev.text.startswith(VIEW_FAILURES):
                self._view_sent = 0.0  # the answer to the view in flight: none is coming
            kind = self.training.handle(ev)
            changed = True
            if kind == "error":
                self._on_training_error(ev)
            elif kind == "finished":
                self._on_training_done(ev)
        if self.training.active and engine.exitcode is not None:
            message = self.training.died(engine.exitcode)
            hint = "Training > Restart Engine and Resume continues from the last checkpoint"
            self._show_error(f"{message}. {hint}.")
            self.training_failed.emit(message)
            changed = True
        now = time.monotonic()
        if self.training.pending and now - self._last_draw >= self.redraw_interval:
            self._last_draw = now
            self._draw_snapshots()
        if changed:
            self._flush_log()
            if now - self._last_panel >= self.redraw_interval or not self.training.active:
                self._last_panel = now
                self._refresh_training()

    def _on_training_error(self, ev: P.Error) -> None:
        if ev.kind == "engine" and "\n" in ev.hint:
            self._log("error", ev.hint.rstrip())  # the traceback, for a bug report
            text = f"Training failed: {ev.message}"
        else:
            text = f"Training failed: {ev.message}" + (f"\n\n{ev.hint}" if ev.hint else "")
        self._show_error(text)
        self.training_failed.emit(ev.message)

    def _on_training_done(self, ev: P.Finished) -> None:
        self._draw_snapshots()
        out = self.training.request.out if self.training.request else None
        if out and any(Path(out, f).is_file() for f in ("mesh.ply", "curves.json", "splats.ply")):
            self.open_path(out)  # the full mesh and the metrics, through the usual loader
        self.projects.autosave()
        psnr = ev.metrics.get("test_psnr")
        self._log("info", f"result in {out}" + (f"; test PSNR {psnr:.2f} dB" if psnr else ""))
        self.training_finished.emit(str(out))

    # -- live snapshots --------------------------------------------------------------------------
    def _draw_snapshots(self) -> None:
        snaps = self.training.take_snapshots()
        if not snaps:
            return
        for ev in snaps:
            try:
                if ev.kind == "mesh":
                    self._show_live_mesh(ev.payload)
                elif ev.kind == "points":
                    self._show_live_points(ev.payload)
                elif ev.kind in GEOMETRY_KINDS:
                    self.show_geometry(ev.kind, ev.payload)
            except (KeyError, ValueError, TypeError) as exc:  # a malformed payload: say so, go on
                self._log("warning", f"{ev.kind} snapshot of step {ev.step} not drawn: {exc}")
        self.viewport.render()
        for ev in snaps:
            if ev.kind in ("mesh", "points") or ev.kind in GEOMETRY_KINDS:
                self.snapshot_shown.emit(ev.kind, int(ev.step))

    def _show_live_mesh(self, payload: dict) -> None:
        mesh = snapshot_mesh(payload)
        self.live_mesh.shallow_copy(mesh)  # same PolyData, same actor: data replaced in place
        if self.live_mesh_actor is None:
            if self.live_mesh.n_cells == 0:
                return
            self.live_mesh_actor = self.viewport.add_mesh(
                self.live_mesh, scalars=COLOR_ARRAY if COLOR_ARRAY in mesh.point_data else None,
                rgb=True, lighting=False, show_scalar_bar=False, name="live_mesh",
                reset_camera=False, render=False,
            )
            if self.mesh_actor is not None:
                self.mesh_actor.SetVisibility(False)  # the old result would hide the new one
            self._apply_display()
        self.live_mesh.Modified()
        if self.model.show_bounds:
            self._update_bounds()
        if not self._live_fitted and self.live_mesh.n_cells:
            self._live_fitted = True
            self._fit_bounds(self.live_mesh.bounds)

    def _show_live_points(self, payload: dict) -> None:
        positions = np.ascontiguousarray(payload["positions"], dtype=np.float32).reshape(-1, 3)
        if len(positions) > MAX_POINTS:  # an even subset: the same look, a fraction of the cost
            stride = -(-len(positions) // MAX_POINTS)
            positions = np.ascontiguousarray(positions[::stride])
        self.live_points.shallow_copy(pv.PolyData(positions))
        if self.points_actor is None and len(positions):
            self.points_actor = self.viewport.add_mesh(
                self.live_points, color=POINTS_COLOR, style="points", point_size=2.0,
                lighting=False, name="live_points", reset_camera=False, render=False,
            )
            self.points_actor.SetPickable(False)
        if self.points_actor is not None:
            self.points_actor.SetVisibility(self.points_action.isChecked())
        self.live_points.Modified()

    def show_geometry(self, kind: str, payload: dict) -> pv.PolyData:
        """Curves, edge points or splats (a snapshot payload) in one actor per kind.

        The kind's PolyData is refilled in place (``shallow_copy``): the actor stays.
        """
        data = GEOMETRY_KINDS[kind](payload)
        shown = self.geometry.get(kind)
        if shown is None:
            shown = self.geometry[kind] = pv.PolyData()
        shown.shallow_copy(data)
        actor = self.geometry_actors.get(kind)
        if actor is None and shown.n_points:
            style = {"curves": dict(line_width=2.0),
                     "edge_points": dict(style="points", point_size=3.0,
                                         render_points_as_spheres=False),
                     "splats": dict(style="points", point_size=splat_point_size(shown))}[kind]
            actor = self.viewport.add_mesh(
                shown, scalars=COLOR_ARRAY, rgb=True, lighting=False, show_scalar_bar=False,
                name=f"live_{kind}", reset_camera=False, render=False, **style,
            )
            actor.SetPickable(False)
            self.geometry_actors[kind] = actor
            if not self._live_fitted:
                self._live_fitted = True
                self._fit_bounds(shown.bounds)
        elif actor is not None and kind == "splats":
            actor.prop.point_size = splat_point_size(shown)
        shown.Modified()
        if self.model.show_bounds:
            self._update_bounds()
        return shown

    def _show_result_geometry(self, folder: Path) -> None:
        """curves.json and splats.ply of a result folder, read now (they are small)."""
        for name, kind, reader in (("curves.json", "curves", read_curves),
                                   ("splats.ply", "splats", read_splats)):
            path = folder / name
            if not path.is_file():
                continue
            try:
                shown = self.show_geometry(kind, reader(path))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                self._show_error(f"{name} not drawn: {exc}")
                continue
            self._log("info", f"{name}: {shown.n_points:,} points, {shown.n_cells:,} cells")
            self.geometry_shown.emit(kind, int(shown.n_points))

    def _clear_live(self) -> None:
        for actor in (self.live_mesh_actor, self.points_actor, *self.geometry_actors.values()):
            if actor is not None:
                self.viewport.remove_actor(actor, render=False)
        self.live_mesh_actor = self.points_actor = None
        self.geometry_actors = {}
        self.geometry = {}
        self.live_mesh = pv.PolyData()
        self.live_points = pv.PolyData()

    @Slot(bool)
    def _on_show_points_changed(self, checked: bool) -> None:
        self._undo.push(ToggleCommand(self._undo, self.points_action, checked))
        if self.points_actor is not None:
            self.points_actor.SetVisibility(checked)
            self.viewport.render()

    # -- novel view -------------------------------------------------------------------------------
    def view_result(self) -> tuple[bool, str | None]:
        """(can render, result folder): the run in progress, else an open result's checkpoint."""
        if self.engine is not None and self.training.state in ("training", "paused"):
            return True, None
        src = self.model.source
        if src is not None and src.kind == "result" and (src.path / CHECKPOINT_NAME).is_file():
            return True, str(src.path)
        return False, None

    def _camera_key(self) -> tuple:
        cam = self.viewport.renderer.GetActiveCamera()
        return (cam.GetPosition(), cam.GetFocalPoint(), cam.GetViewUp(), cam.GetViewAngle(),
                self.viewport.width(), self.viewport.height())

    def _on_viewport_rendered(self, *_args) -> None:
        key = self._camera_key()
        if key == self._last_camera or self._closed:
            return
        self._last_camera = key
        self._on_camera_changed()

    def _on_camera_changed(self) -> None:
        """The camera moved: a coarse view now, a sharper one once it rests."""
        if not self.view_dock.isVisible() or not self.view_result()[0]:
            return
        self.request_view(self.view_sizes[0])
        self.view_timer.start()

    @Slot()
    def _on_camera_rested(self) -> None:
        if self.view_dock.isVisible() and self.view_result()[0]:
            self.request_view(self.view_sizes[1])

    def request_view(self, size: int) -> bool:
        """Ask the engine for the field's picture of the viewport's camera (longest side ``size``)."""
        ok, result = self.view_result()
        if not ok or self._closed:
            return False
        if self._view_sent and time.monotonic() - self._view_sent < 30.0:
            self._view_wanted = max(size, self._view_wanted or 0)
            return True  # one at a time: asked again when the answer comes
        if self.engine is None:
            self._ensure_engine()
        cam = self.viewport.renderer.GetActiveCamera()
        vw, vh = max(self.viewport.width(), 1), max(self.viewport.height(), 1)
        scale = size / max(vw, vh)
        w, h = max(8, round(vw * scale)), max(8, round(vh * scale))
        c2w, fx, fy, cx, cy = view_camera(cam.GetPosition(), cam.GetFocalPoint(),
                                          cam.GetViewUp(), cam.GetViewAngle(), w, h)
        self._view_request += 1
        self._view_sent = time.monotonic()
        self._view_wanted = None
        self.engine.send(P.RenderView(c2w, fx, fy, cx, cy, w, h, self._view_request, result))
        return True

    def _on_view_image(self, ev: P.ViewImage) -> None:
        self._view_sent = 0.0
        image = np.ascontiguousarray(ev.image, dtype=np.uint8)
        self.view_image = image
        self.view_size = int(max(image.shape[:2]))
        h, w = image.shape[:2]
        qimage = QImage(image.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
        pixmap = QPixmap.fromImage(qimage).scaled(
            self.view_label.size(), Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation)
        self.view_label.setPixmap(pixmap)
        self.view_label.setToolTip(f"{w}x{h} rendered by the field at step {ev.step}")
        self.view_rendered.emit(self.view_size)
        if self._view_wanted is not None:
            self.request_view(self._view_wanted)

    # -- training panels -------------------------------------------------------------------------
    def _log(self, level: str, text: str) -> None:
        self.training.add_log(level, text)
        self._flush_log()

    def _flush_log(self) -> None:
        """Append the log lines the panel has not shown yet."""
        log = self.training.log
        new = self.training.log_count - self._log_shown
        if new > 0:
            for level, text in list(log)[-min(new, len(log)):]:
                self.training_panel.append_log(level, text)
            self._log_shown = self.training.log_count

    def _refresh_training(self) -> None:
        t = self.training
        can_start = (
            self.methods is not None and self._capture_path() is not None and not t.active
        )
        self.method_panel.set_state(t.state, can_start)
        self.start_action.setEnabled(self.method_panel.start_button.isEnabled())
        self.pause_action.setEnabled(self.method_panel.pause_button.isEnabled())
        self.resume_action.setEnabled(self.method_panel.resume_button.isEnabled())
        self.stop_action.setEnabled(self.method_panel.stop_button.isEnabled())
        self.restart_action.setEnabled(t.state == "died")
        self.continue_action.setEnabled(self.projects.can_continue() and not t.active)
        self.training_panel.set_progress(t.state, t.fraction(), t.progress_text())
        self.training_panel.set_history(t.history)
        self.training_label.setText("" if t.state == "idle" else t.progress_text()
                                    if t.active else self.training_panel.state_label.text())
        if getattr(self, "_shown_state", None) != t.state:
            self._shown_state = t.state
            self.training_state_changed.emit(t.state)

    # -- export, screenshots, recent captures ----------------------------------------------------
    @Slot()
    def _on_export_clicked(self) -> None:
        src = self.model.source
        if src is None or src.kind != "result" or src.mesh_path is None:
            self._show_error("Open or train a result with a mesh first, then export it")
            return
        dialog = ExportDialog(src.path, self)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.export_mesh(src.path, dialog.path, dialog.fmt, dialog.faces)

    def export_mesh(self, result_dir: Path, path: Path, fmt: str, faces: int | None) -> bool:
        """Run `recon export` for `result_dir` in a subprocess; ``export_finished`` when done."""
        if self._export_process is not None:
            self._show_error("An export is already running")
            return False
        args = ["-m", "reconstruction.cli", "export", str(result_dir), "--format", fmt,
                "--out", str(path)]
        if faces:
            args += ["--faces", str(int(faces))]
        proc = QProcess(self)
        proc.finished.connect(self._on_export_process_finished)
        self._export_process = proc
        self._export_target = Path(path)
        self.status_label.setText(f"Exporting {Path(path).name}...")
        self._refresh_actions()
        proc.start(sys.executable, args)
        return True

    @Slot(int, QProcess.ExitStatus)
    def _on_export_process_finished(self, code: int, _status) -> None:
        proc, self._export_process = self._export_process, None
        if proc is None or self._closed:
            return
        out = bytes(proc.readAllStandardOutput()).decode(errors="replace").strip()
        err = bytes(proc.readAllStandardError()).decode(errors="replace").strip()
        proc.deleteLater()
        self._refresh_actions()
        if code != 0:
            message = recon_error(err, code)
            self._show_error(f"Export failed: {message}")
            self.export_failed.emit(message)
            return
        try:
            info = json.loads(out.splitlines()[-1])
        except (ValueError, IndexError):
            info = {"out": str(self._export_target)}
        written = info.get("out", str(self._export_target))
        text = f"Exported {written}"
        if "faces" in info:
            text += f" ({info['faces']:,} faces)"
        self.status_label.setText(text)
        self._log("info", text)
        self.export_finished.emit(str(written))

    @Slot()
    def _on_export_edits_clicked(self) -> None:
        if self.editor.editable_path() is None:
            self._show_error("Open a result with a mesh or curves first, then edit and export it")
            return
        start = self.editor.editable_path()
        folder = QFileDialog.getExistingDirectory(self, "Write the edited result into",
                                                  str(start.parent if start.is_file() else start.parent))
        if folder:
            self.editor.export_to(folder)

    @Slot()
    def _on_open_project(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open project (a NAME.recon folder)",
                                                  self._dialog_dir())
        if folder:
            self.open_path(folder)

    @Slot()
    def _on_save_project(self) -> None:
        start = self._capture_path() or (self.model.source.path if self.model.source else Path.cwd())
        path, _ = QFileDialog.getSaveFileName(self, "Save project as", str(
            Path(start).parent / f"{Path(start).name}.recon"), "ReconStudio projects (*.recon)")
        if path:
            self.projects.save_as(path)

    def continue_project_run(self) -> bool:
        """Resume the open project's run from its last save (Training > Continue Project Run):
        to its own target if it had not reached it, else to the Method panel's."""
        run = self.projects.continue_request()
        if run is None:
            self._show_error("Open a project whose run has a saved state (checkpoint.pt) to "
                             "continue it")
            return False
        if self.training.active:
            self._show_error("A run is in progress; stop it before continuing another")
            return False
        folder = self.projects.run
        budget, steps = run.get("budget"), run.get("steps")
        if (folder / "metrics.json").is_file():  # it had finished: go on to the panel's target
            budget, steps = self.method_panel.limit()
        request = RunRequest(
            data=run["data"], method=run["method"], out=str(folder),
            settings=dict(run.get("settings") or {}), budget=budget, steps=steps,
            snapshot_every=1.0, checkpoint_every=self.checkpoint_every,
            resume=str(folder / CHECKPOINT_NAME),
            bounds=None if run.get("bounds") is None else tuple(map(tuple, run["bounds"])))
        self._log("info", f"continuing {folder} from its last save")
        self._launch(request)
        return True

    @Slot()
    def _on_scale_measured_clicked(self) -> None:
        self.scale_tool.scale_measured()

    @Slot()
    def _on_measure_clicked(self) -> None:
        self.scale_tool.start(measure=True)

    @Slot()
    def _on_screenshot_clicked(self) -> None:
        start = self.model.source.path.parent if self.model.source else Path.cwd()
        path, _ = QFileDialog.getSaveFileName(
            self, "Save screenshot", str(start / "screenshot.png"), "PNG images (*.png)"
        )
        if path:
            self.save_screenshot(path)

    def save_screenshot(self, path: str | Path) -> Path:
        """The 3D view as a PNG (rendered now, at the viewport's size)."""
        path = Path(path)
        if path.suffix.lower() != ".png":
            path = path.with_suffix(".png")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.viewport.render()
        self.viewport.screenshot(str(path))
        self.status_label.setText(f"Saved {path}")
        return path

    def save_window_screenshot(self, path: str | Path) -> Path:
        """The whole window (panels and 3D view) as a PNG."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._draw_snapshots()  # whatever arrived since the last redraw
        self._refresh_training()
        self.viewport.render()
        self.viewport.ren_win.Render()
        if not self.grab().save(str(path)):
            raise OSError(f"could not write {path}")
        return path

    def _remember_capture(self, path: Path) -> None:
        recent = self.recent_captures()
        key = str(path)
        recent = [key] + [p for p in recent if p != key]
        self.settings.setValue("recent/captures", json.dumps(recent[:MAX_RECENT]))

    def recent_captures(self) -> list[str]:
        raw = self.settings.value("recent/captures", "")
        try:
            items = json.loads(raw) if raw else []
        except (TypeError, ValueError):
            return []
        return [str(p) for p in items if isinstance(p, str)]

    @Slot()
    def _on_recent_menu_shown(self) -> None:
        self.recent_menu.clear()
        recent = [p for p in self.recent_captures() if Path(p).exists()]
        for path in recent:
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _=False, p=path: self.open_path(p))
        self.recent_menu.setEnabled(bool(recent))

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

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if not self._render_quality_set:
            self._render_quality_set = True
            QTimer.singleShot(0, self, self._apply_render_quality)

    def _apply_render_quality(self) -> None:
        """FXAA on a hardware GPU; nothing extra on a software rasteriser (llvmpipe & co)."""
        if self._closed:
            return
        try:
            info = self.viewport.ren_win.ReportCapabilities() or ""
        except Exception:  # noqa: BLE001 - no context yet: keep the plain rendering
            return
        renderer = next((ln for ln in info.splitlines() if "renderer string" in ln), "")
        self.software_gl = any(k in renderer.lower()
                               for k in ("llvmpipe", "softpipe", "swrast", "swiftshader"))
        if renderer and not self.software_gl:
            self.viewport.enable_anti_aliasing("fxaa")

    # -- closing ---------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        if not self._closed:
            self._closed = True
            self._request += 1  # late replies are dropped
            self.thread_pool.clear()  # jobs not started yet
            self.thread_pool.waitForDone(10_000)  # a read in progress cannot be interrupted
            self.model.disconnect(self._on_model_changed)
            self.poll_timer.stop()
            self._close_engine()
            self._image_cancel.set()
            self.scale_tool.close()
            self.editor.close()
            self.projects.close()
            for proc in (self._catalog_process, self._export_process, self._info_process,
                         self._sfm_process):
                if proc is not None and proc.state() != QProcess.ProcessState.NotRunning:
                    proc.kill()
                    proc.waitForFinished(3000)
            self.viewport.close()  # stops VTK before the GL context goes
        super().closeEvent(event)
