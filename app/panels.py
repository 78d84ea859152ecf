"""The panels: the capture's images, method and settings, progress with a loss/PSNR plot, log, export dialog.

The settings form is generated from the method catalogue (:mod:`app.training`): one row per
field of the method's config dataclass, a check box for a bool, a spin box for an int, a
validated text field for a float (exact, so 1e-15 stays 1e-15), a text field otherwise; the
field's docstring is the row's tooltip. Widgets only: the window decides what happens.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal, Slot
from PySide6.QtGui import (
    QColor,
    QDoubleValidator,
    QFontDatabase,
    QIcon,
    QImage,
    QPainter,
    QPen,
    QPixmap,
    QPolygonF,
)
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from app.capture import STATUS_COLORS, CaptureImage, CaptureInfo
from app.training import STATE_LABELS, FieldInfo, MethodInfo

EXPORT_FORMATS = ("ply", "obj", "glb", "stl")
FORMAT_NOTES = {
    "ply": "binary PLY with vertex colours",
    "obj": "OBJ, colours as the common v x y z r g b extension",
    "glb": "glTF 2.0 binary with vertex colours and normals",
    "stl": "binary STL, positions only (no colours)",
}
INT_LIMIT = 2_000_000_000


class SettingsForm(QWidget):
    """The fields of one method's config as form rows; reads back typed values."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.method: MethodInfo | None = None
        self.editors: dict[str, QWidget] = {}
        self.form = QFormLayout(self)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.form.setContentsMargins(4, 4, 4, 4)

    def set_method(self, method: MethodInfo, values: dict[str, Any] | None = None) -> None:
        while self.form.rowCount():
            self.form.removeRow(0)
        self.editors.clear()
        self.method = method
        values = values or {}
        for f in method.fields:
            editor = self._editor(f, values.get(f.name, f.default))
            tip = f"{f.name} ({f.type}, default {f.format(f.default)})\n{f.doc}"
            editor.setToolTip(tip)
            editor.setMinimumWidth(70)
            label = QLabel(f.label)
            label.setToolTip(tip)
            self.form.addRow(label, editor)
            self.editors[f.name] = editor

    def _editor(self, f: FieldInfo, value: Any) -> QWidget:
        if f.type == "bool":
            box = QCheckBox()
            box.setChecked(bool(value))
            box.toggled.connect(self._on_value_changed)
            return box
        if f.type == "int" and -INT_LIMIT <= int(value) <= INT_LIMIT:
            spin = QSpinBox()
            spin.setRange(-INT_LIMIT, INT_LIMIT)
            spin.setGroupSeparatorShown(True)
            spin.setValue(int(value))
            spin.valueChanged.connect(self._on_value_changed)
            return spin
        edit = QLineEdit(f.format(value))
        if f.type == "float":
            validator = QDoubleValidator(edit)
            validator.setNotation(QDoubleValidator.Notation.ScientificNotation)
            edit.setValidator(validator)
        edit.textChanged.connect(self._on_value_changed)
        return edit

    @Slot()
    def _on_value_changed(self, *_args) -> None:
        self.changed.emit()

    def values(self) -> dict[str, Any]:
        """Every field's current value. Raises ValueError naming a field that does not parse."""
        assert self.method is not None
        out: dict[str, Any] = {}
        for f in self.method.fields:
            editor = self.editors[f.name]
            if isinstance(editor, QCheckBox):
                out[f.name] = editor.isChecked()
            elif isinstance(editor, QSpinBox):
                out[f.name] = editor.value()
            else:
                try:
                    out[f.name] = f.parse(editor.text())
                except ValueError as exc:
                    raise ValueError(
                        f"setting {f.label}: {editor.text()!r} is not a valid {f.type} ({exc})"
                    ) from None
        return out

    def set_value(self, name: str, value: Any) -> None:
        """Set one field's editor (for scripts and tests)."""
        editor = self.editors[name]
        if isinstance(editor, QCheckBox):
            editor.setChecked(bool(value))
        elif isinstance(editor, QSpinBox):
            editor.setValue(int(value))
        else:
            assert self.method is not None
            editor.setText(self.method.field(name).format(value))

    def reset(self) -> None:
        if self.method is not None:
            for f in self.method.fields:
                self.set_value(f.name, f.default)


class MethodPanel(QWidget):
    """Method choice, its settings, the budget, the output folder and the run buttons."""

    start_requested = Signal()
    pause_requested = Signal()
    resume_requested = Signal()
    stop_requested = Signal()
    restart_requested = Signal()
    method_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.methods: dict[str, MethodInfo] = {}
        self._saved: dict[str, dict[str, Any]] = {}  # method -> values shown before a switch

        self.method_combo = QComboBox()
        self.method_combo.setPlaceholderText("loading methods...")
        self.method_combo.currentTextChanged.connect(self._on_method_changed)
        self.method_doc = QLabel("Open a capture to train on it.")
        self.method_doc.setWordWrap(True)
        self.method_doc.setStyleSheet("color: #555;")

        self.limit_combo = QComboBox()
        self.limit_combo.addItems(["Budget (seconds)", "Steps"])
        self.limit_combo.currentIndexChanged.connect(self._on_limit_changed)
        self.limit_spin = QSpinBox()
        self.limit_spin.setRange(1, INT_LIMIT)
        self.limit_spin.setGroupSeparatorShown(True)
        self.limit_spin.setValue(60)
        self.limit_spin.setToolTip("Seconds of training (wall clock, training steps only)")
        self._limits = {0: 60, 1: 2000}

        self.out_edit = QLineEdit()
        self.out_edit.setPlaceholderText("beside the capture")
        self.out_edit.setToolTip("Result folder (mesh.ply, metrics.json, checkpoint.pt)")
        self.out_button = QPushButton("...")
        self.out_button.setFixedWidth(32)
        self.out_button.setToolTip("Choose the result folder")
        self.out_button.clicked.connect(self._on_out_browse)

        self.settings_form = SettingsForm()
        self.settings_scroll = QScrollArea()
        self.settings_scroll.setWidgetResizable(True)
        self.settings_scroll.setWidget(self.settings_form)
        self.settings_scroll.setMinimumHeight(120)
        self.settings_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.reset_button = QPushButton("Defaults")
        self.reset_button.setToolTip("Put every setting of this method back to its default")
        self.reset_button.clicked.connect(self._on_reset_clicked)

        self.start_button = QPushButton("Start")
        self.pause_button = QPushButton("Pause")
        self.resume_button = QPushButton("Resume")
        self.stop_button = QPushButton("Stop")
        self.restart_button = QPushButton("Restart engine and resume")
        self.start_button.setToolTip("Train the chosen method on the open capture")
        self.stop_button.setToolTip("Stop training; the result is still written")
        self.restart_button.setToolTip(
            "Start a new engine and continue from the last checkpoint (or from the start)"
        )
        self.start_button.clicked.connect(self.start_requested)
        self.pause_button.clicked.connect(self.pause_requested)
        self.resume_button.clicked.connect(self.resume_requested)
        self.stop_button.clicked.connect(self.stop_requested)
        self.restart_button.clicked.connect(self.restart_requested)
        self.restart_button.setVisible(False)

        top = QFormLayout()
        top.addRow("Method", self.method_combo)
        top.addRow(self.method_doc)
        limit_row = QHBoxLayout()
        limit_row.addWidget(self.limit_combo)
        limit_row.addWidget(self.limit_spin, 1)
        top.addRow(limit_row)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_edit, 1)
        out_row.addWidget(self.out_button)
        top.addRow("Output", out_row)
        buttons = QGridLayout()
        buttons.addWidget(self.start_button, 0, 0)
        buttons.addWidget(self.pause_button, 0, 1)
        buttons.addWidget(self.resume_button, 1, 0)
        buttons.addWidget(self.stop_button, 1, 1)
        buttons.addWidget(self.restart_button, 2, 0, 1, 2)
        settings_row = QHBoxLayout()
        settings_row.addWidget(QLabel("Settings"))
        settings_row.addStretch(1)
        settings_row.addWidget(self.reset_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(buttons)
        layout.addLayout(settings_row)
        layout.addWidget(self.settings_scroll, 1)
        self.set_state("idle", can_start=False)

    # -- catalogue -------------------------------------------------------------------------
    def set_methods(self, methods: dict[str, MethodInfo], current: str | None = None,
                    values: dict[str, dict[str, Any]] | None = None) -> None:
        """Fill the method list; `values` are remembered settings per method."""
        self.methods = dict(methods)
        self._saved = {k: dict(v) for k, v in (values or {}).items()}
        self.method_combo.blockSignals(True)
        self.method_combo.clear()
        self.method_combo.addItems(sorted(self.methods))
        self.method_combo.blockSignals(False)
        name = current if current in self.methods else ("nerf" if "nerf" in self.methods else None)
        if name is None and self.methods:
            name = sorted(self.methods)[0]
        self.method_combo.setCurrentText(name or "")
        self._on_method_changed(self.method_combo.currentText())

    @property
    def method(self) -> MethodInfo | None:
        return self.methods.get(self.method_combo.currentText())

    @Slot(str)
    def _on_method_changed(self, name: str) -> None:
        previous = self.settings_form.method
        if previous is not None and previous.name in self.methods:
            try:
                self._saved[previous.name] = self.settings_form.values()
            except ValueError:
                pass
        method = self.methods.get(name)
        if method is None:
            return
        if previous is not None and previous.name == name:
            return
        self.method_doc.setText(method.doc)
        self.settings_form.set_method(method, self._saved.get(name))
        self.method_changed.emit(name)

    @Slot()
    def _on_reset_clicked(self) -> None:
        self.settings_form.reset()

    @Slot(int)
    def _on_limit_changed(self, index: int) -> None:
        self._limits[1 - index] = self.limit_spin.value()
        self.limit_spin.setValue(self._limits[index])
        self.limit_spin.setToolTip(
            "Seconds of training (wall clock, training steps only)" if index == 0
            else "Training steps"
        )

    @Slot()
    def _on_out_browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Result folder", self.out_edit.text())
        if path:
            self.out_edit.setText(path)

    # -- reading back -------------------------------------------------------------------------
    def changed_settings(self) -> dict[str, Any]:
        """The settings that differ from the method's defaults. Raises ValueError."""
        method = self.method
        if method is None:
            return {}
        return method.changed(self.settings_form.values())

    def limit(self) -> tuple[float | None, int | None]:
        """(budget seconds, steps); exactly one is set."""
        if self.limit_combo.currentIndex() == 0:
            return float(self.limit_spin.value()), None
        return None, int(self.limit_spin.value())

    def set_limit(self, budget: float | None = None, steps: int | None = None) -> None:
        if steps is not None:
            self.limit_combo.setCurrentIndex(1)
            self.limit_spin.setValue(int(steps))
        elif budget is not None:
            self.limit_combo.setCurrentIndex(0)
            self.limit_spin.setValue(max(1, int(round(budget))))

    # -- state -----------------------------------------------------------------------------------
    def set_state(self, state: str, can_start: bool) -> None:
        active = state in ("starting", "training", "paused", "stopping")
        self.start_button.setEnabled(can_start and not active and state != "died")
        self.pause_button.setEnabled(state in ("starting", "training"))
        self.resume_button.setEnabled(state == "paused")
        self.stop_button.setEnabled(state in ("starting", "training", "paused"))
        self.restart_button.setVisible(state == "died")
        self.restart_button.setEnabled(state == "died")
        for w in (self.method_combo, self.settings_form, self.limit_combo, self.limit_spin,
                  self.out_edit, self.out_button, self.reset_button):
            w.setEnabled(not active)


class CurvePlot(QWidget):
    """A small live line plot of one value over the steps (linear or log10 y axis).

    Painted directly (one polyline, the latest value and the y range as text), so a redraw
    costs well under a millisecond even after thousands of points; NaN and, on a log axis,
    values <= 0 are left out.
    """

    MAX_POINTS = 2000

    def __init__(self, title: str, color: str, log: bool = False,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = title
        self.color = QColor(color)
        self.log = log
        self.steps: list[float] = []
        self.values: list[float] = []
        self.setMinimumSize(160, 90)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(300, 140)

    def set_data(self, steps: list[float], values: list[float]) -> None:
        pairs = [(float(s), float(v)) for s, v in zip(steps, values, strict=False)
                 if math.isfinite(v) and (v > 0 or not self.log)]
        if len(pairs) > self.MAX_POINTS:  # keep the shape, not every point
            stride = math.ceil(len(pairs) / self.MAX_POINTS)
            pairs = pairs[::stride] + [pairs[-1]]
        self.steps = [p[0] for p in pairs]
        self.values = [p[1] for p in pairs]
        self.update()

    def _y(self, v: float) -> float:
        return math.log10(v) if self.log else v

    def paintEvent(self, _event) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(self.rect()).adjusted(6, 20, -6, -16)
        painter.fillRect(self.rect(), QColor("white"))
        painter.setPen(QPen(QColor("#bbb")))
        painter.drawRect(rect)
        painter.setPen(QPen(QColor("#333")))
        latest = f"  {self.values[-1]:.4g}" if self.values else ""
        painter.drawText(QPointF(6, 14), f"{self.title}{latest}")
        if len(self.values) >= 1:
            ys = [self._y(v) for v in self.values]
            lo, hi = min(ys), max(ys)
            if hi - lo < 1e-12:
                lo, hi = lo - 0.5, hi + 0.5
            x0, x1 = self.steps[0], self.steps[-1]
            span = (x1 - x0) or 1.0
            points = QPolygonF([
                QPointF(rect.left() + (s - x0) / span * rect.width(),
                        rect.bottom() - (y - lo) / (hi - lo) * rect.height())
                for s, y in zip(self.steps, ys, strict=True)
            ])
            painter.setPen(QPen(self.color, 1.5))
            painter.drawPolyline(points)
            painter.setBrush(self.color)
            painter.drawEllipse(points[points.size() - 1], 2.5, 2.5)  # the latest value
            painter.setPen(QPen(QColor("#666")))
            fmt = (lambda y: f"{10 ** y:.3g}") if self.log else (lambda y: f"{y:.3g}")
            painter.drawText(QRectF(rect.left() + 3, rect.top() + 2, rect.width() - 6, 14),
                             Qt.AlignmentFlag.AlignRight, fmt(hi))
            painter.drawText(QRectF(rect.left() + 3, rect.bottom() - 16, rect.width() - 6, 14),
                             Qt.AlignmentFlag.AlignRight, fmt(lo))
            painter.drawText(QPointF(rect.left(), self.height() - 3), f"step {int(x0):,}")
            end = f"{int(x1):,}"
            width = painter.fontMetrics().horizontalAdvance(end)
            painter.drawText(QPointF(rect.right() - width, self.height() - 3), end)
        else:
            painter.setPen(QPen(QColor("#999")))
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, "no data yet")
        painter.end()


class TrainingPanel(QWidget):
    """Progress bar and numbers, a live loss and PSNR plot, and the engine's log."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state_label = QLabel(STATE_LABELS["idle"])
        self.state_label.setMinimumWidth(120)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setTextVisible(True)
        self.progress_bar.setFormat("%p%")
        self.progress_label = QLabel("")
        self.progress_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.loss_plot = CurvePlot("loss", "#c0392b", log=True)
        self.psnr_plot = CurvePlot("PSNR (dB)", "#2471a3")
        self.plot_widget = QWidget()
        plots = QHBoxLayout(self.plot_widget)
        plots.setContentsMargins(0, 0, 0, 0)
        plots.addWidget(self.loss_plot)
        plots.addWidget(self.psnr_plot)

        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(2000)
        self.log_view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.log_view.setPlaceholderText("Engine messages appear here")

        row = QHBoxLayout()
        row.addWidget(self.state_label)
        row.addWidget(self.progress_bar, 1)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.plot_widget)
        self.splitter.addWidget(self.log_view)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(row)
        layout.addWidget(self.progress_label)
        layout.addWidget(self.splitter, 1)

    def set_progress(self, state: str, fraction: float, text: str) -> None:
        self.state_label.setText(STATE_LABELS.get(state, state))
        self.progress_bar.setValue(int(round(1000 * fraction)))
        self.progress_label.setText(text)

    def set_history(self, history: list[tuple[int, float, float]]) -> None:
        steps = [h[0] for h in history]
        self.loss_plot.set_data(steps, [h[1] for h in history])
        self.psnr_plot.set_data(steps, [h[2] for h in history])

    def append_log(self, level: str, text: str) -> None:
        if level == "error":
            self.log_view.appendHtml(f'<span style="color:#b00020">{_escape(text)}</span>')
        elif level == "warning":
            self.log_view.appendHtml(f'<span style="color:#9a6700">{_escape(text)}</span>')
        else:
            self.log_view.appendPlainText(text)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class ExportDialog(QDialog):
    """Format, face budget and file of a mesh export (run by the window as `recon export`)."""

    def __init__(self, result_dir: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export mesh")
        self.result_dir = Path(result_dir)
        self.format_combo = QComboBox()
        for fmt in EXPORT_FORMATS:
            self.format_combo.addItem(fmt.upper(), fmt)
            self.format_combo.setItemData(
                self.format_combo.count() - 1, FORMAT_NOTES[fmt], Qt.ItemDataRole.ToolTipRole
            )
        self.format_combo.currentIndexChanged.connect(self._on_format_changed)
        self.faces_spin = QSpinBox()
        self.faces_spin.setRange(0, INT_LIMIT)
        self.faces_spin.setGroupSeparatorShown(True)
        self.faces_spin.setSpecialValueText("keep all")
        self.faces_spin.setToolTip("Decimate to at most this many faces (keep all: no decimation)")
        self.faces_spin.valueChanged.connect(self._on_faces_changed)
        self.path_edit = QLineEdit()
        self.path_button = QPushButton("...")
        self.path_button.setFixedWidth(32)
        self.path_button.clicked.connect(self._on_path_browse)
        self.note_label = QLabel()
        self.note_label.setStyleSheet("color: #555;")
        self._auto_path = True
        self.path_edit.textEdited.connect(self._on_path_changed)

        form = QFormLayout()
        form.addRow("Format", self.format_combo)
        form.addRow("Faces", self.faces_spin)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(self.path_button)
        form.addRow("File", path_row)
        form.addRow(self.note_label)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(480)
        self._on_format_changed(0)

    @property
    def fmt(self) -> str:
        return self.format_combo.currentData()

    @property
    def faces(self) -> int | None:
        return self.faces_spin.value() or None

    @property
    def path(self) -> Path:
        return Path(self.path_edit.text()).expanduser()

    def _default_path(self) -> Path:
        name = f"mesh_{self.faces}.{self.fmt}" if self.faces else f"mesh.{self.fmt}"
        return self.result_dir / name

    def _update_path(self) -> None:
        if self._auto_path:
            self.path_edit.setText(str(self._default_path()))
        else:
            self.path_edit.setText(str(self.path.with_suffix(f".{self.fmt}")))

    @Slot(int)
    def _on_format_changed(self, _index: int) -> None:
        self.note_label.setText(FORMAT_NOTES[self.fmt])
        self._update_path()

    @Slot(int)
    def _on_faces_changed(self, _value: int) -> None:
        self._update_path()

    @Slot(str)
    def _on_path_changed(self, _text: str) -> None:
        self._auto_path = False

    @Slot()
    def _on_path_browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export mesh", str(self.path), f"{self.fmt.upper()} (*.{self.fmt})"
        )
        if path:
            self._auto_path = False
            self.path_edit.setText(path)

    def command_args(self) -> list[str]:
        """Arguments of `recon export` for the chosen format, budget and file."""
        args = ["export", str(self.result_dir), "--format", self.fmt, "--out", str(self.path)]
        if self.faces:
            args += ["--faces", str(self.faces)]
        return args


class CapturePanel(QWidget):
    """The open capture: its facts, every image as a thumbnail with its status, one larger.

    Filled by the window (:meth:`set_info`, :meth:`set_thumbnail`, :meth:`set_preview`);
    ``image_selected`` carries the index of a clicked image in :attr:`images`.
    """

    image_selected = Signal(int)
    thumb_size = 64

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.images: tuple[CaptureImage, ...] = ()
        self.summary_label = QLabel("No capture open")
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextFormat(Qt.TextFormat.RichText)
        self.list = QListWidget()
        self.list.setViewMode(QListView.ViewMode.IconMode)
        self.list.setIconSize(QSize(self.thumb_size, self.thumb_size))
        self.list.setGridSize(QSize(self.thumb_size + 22, self.thumb_size + 40))
        self.list.setResizeMode(QListView.ResizeMode.Adjust)
        self.list.setMovement(QListView.Movement.Static)
        self.list.setWrapping(True)
        self.list.setUniformItemSizes(True)
        self.list.setWordWrap(True)
        self.list.setSelectionMode(QListWidget.SelectionMode.SingleSelection)
        self.list.currentRowChanged.connect(self._on_current_row_changed)
        self.preview_label = QLabel()
        self.preview_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview_label.setMinimumHeight(120)
        self.preview_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.detail_label = QLabel("Click an image to see it larger")
        self.detail_label.setWordWrap(True)
        self.detail_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(self.list)
        self.splitter.addWidget(self.preview_label)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(self.detail_label)
        self._placeholder = self._blank_icon("#d0d4da")
        self._broken = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)

    def _blank_icon(self, color: str) -> QIcon:
        pix = QPixmap(self.thumb_size, self.thumb_size)
        pix.fill(QColor(color))
        return QIcon(pix)

    def set_message(self, text: str) -> None:
        """No list: a capture that could not be described (or is still being read)."""
        self.images = ()
        self.list.clear()
        self.summary_label.setText(_escape(text))
        self.preview_label.clear()
        self.detail_label.setText("")

    def set_info(self, info: CaptureInfo) -> None:
        self.images = info.images
        rows = info.summary_rows()
        html = "<br>".join(f"<b>{_escape(k)}</b>: {_escape(v)}" for k, v in rows)
        if info.problems:
            html += (f'<br><span style="color:{STATUS_COLORS["skipped"]}">'
                     f"{len(info.problems)} problem(s): see the red images</span>")
        self.summary_label.setText(html)
        self.list.clear()
        for i, image in enumerate(info.images):
            item = QListWidgetItem(self._placeholder, f"{image.name}\n{image.status_label}")
            item.setData(Qt.ItemDataRole.UserRole, i)
            item.setForeground(QColor(STATUS_COLORS.get(image.status, "#000000")))
            tip = f"{image.name}: {image.status_label}"
            if image.reason:
                tip += f"\n{image.reason}"
            item.setToolTip(tip)
            item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
            self.list.addItem(item)
            if image.status == "skipped" and not image.path:
                item.setIcon(self._broken)
        self.preview_label.clear()
        self.detail_label.setText("Click an image to see it larger")

    def set_thumbnail(self, index: int, image: QImage | None) -> None:
        item = self.list.item(index)
        if item is None:
            return
        item.setIcon(QIcon(QPixmap.fromImage(image)) if image is not None else self._broken)

    def set_preview(self, index: int, image: QImage | None, message: str = "") -> None:
        if index != self.list.currentRow():
            return
        if image is None:
            self.preview_label.setPixmap(self._broken.pixmap(48, 48))
        else:
            pix = QPixmap.fromImage(image).scaled(
                self.preview_label.size(), Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation)
            self.preview_label.setPixmap(pix)
        if message:
            self.detail_label.setText(self.detail_label.text() + f"\n{message}")

    def select(self, index: int) -> None:
        self.list.setCurrentRow(index)

    def rows(self) -> list[tuple[str, str, str]]:
        """(name, status, reason) per listed image, in the list's order."""
        return [(im.name, im.status, im.reason) for im in self.images]

    @Slot(int)
    def _on_current_row_changed(self, row: int) -> None:
        if not 0 <= row < len(self.images):
            return
        image = self.images[row]
        text = f"{image.name}: {image.status_label}"
        if image.reason:
            text += f" - {image.reason}"
        self.detail_label.setText(text)
        self.preview_label.clear()
        self.image_selected.emit(row)
