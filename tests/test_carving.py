"""Free-space carving against a closed-form scene: a ball seen by cameras around it."""

import numpy as np

from reconstruction.extract.carving import visibility


def _look_at(eye: np.ndarray) -> np.ndarray:
    z = eye / np.linalg.norm(eye)
    x = np.cross([0.0, 0.0, 1.0], z)
    if np.linalg.norm(x) < 1e-6:
        x = np.array([1.0, 0.0, 0.0])
    x /= np.linalg.norm(x)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = x, np.cross(z, x), z, eye
    return m


def test_ball_interior_is_solid_and_outside_is_free():
    r, size, f = 0.5, 48, 40.0
    poses, depths, alphas = [], [], []
    for i in range(12):
        a, e = 2 * np.pi * i / 12, np.radians(-30 + 60 * (i % 3) / 2)
        pose = _look_at(3.0 * np.array([np.cos(a) * np.cos(e), np.sin(a) * np.cos(e), np.sin(e)]))
        vv, uu = np.mgrid[0:size, 0:size] + 0.5
        d = np.stack([(uu - size / 2) / f, -(vv - size / 2) / f, -np.ones_like(uu)], -1) @ pose[:3, :3].T
        d /= np.linalg.norm(d, axis=-1, keepdims=True)
        o = pose[:3, 3]
        b = d @ o
        disc = b * b - (o @ o - r * r)
        hit = disc > 0
        t = np.where(hit, -b - np.sqrt(np.maximum(disc, 0)), np.inf)
        poses.append(pose)
        depths.append(t)
        alphas.append(hit.astype(float))
    k = np.tile([f, f, size / 2, size / 2], (12, 1))
    rng = np.random.default_rng(0)
    pts = rng.uniform(-1, 1, (4000, 3))
    dist = np.linalg.norm(pts, axis=1)
    free, solid = visibility(pts, np.stack(poses), k, np.stack(depths), np.stack(alphas), margin=0.05)
    deep, far = dist < r - 0.12, dist > r + 0.12
    assert solid[deep].mean() > 0.95 and not free[deep].any()
    assert free[far].mean() > 0.95 and not solid[far].any()
