"""Edits as data: small JSON operations on an :class:`EditDocument`, each with an inverse.

Every operation is a dataclass named by its ``op`` string and built from (or written to) one
JSON object; ``apply(doc)`` changes the document and remembers what it replaced, and
``invert(doc)`` puts that back. The document's arrays are never changed in place (they are
read-only): an edit replaces them, so an inverse restores the previous state bit for bit
and costs no copy. The window keeps applied operations on its undo stack; ``recon edit``
applies a list of them from a file; both run this code.

Coordinates are in the result's world frame (the frame of its mesh.ply and curves.json).
The operations (fields in brackets are optional):

==================== =========================================================================
``crop``             ``min``, ``max``: cut the mesh (exactly, at the box's faces) and the curves
                     to the box; the box is kept as the bounds for the next training. A cage
                     is dropped (fit a new one).
``cage``             ``kind`` "lattice" | "polycube", ``cubes`` k: fit a cage to the mesh as it
                     is now (lattice: k cells per axis; polycube: k boxes).
``move_cage``        ``vertices`` [i, ...] | "all", ``delta`` [dx, dy, dz].
``scale_cage``       ``vertices`` [i, ...] | "all", ``factor`` [sx, sy, sz] (or one number),
                     [``center``] (default: the centroid of those vertices).
``scale_box``        ``box`` b, ``factor``, [``center``]: ``scale_cage`` on one cage box.
``move_face``        ``box`` b, ``face`` "-x" | "+x" | "-y" | "+y" | "-z" | "+z", ``delta``.
``delete_curve``     ``index`` i.
``move_control_point`` ``curve`` i, ``point`` j, ``to`` [x, y, z].
``to_bezier``        ``curve`` i: a line (or polyline) becomes a cubic Bezier.
``to_line``          ``curve`` i: a Bezier (or polyline) becomes the line through its ends.
``split_curve``      ``curve`` i, [``t`` in (0, 1), default 0.5]: two curves in its place.
``join_curves``      ``curves`` [i, j]: one curve from the two, in the place of the first.
``snap_endpoints``   ``curves`` [i, j], [``ends`` [ei, ej], 0 start / 1 end; default nearest]:
                     both ends move to their midpoint.
``add_curve``        ``curve``: a curve dict as in curves.json, appended.
==================== =========================================================================
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from reconstruction.editing import curve_geometry as cg
from reconstruction.editing.cage import BOX_FACES, CAGE_KINDS, Cage, fit_cage
from reconstruction.editing.mesh_geometry import clip_mesh_to_box


class EditError(ValueError):
    """An operation that cannot apply to this document (what is wrong, and how to fix it)."""


def _ro(a: np.ndarray | None, dtype=None) -> np.ndarray | None:
    if a is None:
        return None
    a = np.ascontiguousarray(a if dtype is None else np.asarray(a, dtype))
    a.flags.writeable = False
    return a


@dataclass(frozen=True)
class Mesh:
    """A triangle mesh; its arrays are read-only."""

    vertices: np.ndarray  # [V, 3] float64
    faces: np.ndarray  # [F, 3] int64
    colors: np.ndarray | None = None  # [V, 3|4] uint8

    @staticmethod
    def of(vertices, faces, colors=None) -> Mesh:
        return Mesh(_ro(vertices, np.float64), _ro(np.asarray(faces).reshape(-1, 3), np.int64),
                    _ro(colors))

    def with_vertices(self, vertices: np.ndarray) -> Mesh:
        return Mesh(_ro(vertices, np.float64), self.faces, self.colors)


@dataclass
class EditDocument:
    """What edits act on: a result's mesh and curves, the cage bound to the mesh, and the
    crop box (bounds for the next training)."""

    mesh: Mesh | None = None
    curves: list[dict] | None = None  # curves.json entries, world coordinates
    cage: Cage | None = None
    crop: tuple[list[float], list[float]] | None = None  # (min, max)

    def state(self) -> tuple:
        """Everything an edit may change, for comparisons (identity of arrays included)."""
        return (self.mesh, self.curves, self.cage, self.crop)


# -- the operation base ----------------------------------------------------------------------
OPS: dict[str, type[EditOp]] = {}


def _vec3(value: Any, name: str, op: str, allow_scalar: bool = False) -> list[float]:
    if allow_scalar and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value] * 3
    try:
        v = np.asarray(value, np.float64)
    except (TypeError, ValueError):
        v = np.zeros(0)
    if v.shape != (3,) or not np.isfinite(v).all():
        raise EditError(f"{op}: {name} must be 3 finite numbers [x, y, z], got {value!r}")
    return v.tolist()


def _index(value: Any, name: str, op: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise EditError(f"{op}: {name} must be an integer, got {value!r}")
    return int(value)


@dataclass
class EditOp:
    """One edit. Subclasses set ``op``, declare their JSON fields and implement ``compute``."""

    op: ClassVar[str] = ""
    label: ClassVar[str] = ""
    _before: dict | None = field(default=None, init=False, repr=False, compare=False)

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if cls.op:
            OPS[cls.op] = cls

    # JSON
    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"op": self.op}
        for f in dataclasses.fields(self):
            if f.init:
                value = getattr(self, f.name)
                if value is not None:
                    out[f.name] = value
        return out

    @classmethod
    def parse(cls, data: dict[str, Any]) -> EditOp:
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        extra = set(data) - names - {"op"}
        if extra:
            raise EditError(f"{cls.op}: unknown field(s) {', '.join(sorted(extra))}; it takes "
                            f"{', '.join(sorted(names)) or 'no fields'}")
        try:
            op = cls(**{k: v for k, v in data.items() if k != "op"})
        except TypeError as exc:
            raise EditError(f"{cls.op}: {exc}") from None
        op.validate()
        return op

    def validate(self) -> None:
        """Check and normalise the fields (raises EditError)."""

    def describe(self) -> str:
        return self.label or self.op

    # applying
    def compute(self, doc: EditDocument) -> dict[str, Any]:
        """The document fields this edit changes, with their new values."""
        raise NotImplementedError

    def apply(self, doc: EditDocument) -> None:
        new = self.compute(doc)
        self._before = {k: getattr(doc, k) for k in new}
        for k, v in new.items():
            setattr(doc, k, v)

    def invert(self, doc: EditDocument) -> None:
        if self._before is None:
            raise EditError(f"{self.op}: cannot be undone before it was applied")
        for k, v in self._before.items():
            setattr(doc, k, v)
        self._before = None


def parse_op(data: Any) -> EditOp:
    if not isinstance(data, dict) or not isinstance(data.get("op"), str):
        raise EditError(f"an operation is an object with an \"op\" name, got {data!r}")
    cls = OPS.get(data["op"])
    if cls is None:
        raise EditError(f"unknown operation {data['op']!r}; known: {', '.join(sorted(OPS))}")
    return cls.parse(data)


def parse_ops(data: Any) -> list[EditOp]:
    """A list of operations from JSON: a list, or ``{"ops": [...]}``."""
    if isinstance(data, dict) and "ops" in data:
        data = data["ops"]
    if not isinstance(data, list):
        raise EditError("an edits file holds a list of operations (or {\"ops\": [...]})")
    out = []
    for i, item in enumerate(data):
        try:
            out.append(parse_op(item))
        except EditError as exc:
            raise EditError(f"operation {i}: {exc}") from None
    return out


def apply_all(doc: EditDocument, ops: list[EditOp]) -> EditDocument:
    for i, op in enumerate(ops):
        try:
            op.apply(doc)
        except EditError as exc:
            raise EditError(f"operation {i} ({op.op}): {exc}") from None
    return doc


# -- helpers ---------------------------------------------------------------------------------
def _need_mesh(doc: EditDocument, op: str) -> Mesh:
    if doc.mesh is None:
        raise EditError(f"{op} edits a mesh and this result has none (mesh.ply)")
    return doc.mesh


def _need_cage(doc: EditDocument, op: str) -> Cage:
    if doc.cage is None:
        raise EditError(f"{op}: there is no cage; fit one first with {{\"op\": \"cage\", ...}}")
    return doc.cage


def _need_curves(doc: EditDocument, op: str, *indices: int) -> list[dict]:
    if doc.curves is None:
        raise EditError(f"{op} edits curves and this result has none (curves.json)")
    for i in indices:
        if not 0 <= i < len(doc.curves):
            raise EditError(f"{op}: curve {i} out of range; there are {len(doc.curves)} curves")
    return doc.curves


def _cage_indices(cage: Cage, vertices, op: str) -> np.ndarray:
    if vertices == "all":
        return np.arange(len(cage.vertices))
    idx = np.asarray(vertices, np.int64)
    if idx.ndim != 1 or len(idx) == 0 or idx.min() < 0 or idx.max() >= len(cage.vertices):
        raise EditError(f"{op}: vertices must be \"all\" or indices in [0, {len(cage.vertices)})")
    return idx


def _deform(doc: EditDocument, cage: Cage, new_vertices: np.ndarray) -> dict[str, Any]:
    # from the mesh as it is: a drag of one cage vertex costs one column of W, not all
    mesh = cage.moved(new_vertices, doc.mesh.vertices)
    return {"cage": cage.with_vertices(new_vertices), "mesh": doc.mesh.with_vertices(mesh)}


def _check_vertices(vertices: Any, op: str) -> Any:
    if vertices == "all":
        return "all"
    if not isinstance(vertices, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in vertices) or not vertices:
        raise EditError(f"{op}: vertices must be \"all\" or a list of cage vertex indices")
    return vertices


# -- mesh and cage ---------------------------------------------------------------------------
@dataclass
class Crop(EditOp):
    op: ClassVar[str] = "crop"
    label: ClassVar[str] = "Crop to box"
    min: list[float] = field(default_factory=list)
    max: list[float] = field(default_factory=list)

    def validate(self) -> None:
        self.min = _vec3(self.min, "min", self.op)
        self.max = _vec3(self.max, "max", self.op)
        if not all(a < b for a, b in zip(self.min, self.max, strict=False)):
            raise EditError(f"crop: min must be below max on every axis, got {self.min} and "
                            f"{self.max}")

    def compute(self, doc: EditDocument) -> dict[str, Any]:
        lo, hi = np.asarray(self.min), np.asarray(self.max)
        if doc.mesh is None and doc.curves is None:
            raise EditError("crop: the result has neither a mesh nor curves")
        out: dict[str, Any] = {}
        if doc.crop is not None:  # crops nest
            lo, hi = np.maximum(lo, doc.crop[0]), np.minimum(hi, doc.crop[1])
            if not np.all(lo < hi):
                raise EditError("crop: the box does not overlap the current crop")
        out["crop"] = (lo.tolist(), hi.tolist())
        if doc.mesh is not None:
            m = doc.mesh
            v, f, c = clip_mesh_to_box(m.vertices, m.faces, m.colors, lo, hi)
            out["mesh"] = Mesh.of(v, f, c)
            out["cage"] = None
        if doc.curves is not None:
            out["curves"] = [piece for curve in doc.curves for piece in cg.clip(curve, lo, hi)]
        return out


@dataclass
class FitCage(EditOp):
    op: ClassVar[str] = "cage"
    label: ClassVar[str] = "Fit cage"
    kind: str = "polycube"
    cubes: int = 4

    def validate(self) -> None:
        if self.kind not in CAGE_KINDS:
            raise EditError(f"cage: kind must be one of {', '.join(CAGE_KINDS)}, got {self.kind!r}")
        self.cubes = _index(self.cubes, "cubes", self.op)

    def compute(self, doc: EditDocument) -> dict[str, Any]:
        m = _need_mesh(doc, self.op)
        if len(m.vertices) == 0:
            raise EditError("cage: the mesh is empty")
        try:
            return {"cage": fit_cage(m.vertices, m.faces, self.kind, self.cubes)}
        except ValueError as exc:
            raise EditError(f"cage: {exc}") from None


@dataclass
class MoveCage(EditOp):
    op: ClassVar[str] = "move_cage"
    label: ClassVar[str] = "Move cage vertices"
    vertices: Any = "all"
    delta: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])

    def validate(self) -> None:
        self.vertices = _check_vertices(self.vertices, self.op)
        self.delta = _vec3(self.delta, "delta", self.op)

    def compute(self, doc: EditDocument) -> dict[str, Any]:
        cage = _need_cage(doc, self.op)
        idx = _cage_indices(cage, self.vertices, self.op)
        v = cage.vertices.copy()
        v[idx] += np.asarray(self.delta)
        return _deform(doc, cage, v)


def _scale(cage: Cage, idx: np.ndarray, factor, center) -> np.ndarray:
    v = cage.vertices.copy()
    c = v[idx].mean(0) if center is None else np.asarray(center)
    v[idx] = c + (v[idx] - c) * np.asarray(factor)
    return v


@dataclass
class ScaleCage(EditOp):
    op: ClassVar[str] = "scale_cage"
    label: ClassVar[str] = "Scale cage vertices"
    vertices: Any = "all"
    factor: Any = field(default_factory=lambda: [1.0, 1.0, 1.0])
    center: list[float] | None = None

    def validate(self) -> None:
        self.vertices = _check_vertices(self.vertices, self.op)
        self.factor = _vec3(self.factor, "factor", self.op, allow_scalar=True)
        if self.center is not None:
            self.center = _vec3(self.center, "center", self.op)

    def compute(self, doc: EditDocument) -> dict[str, Any]:
        cage = _need_cage(doc, self.op)
        idx = _cage_indices(cage, self.vertices, self.op)
        return _deform(doc, cage, _scale(cage, idx, self.factor, self.center))


def _box(cage: Cage, box: int, op: str) -> np.ndarray:
    if not 0 <= box < len(cage.boxes):
        raise EditError(f"{op}: box {box} out of range; the cage has {len(cage.boxes)}")
    return np.asarray(cage.boxes[box])


@dataclass
class ScaleBox(EditOp):
    op: ClassVar[str] = "scale_box"
    label: ClassVar[str] = "Scale cage box"
    box: int = 0
    factor: Any = field(default_factory=lambda: [1.0, 1.0, 1.0])
    center: list[float] | None = None

    def validate(self) -> None:
        self.box = _index(self.box, "box", self.op)
        self.factor = _vec3(self.factor, "factor", self.op, allow_scalar=True)
        if self.center is not None:
            self.center = _vec3(self.center, "center", self.op)

    def compute(self, doc: EditDocument) -> dict[str, Any]:
        cage = _need_cage(doc, self.op)
        idx = _box(cage, self.box, self.op)
        return _deform(doc, cage, _scale(cage, idx, self.factor, self.center))


@dataclass
class MoveFace(EditOp):
    op: ClassVar[str] = "move_face"
    label: ClassVar[str] = "Move cage face"
    box: int = 0
    face: str = "+z"
    delta: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])

    def validate(self) -> None:
        self.box = _index(self.box, "box", self.op)
        if self.face not in BOX_FACES:
            raise EditError(f"move_face: face must be one of {', '.join(BOX_FACES)}")
        self.delta = _vec3(self.delta, "delta", self.op)

    def compute(self, doc: EditDocument) -> dict[str, Any]:
        cage = _need_cage(doc, self.op)
        _box(cage, self.box, self.op)
        idx = np.asarray(cage.face_vertices(self.box, self.face))
        v = cage.vertices.copy()
        v[idx] += np.asarray(self.delta)
        return _deform(doc, cage, v)


# -- curves ----------------------------------------------------------------------------------
def _replace(curves: list[dict], i: int, *new: dict) -> list[dict]:
    return curves[:i] + list(new) + curves[i + 1:]


@dataclass
class DeleteCurve(EditOp):
    op: ClassVar[str] = "delete_curve"
    label: ClassVar[str] = "Delete curve"
    index: int = 0

    def validate(self) -> None:
        self.index = _index(self.index, "index", self.op)

    def compute(self, doc: EditDocument) -> dict[str, Any]:
        curves = _need_curves(doc, self.op, self.index)
        return {"curves": _replace(curves, self.index)}


@dataclass
class MoveControlPoint(EditOp):
    op: ClassVar[str] = "move_control_point"
    label: ClassVar[str] = "Move control point"
    curve: int = 0
    point: int = 0
    to: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])

    def validate(self) -> None:
        self.curve = _index(self.curve, "curve", self.op)
        self.point = _index(self.point, "point", self.op)
        self.to = _vec3(self.to, "to", self.op)

    def compute(self, doc: EditDocument) -> dict[str, Any]:
        curves = _need_curves(doc, self.op, self.curve)
        c = curves[self.curve]
        pts = cg.points_of(c)
        if not 0 <= self.point < len(pts):
            raise EditError(f"move_control_point: point {self.point} out of range; this "
                            f"{c['type']} has {len(pts)}")
        pts[self.point] = self.to
        return {"curves": _replace(curves, self.curve, cg.make(c["type"], pts))}


@dataclass
class ToBezier(EditOp):
    op: ClassVar[str] = "to_bezier"
    label: ClassVar[str] = "Convert to Bezier"
    curve: int = 0

    def validate(self) -> None:
        self.curve = _index(self.curve, "curve", self.op)

    def compute(self, doc: EditDocument) -> dict[str, Any]:
        curves = _need_curves(doc, self.op, self.curve)
        return {"curves": _replace(curves, self.curve, cg.to_bezier(curves[self.curve]))}


@dataclass
class ToLine(EditOp):
    op: ClassVar[str] = "to_line"
    label: ClassVar[str] = "Convert to line"
    curve: int = 0

    def validate(self) -> None:
        self.curve = _index(self.curve, "curve", self.op)

    def compute(self, doc: EditDocument) -> dict[str, Any]:
        curves = _need_curves(doc, self.op, self.curve)
        return {"curves": _replace(curves, self.curve, cg.to_line(curves[self.curve]))}


@dataclass
class SplitCurve(EditOp):
    op: ClassVar[str] = "split_curve"
    label: ClassVar[str] = "Split curve"
    curve: int = 0
    t: float = 0.5

    def validate(self) -> None:
        self.curve = _index(self.curve, "curve", self.op)
        if not isinstance(self.t, (int, float)) or not 0.0 < float(self.t) < 1.0:
            raise EditError(f"split_curve: t must be a number in (0, 1), got {self.t!r}")
        self.t = float(self.t)

    def compute(self, doc: EditDocument) -> dict[str, Any]:
        curves = _need_curves(doc, self.op, self.curve)
        return {"curves": _replace(curves, self.curve, *cg.split(curves[self.curve], self.t))}


def _pair(value: Any, name: str, op: str) -> list[int]:
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in value)):
        raise EditError(f"{op}: {name} must be two integers, got {value!r}")
    return value


@dataclass
class JoinCurves(EditOp):
    op: ClassVar[str] = "join_curves"
    label: ClassVar[str] = "Join curves"
    curves: list[int] = field(default_factory=list)

    def validate(self) -> None:
        self.curves = _pair(self.curves, "curves", self.op)
        if self.curves[0] == self.curves[1]:
            raise EditError("join_curves: pick two different curves")

    def compute(self, doc: EditDocument) -> dict[str, Any]:
        i, j = self.curves
        curves = _need_curves(doc, self.op, i, j)
        joined = cg.join(curves[i], curves[j])
        out = [joined if k == i else c for k, c in enumerate(curves) if k != j]
        return {"curves": out}


@dataclass
class SnapEndpoints(EditOp):
    op: ClassVar[str] = "snap_endpoints"
    label: ClassVar[str] = "Snap endpoints"
    curves: list[int] = field(default_factory=list)
    ends: list[int] | None = None

    def validate(self) -> None:
        self.curves = _pair(self.curves, "curves", self.op)
        if self.curves[0] == self.curves[1]:
            raise EditError("snap_endpoints: pick two different curves")
        if self.ends is not None:
            self.ends = _pair(self.ends, "ends", self.op)
            if any(e not in (0, 1) for e in self.ends):
                raise EditError("snap_endpoints: ends are 0 (start) or 1 (end)")

    def compute(self, doc: EditDocument) -> dict[str, Any]:
        i, j = self.curves
        curves = _need_curves(doc, self.op, i, j)
        ei, ej = self.ends if self.ends is not None else cg.nearest_ends(curves[i], curves[j])[:2]
        a, b = cg.snap(curves[i], ei, curves[j], ej)
        out = list(curves)
        out[i], out[j] = a, b
        return {"curves": out}


@dataclass
class AddCurve(EditOp):
    op: ClassVar[str] = "add_curve"
    label: ClassVar[str] = "Add curve"
    curve: dict = field(default_factory=dict)

    def validate(self) -> None:
        try:
            cg.check(self.curve)
        except ValueError as exc:
            raise EditError(f"add_curve: {exc}") from None

    def compute(self, doc: EditDocument) -> dict[str, Any]:
        curves = doc.curves if doc.curves is not None else []
        c = self.curve
        return {"curves": curves + [cg.make(c["type"], cg.points_of(c))]}
