"""What the viewer shows, without Qt: the opened source, its files, metrics and display toggles.

The window (:mod:`app.window`) is a view of a :class:`ViewerModel`: it calls the model's
methods and redraws when the model reports a change (napari's model/view split), so the
state and its rules can be tested without a display. Nothing here imports Qt, VTK or torch.

A source is one of

- a result folder written by ``recon fit`` (``mesh.ply``, ``metrics.json``, maybe
  ``curves.json``/``splats.ply``; its cameras come from the capture named in metrics.json),
- a mesh file (``.ply``, ``.obj``, ``.glb``, ``.gltf``, ``.stl``, ``.vtk``, ``.vtp``),
- a capture folder with ``transforms_train.json`` (or an instant-ngp ``transforms.json``).

A ``metrics.json`` or ``transforms*.json`` file stands for its folder (the file dialog
cannot pick files and folders at once).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

MESH_SUFFIXES = (".ply", ".obj", ".glb", ".gltf", ".stl", ".vtk", ".vtp")
"""Mesh files the viewer opens (read by pyvista/VTK)."""
RESULT_FILES = ("mesh.ply", "metrics.json", "curves.json", "splats.ply")
"""Files `recon fit` writes into a result folder that the viewer lists."""
CAMERA_FILES = ("transforms_train.json", "transforms.json")
"""Camera files of a capture, first found wins."""
SUMMARY_METRICS = (
    ("method", "method"),
    ("steps", "steps"),
    ("seconds", "training time"),
    ("test_psnr", "test PSNR"),
    ("test_views", "test views"),
    ("steps_per_second", "steps/s"),
    ("device", "device"),
    ("image_size", "image size"),
)
"""Metrics shown first, in this order, with their labels; the others follow by name."""

SourceKind = Literal["result", "mesh", "capture"]
KIND_LABELS = {"result": "Result", "mesh": "Mesh", "capture": "Capture"}
Change = Literal["source", "mesh", "display"]


class OpenError(ValueError):
    """A path the viewer cannot open; the message says which file, why, and what to do."""


@dataclass(frozen=True)
class Source:
    """One opened path, resolved to the files the viewer draws and lists."""

    path: Path
    """The path as opened (folder or file), absolute."""
    kind: SourceKind
    mesh_path: Path | None = None
    """The mesh to draw, if any."""
    cameras_json: Path | None = None
    """A NeRF-synthetic/instant-ngp transforms json whose cameras can be drawn, if any."""
    metrics: dict[str, Any] = field(default_factory=dict)
    """Contents of metrics.json (empty when there is none)."""
    files: tuple[Path, ...] = ()
    """The files found, for the listing."""
    notes: tuple[str, ...] = ()
    """Problems that did not stop the opening (an unreadable metrics.json, ...)."""


@dataclass(frozen=True)
class MeshInfo:
    """What the viewport reports about the mesh it loaded."""

    n_points: int
    n_cells: int
    has_colors: bool
    bounds: tuple[float, float, float, float, float, float]
    """(xmin, xmax, ymin, ymax, zmin, zmax) in world coordinates."""


def _read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def _count_frames(cameras_json: Path) -> int | None:
    try:
        frames = _read_json(cameras_json).get("frames", [])
    except (OSError, ValueError, AttributeError):
        return None
    return len(frames) if isinstance(frames, list) else None


def _find_cameras(folder: Path) -> Path | None:
    for name in CAMERA_FILES:
        if (folder / name).is_file():
            return folder / name
    return None


def resolve_source(path: str | Path) -> Source:
    """Work out what `path` is and which files to show. Raises :class:`OpenError`."""
    path = Path(path).expanduser()
    if not path.exists():
        raise OpenError(
            f"{path} does not exist; open a result folder written by `recon fit`, "
            "a mesh file or a capture folder with transforms_train.json"
        )
    path = path.resolve()
    if path.is_file() and (
        path.name == "metrics.json"
        or (path.name.startswith("transforms") and path.suffix == ".json")
    ):
        return resolve_source(path.parent)  # the folder the json describes
    if path.is_file():
        if path.suffix.lower() not in MESH_SUFFIXES:
            raise OpenError(
                f"{path.name}: not a mesh file the viewer can read; use one of "
                f"{', '.join(MESH_SUFFIXES)}, or open the folder it belongs to"
            )
        return Source(path=path, kind="mesh", mesh_path=path, files=(path,))

    files = tuple(path / name for name in RESULT_FILES if (path / name).is_file())
    if files:
        return _resolve_result(path, files)
    cameras = _find_cameras(path)
    if cameras is not None:
        found = tuple(
            path / n
            for n in (
                "transforms_train.json",
                "transforms_val.json",
                "transforms_test.json",
                "transforms.json",
            )
            if (path / n).is_file()
        )
        return Source(path=path, kind="capture", cameras_json=cameras, files=found)
    if (path / "sparse").is_dir() or (path / "sfm_report.json").is_file():  # `recon sfm`
        found = tuple(p for p in (path / "sfm_report.json",) if p.is_file())
        return Source(path=path, kind="capture", files=found)
    if (path / "cameras_sphere.npz").is_file():  # IDR / NeuS layout (e.g. DTU)
        return Source(path=path, kind="capture", files=(path / "cameras_sphere.npz",))
    meshes = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in MESH_SUFFIXES)
    if len(meshes) == 1:
        return Source(path=path, kind="mesh", mesh_path=meshes[0], files=(meshes[0],))
    raise OpenError(
        f"{path}: found neither mesh.ply/metrics.json (a `recon fit` result) nor a capture "
        "(transforms_train.json, transforms.json, sparse/ or cameras_sphere.npz); open one of "
        "those folders or a mesh file"
    )


def _resolve_result(folder: Path, files: tuple[Path, ...]) -> Source:
    metrics: dict[str, Any] = {}
    notes: list[str] = []
    metrics_path = folder / "metrics.json"
    if metrics_path.is_file():
        try:
            loaded = _read_json(metrics_path)
        except (OSError, ValueError) as exc:
            notes.append(f"metrics.json could not be read ({exc}); the mesh is shown without it")
        else:
            if isinstance(loaded, dict):
                metrics = loaded
            else:
                notes.append("metrics.json is not a JSON object; ignored")
    mesh = folder / "mesh.ply"
    if not mesh.is_file() and not any((folder / f).is_file() for f in ("curves.json", "splats.ply")):
        shown = ", ".join(p.name for p in files)
        notes.append(f"no mesh.ply, curves.json or splats.ply here ({shown})")
    # The capture the result was trained on, for its cameras (only when it is still there).
    cameras = None
    data = metrics.get("data")
    if isinstance(data, str) and data:
        capture = Path(data).expanduser()
        if not capture.is_absolute():
            capture = (folder / capture).resolve()
        if capture.is_dir():
            cameras = _find_cameras(capture)
    return Source(
        path=folder,
        kind="result",
        mesh_path=mesh if mesh.is_file() else None,
        cameras_json=cameras,
        metrics=metrics,
        files=files,
        notes=tuple(notes),
    )


def format_value(key: str, value: Any) -> str:
    """A metric as a person reads it: units on times and PSNR, few digits, lists joined."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if key == "seconds" or key.endswith("_seconds"):
            return f"{value:.1f} s"
        if key.endswith("psnr"):
            return f"{value:.2f} dB"
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (list, tuple)):
        if key == "image_size" and len(value) == 2:
            return f"{value[0]} x {value[1]}"
        if len(value) > 4 or any(isinstance(v, (dict, list)) for v in value):
            return f"{len(value)} items"
        return ", ".join(str(v) for v in value) if value else "none"
    if isinstance(value, dict):
        return f"{len(value)} entries"
    return str(value)


class ViewerModel:
    """The viewer's state; listeners get ``"source"``, ``"mesh"`` or ``"display"`` on a change."""

    def __init__(self) -> None:
        self.source: Source | None = None
        self.mesh_info: MeshInfo | None = None
        self.mesh_error: str | None = None
        self.n_cameras: int | None = None
        self.wireframe = False
        self.show_cameras = True
        self.show_bounds = False
        """An outline of the shown geometry's bounding box."""
        self.show_colors = True
        """Vertex colours when the mesh has them; a plain, lit colour when off."""
        self._listeners: list[Callable[[Change], None]] = []

    # -- observers -------------------------------------------------------------------------
    def connect(self, listener: Callable[[Change], None]) -> None:
        self._listeners.append(listener)

    def disconnect(self, listener: Callable[[Change], None]) -> None:
        self._listeners.remove(listener)

    def _emit(self, change: Change) -> None:
        for listener in list(self._listeners):
            listener(change)

    # -- state changes ---------------------------------------------------------------------
    def open(self, path: str | Path) -> Source:
        """Resolve and make `path` the current source. On :class:`OpenError` nothing changes."""
        source = resolve_source(path)
        self.source = source
        self.mesh_info = None
        self.mesh_error = None
        self.n_cameras = _count_frames(source.cameras_json) if source.cameras_json else None
        # A capture is its cameras; around a result they are context and would stand
        # between the view and the mesh, so they start hidden (View > Show Cameras).
        self.show_cameras = source.kind == "capture"
        self._emit("source")
        return source

    def set_mesh_info(self, info: MeshInfo) -> None:
        self.mesh_info = info
        self.mesh_error = None
        self._emit("mesh")

    def set_mesh_error(self, message: str) -> None:
        self.mesh_info = None
        self.mesh_error = message
        self._emit("mesh")

    def set_wireframe(self, on: bool) -> None:
        if on != self.wireframe:
            self.wireframe = bool(on)
            self._emit("display")

    def set_show_bounds(self, on: bool) -> None:
        if on != self.show_bounds:
            self.show_bounds = bool(on)
            self._emit("display")

    def set_show_colors(self, on: bool) -> None:
        if on != self.show_colors:
            self.show_colors = bool(on)
            self._emit("display")

    def set_show_cameras(self, on: bool) -> None:
        if on != self.show_cameras:
            self.show_cameras = bool(on)
            self._emit("display")

    # -- what the panels show --------------------------------------------------------------
    @property
    def title(self) -> str:
        if self.source is None:
            return "ReconStudio"
        return f"{self.source.path.name} - ReconStudio"

    def file_rows(self) -> list[tuple[str, str]]:
        """(name, detail) per listed file."""
        if self.source is None:
            return []
        rows = []
        for path in self.source.files:
            try:
                size = path.stat().st_size
            except OSError:
                size = None
            rows.append((path.name, _format_size(size) if size is not None else "missing"))
        return rows

    def geometry_rows(self) -> list[tuple[str, str]]:
        """(label, value) about what is drawn: mesh size, colours, cameras."""
        if self.source is None:
            return []
        rows: list[tuple[str, str]] = []
        if self.source.mesh_path is not None:
            if self.mesh_info is not None:
                rows.append(("vertices", f"{self.mesh_info.n_points:,}"))
                rows.append(("faces", f"{self.mesh_info.n_cells:,}"))
                rows.append(("colours", "per vertex" if self.mesh_info.has_colors else "none"))
            elif self.mesh_error is not None:
                rows.append(("mesh", f"not loaded: {self.mesh_error}"))
            else:
                rows.append(("mesh", "loading..."))
        if self.source.cameras_json is not None:
            n = self.n_cameras
            rows.append(("cameras", f"{n:,}" if n is not None else "unreadable"))
        return rows

    def metric_rows(self) -> list[tuple[str, str, list[tuple[str, str]]]]:
        """(label, value, children) per metric; nested dicts become children."""
        if self.source is None:
            return []
        metrics = self.source.metrics
        keys = [k for k, _ in SUMMARY_METRICS if k in metrics]
        keys += [k for k in metrics if k not in keys and k != "data"]
        labels = dict(SUMMARY_METRICS)
        rows = []
        for key in keys:
            value = metrics[key]
            children = []
            if isinstance(value, dict):
                children = [
                    (str(k).replace("_", " "), format_value(str(k), v)) for k, v in value.items()
                ]
            label = labels.get(key, key.replace("_", " "))
            rows.append((label, format_value(key, value), children))
        if "data" in metrics:
            rows.append(("data", str(metrics["data"]), []))
        return rows

    def status_text(self) -> str:
        """One line for the status bar."""
        if self.source is None:
            return "Open a result folder, a mesh or a capture (File > Open, or drop it here)"
        name = self.source.path.name
        if self.source.mesh_path is not None:
            if self.mesh_error is not None:
                return f"{self.source.mesh_path.name}: {self.mesh_error}"
            if self.mesh_info is None:
                return f"Loading {self.source.mesh_path.name}..."
            text = (
                f"{self.source.mesh_path.name}: {self.mesh_info.n_points:,} vertices, "
                f"{self.mesh_info.n_cells:,} faces"
            )
        else:
            text = name
        if self.n_cameras is not None:
            text += f", {self.n_cameras} cameras"
        psnr = self.source.metrics.get("test_psnr")
        if isinstance(psnr, (int, float)):
            text += f"; test PSNR {psnr:.2f} dB"
        return text


def _format_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
