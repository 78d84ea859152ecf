"""Ray generation for pinhole cameras in the OpenGL convention."""

from __future__ import annotations

import torch
from torch import Tensor


def pixel_rays(
    c2w: Tensor,  # [N, 4, 4] camera-to-world (OpenGL: looks down -Z, +Y up)
    fx: Tensor,  # [N]
    fy: Tensor,  # [N]
    cx: Tensor,  # [N]
    cy: Tensor,  # [N]
    u: Tensor,  # [N] pixel column (float; +0.5 is the pixel centre)
    v: Tensor,  # [N] pixel row
) -> tuple[Tensor, Tensor]:  # origins [N, 3], unit directions [N, 3]
    """One ray per (camera, pixel position) pair; pixel positions are continuous."""
    d_cam = torch.stack([(u - cx) / fx, -(v - cy) / fy, -torch.ones_like(u)], dim=-1)
    d = (c2w[:, :3, :3] @ d_cam[..., None])[..., 0]
    d = d / d.norm(dim=-1, keepdim=True)
    return c2w[:, :3, 3].expand_as(d).contiguous(), d


def image_rays(
    c2w: Tensor,  # [4, 4]
    fx: float, fy: float, cx: float, cy: float, width: int, height: int,
) -> tuple[Tensor, Tensor]:  # origins [H*W, 3], directions [H*W, 3], row-major pixel order
    """All pixel-centre rays of one image."""
    v, u = torch.meshgrid(
        torch.arange(height, dtype=torch.float32) + 0.5,
        torch.arange(width, dtype=torch.float32) + 0.5,
        indexing="ij",
    )
    u, v = u.reshape(-1), v.reshape(-1)
    n = u.shape[0]
    c2w = c2w.to(torch.float32)[None].expand(n, 4, 4)
    f = torch.full((n,), 1.0)
    return pixel_rays(c2w, f * fx, f * fy, f * cx, f * cy, u, v)


def ray_aabb(
    origins: Tensor,  # [N, 3]
    dirs: Tensor,  # [N, 3] unit
    lo: float = 0.0,
    hi: float = 1.0,
) -> tuple[Tensor, Tensor]:  # t_near [N], t_far [N]; t_far <= t_near where the ray misses
    """Slab intersection of rays with the axis-aligned cube [lo, hi]^3; t_near >= 0."""
    inv = 1.0 / torch.where(dirs.abs() < 1e-9, torch.full_like(dirs, 1e-9), dirs)
    t0 = (lo - origins) * inv
    t1 = (hi - origins) * inv
    t_near = torch.minimum(t0, t1).amax(dim=-1).clamp_min(0.0)
    t_far = torch.maximum(t0, t1).amin(dim=-1)
    return t_near, t_far
