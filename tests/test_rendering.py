"""Ray generation, marching and volume rendering against closed-form cases."""

import math

import numpy as np
import torch

from reconstruction.rendering.occupancy import OccupancyGrid, march
from reconstruction.rendering.rays import image_rays, pixel_rays, ray_aabb
from reconstruction.rendering.volume import composite, transmittance


def test_centre_pixel_looks_down_minus_z():
    c2w = torch.eye(4)
    c2w[:3, 3] = torch.tensor([1.0, 2.0, 3.0])
    o, d = image_rays(c2w, 50.0, 50.0, 2.0, 2.0, 4, 4)
    # pixels (1,1),(1,2),(2,1),(2,2) surround the centre symmetrically
    mid = d.view(4, 4, 3)[1:3, 1:3].reshape(-1, 3).mean(0)
    torch.testing.assert_close(mid / mid.norm(), torch.tensor([0.0, 0.0, -1.0]), atol=1e-6, rtol=0)
    assert torch.allclose(o, torch.tensor([1.0, 2.0, 3.0]).expand(16, 3))
    # +u is +x, +v is -y (image rows go down, camera y goes up)
    assert d.view(4, 4, 3)[0, 3, 0] > 0 and d.view(4, 4, 3)[0, 0, 1] > 0


def test_pixel_rays_follow_rotation():
    rot = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    c2w = torch.eye(4)
    c2w[:3, :3] = rot
    one = torch.ones(1)
    _, d = pixel_rays(c2w[None], one * 10, one * 10, one * 5, one * 5, one * 15, one * 5)
    # camera-space direction (1, 0, -1)/sqrt2 rotated by 90 deg about z -> (0, 1, -1)/sqrt2
    torch.testing.assert_close(d[0], torch.tensor([0.0, 1.0, -1.0]) / math.sqrt(2))


def test_ray_aabb():
    o = torch.tensor([[-1.0, 0.5, 0.5], [0.5, 0.5, 0.5], [-1.0, 2.0, 0.5]])
    d = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    t0, t1 = ray_aabb(o, d)
    assert math.isclose(t0[0], 1.0) and math.isclose(t1[0], 2.0)
    assert math.isclose(t0[1], 0.0) and math.isclose(t1[1], 0.5)
    assert t1[2] <= t0[2]


def test_constant_density_segment_matches_beer_lambert():
    sigma, length, n = 3.0, 0.8, 4000
    dt = length / n
    ts = (torch.arange(n) + 0.5) * dt
    ids = torch.zeros(n, dtype=torch.long)
    col = torch.tensor([0.2, 0.4, 0.6]).expand(n, 3)
    out = composite(torch.full((n,), sigma), col, torch.full((n,), dt), ts, ids, 1, torch.ones(3))
    alpha = 1 - math.exp(-sigma * length)
    assert math.isclose(out["opacity"][0].item(), alpha, rel_tol=1e-4)
    expect = alpha * torch.tensor([0.2, 0.4, 0.6]) + (1 - alpha)
    torch.testing.assert_close(out["rgb"][0], expect, atol=1e-4, rtol=0)
    # expected depth of an exponential distribution truncated at `length`
    mean_t = (1 - math.exp(-sigma * length) * (1 + sigma * length)) / sigma
    assert math.isclose(out["depth"][0].item(), mean_t, rel_tol=1e-3)


def test_uniform_sphere_through_packed_rays():
    """Rays through a ball of constant density: opacity = 1 - exp(-sigma * chord)."""
    sigma, r, c = 4.0, 0.3, torch.tensor([0.5, 0.5, 0.5])
    offsets = torch.tensor([0.0, 0.1, 0.2, 0.29, 0.35])  # distance of each ray from the centre
    o = torch.stack([torch.full_like(offsets, 0.5), 0.5 + offsets, torch.full_like(offsets, -0.5)], -1)
    d = torch.tensor([0.0, 0.0, 1.0]).expand(5, 3)
    grid = OccupancyGrid(32)
    ids, ts, deltas = march(o, d, grid, 1e-3, jitter=torch.full((5,), 0.5))
    pts = o[ids] + ts[:, None] * d[ids]
    dens = torch.where((pts - c).norm(dim=-1) < r, sigma, 0.0)
    out = composite(dens, torch.ones(len(ids), 3), deltas, ts, ids, 5, torch.zeros(3))
    chord = 2 * torch.sqrt((r**2 - offsets**2).clamp_min(0))
    torch.testing.assert_close(out["opacity"], 1 - torch.exp(-sigma * chord), atol=3e-3, rtol=0)


def test_transmittance_restarts_per_ray_and_has_gradient():
    tau = torch.tensor([0.5, 0.5, 1.0, 0.2, 0.3], requires_grad=True)
    ids = torch.tensor([0, 0, 1, 2, 2])
    tr = transmittance(tau, ids, 3)
    expect = torch.tensor([1.0, math.exp(-0.5), 1.0, 1.0, math.exp(-0.2)])
    torch.testing.assert_close(tr, expect)
    tr.sum().backward()
    assert tau.grad is not None and tau.grad[0] < 0 and tau.grad[1] == 0


def test_occupancy_carving_keeps_the_object():
    """A ball seen by 6 axis cameras: carving removes the corners, keeps the ball."""
    grid = OccupancyGrid(32)
    f, size = 40.0, 64
    poses, masks = [], []
    for axis in range(3):
        for sign in (-1, 1):
            z = np.zeros(3)
            z[axis] = sign  # camera +Z axis points away from the target
            up = np.array([0.0, 0.0, 1.0]) if axis != 2 else np.array([0.0, 1.0, 0.0])
            x = np.cross(up, z)
            x /= np.linalg.norm(x)
            y = np.cross(z, x)
            pose = np.eye(4)
            pose[:3, :3] = np.stack([x, y, z], 1)
            pose[:3, 3] = 0.5 + 2.0 * z
            poses.append(pose)
            vv, uu = np.mgrid[0:size, 0:size] + 0.5
            rad = 0.2 / 2.0 * f  # ball radius 0.2 at distance 2
            masks.append((((uu - 32) ** 2 + (vv - 32) ** 2) < rad**2).astype(np.uint8) * 255)
    grid.carve(np.stack(poses), np.tile([f, f, 32.0, 32.0], (6, 1)), np.stack(masks))
    centers = grid.cell_centers()
    dist = (centers - 0.5).norm(dim=-1)
    assert grid.allowed[dist < 0.18].all()
    assert not grid.allowed[dist > 0.45].any()
