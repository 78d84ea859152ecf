"""Occupancy grid over the unit cube: which cells may hold density, so rays skip the rest.

Like instant-ngp: a running maximum of the density per cell, decayed and refreshed every
few steps from random points in a subset of cells; a cell is occupied while its density
exceeds ``min(mean, threshold)``. When the capture has masks, cells whose centre projects
outside the object's mask in any view are carved away once (visual hull).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from reconstruction.rendering.rays import ray_aabb


class OccupancyGrid:
    def __init__(self, resolution: int = 64, threshold: float = 2.0, decay: float = 0.95,
                 generator: torch.Generator | None = None):
        self.res = resolution
        self.threshold = threshold
        self.decay = decay
        self.density = torch.zeros(resolution**3)  # [R^3] running max of density
        self.updates = 0
        self.allowed = torch.ones(resolution**3, dtype=torch.bool)  # [R^3] visual hull
        self.occupied = torch.ones(resolution**3, dtype=torch.bool)  # [R^3]
        self.gen = generator or torch.Generator().manual_seed(0)

    # -- geometry -----------------------------------------------------------------------
    def cell_index(self, pts: Tensor) -> Tensor:  # pts [N, 3] in [0,1] -> [N] int64
        c = (pts * self.res).long().clamp_(0, self.res - 1)
        return (c[:, 0] * self.res + c[:, 1]) * self.res + c[:, 2]

    def to(self, device: torch.device) -> OccupancyGrid:
        """Move the grid to ``device`` (queries then take points on that device)."""
        self.density = self.density.to(device)
        self.allowed = self.allowed.to(device)
        self.occupied = self.occupied.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return self.density.device

    def cell_centers(self) -> Tensor:  # [R^3, 3]
        r = (torch.arange(self.res, dtype=torch.float32, device=self.device) + 0.5) / self.res
        g = torch.stack(torch.meshgrid(r, r, r, indexing="ij"), -1)
        return g.reshape(-1, 3)

    def query(self, pts: Tensor) -> Tensor:  # pts [N, 3] -> [N] bool
        inside = ((pts >= 0) & (pts <= 1)).all(dim=-1)
        return self.occupied[self.cell_index(pts)] & inside

    def bounds(self) -> tuple[Tensor, Tensor]:
        """Axis-aligned box [lo [3], hi [3]] around the occupied cells (unit cube)."""
        idx = self.occupied.nonzero()[:, 0]
        if idx.numel() == 0:
            return torch.zeros(3, device=self.device), torch.zeros(3, device=self.device)
        ijk = torch.stack([idx // (self.res * self.res), (idx // self.res) % self.res, idx % self.res], -1)
        return ijk.amin(0).float() / self.res, (ijk.amax(0).float() + 1) / self.res

    # -- visual hull ----------------------------------------------------------------------
    def carve(
        self,
        c2w: np.ndarray,  # [V, 4, 4] unit-cube camera poses (OpenGL)
        intrinsics: np.ndarray,  # [V, 4] fx, fy, cx, cy
        masks: np.ndarray,  # [V, H, W] uint8, >127 = object
        dilate_px: int = 2,
    ) -> None:
        """Keep only cells whose centre lies inside every view's (dilated) mask."""
        import cv2

        centers = self.cell_centers().cpu().numpy().astype(np.float64)
        keep = np.ones(len(centers), dtype=bool)
        kernel = np.ones((2 * dilate_px + 1, 2 * dilate_px + 1), np.uint8)
        half_cell = 0.5 * np.sqrt(3) / self.res
        for pose, (fx, fy, cx, cy), mask in zip(c2w, intrinsics, masks, strict=True):
            h, w = mask.shape
            m = cv2.dilate((mask > 127).astype(np.uint8), kernel) > 0
            w2c = np.linalg.inv(pose)
            p = centers @ w2c[:3, :3].T + w2c[:3, 3]
            z = -p[:, 2]
            front = z > 1e-6
            # cells are boxes, not points: grow the footprint by the projected half diagonal
            rad = np.where(front, half_cell * fx / np.maximum(z, 1e-6), 0)
            u = np.where(front, fx * p[:, 0] / np.maximum(z, 1e-6) + cx, -1)
            v = np.where(front, -fy * p[:, 1] / np.maximum(z, 1e-6) + cy, -1)
            r = int(np.ceil(np.max(rad[front]))) if front.any() else 0
            if r > 0:
                m = cv2.dilate(m.astype(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8)) > 0
            ui, vi = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
            inside = front & (ui >= 0) & (ui < w) & (vi >= 0) & (vi < h)
            hit = np.zeros(len(centers), dtype=bool)
            hit[inside] = m[vi[inside], ui[inside]]
            # a cell outside this view's frame is not evidence of emptiness
            keep &= hit | ~inside
        self.allowed &= torch.from_numpy(keep).to(self.device)
        self.occupied &= self.allowed

    # -- updates ----------------------------------------------------------------------------
    @torch.no_grad()
    def update(self, density_fn: Callable[[Tensor], Tensor], fraction: float = 0.25) -> None:
        """Decay the running densities and refresh a random subset of cells.

        density_fn: points [N, 3] in the unit cube -> density [N].
        """
        cand = self.allowed.nonzero()[:, 0]
        if cand.numel() == 0:
            return
        k = max(1, min(cand.numel(), int(fraction * cand.numel())))
        pick = cand[torch.randperm(cand.numel(), generator=self.gen)[:k].to(self.device)]
        occ = (self.occupied & self.allowed).nonzero()[:, 0]
        if occ.numel() and fraction < 1.0:
            extra = occ[torch.randint(occ.numel(), (min(k, occ.numel()),), generator=self.gen).to(self.device)]
            pick = torch.unique(torch.cat([pick, extra]))
        ijk = torch.stack([pick // (self.res * self.res), (pick // self.res) % self.res, pick % self.res], -1)
        pts = (ijk.float() + torch.rand(ijk.shape, generator=self.gen).to(self.device)) / self.res
        sig = torch.cat([density_fn(c) for c in pts.split(65536)])
        if self.updates == 0:
            self.density[pick] = sig.float()  # the first look replaces the "all occupied" start
        else:
            self.density *= self.decay
            self.density[pick] = torch.maximum(self.density[pick], sig.float())
        self.updates += 1
        self.density[~self.allowed] = 0.0
        mean = self.density[self.allowed].mean().item() if self.allowed.any() else 0.0
        thr = min(mean, self.threshold)
        self.occupied = (self.density > thr) & self.allowed

    def state_dict(self) -> dict:
        return {"density": self.density.cpu().clone(), "allowed": self.allowed.cpu().clone(),
                "occupied": self.occupied.cpu().clone(), "updates": self.updates}

    def load_state_dict(self, s: dict) -> None:
        dev = self.device
        self.density = s["density"].clone().to(dev)
        self.allowed = s["allowed"].clone().to(dev)
        self.occupied = s["occupied"].clone().to(dev)
        self.updates = int(s.get("updates", 1))
        self.res = round(self.density.numel() ** (1 / 3))


def dilate(occ: Tensor, res: int) -> Tensor:  # occ [res^3] bool -> [res^3] bool
    """Grow a cell mask by one cell in every direction (26 neighbours)."""
    v = occ.view(1, 1, res, res, res).float()
    return (torch.nn.functional.max_pool3d(v, 3, stride=1, padding=1) > 0).view(-1)


def march(
    origins: Tensor,  # [R, 3] in the unit cube frame
    dirs: Tensor,  # [R, 3] unit
    grid: OccupancyGrid,
    step: float,
    jitter: Tensor | None = None,  # [R] in [0, 1): per-ray sample offset (training)
) -> tuple[Tensor, Tensor, Tensor]:  # ray_ids [S], ts [S], deltas [S]
    """Fixed-step samples along each ray, kept only in occupied cells; sorted by ray then t."""
    dev = origins.device
    lo, hi = grid.bounds()
    t0, t1 = ray_aabb(origins, dirs, 0.0, 1.0)
    # clip to the occupied region's box: most rays then start right at the object
    inv = 1.0 / torch.where(dirs.abs() < 1e-9, torch.full_like(dirs, 1e-9), dirs)
    a, b = (lo - origins) * inv, (hi - origins) * inv
    t0 = torch.maximum(t0, torch.minimum(a, b).amax(-1))
    t1 = torch.minimum(t1, torch.maximum(a, b).amin(-1))
    hit = t1 > t0
    rays = hit.nonzero()[:, 0]
    if rays.numel() == 0:
        e = torch.zeros(0, device=dev)
        return torch.zeros(0, dtype=torch.int64, device=dev), e, e
    t0, t1 = t0[rays], t1[rays]
    n_steps = int(torch.ceil((t1 - t0).max() / step).item()) + 1
    off = torch.zeros(rays.numel(), device=dev) if jitter is None else jitter[rays]
    steps = torch.arange(n_steps, dtype=torch.float32, device=dev)
    ts = t0[:, None] + (steps[None] + off[:, None]) * step
    valid = ts < t1[:, None]
    pts = origins[rays][:, None, :] + ts[..., None] * dirs[rays][:, None, :]
    valid &= grid.query(pts.reshape(-1, 3)).view(valid.shape)
    r_idx, k_idx = valid.nonzero(as_tuple=True)
    ray_ids = rays[r_idx]
    return ray_ids, ts[r_idx, k_idx], torch.full((ray_ids.numel(),), step, device=dev)
