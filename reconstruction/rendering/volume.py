"""Volume rendering of packed samples (a variable number of samples per ray).

Samples are stored flat, grouped by ray and sorted by distance within each ray
(``ray_ids`` non-decreasing). Compositing follows the NeRF quadrature:
``alpha_i = 1 - exp(-sigma_i * delta_i)``, ``T_i = prod_{j<i} (1 - alpha_j)``,
``w_i = T_i * alpha_i``, ``C = sum_i w_i c_i + (1 - sum_i w_i) * background``.
"""

from __future__ import annotations

import torch
from torch import Tensor


def transmittance(
    tau: Tensor,  # [S] optical thickness sigma * delta of each sample
    ray_ids: Tensor,  # [S] int64, non-decreasing
    n_rays: int,
) -> Tensor:  # [S] transmittance before each sample
    """Exclusive per-ray cumulative product of exp(-tau), computed in float64."""
    if tau.numel() == 0:
        return tau
    cum = torch.cumsum(tau.to(torch.float64), dim=0)
    excl = cum - tau.to(torch.float64)
    first = torch.zeros(n_rays, dtype=torch.int64, device=tau.device)
    counts = torch.bincount(ray_ids, minlength=n_rays)
    first[1:] = torch.cumsum(counts, 0)[:-1]
    start = excl[first.clamp_max(tau.numel() - 1)]  # value of excl at each ray's first sample
    return torch.exp(-(excl - start[ray_ids])).to(tau.dtype)


def composite(
    sigmas: Tensor,  # [S] density
    rgbs: Tensor,  # [S, 3] colour in [0, 1]
    deltas: Tensor,  # [S] step length of each sample
    ts: Tensor,  # [S] distance of each sample along its ray
    ray_ids: Tensor,  # [S] int64, non-decreasing
    n_rays: int,
    background: Tensor,  # [3] or [R, 3]
) -> dict[str, Tensor]:
    """Returns rgb [R, 3] (composited on background), opacity [R], depth [R] (expected
    distance, weighted by opacity), median_depth [R] (where the opacity reaches 1/2; inf if
    it never does) and weights [S]."""
    tau = sigmas * deltas
    alpha = 1.0 - torch.exp(-tau)
    trans = transmittance(tau, ray_ids, n_rays)
    weights = trans * alpha
    rgb = torch.zeros(n_rays, 3, dtype=rgbs.dtype, device=rgbs.device)
    rgb = rgb.index_add(0, ray_ids, weights[:, None] * rgbs)
    opacity = torch.zeros(n_rays, dtype=rgbs.dtype, device=rgbs.device).index_add(0, ray_ids, weights)
    depth = torch.zeros(n_rays, dtype=rgbs.dtype, device=rgbs.device).index_add(0, ray_ids, weights * ts)
    rgb = rgb + (1.0 - opacity)[:, None] * background
    with torch.no_grad():
        crossed = (trans * (1.0 - alpha)) <= 0.5  # transmittance after the sample
        median = torch.full((n_rays,), float("inf"), dtype=ts.dtype, device=ts.device)
        median = median.scatter_reduce(0, ray_ids[crossed], ts[crossed], reduce="amin")
    return {"rgb": rgb, "opacity": opacity, "depth": depth, "median_depth": median,
            "weights": weights}
