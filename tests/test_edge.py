"""Edge maps, curve fitting, curve files and the edge method end to end."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from reconstruction.data.edges import load_edge_maps, soft_edges
from reconstruction.extract.curves import (
    CurveFitConfig,
    bezier_points,
    curve_scores,
    fit_bezier,
    fit_curves,
    read_curves,
    read_curves_dxf,
    sample_curves,
    write_curves_dxf,
    write_curves_obj,
    write_curves_ply,
)


def _box_and_circle() -> list[dict]:
    """12 box edges (lines) and a circle of 4 cubic Beziers on the box top."""
    c = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], float) * 0.6
    up = np.array([0, 0, 0.4])
    curves = []
    for i in range(4):
        j = (i + 1) % 4
        curves += [{"type": "line", "points": [c[i].tolist(), c[j].tolist()]},
                   {"type": "line", "points": [c[i].tolist(), (c[i] + up).tolist()]},
                   {"type": "line", "points": [(c[i] + up).tolist(), (c[j] + up).tolist()]}]
    k, r, ctr = 0.5523 * 0.15, 0.15, np.array([0.3, 0.3, 0.4])
    for q in range(4):
        a, b = q * np.pi / 2, (q + 1) * np.pi / 2
        p0 = ctr + r * np.array([np.cos(a), np.sin(a), 0])
        p3 = ctr + r * np.array([np.cos(b), np.sin(b), 0])
        t0, t3 = np.array([-np.sin(a), np.cos(a), 0]), np.array([-np.sin(b), np.cos(b), 0])
        curves.append({"type": "bezier", "control_points": [p0.tolist(), (p0 + k * t0).tolist(),
                                                            (p3 - k * t3).tolist(), p3.tolist()]})
    return curves


def test_curve_fitting_recovers_lines_and_beziers_from_noisy_points():
    gt = _box_and_circle()
    rng = np.random.default_rng(1)
    pts = sample_curves(gt, 0.003)
    pts = rng.permutation(pts + rng.normal(0, 0.002, pts.shape))
    curves = fit_curves(pts, CurveFitConfig(tolerance=0.01, spacing=0.005, min_length=0.04))
    scores = curve_scores(curves, gt, threshold=0.02 * 0.6)
    assert scores["precision"] > 0.97 and scores["recall"] > 0.97
    lines = [c for c in curves if c["type"] == "line"]
    beziers = [c for c in curves if c["type"] == "bezier"]
    assert len(lines) == 12  # every box edge is one straight line, the circle none
    assert 2 <= len(beziers) <= 8
    # each box edge is found with its length, endpoints merged at the corners
    lengths = sorted(np.linalg.norm(np.subtract(*c["points"])) for c in lines)
    np.testing.assert_allclose(lengths[:4], 0.4, atol=0.02)
    np.testing.assert_allclose(lengths[4:], 0.6, atol=0.02)


def test_bezier_fit_recovers_the_curve():
    cp = np.array([[0, 0, 0], [0.3, 0.5, 0.1], [0.7, -0.2, 0.3], [1, 0.1, 0]], float)
    rng = np.random.default_rng(0)
    pts = bezier_points(cp, np.sort(rng.uniform(0, 1, 300)))
    pts[1:-1] += rng.normal(0, 0.002, (298, 3))
    fit, err = fit_bezier(pts)
    dense_true = bezier_points(cp, np.linspace(0, 1, 400))
    dense_fit = bezier_points(fit, np.linspace(0, 1, 400))
    from scipy.spatial import cKDTree

    assert err < 0.01
    # the same curve as a point set (its parametrisation may differ): Hausdorff distance
    hausdorff = max(cKDTree(dense_fit).query(dense_true)[0].max(),
                    cKDTree(dense_true).query(dense_fit)[0].max())
    assert hausdorff < 0.01


def test_scores_of_a_shifted_set_fall():
    gt = _box_and_circle()
    shifted = [{"type": c["type"], **{k: (np.asarray(v) + [0.05, 0, 0]).tolist()
                                      for k, v in c.items() if k != "type"}} for c in gt]
    assert curve_scores(gt, gt, 0.012)["f_score"] == 1.0
    assert curve_scores(shifted, gt, 0.012)["f_score"] < 0.5


def test_dxf_reads_back_as_the_same_entities(tmp_path):
    import ezdxf

    gt = _box_and_circle() + [{"type": "polyline", "points": [[0, 0, 1], [0.5, 0.2, 1], [1, 0, 1.2]]}]
    path = write_curves_dxf(tmp_path / "c.dxf", gt)
    doc = ezdxf.readfile(str(path))
    kinds = sorted(e.dxftype() for e in doc.modelspace())
    assert kinds.count("LINE") == 12 and kinds.count("SPLINE") == 4 and kinds.count("POLYLINE") == 1
    back = read_curves_dxf(path)
    assert [c["type"] for c in back] == [c["type"] for c in gt]
    for a, b in zip(back, gt, strict=True):
        key = "control_points" if a["type"] == "bezier" else "points"
        np.testing.assert_allclose(a[key], b[key], atol=1e-9)
    # ezdxf's own evaluation of the SPLINE is the Bezier
    spline = next(e for e in doc.modelspace() if e.dxftype() == "SPLINE")
    ours = bezier_points(np.asarray(gt[12]["control_points"]), np.linspace(0, 1, 9))
    theirs = np.array([tuple(p) for p in spline.construction_tool().points(np.linspace(0, 1, 9))])
    np.testing.assert_allclose(theirs, ours, atol=1e-9)


def test_step_holds_lines_and_bezier_curves(tmp_path):
    from reconstruction.extract.curves import read_step_edges, write_curves_step

    kinds = read_step_edges(write_curves_step(tmp_path / "c.step", _box_and_circle()))
    # STEP has no Bezier entity: Open CASCADE stores each as a (single-span) B-spline
    assert sorted(kinds) == ["bsplinecurve"] * 4 + ["line"] * 12


def test_obj_and_ply_curves_open_in_other_tools(tmp_path):
    import open3d as o3d
    import pyvista as pv
    import trimesh

    gt = _box_and_circle()
    box = np.array([[0, 0, 0], [0.6, 0.6, 0.4]])
    # OBJ polylines: one `l` element per curve (VTK's OBJ reader keeps them; trimesh drops `l`)
    obj = pv.read(write_curves_obj(tmp_path / "c.obj", gt, 0.01))
    assert obj.n_lines == len(gt)
    assert abs(np.reshape(obj.bounds, (3, 2)).T - box).max() < 1e-3
    # PLY vertices + edges: a line set for open3d, a path for trimesh
    path = write_curves_ply(tmp_path / "c.ply", gt, 0.01)
    lines = o3d.io.read_line_set(str(path))
    assert len(lines.lines) > 12 * 30
    loaded = trimesh.load(path)
    assert isinstance(loaded, trimesh.path.Path3D)
    assert abs(loaded.bounds - box).max() < 1e-3


def test_soft_edges_follow_the_square_and_the_silhouette():
    img = np.zeros((64, 64, 3), np.uint8)
    img[16:48, 16:48] = 200
    img[28:36, 28:36] = 90  # an inner (texture) edge
    e = soft_edges(img)
    assert e.dtype == np.float32 and 0 <= e.min() and e.max() <= 1
    assert e[14:18, 20:44].max() > 0.5 and e[26:30, 30:34].max() > 0.5  # both outlines found
    assert e[2:10, 2:10].max() == 0.0 and e[20:26, 20:26].max() < 0.2  # nothing in flat areas
    # a mask adds its outline even where the image has no contrast, and clears far-off pixels
    flat = np.full((64, 64, 3), 120, np.uint8)
    mask = np.zeros((64, 64), np.uint8)
    mask[10:50, 10:50] = 255
    em = soft_edges(flat, mask)
    assert em[10, 20:40].min() > 0.5 and em[30, 30] < 0.1 and em[0:5, :].max() == 0.0


def test_edges_folder_is_used_instead(tmp_path, demo_small):
    import shutil

    from reconstruction.data import load_capture

    cap = tmp_path / "cap"
    shutil.copytree(demo_small, cap)
    scene = load_capture(cap)
    _, src = load_edge_maps(scene)
    assert src == "computed"
    # frame names repeat across splits (train/r_0, test/r_0): maps sit in split folders
    for split in ("train", "val", "test"):
        (cap / "edges" / split).mkdir(parents=True)
        for png in (cap / split).glob("*.png"):
            cv2.imwrite(str(cap / "edges" / split / png.name),
                        np.full((scene.height, scene.width), 255, np.uint8))
    maps, src = load_edge_maps(scene)
    assert src == "edges/" and maps.shape == (len(scene), scene.height, scene.width)
    assert np.all(maps == 1.0)
    # one map missing: the app computes all of them rather than mixing sources
    next((cap / "edges" / "test").glob("*.png")).unlink()
    assert load_edge_maps(scene)[1] == "computed"


@pytest.fixture(scope="module")
def edge_result(tmp_path_factory):
    """The edge method trained briefly on a small generated CAD-like capture."""
    from render.cad_objects import make_cad_capture

    root = tmp_path_factory.mktemp("edge")
    cap = make_cad_capture(root / "steps", "steps", size=96, n_train=32, n_val=1, n_test=2)
    out = root / "result"
    subprocess.run([sys.executable, "-m", "reconstruction.cli", "fit", str(cap), "--method", "edge",
                    "--steps", "500", "--out", str(out), "--quiet"], check=True, timeout=600)
    return cap, out


def test_edge_fit_beats_a_recall_floor(edge_result):
    cap, out = edge_result
    metrics = json.loads((out / "metrics.json").read_text())
    curves = read_curves(out / "curves.json")
    assert metrics["curves"] == len(curves) > 0
    # a field that learnt nothing has no edge points; misplaced curves have no precision
    assert metrics["curve_recall"] > 0.2, metrics
    assert metrics["curve_precision"] > 0.7, metrics
    # curves.json is in the input's world coordinates: inside the object's box
    pts = sample_curves(curves, 0.01)
    gt = sample_curves(read_curves(cap / "gt" / "curves.json"), 0.01)
    assert (pts.min(0) > gt.min(0) - 0.1).all() and (pts.max(0) < gt.max(0) + 0.1).all()
    import trimesh

    cloud = trimesh.load(out / "edge_points.ply")
    assert len(cloud.vertices) == metrics["edge_points"] > 0


@pytest.mark.parametrize("fmt", ["json", "obj", "ply", "dxf", "step"])
def test_recon_export_writes_curves(edge_result, fmt, tmp_path):
    _, out = edge_result
    target = tmp_path / f"c.{fmt}"
    r = subprocess.run([sys.executable, "-m", "reconstruction.cli", "export", str(out), "--format", fmt,
                        "--out", str(target)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout.strip().splitlines()[-1])
    n = len(read_curves(out / "curves.json"))
    assert info["curves"] == n and target.is_file()
    if fmt == "dxf":
        assert len(read_curves_dxf(target)) == n
    if fmt == "json":
        assert read_curves(target) == read_curves(out / "curves.json")


def test_recon_export_refuses_a_mesh_format_for_curves(edge_result):
    _, out = edge_result
    r = subprocess.run([sys.executable, "-m", "reconstruction.cli", "export", str(out), "--format", "stl"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "curves export as" in r.stderr and "Traceback" not in r.stderr
