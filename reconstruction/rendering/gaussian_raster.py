"""Rasterising 3D Gaussians on the CPU with PyTorch autograd (3D Gaussian Splatting).

Follows 3DGS (Kerbl et al. 2023): EWA projection of each Gaussian (mean, log scales,
quaternion w x y z) through the pinhole camera, the 2-D covariance ``J W S R R^T S^T W^T J^T``
plus a 0.3 px^2 dilation, the Jacobian's view-frustum clamp (1.3 x the half field of view),
``alpha = min(0.99, opacity * exp(-d^T S2^-1 d / 2))`` with alphas below 1/255 dropped, and
front-to-back compositing sorted by depth over 16 x 16 pixel tiles.

Changed for the CPU: there is no custom kernel; autograd differentiates plain tensor
operations. Each Gaussian's tile range is the exact bounding box of the ellipse where its
alpha reaches 1/255 (so nothing that would be composited is ever cut off, and the result
equals :func:`rasterize_reference` up to rounding); tiles are processed in batches of
similar Gaussian counts, padded, with the transmittance from a cumulative sum of
``log(1 - alpha)``. There is no early stop when the transmittance falls below 1e-4.

Cameras are camera-to-world 4x4 in the OpenGL convention of the repository (looking down
-Z, +Y up; see rendering/rays.py); pixel centres are at +0.5. On CUDA, when gsplat is
installed, :func:`rasterize` hands over to ``gsplat.rasterization``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

ALPHA_MIN = 1.0 / 255.0
ALPHA_MAX = 0.99
DILATION = 0.3
TILE = 16
_FLIP = (1.0, -1.0, -1.0)  # OpenGL camera axes -> OpenCV camera axes


def quat_to_rotmat(quats: Tensor) -> Tensor:  # quats [N, 4] (w, x, y, z), any norm -> [N, 3, 3]
    q = quats / quats.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    w, x, y, z = q.unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], -1).view(-1, 3, 3)


def world_to_opencv(c2w: Tensor) -> tuple[Tensor, Tensor]:  # c2w [4, 4] OpenGL -> R [3, 3], t [3]
    """World-to-camera rotation and translation in OpenCV axes (x right, y down, z forward)."""
    flip = torch.tensor(_FLIP, dtype=c2w.dtype, device=c2w.device)
    rot = flip[:, None] * c2w[:3, :3].T
    return rot, -rot @ c2w[:3, 3]


def project(
    means: Tensor,  # [N, 3] world
    quats: Tensor,  # [N, 4] (w, x, y, z)
    log_scales: Tensor,  # [N, 3]
    c2w: Tensor,  # [4, 4] camera-to-world, OpenGL convention
    fx: float, fy: float, cx: float, cy: float, width: int, height: int,
    near: float = 0.01,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """EWA projection: means2d [N, 2] (pixels), conics [N, 3] (a, b, c of the inverse 2-D
    covariance), depths [N] (along the view axis), cov2d [N, 2, 2] (with the dilation)."""
    rot, t = world_to_opencv(c2w.to(means.dtype))
    p = means @ rot.T + t
    x, y, z = p.unbind(-1)
    zc = z.clamp_min(near)
    limx, limy = 1.3 * 0.5 * width / fx, 1.3 * 0.5 * height / fy
    tx = (x / zc).clamp(-limx, limx) * zc
    ty = (y / zc).clamp(-limy, limy) * zc
    zero = torch.zeros_like(zc)
    jac = torch.stack([fx / zc, zero, -fx * tx / zc**2,
                       zero, fy / zc, -fy * ty / zc**2], -1).view(-1, 2, 3)
    m = quat_to_rotmat(quats) * log_scales.exp()[:, None, :]  # R S
    cov3 = m @ m.transpose(1, 2)
    tm = jac @ rot
    cov2 = tm @ cov3 @ tm.transpose(1, 2)
    cov2 = cov2 + DILATION * torch.eye(2, dtype=cov2.dtype, device=cov2.device)
    a, b, c = cov2[:, 0, 0], cov2[:, 0, 1], cov2[:, 1, 1]
    det = (a * c - b * b).clamp_min(1e-12)
    conics = torch.stack([c / det, -b / det, a / det], -1)
    means2d = torch.stack([fx * x / zc + cx, fy * y / zc + cy], -1)
    return means2d, conics, z, cov2


def rasterize(
    means: Tensor,  # [N, 3] world
    quats: Tensor,  # [N, 4] (w, x, y, z)
    log_scales: Tensor,  # [N, 3]
    colors: Tensor,  # [N, D] (D = 3 for RGB)
    opacities: Tensor,  # [N] in [0, 1]
    c2w: Tensor,  # [4, 4] camera-to-world, OpenGL convention
    fx: float, fy: float, cx: float, cy: float, width: int, height: int,
    background: Tensor | None = None,  # [D]
    near: float = 0.01,
    max_elements: int = 1 << 22,
    backend: str = "auto",
) -> dict[str, Tensor]:
    """Render one view: rgb [H, W, D] (composited over ``background``), alpha [H, W],
    depth [H, W] (expected view-axis depth, normalised by alpha; 0 where empty), means2d
    [N, 2] (its gradient drives densification), radii [N] (pixels, 0 when culled).

    ``max_elements`` bounds tiles x pixels x Gaussians evaluated in one batch (memory).
    ``backend``: auto (gsplat on CUDA when installed, else torch), torch, gsplat.
    """
    if backend == "gsplat" or (backend == "auto" and means.is_cuda and _has_gsplat()):
        return _rasterize_gsplat(means, quats, log_scales, colors, opacities, c2w, fx, fy, cx, cy,
                                 width, height, background, near)
    dev, dt = means.device, means.dtype
    n, d_col = colors.shape
    means2d, conics, depths, cov2 = project(means, quats, log_scales, c2w, fx, fy, cx, cy,
                                            width, height, near)
    if background is None:
        background = torch.zeros(d_col, dtype=dt, device=dev)
    with torch.no_grad():
        op = opacities.detach()
        # half-extents of the ellipse where alpha = 1/255 (exact bounding box)
        reach = torch.sqrt(2.0 * torch.log((op / ALPHA_MIN).clamp_min(1.0)))
        ex = reach * cov2[:, 0, 0].detach().clamp_min(0).sqrt()
        ey = reach * cov2[:, 1, 1].detach().clamp_min(0).sqrt()
        u, v = means2d.detach().unbind(-1)
        j0 = torch.ceil(u - ex - 0.5).clamp_min(0)
        j1 = torch.floor(u + ex - 0.5).clamp_max(width - 1)
        i0 = torch.ceil(v - ey - 0.5).clamp_min(0)
        i1 = torch.floor(v + ey - 0.5).clamp_max(height - 1)
        det = cov2[:, 0, 0] * cov2[:, 1, 1] - cov2[:, 0, 1] ** 2
        ok = (depths.detach() > near) & (op > ALPHA_MIN) & (det > 0) & (j0 <= j1) & (i0 <= i1)
        ok &= torch.isfinite(u) & torch.isfinite(v)
        radii = torch.where(ok, torch.maximum(ex, ey), torch.zeros_like(ex))
        ntx, nty = math.ceil(width / TILE), math.ceil(height / TILE)
        gid = torch.nonzero(ok).squeeze(1)
        tx0, tx1 = (j0[gid] // TILE).long(), (j1[gid] // TILE).long()
        ty0, ty1 = (i0[gid] // TILE).long(), (i1[gid] // TILE).long()
        nx, ny = tx1 - tx0 + 1, ty1 - ty0 + 1
        cnt = nx * ny
        pair_g = torch.repeat_interleave(gid, cnt)
        start = torch.cumsum(cnt, 0) - cnt
        k = torch.arange(int(cnt.sum()), device=dev) - torch.repeat_interleave(start, cnt)
        nxr = torch.repeat_interleave(nx, cnt)
        tile = (torch.repeat_interleave(ty0, cnt) + k // nxr) * ntx + torch.repeat_interleave(tx0, cnt) + k % nxr
        rank = torch.empty(n, dtype=torch.long, device=dev)
        rank[torch.argsort(depths.detach(), stable=True)] = torch.arange(n, device=dev)
        order = torch.argsort(tile * n + rank[pair_g])
        pair_g, tile = pair_g[order], tile[order]
        counts = torch.bincount(tile, minlength=ntx * nty)
        starts = torch.cumsum(counts, 0) - counts
        busy = torch.nonzero(counts).squeeze(1)
        busy = busy[torch.argsort(counts[busy])]
    npx = TILE * TILE
    ly, lx = torch.meshgrid(torch.arange(TILE, device=dev), torch.arange(TILE, device=dev),
                            indexing="ij")
    lx, ly = lx.reshape(-1).to(dt), ly.reshape(-1).to(dt)
    parts, part_tiles = [], []
    busy_l, counts_l = busy.tolist(), counts.tolist()
    b = 0
    while b < len(busy_l):
        e = b + 1  # tiles sorted by count: grow the batch while the padded size fits
        while e < len(busy_l) and (e + 1 - b) * counts_l[busy_l[e]] * npx <= max_elements:
            e += 1
        tl = busy[b:e]
        kmax = counts_l[busy_l[e - 1]]
        ar = torch.arange(kmax, device=dev)
        valid = ar[None] < counts[tl][:, None]  # [T, K]
        g = pair_g[(starts[tl][:, None] + ar[None]).clamp_max(pair_g.numel() - 1)]  # [T, K]
        px = ((tl % ntx) * TILE).to(dt)[:, None] + lx[None] + 0.5  # [T, P]
        py = ((tl // ntx) * TILE).to(dt)[:, None] + ly[None] + 0.5
        dx = px[:, :, None] - means2d[g, 0][:, None, :]  # [T, P, K]
        dy = py[:, :, None] - means2d[g, 1][:, None, :]
        con = conics[g]  # [T, K, 3]
        power = -0.5 * (con[..., 0][:, None] * dx * dx + con[..., 2][:, None] * dy * dy) \
            - con[..., 1][:, None] * dx * dy
        alpha = (opacities[g][:, None, :] * power.exp()).clamp(max=ALPHA_MAX)
        keep = valid[:, None, :] & (alpha >= ALPHA_MIN) & (power <= 0)
        alpha = torch.where(keep, alpha, torch.zeros_like(alpha))
        log_t = torch.log1p(-alpha)
        trans = torch.exp(torch.cumsum(log_t, -1) - log_t)  # exclusive product of (1 - alpha)
        w = alpha * trans  # [T, P, K]
        rgb = torch.einsum("tpk,tkc->tpc", w, colors[g])
        acc = w.sum(-1)
        dep = (w * depths[g][:, None, :]).sum(-1)
        parts.append(torch.cat([rgb, acc[..., None], dep[..., None]], -1))
        part_tiles.append(tl)
        b = e
    flat = torch.zeros(ntx * nty, npx, d_col + 2, dtype=dt, device=dev)
    if parts:
        flat = flat.index_copy(0, torch.cat(part_tiles), torch.cat(parts))
    img = flat.view(nty, ntx, TILE, TILE, -1).permute(0, 2, 1, 3, 4).reshape(nty * TILE, ntx * TILE, -1)
    img = img[:height, :width]
    acc = img[..., d_col]
    rgb = img[..., :d_col] + (1.0 - acc)[..., None] * background.to(dt)
    depth = torch.where(acc > 1e-6, img[..., d_col + 1] / acc.clamp_min(1e-6), torch.zeros_like(acc))
    return {"rgb": rgb, "alpha": acc, "depth": depth, "means2d": means2d, "radii": radii}


def rasterize_reference(
    means: Tensor,  # [N, 3] world
    quats: Tensor,  # [N, 4] (w, x, y, z)
    log_scales: Tensor,  # [N, 3]
    colors: Tensor,  # [N, D]
    opacities: Tensor,  # [N] in [0, 1]
    c2w: Tensor,  # [4, 4] camera-to-world, OpenGL convention
    fx: float, fy: float, cx: float, cy: float, width: int, height: int,
    background: Tensor | None = None,  # [D]
    near: float = 0.01,
) -> dict[str, Tensor]:
    """The same image by plain loops over Gaussians and pixels (small inputs only; for tests)."""
    dt = means.dtype
    n, d_col = colors.shape
    if background is None:
        background = torch.zeros(d_col, dtype=dt)
    c2w = c2w.to(dt)
    r_cam = torch.diag(torch.tensor(_FLIP, dtype=dt)) @ c2w[:3, :3].T  # world -> OpenCV camera
    t_cam = -r_cam @ c2w[:3, 3]
    proj = []
    for i in range(n):
        p = r_cam @ means[i] + t_cam
        z = p[2]
        if float(z.detach()) <= near:
            continue
        lx, ly = 1.3 * 0.5 * width / fx, 1.3 * 0.5 * height / fy
        tx = torch.clamp(p[0] / z, -lx, lx) * z
        ty = torch.clamp(p[1] / z, -ly, ly) * z
        jac = torch.stack([torch.stack([fx / z, z * 0, -fx * tx / (z * z)]),
                           torch.stack([z * 0, fy / z, -fy * ty / (z * z)])])
        w, x, y, zq = quats[i] / quats[i].norm()
        rot = torch.stack([
            torch.stack([1 - 2 * (y * y + zq * zq), 2 * (x * y - w * zq), 2 * (x * zq + w * y)]),
            torch.stack([2 * (x * y + w * zq), 1 - 2 * (x * x + zq * zq), 2 * (y * zq - w * x)]),
            torch.stack([2 * (x * zq - w * y), 2 * (y * zq + w * x), 1 - 2 * (x * x + y * y)]),
        ])
        s = torch.diag(torch.exp(log_scales[i]))
        sigma = rot @ s @ s.T @ rot.T
        cov = jac @ r_cam @ sigma @ r_cam.T @ jac.T + DILATION * torch.eye(2, dtype=dt)
        inv = torch.linalg.inv(cov)
        mean = torch.stack([fx * p[0] / z + cx, fy * p[1] / z + cy])
        proj.append((float(z.detach()), i, z, mean, inv))
    proj.sort(key=lambda item: (item[0], item[1]))
    rows_rgb, rows_a, rows_d = [], [], []
    for row in range(height):
        px_rgb, px_a, px_d = [], [], []
        for col in range(width):
            pix = torch.tensor([col + 0.5, row + 0.5], dtype=dt)
            trans = torch.ones((), dtype=dt)
            c = torch.zeros(d_col, dtype=dt)
            a_sum = torch.zeros((), dtype=dt)
            d_sum = torch.zeros((), dtype=dt)
            for _, i, z, mean, inv in proj:
                dlt = pix - mean
                power = -0.5 * dlt @ inv @ dlt
                alpha = torch.clamp(opacities[i] * torch.exp(power), max=ALPHA_MAX)
                if float(power.detach()) > 0 or float(alpha.detach()) < ALPHA_MIN:
                    continue
                c = c + colors[i] * alpha * trans
                a_sum = a_sum + alpha * trans
                d_sum = d_sum + z * alpha * trans
                trans = trans * (1 - alpha)
            px_rgb.append(c + (1 - a_sum) * background)
            px_a.append(a_sum)
            px_d.append(d_sum / a_sum if float(a_sum.detach()) > 1e-6 else d_sum * 0)
        rows_rgb.append(torch.stack(px_rgb))
        rows_a.append(torch.stack(px_a))
        rows_d.append(torch.stack(px_d))
    return {"rgb": torch.stack(rows_rgb), "alpha": torch.stack(rows_a), "depth": torch.stack(rows_d)}


def _has_gsplat() -> bool:
    try:
        import gsplat  # noqa: F401
    except Exception:
        return False
    return True


def _rasterize_gsplat(means, quats, log_scales, colors, opacities, c2w, fx, fy, cx, cy, width,
                      height, background, near) -> dict[str, Tensor]:
    """``gsplat.rasterization`` (CUDA) with the same inputs and outputs as :func:`rasterize`."""
    from gsplat import rasterization

    rot, t = world_to_opencv(c2w.to(means.dtype))
    viewmat = torch.eye(4, dtype=means.dtype, device=means.device)
    viewmat[:3, :3], viewmat[:3, 3] = rot, t
    ks = torch.tensor([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], dtype=means.dtype, device=means.device)
    bg = None if background is None else background.to(means.dtype)[None]
    out, alphas, meta = rasterization(means, quats, log_scales.exp(), opacities, colors,
                                      viewmat[None], ks[None], width, height, near_plane=near,
                                      eps2d=DILATION, packed=False, render_mode="RGB+ED",
                                      backgrounds=bg)
    d_col = colors.shape[1]
    means2d = meta["means2d"]
    if means2d.requires_grad:
        means2d.retain_grad()
    radii = meta["radii"][0]
    if radii.dim() > 1:
        radii = radii.float().amax(-1)
    return {"rgb": out[0, ..., :d_col], "alpha": alphas[0, ..., 0], "depth": out[0, ..., d_col],
            "means2d": means2d[0], "radii": radii.float()}
