"""Radiance field: hash grid -> density MLP -> (density, geometry features); colour MLP on
geometry features and spherical-harmonics-encoded view direction (instant-ngp's NeRF)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from reconstruction.encoding import HashGrid
from reconstruction.fields.components import mlp, spherical_harmonics, trunc_exp


@dataclass
class RadianceFieldConfig:
    """Architecture of the radiance field."""

    n_levels: int = 16
    """Hash-grid levels."""
    n_features_per_level: int = 2
    """Features per hash-grid level."""
    log2_hashmap_size: int = 17
    """log2 of the hash-table size per level."""
    base_resolution: int = 16
    """Coarsest grid resolution."""
    finest_resolution: int = 1024
    """Finest grid resolution; sets the per-level scale."""
    hidden: int = 64
    """Width of the hidden layers of both MLPs."""
    geo_features: int = 15
    """Geometry features passed from the density MLP to the colour MLP."""
    sh_degree: int = 4
    """Spherical-harmonics bands encoding the view direction (1-4)."""
    color_layers: int = 2
    """Hidden layers of the colour MLP."""
    extra: dict = field(default_factory=dict)
    """Reserved for backend options."""

    def grid_config(self) -> dict:
        scale = (self.finest_resolution / self.base_resolution) ** (1.0 / max(1, self.n_levels - 1))
        return {
            "otype": "HashGrid",
            "n_levels": self.n_levels,
            "n_features_per_level": self.n_features_per_level,
            "log2_hashmap_size": self.log2_hashmap_size,
            "base_resolution": self.base_resolution,
            "per_level_scale": scale,
        }


class RadianceField(nn.Module):
    def __init__(self, cfg: RadianceFieldConfig, backend: str = "auto"):
        super().__init__()
        self.cfg = cfg
        self.encoding = HashGrid(3, cfg.grid_config(), backend=backend)
        self.density_net = mlp(self.encoding.n_output_dims, cfg.hidden, 1, 1 + cfg.geo_features)
        self.color_net = mlp(cfg.geo_features + cfg.sh_degree**2, cfg.hidden, cfg.color_layers, 3)

    def density(self, x: Tensor) -> tuple[Tensor, Tensor]:  # x [N, 3] in [0,1] -> sigma [N], geo [N, G]
        h = self.density_net(self.encoding(x))
        return trunc_exp(h[:, 0] - 1.0), h[:, 1:]

    def color(self, geo: Tensor, dirs: Tensor) -> Tensor:  # geo [N, G], dirs [N, 3] -> rgb [N, 3]
        sh = spherical_harmonics(dirs, self.cfg.sh_degree)
        return self.color_net(torch.cat([geo, sh], dim=-1)).sigmoid()

    def forward(self, x: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor]:  # -> sigma [N], rgb [N, 3]
        sigma, geo = self.density(x)
        return sigma, self.color(geo, dirs)

