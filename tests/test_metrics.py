"""Mesh scores (Chamfer, F-score) and silhouettes against masks."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from reconstruction.data.scene import Cameras
from reconstruction.extract.metrics import (
    mask_iou,
    mesh_scores,
    point_triangle_distance,
    silhouette,
)


def _plate(size: float = 1.0, subdivisions: int = 8) -> trimesh.Trimesh:
    """A flat square in the z = 0 plane, centred at the origin, split into triangles."""
    t = np.linspace(-size / 2, size / 2, subdivisions + 1)
    x, y = np.meshgrid(t, t, indexing="ij")
    verts = np.stack([x.ravel(), y.ravel(), np.zeros(x.size)], axis=1)
    idx = np.arange(x.size).reshape(x.shape)
    a, b = idx[:-1, :-1].ravel(), idx[1:, :-1].ravel()
    c, d = idx[1:, 1:].ravel(), idx[:-1, 1:].ravel()
    faces = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])
    return trimesh.Trimesh(verts, faces, process=False)


def test_point_triangle_distance_matches_a_dense_search():
    rng = np.random.default_rng(3)
    tris = rng.normal(size=(40, 3, 3))
    tris[0] = [[0, 0, 0], [1, 0, 0], [2, 0, 0]]  # degenerate: a segment
    points = rng.normal(size=(40, 3)) * 1.5
    got = point_triangle_distance(points, tris[:, 0], tris[:, 1], tris[:, 2])
    # Reference: the nearest of a fine barycentric grid on each triangle.
    s, t = np.meshgrid(np.linspace(0, 1, 201), np.linspace(0, 1, 201), indexing="ij")
    keep = s + t <= 1
    s, t = s[keep], t[keep]
    for i in range(len(points)):
        a, b, c = tris[i]
        grid = a + np.outer(s, b - a) + np.outer(t, c - a)
        ref = np.linalg.norm(grid - points[i], axis=1).min()
        edge = max(np.linalg.norm(b - a), np.linalg.norm(c - a)) / 200
        assert ref - edge <= got[i] <= ref + 1e-12, (i, got[i], ref)


def test_identical_meshes_score_zero_and_full_fscore():
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=0.8)
    s = mesh_scores(mesh, mesh.copy(), n=20_000)
    assert s["chamfer_rel"] < 1e-5  # points near an edge may be measured to the next face
    assert s["fscore"] == 1.0 and s["precision"] == 1.0 and s["recall"] == 1.0
    assert s["bbox_diagonal"] == pytest.approx(float(np.linalg.norm(mesh.extents)))
    assert s["tau"] == pytest.approx(0.01 * s["bbox_diagonal"])


def test_distances_are_to_the_surface_not_to_samples():
    # A box and the same box triangulated differently: no sampling floor in the distances.
    box = trimesh.creation.box(extents=(1.4, 1.0, 0.5))
    fine = box.subdivide().subdivide()
    s = mesh_scores(fine, box, n=20_000)
    assert s["chamfer_rel"] < 1e-6 and s["fscore"] == 1.0


def test_shift_by_twice_tau_scores_zero_and_by_half_tau_is_measured_exactly():
    plate = _plate()
    tau = 0.01 * float(np.linalg.norm(plate.extents))
    far = plate.copy()
    far.apply_translation([0, 0, 2 * tau])
    s = mesh_scores(far, plate, n=20_000)
    assert s["tau"] == pytest.approx(tau)
    assert s["fscore"] == 0.0 and s["precision"] == 0.0 and s["recall"] == 0.0
    assert s["accuracy"] == pytest.approx(2 * tau) and s["completeness"] == pytest.approx(2 * tau)
    # Far away (measured against coarser samples): still the right distance.
    farther = plate.copy()
    farther.apply_translation([0, 0, 20 * tau])
    s = mesh_scores(farther, plate, n=20_000)
    assert s["chamfer"] == pytest.approx(20 * tau, rel=1e-3)
    near = plate.copy()
    near.apply_translation([0, 0, 0.5 * tau])
    s = mesh_scores(near, plate, n=20_000)
    assert s["fscore"] == 1.0
    assert s["chamfer"] == pytest.approx(0.5 * tau, rel=1e-4)


def test_partial_reconstruction_lowers_completeness_not_accuracy():
    plate = _plate(subdivisions=8)
    half = trimesh.Trimesh(plate.vertices, plate.faces[plate.triangles_center[:, 0] < 0],
                           process=False)
    s = mesh_scores(half, plate, n=40_000)
    assert s["accuracy"] < 1e-6 and s["precision"] == 1.0
    assert 0.45 < s["recall"] < 0.55 and s["completeness"] > 0.1


def test_empty_reconstruction_scores_infinite_distance():
    empty = trimesh.Trimesh(np.zeros((0, 3)), np.zeros((0, 3), np.int64), process=False)
    s = mesh_scores(empty, _plate())
    assert s["chamfer"] == float("inf") and s["fscore"] == 0.0


def _camera(size: int = 10, focal: float = 10.0) -> Cameras:
    """One camera at the origin looking down -Z (OpenGL), principal point at the centre."""
    one = np.ones(1)
    return Cameras(np.eye(4)[None], focal * one, focal * one, size / 2 * one, size / 2 * one,
                   size, size)


def test_silhouette_pixel_conventions():
    # A square at depth 1 covering u in [2, 6], v in [3, 7] (pixel edges): exactly columns
    # 2..5 and rows 3..6. +Y up in the camera is up in the image (smaller v).
    cams = _camera()
    x0, x1 = (2 - 5) / 10, (6 - 5) / 10
    y_top, y_bottom = (5 - 3) / 10, (5 - 7) / 10
    verts = np.array([[x0, y_top, -1], [x1, y_top, -1], [x1, y_bottom, -1], [x0, y_bottom, -1]])
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    mask = silhouette(verts, faces, cams, 0)
    want = np.zeros((10, 10), bool)
    want[3:7, 2:6] = True
    assert mask.shape == (10, 10) and mask.dtype == bool
    np.testing.assert_array_equal(mask, want)
    # A pixel is inside when the mesh covers at least half of it.
    for right, last_col in ((6.3, 5), (6.7, 6)):  # (OpenCV widens by <= 1/8 px)
        wide = verts.copy()
        wide[[1, 2], 0] = (right - 5) / 10
        cols = np.flatnonzero(silhouette(wide, faces, cams, 0).any(axis=0))
        assert cols.min() == 2 and cols.max() == last_col, (right, cols)
    # Behind the camera: nothing.
    behind = verts * np.array([1, 1, -1])
    assert not silhouette(behind, faces, cams, 0).any()


def test_mask_iou():
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    assert mask_iou(a, b) == 1.0
    a[:2] = True
    b[1:3] = True
    assert mask_iou(a, b) == pytest.approx(1 / 3)
    assert mask_iou(a, a) == 1.0


@pytest.fixture(scope="module")
def demo_scene(tmp_path_factory):
    from reconstruction.data import load_capture
    from render.demo_capture import make_demo_capture

    out = make_demo_capture(tmp_path_factory.mktemp("demo") / "capture", size=64, n_train=8,
                            n_val=1, n_test=1)
    return out, load_capture(out)


def test_ground_truth_mesh_silhouettes_match_the_demo_masks(demo_scene):
    """The projection conventions: the GT mesh reprojects onto the rendered alpha."""
    out, scene = demo_scene
    gt = trimesh.load(out / "gt" / "mesh.ply", process=False)
    assert scene.masks is not None
    ious = []
    for i in range(len(scene)):
        pred = silhouette(gt.vertices, gt.faces, scene.cameras, i)
        ious.append(mask_iou(pred, scene.masks[i] > 127))
    assert min(ious) >= 0.97, ious
