"""Capture loaders (reconstruction/data): every format on small captures written here.

Each capture is ray-traced from a known truth (three coloured spheres seen by cameras on
a ring) and written in the format's own conventions
(OpenGL c2w for transforms files, OpenCV K[R|t] for IDR, world-to-camera quaternions for
COLMAP). The tests then check the loaded poses, intrinsics, split, masks and pixel values
against the truth, and that a known world point projected with the loaded cameras lands
on the pixel the test drew it on.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import PIL.Image
import PIL.ImageOps
import pytest
from scipy.spatial.transform import Rotation

from reconstruction.data import (
    OPENCV_TO_OPENGL,
    CaptureError,
    Problem,
    Scene,
    detect_format,
    load_capture,
)
from reconstruction.data.idr import decompose_projection
from reconstruction.data.images import read_image, read_mask
from reconstruction.data.loader import camera_bounds

REPO = Path(__file__).resolve().parents[1]
DTU = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "dtu_scan24"

# ------------------------------------------------------------------ the truth

SPHERES = [  # (centre [3], radius, RGB)
    (np.array([0.45, 0.15, 0.10]), 0.35, (230, 40, 30)),
    (np.array([-0.40, 0.35, -0.10]), 0.30, (40, 200, 60)),
    (np.array([0.05, -0.50, 0.25]), 0.30, (30, 60, 220)),
]
W, H = 32, 24
FX, FY, CX, CY = 28.0, 27.0, 16.5, 11.75


def look_at_gl(eye: np.ndarray, target=(0.0, 0.0, 0.0), up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """[4, 4] OpenGL camera-to-world (-Z forward, +Y up) looking from eye at target."""
    eye = np.asarray(eye, float)
    f = np.asarray(target, float) - eye
    f /= np.linalg.norm(f)
    right = np.cross(f, up)
    right /= np.linalg.norm(right)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, np.cross(right, f), -f, eye
    return m


def ring(n: int, dist: float = 4.0) -> np.ndarray:
    """[n, 4, 4] OpenGL c2w on a ring around the origin, alternating elevations."""
    out = []
    for i in range(n):
        az, el = 2 * math.pi * i / n + 0.3, math.radians(25 if i % 2 else 50)
        eye = dist * np.array(
            [math.cos(az) * math.cos(el), math.sin(az) * math.cos(el), math.sin(el)]
        )
        out.append(look_at_gl(eye))
    return np.stack(out)


def distort(x: np.ndarray, y: np.ndarray, d: np.ndarray):
    """OpenCV model (k1, k2, p1, p2[, k3]) on normalised coordinates x, y: [...] each."""
    k1, k2, p1, p2 = d[:4]
    k3 = d[4] if len(d) > 4 else 0.0
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    return (
        x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x),
        y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y,
    )


def undistort_normalised(xd: np.ndarray, yd: np.ndarray, d: np.ndarray):
    """Inverse of :func:`distort` by fixed-point iteration (independent of OpenCV)."""
    x, y = xd.copy(), yd.copy()
    for _ in range(200):
        fx, fy = distort(x, y, d)
        x, y = x - (fx - xd), y - (fy - yd)
    return x, y


def render(
    c2w: np.ndarray,  # [4, 4] OpenGL camera-to-world
    fx=FX,
    fy=FY,
    cx=CX,
    cy=CY,
    w=W,
    h=H,
    dist: np.ndarray | None = None,  # [4|5] OpenCV distortion of the camera, None: pinhole
) -> np.ndarray:
    """Ray-trace the truth: [h, w, 4] uint8 RGBA (alpha 255 on the spheres, else 0).

    Pixel (row i, col j) is sampled at its centre (j + 0.5, i + 0.5); cx, cy use that
    convention. The ray is built in OpenCV camera axes (x right, y down, z forward).
    """
    jj, ii = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    x, y = (jj - cx) / fx, (ii - cy) / fy
    if dist is not None:
        x, y = undistort_normalised(x, y, np.asarray(dist, float))
    d_cv = np.stack([x, y, np.ones_like(x)], -1)
    c2w_cv = c2w @ OPENCV_TO_OPENGL  # the definition of the two conventions
    d = d_cv @ c2w_cv[:3, :3].T
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    o = c2w_cv[:3, 3]
    best = np.full((h, w), np.inf)
    rgba = np.zeros((h, w, 4), np.uint8)
    for centre, r, col in SPHERES:
        oc = o - centre
        b = d @ oc
        disc = b * b - (oc @ oc - r * r)
        t = -b - np.sqrt(np.maximum(disc, 0))
        hit = (disc > 0) & (t > 0) & (t < best)
        best[hit] = t[hit]
        rgba[hit] = (*col, 255)
    return rgba


def on_white(rgba: np.ndarray, bg=(1.0, 1.0, 1.0)) -> np.ndarray:
    """rgba: [H, W, 4] with alpha 0/255 -> [H, W, 3] composited (exact for binary alpha)."""
    a = rgba[..., 3:4] > 0
    return np.where(a, rgba[..., :3], np.round(np.asarray(bg) * 255).astype(np.uint8))


def project_gl(c2w: np.ndarray, fx, fy, cx, cy, point: np.ndarray) -> np.ndarray:
    """Pixel (u, v) of a world point in an OpenGL camera (written independently of the loader).

    c2w: [4, 4]; point: [3]. Returns [2].
    """
    p = np.linalg.inv(c2w) @ np.append(point, 1.0)
    return np.array([fx * p[0] / -p[2] + cx, -fy * p[1] / -p[2] + cy])


def visible(eye: np.ndarray, k: int) -> bool:
    """True if no other sphere crosses the segment from the camera to sphere k's centre."""
    target = SPHERES[k][0]
    for j, (c, r, _) in enumerate(SPHERES):
        if j == k:
            continue
        seg = target - eye
        t = np.clip((c - eye) @ seg / (seg @ seg), 0, 1)
        if np.linalg.norm(eye + t * seg - c) < r + 0.02:
            return False
    return True


def check_projections(scene: Scene, tol: int = 0, min_checked: int = 4) -> int:
    """Every unoccluded sphere centre, projected with the loaded cameras, hits its colour."""
    cams, checked = scene.cameras, 0
    for n in range(len(scene)):
        for k, (centre, _, col) in enumerate(SPHERES):
            u, v = project_gl(cams.c2w[n], cams.fx[n], cams.fy[n], cams.cx[n], cams.cy[n], centre)
            if not (0 <= u < cams.width and 0 <= v < cams.height):
                continue
            if not visible(cams.centers[n], k):
                continue
            got = scene.images[n, int(v), int(u)].astype(int)
            assert np.abs(got - np.array(col)).max() <= tol, (scene.file_paths[n], k, got, col)
            checked += 1
    assert checked >= min_checked
    return checked


def save_png(path: Path, img: np.ndarray) -> None:
    """img: [H, W] or [H, W, 3|4] uint8, RGB(A) order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    PIL.Image.fromarray(img).save(path)


# ------------------------------------------------------------------ capture writers


def write_blender(root: Path, square: int | None = None) -> dict:
    """NeRF-synthetic: 10 RGBA frames (6 train, 2 val, 2 test), lego-like camera_angle_x."""
    angle_x = 0.6911112070083618
    w, h = (square, square) if square else (W, H)
    fx = 0.5 * w / math.tan(0.5 * angle_x)
    poses = ring(10, dist=4.0311)
    splits = {"train": range(0, 6), "val": range(6, 8), "test": range(8, 10)}
    truth = {"poses": poses, "fx": fx, "w": w, "h": h, "rgba": [], "names": []}
    for split, idx in splits.items():
        frames = []
        for n, i in enumerate(idx):
            rgba = render(poses[i], fx, fx, w / 2, h / 2, w, h)
            save_png(root / split / f"r_{n}.png", rgba)
            frames.append(
                {
                    "file_path": f"./{split}/r_{n}",
                    "rotation": 0.0125,
                    "transform_matrix": poses[i].tolist(),
                }
            )
            truth["rgba"].append(rgba)
            truth["names"].append(f"./{split}/r_{n}")
        (root / f"transforms_{split}.json").write_text(
            json.dumps({"camera_angle_x": angle_x, "frames": frames}, indent=2)
        )
    return truth


def write_transforms(
    root: Path, n: int = 10, nerfstudio: bool = False, dist: np.ndarray | None = None
) -> dict:
    """instant-ngp (or nerfstudio) transforms.json with RGB PNGs (no alpha)."""
    poses = ring(n)
    frames = []
    images = []
    for i in range(n):
        rgba = render(poses[i], dist=dist)
        images.append(rgba)
        name = f"images/frame_{i:03d}.png"
        save_png(root / name, rgba[..., :3])
        frames.append({"file_path": name, "transform_matrix": poses[i].tolist()})
    meta = {
        "fl_x": FX,
        "fl_y": FY,
        "cx": CX,
        "cy": CY,
        "w": W,
        "h": H,
        "aabb_scale": 4,
        "frames": frames,
    }
    if dist is not None:
        meta.update(dict(zip(("k1", "k2", "p1", "p2"), map(float, dist), strict=True)))
    if nerfstudio:
        meta["camera_model"] = "OPENCV" if dist is not None else "PINHOLE"
    (root / "transforms.json").write_text(json.dumps(meta, indent=2))
    return {"poses": poses, "rgba": images, "meta": meta}


def write_colmap_text(root: Path, n: int = 9) -> dict:
    """COLMAP text model: 3 cameras (PINHOLE, SIMPLE_RADIAL, OPENCV), n images, points."""
    poses = ring(n)
    cams = {
        1: ("PINHOLE", [FX, FY, CX, CY], None),
        2: ("SIMPLE_RADIAL", [FX, CX, CY, -0.12], np.array([-0.12, 0, 0, 0])),
        3: (
            "OPENCV",
            [FX, FY, CX, CY, -0.15, 0.03, 0.002, -0.001],
            np.array([-0.15, 0.03, 0.002, -0.001]),
        ),
    }
    model = root / "sparse" / "0"
    model.mkdir(parents=True)
    (model / "cameras.txt").write_text(
        "# Camera list\n"
        + "".join(
            f"{cid} {m} {W} {H} " + " ".join(repr(float(p)) for p in params) + "\n"
            for cid, (m, params, _) in cams.items()
        )
    )
    lines, truth = ["# Image list"], {"poses": {}, "rgba": {}, "cam": {}}
    for i in reversed(range(n)):  # written out of order: the loader sorts by name
        cid = 1 + i % 3
        w2c = np.linalg.inv(poses[i] @ OPENCV_TO_OPENGL)
        qx, qy, qz, qw = Rotation.from_matrix(w2c[:3, :3]).as_quat()
        name = f"img_{i:02d}.png"
        lines.append(
            f"{i + 1} {float(qw)!r} {float(qx)!r} {float(qy)!r} {float(qz)!r} "
            + " ".join(repr(float(t)) for t in w2c[:3, 3])
            + f" {cid} {name}"
        )
        lines.append("")
        rgba = render(poses[i], dist=cams[cid][2])
        save_png(root / "images" / name, rgba[..., :3])
        truth["poses"][name], truth["rgba"][name], truth["cam"][name] = poses[i], rgba, cid
    (model / "images.txt").write_text("\n".join(lines) + "\n")
    rng = np.random.default_rng(1)
    pts, cols = [], []
    for centre, r, col in SPHERES:
        v = rng.normal(size=(60, 3))
        pts.append(centre + r * v / np.linalg.norm(v, axis=1, keepdims=True))
        cols += [col] * 60
    pts = np.concatenate(pts)
    (model / "points3D.txt").write_text(
        "# 3D point list\n"
        + "".join(
            f"{k + 1} {float(p[0])!r} {float(p[1])!r} {float(p[2])!r} {c[0]} {c[1]} {c[2]} 0.5\n"
            for k, (p, c) in enumerate(zip(pts, cols, strict=True))
        )
    )
    truth["points"], truth["colors"], truth["cams"] = pts, np.array(cols, np.uint8), cams
    return truth


IDR_T = np.array([100.0, -50.0, 600.0])  # sphere centre in the IDR world (DTU-like, mm)
IDR_S = 200.0  # sphere radius in the IDR world


def write_idr(root: Path, n: int = 10, flip: tuple[int, ...] = (3,)) -> dict:
    """IDR/NeuS: world = IDR_S * unit + IDR_T; world_mat = K [R | t]; noisy 3-channel masks.

    world_mat of the cameras in ``flip`` is multiplied by -2.5 (same camera, negative scale).
    """
    poses_unit = ring(n)
    k_cv = np.array([[FX, 0, CX - 0.5], [0, FY, CY - 0.5], [0, 0, 1]])  # OpenCV pixel centres
    scale_mat = np.diag([IDR_S, IDR_S, IDR_S, 1.0])
    scale_mat[:3, 3] = IDR_T
    rng = np.random.default_rng(2)
    arrays, poses_world, rgbas = {}, [], []
    for i in range(n):
        c2w = poses_unit[i].copy()
        c2w[:3, 3] = IDR_S * c2w[:3, 3] + IDR_T
        poses_world.append(c2w)
        w2c_cv = np.linalg.inv(c2w @ OPENCV_TO_OPENGL)
        world_mat = np.eye(4)
        world_mat[:3, :4] = k_cv @ w2c_cv[:3, :4]
        if i in flip:
            world_mat = -2.5 * world_mat
        arrays[f"world_mat_{i}"] = world_mat
        arrays[f"scale_mat_{i}"] = scale_mat
        arrays[f"camera_mat_{i}"] = np.eye(4)
        arrays[f"world_mat_inv_{i}"] = np.linalg.inv(world_mat)
        rgba = render(poses_unit[i])
        rgbas.append(rgba)
        save_png(root / "image" / f"{i:06d}.png", on_white(rgba, (0, 0, 0)))
        obj = rgba[..., 3] > 0
        noise = np.where(obj, rng.integers(140, 256, obj.shape), rng.integers(0, 110, obj.shape))
        save_png(root / "mask" / f"{i:03d}.png", np.repeat(noise[..., None], 3, 2).astype(np.uint8))
    np.savez(root / "cameras_sphere.npz", **arrays)
    return {"poses": np.stack(poses_world), "rgba": rgbas}


# ------------------------------------------------------------------ nerf-synthetic


def test_blender_poses_intrinsics_split_masks_and_pixels(tmp_path):
    truth = write_blender(tmp_path)
    assert detect_format(tmp_path) == "nerf-synthetic"
    assert detect_format(tmp_path / "transforms_val.json") == "nerf-synthetic"
    scene = load_capture(tmp_path)
    assert scene.format == "nerf-synthetic" and len(scene) == 10 and not scene.problems
    assert scene.file_paths == truth["names"]
    assert scene.names[0] == "r_0"
    assert [scene.split[s].tolist() for s in ("train", "val", "test")] == [
        list(range(6)),
        [6, 7],
        [8, 9],
    ]
    np.testing.assert_allclose(scene.cameras.c2w, truth["poses"], atol=1e-12)
    np.testing.assert_allclose(scene.cameras.fx, truth["fx"])
    np.testing.assert_allclose(scene.cameras.fy, truth["fx"])
    np.testing.assert_allclose(scene.cameras.cx, W / 2)
    np.testing.assert_allclose(scene.cameras.cy, H / 2)
    assert scene.images.shape == (10, H, W, 3) and scene.images.dtype == np.uint8
    for n, rgba in enumerate(truth["rgba"]):
        np.testing.assert_array_equal(scene.images[n], on_white(rgba))
        np.testing.assert_array_equal(scene.masks[n], rgba[..., 3])
    check_projections(scene)
    np.testing.assert_allclose(scene.background, [1, 1, 1])
    assert scene.alpha_composited


def test_blender_black_background_and_downscale(tmp_path):
    truth = write_blender(tmp_path)
    scene = load_capture(tmp_path, downscale=2, background=(0.0, 0.0, 0.0))
    assert scene.images.shape == (10, H // 2, W // 2, 3)
    assert (scene.cameras.width, scene.cameras.height) == (W // 2, H // 2)
    np.testing.assert_allclose(scene.cameras.fx, truth["fx"] / 2)
    np.testing.assert_allclose(scene.cameras.cx, W / 4)
    for n, rgba in enumerate(truth["rgba"]):
        full = on_white(rgba, (0, 0, 0))
        expect = cv2.resize(full, (W // 2, H // 2), interpolation=cv2.INTER_AREA)
        np.testing.assert_array_equal(scene.images[n], expect)
        np.testing.assert_array_equal(
            scene.masks[n], cv2.resize(rgba[..., 3], (W // 2, H // 2), interpolation=cv2.INTER_AREA)
        )
    # Projections at half resolution are the full-resolution ones halved.
    full = load_capture(tmp_path)
    centres = np.stack([c for c, _, _ in SPHERES])
    np.testing.assert_allclose(
        scene.cameras.project(centres)[0], full.cameras.project(centres)[0] / 2, atol=1e-9
    )


def test_blender_lego_like_bounds(tmp_path):
    """Cameras at distance ~4.03 with camera_angle_x 0.69: bounds ~[-1.45, 1.45]^3."""
    write_blender(tmp_path, square=16)
    scene = load_capture(tmp_path)
    lo, hi = scene.bounds
    np.testing.assert_allclose((lo + hi) / 2, 0, atol=1e-9)
    np.testing.assert_allclose((hi - lo) / 2, 4.0311 * math.tan(0.6911112070083618 / 2), rtol=1e-6)
    assert abs((hi - lo)[0] / 2 - 1.45) < 0.01
    norm = scene.normalization
    np.testing.assert_allclose(norm.to_unit(np.zeros(3)), 0.5)
    assert np.all(norm.to_unit(hi) <= 1) and np.all(norm.to_unit(lo) >= 0)


# ------------------------------------------------------------------ instant-ngp


def test_instant_ngp_split_bounds_and_per_frame_intrinsics(tmp_path):
    truth = write_transforms(tmp_path, n=10)
    meta = truth["meta"]
    # Per-frame intrinsics win over global ones: frame 5 has its own principal point.
    meta["frames"][5]["cx"] = CX + 2
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    shifted = render(truth["poses"][5], cx=CX + 2)
    save_png(tmp_path / "images/frame_005.png", shifted[..., :3])
    assert detect_format(tmp_path) == "instant-ngp"
    assert detect_format(tmp_path / "transforms.json") == "instant-ngp"
    scene = load_capture(tmp_path / "transforms.json")
    assert scene.format == "instant-ngp" and len(scene) == 10
    assert scene.split["test"].tolist() == [0, 8]
    assert scene.split["train"].tolist() == [1, 2, 3, 4, 5, 6, 7, 9]
    assert scene.split["val"].size == 0
    np.testing.assert_allclose(scene.cameras.c2w, truth["poses"], atol=1e-12)
    assert scene.cameras.cx[5] == CX + 2 and scene.cameras.cx[4] == CX
    np.testing.assert_allclose(scene.cameras.fy, FY)
    for n, rgba in enumerate(truth["rgba"]):
        expect = shifted if n == 5 else rgba
        np.testing.assert_array_equal(scene.images[n], expect[..., :3])
    assert scene.masks is None  # RGB images, no mask files
    check_projections(scene)
    # Bounds from the cameras: they all look at the origin from distance 4.
    lo, hi = scene.bounds
    np.testing.assert_allclose((lo + hi) / 2, 0, atol=1e-6)
    half = 4.0 * min(W / 2 / FX, H / 2 / FY)  # median distance * tan(smallest half FOV)
    np.testing.assert_allclose((hi - lo) / 2, half, rtol=1e-9)


def ramp(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Normalised camera coordinates x, y: [H, W] -> [H, W, 3] uint8 linear colour ramp."""
    rgb = np.stack([128 + 150 * x, 128 + 150 * y, np.full_like(x, 60.0)], -1)
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("downscale", [1, 2])
def test_instant_ngp_undistorts_images(tmp_path, downscale):
    """Each distorted pixel shows a colour ramp of its undistorted ray; after loading, each
    pixel must show the ramp of its pinhole ray (same K)."""
    dist = np.array([-0.25, 0.06, 0.003, -0.002])
    truth = write_transforms(tmp_path, n=2, dist=dist)
    jj, ii = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    distorted = ramp(*undistort_normalised((jj - CX) / FX, (ii - CY) / FY, dist))
    for i in range(2):
        save_png(tmp_path / f"images/frame_{i:03d}.png", distorted)
    scene = load_capture(tmp_path, downscale=downscale)
    assert scene.camera_model == "OPENCV"
    np.testing.assert_allclose(scene.cameras.c2w, truth["poses"], atol=1e-12)
    np.testing.assert_allclose(scene.cameras.fx, FX / downscale)
    w, h = W // downscale, H // downscale
    # Full-resolution coordinates of the loaded pixel centres.
    ju, iu = np.meshgrid((np.arange(w) + 0.5) * downscale, (np.arange(h) + 0.5) * downscale)
    x, y = (ju - CX) / FX, (iu - CY) / FY
    pinhole = ramp(x, y).astype(int)
    xd, yd = distort(x, y, dist)  # where each loaded pixel samples the file
    ud, vd = xd * FX + CX, yd * FY + CY
    inside = (ud > 1.5) & (ud < W - 1.5) & (vd > 1.5) & (vd < H - 1.5)
    assert inside.mean() > 0.6
    err = np.abs(scene.images[0].astype(int) - pinhole)[inside]
    assert err.max() <= 2 + (downscale > 1), err.max()
    raw = resize_area_ref(distorted, (w, h)).astype(int)
    assert np.abs(raw - pinhole)[inside].max() > 8  # the distortion is visible before loading


def resize_area_ref(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """img: [H, W, C] -> size (w, h), cv2.INTER_AREA."""
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


# ------------------------------------------------------------------ nerfstudio


def test_nerfstudio_masks_split_lists_aabb(tmp_path):
    truth = write_transforms(tmp_path, n=6, nerfstudio=True)
    meta = truth["meta"]
    for i, fr in enumerate(meta["frames"]):
        fr["mask_path"] = f"masks/mask_{i:03d}.png"
        save_png(tmp_path / fr["mask_path"], truth["rgba"][i][..., 3])
    meta["frames"] = meta["frames"][::-1]  # nerfstudio sorts frames by file path
    meta["train_filenames"] = [f"images/frame_{i:03d}.png" for i in (0, 1, 2, 4)]
    meta["val_filenames"] = ["./images/frame_003.png"]
    meta["test_filenames"] = ["images/frame_005.png"]
    meta["applied_transform"] = [[1, 0, 0, 0], [0, 0, 1, 0], [0, -1, 0, 0]]
    meta["aabb"] = [[-1, -2, -0.5], [1, 2, 0.5]]
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    assert detect_format(tmp_path) == "nerfstudio"
    scene = load_capture(tmp_path)
    assert scene.format == "nerfstudio" and scene.camera_model == "PINHOLE"
    assert scene.file_paths == [f"images/frame_{i:03d}.png" for i in range(6)]
    assert scene.split["train"].tolist() == [0, 1, 2, 4]
    assert scene.split["val"].tolist() == [3] and scene.split["test"].tolist() == [5]
    np.testing.assert_allclose(scene.cameras.c2w, truth["poses"], atol=1e-12)
    for n in range(6):
        np.testing.assert_array_equal(scene.masks[n], truth["rgba"][n][..., 3])
    assert not scene.alpha_composited  # masks from mask files, images had no alpha
    np.testing.assert_allclose(scene.bounds[0], [-1, -2, -0.5])
    np.testing.assert_allclose(scene.bounds[1], [1, 2, 0.5])
    assert scene.normalization.center == (0.0, 0.0, 0.0)
    check_projections(scene)


# ------------------------------------------------------------------ IDR


def test_decompose_projection_signs():
    rng = np.random.default_rng(3)
    r = Rotation.random(random_state=4).as_matrix()
    c = rng.normal(size=3) * 10
    k = np.array([[800.0, 0.0, 320.0], [0.0, 790.0, 240.0], [0.0, 0.0, 1.0]])
    p = k @ np.hstack([r, (-r @ c)[:, None]])
    for scale in (1.0, -3.0, 0.01):
        k2, c2w = decompose_projection(scale * p)
        np.testing.assert_allclose(k2, k, atol=1e-6)
        np.testing.assert_allclose(c2w[:3, :3], r.T, atol=1e-9)
        np.testing.assert_allclose(c2w[:3, 3], c, atol=1e-8)


def test_idr_world_frame_bounds_masks(tmp_path):
    truth = write_idr(tmp_path)
    assert detect_format(tmp_path) == "idr"
    scene = load_capture(tmp_path)
    assert scene.format == "idr" and len(scene) == 10 and not scene.problems
    assert scene.split["test"].tolist() == [0, 8]
    # Poses stay in world_mat's frame (not the unit sphere of world_mat @ scale_mat).
    np.testing.assert_allclose(scene.cameras.c2w, truth["poses"], atol=1e-6)
    np.testing.assert_allclose(scene.cameras.fx, FX, rtol=1e-9)
    np.testing.assert_allclose(scene.cameras.cx, CX, atol=1e-6)
    np.testing.assert_allclose(scene.cameras.cy, CY, atol=1e-6)
    np.testing.assert_allclose(scene.bounds[0], IDR_T - IDR_S)
    np.testing.assert_allclose(scene.bounds[1], IDR_T + IDR_S)
    np.testing.assert_allclose(scene.normalization.to_world(np.full(3, 0.5)), IDR_T)
    for n, rgba in enumerate(truth["rgba"]):
        np.testing.assert_array_equal(scene.masks[n], rgba[..., 3])  # thresholded at 127
        np.testing.assert_array_equal(scene.images[n], on_white(rgba, (0, 0, 0)))
    # A sphere centre in IDR world coordinates projects onto its colour.
    for n in range(len(scene)):
        for centre, _, col in SPHERES[:1]:
            u, v = project_gl(scene.cameras.c2w[n], FX, FY, CX, CY, IDR_S * centre + IDR_T)
            if 0 <= u < W and 0 <= v < H and visible(truth["poses"][n][:3, 3], 0):
                assert tuple(scene.images[n, int(v), int(u)]) == col


def test_idr_missing_mask_is_skipped(tmp_path):
    write_idr(tmp_path, n=6)
    (tmp_path / "mask" / "002.png").unlink()
    scene = load_capture(tmp_path, downscale=2)
    assert len(scene) == 5 and scene.masks.shape == (5, H // 2, W // 2)
    assert len(scene.problems) == 1 and "002.png" in scene.problems[0].path
    assert "mask" in scene.problems[0].problem


@pytest.mark.skipif(not DTU.is_dir(), reason=f"DTU scan24 not found at {DTU}")
def test_dtu_scan24():
    scene = load_capture(DTU, downscale=4)
    assert scene.format == "idr" and len(scene) == 49 and not scene.problems
    assert scene.images.shape == (49, 300, 400, 3) and scene.masks.shape == (49, 300, 400)
    centre = scene.normalization.to_world(np.full(3, 0.5))
    with np.load(DTU / "cameras_sphere.npz") as npz:
        np.testing.assert_allclose(centre, npz["scale_mat_0"][:3, 3], atol=1e-6)
        world_mats = np.stack([npz[f"world_mat_{i}"] for i in range(49)])
    uv, depth = scene.cameras.project(centre[None])
    uv, depth = uv[:, 0], depth[:, 0]
    assert np.all(depth > 0)
    # Same pixel as world_mat (OpenCV, integer pixel centres) at a quarter of the size.
    q = world_mats[:, :3] @ np.append(centre, 1.0)
    np.testing.assert_allclose(uv, (q[:, :2] / q[:, 2:] + 0.5) / 4, atol=1e-3)
    cols, rows = uv[:, 0].astype(int), uv[:, 1].astype(int)
    assert np.all(scene.masks[np.arange(49), rows, cols] > 127)
    lo, hi = scene.bounds
    inside = np.all((scene.cameras.centers > lo) & (scene.cameras.centers < hi), axis=1)
    assert not inside.any()
    # OpenGL: the optical axis (-Z) points from each camera towards the object.
    to_obj = centre - scene.cameras.centers
    assert np.all(np.einsum("ni,ni->n", -scene.cameras.c2w[:, :3, 2], to_obj) > 0)


# ------------------------------------------------------------------ COLMAP


@pytest.mark.parametrize("binary", [False, True])
def test_colmap_text_and_binary(tmp_path, binary):
    truth = write_colmap_text(tmp_path)
    if binary:
        import pycolmap  # safe: Pillow and OpenCV were imported first (by this module)

        model = tmp_path / "sparse" / "0"
        rec = pycolmap.Reconstruction(str(model))
        for f in model.iterdir():
            f.unlink()
        rec.write_binary(str(model))
        assert (model / "cameras.bin").is_file() and not (model / "cameras.txt").exists()
    assert detect_format(tmp_path) == "colmap"
    assert detect_format(tmp_path / "sparse" / "0") == "colmap"
    scene = load_capture(tmp_path / "sparse" / "0" if binary else tmp_path)
    assert scene.root == tmp_path
    names = [f"img_{i:02d}.png" for i in range(9)]
    assert scene.format == "colmap" and scene.file_paths == names and not scene.problems
    assert scene.camera_model == "OPENCV+PINHOLE+SIMPLE_RADIAL"
    assert scene.split["test"].tolist() == [0, 8] and scene.split["val"].size == 0
    for n, name in enumerate(names):
        np.testing.assert_allclose(scene.cameras.c2w[n], truth["poses"][name], atol=1e-6)
        if truth["cam"][name] == 1:  # pinhole: exactly the truth image
            np.testing.assert_array_equal(scene.images[n], truth["rgba"][name][..., :3])
    np.testing.assert_allclose(scene.cameras.fx, FX)
    np.testing.assert_allclose(scene.cameras.cx, CX)
    np.testing.assert_allclose(scene.cameras.fy[1::3], FX)  # SIMPLE_RADIAL: one focal
    check_projections(scene, tol=12)
    order = np.lexsort(scene.points.T[::-1])
    expect = np.lexsort(truth["points"].T[::-1])
    np.testing.assert_allclose(scene.points[order], truth["points"][expect], atol=1e-9)
    np.testing.assert_array_equal(scene.point_colors[order], truth["colors"][expect])
    lo, hi = np.percentile(truth["points"], 2, 0), np.percentile(truth["points"], 98, 0)
    np.testing.assert_allclose(scene.bounds[0], lo - 0.1 * (hi - lo))
    np.testing.assert_allclose(scene.bounds[1], hi + 0.1 * (hi - lo))


def test_colmap_import_order_regression(tmp_path):
    """pycolmap 4.2.1 imported before Pillow/OpenCV crashed the next Pillow resize/save.

    In a fresh process: import reconstruction.data.colmap (which must load Pillow and
    OpenCV first and pycolmap lazily), read a COLMAP model, then resize + save with Pillow.
    """
    write_colmap_text(tmp_path, n=3)
    code = textwrap.dedent(f"""
        import sys
        import reconstruction.data.colmap
        assert "pycolmap" not in sys.modules, "pycolmap must be imported lazily"
        from reconstruction.data import load_capture
        scene = load_capture({str(tmp_path)!r})
        assert "pycolmap" in sys.modules and len(scene) == 3
        import PIL.Image
        im = PIL.Image.fromarray(scene.images[0]).resize((320, 240), PIL.Image.BILINEAR)
        im.save({str(tmp_path / "after.png")!r})
        print("ok")
    """)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, timeout=60, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("ok")
    assert PIL.Image.open(tmp_path / "after.png").size == (320, 240)


# ------------------------------------------------------------------ image reading


def test_read_image_depths_channels_and_exif(tmp_path):
    rng = np.random.default_rng(5)
    rgb16 = rng.integers(0, 65536, (6, 8, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "rgb16.png"), rgb16[..., ::-1])  # OpenCV writes BGR
    got = read_image(tmp_path / "rgb16.png")
    np.testing.assert_array_equal(got, np.round(rgb16 / 257.0).astype(np.uint8))
    gray = rng.integers(0, 256, (6, 8), dtype=np.uint8)
    save_png(tmp_path / "gray.png", gray)
    np.testing.assert_array_equal(
        read_image(tmp_path / "gray.png"), np.repeat(gray[..., None], 3, 2)
    )
    la = np.stack([gray, 255 - gray], -1)
    PIL.Image.fromarray(la, "LA").save(tmp_path / "la.png")
    got = read_image(tmp_path / "la.png")
    assert got.shape == (6, 8, 4)
    np.testing.assert_array_equal(got[..., 0], gray)
    np.testing.assert_array_equal(got[..., 3], 255 - gray)
    np.testing.assert_array_equal(
        read_mask(tmp_path / "gray.png", 127), np.where(gray > 127, 255, 0)
    )
    img = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    for orientation in (3, 6, 7, 8):
        pil = PIL.Image.fromarray(img)
        exif = pil.getexif()
        exif[0x0112] = orientation
        path = tmp_path / f"exif{orientation}.png"
        pil.save(path, exif=exif.tobytes())
        expect = np.asarray(PIL.ImageOps.exif_transpose(PIL.Image.open(path)))
        np.testing.assert_array_equal(read_image(path), expect)


# ------------------------------------------------------------------ bad input


def test_missing_empty_and_unknown_folders(tmp_path):
    with pytest.raises(CaptureError) as err:
        load_capture(tmp_path / "nope")
    assert "nope" in str(err.value) and "does not exist" in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CaptureError) as err:
        detect_format(tmp_path / "empty")
    assert "empty" in err.value.problem and "supported" in err.value.fix
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("hello")
    with pytest.raises(CaptureError) as err:
        load_capture(tmp_path / "junk")
    assert "notes.txt" in str(err.value) and "COLMAP" in str(err.value)
    assert "\n" not in str(err.value)
    (tmp_path / "photos").mkdir()
    save_png(tmp_path / "photos" / "a.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(CaptureError, match="no camera poses"):
        load_capture(tmp_path / "photos")


def test_broken_json_names_file_and_line(tmp_path):
    write_transforms(tmp_path, n=3)
    text = (tmp_path / "transforms.json").read_text().splitlines()
    text[4] = text[4].rstrip(",")  # drop a comma on line 5
    (tmp_path / "transforms.json").write_text("\n".join(text))
    with pytest.raises(CaptureError) as err:
        load_capture(tmp_path)
    assert err.value.path.endswith("transforms.json")
    assert "line 6" in err.value.problem or "line 5" in err.value.problem
    blender = tmp_path / "blender"
    write_blender(blender)
    (blender / "transforms_test.json").write_text('{"camera_angle_x": 0.7, "frames": [}')
    with pytest.raises(CaptureError) as err:
        load_capture(blender)
    assert err.value.path.endswith("transforms_test.json") and "line 1" in err.value.problem


def test_every_pose_nan_is_fatal(tmp_path):
    truth = write_transforms(tmp_path, n=3)
    for fr in truth["meta"]["frames"]:
        fr["transform_matrix"][0][3] = float("nan")
    (tmp_path / "transforms.json").write_text(json.dumps(truth["meta"]))  # writes NaN literal
    with pytest.raises(CaptureError) as err:
        load_capture(tmp_path)
    assert err.value.path.endswith("transforms.json") and "NaN" in err.value.problem


def test_bad_images_are_skipped_and_listed(tmp_path):
    truth = write_transforms(tmp_path, n=9)
    meta = truth["meta"]
    (tmp_path / "images/frame_001.png").write_bytes(b"this is not a png")  # corrupt
    meta["frames"][2]["transform_matrix"][1][1] = float("inf")  # bad pose
    (tmp_path / "images/frame_003.png").unlink()  # missing
    save_png(tmp_path / "images/frame_004.png", np.zeros((20, 30, 3), np.uint8))  # wrong size
    data = (tmp_path / "images/frame_005.png").read_bytes()
    (tmp_path / "images/frame_005.png").write_bytes(data[: len(data) // 2])  # truncated
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    scene = load_capture(tmp_path)
    kept = [0, 6, 7, 8]
    assert len(scene) == 4 and scene.images.shape == (4, H, W, 3)
    assert scene.file_paths == [f"images/frame_{i:03d}.png" for i in kept]
    for n, i in enumerate(kept):
        np.testing.assert_array_equal(scene.images[n], truth["rgba"][i][..., :3])
        np.testing.assert_allclose(scene.cameras.c2w[n], truth["poses"][i])
    # The split follows the capture's order, so skipping images does not reshuffle it.
    assert scene.split["test"].tolist() == [0, 3] and scene.split["train"].tolist() == [1, 2]
    assert all(isinstance(p, Problem) for p in scene.problems)
    by_file = {Path(p.path).name: p for p in scene.problems}
    assert set(by_file) == {f"frame_{i:03d}.png" for i in (1, 2, 3, 4, 5)}
    assert "NaN or infinite" in by_file["frame_002.png"].problem
    assert "not found" in by_file["frame_003.png"].problem
    assert (
        "30x20" in by_file["frame_004.png"].problem and "32x24" in by_file["frame_004.png"].problem
    )
    assert all(p.fix for p in scene.problems)
    assert len(scene.summary()["problems"]) == 5


def test_odd_size_without_camera_size_and_nothing_usable(tmp_path):
    write_blender(tmp_path)
    save_png(tmp_path / "train" / "r_2.png", np.zeros((10, 12, 4), np.uint8))
    scene = load_capture(tmp_path)
    assert len(scene) == 9 and "other images" in scene.problems[0].problem
    assert scene.split["train"].size == 5
    for f in tmp_path.glob("*/*.png"):
        f.write_bytes(b"garbage")
    with pytest.raises(CaptureError) as err:
        load_capture(tmp_path)
    assert (
        err.value.path.endswith("transforms_train.json") and "no usable image" in err.value.problem
    )


def test_camera_bounds_fallback_for_parallel_axes():
    from reconstruction.data.scene import Cameras

    c2w = np.repeat(np.eye(4)[None], 3, 0)
    c2w[:, 0, 3] = [0.0, 1.0, 2.0]  # three cameras side by side, looking down -Z
    cams = Cameras(c2w, np.full(3, FX), np.full(3, FY), np.full(3, CX), np.full(3, CY), W, H)
    lo, hi = camera_bounds(cams)
    assert np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(hi > lo)
    np.testing.assert_allclose((lo + hi) / 2, [1.0, 0.0, 0.0])
