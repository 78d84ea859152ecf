"""Gaussian splats -> a coloured triangle mesh: marching cubes on the splat density.

The density at x is ``sum_i opacity_i * exp(-(x - mu_i)^T Sigma_i^-1 (x - mu_i) / 2)``,
splatted into a regular grid over each Gaussian's 3-sigma box (capped at a few voxels), and
the surface is its ``level`` set; vertex colours are the base (SH degree-0) colour of the
nearest Gaussian. Works in whatever frame the splats are in (world, for exports).
"""

from __future__ import annotations

import numpy as np
import torch

from reconstruction.extract.marching_cubes import marching_cubes
from reconstruction.rendering.gaussian_raster import quat_to_rotmat

SH_C0 = 0.28209479177387814


@torch.no_grad()
def splat_density(
    means: np.ndarray,  # [N, 3]
    log_scales: np.ndarray,  # [N, 3]
    quats: np.ndarray,  # [N, 4] (w, x, y, z)
    opacities: np.ndarray,  # [N] in [0, 1]
    lo: np.ndarray, hi: np.ndarray,  # [3] grid box (corners are grid points)
    resolution: int,
    max_reach: int = 3,  # voxels: a Gaussian touches at most (2 * max_reach + 1)^3 voxels
    chunk: int = 4096,
) -> np.ndarray:  # [R, R, R] float32
    """Density of the splats on the grid spanning [lo, hi]."""
    r = resolution
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    voxel = (hi - lo) / (r - 1)
    mu = torch.tensor(means, dtype=torch.float32)
    sc = torch.tensor(np.exp(log_scales), dtype=torch.float32)
    rot = quat_to_rotmat(torch.tensor(quats, dtype=torch.float32))
    inv = rot @ torch.diag_embed(1.0 / sc.clamp_min(1e-8) ** 2) @ rot.transpose(1, 2)  # [N, 3, 3]
    op = torch.tensor(opacities, dtype=torch.float32)
    grid = torch.zeros(r * r * r)
    vox = torch.tensor(voxel, dtype=torch.float32)
    lo_t = torch.tensor(lo, dtype=torch.float32)
    centre = torch.round((mu - lo_t) / vox).long()
    reach = torch.ceil(3 * sc.amax(1) / vox.min()).long().clamp(1, max_reach)
    for k in reach.unique().tolist():
        ids = torch.nonzero(reach == k).squeeze(1)
        ar = torch.arange(-k, k + 1)
        offs = torch.stack(torch.meshgrid(ar, ar, ar, indexing="ij"), -1).reshape(-1, 3)  # [S, 3]
        for c in ids.split(max(1, chunk // 1)):
            cell = centre[c][:, None] + offs[None]  # [C, S, 3]
            ok = ((cell >= 0) & (cell < r)).all(-1)
            pos = lo_t + cell.float() * vox
            d = pos - mu[c][:, None]
            m = torch.einsum("csi,cij,csj->cs", d, inv[c], d)
            val = op[c][:, None] * torch.exp(-0.5 * m)
            flat = (cell[..., 0] * r + cell[..., 1]) * r + cell[..., 2]
            grid.index_add_(0, flat[ok], val[ok])
    return grid.view(r, r, r).numpy()


def splat_mesh(splats: dict[str, np.ndarray], resolution: int = 192, level: float = 0.5,
               min_opacity: float = 0.1) -> dict[str, np.ndarray]:
    """splats as read by extract/splat_io.read_splats_ply -> vertices [V, 3], faces [F, 3],
    colors [V, 3] in [0, 1] (empty arrays when there is no surface)."""
    from scipy.spatial import cKDTree

    op = 1.0 / (1.0 + np.exp(-np.asarray(splats["opacity_logits"], np.float64)))
    keep = op >= min_opacity
    empty = {"vertices": np.zeros((0, 3), np.float32), "faces": np.zeros((0, 3), np.int64),
             "colors": np.zeros((0, 3), np.float32)}
    if keep.sum() < 4:
        return empty
    means = np.asarray(splats["means"], np.float64)[keep]
    lo, hi = np.percentile(means, 0.5, axis=0), np.percentile(means, 99.5, axis=0)
    pad = 0.05 * float(np.max(hi - lo)) + 1e-6
    lo, hi = lo - pad, hi + pad
    vol = splat_density(means, splats["log_scales"][keep], splats["quats"][keep], op[keep],
                        lo, hi, resolution)
    verts, faces = marching_cubes(vol, level, lo, hi)
    if len(verts) == 0:
        return empty
    _, near = cKDTree(means).query(verts)
    colors = np.clip(np.asarray(splats["sh_dc"])[keep][near] * SH_C0 + 0.5, 0, 1)
    return {"vertices": verts.astype(np.float32), "faces": faces, "colors": colors.astype(np.float32)}
