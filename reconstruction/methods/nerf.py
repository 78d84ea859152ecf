"""Radiance field in the style of instant-ngp: a hash-grid density/colour field, an
occupancy grid that skips empty space, fixed-step ray marching and volume rendering.

CPU-first choices: the number of rays per step adapts so each step evaluates about
``target_samples`` points; when the capture has object masks (alpha), the occupancy grid
starts from the visual hull and training uses random background colours, so the field
cannot hide the background inside the object (as instant-ngp does on NeRF-synthetic).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from reconstruction.data.scene import Scene
from reconstruction.encoding.cpu_kernel import HashGridAdam
from reconstruction.extract.carving import visibility
from reconstruction.extract.marching_cubes import (
    marching_cubes,
    sample_grid,
    solidify,
    vertex_normals,
)
from reconstruction.extract.mesh_io import decimate, write_mesh
from reconstruction.fields.radiance import RadianceField, grid_config
from reconstruction.methods.base import RayFieldMethod, register
from reconstruction.rendering.occupancy import OccupancyGrid, dilate, march
from reconstruction.rendering.volume import composite


@dataclass
class NerfConfig:
    """Settings of the radiance-field method."""

    seed: int = 0
    """Random seed (same seed and settings: the same training)."""
    lr: float = 1e-2
    """Adam learning rate at the start."""
    lr_final: float = 1e-3
    """Learning rate at the end of the budget (exponential decay)."""
    target_samples: int = 49152
    """Field evaluations per step; the ray batch adapts to it."""
    max_rays: int = 8192
    """Upper bound on rays per step."""
    march_steps: int = 384
    """Samples per unit-cube length along a ray (step = 1 / march_steps)."""
    occupancy_resolution: int = 64
    """Cells per side of the occupancy grid."""
    occupancy_interval: int = 16
    """Steps between occupancy-grid refreshes."""
    occupancy_warmup: int = 64
    """Steps before the occupancy grid starts pruning empty space."""
    random_background: bool = True
    """Train on random background colours when the capture has alpha masks."""
    n_levels: int = 12
    """Hash-grid levels."""
    n_features_per_level: int = 2
    """Features per hash-grid level."""
    log2_hashmap_size: int = 16
    """log2 of the hash-table size per level."""
    base_resolution: int = 16
    """Coarsest hash-grid resolution."""
    finest_resolution: int = 512
    """Finest hash-grid resolution."""
    hidden: int = 64
    """MLP width."""
    grid_backend: str = "auto"
    """Hash-grid implementation: auto, cpu (fused C kernel), torch, reference, tcnn (CUDA)."""
    mesh_resolution: int = 256
    """Marching-cubes grid for the exported mesh."""
    preview_resolution: int = 64
    """Marching-cubes grid for live mesh snapshots."""
    mesh_max_faces: int = 400_000
    """Exported meshes are decimated to at most this many faces (0: keep all)."""
    mesh_threshold: float = 20.0
    """Density (per unit-cube length) at which the mesh surface is extracted."""
    eval_chunk: int = 8192
    """Rays per chunk when rendering whole images."""


@register
class Nerf(RayFieldMethod):
    """instant-ngp style radiance field; exports a coloured mesh from its density."""

    name = "nerf"
    Config = NerfConfig
    outputs = ("mesh.ply",)
    snapshot_kinds = ("mesh", "points", "image")

    def setup(self, scene: Scene | None, device: torch.device) -> None:
        cfg: NerfConfig = self.config
        self.device = torch.device(device)
        torch.manual_seed(cfg.seed)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        grid = grid_config(cfg.n_levels, cfg.n_features_per_level, cfg.log2_hashmap_size,
                           cfg.base_resolution, cfg.finest_resolution)
        self.field = RadianceField(grid, hidden=cfg.hidden, backend=cfg.grid_backend).to(self.device)
        self.grid = OccupancyGrid(cfg.occupancy_resolution, threshold=0.01 * cfg.march_steps,
                                  generator=torch.Generator().manual_seed(cfg.seed + 1)).to(self.device)
        self.step_size = 1.0 / cfg.march_steps
        mlp_params = [p for n, p in self.field.named_parameters() if not n.startswith("encoding.")]
        # the table gets a sparse Adam (only entries hit this step move), the MLPs plain Adam
        self.grid_optimizer = HashGridAdam(self.field.encoding, lr=cfg.lr, betas=(0.9, 0.99), eps=1e-15)
        self.mlp_optimizer = torch.optim.Adam(mlp_params, lr=cfg.lr, betas=(0.9, 0.99), eps=1e-15,
                                              weight_decay=1e-6)
        self.optimizers = (self.grid_optimizer, self.mlp_optimizer)
        self.n_rays = 1024
        self.scene = scene
        self.eval_chunk = cfg.eval_chunk
        if scene is None:
            return
        train = self._setup_views(scene)
        if scene.masks is not None:
            self.grid.carve(self.train_c2w.cpu().double().numpy(),
                            self.train_k.cpu().double().numpy(), scene.masks[train])
            if not cfg.random_background:
                self.train_alpha = None

    # -- training -------------------------------------------------------------------------
    def _lr_factor(self) -> float:
        cfg: NerfConfig = self.config
        return (cfg.lr_final / cfg.lr) ** min(1.0, max(0.0, self.progress))

    def _density_unit(self, pts: torch.Tensor) -> torch.Tensor:  # [N, 3] unit cube -> [N]
        return self.field.density(pts.clamp(0.0, 1.0))[0]

    def step(self) -> dict[str, float]:
        cfg: NerfConfig = self.config
        t_start = time.perf_counter()
        # the untrained field says nothing about emptiness: prune only once it has learnt a bit
        if self.step_count >= cfg.occupancy_warmup and self.step_count % cfg.occupancy_interval == 0:
            warm = self.step_count < 4 * cfg.occupancy_warmup
            self.grid.update(self._density_unit, fraction=1.0 if warm else 0.25)
        for opt in self.optimizers:
            for g in opt.param_groups:
                g["lr"] = cfg.lr * self._lr_factor()

        n = self.n_rays
        g = self.gen
        dev = self.device
        batch = self.sample_rays(n, g)
        origins, dirs, target = batch["origins"], batch["dirs"], batch["rgb"]
        ray_ids, ts, deltas = march(origins, dirs, self.grid, self.step_size,
                                    jitter=torch.rand(n, generator=g).to(dev))
        bg = self.bg.expand(n, 3)
        if self.train_alpha is not None:
            bg = torch.rand(n, 3, generator=g).to(dev)
            target = target + (1.0 - batch["mask"][:, None]) * (bg - self.bg)
        pts = (origins[ray_ids] + ts[:, None] * dirs[ray_ids]).clamp(0.0, 1.0)
        sigma, rgb = self.field(pts, dirs[ray_ids])
        out = composite(sigma, rgb, deltas, ts, ray_ids, n, bg)
        loss = F.mse_loss(out["rgb"], target)
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=True)
        if loss.requires_grad:
            loss.backward()
            self.reduce_gradients()
            for opt in self.optimizers:
                opt.step()
        n_samples = int(ray_ids.numel())
        # adapt the batch so each step evaluates about target_samples points
        per_ray = max(n_samples / n, 1.0)
        want = int(cfg.target_samples / per_ray)
        self.n_rays = int(min(cfg.max_rays, max(256, 0.7 * self.n_rays + 0.3 * want)))
        self.step_count += 1
        mse = float(loss.detach())
        return {
            "loss": mse,
            "psnr": -10.0 * math.log10(max(mse, 1e-10)),
            "rays": float(n),
            "samples_per_ray": n_samples / n,
            "occupied": float(self.grid.occupied.float().mean()),
            "lr": cfg.lr * self._lr_factor(),
            "step_seconds": time.perf_counter() - t_start,
        }

    # -- rendering ------------------------------------------------------------------------
    @torch.no_grad()
    def render_rays(self, origins: torch.Tensor, dirs: torch.Tensor) -> dict[str, torch.Tensor]:
        """origins, dirs: [R, 3] in the unit cube -> rgb [R, 3], opacity [R], depth [R],
        median_depth [R]."""
        outs: dict[str, list] = {"rgb": [], "opacity": [], "depth": [], "median_depth": []}
        for o, d in zip(origins.split(self.config.eval_chunk), dirs.split(self.config.eval_chunk),
                        strict=True):
            ray_ids, ts, deltas = march(o, d, self.grid, self.step_size)
            pts = (o[ray_ids] + ts[:, None] * d[ray_ids]).clamp(0.0, 1.0)
            if ray_ids.numel():
                sigma, rgb = self.field(pts, d[ray_ids])
            else:
                sigma, rgb = torch.zeros(0, device=o.device), torch.zeros(0, 3, device=o.device)
            r = composite(sigma, rgb, deltas, ts, ray_ids, o.shape[0], self.bg_tensor())
            for key in outs:
                outs[key].append(r[key])
        return {k: torch.cat(v) for k, v in outs.items()}

    @torch.no_grad()
    def extract_mesh(self, resolution: int, carve: bool = False) -> dict[str, np.ndarray]:
        """Coloured mesh (world coordinates) of the density level set ``mesh_threshold``.

        With ``carve`` (exports), space the training views see through is emptied and space
        behind the surface in every view is filled first (see extract/carving.py), which
        removes inner shells and floaters.
        """
        cfg: NerfConfig = self.config
        lo, hi = (b.cpu().numpy() for b in self.grid.bounds())
        pad = 1.0 / self.grid.res
        lo, hi = np.clip(lo - pad, 0, 1), np.clip(hi + pad, 0, 1)
        dilated = dilate(self.grid.occupied, self.grid.res)

        def inside(p: torch.Tensor) -> torch.Tensor:
            return dilated[self.grid.cell_index(p.to(self.device))].cpu()

        def density(p: torch.Tensor) -> torch.Tensor:
            return self._density_unit(p.to(self.device)).cpu()

        vol = sample_grid(density, lo, hi, resolution, mask_fn=inside)
        if carve and self.scene is not None:
            vol = self._carve(vol, lo, hi)
        vol = solidify(vol, cfg.mesh_threshold)
        verts, faces = marching_cubes(vol, cfg.mesh_threshold, lo, hi)
        if len(verts) == 0:
            return {"vertices": np.zeros((0, 3), np.float32), "faces": np.zeros((0, 3), np.int64),
                    "colors": np.zeros((0, 3), np.float32)}
        normals = vertex_normals(verts, faces)
        colors = []
        vt, nt = torch.from_numpy(verts).to(self.device), torch.from_numpy(normals).to(self.device)
        for p, nrm in zip(vt.split(65536), nt.split(65536), strict=True):
            # colour just inside the surface (where the density, and so the colour, was
            # trained), seen from outside against the normal
            _, geo = self.field.density((p - nrm * 0.5 / resolution).clamp(0, 1))
            colors.append(self.field.color(geo, -nrm))
        col = torch.cat(colors).clamp(0, 1).cpu().numpy()
        world = self.normalization.to_world(verts).astype(np.float32)
        return {"vertices": world, "faces": faces, "colors": col.astype(np.float32)}

    def _carve(self, vol: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """vol: [R, R, R] density on the grid spanning [lo, hi] (unit cube) -> carved copy."""
        level = self.config.mesh_threshold
        res = vol.shape[0]
        rc = min(res, 128)
        axes = [np.linspace(lo[i], hi[i], rc) for i in range(3)]
        pts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
        c2w, k, depth, alpha = self.depth_maps()
        margin = 2.0 * float(np.max(hi - lo)) / (rc - 1)
        free, solid = visibility(pts, c2w, k, depth, alpha, margin)
        pick = np.round(np.arange(res) * (rc - 1) / max(res - 1, 1)).astype(np.int64)
        free = free.reshape(rc, rc, rc)[np.ix_(pick, pick, pick)]
        solid = solid.reshape(rc, rc, rc)[np.ix_(pick, pick, pick)]
        out = vol.copy()
        out[free] = np.minimum(out[free], 0.5 * level)
        out[solid] = np.maximum(out[solid], 2.0 * level)
        return out

    def snapshot(self, kind: str, quality: str = "low") -> dict[str, np.ndarray] | None:
        cfg: NerfConfig = self.config
        if kind == "mesh":
            if quality == "low":
                return self.extract_mesh(cfg.preview_resolution)
            return self.extract_mesh(cfg.mesh_resolution, carve=True)
        if kind == "points":
            centers = self.grid.cell_centers()[self.grid.occupied].cpu().numpy()
            return {"positions": self.normalization.to_world(centers).astype(np.float32)}
        if kind == "image":
            return self.test_image_snapshot(quality)
        return None

    def export(self, out_dir: Path) -> dict[str, str]:
        out_dir = Path(out_dir)
        mesh = self.extract_mesh(self.config.mesh_resolution, carve=True)
        verts, faces, colors = decimate(mesh["vertices"], mesh["faces"], mesh["colors"],
                                        self.config.mesh_max_faces)
        path = write_mesh(out_dir / "mesh.ply", verts, faces, colors)
        return {"mesh": str(path)}
