"""Editing a result in the window: curves, cages and crops, on the window's undo stack.

The edits are :mod:`reconstruction.editing` operations (plain data, numpy only): the panel
and the viewport's handles make them, :class:`Editor` applies them to its document and
pushes one :class:`EditCommand` per edit, and the viewport's actors are updated in place
(the mesh's points, the curves' polylines, the cage's lines and handles). Exporting runs
``recon edit RESULT --ops edits.json --out FOLDER`` on the same operations, so the files
equal what the window shows.

In the viewport: with *Pick curves* on, a click selects the curve under the mouse and
handles appear on its control points (a line's ends, a Bezier's four control points, a
polyline's vertices); dragging a handle moves that point. A fitted cage shows a handle on
every cage vertex; dragging one moves it and deforms the mesh. The crop box is a VTK box
widget placed around the mesh; *Apply Crop* cuts to it.
"""

from __future__ import annotations

import json
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyvista as pv
from PySide6.QtCore import QObject, QProcess, QTimer, Signal
from PySide6.QtGui import QUndoCommand
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.training import recon_error
from app.viewport import COLOR_ARRAY, curves_payload, snapshot_mesh
from reconstruction.editing import EditDocument, EditError, EditOp, load_result, parse_op
from reconstruction.editing import curve_geometry as cg

HANDLE_COLOR = "#f5f5f5"
SELECTED_COLOR = "#ffd400"
CAGE_COLOR = "#2e9bff"
CROP_COLOR = "#e8175d"
FACE_COLOR = "#ff8c1a"
FACES = ("-x", "+x", "-y", "+y", "-z", "+z")
MAX_HANDLES = 80
"""Handles drawn at most for one curve (a long polyline shows its first ones)."""


class EditCommand(QUndoCommand):
    """One edit on the undo stack. Pushed after the edit was applied, so the first ``redo``
    (which ``QUndoStack.push`` calls) does nothing; commands of a document no longer open
    do nothing either."""

    def __init__(self, editor: Editor, doc: EditDocument, op: EditOp) -> None:
        super().__init__(op.describe())
        self.editor, self.doc, self.op = editor, doc, op
        self._pushed = False

    def redo(self) -> None:
        if not self._pushed:
            self._pushed = True
            return
        if self.editor.doc is self.doc:
            self.editor._redo(self.op)

    def undo(self) -> None:
        if self.editor.doc is self.doc:
            self.editor._undo(self.op)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:  # -> [V, 3] float32
    """Area-weighted vertex normals (for shading a mesh without colours after an edit)."""
    tri = vertices[faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    out = np.zeros((len(vertices), 3))
    for k in range(3):
        for c in range(3):
            out[:, c] += np.bincount(faces[:, k], weights=fn[:, c], minlength=len(vertices))
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-30)
    return out.astype(np.float32)


class EditPanel(QWidget):
    """The Edit dock: curves, cage and crop controls (the editor wires them)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)

        curves = QGroupBox("Curves")
        cl = QVBoxLayout(curves)
        self.pick_curves = QCheckBox("Pick curves in the viewport")
        self.pick_curves.setToolTip("Click a curve to select it; drag its handles to move "
                                    "its control points")
        cl.addWidget(self.pick_curves)
        self.curve_list = QListWidget()
        self.curve_list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.curve_list.setMinimumHeight(90)
        cl.addWidget(self.curve_list)
        row1, row2 = QHBoxLayout(), QHBoxLayout()
        self.to_bezier_button = QPushButton("Bezier")
        self.to_line_button = QPushButton("Line")
        self.to_bezier_button.setToolTip("Make the selected line (or polyline) a cubic Bezier")
        self.to_line_button.setToolTip("Make the selected Bezier (or polyline) the line through its ends")
        self.split_button = QPushButton("Split")
        self.split_button.setToolTip("Split the selected curve in two at its middle")
        self.delete_button = QPushButton("Delete")
        self.join_button = QPushButton("Join")
        self.join_button.setToolTip("Join the two selected curves into one")
        self.snap_button = QPushButton("Snap")
        self.snap_button.setToolTip("Move the nearest ends of the two selected curves together")
        for b in (self.to_bezier_button, self.to_line_button, self.split_button):
            row1.addWidget(b)
        for b in (self.join_button, self.snap_button, self.delete_button):
            row2.addWidget(b)
        cl.addLayout(row1)
        cl.addLayout(row2)
        layout.addWidget(curves)

        cage = QGroupBox("Cage")
        grid = QGridLayout(cage)
        self.cage_kind = QComboBox()
        self.cage_kind.addItems(["polycube", "lattice"])
        self.cage_kind.setToolTip("polycube: k boxes covering the object; lattice: a "
                                  "Bernstein lattice of k cells per axis")
        self.cage_cubes = QSpinBox()
        self.cage_cubes.setRange(1, 16)
        self.cage_cubes.setValue(4)
        self.cage_cubes.setToolTip("k: boxes of the polycube, or lattice cells per axis")
        self.fit_cage_button = QPushButton("Fit")
        self.box_index = QSpinBox()
        self.box_index.setRange(0, 0)
        self.box_index.setPrefix("box ")
        self.box_index.setToolTip("The cage box that Scale Box and Move Face act on")
        self.box_factor = QDoubleSpinBox()
        self.box_factor.setRange(0.05, 20.0)
        self.box_factor.setSingleStep(0.05)
        self.box_factor.setValue(1.2)
        self.box_factor.setPrefix("x")
        self.box_factor.setToolTip("Scale factor of the box about its centre")
        self.scale_box_button = QPushButton("Scale")
        self.face = QComboBox()
        self.face.addItems(["+x", "-x", "+y", "-y", "+z", "-z"])
        self.face.setToolTip("The face of the box to move along its normal")
        self.face_offset = QDoubleSpinBox()
        self.face_offset.setRange(-999.0, 999.0)
        self.face_offset.setDecimals(3)
        self.face_offset.setSingleStep(0.01)
        self.face_offset.setValue(0.05)
        self.face_offset.setToolTip("How far the face moves outwards (negative: inwards)")
        self.move_face_button = QPushButton("Move")
        self.fit_cage_button.setToolTip("Fit a cage of this kind and k to the mesh as it is now")
        self.scale_box_button.setToolTip("Scale the box about its centre")
        self.move_face_button.setToolTip("Move the face of the box along its normal")
        for combo in (self.cage_kind, self.face):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(4)
        for r, row in enumerate(((self.cage_kind, self.cage_cubes, self.fit_cage_button),
                                 (self.box_index, self.box_factor, self.scale_box_button),
                                 (self.face, self.face_offset, self.move_face_button))):
            for c, widget in enumerate(row):
                grid.addWidget(widget, r, c)
        layout.addWidget(cage)

        crop = QGroupBox("Crop")
        cr = QHBoxLayout(crop)
        self.crop_box_button = QPushButton("Place Box")
        self.crop_box_button.setCheckable(True)
        self.apply_crop_button = QPushButton("Crop")
        self.crop_box_button.setToolTip("Show a box to drag around the part to keep")
        self.apply_crop_button.setToolTip("Cut the mesh and curves to the box; the box also bounds "
                                          "the next training (bounds.json on export)")
        cr.addWidget(self.crop_box_button)
        cr.addWidget(self.apply_crop_button)
        layout.addWidget(crop)

        self.export_button = QPushButton("Export Edited Result...")
        layout.addWidget(self.export_button)
        self.status = QLabel("Open a result (mesh or curves) to edit it")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        layout.addStretch(1)


class Editor(QObject):
    """The window's editing state: the document, its applied operations and the handles."""

    edited = Signal(str)
    """Emitted with the operation's name after it is applied, undone or redone."""
    exported = Signal(str)
    """Emitted with the output folder after `recon edit` wrote the edited result."""
    export_failed = Signal(str)

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.panel = EditPanel()
        self.doc: EditDocument | None = None
        self.history: list[EditOp] = []
        """The operations applied to :attr:`doc`, in order (what an export replays)."""
        self.selected: int | None = None
        self.handles: list = []  # vtkSphereWidget on the selected curve's points
        self.cage_handles: list = []  # vtkSphereWidget on the cage's vertices
        self.cage_data: pv.PolyData | None = None
        self.cage_actor = None
        self.selected_data: pv.PolyData | None = None
        self.selected_actor = None
        self.crop_widget = None
        self._retired: list = []  # handles switched off, kept until VTK is done with them
        self._retired_cage: list = []
        self.face_handles: dict = {}  # face name -> vtkSphereWidget on the chosen box's faces
        self._face_box: int | None = None
        self._shown_faces: np.ndarray | None = None  # faces the mesh actor draws now
        self.process: QProcess | None = None
        self._ops_file: Path | None = None
        self._export_out: Path | None = None
        p = self.panel
        p.pick_curves.toggled.connect(self._on_pick_curves_changed)
        p.curve_list.itemSelectionChanged.connect(self._on_curve_list_changed)
        p.to_bezier_button.clicked.connect(lambda: self._on_curve_op("to_bezier"))
        p.to_line_button.clicked.connect(lambda: self._on_curve_op("to_line"))
        p.split_button.clicked.connect(lambda: self._on_curve_op("split_curve"))
        p.delete_button.clicked.connect(lambda: self._on_curve_op("delete_curve"))
        p.join_button.clicked.connect(lambda: self._on_pair_op("join_curves"))
        p.snap_button.clicked.connect(lambda: self._on_pair_op("snap_endpoints"))
        p.fit_cage_button.clicked.connect(self._on_fit_cage_clicked)
        p.box_index.valueChanged.connect(self._on_box_changed)
        p.scale_box_button.clicked.connect(self._on_scale_box_clicked)
        p.move_face_button.clicked.connect(self._on_move_face_clicked)
        p.crop_box_button.toggled.connect(self._on_crop_box_toggled)
        p.apply_crop_button.clicked.connect(self._on_apply_crop_clicked)
        self._refresh_panel()

    # -- the document ------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the document (another source was opened)."""
        self._clear_handles()
        self._clear_cage()
        self._clear_crop_widget()
        self.doc = None
        self.history = []
        self.selected = None
        self._shown_faces = None
        self._refresh_panel()

    def editable_path(self) -> Path | None:
        src = self.window.model.source
        if src is None or src.kind not in ("result", "mesh"):
            return None
        return src.path

    def ensure_doc(self) -> bool:
        """Read the open result into the document (once). False, with a message, if none."""
        if self.doc is not None:
            return True
        path = self.editable_path()
        if path is None:
            self.window._show_error("Open a result (a mesh or curves) to edit it")
            return False
        try:
            self.doc = load_result(path)
        except EditError as exc:
            self.window._show_error(str(exc))
            return False
        shown = self._mesh_data()
        if shown is not None and self.doc.mesh is not None and shown.n_points == len(
                self.doc.mesh.vertices):
            self._shown_faces = self.doc.mesh.faces  # the actor draws the same mesh
        return True

    def apply(self, spec: dict | EditOp) -> bool:
        """Apply one operation (a JSON dict or an op) and push it on the undo stack."""
        try:
            op = spec if isinstance(spec, EditOp) else parse_op(spec)
        except EditError as exc:
            self.window._show_error(f"Edit not applied: {exc}")
            return False
        if not self.ensure_doc():
            return False
        try:
            op.apply(self.doc)
        except EditError as exc:
            self.window._show_error(f"Edit not applied: {exc}")
            return False
        self.history.append(op)
        self.window.undo_stack.push(EditCommand(self, self.doc, op))
        self._after(op)
        return True

    def _redo(self, op: EditOp) -> None:
        op.apply(self.doc)
        self.history.append(op)
        self._after(op)

    def _undo(self, op: EditOp) -> None:
        op.invert(self.doc)
        if self.history and self.history[-1] is op:
            self.history.pop()
        self._after(op)

    def _after(self, op: EditOp) -> None:
        self.refresh()
        self.window.viewport.render()
        self.edited.emit(op.op)

    def ops_json(self) -> list[dict]:
        return [op.to_json() for op in self.history]

    # -- drawing -----------------------------------------------------------------------------
    def refresh(self) -> None:
        """Bring the viewport and the panel up to the document."""
        if self.doc is None:
            return
        with self._no_renders():
            self._update_mesh()
            self._update_curves()
            self._update_cage()
            self._refresh_panel()

    @contextmanager
    def _no_renders(self):
        """Switching a VTK widget on or off renders the window (50 ms for a 200k-face mesh on
        a software rasteriser); while handles are rebuilt, the caller renders once after."""
        iren = self.window.viewport.iren.interactor
        was = iren.GetEnableRender()
        iren.EnableRenderOff()
        try:
            yield
        finally:
            iren.SetEnableRender(was)

    def _mesh_data(self) -> pv.PolyData | None:
        return self.window.mesh_data if self.window.mesh_actor is not None else None

    def _update_mesh(self) -> None:
        data, mesh = self._mesh_data(), self.doc.mesh
        if data is None or mesh is None:
            return
        if self._shown_faces is mesh.faces and data.n_points == len(mesh.vertices):
            data.points = mesh.vertices.astype(np.float32)  # the same cells: points in place
            if "Normals" in data.point_data:
                data.point_data["Normals"] = vertex_normals(mesh.vertices, mesh.faces)
        else:
            new = snapshot_mesh({"vertices": mesh.vertices, "faces": mesh.faces,
                                 "colors": mesh.colors})
            if COLOR_ARRAY not in new.point_data and len(mesh.faces):
                new.point_data["Normals"] = vertex_normals(mesh.vertices, mesh.faces)
            data.shallow_copy(new)
            self._shown_faces = mesh.faces
        data.Modified()

    def _update_curves(self) -> None:
        curves = self.doc.curves
        if curves is None:
            return
        if self.selected is not None and self.selected >= len(curves):
            self.selected = None
        self.window.show_geometry("curves", curves_payload(curves))
        self._show_selected()

    # -- curves ------------------------------------------------------------------------------
    def select_curve(self, index: int | None) -> None:
        """Select curve ``index`` (handles on its control points), or none."""
        if index is not None and not self.ensure_doc():
            return
        if index is not None and (self.doc.curves is None or not 0 <= index < len(self.doc.curves)):
            index = None
        self.selected = index
        lst = self.panel.curve_list
        lst.blockSignals(True)
        lst.clearSelection()
        if index is not None and index < lst.count():
            lst.item(index).setSelected(True)
            lst.scrollToItem(lst.item(index))
        lst.blockSignals(False)
        with self._no_renders():
            self._show_selected()
        self.window.viewport.render()

    def _show_selected(self) -> None:
        self._clear_handles()
        i = self.selected
        if self.doc is None or self.doc.curves is None or i is None:
            if self.selected_actor is not None:
                self.selected_actor.SetVisibility(False)
            return
        curve = self.doc.curves[i]
        line = curves_payload([curve])["points"]
        pts = cg.points_of(curve)
        if curve["type"] == "bezier":  # the control polygon too
            line = np.vstack([line, pts[::-1]])
        poly = pv.lines_from_points(np.asarray(line, np.float64))
        if self.selected_data is None:
            self.selected_data = poly
            self.selected_actor = self.window.viewport.add_mesh(
                self.selected_data, color=SELECTED_COLOR, line_width=4, lighting=False,
                name="selected_curve", reset_camera=False, render=False, pickable=False)
        else:
            self.selected_data.shallow_copy(poly)
            self.selected_data.Modified()
        self.selected_actor.SetVisibility(True)
        radius = self._handle_radius()
        for j, p in enumerate(pts[:MAX_HANDLES]):
            self.handles.append(self._handle(p, radius, HANDLE_COLOR,
                                             lambda w, _e, j=j: self._on_point_dragged(j, w)))

    def _on_point_dragged(self, j: int, widget) -> None:
        if self.selected is None:
            return
        to = [float(x) for x in widget.GetCenter()]
        # applied after VTK has finished with the widget: the edit replaces the handles
        spec = {"op": "move_control_point", "curve": self.selected, "point": j, "to": to}
        QTimer.singleShot(0, lambda: self.apply(spec))

    def handle_centers(self) -> np.ndarray:
        """Centres of the selected curve's handles (for tests and scripts)."""
        return np.array([h.GetCenter() for h in self.handles]).reshape(-1, 3)

    def pick_curve_at(self, x: int, y: int) -> int | None:
        """Select the curve under display pixel (x, y) (VTK's origin, bottom left)."""
        actor = self.window.geometry_actors.get("curves")
        if actor is None or not self.ensure_doc() or self.doc.curves is None:
            return None
        import vtk

        picker = vtk.vtkCellPicker()
        picker.SetTolerance(0.01)
        picker.PickFromListOn()
        picker.AddPickList(actor)
        actor.SetPickable(True)
        try:
            hit = picker.Pick(x, y, 0, self.window.viewport.renderer) and picker.GetCellId() >= 0
        finally:
            actor.SetPickable(False)
        index = int(picker.GetCellId()) if hit else None
        self.select_curve(index)
        return index

    def _selected_rows(self) -> list[int]:
        return sorted(self.panel.curve_list.row(it) for it in self.panel.curve_list.selectedItems())

    def _on_curve_list_changed(self) -> None:
        rows = self._selected_rows()
        self.selected = rows[-1] if rows else None
        with self._no_renders():
            self._show_selected()
        self.window.viewport.render()

    def _on_curve_op(self, op: str) -> None:
        if self.selected is None:
            self.window._show_error("Select a curve first (in the list, or click it with "
                                    "Pick curves on)")
            return
        index = self.selected
        spec = {"op": op, "index": index} if op == "delete_curve" else {"op": op, "curve": index}
        if self.apply(spec) and op != "delete_curve":
            self.select_curve(index)

    def _on_pair_op(self, op: str) -> None:
        rows = self._selected_rows()
        if len(rows) != 2:
            self.window._show_error("Select two curves (Ctrl+click in the list)")
            return
        if self.apply({"op": op, "curves": rows}):
            self.select_curve(rows[0])

    def _on_pick_curves_changed(self, on: bool) -> None:
        if on:
            self.ensure_doc()

    @property
    def picking_curves(self) -> bool:
        return self.panel.pick_curves.isChecked()

    # -- cage --------------------------------------------------------------------------------
    def _update_cage(self) -> None:
        cage = self.doc.cage
        if cage is None:
            self._clear_cage()
            return
        if self.cage_data is not None and self.cage_data.n_points == len(cage.vertices) and \
                self._cage_edges is cage.edges:
            self.cage_data.points = cage.vertices
            self.cage_data.Modified()
            for h, p in zip(self.cage_handles, cage.vertices, strict=False):
                h.SetCenter(*p)
            self._update_face_handles()
            return
        self._clear_cage()
        lines = np.hstack([np.full((len(cage.edges), 1), 2), cage.edges]).ravel()
        self.cage_data = pv.PolyData(np.asarray(cage.vertices, np.float64), lines=lines)
        self._cage_edges = cage.edges
        self.cage_actor = self.window.viewport.add_mesh(
            self.cage_data, color=CAGE_COLOR, line_width=2, lighting=False, name="cage",
            reset_camera=False, render=False, pickable=False)
        radius = 0.8 * self._handle_radius()
        for i, p in enumerate(cage.vertices):
            self.cage_handles.append(self._handle(p, radius, CAGE_COLOR,
                                                  lambda w, _e, i=i: self._on_cage_dragged(i, w)))
        self._update_face_handles()

    def face_centers(self, box: int) -> dict[str, np.ndarray]:
        """Centre of each face of cage box ``box`` (where its face handles sit)."""
        cage = self.doc.cage
        return {face: cage.vertices[cage.face_vertices(box, face)].mean(0) for face in FACES}

    def _update_face_handles(self) -> None:
        """One handle on each face of the box chosen in the panel: drag it to move the face."""
        cage = None if self.doc is None else self.doc.cage
        box = int(self.panel.box_index.value())
        if cage is None or not 0 <= box < len(cage.boxes):
            self._clear_face_handles()
            return
        centers = self.face_centers(box)
        if self.face_handles and self._face_box == box:
            for face, h in self.face_handles.items():
                h.SetCenter(*centers[face])
            return
        self._clear_face_handles()
        self._face_box = box
        radius = 1.1 * self._handle_radius()
        for face, c in centers.items():
            self.face_handles[face] = self._handle(
                c, radius, FACE_COLOR, lambda w, _e, f=face: self._on_face_dragged(f, w))

    def _on_face_dragged(self, face: str, widget) -> None:
        if self.doc is None or self.doc.cage is None:
            return
        box = self._face_box
        axis = "xyz".index(face[1])
        moved = float(np.asarray(widget.GetCenter())[axis] - self.face_centers(box)[face][axis])
        if moved != 0.0:  # along the face's own axis only: a face moves along its normal
            delta = [0.0, 0.0, 0.0]
            delta[axis] = moved
            spec = {"op": "move_face", "box": box, "face": face, "delta": delta}
            QTimer.singleShot(0, lambda: self.apply(spec))
        else:
            QTimer.singleShot(0, self._update_face_handles)

    def face_handle_centers(self) -> dict[str, np.ndarray]:
        return {f: np.array(h.GetCenter()) for f, h in self.face_handles.items()}

    def _clear_face_handles(self) -> None:
        for h in self.face_handles.values():
            h.Off()
            self._retired_cage.append(h)
        self.face_handles = {}
        self._face_box = None

    def _on_cage_dragged(self, i: int, widget) -> None:
        if self.doc is None or self.doc.cage is None:
            return
        delta = np.asarray(widget.GetCenter()) - self.doc.cage.vertices[i]
        if np.any(delta != 0):
            spec = {"op": "move_cage", "vertices": [i], "delta": delta.tolist()}
            QTimer.singleShot(0, lambda: self.apply(spec))

    def cage_handle_centers(self) -> np.ndarray:
        return np.array([h.GetCenter() for h in self.cage_handles]).reshape(-1, 3)

    def _on_box_changed(self, _box: int) -> None:
        if self.doc is not None and self.doc.cage is not None:
            with self._no_renders():
                self._update_face_handles()
            self.window.viewport.render()

    def _on_fit_cage_clicked(self) -> None:
        self.apply({"op": "cage", "kind": self.panel.cage_kind.currentText(),
                    "cubes": int(self.panel.cage_cubes.value())})

    def _on_scale_box_clicked(self) -> None:
        self.apply({"op": "scale_box", "box": int(self.panel.box_index.value()),
                    "factor": float(self.panel.box_factor.value())})

    def _on_move_face_clicked(self) -> None:
        face = self.panel.face.currentText()
        delta = [0.0, 0.0, 0.0]
        delta["xyz".index(face[1])] = float(self.panel.face_offset.value()) * (
            1 if face[0] == "+" else -1)
        self.apply({"op": "move_face", "box": int(self.panel.box_index.value()), "face": face,
                    "delta": delta})

    def _clear_cage(self) -> None:
        for h in self.cage_handles:
            h.Off()
        self._retired_cage = self.cage_handles
        self.cage_handles = []
        self._clear_face_handles()
        if self.cage_actor is not None:
            self.window.viewport.remove_actor(self.cage_actor, render=False)
        self.cage_actor = self.cage_data = None
        self._cage_edges = None

    # -- crop --------------------------------------------------------------------------------
    def _on_crop_box_toggled(self, on: bool) -> None:
        if not on:
            self._clear_crop_widget()
            self.window.viewport.render()
            return
        if not self.ensure_doc():
            self.panel.crop_box_button.setChecked(False)
            return
        import vtk

        lo, hi = self._doc_bounds()
        widget = vtk.vtkBoxWidget()
        widget.SetInteractor(self.window.viewport.iren.interactor)
        widget.SetCurrentRenderer(self.window.viewport.renderer)
        widget.SetPlaceFactor(1.0)
        widget.RotationEnabledOff()
        widget.GetOutlineProperty().SetColor(pv.Color(CROP_COLOR).float_rgb)
        widget.PlaceWidget(lo[0], hi[0], lo[1], hi[1], lo[2], hi[2])
        widget.On()
        self.crop_widget = widget
        self.window.viewport.render()

    def crop_bounds(self) -> tuple[list[float], list[float]] | None:
        """The crop box widget's box (min, max), when it is placed."""
        if self.crop_widget is None:
            return None
        poly = vtk_polydata()
        self.crop_widget.GetPolyData(poly)
        b = poly.GetBounds()
        return [b[0], b[2], b[4]], [b[1], b[3], b[5]]

    def crop_box(self) -> tuple | None:
        """The applied crop (min, max) of the open result, the bounds of its next training."""
        if self.doc is None or self.doc.crop is None:
            return None
        return tuple(tuple(float(x) for x in b) for b in self.doc.crop)

    def place_crop_box(self, lo, hi) -> None:
        """Put the crop box at (lo, hi) (shown, for Apply Crop)."""
        if self.crop_widget is None:
            self.panel.crop_box_button.setChecked(True)
        if self.crop_widget is not None:
            self.crop_widget.PlaceWidget(lo[0], hi[0], lo[1], hi[1], lo[2], hi[2])

    def _on_apply_crop_clicked(self) -> None:
        box = self.crop_bounds()
        if box is None:
            self.window._show_error("Place the crop box first (Place Crop Box), then apply it")
            return
        if self.apply({"op": "crop", "min": box[0], "max": box[1]}):
            self.panel.crop_box_button.setChecked(False)

    def _clear_crop_widget(self) -> None:
        if self.crop_widget is not None:
            self.crop_widget.Off()
            self._retired.append(self.crop_widget)
            self.crop_widget = None

    # -- helpers -----------------------------------------------------------------------------
    def _doc_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        pts = []
        if self.doc.mesh is not None and len(self.doc.mesh.vertices):
            pts.append(self.doc.mesh.vertices)
        if self.doc.curves:
            pts.append(np.vstack([cg.points_of(c) for c in self.doc.curves]))
        if not pts:
            return np.zeros(3), np.ones(3)
        allp = np.vstack(pts)
        return allp.min(0), allp.max(0)

    def _handle_radius(self) -> float:
        lo, hi = self._doc_bounds()
        return max(float(np.linalg.norm(hi - lo)), 1e-9) * 0.012

    def _handle(self, center, radius: float, color: str, on_end):
        import vtk

        w = vtk.vtkSphereWidget()
        w.SetInteractor(self.window.viewport.iren.interactor)
        w.SetCurrentRenderer(self.window.viewport.renderer)
        w.SetRepresentationToSurface()
        w.SetRadius(radius)
        w.SetCenter(*[float(c) for c in center])
        w.SetThetaResolution(12)
        w.SetPhiResolution(8)
        w.ScaleOff()  # dragging moves the point; it never resizes the handle
        w.GetSphereProperty().SetColor(pv.Color(color).float_rgb)
        w.GetSelectedSphereProperty().SetColor(pv.Color(SELECTED_COLOR).float_rgb)
        w.AddObserver("EndInteractionEvent", on_end)
        w.On()
        return w

    def _clear_handles(self) -> None:
        for h in self.handles:
            h.Off()
        self._retired = self.handles  # freed on the next clear, never inside VTK's own event
        self.handles = []

    def _refresh_panel(self) -> None:
        p = self.panel
        doc = self.doc
        lst = p.curve_list
        lst.blockSignals(True)
        lst.clear()
        if doc is not None and doc.curves is not None:
            for i, c in enumerate(doc.curves):
                n = len(cg.points_of(c))
                QListWidgetItem(f"{i}: {c['type']}" + (f" ({n} points)" if c["type"] == "polyline"
                                                       else ""), lst)
            if self.selected is not None and self.selected < lst.count():
                lst.item(self.selected).setSelected(True)
        lst.blockSignals(False)
        boxes = 0 if doc is None or doc.cage is None else len(doc.cage.boxes)
        p.box_index.setRange(0, max(boxes - 1, 0))
        for b in (p.scale_box_button, p.move_face_button):
            b.setEnabled(boxes > 0)
        has_mesh = self.editable_path() is not None
        p.fit_cage_button.setEnabled(has_mesh)
        p.export_button.setEnabled(has_mesh and self.process is None)
        if doc is None:
            p.status.setText("Open a result (mesh or curves) to edit it" if not has_mesh
                             else "Edits apply to the open result; Export writes them")
        else:
            parts = [f"{len(self.history)} edit(s)"]
            if doc.mesh is not None:
                parts.append(f"mesh {len(doc.mesh.vertices):,} vertices")
            if doc.curves is not None:
                parts.append(f"{len(doc.curves)} curves")
            if doc.cage is not None:
                parts.append(f"{doc.cage.kind} cage, {len(doc.cage.vertices)} vertices")
            p.status.setText(", ".join(parts))

    # -- export ------------------------------------------------------------------------------
    def export_to(self, out: str | Path) -> bool:
        """`recon edit RESULT --ops <the edits> --out OUT` in a subprocess."""
        path = self.editable_path()
        if path is None:
            self.window._show_error("Open a result to export its edits")
            return False
        if self.process is not None:
            self.window._show_error("An export of the edits is already running")
            return False
        fd, name = tempfile.mkstemp(prefix="recon-edits-", suffix=".json")
        with open(fd, "w") as f:
            json.dump({"ops": self.ops_json()}, f)
        self._ops_file, self._export_out = Path(name), Path(out)
        proc = QProcess(self)
        proc.finished.connect(lambda code, _s: self._on_export_finished(proc, code))
        self.process = proc
        self._refresh_panel()
        self.window.status_label.setText(f"Writing the edited result to {out}...")
        proc.start(sys.executable, ["-m", "reconstruction.cli", "edit", str(path), "--ops",
                                    name, "--out", str(out)])
        return True

    def _on_export_finished(self, proc: QProcess, code: int) -> None:
        err = bytes(proc.readAllStandardError()).decode(errors="replace").strip()
        self.process = None
        proc.deleteLater()
        if self._ops_file is not None:
            self._ops_file.unlink(missing_ok=True)
        self._refresh_panel()
        if code != 0:
            reason = recon_error(err, code)
            self.window._show_error(f"Edited result not written: {reason}")
            self.export_failed.emit(reason)
            return
        text = f"Edited result written to {self._export_out}"
        self.window.status_label.setText(text)
        self.window._log("info", text)
        self.exported.emit(str(self._export_out))

    def close(self) -> None:
        if self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning:
            self.process.kill()
            self.process.waitForFinished(3000)
        self._clear_handles()
        self._clear_cage()
        self._clear_crop_widget()
        # let go of the interactor before the viewport closes: no widget outlives it
        for h in (*self._retired, *self._retired_cage):
            h.SetInteractor(None)
        self._retired, self._retired_cage = [], []


def vtk_polydata():
    import vtk

    return vtk.vtkPolyData()

