"""Signed-distance field: hash grid (levels switched on coarse to fine) -> MLP -> signed
distance and geometry features; a colour MLP on the features and the view direction.

Distances are in unit-cube units, negative inside. The network predicts a residual on top
of a sphere, so training starts from a closed surface around the object (the role of
SAL/IDR's geometric initialisation). Normals are numerical: the gradient is taken from four
evaluations on a regular tetrahedron around each point (Neuralangelo's numerical gradient;
it needs no second derivatives of the hash grid, which the fused CPU kernel does not have,
and its step doubles as a smoothing filter that shrinks as finer levels switch on).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from reconstruction.encoding import HashGrid
from reconstruction.fields.components import mlp, spherical_harmonics

# vertices of a regular tetrahedron on the unit sphere: sum(k) = 0, sum(k k^T) = 4/3 I
TETRAHEDRON = torch.tensor([[1.0, 1.0, 1.0], [1.0, -1.0, -1.0], [-1.0, 1.0, -1.0],
                            [-1.0, -1.0, 1.0]]) / math.sqrt(3.0)


class SDFField(nn.Module):
    def __init__(self, grid: dict, hidden: int = 64, geo_features: int = 15, sh_degree: int = 4,
                 color_layers: int = 2, sphere_radius: float = 0.3, init_s: float = 20.0,
                 backend: str = "auto"):
        super().__init__()
        self.sh_degree = sh_degree
        self.register_buffer("sphere_radius", torch.tensor(float(sphere_radius)))
        self.encoding = HashGrid(3, grid, backend=backend)
        n_feat = self.encoding.cfg.n_features_per_level
        self.n_levels = self.encoding.cfg.n_levels
        self.sdf_net = mlp(3 + self.encoding.n_output_dims, hidden, 1, 1 + geo_features)
        with torch.no_grad():  # the residual starts near zero: the sphere is the first surface
            last = self.sdf_net[-1]
            last.weight.mul_(0.05)
            last.bias.zero_()
        self.color_net = mlp(geo_features + sh_degree**2, hidden, color_layers, 3)
        # NeuS's deviation: inv_s = exp(10 * variance), learnt
        self.variance = nn.Parameter(torch.tensor(math.log(init_s) / 10.0))
        self.register_buffer("level_mask", torch.ones(self.n_levels * n_feat))
        self.n_feat = n_feat

    # -- coarse to fine ----------------------------------------------------------------------
    def set_active_levels(self, n: int) -> None:
        """Use only the ``n`` coarsest hash levels (the finer ones output zero)."""
        n = max(1, min(self.n_levels, int(n)))
        self.level_mask.zero_()
        self.level_mask[: n * self.n_feat] = 1.0
        self.active_levels = n

    def finest_active_resolution(self) -> float:
        n = int(self.level_mask.sum().item()) // self.n_feat
        return float(self.encoding.layout.scales[max(n, 1) - 1]) + 1.0

    # -- queries -------------------------------------------------------------------------------
    def inv_s(self) -> Tensor:  # [] sharpness of the SDF-to-opacity conversion
        return torch.exp(self.variance * 10.0).clamp(1e-3, 1e6)

    def sdf_and_features(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x: [N, 3] in [0, 1] -> signed distance [N], geometry features [N, G]."""
        enc = self.encoding(x) * self.level_mask
        h = self.sdf_net(torch.cat([x * 2.0 - 1.0, enc], dim=-1))
        sphere = (x - 0.5).norm(dim=-1) - self.sphere_radius
        return sphere + h[:, 0], h[:, 1:]

    def sdf(self, x: Tensor) -> Tensor:  # x [N, 3] -> [N]
        return self.sdf_and_features(x)[0]

    def gradient(self, x: Tensor, eps: float) -> tuple[Tensor, Tensor]:
        """x: [N, 3] -> numerical gradient [N, 3] and smoothed SDF [N] (:func:`tetra_gradient`)."""
        return tetra_gradient(self.sdf, x, eps)

    def color(self, geo: Tensor, dirs: Tensor) -> Tensor:  # geo [N, G], dirs [N, 3] -> [N, 3]
        sh = spherical_harmonics(dirs, self.sh_degree)
        return self.color_net(torch.cat([geo, sh], dim=-1)).sigmoid()


def tetra_gradient(
    fn: Callable[[Tensor], Tensor],  # points [M, 3] -> values [M]
    x: Tensor,  # [N, 3]
    eps: float,
) -> tuple[Tensor, Tensor]:  # gradient [N, 3], mean of the four samples [N]
    """Numerical gradient from the four corners of a regular tetrahedron of radius ``eps``
    around each point: ``grad = 3 / (4 eps) * sum_i k_i f(x + eps k_i)``, exact for linear
    functions and first-order accurate otherwise (the tetrahedron's third moment does not
    vanish, so the error is about eps times the Hessian). The mean of the four samples is f(x) + eps^2 / 6 * Laplacian(f) + O(eps^4).
    Differentiable with respect to whatever ``fn`` depends on."""
    k = TETRAHEDRON.to(x)  # [4, 3]
    f = fn((x[None] + eps * k[:, None]).reshape(-1, 3)).view(4, -1)  # [4, N]
    grad = (f[..., None] * k[:, None]).sum(0) * (3.0 / (4.0 * eps))
    return grad, f.mean(0)


def neus_alpha(
    sdf_start: Tensor,  # [S] signed distance where each ray section begins
    sdf_end: Tensor,  # [S] ... and where it ends
    inv_s: Tensor,  # [] sharpness s of the logistic CDF
) -> Tensor:  # [S] opacity of each section
    """NeuS's discrete opacity: alpha = max((Phi(f_start) - Phi(f_end)) / Phi(f_start), 0)
    with Phi the logistic CDF of scale 1/s (NeuS, eq. 13). Exact for a planar crossing
    whatever the section length, so sections can be long compared with 1/s."""
    cdf_start = torch.sigmoid(sdf_start * inv_s)
    cdf_end = torch.sigmoid(sdf_end * inv_s)
    return ((cdf_start - cdf_end + 1e-5) / (cdf_start + 1e-5)).clamp(0.0, 1.0)
