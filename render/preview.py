"""Pictures of a mesh for the CLI's demo: offscreen PNG (headless) or an interactive window.

The mesh (PLY, vertex colours used when present) is shown on the left and, when given, the
ground-truth mesh on the right, with linked cameras and a title on each; camera frustums
from a NeRF-synthetic ``transforms_*.json`` can be drawn in both views.

CLI: ``python -m render.preview MESH.ply --out PNG [--gt GT.ply] [--cameras transforms.json]
[--size W H] [--view X Y Z] [--up X Y Z] [--plain]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

# Without a display, ask VTK for its EGL window directly (see render/demo_capture.py).
if not os.environ.get("DISPLAY"):
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")

BACKGROUND = "#f2f3f5"
"""Background colour of the pictures."""
PLAIN_COLOR = "#9db4d0"
"""Surface colour of a mesh without vertex colours (shown with lighting)."""
FRUSTUM_COLOR = "#e07a1f"
VIEW_DIRECTION = (math.radians(-55.0), math.radians(28.0))
"""Azimuth and elevation (radians) the preview looks from, towards the scene's centre."""


def _load_mesh(path: Path):
    import pyvista as pv

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mesh file not found: {path} (pass the PLY written by recon fit)")
    try:
        mesh = pv.read(str(path))
    except Exception as exc:  # VTK readers raise a variety of errors
        raise ValueError(f"could not read mesh {path}: {exc}") from exc
    if not isinstance(mesh, pv.PolyData):
        mesh = mesh.extract_surface()
    return mesh


COLOR_NAMES = ("RGB", "RGBA", "rgb", "rgba", "colors", "Colors", "COLOR_0", "Color")


def vertex_colors(mesh) -> np.ndarray | None:
    """uint8 [N, 3] colours from the first per-point colour array of a mesh, or None."""
    for name in COLOR_NAMES:
        if name not in mesh.point_data:
            continue
        arr = np.asarray(mesh.point_data[name])
        if arr.ndim != 2 or arr.shape[1] not in (3, 4):
            continue
        rgb = arr[:, :3]
        if rgb.dtype != np.uint8:
            rgb = rgb.astype(np.float64)
            scale = 255.0 if rgb.max(initial=0.0) <= 1.0 else 1.0
            rgb = np.clip(np.round(rgb * scale), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(rgb)
    return None


def _add_mesh(plotter, mesh, plain: bool = False) -> None:
    """Vertex colours unlit (they already hold the learned/baked radiance), else lit plain.

    plain: ignore vertex colours and show the lit surface (to judge the geometry).
    """
    if mesh.n_points == 0:
        return
    colors = None if plain else vertex_colors(mesh)
    if colors is not None:
        mesh = mesh.copy(deep=False)
        mesh.point_data["_rgb"] = colors
        plotter.add_mesh(mesh, scalars="_rgb", rgb=True, lighting=False, show_scalar_bar=False)
    else:
        plotter.add_mesh(mesh, color=PLAIN_COLOR, smooth_shading=True, specular=0.2)


def camera_frustums(cameras_json: Path, depth: float | None = None):
    """Line PolyData of one frustum per frame of a NeRF-synthetic transforms json.

    depth: distance of the drawn image plane from each camera centre; by default 12 % of
    the cameras' mean distance from the world origin.
    """
    import pyvista as pv

    meta = json.loads(Path(cameras_json).read_text())
    frames = meta.get("frames", [])
    if not frames:
        return pv.PolyData()
    c2ws = np.array([np.asarray(f["transform_matrix"], dtype=float) for f in frames])
    fov_x = float(meta.get("camera_angle_x", 0.69))
    w, h = float(meta.get("w", 1.0)), float(meta.get("h", 1.0))
    return frustum_lines(c2ws, fov_x, w / h, depth)


def frustum_lines(c2ws: np.ndarray, fov_x: float, aspect: float, depth: float | None = None):
    """Line PolyData of one frustum per camera-to-world matrix [N, 4, 4] (OpenGL), with
    horizontal field of view ``fov_x`` (radians) and width / height ``aspect``."""
    import pyvista as pv

    c2ws = np.asarray(c2ws, dtype=float).reshape(-1, 4, 4)
    if not len(c2ws):
        return pv.PolyData()
    w, h = float(aspect), 1.0
    if depth is None:
        depth = 0.12 * float(np.mean(np.linalg.norm(c2ws[:, :3, 3], axis=1)))
    hx = depth * math.tan(0.5 * fov_x)
    hy = hx * h / w
    # Camera space (OpenGL): looks down -Z, +Y up.
    local = np.array(
        [[0, 0, 0], [-hx, -hy, -depth], [hx, -hy, -depth], [hx, hy, -depth], [-hx, hy, -depth]]
    )
    # A small triangle above the image plane marks the camera's up direction.
    up = np.array(
        [[-0.4 * hx, 1.1 * hy, -depth], [0.4 * hx, 1.1 * hy, -depth], [0, 1.5 * hy, -depth]]
    )
    local = np.concatenate([local, up])
    points, lines = [], []
    segs = [(0, 1), (0, 2), (0, 3), (0, 4), (1, 2), (2, 3), (3, 4), (4, 1), (5, 6), (6, 7), (7, 5)]
    for k, c2w in enumerate(c2ws):
        points.append(local @ c2w[:3, :3].T + c2w[:3, 3])
        base = k * len(local)
        lines.extend([2, base + a, base + b] for a, b in segs)
    return pv.PolyData(np.concatenate(points), lines=np.array(lines).ravel())


def fit_camera(cam, points: np.ndarray, aspect: float, view_angle: float = 30.0,
               margin: float = 1.08, view: np.ndarray | None = None,
               up: np.ndarray | None = None) -> None:
    """Point a VTK camera at `points` [N, 3] from VIEW_DIRECTION so that all of them fit.

    aspect: viewport width / height; view_angle: vertical field of view in degrees.
    view: [3] direction from the points' centre towards the eye, replacing VIEW_DIRECTION;
    up: [3] world direction shown upwards (default +Z; must not be parallel to `view`).
    """
    lo, hi = points.min(axis=0), points.max(axis=0)
    center = 0.5 * (lo + hi)
    if view is None:
        az, el = VIEW_DIRECTION
        back = np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
    else:
        back = np.asarray(view, float) / np.linalg.norm(view)
    right = np.cross([0.0, 0.0, 1.0] if up is None else np.asarray(up, float), back)
    right /= np.linalg.norm(right)
    up = np.cross(back, right)
    rel = points - center
    x, y, z = rel @ right, rel @ up, rel @ back
    tan_y = math.tan(math.radians(0.5 * view_angle))
    tan_x = tan_y * aspect
    dist = float(np.max(np.maximum(np.abs(x) * margin / tan_x, np.abs(y) * margin / tan_y) + z))
    extent = float(np.linalg.norm(hi - lo)) + 1e-6
    dist = max(dist, 0.5 * extent)
    cam.SetViewAngle(view_angle)
    cam.SetFocalPoint(*center)
    cam.SetPosition(*(center + dist * back))
    cam.SetViewUp(*up)
    cam.SetClippingRange(max(dist - extent, 1e-3 * dist), dist + extent)


def _build(plotter, mesh_path, gt_mesh_path, cameras_json, titles=True, view=None, up=None,
           plain=False) -> None:
    mesh = _load_mesh(mesh_path)
    gt = _load_mesh(gt_mesh_path) if gt_mesh_path is not None else None
    frustums = camera_frustums(cameras_json) if cameras_json is not None else None
    panels = [("Reconstruction", mesh)] + ([("Ground truth", gt)] if gt is not None else [])
    for col, (title, m) in enumerate(panels):
        plotter.subplot(0, col)
        plotter.set_background(BACKGROUND)
        _add_mesh(plotter, m, plain)
        if frustums is not None and frustums.n_points:
            plotter.add_mesh(frustums, color=FRUSTUM_COLOR, line_width=1.5, lighting=False)
        if titles:
            path = mesh_path if col == 0 else gt_mesh_path
            label = f"{title}: {Path(path).name}  ({m.n_points:,} vertices, {m.n_cells:,} faces)"
            plotter.add_text(label, position="upper_left", font_size=11, color="black")
    # One camera for all panels, fitted tightly to the meshes and frustums.
    clouds = [np.asarray(m.points, float) for _, m in panels if m.n_points]
    if frustums is not None and frustums.n_points:
        clouds.append(np.asarray(frustums.points, float))
    points = np.concatenate(clouds) if clouds else np.array([[-1.0, -1.0, -1.0], [1, 1, 1]])
    rows, cols = plotter.shape
    width, height = plotter.window_size
    plotter.subplot(0, 0)
    fit_camera(plotter.renderer.GetActiveCamera(), points, (width / cols) / (height / rows),
               view=view, up=up)
    plotter.renderer.camera_set = True
    if len(panels) > 1:
        plotter.link_views()


def render_mesh_preview(
    mesh_path: Path,
    out_png: Path,
    gt_mesh_path: Path | None = None,
    cameras_json: Path | None = None,
    size: tuple[int, int] = (1200, 600),
    view: np.ndarray | None = None,
    up: np.ndarray | None = None,
    plain: bool = False,
) -> Path:
    """Render `mesh_path` (and the ground truth beside it) offscreen into `out_png`.

    size is the whole picture (width, height); with a ground truth each panel gets half the
    width. view, up: see :func:`fit_camera`; plain: lit surface without vertex colours.
    Returns the PNG path.
    """
    import pyvista as pv

    out_png = Path(out_png)
    shape = (1, 2) if gt_mesh_path is not None else (1, 1)
    plotter = pv.Plotter(
        shape=shape, off_screen=True, window_size=list(size), border=gt_mesh_path is not None
    )
    try:
        _build(plotter, mesh_path, gt_mesh_path, cameras_json, view=view, up=up, plain=plain)
        plotter.enable_anti_aliasing("ssaa")
        plotter.ren_win.Render()  # pyvista's render() is a no-op before show()
        out_png.parent.mkdir(parents=True, exist_ok=True)
        tmp = out_png.with_name(f".{out_png.stem}.tmp.png")
        plotter.screenshot(str(tmp))
        os.replace(tmp, out_png)
    finally:
        plotter.close()
    return out_png


def show_mesh(
    mesh_path: Path, gt_mesh_path: Path | None = None, cameras_json: Path | None = None
) -> None:
    """Open an interactive window with the mesh (and the ground truth beside it). Needs a display."""
    import pyvista as pv

    shape = (1, 2) if gt_mesh_path is not None else (1, 1)
    size = [1400, 700] if gt_mesh_path is not None else [900, 700]
    plotter = pv.Plotter(shape=shape, window_size=size, title="ReconStudio preview")
    _build(plotter, mesh_path, gt_mesh_path, cameras_json)
    plotter.show()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m render.preview",
        description="Render a mesh (and its ground truth beside it) to a PNG, offscreen.",
    )
    parser.add_argument("mesh", type=Path, help="mesh PLY (vertex colours used when present)")
    parser.add_argument("--out", type=Path, required=True, help="output PNG")
    parser.add_argument("--gt", type=Path, default=None, help="ground-truth mesh PLY")
    parser.add_argument(
        "--cameras", type=Path, default=None, help="NeRF-synthetic transforms json to draw"
    )
    parser.add_argument(
        "--size", type=int, nargs=2, default=(1200, 600), metavar=("W", "H"), help="pixels"
    )
    parser.add_argument(
        "--view", type=float, nargs=3, default=None, metavar=("X", "Y", "Z"),
        help="direction from the object towards the eye (default: azimuth -55, elevation 28)",
    )
    parser.add_argument(
        "--up", type=float, nargs=3, default=None, metavar=("X", "Y", "Z"),
        help="world direction shown upwards (default +Z)",
    )
    parser.add_argument(
        "--plain", action="store_true", help="lit surface without vertex colours (geometry)"
    )
    args = parser.parse_args(argv)
    try:
        out = render_mesh_preview(args.mesh, args.out, args.gt, args.cameras, tuple(args.size),
                                  view=args.view, up=args.up, plain=args.plain)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
