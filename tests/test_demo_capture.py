"""The bundled demo capture (render/demo_capture.py) and the offscreen preview (render/preview.py).

Rendering goes through VTK's offscreen EGL window (no display needed); under xvfb-run VTK uses
the X server instead and the same assertions hold.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from render import demo_capture as dc

SIZE = 48
COUNTS = {"train": 6, "val": 1, "test": 2}


@pytest.fixture(scope="module")
def capture(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "capture"
    result = dc.make_demo_capture(
        out, size=SIZE, n_train=COUNTS["train"], n_val=COUNTS["val"], n_test=COUNTS["test"]
    )
    assert result == out
    return out


def _frames(capture: Path):
    """(split, index, c2w [4, 4], rgba [H, W, 4] uint8, camera_angle_x) for every frame."""
    for split in COUNTS:
        meta = json.loads((capture / f"transforms_{split}.json").read_text())
        for i, frame in enumerate(meta["frames"]):
            rgba = np.array(Image.open(capture / (frame["file_path"] + ".png")))
            yield split, i, np.array(frame["transform_matrix"]), rgba, meta["camera_angle_x"]


# ------------------------------------------------------------------------------------------
# A reference independent of VTK: pinhole rays against the analytic solids.
# ------------------------------------------------------------------------------------------


def _pixel_rays(c2w: np.ndarray, size: int, fov_x: float, sub: int = 1, shift=(0.0, 0.0)):
    """World ray origins [N, 3] and directions [N, 3] through sub x sub samples per pixel.

    Pinhole: fx = fy = 0.5 W / tan(0.5 fov_x), cx = cy = W / 2, image x right, y down,
    camera direction ((x - cx) / fx, -(y - cy) / fy, -1) in OpenGL camera space. Samples are
    ordered [row, sub_row, col, sub_col].
    """
    f = 0.5 * size / math.tan(0.5 * fov_x)
    offs = (np.arange(sub) + 0.5) / sub
    coords = (np.arange(size)[:, None] + offs[None, :]).reshape(-1)
    ys, xs = np.meshgrid(coords + shift[1], coords + shift[0], indexing="ij")
    d_cam = np.stack([(xs - size / 2) / f, -(ys - size / 2) / f, -np.ones_like(xs)], -1)
    d = d_cam.reshape(-1, 3) @ c2w[:3, :3].T
    o = np.broadcast_to(c2w[:3, 3], d.shape)
    return o, d


def _clip_halfspaces(o, d, normals, offsets):
    """Ray parameter interval inside the convex set {p : normals @ p <= offsets}."""
    t0 = np.full(len(o), -np.inf)
    t1 = np.full(len(o), np.inf)
    for n, b in zip(np.asarray(normals, float), offsets, strict=True):
        nd = d @ n
        dist = b - o @ n
        with np.errstate(divide="ignore", invalid="ignore"):
            t = dist / nd
        t1 = np.where(nd > 0, np.minimum(t1, t), t1)
        t0 = np.where(nd < 0, np.maximum(t0, t), t0)
        outside = (nd == 0) & (dist < 0)
        t0 = np.where(outside, np.inf, t0)
    return t0, t1


def _hits(o, d) -> np.ndarray:
    """Whether each ray hits the union of box, wedge and cylinder (in front of the camera)."""
    (x0, y0, z0), (x1, y1, z1) = dc.BOX_MIN, dc.BOX_MAX
    eye = np.eye(3)
    box = _clip_halfspaces(o, d, np.concatenate([eye, -eye]), [x1, y1, z1, -x0, -y0, -z0])
    (wxa, wxb), (wya, wyb), (ha, hb) = dc.WEDGE_X, dc.WEDGE_Y, dc.WEDGE_HEIGHTS
    slope = (hb - ha) / (wxb - wxa)
    wedge = _clip_halfspaces(
        o,
        d,
        [[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, -1], [-slope, 0, 1]],
        [wxb, -wxa, wyb, -wya, -dc.TOP_Z, dc.TOP_Z + ha - slope * wxa],
    )
    # Cylinder: quadratic in xy, slab in z.
    cx, cy = dc.CYL_CENTER
    ox, oy = o[:, 0] - cx, o[:, 1] - cy
    a = d[:, 0] ** 2 + d[:, 1] ** 2
    b = 2 * (ox * d[:, 0] + oy * d[:, 1])
    c = ox**2 + oy**2 - dc.CYL_RADIUS**2
    disc = b * b - 4 * a * c
    sq = np.sqrt(np.maximum(disc, 0))
    ct0 = np.where(disc >= 0, (-b - sq) / (2 * a), np.inf)
    ct1 = np.where(disc >= 0, (-b + sq) / (2 * a), -np.inf)
    zt0, zt1 = _clip_halfspaces(
        o, d, [[0, 0, 1], [0, 0, -1]], [dc.TOP_Z + dc.CYL_HEIGHT, -dc.TOP_Z]
    )
    cyl = (np.maximum(ct0, zt0), np.minimum(ct1, zt1))
    hit = np.zeros(len(o), bool)
    for t0, t1 in (box, wedge, cyl):
        hit |= (t0 <= t1) & (t1 > 0)
    return hit


def _coverage(c2w, size, fov_x, sub=4, shift=(0.0, 0.0)) -> np.ndarray:
    o, d = _pixel_rays(c2w, size, fov_x, sub, shift)
    return _hits(o, d).reshape(size, sub, size, sub).mean(axis=(1, 3))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


# ------------------------------------------------------------------------------------------
# Tests
# ------------------------------------------------------------------------------------------


def test_layout_and_transforms(capture: Path):
    for split, n in COUNTS.items():
        meta = json.loads((capture / f"transforms_{split}.json").read_text())
        assert meta["camera_angle_x"] == pytest.approx(0.69)
        assert len(meta["frames"]) == n
        for i, frame in enumerate(meta["frames"]):
            assert frame["file_path"] == f"./{split}/r_{i}"
            assert (capture / split / f"r_{i}.png").is_file()
            c2w = np.array(frame["transform_matrix"])
            assert c2w.shape == (4, 4)
            np.testing.assert_allclose(c2w[3], [0, 0, 0, 1])
            r = c2w[:3, :3]
            np.testing.assert_allclose(r.T @ r, np.eye(3), atol=1e-9)
            assert np.linalg.det(r) == pytest.approx(1.0)
            centre = c2w[:3, 3]
            assert np.linalg.norm(centre) == pytest.approx(dc.CAMERA_DISTANCE)
            # OpenGL: the camera looks down its -Z axis, at the origin, with +Y roughly up.
            np.testing.assert_allclose(-r[:, 2], -centre / np.linalg.norm(centre), atol=1e-9)
            assert r[2, 1] > 0
    train = np.array(
        [
            f["transform_matrix"]
            for f in json.loads((capture / "transforms_train.json").read_text())["frames"]
        ]
    )
    elev = np.degrees(np.arcsin(train[:, 2, 3] / dc.CAMERA_DISTANCE))
    assert elev.min() >= -20.0 - 1e-6 and elev.max() <= 70.0 + 1e-6
    assert (capture / "gt" / "mesh.ply").is_file()
    assert (capture / "gt" / "curves.json").is_file()
    assert len((capture / "gt" / "README.txt").read_text()) > 200


def test_images_rgba_with_transparent_background(capture: Path):
    for split, i, _c2w, rgba, _fov in _frames(capture):
        assert rgba.shape == (SIZE, SIZE, 4), (split, i)
        alpha = rgba[..., 3]
        border = np.concatenate([alpha[0], alpha[-1], alpha[:, 0], alpha[:, -1]])
        assert border.max() == 0, f"{split}/r_{i}: object touches the frame"
        assert alpha[SIZE // 2 - 2 : SIZE // 2 + 2, SIZE // 2 - 2 : SIZE // 2 + 2].min() == 255
        frac = ((alpha > 0) & (alpha < 255)).sum()
        assert frac > 20, f"{split}/r_{i}: edges are not anti-aliased"
        # The object fills a sensible part of the frame.
        cols = np.nonzero(alpha.max(axis=0) > 0)[0]
        width = (cols[-1] - cols[0] + 1) / SIZE
        assert 0.35 < width < 0.8, (split, i, width)
        # Straight alpha: transparent pixels carry no colour.
        assert rgba[alpha == 0][:, :3].max() == 0


def test_pixels_follow_the_pinhole_model(capture: Path):
    """Alpha matches an analytic ray cast of the solids with the documented pinhole model."""
    for split, i, c2w, rgba, fov in _frames(capture):
        alpha = rgba[..., 3] / 255.0
        cov = _coverage(c2w, SIZE, fov)
        # alpha is quantised to 1/255: a half-covered pixel is 128/255, so threshold below 0.5.
        iou = _iou(alpha > 0.49, cov > 0.49)
        err = np.abs(alpha - cov).mean()
        assert iou > 0.98, (split, i, iou)
        assert err < 0.003, (split, i, err)
        # The check can tell a half-pixel error apart.
        shifted = _coverage(c2w, SIZE, fov, shift=(0.5, 0.5))
        assert np.abs(alpha - shifted).mean() > 2 * err + 0.005, (split, i)


def test_gt_mesh_vertices_project_into_the_silhouette(capture: Path):
    import trimesh

    mesh = trimesh.load(capture / "gt" / "mesh.ply", process=False)
    v = np.asarray(mesh.vertices, float)
    for split, i, c2w, rgba, fov in _frames(capture):
        f = 0.5 * SIZE / math.tan(0.5 * fov)
        pc = (v - c2w[:3, 3]) @ c2w[:3, :3]
        x = SIZE / 2 + f * pc[:, 0] / -pc[:, 2]
        y = SIZE / 2 - f * pc[:, 1] / -pc[:, 2]
        assert (pc[:, 2] < 0).all()
        # Nearest pixel: a vertex on the silhouette may sit on a pixel's edge, so allow the
        # 3 x 3 neighbourhood to carry the coverage.
        ui = np.clip(np.floor(x).astype(int), 0, SIZE - 1)
        vi = np.clip(np.floor(y).astype(int), 0, SIZE - 1)
        a = rgba[..., 3].astype(int)
        pad = np.pad(a, 1)
        neigh = np.max([pad[vi + dy, ui + dx] for dy in range(3) for dx in range(3)], axis=0)
        assert (neigh > 0).all(), (split, i, int((neigh == 0).sum()))
        assert (a[vi, ui] > 0).mean() > 0.95


def test_colours_are_unlit_baked_albedo(capture: Path):
    """With VTK lighting off the box top shows exactly albedo * (0.55 + 0.45 n.l)."""
    top = dc.baked_color(dc.ALBEDO["top"], (0.0, 0.0, 1.0)).astype(int)
    seen = 0
    for _split, _i, c2w, rgba, _fov in _frames(capture):
        if c2w[2, 3] / dc.CAMERA_DISTANCE < math.sin(math.radians(20)):
            continue  # the top face is small from low cameras
        opaque = rgba[..., 3] == 255
        exact = (np.abs(rgba[..., :3].astype(int) - top).max(axis=-1) <= 1) & opaque
        assert exact.sum() >= 15, exact.sum()
        seen += 1
    assert seen >= 2


def test_gt_mesh_is_the_closed_coloured_object(capture: Path):
    import trimesh

    mesh = trimesh.load(capture / "gt" / "mesh.ply", process=False)
    assert mesh.is_watertight and mesh.is_winding_consistent
    colors = np.asarray(mesh.visual.vertex_colors)
    assert colors.shape == (len(mesh.vertices), 4)
    assert len(np.unique(colors[:, :3], axis=0)) > 20
    np.testing.assert_allclose(mesh.bounds, [[-0.7, -0.5, -0.55], [0.7, 0.5, 0.55]], atol=1e-6)
    (wxa, wxb), (wya, wyb), (ha, hb) = dc.WEDGE_X, dc.WEDGE_Y, dc.WEDGE_HEIGHTS
    volume = (
        1.4 * 1.0 * 0.5
        + math.pi * dc.CYL_RADIUS**2 * dc.CYL_HEIGHT
        + (wxb - wxa) * (wyb - wya) * (ha + hb) / 2
    )
    assert mesh.volume == pytest.approx(volume, rel=2e-3)
    assert np.all(np.abs(mesh.vertices) <= 1.0)


def _segment_distance(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance from each point [P, 3] to the nearest segment (a, b) [S, 3] each."""
    out = np.empty(len(points))
    ab = b - a
    ab2 = np.maximum((ab * ab).sum(-1), 1e-300)
    for k in range(0, len(points), 256):
        p = points[k : k + 256, None, :]
        t = np.clip(((p - a) * ab).sum(-1) / ab2, 0.0, 1.0)
        q = a + t[..., None] * ab
        out[k : k + 256] = np.linalg.norm(p - q, axis=-1).min(axis=1)
    return out


def _sample_curve(curve: dict, n: int = 64) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)[:, None]
    if curve["type"] == "bezier":
        p0, p1, p2, p3 = np.array(curve["control_points"], float)
        return (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3
    pts = np.array(curve["points"], float)
    seg = np.linspace(0, len(pts) - 1, n)
    k = np.minimum(seg.astype(int), len(pts) - 2)
    w = (seg - k)[:, None]
    return (1 - w) * pts[k] + w * pts[k + 1]


def test_gt_curves_are_the_sharp_edges_of_the_mesh(capture: Path):
    import trimesh

    data = json.loads((capture / "gt" / "curves.json").read_text())
    curves = data["curves"]
    kinds = [c["type"] for c in curves]
    assert kinds.count("line") == 24 and kinds.count("bezier") == 8
    for c in curves:
        key = "control_points" if c["type"] == "bezier" else "points"
        pts = np.array(c[key])
        assert pts.ndim == 2 and pts.shape[1] == 3
        assert len(pts) == (4 if c["type"] == "bezier" else len(pts)) >= 2

    mesh = trimesh.load(capture / "gt" / "mesh.ply", process=False)
    sharp = mesh.face_adjacency_angles > math.radians(20)
    edges = mesh.face_adjacency_edges[sharp]
    a, b = mesh.vertices[edges[:, 0]], mesh.vertices[edges[:, 1]]
    samples = np.concatenate([_sample_curve(c) for c in curves])
    # On a sharp mesh edge, hence on the surface.
    d = _segment_distance(samples, a, b)
    assert d.max() < 1e-3, d.max()
    # And every sharp mesh edge is covered by some curve.
    dense = [_sample_curve(c, 400) for c in curves]
    ca = np.concatenate([p[:-1] for p in dense])
    cb = np.concatenate([p[1:] for p in dense])
    mids = 0.5 * (a + b)
    assert _segment_distance(mids, ca, cb).max() < 1e-3


def test_deterministic(capture: Path, tmp_path: Path):
    again = dc.make_demo_capture(
        tmp_path / "again",
        size=SIZE,
        n_train=COUNTS["train"],
        n_val=COUNTS["val"],
        n_test=COUNTS["test"],
    )
    assert (again / "train" / "r_1.png").read_bytes() == (
        capture / "train" / "r_1.png"
    ).read_bytes()
    assert (again / "gt" / "mesh.ply").read_bytes() == (capture / "gt" / "mesh.ply").read_bytes()
    a = json.loads((again / "transforms_train.json").read_text())["frames"][1]
    b = json.loads((capture / "transforms_train.json").read_text())["frames"][1]
    assert a == b
    other = dc.camera_positions(2, 0, 0, seed=1)["train"]
    assert not np.allclose(other, dc.camera_positions(2, 0, 0, seed=0)["train"])


def test_preview_png(capture: Path, tmp_path: Path):
    from render import preview

    out = tmp_path / "preview.png"
    code = preview.main(
        [
            str(capture / "gt" / "mesh.ply"),
            "--out",
            str(out),
            "--gt",
            str(capture / "gt" / "mesh.ply"),
            "--cameras",
            str(capture / "transforms_train.json"),
            "--size",
            "480",
            "240",
        ]
    )
    assert code == 0 and out.is_file()
    img = np.array(Image.open(out).convert("RGB")).astype(int)
    assert img.shape == (240, 480, 3)
    bg = np.array(Image.new("RGB", (1, 1), preview.BACKGROUND).getpixel((0, 0)))
    differs = np.abs(img - bg).max(axis=-1) > 30
    for half in (differs[:, :240], differs[:, 240:]):
        # The object in the middle of each panel, frustums around it.
        assert half[100:140, 100:140].mean() > 0.25
        assert 0.03 < half.mean() < 0.5
    # Without a ground truth: one panel, plain mesh still drawn.
    single = preview.render_mesh_preview(
        capture / "gt" / "mesh.ply", tmp_path / "one.png", size=(200, 200)
    )
    img = np.array(Image.open(single).convert("RGB")).astype(int)
    assert (np.abs(img - bg).max(axis=-1) > 30)[70:130, 70:130].mean() > 0.5


def test_preview_from_a_given_direction_plain(capture: Path, tmp_path: Path):
    from render import preview

    # From straight above with +Y up: the 1.4 x 1.0 box is wider than tall, lit plain.
    out = tmp_path / "top.png"
    code = preview.main([str(capture / "gt" / "mesh.ply"), "--out", str(out), "--size", "300",
                         "300", "--view", "0", "0", "1", "--up", "0", "1", "0", "--plain"])
    assert code == 0
    img = np.array(Image.open(out).convert("RGB")).astype(int)
    bg = np.array(Image.new("RGB", (1, 1), preview.BACKGROUND).getpixel((0, 0)))
    fg = np.abs(img - bg).max(axis=-1) > 30
    fg[:30] = False  # the title
    rows, cols = np.flatnonzero(fg.any(axis=1)), np.flatnonzero(fg.any(axis=0))
    aspect = (cols.max() - cols.min()) / (rows.max() - rows.min())
    assert 1.25 < aspect < 1.55, aspect
    r, g, b = img[fg].mean(axis=0)
    assert b > r + 15  # the plain (blue-grey) surface, not the checkered vertex colours


def test_preview_reports_a_missing_file(tmp_path: Path, capsys):
    from render import preview

    code = preview.main([str(tmp_path / "nope.ply"), "--out", str(tmp_path / "x.png")])
    assert code == 2
    assert "nope.ply" in capsys.readouterr().err
