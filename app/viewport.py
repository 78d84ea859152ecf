"""Curves, edge points and splats as PyVista data for the viewport (numpy only, no torch).

Engine snapshots and result files turn into one ``pv.PolyData`` each, which the window
shows with one actor per kind and refills in place (``shallow_copy``) as newer snapshots
arrive:

- ``curves``: {"points": [M, 3] float32, "offsets": [C + 1] int64, "types": [C] int8}
  (curve c is ``points[offsets[c]:offsets[c + 1]]``; 0 line, 1 bezier, 2 polyline), drawn
  as line cells coloured by type;
- ``edge_points``: {"positions": [N, 3] float32, "values": [N] float32 in 0-1}, points
  coloured by value;
- ``splats``: {"positions": [N, 3], "colors": [N, 3] in 0-1, "scales": [N],
  "opacity": [N]}, coloured points whose size follows the scale.

Meshes: ``read_mesh`` (a file, off the GUI thread) and ``snapshot_mesh`` (a payload).
Files: ``curves.json`` (the schema in DESIGN.md; cubic beziers sampled densely) and
``splats.ply`` (the standard 3D Gaussian Splatting layout).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pyvista as pv

from render.preview import vertex_colors

COLOR_ARRAY = "_rgb"
"""Name of the uint8 [N, 3] colour array: mesh vertex colours, curve/point/splat colours."""
CURVE_TYPES = {"line": 0, "bezier": 1, "polyline": 2}
CURVE_COLORS = np.array([[60, 64, 72], [255, 170, 40], [80, 200, 255]], dtype=np.uint8)
"""Colour of a curve by type: line, bezier, polyline."""
BEZIER_SAMPLES = 32
"""Points per cubic bezier when a curves.json is drawn."""
SH_C0 = 0.28209479177387814
"""Zeroth spherical-harmonic constant: colour = 0.5 + SH_C0 * f_dc."""
MAX_SPLATS = 200_000
"""Splats drawn at most (an even subset beyond that)."""


# -- meshes -------------------------------------------------------------------------------------


def snapshot_mesh(payload: dict) -> pv.PolyData:
    """A mesh snapshot payload (vertices [N, 3], faces [M, 3], colors [N, 3]) as PolyData."""
    verts = np.ascontiguousarray(payload["vertices"], dtype=np.float32).reshape(-1, 3)
    faces = np.asarray(payload.get("faces", np.zeros((0, 3))), dtype=np.int64).reshape(-1, 3)
    mesh = pv.PolyData.from_regular_faces(verts, faces) if len(faces) else pv.PolyData(verts)
    colors = payload.get("colors")
    if colors is not None and len(verts) and len(colors) == len(verts):
        rgb = np.asarray(colors)[:, :3]
        if rgb.dtype != np.uint8:
            rgb = np.clip(rgb.astype(np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        mesh.point_data[COLOR_ARRAY] = np.ascontiguousarray(rgb)
        mesh.point_data.active_scalars_name = COLOR_ARRAY
    return mesh


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


def bounds_outline(bounds) -> pv.PolyData:
    """The 12 edges of the box (xmin, xmax, ymin, ymax, zmin, zmax) as line PolyData."""
    corners = np.array(list(itertools.product(bounds[0:2], bounds[2:4], bounds[4:6])),
                       dtype=np.float64)
    edges = [(a, b) for a in range(8) for b in range(a + 1, 8)
             if bin(a ^ b).count("1") == 1]  # corners differing in one coordinate
    return pv.PolyData(corners, lines=np.array([[2, a, b] for a, b in edges]).ravel())


# -- curves, edge points, splats ---------------------------------------------------------------


def _rgb(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values)
    if v.dtype == np.uint8:
        return np.ascontiguousarray(v[:, :3])
    return np.clip(v[:, :3].astype(np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def curves_polydata(payload: dict) -> pv.PolyData:
    """A curves snapshot payload as PolyData: one polyline cell per curve, coloured by type."""
    points = np.ascontiguousarray(payload["points"], dtype=np.float32).reshape(-1, 3)
    offsets = np.asarray(payload["offsets"], dtype=np.int64).reshape(-1)
    n_curves = max(len(offsets) - 1, 0)
    types = np.asarray(payload.get("types", np.full(n_curves, 2)), dtype=np.int64).reshape(-1)
    if len(types) != n_curves:
        raise ValueError(f"{len(types)} curve types for {n_curves} curves")
    if n_curves and (offsets[0] != 0 or offsets[-1] > len(points) or np.any(np.diff(offsets) < 0)):
        raise ValueError("curve offsets must rise from 0 to at most the number of points")
    mesh = pv.PolyData()
    lengths = np.diff(offsets) if n_curves else np.zeros(0, dtype=np.int64)
    keep = lengths >= 2
    if np.any(keep):
        starts, lens = offsets[:-1][keep], lengths[keep]
        cells = np.empty(int(lens.sum() + len(lens)), dtype=np.int64)
        pos = 0
        for s, n in zip(starts, lens, strict=True):
            cells[pos] = n
            cells[pos + 1:pos + 1 + n] = np.arange(s, s + n)
            pos += n + 1
        mesh = pv.PolyData(points, lines=cells)  # line cells only, no vertex cells
        colors = CURVE_COLORS[np.clip(types[keep], 0, len(CURVE_COLORS) - 1)]
        mesh.cell_data[COLOR_ARRAY] = np.ascontiguousarray(colors)
        mesh.cell_data.active_scalars_name = COLOR_ARRAY
    return mesh


def edge_points_polydata(payload: dict) -> pv.PolyData:
    """An edge-points payload as PolyData with a colour per point from its value (0-1)."""
    positions = np.ascontiguousarray(payload["positions"], dtype=np.float32).reshape(-1, 3)
    values = np.asarray(payload.get("values", np.ones(len(positions))), dtype=np.float32).reshape(-1)
    if len(values) != len(positions):
        raise ValueError(f"{len(values)} values for {len(positions)} edge points")
    mesh = pv.PolyData(positions) if len(positions) else pv.PolyData()
    if len(positions):
        v = np.clip(values, 0.0, 1.0)[:, None]
        low, high = np.array([40, 60, 120]), np.array([255, 220, 60])
        mesh.point_data[COLOR_ARRAY] = (low + (high - low) * v).astype(np.uint8)
        mesh.point_data.active_scalars_name = COLOR_ARRAY
    return mesh


def splats_polydata(payload: dict, max_splats: int = MAX_SPLATS) -> pv.PolyData:
    """A splats payload as coloured points; ``scale`` and ``opacity`` point arrays kept."""
    positions = np.ascontiguousarray(payload["positions"], dtype=np.float32).reshape(-1, 3)
    n = len(positions)
    colors = np.asarray(payload.get("colors", np.full((n, 3), 0.7)), dtype=np.float32).reshape(-1, 3)
    scales = np.asarray(payload.get("scales", np.full(n, 0.01)), dtype=np.float32).reshape(-1)
    opacity = np.asarray(payload.get("opacity", np.ones(n)), dtype=np.float32).reshape(-1)
    if not (len(colors) == len(scales) == len(opacity) == n):
        raise ValueError("splat positions, colors, scales and opacity differ in length")
    if n > max_splats:
        stride = -(-n // max_splats)
        positions, colors, scales, opacity = (a[::stride] for a in (positions, colors, scales, opacity))
    mesh = pv.PolyData(np.ascontiguousarray(positions)) if len(positions) else pv.PolyData()
    if len(positions):
        mesh.point_data[COLOR_ARRAY] = _rgb(colors)
        mesh.point_data["scale"] = np.ascontiguousarray(scales)
        mesh.point_data["opacity"] = np.ascontiguousarray(opacity)
        mesh.point_data.active_scalars_name = COLOR_ARRAY
    return mesh


def splat_point_size(mesh: pv.PolyData, bounds_diagonal: float | None = None) -> float:
    """Screen point size (pixels) for splats: larger splats, larger points (2-8 px)."""
    if mesh.n_points == 0 or "scale" not in mesh.point_data:
        return 3.0
    diag = bounds_diagonal or float(np.linalg.norm(np.subtract(mesh.bounds[1::2], mesh.bounds[0::2])))
    if diag <= 0:
        return 3.0
    rel = float(np.median(mesh.point_data["scale"])) / diag
    return float(np.clip(rel * 600.0, 2.0, 8.0))


# -- result files ------------------------------------------------------------------------------


def bezier_points(control: np.ndarray, samples: int = BEZIER_SAMPLES) -> np.ndarray:
    """Points along a cubic bezier (control [4, 3]) -> [samples, 3]."""
    p = np.asarray(control, dtype=np.float64).reshape(4, 3)
    t = np.linspace(0.0, 1.0, samples)[:, None]
    u = 1.0 - t
    return u**3 * p[0] + 3 * u**2 * t * p[1] + 3 * u * t**2 * p[2] + t**3 * p[3]


def read_curves(path: Path) -> dict:
    """curves.json -> a curves payload (beziers sampled densely). ValueError when malformed."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        curves = data["curves"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"could not read {path.name}: {exc}") from exc
    return curves_payload(curves, path.name)


def curves_payload(curves: list[dict], name: str = "curves") -> dict:
    """curves.json entries -> a curves payload (beziers sampled densely): one piece per curve,
    so cell i of :func:`curves_polydata` is curve i. ValueError when one is malformed."""
    pieces, types = [], []
    for i, c in enumerate(curves):
        try:
            kind = c["type"]
            if kind == "bezier":
                pts = bezier_points(c["control_points"])
            elif kind in ("line", "polyline"):
                pts = np.asarray(c["points"], dtype=np.float64).reshape(-1, 3)
            else:
                raise ValueError(f"unknown type {kind!r}")
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"{name}: curve {i} is malformed ({exc})") from exc
        pieces.append(pts)
        types.append(CURVE_TYPES[kind])
    offsets = np.zeros(len(pieces) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(p) for p in pieces])
    points = np.concatenate(pieces).astype(np.float32) if pieces else np.zeros((0, 3), np.float32)
    return {"points": points, "offsets": offsets, "types": np.asarray(types, dtype=np.int8)}


PLY_TYPES = {"char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2",
             "int16": "i2", "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4",
             "uint": "u4", "uint32": "u4", "float": "f4", "float32": "f4", "double": "f8",
             "float64": "f8"}


def read_ply_vertices(path: Path) -> dict[str, np.ndarray]:
    """Every property of a PLY file's vertex element, by name (binary or ASCII).

    VTK's PLY reader keeps only positions, normals and colours; the 3DGS properties
    (f_dc_*, opacity, scale_*, rot_*) need this plain reader.
    """
    path = Path(path)
    raw = path.read_bytes()
    end = raw.find(b"end_header")
    if not raw.startswith(b"ply") or end < 0:
        raise ValueError(f"{path.name} is not a PLY file")
    body = raw.index(b"\n", end) + 1
    fmt, elements, current = None, [], None
    for line in raw[:end].decode("ascii", errors="replace").splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "format":
            fmt = words[1]
        elif words[0] == "element":
            current = [words[1], int(words[2]), []]
            elements.append(current)
        elif words[0] == "property" and current is not None:
            if words[1] == "list":
                raise ValueError(f"{path.name}: list properties before the vertices are not supported")
            current[2].append((words[2], PLY_TYPES[words[1]]))
    vertex = next((e for e in elements if e[0] == "vertex"), None)
    if vertex is None or elements[0] is not vertex:
        raise ValueError(f"{path.name} has no vertex element first")
    _, n, props = vertex
    if fmt == "ascii":
        rows = raw[body:].decode("ascii").split("\n")[:n]
        table = np.array([r.split()[:len(props)] for r in rows], dtype=np.float64).reshape(n, len(props))
        return {name: table[:, i] for i, (name, _) in enumerate(props)}
    order = {"binary_little_endian": "<", "binary_big_endian": ">"}.get(fmt)
    if order is None:
        raise ValueError(f"{path.name}: unknown PLY format {fmt!r}")
    dtype = np.dtype([(name, order + t) for name, t in props])
    if len(raw) - body < dtype.itemsize * n:
        raise ValueError(f"{path.name} is truncated: {n} vertices announced")
    table = np.frombuffer(raw, dtype=dtype, count=n, offset=body)
    return {name: np.asarray(table[name]) for name, _ in props}


def read_splats(path: Path) -> dict:
    """A 3D Gaussian Splatting PLY -> a splats payload (colour, opacity and scale decoded)."""
    path = Path(path)
    try:
        pd = read_ply_vertices(path)
    except (OSError, KeyError, ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"could not read {path.name}: {exc}") from exc
    if not all(k in pd for k in ("x", "y", "z")):
        raise ValueError(f"{path.name} has no x, y, z vertex properties")
    positions = np.stack([pd[k] for k in ("x", "y", "z")], axis=1).astype(np.float32)
    n = len(positions)
    if n == 0:
        raise ValueError(f"{path.name} has no splats")
    if all(f"f_dc_{i}" in pd for i in range(3)):
        dc = np.stack([np.asarray(pd[f"f_dc_{i}"], dtype=np.float32) for i in range(3)], axis=1)
        colors = np.clip(0.5 + SH_C0 * dc, 0.0, 1.0)
    elif all(k in pd for k in ("red", "green", "blue")):
        colors = np.stack([np.asarray(pd[k], dtype=np.float32) for k in ("red", "green", "blue")],
                          axis=1) / 255.0
    else:
        colors = np.full((n, 3), 0.7, dtype=np.float32)
    if "opacity" in pd:
        opacity = 1.0 / (1.0 + np.exp(-np.asarray(pd["opacity"], dtype=np.float32)))
    else:
        opacity = np.ones(n, dtype=np.float32)
    if all(f"scale_{i}" in pd for i in range(3)):
        logs = np.stack([np.asarray(pd[f"scale_{i}"], dtype=np.float32) for i in range(3)], axis=1)
        scales = np.exp(logs).max(axis=1)
    else:
        scales = np.full(n, 0.01, dtype=np.float32)
    return {"positions": positions, "colors": colors.astype(np.float32),
            "scales": scales.astype(np.float32), "opacity": opacity.astype(np.float32)}


# -- the viewport's camera as an engine camera -------------------------------------------------


def view_camera(position, focal_point, view_up, view_angle: float, width: int,
                height: int) -> tuple[np.ndarray, float, float, float, float]:
    """A VTK camera as (c2w [4, 4], fx, fy, cx, cy) for a width x height picture.

    c2w is camera-to-world in the engine's OpenGL convention (the camera looks down its -Z,
    +Y up, +X right), as in reconstruction.rendering.rays; ``view_angle`` is VTK's vertical
    field of view in degrees.
    """
    eye = np.asarray(position, dtype=np.float64)
    forward = np.asarray(focal_point, dtype=np.float64) - eye
    forward /= max(np.linalg.norm(forward), 1e-12)
    right = np.cross(forward, np.asarray(view_up, dtype=np.float64))
    if np.linalg.norm(right) < 1e-9:  # looking along the up vector: any right will do
        right = np.cross(forward, [1.0, 0.0, 0.0] if abs(forward[0]) < 0.9 else [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, up, -forward, eye
    fy = 0.5 * height / np.tan(np.radians(view_angle) / 2.0)
    return c2w, float(fy), float(fy), width / 2.0, height / 2.0
