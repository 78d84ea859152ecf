"""Small building blocks shared by the fields: MLPs, activations, direction encodings."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class _TruncExp(torch.autograd.Function):
    """exp(x) whose gradient is clamped (instant-ngp's density activation)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return torch.exp(x)

    @staticmethod
    def backward(ctx, g: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return g * torch.exp(x.clamp(-15.0, 15.0))


def trunc_exp(x: Tensor) -> Tensor:
    return _TruncExp.apply(x)


def mlp(n_in: int, n_hidden: int, n_layers: int, n_out: int, bias: bool = True) -> nn.Sequential:
    """A ReLU MLP with ``n_layers`` hidden layers of width ``n_hidden`` (like tcnn's FullyFusedMLP)."""
    layers: list[nn.Module] = []
    d = n_in
    for _ in range(n_layers):
        layers += [nn.Linear(d, n_hidden, bias=bias), nn.ReLU(inplace=True)]
        d = n_hidden
    layers.append(nn.Linear(d, n_out, bias=bias))
    return nn.Sequential(*layers)


def spherical_harmonics(dirs: Tensor, degree: int = 4) -> Tensor:  # dirs [N, 3] unit -> [N, degree^2]
    """Real spherical harmonics basis up to ``degree`` bands (1-5), tinycudann's ordering."""
    x, y, z = dirs.unbind(-1)
    out = [torch.full_like(x, 0.28209479177387814)]
    if degree > 1:
        out += [-0.48860251190291987 * y, 0.48860251190291987 * z, -0.48860251190291987 * x]
    if degree > 2:
        xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
        out += [
            1.0925484305920792 * xy,
            -1.0925484305920792 * yz,
            0.94617469575755997 * zz - 0.31539156525251999,
            -1.0925484305920792 * xz,
            0.54627421529603959 * (xx - yy),
        ]
    if degree > 3:
        out += [
            0.59004358992664352 * y * (-3.0 * xx + yy),
            2.8906114426405538 * xy * z,
            0.45704579946446572 * y * (1.0 - 5.0 * zz),
            0.3731763325901154 * z * (5.0 * zz - 3.0),
            0.45704579946446572 * x * (1.0 - 5.0 * zz),
            1.4453057213202769 * z * (xx - yy),
            0.59004358992664352 * x * (-xx + 3.0 * yy),
        ]
    if degree > 4:
        raise ValueError("spherical_harmonics supports degree <= 4")
    return torch.stack(out, dim=-1)
