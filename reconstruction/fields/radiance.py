"""Radiance field: hash grid -> density MLP -> (density, geometry features); colour MLP on
geometry features and spherical-harmonics-encoded view direction (instant-ngp's NeRF)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from reconstruction.encoding import HashGrid
from reconstruction.fields.components import mlp, spherical_harmonics, trunc_exp


def grid_config(n_levels: int, n_features_per_level: int, log2_hashmap_size: int,
                base_resolution: int, finest_resolution: int) -> dict:
    """tinycudann-style HashGrid config whose per-level scale spans base..finest resolution."""
    scale = (finest_resolution / base_resolution) ** (1.0 / max(1, n_levels - 1))
    return {"otype": "HashGrid", "n_levels": n_levels, "n_features_per_level": n_features_per_level,
            "log2_hashmap_size": log2_hashmap_size, "base_resolution": base_resolution,
            "per_level_scale": scale}


class RadianceField(nn.Module):
    def __init__(self, grid: dict, hidden: int = 64, geo_features: int = 15, sh_degree: int = 4,
                 color_layers: int = 2, backend: str = "auto"):
        super().__init__()
        self.sh_degree = sh_degree
        self.encoding = HashGrid(3, grid, backend=backend)
        self.density_net = mlp(self.encoding.n_output_dims, hidden, 1, 1 + geo_features)
        self.color_net = mlp(geo_features + sh_degree**2, hidden, color_layers, 3)

    def density(self, x: Tensor) -> tuple[Tensor, Tensor]:  # x [N, 3] in [0,1] -> sigma [N], geo [N, G]
        h = self.density_net(self.encoding(x))
        return trunc_exp(h[:, 0] - 1.0), h[:, 1:]

    def color(self, geo: Tensor, dirs: Tensor) -> Tensor:  # geo [N, G], dirs [N, 3] -> rgb [N, 3]
        sh = spherical_harmonics(dirs, self.sh_degree)
        return self.color_net(torch.cat([geo, sh], dim=-1)).sigmoid()

    def forward(self, x: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor]:  # -> sigma [N], rgb [N, 3]
        sigma, geo = self.density(x)
        return sigma, self.color(geo, dirs)
