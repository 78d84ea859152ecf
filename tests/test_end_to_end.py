"""Capture in, radiance field trained on the CPU, mesh and renders out: floors that a
broken pipeline cannot reach."""

import json
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image
from scipy.spatial import cKDTree

from reconstruction.cli import main


@pytest.fixture(scope="module")
def fitted(demo_small, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fit") / "result"
    code = main(["fit", str(demo_small), "--method", "nerf", "--out", str(out), "--steps", "150",
                 "--set", "mesh_resolution=128", "--quiet"])
    assert code == 0
    return out


@pytest.mark.slow
def test_fit_reaches_psnr_floor(fitted):
    metrics = json.loads((fitted / "metrics.json").read_text())
    # an untrained field scores ~11 dB here, a constant grey image ~12 dB; 150 steps
    # (~25 s on 2 cores) reach ~22 dB; benchmarks/ carries the real target
    assert metrics["test_psnr"] >= 19.0, metrics
    assert metrics["steps"] > 20 and metrics["test_views"] == 4


@pytest.mark.slow
def test_mesh_is_close_to_ground_truth(fitted, demo_small):
    rec = trimesh.load(fitted / "mesh.ply", process=False)
    gt = trimesh.load(demo_small / "gt" / "mesh.ply", process=False)
    assert len(rec.faces) > 1000
    assert rec.visual.vertex_colors.shape[0] == len(rec.vertices)  # coloured
    a, b = rec.sample(20000, seed=0), gt.sample(20000, seed=0)
    acc = cKDTree(b).query(a)[0]
    comp = cKDTree(a).query(b)[0]
    # the object is ~1.4 units across; a mesh in the wrong frame or scale misses by ~0.5+
    assert np.median(acc) < 0.05 and np.median(comp) < 0.05, (np.median(acc), np.median(comp))
    lo, hi = rec.bounds
    assert np.all(lo > -1.2) and np.all(hi < 1.2)  # world coordinates of the input


@pytest.mark.slow
def test_render_writes_named_frames_at_downscale(fitted, demo_small, tmp_path):
    out = tmp_path / "renders"
    code = main(["render", str(fitted), "--cameras", str(demo_small / "transforms_test.json"),
                 "--out", str(out), "--downscale", "2"])
    assert code == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"r_{i}.png" for i in range(4)]
    img = np.asarray(Image.open(out / "r_0.png"))
    assert img.shape == (32, 32, 3)
    # the render resembles the photo (downsampled the same way)
    gt = Image.open(demo_small / "test" / "r_0.png").convert("RGBA")
    bg = Image.new("RGBA", gt.size, (255, 255, 255, 255))
    bg.alpha_composite(gt)
    ref = np.asarray(bg.convert("RGB").resize((32, 32), Image.BOX)).astype(float)
    mse = np.mean((img.astype(float) - ref) ** 2) / 255**2
    assert -10 * np.log10(mse) > 18.0


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["obj", "glb", "stl"])
def test_export_formats_open_in_trimesh(fitted, tmp_path, fmt):
    out = tmp_path / f"mesh.{fmt}"
    assert main(["export", str(fitted), "--format", fmt, "--out", str(out)]) == 0
    mesh = trimesh.load(out, force="mesh")
    assert len(mesh.faces) > 1000


@pytest.mark.slow
def test_export_decimates_to_a_face_budget(fitted, tmp_path):
    out = tmp_path / "small.ply"
    assert main(["export", str(fitted), "--format", "ply", "--faces", "2000", "--out", str(out)]) == 0
    mesh = trimesh.load(out, process=False)
    assert 1000 <= len(mesh.faces) <= 2000
    assert mesh.visual.vertex_colors.shape[0] == len(mesh.vertices)
