"""More generated CAD-like test objects, with their sharp feature curves, for the edge
method's benchmark: stacked prisms (straight creases, convex and concave) and a stepped
puck (circular creases next to straight ones). Each is a union of convex primitives
resting on one another, flat-shaded with one colour per primitive side, rendered and
written like the demo capture (NeRF-synthetic layout, ``gt/curves.json``, ``gt/mesh.ply``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from render.demo_capture import (
    DemoObject,
    _shade,
    _write_json,
    _write_ply,
    camera_positions,
    write_views,
)

OBJECTS = ("steps", "puck")


def _prism(polygon: np.ndarray, z0: float, z1: float) -> tuple[np.ndarray, np.ndarray]:
    """Convex polygon [K, 2] (counter-clockwise) extruded from z0 to z1: (vertices, faces)."""
    k = len(polygon)
    v = np.concatenate([np.c_[polygon, np.full(k, z0)], np.c_[polygon, np.full(k, z1)]])
    faces = []
    for i in range(k):
        j = (i + 1) % k
        faces += [[i, j, k + j], [i, k + j, k + i]]
    faces += [[0, i + 1, i] for i in range(1, k - 1)]  # bottom, facing down
    faces += [[k, k + i, k + i + 1] for i in range(1, k - 1)]  # top, facing up
    return v, np.array(faces, np.int64)


def _rect(x0, x1, y0, y1) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float)


def _ngon(cx, cy, r, k, phase=0.0) -> np.ndarray:
    a = phase + 2 * np.pi * np.arange(k) / k
    return np.c_[cx + r * np.cos(a), cy + r * np.sin(a)]


def _polygon_curves(polygon: np.ndarray, z: float, smooth: bool) -> list[dict]:
    """The outline of a prism's cap at height z: one closed polyline (smooth) or lines."""
    pts = np.c_[polygon, np.full(len(polygon), z)]
    if smooth:
        closed = np.vstack([pts, pts[:1]])
        return [{"type": "polyline", "points": closed.tolist()}]
    return [{"type": "line", "points": [pts[i].tolist(), pts[(i + 1) % len(pts)].tolist()]}
            for i in range(len(pts))]


def _vertical_edges(polygon: np.ndarray, z0: float, z1: float) -> list[dict]:
    return [{"type": "line", "points": [[x, y, z0], [x, y, z1]]} for x, y in polygon]


def _parts(name: str) -> tuple[list[tuple[np.ndarray, float, float, np.ndarray, bool]], list[dict]]:
    """Primitives (polygon, z0, z1, albedo, smooth side) and the feature curves of ``name``."""
    if name == "steps":
        base = _rect(-0.75, 0.75, -0.55, 0.55)
        mid = _rect(-0.6, 0.2, -0.4, 0.35)
        hexa = _ngon(0.45, 0.05, 0.22, 6, 0.3)
        parts = [(base, -0.5, -0.2, np.array([0.75, 0.45, 0.3]), False),
                 (mid, -0.2, 0.2, np.array([0.3, 0.55, 0.75]), False),
                 (hexa, -0.2, 0.45, np.array([0.85, 0.8, 0.35]), False)]
        curves = (_polygon_curves(base, -0.5, False) + _polygon_curves(base, -0.2, False)
                  + _vertical_edges(base, -0.5, -0.2)
                  + _polygon_curves(mid, -0.2, False) + _polygon_curves(mid, 0.2, False)
                  + _vertical_edges(mid, -0.2, 0.2)
                  + _polygon_curves(hexa, -0.2, False) + _polygon_curves(hexa, 0.45, False)
                  + _vertical_edges(hexa, -0.2, 0.45))
        return parts, curves
    if name == "puck":
        disc = _ngon(0.0, 0.0, 0.7, 96)
        block = _rect(-0.45, 0.05, -0.3, 0.3)
        pin = _ngon(0.35, 0.0, 0.18, 64)
        parts = [(disc, -0.45, -0.15, np.array([0.5, 0.6, 0.7]), True),
                 (block, -0.15, 0.15, np.array([0.8, 0.5, 0.35]), False),
                 (pin, -0.15, 0.4, np.array([0.4, 0.75, 0.45]), True)]
        curves = (_polygon_curves(disc, -0.45, True) + _polygon_curves(disc, -0.15, True)
                  + _polygon_curves(block, -0.15, False) + _polygon_curves(block, 0.15, False)
                  + _vertical_edges(block, -0.15, 0.15)
                  + _polygon_curves(pin, -0.15, True) + _polygon_curves(pin, 0.4, True))
        return parts, curves
    raise ValueError(f"unknown object {name!r}; available: {', '.join(OBJECTS)}")


def build_cad_object(name: str) -> tuple[DemoObject, list[dict]]:
    """The object ``name`` (one of OBJECTS) and its feature curves (curves.json schema)."""
    parts, curves = _parts(name)
    rv, rf, rc, gv, gf = [], [], [], [], []
    n_r = n_g = 0
    for poly, z0, z1, albedo, smooth in parts:
        v, f = _prism(poly, z0, z1)
        gv.append(v)
        gf.append(f + n_g)
        n_g += len(v)
        tri = v[f]  # [F, 3, 3]: one vertex triple per face (flat shading, hard creases)
        normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
        if smooth:  # side faces of a round part: the normal of the cylinder, not the facet
            side = np.abs(normals[:, 2]) < 0.5
            radial = tri[:, :, :2].mean(1) - poly.mean(0)
            radial /= np.maximum(np.linalg.norm(radial, axis=1, keepdims=True), 1e-12)
            normals[side] = np.c_[radial[side], np.zeros(side.sum())]
        col = np.repeat(_shade(albedo, normals), 3, axis=0)
        rv.append(tri.reshape(-1, 3))
        rf.append(np.arange(len(f) * 3).reshape(-1, 3) + n_r)
        rc.append(np.asarray(col))
        n_r += len(f) * 3
    rcol = np.concatenate(rc)
    rcol = (np.clip(rcol, 0, 1) * 255).round().astype(np.uint8) if rcol.dtype != np.uint8 else rcol
    verts = np.concatenate(gv)
    obj = DemoObject(np.concatenate(rv), np.concatenate(rf), rcol, verts, np.concatenate(gf),
                     np.full((len(verts), 3), 180, np.uint8))
    return obj, curves


def make_cad_capture(out: Path, name: str, size: int = 128, n_train: int = 48, n_val: int = 4,
                     n_test: int = 8, seed: int = 0) -> Path:
    """Render object ``name`` into ``out`` like :func:`render.demo_capture.make_demo_capture`."""
    out = Path(out)
    obj, curves = build_cad_object(name)
    write_views(out, obj, size, camera_positions(n_train, n_val, n_test, seed))
    _write_ply(out / "gt" / "mesh.ply", obj.vertices, obj.faces, obj.colors)
    _write_json(out / "gt" / "curves.json", {"curves": curves})
    return out


def feature_length(curves: list[dict]) -> float:
    total = 0.0
    for c in curves:
        pts = np.asarray(c.get("points", c.get("control_points")), float)
        total += float(np.linalg.norm(np.diff(pts, axis=0), axis=1).sum())
    return total if math.isfinite(total) else 0.0
