"""Shared fixtures: small captures made by the tests themselves."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

os.environ.setdefault("OMP_NUM_THREADS", "2")


def look_at(eye: np.ndarray, target: np.ndarray, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """[4, 4] OpenGL camera-to-world looking from eye at target."""
    z = eye - target
    z = z / np.linalg.norm(z)
    x = np.cross(np.asarray(up, float), z)
    if np.linalg.norm(x) < 1e-8:
        x = np.cross(np.array([0.0, 1.0, 0.0]), z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = x, y, z, eye
    return m


def sphere_scene(n_views: int = 16, size: int = 32, radius: float = 0.6, seed: int = 0):
    """An analytic capture: a ball with a colour pattern, ray-traced exactly; world bounds [-1, 1]^3."""
    from reconstruction.data.scene import Cameras, Normalization, Scene

    rng = np.random.default_rng(seed)
    golden = np.pi * (3 - np.sqrt(5))
    poses = []
    for i in range(n_views):
        z = 0.9 - 1.5 * (i + 0.5) / n_views
        r = np.sqrt(1 - z * z)
        eye = 3.0 * np.array([r * np.cos(golden * i), r * np.sin(golden * i), z])
        poses.append(look_at(eye, np.zeros(3)))
    poses = np.stack(poses)
    f = 0.5 * size / np.tan(0.5 * 0.7)
    vv, uu = np.mgrid[0:size, 0:size] + 0.5
    dirs_cam = np.stack([(uu - size / 2) / f, -(vv - size / 2) / f, -np.ones_like(uu)], -1)
    images, masks = [], []
    for pose in poses:
        d = dirs_cam @ pose[:3, :3].T
        d /= np.linalg.norm(d, axis=-1, keepdims=True)
        o = pose[:3, 3]
        b = d @ o
        c = o @ o - radius**2
        disc = b * b - c
        hit = disc > 0
        t = -b - np.sqrt(np.maximum(disc, 0))
        p = o + t[..., None] * d
        n = p / radius
        albedo = 0.5 + 0.4 * np.stack([np.sign(np.sin(4 * n[..., 0])), n[..., 1], np.cos(3 * n[..., 2])], -1)
        shade = 0.6 + 0.4 * np.clip(n @ np.array([0.3, 0.4, 0.866]), 0, 1)
        col = np.clip(albedo * shade[..., None], 0, 1)
        img = np.where(hit[..., None], col, 1.0)
        images.append((img * 255 + 0.5).astype(np.uint8))
        masks.append(hit.astype(np.uint8) * 255)
    idx = np.arange(n_views)
    test = idx[idx % 8 == 0]
    train = idx[idx % 8 != 0]
    cams = Cameras(poses, np.full(n_views, f), np.full(n_views, f), np.full(n_views, size / 2),
                   np.full(n_views, size / 2), size, size)
    del rng
    lo, hi = np.full(3, -1.0), np.full(3, 1.0)
    return Scene(root=Path("analytic-sphere"), format="nerf-synthetic", images=np.stack(images),
                 cameras=cams, file_paths=[f"./r_{i}" for i in range(n_views)],
                 split={"train": train, "val": np.zeros(0, np.int64), "test": test},
                 normalization=Normalization.from_bounds(lo, hi), bounds=(lo, hi),
                 masks=np.stack(masks), alpha_composited=True)


@pytest.fixture
def sphere():
    return sphere_scene()


@pytest.fixture(scope="session")
def demo_small(tmp_path_factory) -> Path:
    """The demo capture at test size (64 px, 24 train / 2 val / 4 test views)."""
    from render.demo_capture import make_demo_capture

    out = tmp_path_factory.mktemp("demo") / "capture"
    make_demo_capture(out, size=64, n_train=24, n_val=2, n_test=4, seed=0)
    return out


@pytest.fixture(autouse=True)
def no_leaked_engine_processes():
    """Fail a test that leaves an engine (or any child) process running."""
    import multiprocessing as mp

    yield
    leaked = [p for p in mp.active_children() if p.is_alive()]
    for p in leaked:
        p.kill()
        p.join(5)
    assert not leaked, f"test left processes running: {[p.name for p in leaked]}"
