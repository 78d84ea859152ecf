"""Multi-resolution hash-grid encoding (instant-ngp), parameter-compatible with tinycudann.

``HashGrid(n_input_dims, config)`` takes the same config dict as ``tinycudann.Encoding``::

    {"otype": "HashGrid", "n_levels": 16, "n_features_per_level": 2,
     "log2_hashmap_size": 19, "base_resolution": 16, "per_level_scale": 1.447}

and keeps its parameters the way tinycudann does: one flat vector ``params`` holding level
after level, each level a table of ``params_in_level`` entries x ``n_features_per_level``.
Level ``l`` has ``scale = base * per_level_scale**l - 1`` and ``resolution = ceil(scale) + 1``;
a point ``x`` in [0, 1] sits at ``x * scale + 0.5`` in that level's grid (tinycudann's
offset, which keeps cell corners off the cube's faces). Levels whose dense grid fits in the
table are indexed densely, the others with the spatial hash ``xor_i(c_i * prime_i) mod T``
with primes (1, 2654435761, 805459861). Interpolation is d-linear.

So a table trained here loads into ``tinycudann.Encoding(...).params`` and back. (The
instant-ngp paper writes resolutions as ``floor(base * b**l)``; tinycudann, whose layout
we follow, uses the formula above. They differ by at most one cell per level.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

PRIMES = (1, 2654435761, 805459861, 3674653429, 2097192037, 1434869437, 2165219737)


@dataclass(frozen=True)
class HashGridConfig:
    """Hash-grid hyper-parameters; same names and defaults as tinycudann's HashGrid."""

    n_levels: int = 16
    """Number of resolution levels."""
    n_features_per_level: int = 2
    """Features stored per table entry (1, 2, 4 or 8)."""
    log2_hashmap_size: int = 19
    """log2 of the maximum number of entries per level (T)."""
    base_resolution: int = 16
    """Resolution of the coarsest level."""
    per_level_scale: float = 2.0
    """Growth factor of the resolution from one level to the next."""

    @staticmethod
    def from_dict(config: dict) -> HashGridConfig:
        otype = config.get("otype", "HashGrid")
        if otype not in ("HashGrid", "Grid"):
            raise ValueError(f"HashGrid config has otype {otype!r}; expected 'HashGrid'")
        if config.get("type", "Hash") != "Hash":
            raise ValueError("only hashed grids are supported (type 'Hash')")
        if config.get("interpolation", "Linear") != "Linear":
            raise ValueError("only 'Linear' interpolation is supported")
        return HashGridConfig(
            n_levels=int(config.get("n_levels", 16)),
            n_features_per_level=int(config.get("n_features_per_level", 2)),
            log2_hashmap_size=int(config.get("log2_hashmap_size", 19)),
            base_resolution=int(config.get("base_resolution", 16)),
            per_level_scale=float(config.get("per_level_scale", 2.0)),
        )

    def to_dict(self) -> dict:
        return {
            "otype": "HashGrid",
            "n_levels": self.n_levels,
            "n_features_per_level": self.n_features_per_level,
            "log2_hashmap_size": self.log2_hashmap_size,
            "base_resolution": self.base_resolution,
            "per_level_scale": self.per_level_scale,
        }


@dataclass(frozen=True)
class LevelLayout:
    """Where each level lives in the flat parameter vector, as tinycudann lays it out."""

    scales: tuple[float, ...]  # per level: x * scale + 0.5 is the grid position
    resolutions: tuple[int, ...]  # per level: ceil(scale) + 1
    sizes: tuple[int, ...]  # per level: table entries (hashmap_size in tinycudann)
    offsets: tuple[int, ...]  # per level: first entry of the level; offsets[-1] = total
    hashed: tuple[bool, ...]  # per level: True where the hash is used


def level_layout(n_input_dims: int, cfg: HashGridConfig) -> LevelLayout:
    """Per-level scale, resolution and table size, following tinycudann's GridEncoding."""
    scales, resolutions, sizes, offsets, hashed = [], [], [], [0], []
    t = 1 << cfg.log2_hashmap_size
    log2_scale = math.log2(cfg.per_level_scale)
    for level in range(cfg.n_levels):
        # float32 arithmetic as in tinycudann (exp2f), so resolutions agree exactly
        scale = float(
            torch.exp2(torch.tensor(level * log2_scale, dtype=torch.float32)).item()
            * cfg.base_resolution
            - 1.0
        )
        scale = float(torch.tensor(scale, dtype=torch.float32).item())
        res = int(math.ceil(scale)) + 1
        dense = res**n_input_dims
        params = min(dense, (1 << 31) - 1)
        params = (params + 7) // 8 * 8
        params = min(params, t)
        scales.append(scale)
        resolutions.append(res)
        sizes.append(params)
        offsets.append(offsets[-1] + params)
        hashed.append(dense > params)
    return LevelLayout(tuple(scales), tuple(resolutions), tuple(sizes), tuple(offsets), tuple(hashed))


def grid_index(
    corners: Tensor,  # [..., d] int64 grid coordinates of cell corners (>= 0)
    resolution: int,
    size: int,
    hashed: bool,
) -> Tensor:  # [...] int64 entry index within the level, in [0, size)
    """Table entry of each corner, exactly as tinycudann's ``grid_index``."""
    d = corners.shape[-1]
    if not hashed:
        index = torch.zeros(corners.shape[:-1], dtype=torch.int64, device=corners.device)
        stride = 1
        for i in range(d):
            index = index + corners[..., i] * stride
            stride *= resolution
        return index % size
    h = torch.zeros(corners.shape[:-1], dtype=torch.int64, device=corners.device)
    for i in range(d):
        h = h ^ ((corners[..., i] * PRIMES[i]) & 0xFFFFFFFF)
    return h % size


class HashGrid(nn.Module):
    """Multi-resolution hash encoding: [N, d] points in [0, 1] -> [N, n_levels * F] features.

    ``backend``: "auto" ("tcnn" when a CUDA device and tinycudann are present and d is 2-4,
    else "cpu" when the fused C kernel was built, else "torch"), "tcnn" (tinycudann's CUDA
    kernel, :mod:`reconstruction.encoding.tcnn_backend`; ``params`` then live on the GPU),
    "cpu" (the fused C kernel, :mod:`reconstruction.encoding.cpu_kernel`), "torch" (this
    module's vectorised PyTorch implementation) or "reference" (the plain per-level PyTorch
    version, kept for tests). All backends share one parameter layout and ``state_dict``.
    """

    def __init__(self, n_input_dims: int, config: dict | HashGridConfig | None = None,
                 backend: str = "auto", seed: int = 1337):
        super().__init__()
        if n_input_dims not in (1, 2, 3, 4):
            raise ValueError(f"HashGrid supports 1-4 input dims, got {n_input_dims}")
        cfg = config if isinstance(config, HashGridConfig) else HashGridConfig.from_dict(config or {})
        self.cfg = cfg
        self.n_input_dims = n_input_dims
        self.n_output_dims = cfg.n_levels * cfg.n_features_per_level
        self.layout = level_layout(n_input_dims, cfg)
        n_params = self.layout.offsets[-1] * cfg.n_features_per_level
        gen = torch.Generator().manual_seed(seed)
        # tinycudann initialises the tables uniformly in [-1e-4, 1e-4]
        self.params = nn.Parameter(torch.rand(n_params, generator=gen) * 2e-4 - 1e-4)
        from reconstruction.encoding import cpu_kernel, tcnn_backend

        if backend == "auto":
            if n_input_dims in tcnn_backend.TCNN_GRID_DIMS and tcnn_backend.tcnn_available():
                backend = "tcnn"
            else:
                backend = "cpu" if cpu_kernel.available() else "torch"
        if backend not in ("tcnn", "cpu", "torch", "reference"):
            raise ValueError(f"unknown HashGrid backend {backend!r}; "
                             "use 'auto', 'tcnn', 'cpu', 'torch' or 'reference'")
        if backend == "cpu" and not cpu_kernel.available():
            raise RuntimeError("the fused CPU hash-grid kernel was not built (no C compiler at install "
                               "time?); reinstall with a compiler or use backend='torch'")
        self._tcnn = None
        if backend == "tcnn":
            tcnn_backend.require_tcnn()  # RuntimeError naming what is missing (CUDA, tinycudann)
            self.params = nn.Parameter(self.params.detach().to("cuda"))
            self._tcnn = tcnn_backend.TcnnHashGrid(n_input_dims, cfg, self.params, seed=seed)
        self._levels = cpu_kernel.LevelTensors(
            n_input_dims, cfg.n_features_per_level, self.layout.scales, self.layout.resolutions,
            self.layout.sizes, self.layout.offsets, self.layout.hashed)
        self.backend = backend

    @property
    def n_params(self) -> int:
        return int(self.params.numel())

    def extra_repr(self) -> str:
        c = self.cfg
        return (f"d={self.n_input_dims}, levels={c.n_levels}, F={c.n_features_per_level}, "
                f"T=2^{c.log2_hashmap_size}, base={c.base_resolution}, "
                f"scale={c.per_level_scale:.4f}, backend={self.backend}")

    def forward(self, x: Tensor) -> Tensor:  # x: [N, d] in [0, 1] -> [N, n_levels * F]
        if x.shape[-1] != self.n_input_dims:
            raise ValueError(f"expected points [N, {self.n_input_dims}], got {tuple(x.shape)}")
        x = x.to(torch.float32)
        if self.backend == "tcnn" and self.params.is_cuda:
            # tinycudann on the GPU: x is moved to params' device and clamped to [0, 1]
            return self._tcnn(x, self.params)
        if self.backend == "reference":
            return hashgrid_reference(x, self.params, self.n_input_dims, self.cfg)
        if self.backend in ("cpu", "tcnn") and not x.is_cuda and not self.params.is_cuda:
            # the C kernel; also a "tcnn" grid that was moved to the CPU with .cpu()
            from reconstruction.encoding import cpu_kernel

            if cpu_kernel.available():
                return cpu_kernel.HashGridCPU.apply(x, self.params, self._levels)
        # vectorised torch path (any device): keep its cached level tensors on x's device
        if not hasattr(self, "_lvl") or self._scales.device != x.device:
            self._build_level_tensors()
            for name in ("_scales", "_primes", "_strides", "_hashed", "_sizes", "_offsets"):
                setattr(self, name, getattr(self, name).to(x.device))
        idx, w = self.indices_and_weights(x)
        return _HashGridGather.apply(self.params, idx, w, self.cfg.n_features_per_level)

    def indices_and_weights(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x: [N, d] -> (entry indices [N, L, 2^d] int64 into the flat table of entries,
        weights [N, L, 2^d] float32).

        All levels at once: per level and dimension only the two candidate coordinates
        (cell, cell + 1) are hashed, and the 2^d corners are formed by broadcasting XORs
        (or sums, on dense levels) of those, likewise for the weights.
        """
        lay = self.layout
        if not hasattr(self, "_lvl"):
            self._build_level_tensors()
        n, d = x.shape
        pos = x[:, None, :] * self._scales[None, :, None] + 0.5  # [N, L, d]
        cell_f = torch.floor(pos)
        frac = pos - cell_f
        cell = cell_f.to(torch.int64)
        c2 = torch.stack([cell, cell + 1], dim=-1)  # [N, L, d, 2]
        f2 = torch.stack([1.0 - frac, frac], dim=-1)  # [N, L, d, 2]
        n_lvl = len(lay.scales)
        # hashed value per (dim, choice): c * prime_dim mod 2^32
        hashed_terms = (c2 * self._primes[None, None, :d, None]) & 0xFFFFFFFF
        dense_terms = c2 * self._strides[None, :, :d, None]
        idx_h = None
        idx_d = None
        w = None
        for dim in range(d):
            shape = [n, n_lvl] + [1] * d
            shape[2 + (d - 1 - dim)] = 2  # corner bit `dim` varies along this axis
            th = hashed_terms[:, :, dim].reshape(shape)
            td = dense_terms[:, :, dim].reshape(shape)
            tw = f2[:, :, dim].reshape(shape)
            idx_h = th if idx_h is None else idx_h ^ th
            idx_d = td if idx_d is None else idx_d + td
            w = tw if w is None else w * tw
        idx_h = idx_h.reshape(n, n_lvl, -1)
        idx_d = idx_d.reshape(n, n_lvl, -1)
        w = w.reshape(n, n_lvl, -1)
        idx = torch.where(self._hashed[None, :, None], idx_h, idx_d) % self._sizes[None, :, None]
        return idx + self._offsets[None, :, None], w

    def _build_level_tensors(self) -> None:
        lay = self.layout
        d = self.n_input_dims
        self._lvl = True
        self._scales = torch.tensor(lay.scales, dtype=torch.float32)
        self._primes = torch.tensor(PRIMES[:d], dtype=torch.int64)
        self._strides = torch.tensor(
            [[r**i for i in range(d)] for r in lay.resolutions], dtype=torch.int64)  # [L, d]
        self._hashed = torch.tensor(lay.hashed)
        self._sizes = torch.tensor(lay.sizes, dtype=torch.int64)
        self._offsets = torch.tensor(lay.offsets[:-1], dtype=torch.int64)


class _HashGridGather(torch.autograd.Function):
    """features[n, l, f] = sum_c w[n, l, c] * table[idx[n, l, c], f], backward by index_add."""

    @staticmethod
    def forward(ctx, params: Tensor, idx: Tensor, w: Tensor, n_feat: int) -> Tensor:
        table = params.view(-1, n_feat)  # [E, F]
        n, levels, corners = idx.shape
        vals = table.index_select(0, idx.reshape(-1)).view(n, levels, corners, n_feat)
        out = (vals * w[..., None]).sum(dim=2)  # [N, L, F]
        ctx.save_for_backward(idx, w)
        ctx.n_feat = n_feat
        ctx.n_params = params.numel()
        return out.reshape(n, levels * n_feat)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        idx, w = ctx.saved_tensors
        n_feat = ctx.n_feat
        n, levels, corners = idx.shape
        g = grad_out.reshape(n, levels, 1, n_feat) * w[..., None]  # [N, L, C, F]
        grad_table = torch.zeros(ctx.n_params // n_feat, n_feat, dtype=g.dtype, device=g.device)
        grad_table.index_add_(0, idx.reshape(-1), g.reshape(-1, n_feat))
        return grad_table.view(-1), None, None, None


def hashgrid_reference(
    x: Tensor,  # [N, d] in [0, 1]
    params: Tensor,  # [n_params] flat tinycudann layout
    n_input_dims: int,
    cfg: HashGridConfig,
) -> Tensor:  # [N, n_levels * F]
    """Plain PyTorch hash grid: per level, per corner, gather and weight; autograd backward."""
    lay = level_layout(n_input_dims, cfg)
    f = cfg.n_features_per_level
    outs = []
    for level in range(cfg.n_levels):
        table = params[lay.offsets[level] * f: lay.offsets[level + 1] * f].view(-1, f)
        pos = x * lay.scales[level] + 0.5
        cell = torch.floor(pos)
        frac = pos - cell
        cell = cell.to(torch.int64)
        acc = torch.zeros(x.shape[0], f, dtype=x.dtype, device=x.device)
        for k in range(1 << n_input_dims):
            bits = [(k >> i) & 1 for i in range(n_input_dims)]
            corner = cell + torch.tensor(bits, device=x.device)
            weight = torch.ones(x.shape[0], dtype=x.dtype, device=x.device)
            for i, b in enumerate(bits):
                weight = weight * (frac[:, i] if b else 1 - frac[:, i])
            idx = grid_index(corner, lay.resolutions[level], lay.sizes[level], lay.hashed[level])
            acc = acc + weight[:, None] * table[idx]
        outs.append(acc)
    return torch.cat(outs, dim=-1)
