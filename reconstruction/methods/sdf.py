"""Neural signed-distance surfaces (NeuS with Neuralangelo's hash-grid schedule), CPU-first.

The field is a hash-grid SDF with a colour network (``fields/sdf.py``). Rays are rendered
with **NeuS's logistic conversion** in its exact discrete form: each ray section between
two consecutive samples gets ``alpha = (Phi_s(f_start) - Phi_s(f_end)) / Phi_s(f_start)``
from the signed distances at its two ends. We chose NeuS over VolSDF's Laplace CDF because
this form needs no gradient and no per-ray error-bounded resampling to be unbiased: the
same fixed-step samples that an occupancy grid keeps are enough, and neighbouring sections
share their end points, so a ray costs about one field evaluation per sample.

- Eikonal regularisation on a subset of the ray samples, with Neuralangelo's numerical
  (tetrahedral) gradients; their step follows the finest active hash level. Numerical
  normals cost four forward evaluations and one backward through the fused C kernel;
  analytic ones would need second derivatives of the grid, which that kernel does not have.
- Coarse to fine (Neuralangelo): training starts with the coarsest hash levels and switches
  the finer ones on over the first part of the budget.
- Empty space: an occupancy grid (``rendering/occupancy.py``) starts as the visual hull when
  the capture has masks, and after a warm-up keeps only cells near the zero level set, so
  samples concentrate in a shell around the surface as the surface sharpens.
- Background: with masks, a mask loss (BCE of the rendered opacity) and a free-space loss
  (signed distance >= 0 along rays through background pixels) keep the surface inside the
  silhouettes; if the images were alpha-composited (NeRF-synthetic, the demo) training
  composites on random colours, otherwise (DTU) the colour loss counts only masked pixels.
  Without masks, the capture's background colour (white or black) fills the empty rays.
- Mesh: marching cubes (scikit-image) on the SDF inside the object's bounds, the largest
  connected piece, vertex colours from the colour network seen along the normal, decimated
  to a face budget (fast-simplification), written in the input's world coordinates.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from reconstruction.data.scene import Scene
from reconstruction.encoding.cpu_kernel import HashGridAdam
from reconstruction.extract.marching_cubes import (
    keep_largest_component,
    marching_cubes,
    sample_grid,
)
from reconstruction.extract.mesh_io import decimate, write_mesh
from reconstruction.fields.radiance import grid_config
from reconstruction.fields.sdf import SDFField, neus_alpha
from reconstruction.methods.base import RayFieldMethod, register
from reconstruction.rendering.occupancy import OccupancyGrid, dilate, march
from reconstruction.rendering.volume import composite


@dataclass
class SdfConfig:
    """Settings of the signed-distance surface method."""

    seed: int = 0
    """Random seed (same seed and settings: the same training)."""
    lr: float = 1e-2
    """Adam learning rate after the warm-up."""
    lr_final: float = 1e-3
    """Learning rate at the end of the budget (exponential decay)."""
    warmup_steps: int = 50
    """Steps over which the learning rate ramps up from zero."""
    target_samples: int = 32768
    """Ray samples per step; the ray batch adapts to it."""
    max_rays: int = 4096
    """Upper bound on rays per step."""
    march_steps: int = 512
    """Samples per unit-cube length along a ray (step = 1 / march_steps)."""
    occupancy_resolution: int = 64
    """Cells per side of the occupancy grid."""
    occupancy_interval: int = 16
    """Steps between occupancy-grid refreshes."""
    occupancy_warmup: int = 100
    """Steps before the occupancy grid keeps only the shell around the surface."""
    shell_cells: float = 1.5
    """Half-width of the kept shell in occupancy cells (plus 6 / s of the sharpness s)."""
    eikonal_weight: float = 0.1
    """Weight of the eikonal loss (|grad f| - 1)^2."""
    eikonal_points: int = 4096
    """Ray samples per step on which the eikonal loss is evaluated."""
    curvature_weight: float = 0.0
    """Weight of Neuralangelo's curvature loss (mean |Laplacian of f|); 0 disables it."""
    mask_weight: float = 0.1
    """Weight of the mask loss (binary cross-entropy of opacity) when the capture has masks."""
    free_space_weight: float = 1.0
    """Weight of the free-space loss: mean of max(0, -f) over the samples of rays through
    background pixels of the masks (every point such a ray crosses is outside the object)."""
    random_background: bool = True
    """Train on random background colours when the images were composited from alpha."""
    n_levels: int = 12
    """Hash-grid levels."""
    start_levels: int = 4
    """Hash levels active at the start (coarse to fine)."""
    levels_done_at: float = 0.5
    """Fraction of the budget after which every hash level is active."""
    n_features_per_level: int = 2
    """Features per hash-grid level."""
    log2_hashmap_size: int = 17
    """log2 of the hash-table size per level."""
    base_resolution: int = 16
    """Coarsest hash-grid resolution."""
    finest_resolution: int = 512
    """Finest hash-grid resolution."""
    hidden: int = 64
    """MLP width."""
    init_s: float = 20.0
    """Initial sharpness s of the SDF-to-opacity conversion (learnt; 1/s is its width)."""
    grid_backend: str = "auto"
    """Hash-grid implementation: auto, cpu (fused C kernel), torch, reference, tcnn (CUDA)."""
    mesh_resolution: int = 256
    """Marching-cubes grid (along the longest side) for the exported mesh."""
    preview_resolution: int = 64
    """Marching-cubes grid for live mesh snapshots."""
    mesh_largest_component: bool = True
    """Keep only the largest connected piece of the exported mesh."""
    mesh_max_faces: int = 400_000
    """Exported meshes are decimated to at most this many faces (0: keep all)."""
    eval_chunk: int = 8192
    """Rays per chunk when rendering whole images."""


@register
class Sdf(RayFieldMethod):
    """NeuS-style signed-distance field on a hash grid; exports a watertight coloured mesh."""

    name = "sdf"
    Config = SdfConfig
    outputs = ("mesh.ply",)
    snapshot_kinds = ("mesh", "points", "image")

    def setup(self, scene: Scene | None, device: torch.device) -> None:
        cfg: SdfConfig = self.config
        self.device = torch.device(device)
        torch.manual_seed(cfg.seed)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.eval_chunk = cfg.eval_chunk
        grid = grid_config(cfg.n_levels, cfg.n_features_per_level, cfg.log2_hashmap_size,
                           cfg.base_resolution, cfg.finest_resolution)
        self.grid = OccupancyGrid(cfg.occupancy_resolution,
                                  generator=torch.Generator().manual_seed(cfg.seed + 1))
        self.step_size = 1.0 / cfg.march_steps
        self.n_rays = 512
        self.scene = scene
        radius = 0.3
        if scene is not None:
            train = self._setup_views(scene)
            if scene.masks is not None:
                self.grid.carve(self.train_c2w.cpu().double().numpy(),
                                self.train_k.cpu().double().numpy(), scene.masks[train])
                if not cfg.random_background:
                    self.train_alpha = None
            radius = self._initial_radius()
        self.grid.to(self.device)
        self.field = SDFField(grid, hidden=cfg.hidden, sphere_radius=radius, init_s=cfg.init_s,
                              backend=cfg.grid_backend).to(self.device)
        self.field.set_active_levels(cfg.start_levels)
        mlp_params = [p for n, p in self.field.named_parameters() if not n.startswith("encoding.")]
        self.grid_optimizer = HashGridAdam(self.field.encoding, lr=cfg.lr, betas=(0.9, 0.99),
                                           eps=1e-15)
        self.mlp_optimizer = torch.optim.Adam(mlp_params, lr=cfg.lr, betas=(0.9, 0.99), eps=1e-15)
        self.optimizers = (self.grid_optimizer, self.mlp_optimizer)

    def _initial_radius(self) -> float:
        """Radius of the starting sphere: it just holds the visual hull (or the bounds)."""
        centers = self.grid.cell_centers()[self.grid.allowed]
        if centers.numel() == 0:
            return 0.3
        r = float((centers - 0.5).norm(dim=-1).max()) + 0.5 / self.grid.res
        return float(min(max(r, 0.1), 0.45))

    # -- schedules ------------------------------------------------------------------------
    def _lr_factor(self) -> float:
        cfg: SdfConfig = self.config
        warm = min(1.0, (self.step_count + 1) / max(1, cfg.warmup_steps))
        return warm * (cfg.lr_final / cfg.lr) ** min(1.0, max(0.0, self.progress))

    def _update_levels(self) -> None:
        cfg: SdfConfig = self.config
        frac = min(1.0, self.progress / max(cfg.levels_done_at, 1e-6))
        self.field.set_active_levels(cfg.start_levels + round(frac * (cfg.n_levels - cfg.start_levels)))

    def _grad_eps(self) -> float:
        """Step of the numerical gradient: one cell of the finest active level."""
        return 1.0 / self.field.finest_active_resolution()

    @torch.no_grad()
    def _update_occupancy(self) -> None:
        """Keep the cells of the visual hull near the zero level set.

        A cell is kept when its centre's |f| is within the shell half-width, or when it lies
        within two cells of a sign change of f (cells outside the hull count as outside).
        The second rule does not trust f to be a distance: however far f is from one, the
        cells holding its zero crossing stay sampled, so training cannot starve itself of
        samples by culling the surface it is still moving.
        """
        cfg: SdfConfig = self.config
        res = self.grid.res
        cand = self.grid.allowed.nonzero()[:, 0]
        if cand.numel() == 0:
            return
        centers = self.grid.cell_centers()[cand]
        f = torch.cat([self.field.sdf(c) for c in centers.split(65536)])
        band = cfg.shell_cells / res + 6.0 / float(self.field.inv_s())
        inside = torch.zeros_like(self.grid.occupied)
        inside[cand] = f < 0
        crossing = (inside & dilate(~inside, res)) | (~inside & dilate(inside, res))
        near = torch.zeros_like(self.grid.occupied)
        near[cand] = f.abs() < band
        self.grid.occupied = (near | dilate(crossing, res)) & self.grid.allowed

    # -- rendering of packed samples -------------------------------------------------------
    def _sections(self, origins: torch.Tensor, dirs: torch.Tensor, ray_ids: torch.Tensor,
                  ts: torch.Tensor, deltas: torch.Tensor):
        """Signed distance at both ends of every ray section and the section colours.

        origins, dirs: [R, 3]; ray_ids, ts, deltas: [S] (sorted by ray, then t).
        Returns sdf_start [S], sdf_end [S], rgb [S, 3], and the start points [S, 3].
        Consecutive sections of one ray share an end point, evaluated once.
        """
        s = ts.numel()
        same = torch.zeros(s, dtype=torch.bool, device=ts.device)
        if s > 1:
            same[:-1] = (ray_ids[1:] == ray_ids[:-1]) & ((ts[1:] - ts[:-1]) < 1.5 * deltas[:-1])
        last = ~same  # sections whose end point is not the next section's start
        o, d = origins[ray_ids], dirs[ray_ids]
        starts = o + (ts - 0.5 * deltas)[:, None] * d
        ends = (o + (ts + 0.5 * deltas)[:, None] * d)[last]
        pts = torch.cat([starts, ends]).clamp(0.0, 1.0)
        f, geo = self.field.sdf_and_features(pts)
        end_idx = torch.arange(1, s + 1, device=ts.device)
        end_idx[last] = s + torch.arange(int(last.sum()), device=ts.device)
        f_start, f_end = f[:s], f[end_idx]
        rgb = self.field.color(0.5 * (geo[:s] + geo[end_idx]), d)
        return f_start, f_end, rgb, starts

    def _composite(self, f_start, f_end, rgb, ray_ids, ts, deltas, n_rays, bg):
        alpha = neus_alpha(f_start, f_end, self.field.inv_s())
        sigma = -torch.log1p(-alpha.clamp(max=1.0 - 1e-6)) / deltas  # the same alpha
        return composite(sigma, rgb, deltas, ts, ray_ids, n_rays, bg)

    # -- training -------------------------------------------------------------------------
    def step(self) -> dict[str, float]:
        cfg: SdfConfig = self.config
        t_start = time.perf_counter()
        self._update_levels()
        if self.step_count >= cfg.occupancy_warmup and self.step_count % cfg.occupancy_interval == 0:
            self._update_occupancy()
        lr = cfg.lr * self._lr_factor()
        for opt in self.optimizers:
            for g in opt.param_groups:
                g["lr"] = lr

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
        f_start, f_end, rgb, starts = self._sections(origins, dirs, ray_ids, ts, deltas)
        out = self._composite(f_start, f_end, rgb, ray_ids, ts, deltas, n, bg)
        err = (out["rgb"] - target).abs().mean(-1)  # [n]
        if "mask" in batch and self.train_alpha is None:
            m = (batch["mask"] > 0.5).float()
            color_loss = (err * m).sum() / m.sum().clamp_min(1.0)
        else:
            color_loss = err.mean()
        loss = color_loss
        metrics: dict[str, float] = {}
        if "mask" in batch and cfg.mask_weight > 0:
            opacity = out["opacity"].clamp(1e-3, 1.0 - 1e-3)
            mask_loss = F.binary_cross_entropy(opacity, (batch["mask"] > 0.5).float())
            loss = loss + cfg.mask_weight * mask_loss
            metrics["mask_loss"] = float(mask_loss.detach())
        n_samples = int(ts.numel())
        if "mask" in batch and cfg.free_space_weight > 0 and n_samples:
            # NeuS renders an inside region as transparent when f grows along the ray, so
            # the opacity alone can match a mask while f < 0 spills past it; the masks say
            # more: a ray through a background pixel meets no object at all
            free = batch["mask"][ray_ids] < 0.5
            if free.any():
                free_loss = F.relu(-f_start[free]).mean()
                loss = loss + cfg.free_space_weight * free_loss
                metrics["free_space_loss"] = float(free_loss.detach())
        if n_samples and cfg.eikonal_weight > 0:
            k = min(cfg.eikonal_points, n_samples)
            pick = torch.randperm(n_samples, generator=g)[:k].to(dev)
            grad, f_mean = self.field.gradient(starts[pick].detach().clamp(0, 1), self._grad_eps())
            eik = ((grad.norm(dim=-1) - 1.0) ** 2).mean()
            loss = loss + cfg.eikonal_weight * eik
            metrics["eikonal"] = float(eik.detach())
            if cfg.curvature_weight > 0:
                # mean of the tetrahedron minus the centre value is eps^2 / 6 * Laplacian
                lap = 6.0 * (f_mean - f_start[pick]) / self._grad_eps() ** 2
                loss = loss + cfg.curvature_weight * lap.abs().mean()
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=True)
        if loss.requires_grad:
            loss.backward()
            for opt in self.optimizers:
                opt.step()
        per_ray = max(n_samples / n, 1.0)
        want = int(cfg.target_samples / per_ray)
        self.n_rays = int(min(cfg.max_rays, max(256, 0.7 * self.n_rays + 0.3 * want)))
        self.step_count += 1
        with torch.no_grad():
            mse = float(((out["rgb"] - target) ** 2).mean())
        metrics.update({
            "loss": float(loss.detach()),
            "psnr": -10.0 * math.log10(max(mse, 1e-10)),
            "rays": float(n),
            "samples_per_ray": n_samples / n,
            "inv_s": float(self.field.inv_s().detach()),
            "levels": float(self.field.active_levels),
            "occupied": float(self.grid.occupied.float().mean()),
            "lr": lr,
            "step_seconds": time.perf_counter() - t_start,
        })
        return metrics

    # -- rendering ------------------------------------------------------------------------
    @torch.no_grad()
    def render_rays(self, origins: torch.Tensor, dirs: torch.Tensor) -> dict[str, torch.Tensor]:
        """origins, dirs: [R, 3] in the unit cube -> rgb [R, 3], opacity [R], depth [R],
        median_depth [R]."""
        ray_ids, ts, deltas = march(origins, dirs, self.grid, self.step_size)
        n = origins.shape[0]
        if ray_ids.numel() == 0:
            z = torch.zeros(n, device=origins.device)
            return {"rgb": self.bg_tensor().expand(n, 3).clone(), "opacity": z, "depth": z,
                    "median_depth": torch.full_like(z, float("inf"))}
        f_start, f_end, rgb, _ = self._sections(origins, dirs, ray_ids, ts, deltas)
        return self._composite(f_start, f_end, rgb, ray_ids, ts, deltas, n, self.bg_tensor())

    # -- outputs --------------------------------------------------------------------------
    def _mesh_box(self) -> tuple[np.ndarray, np.ndarray]:
        """Unit-cube box to mesh: the visual hull's box, inside the capture's bounds."""
        res = self.grid.res
        idx = self.grid.allowed.nonzero()[:, 0].cpu()
        lo, hi = np.zeros(3), np.ones(3)
        if idx.numel():
            ijk = torch.stack([idx // (res * res), (idx // res) % res, idx % res], -1).numpy()
            lo, hi = ijk.min(0) / res - 1.0 / res, (ijk.max(0) + 1) / res + 1.0 / res
        if self.scene is not None and self.normalization is not None:
            b_lo, b_hi = (self.normalization.to_unit(np.asarray(b, float)) for b in self.scene.bounds)
            lo, hi = np.maximum(lo, np.minimum(b_lo, b_hi)), np.minimum(hi, np.maximum(b_lo, b_hi))
        return np.clip(lo, 0.0, 1.0), np.clip(hi, 0.0, 1.0)

    @torch.no_grad()
    def extract_mesh(self, resolution: int, largest_component: bool = False) -> dict[str, np.ndarray]:
        """Coloured mesh (world coordinates) of the zero level set; closed inside the box."""
        lo, hi = self._mesh_box()
        empty = {"vertices": np.zeros((0, 3), np.float32), "faces": np.zeros((0, 3), np.int64),
                 "colors": np.zeros((0, 3), np.float32)}
        if np.any(hi <= lo):
            return empty
        allowed = dilate(self.grid.allowed, self.grid.res)

        def inside(p: torch.Tensor) -> torch.Tensor:
            return allowed[self.grid.cell_index(p.to(self.device))].cpu()

        def sdf(p: torch.Tensor) -> torch.Tensor:
            return self.field.sdf(p.to(self.device)).cpu()

        step = float(np.max(hi - lo)) / max(resolution - 1, 1)
        shape = np.maximum(np.round((hi - lo) / step).astype(int) + 1, 2)
        hi = lo + (shape - 1) * step
        vol = sample_grid(sdf, lo, hi, tuple(int(s) for s in shape), mask_fn=inside, fill=1.0)
        # close the surface at the box: the outermost layer counts as empty space
        for axis in range(3):
            sl = [slice(None)] * 3
            for end in (0, -1):
                sl[axis] = end
                vol[tuple(sl)] = np.maximum(vol[tuple(sl)], step)
        if largest_component:
            vol = keep_largest_component(vol)
        verts, faces = marching_cubes(vol, 0.0, lo, hi, inside_is_greater=False)
        if len(verts) == 0:
            return empty
        colors = []
        eps = 0.5 * step
        for p in torch.from_numpy(verts).to(self.device).split(65536):
            grad, _ = self.field.gradient(p, eps)
            nrm = F.normalize(grad, dim=-1)
            _, geo = self.field.sdf_and_features(p)
            colors.append(self.field.color(geo, -nrm))
        col = torch.cat(colors).clamp(0, 1).cpu().numpy().astype(np.float32)
        world = self.normalization.to_world(verts).astype(np.float32)
        return {"vertices": world, "faces": faces, "colors": col}

    def snapshot(self, kind: str, quality: str = "low") -> dict[str, np.ndarray] | None:
        cfg: SdfConfig = self.config
        if kind == "mesh":
            if quality == "low":
                return self.extract_mesh(cfg.preview_resolution)
            return self.extract_mesh(cfg.mesh_resolution, cfg.mesh_largest_component)
        if kind == "points":
            centers = self.grid.cell_centers()[self.grid.occupied].cpu().numpy()
            return {"positions": self.normalization.to_world(centers).astype(np.float32)}
        if kind == "image":
            return self.test_image_snapshot(quality)
        return None

    def export(self, out_dir: Path) -> dict[str, str]:
        cfg: SdfConfig = self.config
        mesh = self.extract_mesh(cfg.mesh_resolution, cfg.mesh_largest_component)
        verts, faces, colors = decimate(mesh["vertices"], mesh["faces"], mesh["colors"],
                                        cfg.mesh_max_faces)
        path = write_mesh(Path(out_dir) / "mesh.ply", verts, faces, colors)
        return {"mesh": str(path)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.field.set_active_levels(int(self.field.level_mask.sum().item()) // self.field.n_feat)
