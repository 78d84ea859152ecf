"""3D Gaussian Splatting (Kerbl et al. 2023) trained on the CPU.

As in 3DGS: Gaussians (mean, log scale, quaternion, opacity logit, spherical-harmonic
colour up to degree 3, raised during training), initialised from the capture's sparse
points, Adam with per-parameter learning rates (exponentially decaying position rate scaled
by the scene extent), L1 + 0.2 D-SSIM on whole training views, adaptive density control
(clone small / split large Gaussians with large view-space gradients, prune transparent or
huge ones, periodic opacity reset) in :class:`DensifyStrategy`.

Changed for the CPU: the rasteriser is reconstruction/rendering/gaussian_raster.py (plain
PyTorch autograd; gsplat on CUDA); schedules are fractions of the training budget instead of
fixed iteration counts (a CPU run sees a few thousand steps, not 30k); the number of
Gaussians is capped; without sparse points the cloud starts inside the visual hull of the
masks (or the scene bounds) with colours taken from the views. Training happens in the unit
cube; splats.ply is written in the input's world coordinates.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from reconstruction.data.scene import Cameras, Normalization, Scene
from reconstruction.methods.base import Method, register
from reconstruction.rendering.gaussian_raster import quat_to_rotmat, rasterize

SH_C0 = 0.28209479177387814
SH_C1 = 0.4886025119029199
SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792,
         0.5462742152960396)
SH_C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
         -0.4570457994644658, 1.445305721320277, -0.5900435899266435)
PARAMS = ("means", "log_scales", "quats", "opacity_logits", "sh_dc", "sh_rest")


def eval_sh(degree: int, sh: Tensor, dirs: Tensor) -> Tensor:
    """sh: [N, 16, 3] coefficients, dirs: [N, 3] unit view directions -> [N, 3] (3DGS order)."""
    out = SH_C0 * sh[:, 0]
    if degree < 1:
        return out
    x, y, z = (dirs[:, i:i + 1] for i in range(3))
    out = out - SH_C1 * y * sh[:, 1] + SH_C1 * z * sh[:, 2] - SH_C1 * x * sh[:, 3]
    if degree < 2:
        return out
    xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
    out = (out + SH_C2[0] * xy * sh[:, 4] + SH_C2[1] * yz * sh[:, 5]
           + SH_C2[2] * (2 * zz - xx - yy) * sh[:, 6] + SH_C2[3] * xz * sh[:, 7]
           + SH_C2[4] * (xx - yy) * sh[:, 8])
    if degree < 3:
        return out
    return (out + SH_C3[0] * y * (3 * xx - yy) * sh[:, 9] + SH_C3[1] * xy * z * sh[:, 10]
            + SH_C3[2] * y * (4 * zz - xx - yy) * sh[:, 11]
            + SH_C3[3] * z * (2 * zz - 3 * xx - 3 * yy) * sh[:, 12]
            + SH_C3[4] * x * (4 * zz - xx - yy) * sh[:, 13] + SH_C3[5] * z * (xx - yy) * sh[:, 14]
            + SH_C3[6] * x * (xx - 3 * yy) * sh[:, 15])


def ssim(a: Tensor, b: Tensor) -> Tensor:  # a, b: [H, W, 3] -> scalar mean SSIM (11 px Gaussian)
    x, y = a.permute(2, 0, 1)[None], b.permute(2, 0, 1)[None]
    g = torch.exp(-((torch.arange(11, dtype=a.dtype, device=a.device) - 5) ** 2) / (2 * 1.5**2))
    g = g / g.sum()
    win = (g[:, None] * g[None]).expand(3, 1, 11, 11).contiguous()

    def blur(t: Tensor) -> Tensor:
        return F.conv2d(t, win, padding=5, groups=3)

    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return s.mean()


@dataclass
class GaussianConfig:
    """Settings of the Gaussian-splatting method."""

    seed: int = 0
    """Random seed (same seed and settings: the same training)."""
    init_points: int = 6000
    """Gaussians to start with when the capture has no sparse points (random, inside the visual hull)."""
    init_opacity: float = 0.1
    """Opacity of new Gaussians."""
    max_gaussians: int = 60000
    """Cap on the number of Gaussians (densification stops growing there)."""
    sh_degree: int = 3
    """Highest spherical-harmonics degree of the colours."""
    sh_interval: float = 0.1
    """Fraction of the budget between raising the SH degree by one."""
    lr_means: float = 1.6e-4
    """Position learning rate at the start (times the scene extent), as in 3DGS."""
    lr_means_final: float = 1.6e-6
    """Position learning rate at the end of the budget (exponential decay)."""
    lr_scales: float = 5e-3
    """Learning rate of the log scales."""
    lr_quats: float = 1e-3
    """Learning rate of the rotations."""
    lr_opacity: float = 5e-2
    """Learning rate of the opacity logits."""
    lr_sh_dc: float = 2.5e-3
    """Learning rate of the base colour (SH degree 0)."""
    lr_sh_rest: float = 1.25e-4
    """Learning rate of the higher SH bands (3DGS: the base rate / 20)."""
    lr_scale_factor: float = 4.0
    """Multiplier on every learning rate (CPU runs take far fewer steps than 3DGS's 30k)."""
    ssim_weight: float = 0.2
    """Weight of D-SSIM in the loss (the rest is L1)."""
    refine_every: int = 50
    """Steps between densification passes."""
    refine_start: int = 100
    """Steps before the first densification."""
    refine_stop: float = 0.6
    """Fraction of the budget after which densification stops."""
    grad_threshold: float = 0.0002
    """View-space (NDC) positional gradient above which a Gaussian is cloned or split."""
    dense_percent: float = 0.01
    """Gaussians larger than this fraction of the scene extent are split, smaller ones cloned."""
    prune_opacity: float = 0.005
    """Gaussians below this opacity are removed."""
    prune_scale: float = 0.1
    """Gaussians larger than this fraction of the scene extent are removed."""
    reset_every: float = 0.25
    """Fraction of the budget between opacity resets (only while densifying; 0: never)."""
    preview_size: int = 96
    """Longest side of the live preview image."""


class DensifyStrategy:
    """3DGS adaptive density control: statistics of the view-space gradient, then clone,
    split, prune and opacity reset on a schedule. Works on the method's parameter dict and
    its Adam moments (rows are added or removed in both)."""

    def __init__(self, cfg: GaussianConfig, extent: float):
        self.cfg = cfg
        self.extent = extent
        self.grad_accum: Tensor | None = None  # [N]
        self.count: Tensor | None = None  # [N]
        self.last_reset = 0.0

    def observe(self, means2d_grad: Tensor, radii: Tensor, width: int, height: int) -> None:
        """means2d_grad: [N, 2] pixel-space gradient, radii: [N] (0 = not seen this step)."""
        n = radii.shape[0]
        if self.grad_accum is None or self.grad_accum.shape[0] != n:
            self.grad_accum = torch.zeros(n, device=radii.device)
            self.count = torch.zeros(n, device=radii.device)
        seen = radii > 0
        g = means2d_grad * torch.tensor([0.5 * width, 0.5 * height], device=radii.device)
        self.grad_accum[seen] += g[seen].norm(dim=-1).float()
        self.count[seen] += 1

    @torch.no_grad()
    def step(self, m: Gaussians, step: int, progress: float) -> dict[str, int]:
        cfg = self.cfg
        if step < cfg.refine_start or progress > cfg.refine_stop or step % cfg.refine_every:
            return {}
        p = m.params
        n0 = p["means"].shape[0]
        avg = self.grad_accum / self.count.clamp_min(1) if self.grad_accum is not None else \
            torch.zeros(n0)
        big_grad = avg > cfg.grad_threshold
        size = p["log_scales"].exp().amax(-1)
        small = size <= cfg.dense_percent * self.extent
        room = cfg.max_gaussians - n0
        clone = big_grad & small
        split = big_grad & ~small
        if room <= 0:
            clone[:] = False
            split[:] = False
        else:  # keep the largest gradients when the cap would be passed
            want = int(clone.sum()) + int(split.sum())
            if want > room:
                thr = torch.topk(avg[big_grad], room).values.min()
                clone &= avg >= thr
                split &= avg >= thr
        # clone: copies in place (the gradient step then pulls them apart)
        new = {k: v[clone] for k, v in p.items()}
        # split: two samples from the Gaussian, scales / 1.6
        sel = torch.nonzero(split).squeeze(1)
        if sel.numel():
            rot = quat_to_rotmat(p["quats"][sel])
            sc = p["log_scales"][sel].exp()
            for _ in range(2):
                offs = (rot @ (torch.randn(sel.numel(), 3, generator=m.gen).to(sc) * sc)[..., None])[..., 0]
                part = {k: v[sel] for k, v in p.items()}
                part["means"] = part["means"] + offs
                part["log_scales"] = torch.log(sc / 1.6)
                for k in p:
                    new[k] = torch.cat([new[k], part[k]])
        keep = ~split
        op = torch.sigmoid(p["opacity_logits"])
        prune = (op < cfg.prune_opacity) | (size > cfg.prune_scale * self.extent)
        keep &= ~prune
        n_new = new["means"].shape[0]
        m.replace(keep, new)
        self.grad_accum = None
        self.count = None
        out = {"cloned": int(clone.sum()), "split": int(split.sum()), "pruned": int((~keep).sum()) - int(split.sum())}
        if cfg.reset_every > 0 and progress - self.last_reset >= cfg.reset_every:
            self.last_reset = progress
            lim = math.log(0.01 / 0.99)
            p2 = m.params
            p2["opacity_logits"].data.clamp_(max=lim)
            m.adam_m["opacity_logits"].zero_()
            m.adam_v["opacity_logits"].zero_()
            out["reset"] = 1
        out["added"] = n_new
        return out


@register
class Gaussians(Method):
    """3D Gaussian splatting (3DGS) rasterised on the CPU; exports splats.ply."""

    name = "gaussian"
    Config = GaussianConfig
    outputs = ("splats.ply",)
    snapshot_kinds = ("splats", "image")

    # -- setup ----------------------------------------------------------------------------
    def setup(self, scene: Scene | None, device: torch.device) -> None:
        cfg: GaussianConfig = self.config
        self.device = torch.device(device)
        torch.manual_seed(cfg.seed)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.scene = scene
        self.sh_active = 0
        self.extent = 1.0
        self.params: dict[str, Tensor] = {}
        self.adam_m: dict[str, Tensor] = {}
        self.adam_v: dict[str, Tensor] = {}
        self.adam_t = 0
        if scene is None:
            self._set_params(torch.zeros(0, 3), torch.zeros(0, 3), torch.zeros(0, 3))
            self.strategy = DensifyStrategy(cfg, self.extent)
            return
        self.normalization = scene.normalization
        self.image_size = (scene.width, scene.height)
        self.background = np.asarray(scene.background, np.float32)
        train = scene.split.get("train")
        if train is None or len(train) == 0:
            train = np.arange(len(scene))
        self.train_idx = np.asarray(train, np.int64)
        cams = scene.cameras.subset(self.train_idx)
        self.train_c2w = torch.tensor(scene.normalization.c2w_to_unit(cams.c2w), dtype=torch.float32)
        self.train_k = np.stack([cams.fx, cams.fy, cams.cx, cams.cy], 1)
        self.train_rgb = torch.from_numpy(scene.images[self.train_idx]).float().div_(255.0)
        test = scene.split.get("test")
        if test is None or len(test) == 0:
            test = scene.split.get("val", np.zeros(0, np.int64))
        self.test_idx = np.asarray(test, np.int64)
        centers = self.train_c2w[:, :3, 3].numpy()
        # 3DGS: the extent is the radius of the camera centres around their mean, x 1.1
        self.extent = float(np.linalg.norm(centers - centers.mean(0), axis=1).max() * 1.1)
        pts, cols = self._init_cloud(scene)
        from scipy.spatial import cKDTree

        d, _ = cKDTree(pts).query(pts, k=min(4, len(pts)))
        d = d[:, 1:] if d.ndim == 2 and d.shape[1] > 1 else np.full((len(pts), 1), 0.01)
        dist = np.sqrt(np.maximum((d**2).mean(1), 1e-7))
        self._set_params(torch.tensor(pts, dtype=torch.float32),
                         torch.tensor(cols, dtype=torch.float32),
                         torch.tensor(np.log(dist), dtype=torch.float32)[:, None].repeat(1, 3))
        self.strategy = DensifyStrategy(cfg, self.extent)

    def _init_cloud(self, scene: Scene) -> tuple[np.ndarray, np.ndarray]:
        """Start points (unit cube) and their colours in [0, 1]."""
        cfg: GaussianConfig = self.config
        if scene.points is not None and len(scene.points) >= 4:
            pts = scene.normalization.to_unit(scene.points)
            cols = (scene.point_colors / 255.0 if scene.point_colors is not None
                    else np.full((len(pts), 3), 0.5))
            return pts.astype(np.float32), np.asarray(cols, np.float32)
        rng = np.random.default_rng(cfg.seed)
        lo, hi = (scene.normalization.to_unit(b) for b in scene.bounds)
        lo, hi = np.clip(np.minimum(lo, hi), 0, 1), np.clip(np.maximum(lo, hi), 0, 1)
        cams = scene.cameras.subset(self.train_idx)
        kept: list[np.ndarray] = []
        for _ in range(20):
            cand = lo + rng.random((cfg.init_points * 4, 3)) * (hi - lo)
            if scene.masks is not None:  # inside the visual hull: in every view's mask
                uv, depth = cams.project(scene.normalization.to_world(cand))
                u = np.floor(uv[..., 0]).astype(np.int64)
                v = np.floor(uv[..., 1]).astype(np.int64)
                inside = (u >= 0) & (v >= 0) & (u < scene.width) & (v < scene.height) & (depth > 0)
                masks = scene.masks[self.train_idx]
                ok = np.ones(len(cand), bool)
                for i in range(len(cams)):
                    hit = np.zeros(len(cand), bool)
                    s = inside[i]
                    hit[s] = masks[i, v[i, s], u[i, s]] > 127
                    ok &= hit | ~inside[i]
                cand = cand[ok]
            kept.append(cand)
            if sum(len(k) for k in kept) >= cfg.init_points:
                break
        pts = np.concatenate(kept)[: cfg.init_points]
        if len(pts) < 4:
            pts = lo + rng.random((cfg.init_points, 3)) * (hi - lo)
        # colour: the mean over the views of the pixels each point projects to
        uv, depth = cams.project(scene.normalization.to_world(pts))
        u = np.clip(np.floor(uv[..., 0]), 0, scene.width - 1).astype(np.int64)
        v = np.clip(np.floor(uv[..., 1]), 0, scene.height - 1).astype(np.int64)
        imgs = scene.images[self.train_idx]
        cols = np.stack([imgs[i, v[i], u[i]] for i in range(len(cams))]).mean(0) / 255.0
        return pts.astype(np.float32), cols.astype(np.float32)

    def _set_params(self, means: Tensor, colors: Tensor, log_scales: Tensor) -> None:
        """means: [N, 3] unit cube, colors: [N, 3] in [0, 1], log_scales: [N, 3]."""
        cfg: GaussianConfig = self.config
        n = means.shape[0]
        dev = self.device
        quats = torch.zeros(n, 4)
        quats[:, 0] = 1.0
        p0 = cfg.init_opacity
        self.params = {
            "means": means, "log_scales": log_scales, "quats": quats,
            "opacity_logits": torch.full((n,), math.log(p0 / (1 - p0))),
            "sh_dc": (colors - 0.5) / SH_C0,
            "sh_rest": torch.zeros(n, (cfg.sh_degree + 1) ** 2 - 1, 3),
        }
        self.params = {k: v.to(dev).float().contiguous().requires_grad_() for k, v in self.params.items()}
        self.adam_m = {k: torch.zeros_like(v) for k, v in self.params.items()}
        self.adam_v = {k: torch.zeros_like(v) for k, v in self.params.items()}

    def replace(self, keep: Tensor, new: dict[str, Tensor]) -> None:
        """Keep the rows ``keep`` [N] bool and append the rows of ``new`` (zero Adam moments)."""
        for k in PARAMS:
            old = self.params[k].detach()
            self.params[k] = torch.cat([old[keep], new[k].detach()]).contiguous().requires_grad_()
            for st in (self.adam_m, self.adam_v):
                st[k] = torch.cat([st[k][keep], torch.zeros_like(new[k])])

    # -- training -------------------------------------------------------------------------
    def _lrs(self) -> dict[str, float]:
        cfg: GaussianConfig = self.config
        f = cfg.lr_scale_factor
        t = min(1.0, max(0.0, self.progress))
        lr_means = cfg.lr_means * (cfg.lr_means_final / cfg.lr_means) ** t * self.extent
        return {"means": lr_means * f, "log_scales": cfg.lr_scales * f, "quats": cfg.lr_quats * f,
                "opacity_logits": cfg.lr_opacity * f, "sh_dc": cfg.lr_sh_dc * f,
                "sh_rest": cfg.lr_sh_rest * f}

    @torch.no_grad()
    def _adam(self) -> None:
        b1, b2, eps = 0.9, 0.999, 1e-15
        self.adam_t += 1
        c1, c2 = 1 - b1**self.adam_t, 1 - b2**self.adam_t
        for k, lr in self._lrs().items():
            p = self.params[k]
            if p.grad is None:
                continue
            g = p.grad
            self.adam_m[k].mul_(b1).add_(g, alpha=1 - b1)
            self.adam_v[k].mul_(b2).addcmul_(g, g, value=1 - b2)
            p.sub_(lr * (self.adam_m[k] / c1) / ((self.adam_v[k] / c2).sqrt() + eps))
            p.grad = None

    def _render_unit(self, c2w: Tensor, k, width: int, height: int,
                     bg: Tensor | None = None) -> dict[str, Tensor]:
        """c2w: [4, 4] unit-cube pose, k: (fx, fy, cx, cy) -> rasteriser outputs."""
        p = self.params
        cam = c2w[:3, 3].to(self.device)
        dirs = F.normalize(p["means"] - cam, dim=-1)
        sh = torch.cat([p["sh_dc"][:, None], p["sh_rest"]], 1)
        colors = (eval_sh(self.sh_active, sh, dirs) + 0.5).clamp_min(0.0)
        if bg is None:
            bg = torch.tensor(np.asarray(self.background, np.float32), device=self.device)
        fx, fy, cx, cy = (float(x) for x in k)
        return rasterize(p["means"], p["quats"], p["log_scales"], colors,
                         torch.sigmoid(p["opacity_logits"]), c2w.to(self.device), fx, fy, cx, cy,
                         width, height, bg)

    def step(self) -> dict[str, float]:
        cfg: GaussianConfig = self.config
        t0 = time.perf_counter()
        self.sh_active = min(cfg.sh_degree, int(self.progress / max(cfg.sh_interval, 1e-9)))
        i = int(torch.randint(len(self.train_idx), (1,), generator=self.gen))
        h, w = self.train_rgb.shape[1:3]
        out = self._render_unit(self.train_c2w[i], self.train_k[i], w, h)
        target = self.train_rgb[i].to(self.device)
        l1 = (out["rgb"] - target).abs().mean()
        loss = (1 - cfg.ssim_weight) * l1 + cfg.ssim_weight * (1 - ssim(out["rgb"], target))
        out["means2d"].retain_grad()
        loss.backward()
        if out["means2d"].grad is not None:
            self.strategy.observe(out["means2d"].grad, out["radii"], w, h)
        self._adam()
        self.step_count += 1
        info = self.strategy.step(self, self.step_count, self.progress)
        mse = float(((out["rgb"].detach() - target) ** 2).mean())
        return {"loss": float(loss.detach()), "l1": float(l1.detach()),
                "psnr": -10.0 * math.log10(max(mse, 1e-10)),
                "gaussians": float(self.params["means"].shape[0]), "sh_degree": float(self.sh_active),
                **{k: float(v) for k, v in info.items()},
                "step_seconds": time.perf_counter() - t0}

    # -- rendering ------------------------------------------------------------------------
    @torch.no_grad()
    def render_views(self, cameras: Cameras) -> dict[str, np.ndarray]:
        """World cameras -> rgb [V, H, W, 3], alpha [V, H, W], depth [V, H, W] (world units,
        along the view axis)."""
        assert self.normalization is not None
        c2w = torch.tensor(self.normalization.c2w_to_unit(cameras.c2w), dtype=torch.float32)
        outs: dict[str, list] = {"rgb": [], "alpha": [], "depth": []}
        for i in range(len(cameras)):
            k = (cameras.fx[i], cameras.fy[i], cameras.cx[i], cameras.cy[i])
            r = self._render_unit(c2w[i], k, cameras.width, cameras.height)
            outs["rgb"].append(r["rgb"].clamp(0, 1).cpu().numpy())
            outs["alpha"].append(r["alpha"].cpu().numpy())
            outs["depth"].append(r["depth"].cpu().numpy() / self.normalization.scale)
        shape = (0, cameras.height, cameras.width)
        return {k: np.stack(v).astype(np.float32) if v else np.zeros(shape + ((3,) if k == "rgb" else ()), np.float32)
                for k, v in outs.items()}

    def render(self, cameras: Cameras) -> np.ndarray:
        return self.render_views(cameras)["rgb"]

    def evaluate(self, max_views: int | None = None) -> dict[str, float]:
        """PSNR over the whole test (or val) images."""
        if getattr(self, "scene", None) is None or len(self.test_idx) == 0:
            return {}
        idx = self.test_idx if max_views is None else self.test_idx[:max_views]
        pred = self.render(self.scene.cameras.subset(idx))
        gt = self.scene.images[idx].astype(np.float32) / 255.0
        mse = ((pred - gt) ** 2).reshape(len(idx), -1).mean(1)
        psnr = -10 * np.log10(np.maximum(mse, 1e-10))
        return {"test_psnr": float(psnr.mean()), "test_views": int(len(idx)),
                "test_psnr_region": "image", "gaussians": int(self.params["means"].shape[0])}

    # -- outputs --------------------------------------------------------------------------
    def world_splats(self) -> dict[str, np.ndarray]:
        """The splats in world coordinates, in the 3DGS PLY's terms (see extract/splat_io.py)."""
        assert self.normalization is not None
        p = {k: v.detach().cpu().numpy() for k, v in self.params.items()}
        return {"means": self.normalization.to_world(p["means"]).astype(np.float32),
                "sh_dc": p["sh_dc"], "sh_rest": p["sh_rest"], "opacity_logits": p["opacity_logits"],
                "log_scales": (p["log_scales"] - math.log(self.normalization.scale)).astype(np.float32),
                "quats": p["quats"] / np.maximum(np.linalg.norm(p["quats"], axis=1, keepdims=True), 1e-12)}

    def snapshot(self, kind: str, quality: str = "low") -> dict[str, np.ndarray] | None:
        if kind == "splats":
            s = self.world_splats()
            return {"positions": s["means"].astype(np.float32),
                    "colors": np.clip(s["sh_dc"] * SH_C0 + 0.5, 0, 1).astype(np.float32),
                    "scales": np.exp(s["log_scales"]).mean(1).astype(np.float32),
                    "opacity": (1 / (1 + np.exp(-s["opacity_logits"]))).astype(np.float32)}
        if kind == "image":
            if getattr(self, "scene", None) is None or not len(self.scene):
                return None
            idx = self.test_idx[:1] if len(self.test_idx) else np.array([0])
            cams = self.scene.cameras.subset(idx)
            if quality == "low":
                cams = cams.scaled(min(1.0, self.config.preview_size / max(cams.width, cams.height)))
            return {"image": self.render(cams)[0]}
        if kind == "mesh":  # not streamed while training (see snapshot_kinds); for exports
            from reconstruction.extract.splat_mesh import splat_mesh

            return splat_mesh(self.world_splats(), resolution=128 if quality == "low" else 256)
        return None

    def export(self, out_dir: Path) -> dict[str, str]:
        from reconstruction.extract.splat_io import write_splats_ply

        path = write_splats_ply(Path(out_dir) / "splats.ply", **self.world_splats())
        return {"splats": str(path)}

    def state_dict(self) -> dict[str, Any]:
        assert self.normalization is not None
        return {
            "params": {k: v.detach().cpu().clone() for k, v in self.params.items()},
            "adam_m": {k: v.cpu().clone() for k, v in self.adam_m.items()},
            "adam_v": {k: v.cpu().clone() for k, v in self.adam_v.items()},
            "adam_t": self.adam_t, "step": self.step_count, "sh_active": self.sh_active,
            "extent": self.extent, "rng": self.gen.get_state(),
            "config": dataclasses.asdict(self.config),
            "normalization": {"center": list(self.normalization.center),
                              "scale": self.normalization.scale},
            "image_size": list(self.image_size),
            "background": [float(x) for x in self.background],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        dev = self.device
        self.params = {k: state["params"][k].to(dev).float().contiguous().requires_grad_() for k in PARAMS}
        self.adam_m = {k: v.to(dev) for k, v in state.get("adam_m", {}).items()} or \
            {k: torch.zeros_like(v) for k, v in self.params.items()}
        self.adam_v = {k: v.to(dev) for k, v in state.get("adam_v", {}).items()} or \
            {k: torch.zeros_like(v) for k, v in self.params.items()}
        self.adam_t = int(state.get("adam_t", 0))
        self.step_count = int(state.get("step", 0))
        self.sh_active = int(state.get("sh_active", self.config.sh_degree))
        self.extent = float(state.get("extent", 1.0))
        self.strategy = DensifyStrategy(self.config, self.extent)
        if "rng" in state:
            self.gen.set_state(state["rng"])
        nz = state["normalization"]
        self.normalization = Normalization(tuple(nz["center"]), float(nz["scale"]))
        self.image_size = tuple(state["image_size"])
        self.background = np.asarray(state["background"], np.float32)

    @classmethod
    def from_ply(cls, path: str | Path, device: str = "cpu",
                 background: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> Gaussians:
        """A render-only method from a splats.ply (ours or another tool's), world = unit frame."""
        from reconstruction.extract.splat_io import read_splats_ply

        s = read_splats_ply(path)
        m = cls()
        m.setup(None, torch.device(device))
        n, k = s["sh_rest"].shape[:2]
        deg = int(round(math.sqrt(k + 1))) - 1
        rest = np.zeros((n, (m.config.sh_degree + 1) ** 2 - 1, 3), np.float32)
        kk = min(k, rest.shape[1])
        rest[:, :kk] = s["sh_rest"][:, :kk]
        m.params = {"means": s["means"], "log_scales": s["log_scales"], "quats": s["quats"],
                    "opacity_logits": s["opacity_logits"], "sh_dc": s["sh_dc"], "sh_rest": rest}
        m.params = {k2: torch.from_numpy(np.ascontiguousarray(v)).float().to(m.device)
                    for k2, v in m.params.items()}
        m.sh_active = min(deg, m.config.sh_degree)
        m.normalization = Normalization((0.5, 0.5, 0.5), 1.0)  # identity: trained = world
        m.background = np.asarray(background, np.float32)
        m.image_size = (800, 800)
        return m
