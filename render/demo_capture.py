"""The bundled demo capture: the project's own test object, rendered from known cameras.

The object is a union of three simple solids inside world [-1, 1]^3 (+Z up):

- a box base 1.4 x 1.0 x 0.5 (x in [-0.7, 0.7], y in [-0.5, 0.5], z in [-0.55, -0.05]);
- a cylinder of radius 0.35 and height 0.6 standing on the box top, centred at (0.25, 0);
- a wedge (a ramp with a sloped top) on the box top, x in [-0.6, -0.25], y in [-0.3, 0.3],
  0.35 tall at x = -0.6 and 0.10 tall at x = -0.25.

Its surface is built here as one closed, conforming triangle mesh (no boolean library): every
face is a patch whose boundary vertices are bit-identical to its neighbours', so merging
equal vertices gives a watertight mesh. Colours are albedo times a baked, view-independent
Lambert term, ``albedo * (0.55 + 0.45 * max(0, n . l))`` with a fixed world light, stored per
vertex. Every checker cell or stripe is its own patch, so colour edges are exactly sharp and
creases keep hard normals; the cylinder side is smoothly shaded.

The capture follows the NeRF-synthetic layout (``transforms_{train,val,test}.json`` with
``camera_angle_x`` and OpenGL camera-to-world matrices, RGBA PNGs with a transparent
background) and is rendered with VTK (pyvista, offscreen) with lighting off, supersampled and
box-filtered with premultiplied alpha. The pixels follow the pinhole model
``fx = fy = 0.5 * W / tan(0.5 * camera_angle_x)``, ``cx = W / 2``, ``cy = H / 2``, pixel
centres at +0.5 (``tests/test_demo_capture.py`` checks it against an analytic ray caster).

Ground truth goes to ``gt/``: ``mesh.ply`` (closed surface with vertex colours),
``curves.json`` (the sharp feature curves, project schema) and ``README.txt``.

CLI: ``python -m render.demo_capture --out DIR [--size 128] [--train 48] [--val 4]
[--test 8] [--seed 0] [--textured]``; ``--video FILE.mp4 --out POSES.json [--textured]``
renders a rising-spiral video instead (:func:`make_demo_video`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Without a display, ask VTK for its EGL window directly instead of trying X first (which only
# prints a warning and then falls back). Under Xvfb (DISPLAY set) VTK's default is kept.
if not os.environ.get("DISPLAY"):
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")

# ----------------------------------------------------------------------------------------
# The object
# ----------------------------------------------------------------------------------------

BOX_MIN = (-0.7, -0.5, -0.55)
"""Box base, lower corner (world units)."""
BOX_MAX = (0.7, 0.5, -0.05)
"""Box base, upper corner; BOX_MAX[2] is the height of the top face the features stand on."""
TOP_Z = BOX_MAX[2]

CYL_CENTER = (0.25, 0.0)
"""Cylinder axis (x, y); it stands on the box top face."""
CYL_RADIUS = 0.35
CYL_HEIGHT = 0.6

WEDGE_X = (-0.6, -0.25)
"""Wedge extent along x; its top slopes down from x = WEDGE_X[0] to x = WEDGE_X[1]."""
WEDGE_Y = (-0.3, 0.3)
WEDGE_HEIGHTS = (0.35, 0.10)
"""Wedge height above the box top at x = WEDGE_X[0] and at x = WEDGE_X[1]."""

LIGHT_DIR = tuple(np.array([0.45, -0.35, 0.82]) / np.linalg.norm([0.45, -0.35, 0.82]))
"""World direction towards the (directional) light used for the baked shading."""
AMBIENT = 0.55
DIFFUSE = 0.45

KAPPA = 0.5522847498
"""Cubic Bezier control-point factor for a quarter circle."""

# Tessellation: about 0.015 world units everywhere, so that the merged ground-truth mesh's
# vertex colours stay sharp (a colour edge blurs over one triangle there).
_CELL_SUB = 12  # subdivisions per checker cell on the box faces (cells 0.175 x 0.167)
_N_THETA = 144  # segments around the cylinder
_CYL_BANDS = 4  # horizontal colour bands on the cylinder side
_CYL_BAND_SUB = 10
_CAP_SECTORS = 8
_CAP_RINGS = 2
_CAP_RING_SUB = 12
_WEDGE_STRIPES = 5
_WEDGE_STRIPE_SUB = 5
_WEDGE_NY = 40
_WEDGE_NZ = 24
_TOP_SPACING = 0.015  # interior points of the box top face
_TOP_MARGIN = 0.012  # keep interior points this far from the face's boundaries (> half
# the boundary spacing, so every boundary edge is a Delaunay edge)

# Cameras.
CAMERA_ANGLE_X = 0.69
"""Horizontal (= vertical, square images) field of view in radians."""
CAMERA_DISTANCE = 3.6
"""Distance of every camera from the origin, which they all look at."""
TRAIN_ELEVATION_DEG = (-20.0, 70.0)
RING_ELEVATION_DEG = {"val": 30.0, "test": (25.0, 35.0)}
SUPERSAMPLE = 4


def _c(hex_rgb: str) -> np.ndarray:
    return np.array([int(hex_rgb[i : i + 2], 16) / 255.0 for i in (1, 3, 5)])


ALBEDO = {
    "top": _c("#dcd2b4"),
    "bottom": (_c("#4a5568"), _c("#2d3748")),
    "+x": (_c("#d9483b"), _c("#f2c0a2")),
    "-x": (_c("#3f9b4a"), _c("#c8e6a0")),
    "+y": (_c("#3a66c4"), _c("#a9c4f0")),
    "-y": (_c("#e0a526"), _c("#5a3e1b")),
    "cyl_a": _c("#18a8a0"),
    "cyl_b": _c("#d94f9c"),
    "cap": (_c("#f5f0e6"), _c("#e4572e")),
    "wedge_top": (_c("#6b3fa0"), _c("#d8c8f0")),
    "wedge_side": _c("#8a8f98"),
    "wedge_high": _c("#2f7f8f"),
    "wedge_low": _c("#c77d3a"),
}


"""Albedo per part, RGB in [0, 1] (pairs are the two colours of a checker or stripes); the
values are written as-is, no colour management."""


def _shade(albedo: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """albedo [N, 3] or [3], normals [N, 3] unit -> baked colour [N, 3] in [0, 1]."""
    ndl = np.clip(np.asarray(normals, dtype=float) @ np.asarray(LIGHT_DIR), 0.0, None)
    return np.clip(np.asarray(albedo) * (AMBIENT + DIFFUSE * ndl)[:, None], 0.0, 1.0)


def baked_color(albedo, normal) -> np.ndarray:
    """The rendered colour, uint8 [3], of a surface with `albedo` [3] and unit `normal` [3]."""
    c = _shade(np.asarray(albedo, dtype=float), np.asarray(normal, dtype=float)[None])[0]
    return np.clip(np.round(c * 255.0), 0, 255).astype(np.uint8)


@dataclass
class _Patch:
    vertices: np.ndarray  # [N, 3] float64
    faces: np.ndarray  # [M, 3] int64, counter-clockwise seen from outside
    colors: np.ndarray  # [N, 3] float64 in [0, 1], shaded


def _grid_faces(nu: int, nv: int, periodic_u: bool = False) -> np.ndarray:
    """Two triangles per quad of a (nu+1) x (nv+1) vertex grid, row-major in u then v.

    With periodic_u, the grid has nu x (nv+1) vertices and column nu wraps to column 0.
    """
    cols = nu if periodic_u else nu + 1
    i, j = np.meshgrid(np.arange(nu), np.arange(nv), indexing="ij")
    i1 = (i + 1) % cols
    a = i * (nv + 1) + j
    b = i1 * (nv + 1) + j
    c = i1 * (nv + 1) + j + 1
    d = i * (nv + 1) + j + 1
    tri = np.stack([np.stack([a, b, c], -1), np.stack([a, c, d], -1)], axis=2)
    return tri.reshape(-1, 3).astype(np.int64)


def _orient(vertices: np.ndarray, faces: np.ndarray, outward: np.ndarray) -> np.ndarray:
    """Flip all faces if their normals point against the outward directions [M, 3]."""
    v = vertices[faces]
    n = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    if np.sum(np.einsum("ij,ij->i", n, outward)) < 0:
        return faces[:, ::-1].copy()
    return faces


def _grid_patch(points: np.ndarray, albedo: np.ndarray, normal) -> _Patch:
    """A flat grid patch from points [nu+1, nv+1, 3] with a constant outward normal."""
    nu, nv = points.shape[0] - 1, points.shape[1] - 1
    vertices = points.reshape(-1, 3)
    normal = np.asarray(normal, dtype=float)
    faces = _orient(vertices, _grid_faces(nu, nv), np.broadcast_to(normal, (1, 3)))
    normals = np.broadcast_to(normal, vertices.shape)
    return _Patch(vertices.copy(), faces, _shade(albedo, normals))


def _checker_patches(points: np.ndarray, cells: tuple[int, int], sub: int, colors, normal):
    """Split a grid of points [cells*sub+1, ...] into one patch per checker cell."""
    out = []
    for a in range(cells[0]):
        for b in range(cells[1]):
            block = points[a * sub : (a + 1) * sub + 1, b * sub : (b + 1) * sub + 1]
            out.append(_grid_patch(block, colors[(a + b) % 2], normal))
    return out


def _box_patches() -> tuple[list[_Patch], dict[str, np.ndarray]]:
    (x0, y0, z0), (x1, y1, z1) = BOX_MIN, BOX_MAX
    s = _CELL_SUB
    xs = np.linspace(x0, x1, 8 * s + 1)
    ys = np.linspace(y0, y1, 6 * s + 1)
    zs = np.linspace(z0, z1, 3 * s + 1)
    patches = []

    def grid(u, v, fn):
        uu, vv = np.meshgrid(u, v, indexing="ij")
        return np.stack(fn(uu, vv), axis=-1)

    ones = np.ones
    faces = {
        "+x": (grid(ys, zs, lambda y, z: (x1 * ones(y.shape), y, z)), (6, 3), (1, 0, 0)),
        "-x": (grid(ys, zs, lambda y, z: (x0 * ones(y.shape), y, z)), (6, 3), (-1, 0, 0)),
        "+y": (grid(xs, zs, lambda x, z: (x, y1 * ones(x.shape), z)), (8, 3), (0, 1, 0)),
        "-y": (grid(xs, zs, lambda x, z: (x, y0 * ones(x.shape), z)), (8, 3), (0, -1, 0)),
        "bottom": (grid(xs, ys, lambda x, y: (x, y, z0 * ones(x.shape))), (8, 6), (0, 0, -1)),
    }
    for name, (pts, cells, normal) in faces.items():
        patches += _checker_patches(pts, cells, s, ALBEDO[name], normal)
    return patches, {"xs": xs, "ys": ys}


def _cylinder_patches() -> tuple[list[_Patch], np.ndarray]:
    cx, cy = CYL_CENTER
    r = CYL_RADIUS
    theta = 2.0 * np.pi * np.arange(_N_THETA) / _N_THETA
    cos_t, sin_t = np.cos(theta), np.sin(theta)
    ring_x, ring_y = cx + r * cos_t, cy + r * sin_t
    nz = _CYL_BANDS * _CYL_BAND_SUB
    zs = np.linspace(TOP_Z, TOP_Z + CYL_HEIGHT, nz + 1)
    patches = []
    # Side: a hue gradient around the axis, alternating brightness bands along the height.
    w = 0.5 + 0.5 * np.cos(theta - 0.6)
    hue = (1 - w)[:, None] * ALBEDO["cyl_a"] + w[:, None] * ALBEDO["cyl_b"]
    for band in range(_CYL_BANDS):
        zb = zs[band * _CYL_BAND_SUB : (band + 1) * _CYL_BAND_SUB + 1]
        vert = np.stack(
            [
                np.repeat(ring_x, len(zb)),
                np.repeat(ring_y, len(zb)),
                np.tile(zb, _N_THETA),
            ],
            axis=-1,
        )
        normals = np.stack(
            [np.repeat(cos_t, len(zb)), np.repeat(sin_t, len(zb)), np.zeros(len(vert))], -1
        )
        faces = _grid_faces(_N_THETA, len(zb) - 1, periodic_u=True)
        faces = _orient(vert, faces, normals[faces[:, 0]])
        albedo = np.repeat(hue, len(zb), axis=0) * (1.0 if band % 2 == 0 else 0.62)
        patches.append(_Patch(vert, faces, _shade(albedo, normals)))
    # Top cap: a polar checker (sectors x rings), rings share the side's outer ring exactly.
    z_top = zs[-1]
    nr = _CAP_RINGS * _CAP_RING_SUB
    per_sector = _N_THETA // _CAP_SECTORS
    for sector in range(_CAP_SECTORS):
        k = np.arange(sector * per_sector, (sector + 1) * per_sector + 1) % _N_THETA
        for ring in range(_CAP_RINGS):
            js = np.arange(ring * _CAP_RING_SUB, (ring + 1) * _CAP_RING_SUB + 1)
            pts = np.zeros((len(k), len(js), 3))
            for jj, j in enumerate(js):
                if j == nr:
                    pts[:, jj, 0], pts[:, jj, 1] = ring_x[k], ring_y[k]
                else:
                    pts[:, jj, 0] = cx + (r * j / nr) * cos_t[k]
                    pts[:, jj, 1] = cy + (r * j / nr) * sin_t[k]
            pts[..., 2] = z_top
            color = ALBEDO["cap"][(sector + ring) % 2]
            vert = pts.reshape(-1, 3)
            faces = _grid_faces(len(k) - 1, len(js) - 1)
            if js[0] == 0:  # drop the degenerate triangles at the centre
                v = vert[faces]
                area = np.linalg.norm(np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]), axis=1)
                faces = faces[area > 1e-12]
            faces = _orient(vert, faces, np.array([[0.0, 0.0, 1.0]]))
            normals = np.broadcast_to([0.0, 0.0, 1.0], vert.shape)
            patches.append(_Patch(vert, faces, _shade(color, normals)))
    return patches, np.stack([ring_x, ring_y], -1)


def _wedge_top_z(x: np.ndarray) -> np.ndarray:
    (xa, xb), (ha, hb) = WEDGE_X, WEDGE_HEIGHTS
    return TOP_Z + ha + (hb - ha) * (np.asarray(x) - xa) / (xb - xa)


def _wedge_column(x: float, nz: int) -> np.ndarray:
    """z values of a vertical wedge edge at x, bottom (exactly TOP_Z) to top (exactly the slope)."""
    top = float(_wedge_top_z(x))
    z = TOP_Z + np.linspace(0.0, 1.0, nz + 1) * (top - TOP_Z)
    z[0], z[-1] = TOP_Z, top
    return z


def _wedge_patches() -> tuple[list[_Patch], dict[str, np.ndarray]]:
    (xa, xb), (ya, yb) = WEDGE_X, WEDGE_Y
    nx = _WEDGE_STRIPES * _WEDGE_STRIPE_SUB
    xs = np.linspace(xa, xb, nx + 1)
    ys = np.linspace(ya, yb, _WEDGE_NY + 1)
    nz = _WEDGE_NZ
    patches = []
    # Sloped top, striped across the slope.
    zt = _wedge_top_z(xs)
    normal = np.array([(WEDGE_HEIGHTS[0] - WEDGE_HEIGHTS[1]) / (xb - xa), 0.0, 1.0])
    normal /= np.linalg.norm(normal)
    xx, yy = np.meshgrid(np.arange(nx + 1), ys, indexing="ij")
    top = np.stack([xs[xx], yy, zt[xx]], -1)
    for stripe in range(_WEDGE_STRIPES):
        block = top[stripe * _WEDGE_STRIPE_SUB : (stripe + 1) * _WEDGE_STRIPE_SUB + 1]
        patches.append(_grid_patch(block, ALBEDO["wedge_top"][stripe % 2], normal))
    # Long sides (trapezoids) at y = ya and y = yb.
    cols = np.stack([_wedge_column(x, nz) for x in xs])  # [nx+1, nz+1]
    for y, n in ((ya, (0, -1, 0)), (yb, (0, 1, 0))):
        pts = np.stack([np.repeat(xs[:, None], nz + 1, 1), np.full(cols.shape, y), cols], -1)
        patches.append(_grid_patch(pts, ALBEDO["wedge_side"], n))
    # End faces at x = xa (high) and x = xb (low).
    for x, n, name in ((xa, (-1, 0, 0), "wedge_high"), (xb, (1, 0, 0), "wedge_low")):
        col = _wedge_column(x, nz)
        pts = np.stack(
            [
                np.full((len(ys), nz + 1), x),
                np.repeat(ys[:, None], nz + 1, 1),
                np.tile(col, (len(ys), 1)),
            ],
            -1,
        )
        patches.append(_grid_patch(pts, ALBEDO[name], n))
    return patches, {"xs": xs, "ys": ys}


def _box_top_patch(box_xy: dict, ring_xy: np.ndarray, wedge_xy: dict) -> _Patch:
    """The box top face with the cylinder's disc and the wedge's footprint cut out.

    Delaunay triangulation of the boundary points (outer rectangle, circle, wedge rectangle,
    all shared bit-exactly with the neighbouring patches) plus interior points kept at least
    _TOP_MARGIN from every boundary, so that every boundary edge is a Delaunay edge; triangles
    whose centroid falls in a hole are dropped.
    """
    from scipy.spatial import Delaunay

    (x0, y0, _), (x1, y1, _) = BOX_MIN, BOX_MAX
    xs, ys = box_xy["xs"], box_xy["ys"]
    wxs, wys = wedge_xy["xs"], wedge_xy["ys"]
    (wxa, wxb), (wya, wyb) = WEDGE_X, WEDGE_Y
    cx, cy = CYL_CENTER
    outer = np.concatenate(
        [
            np.stack([xs, np.full_like(xs, y0)], -1),
            np.stack([xs, np.full_like(xs, y1)], -1),
            np.stack([np.full_like(ys, x0), ys], -1)[1:-1],
            np.stack([np.full_like(ys, x1), ys], -1)[1:-1],
        ]
    )
    wedge = np.concatenate(
        [
            np.stack([wxs, np.full_like(wxs, wya)], -1),
            np.stack([wxs, np.full_like(wxs, wyb)], -1),
            np.stack([np.full_like(wys, wxa), wys], -1)[1:-1],
            np.stack([np.full_like(wys, wxb), wys], -1)[1:-1],
        ]
    )
    gx = np.arange(x0 + _TOP_SPACING / 2, x1, _TOP_SPACING)
    gy = np.arange(y0 + _TOP_SPACING / 2, y1, _TOP_SPACING)
    g = np.stack(np.meshgrid(gx, gy, indexing="ij"), -1).reshape(-1, 2)
    m = _TOP_MARGIN
    keep = (g[:, 0] > x0 + m) & (g[:, 0] < x1 - m) & (g[:, 1] > y0 + m) & (g[:, 1] < y1 - m)
    keep &= np.abs(np.hypot(g[:, 0] - cx, g[:, 1] - cy) - CYL_RADIUS) > m
    keep &= np.hypot(g[:, 0] - cx, g[:, 1] - cy) > CYL_RADIUS
    dx = np.maximum(np.maximum(wxa - g[:, 0], g[:, 0] - wxb), 0.0)
    dy = np.maximum(np.maximum(wya - g[:, 1], g[:, 1] - wyb), 0.0)
    keep &= np.hypot(dx, dy) > m
    pts2 = np.concatenate([outer, ring_xy, wedge, g[keep]])
    tri = Delaunay(pts2).simplices.astype(np.int64)
    cen = pts2[tri].mean(axis=1)
    in_cyl = np.hypot(cen[:, 0] - cx, cen[:, 1] - cy) < CYL_RADIUS
    in_wedge = (cen[:, 0] > wxa) & (cen[:, 0] < wxb) & (cen[:, 1] > wya) & (cen[:, 1] < wyb)
    tri = tri[~in_cyl & ~in_wedge]
    vert = np.concatenate([pts2, np.full((len(pts2), 1), TOP_Z)], axis=1)
    v = vert[tri]
    n = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    tri = np.where((n[:, 2] < 0)[:, None], tri[:, ::-1], tri)
    normals = np.broadcast_to([0.0, 0.0, 1.0], vert.shape)
    return _Patch(vert, tri, _shade(ALBEDO["top"], normals))


@dataclass
class DemoObject:
    """The demo object's surface, in world coordinates.

    render_*: per-patch vertices (hard creases, sharp colour edges) for rendering.
    vertices/faces/colors: the same surface with equal vertices merged (watertight).
    """

    render_vertices: np.ndarray  # [N, 3] float64
    render_faces: np.ndarray  # [M, 3] int64
    render_colors: np.ndarray  # [N, 3] uint8
    vertices: np.ndarray  # [V, 3] float64
    faces: np.ndarray  # [M, 3] int64
    colors: np.ndarray  # [V, 3] uint8 (mean of the patch colours meeting at a vertex)


TEXTURE_SPACINGS = (0.12, 0.06, 0.03)
"""Lattice spacings (world units) of the value-noise octaves of the textured variant."""
TEXTURE_GAIN = (0.25, 1.45)
"""Range of the textured variant's brightness factor (multiplies the baked colour)."""


def texture_factor(points: np.ndarray, seed: int = 7) -> np.ndarray:
    """A solid (3D) value-noise brightness factor [N] at world points [N, 3], in TEXTURE_GAIN.

    Octaves of cubic-interpolated random lattices (TEXTURE_SPACINGS); deterministic for a seed.
    Evaluated at the render mesh's vertices (about 0.015 apart), it gives blobs a few pixels
    wide at 128-256 px: corners for feature detectors on every face, also the flat ones.
    """
    from scipy.ndimage import map_coordinates

    rng = np.random.default_rng(seed)
    pts = np.asarray(points, dtype=float)
    total = np.zeros(len(pts))
    weight = 0.0
    for k, spacing in enumerate(TEXTURE_SPACINGS):
        n = int(math.ceil(2.4 / spacing)) + 4
        lattice = rng.uniform(-1.0, 1.0, (n, n, n))
        coords = ((pts + 1.2) / spacing + 1.5).T
        total += 0.75**k * map_coordinates(lattice, coords, order=3, mode="nearest")
        weight += 0.75**k
    v = total / weight
    v = 0.5 + 0.5 * np.tanh(3.0 * v / max(float(np.std(v)), 1e-9) / 2.0)  # spread over (0, 1)
    lo, hi = TEXTURE_GAIN
    return lo + (hi - lo) * v


def build_demo_object(textured: bool = False) -> DemoObject:
    """Build the demo object's surface (deterministic; about 50 k triangles).

    With ``textured`` the baked colours are multiplied by :func:`texture_factor` (solid
    noise), which gives structure from motion hundreds of features per view.
    """
    box, box_xy = _box_patches()
    cyl, ring_xy = _cylinder_patches()
    wedge, wedge_xy = _wedge_patches()
    patches = box + cyl + wedge + [_box_top_patch(box_xy, ring_xy, wedge_xy)]
    verts, faces, cols, offset = [], [], [], 0
    for p in patches:
        verts.append(p.vertices)
        faces.append(p.faces + offset)
        cols.append(p.colors)
        offset += len(p.vertices)
    rv = np.concatenate(verts) + 0.0  # + 0.0 turns -0.0 into 0.0 for the exact merge below
    rf = np.concatenate(faces)
    rc = np.concatenate(cols)
    if textured:
        rc = np.clip(rc * texture_factor(rv)[:, None], 0.0, 1.0)
    uniq, inverse = np.unique(rv, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    acc = np.zeros((len(uniq), 3))
    np.add.at(acc, inverse, rc)
    count = np.bincount(inverse, minlength=len(uniq))[:, None]
    to_u8 = lambda c: np.clip(np.round(c * 255.0), 0, 255).astype(np.uint8)  # noqa: E731
    return DemoObject(
        render_vertices=rv,
        render_faces=rf,
        render_colors=to_u8(rc),
        vertices=uniq,
        faces=inverse[rf],
        colors=to_u8(acc / count),
    )


def feature_curves() -> list[dict]:
    """The object's sharp feature curves in the project's curves.json schema."""
    (x0, y0, z0), (x1, y1, z1) = BOX_MIN, BOX_MAX
    curves: list[dict] = []

    def line(p, q):
        curves.append({"type": "line", "points": [list(map(float, p)), list(map(float, q))]})

    # Box: 4 bottom, 4 top (convex, uninterrupted: both features stand inside the top face), 4 vertical.
    corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    for z in (z0, z1):
        for i in range(4):
            (ax, ay), (bx, by) = corners[i], corners[(i + 1) % 4]
            line((ax, ay, z), (bx, by, z))
    for ax, ay in corners:
        line((ax, ay, z0), (ax, ay, z1))
    # Wedge: 4 concave edges on the box top, 4 vertical edges, 4 edges around the sloped top.
    (wxa, wxb), (wya, wyb) = WEDGE_X, WEDGE_Y
    wc = [(wxa, wya), (wxb, wya), (wxb, wyb), (wxa, wyb)]
    tz = {x: float(_wedge_top_z(x)) for x in (wxa, wxb)}
    for i in range(4):
        (ax, ay), (bx, by) = wc[i], wc[(i + 1) % 4]
        line((ax, ay, z1), (bx, by, z1))
        line((ax, ay, tz[ax]), (bx, by, tz[bx]))
    for ax, ay in wc:
        line((ax, ay, z1), (ax, ay, tz[ax]))
    # Cylinder: the concave crease on the box top and the convex rim of the top cap.
    cx, cy = CYL_CENTER
    r = CYL_RADIUS
    for z in (z1, z1 + CYL_HEIGHT):
        for q in range(4):
            a, b = q * np.pi / 2, (q + 1) * np.pi / 2
            p0 = np.array([cx + r * np.cos(a), cy + r * np.sin(a), z])
            p3 = np.array([cx + r * np.cos(b), cy + r * np.sin(b), z])
            p1 = p0 + KAPPA * r * np.array([-np.sin(a), np.cos(a), 0.0])
            p2 = p3 - KAPPA * r * np.array([-np.sin(b), np.cos(b), 0.0])
            cps = [[float(round(c, 12)) for c in p] for p in (p0, p1, p2, p3)]
            curves.append({"type": "bezier", "control_points": cps})
    return curves


# ----------------------------------------------------------------------------------------
# Cameras
# ----------------------------------------------------------------------------------------


def look_at_c2w(position: np.ndarray, target=(0.0, 0.0, 0.0), up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """Camera-to-world 4x4, OpenGL convention (camera looks down -Z, +Y up)."""
    position = np.asarray(position, dtype=float)
    z = position - np.asarray(target, dtype=float)
    z /= np.linalg.norm(z)
    x = np.cross(np.asarray(up, dtype=float), z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = x, y, z, position
    return c2w


def _on_sphere(azimuth: np.ndarray, elevation: np.ndarray, distance: float) -> np.ndarray:
    ce = np.cos(elevation)
    return distance * np.stack(
        [ce * np.cos(azimuth), ce * np.sin(azimuth), np.sin(elevation)], axis=-1
    )


def camera_positions(n_train: int, n_val: int, n_test: int, seed: int = 0) -> dict:
    """Camera centres per split: a Fibonacci band for train, rings for val and test.

    Train cameras are spread uniformly (by area) over the band of elevations
    TRAIN_ELEVATION_DEG; val cameras sit on a ring at 30 degrees, test cameras on a ring
    alternating between 25 and 35 degrees, with azimuths half-way between the val/test
    neighbours. The seed rotates the whole rig about +Z and jitters the train spiral.
    """
    rng = np.random.default_rng(seed)
    offset = rng.uniform(0.0, 2.0 * np.pi) if seed else 0.0
    golden = np.pi * (3.0 - np.sqrt(5.0))
    lo, hi = (math.radians(e) for e in TRAIN_ELEVATION_DEG)
    i = np.arange(n_train)
    frac = (i + 0.5) / max(n_train, 1)
    if seed:
        frac = np.clip(frac + rng.uniform(-0.25, 0.25, n_train) / max(n_train, 1), 0, 1)
    elev = np.arcsin(np.sin(lo) + frac * (np.sin(hi) - np.sin(lo)))
    azim = offset + i * golden
    out = {"train": _on_sphere(azim, elev, CAMERA_DISTANCE)}
    k = np.arange(n_val)
    out["val"] = _on_sphere(
        offset + 2 * np.pi * (k + 0.25) / max(n_val, 1),
        np.full(n_val, math.radians(RING_ELEVATION_DEG["val"])),
        CAMERA_DISTANCE,
    )
    k = np.arange(n_test)
    lo_t, hi_t = RING_ELEVATION_DEG["test"]
    out["test"] = _on_sphere(
        offset + 2 * np.pi * (k + 0.5) / max(n_test, 1) + 0.1,
        np.radians(np.where(k % 2 == 0, lo_t, hi_t)),
        CAMERA_DISTANCE,
    )
    return out


def focal_length(size: int, camera_angle_x: float = CAMERA_ANGLE_X) -> float:
    """Pinhole focal length in pixels: 0.5 * W / tan(0.5 * camera_angle_x)."""
    return 0.5 * size / math.tan(0.5 * camera_angle_x)


# ----------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------


class _Renderer:
    """One offscreen VTK window reused for every view (lighting off, no MSAA)."""

    def __init__(self, obj: DemoObject, size: int, supersample: int = SUPERSAMPLE):
        import pyvista as pv

        self.size = size
        self.ss = supersample
        n = size * supersample
        faces = np.hstack([np.full((len(obj.render_faces), 1), 3), obj.render_faces])
        mesh = pv.PolyData(obj.render_vertices, faces.ravel())
        mesh.point_data["rgb"] = obj.render_colors
        self.plotter = pv.Plotter(off_screen=True, window_size=[n, n], lighting="none")
        self.plotter.add_mesh(mesh, scalars="rgb", rgb=True, lighting=False, show_scalar_bar=False)
        self.plotter.disable_anti_aliasing()
        self.plotter.ren_win.SetMultiSamples(0)
        self.plotter.set_background("black")
        self.plotter.renderer.camera_set = True

    def render(self, c2w: np.ndarray) -> np.ndarray:
        """RGBA uint8 [size, size, 4], straight (unassociated) alpha."""
        cam = self.plotter.renderer.GetActiveCamera()
        pos = c2w[:3, 3]
        cam.SetPosition(*pos)
        cam.SetFocalPoint(*(pos - c2w[:3, 2]))
        cam.SetViewUp(*c2w[:3, 1])
        cam.SetViewAngle(math.degrees(CAMERA_ANGLE_X))  # vertical FOV; images are square
        cam.SetUseHorizontalViewAngle(False)
        dist = float(np.linalg.norm(pos))
        cam.SetClippingRange(max(dist - 2.0, 0.05), dist + 2.0)
        # pyvista's Plotter.render() is a no-op before show(); drive the VTK window directly.
        self.plotter.ren_win.Render()
        img = self.plotter.screenshot(transparent_background=True, return_img=True)
        n = self.size * self.ss
        if img.shape[:2] != (n, n):
            raise RuntimeError(
                f"VTK returned a {img.shape[1]}x{img.shape[0]} image, wanted {n}x{n}"
            )
        return downsample_rgba(img, self.ss)

    def close(self) -> None:
        self.plotter.close()


def downsample_rgba(img: np.ndarray, factor: int) -> np.ndarray:
    """Box-filter an RGBA uint8 image by an integer factor with premultiplied alpha."""
    h, w = img.shape[0] // factor, img.shape[1] // factor
    f = img[: h * factor, : w * factor].astype(np.float64) / 255.0
    f = f.reshape(h, factor, w, factor, 4)
    a = f[..., 3]
    premult = (f[..., :3] * a[..., None]).mean(axis=(1, 3))
    alpha = a.mean(axis=(1, 3))
    rgb = np.where(alpha[..., None] > 0, premult / np.maximum(alpha, 1e-12)[..., None], 0.0)
    out = np.concatenate([rgb, alpha[..., None]], axis=-1)
    return np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600 files
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _write_json(path: Path, obj) -> None:
    _atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


def _write_png(path: Path, rgba: np.ndarray) -> None:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
    _atomic_write_bytes(path, buf.getvalue())


def _write_ply(path: Path, vertices: np.ndarray, faces: np.ndarray, colors: np.ndarray) -> None:
    """Binary little-endian PLY with float xyz, uchar rgb and int face lists."""
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        "comment ReconStudio demo object, ground truth, world coordinates\n"
        f"element vertex {len(vertices)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\n"
        f"element face {len(faces)}\n"
        "property list uchar int vertex_indices\nend_header\n"
    )
    vdt = np.dtype([("p", "<f4", 3), ("c", "u1", 3)])
    v = np.empty(len(vertices), dtype=vdt)
    v["p"], v["c"] = vertices, colors
    fdt = np.dtype([("n", "u1"), ("i", "<i4", 3)])
    f = np.empty(len(faces), dtype=fdt)
    f["n"], f["i"] = 3, faces
    _atomic_write_bytes(path, header.encode("ascii") + v.tobytes() + f.tobytes())


_README = """\
ReconStudio demo object (generated by render/demo_capture.py, no third-party model). A union
of three solids in world coordinates, +Z up, centred near the origin inside [-1, 1]^3: a box
base 1.4 x 1.0 x 0.5 (x in [-0.7, 0.7], y in [-0.5, 0.5], z in [-0.55, -0.05]); a cylinder of
radius 0.35 and height 0.6 standing on the box top at (x, y) = (0.25, 0), top at z = 0.55; and a
wedge (ramp) on the box top, x in [-0.6, -0.25], y in [-0.3, 0.3], 0.35 tall at x = -0.6 sloping
down to 0.10 tall at x = -0.25. Colours are view-independent: albedo * (0.55 + 0.45 * max(0,
n . l)) with the light direction l = (0.45, -0.35, 0.82) normalised; the box sides carry
checkers in a different colour pair per face (8 x 3 or 6 x 3 cells), the bottom a dark checker,
the box top is flat sand, the cylinder side a colour gradient around its axis in four
alternating-brightness bands, its cap a polar checker, and the wedge top five stripes.
mesh.ply is the closed (watertight) surface with per-vertex colours (averaged where faces of
different colours meet). curves.json lists the 32 sharp feature curves: 12 box edges and 12
wedge edges as lines (including the 4 concave edges where the wedge meets the box), and the
cylinder's top rim and its concave crease with the box top, each as 4 cubic Beziers. Cameras:
NeRF-synthetic transforms_*.json, OpenGL camera-to-world, camera_angle_x = {fov} rad, all at
distance {dist} looking at the origin; images {size} x {size} px, RGBA, transparent background.
"""


def write_views(out: Path, obj: DemoObject, size: int, positions: dict) -> None:
    """Render ``obj`` from every camera position of every split into ``out``: RGBA PNGs and
    NeRF-synthetic ``transforms_<split>.json`` (OpenGL camera-to-world, looking at the origin)."""
    renderer = _Renderer(obj, size)
    try:
        for split in ("train", "val", "test"):
            frames = []
            for i, pos in enumerate(positions[split]):
                c2w = look_at_c2w(pos)
                _write_png(out / split / f"r_{i}.png", renderer.render(c2w))
                frames.append({"file_path": f"./{split}/r_{i}", "rotation": 0.0,
                               "transform_matrix": [[float(v) for v in row] for row in c2w]})
            _write_json(out / f"transforms_{split}.json",
                        {"camera_angle_x": CAMERA_ANGLE_X, "frames": frames})
    finally:
        renderer.close()


def make_demo_capture(
    out: Path, size: int = 128, n_train: int = 48, n_val: int = 4, n_test: int = 8, seed: int = 0,
    textured: bool = False,
) -> Path:
    """Render the demo capture into `out` (NeRF-synthetic layout plus gt/) and return `out`.

    Deterministic: the same arguments give byte-identical files. ``textured`` renders the
    noise-textured variant (:func:`build_demo_object`).
    """
    out = Path(out)
    if size < 8:
        raise ValueError(f"size must be at least 8 pixels, got {size}")
    obj = build_demo_object(textured)
    write_views(out, obj, size, camera_positions(n_train, n_val, n_test, seed))
    _write_ply(out / "gt" / "mesh.ply", obj.vertices, obj.faces, obj.colors)
    _write_json(out / "gt" / "curves.json", {"curves": feature_curves()})
    readme = _README.format(fov=CAMERA_ANGLE_X, dist=CAMERA_DISTANCE, size=size)
    _atomic_write_bytes(out / "gt" / "README.txt", readme.encode())
    return out


SPIRAL_ELEVATION_DEG = (10.0, 50.0)
"""Elevation of the video's camera path at its first and its last frame."""


def spiral_c2w(n_frames: int, turns: float = 1.0,
               elevation_deg: tuple[float, float] = SPIRAL_ELEVATION_DEG) -> np.ndarray:
    """[n, 4, 4] OpenGL camera-to-world along a rising spiral at CAMERA_DISTANCE.

    The azimuth goes once (``turns``) around +Z while the elevation rises linearly from
    ``elevation_deg[0]`` to ``elevation_deg[1]``; every camera looks at the origin.
    """
    t = np.arange(n_frames) / max(n_frames, 1)
    azim = 2.0 * np.pi * turns * t
    lo, hi = (math.radians(e) for e in elevation_deg)
    elev = lo + (hi - lo) * np.arange(n_frames) / max(n_frames - 1, 1)
    return np.stack([look_at_c2w(p) for p in _on_sphere(azim, elev, CAMERA_DISTANCE)])


def make_demo_video(path: Path, size: int = 192, n_frames: int = 64, fps: float = 24.0,
                    turns: float = 1.0, textured: bool = True,
                    background=(255, 255, 255)) -> np.ndarray:
    """Render the demo object along :func:`spiral_c2w` into a video file; the true poses.

    The video holds only pixels (RGB over ``background``, white like the default
    background of ``load_capture``), no cameras: ``.avi`` is written
    as MJPG, anything else (``.mp4``) as mp4v. Returns the [n, 4, 4] camera-to-world
    matrices of its frames (OpenGL convention, world of the demo object), for checking a
    structure-from-motion result. Camera intrinsics: :func:`focal_length` (square frames).
    """
    import cv2

    path = Path(path)
    if size < 16 or size % 2:
        raise ValueError(f"size must be even and at least 16 pixels, got {size}")
    c2w = spiral_c2w(n_frames, turns)
    fourcc = "MJPG" if path.suffix.lower() == ".avi" else "mp4v"
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (size, size))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {fourcc} video to {path}")
    bg = np.asarray(background, dtype=np.float64)
    renderer = _Renderer(build_demo_object(textured), size)
    try:
        for m in c2w:
            rgba = renderer.render(m).astype(np.float64)
            a = rgba[..., 3:] / 255.0
            rgb = np.clip(np.round(rgba[..., :3] * a + bg * (1.0 - a)), 0, 255).astype(np.uint8)
            writer.write(np.ascontiguousarray(rgb[..., ::-1]))
    finally:
        renderer.close()
        writer.release()
    return c2w


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m render.demo_capture",
        description="Render the bundled demo object as a NeRF-synthetic capture (plus gt/).",
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--size", type=int, default=128, help="image width = height in pixels")
    parser.add_argument("--train", type=int, default=48, help="number of training views")
    parser.add_argument("--val", type=int, default=4, help="number of validation views")
    parser.add_argument("--test", type=int, default=8, help="number of test views")
    parser.add_argument("--seed", type=int, default=0, help="camera layout seed")
    parser.add_argument("--textured", action="store_true",
                        help="noise-textured variant (features for structure from motion)")
    parser.add_argument("--video", type=Path, default=None,
                        help="write a video (.mp4 or .avi) along a rising spiral to this file "
                             "instead of a capture; --train frames, true poses to --out as JSON")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    if args.video is not None:
        c2w = make_demo_video(args.video, args.size, args.train, textured=args.textured)
        _write_json(Path(args.out), {"camera_angle_x": CAMERA_ANGLE_X,
                                     "frames": [{"index": i, "transform_matrix": m.tolist()}
                                                for i, m in enumerate(c2w)]})
        print(f"wrote {len(c2w)} frames ({args.size} px) to {args.video}, poses to {args.out} "
              f"in {time.perf_counter() - t0:.1f} s")
        return 0
    out = make_demo_capture(args.out, args.size, args.train, args.val, args.test, args.seed,
                            args.textured)
    n = args.train + args.val + args.test
    print(f"wrote {n} views ({args.size} px) and gt/ to {out} in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
