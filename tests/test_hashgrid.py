"""HashGrid against a naive per-point reference written from tinycudann's definition."""

import math

import numpy as np
import pytest
import torch

from reconstruction.encoding import HashGrid, HashGridConfig
from reconstruction.encoding.hashgrid import level_layout

PRIMES = (1, 2654435761, 805459861)


def naive_encode(x: np.ndarray, params: np.ndarray, d: int, cfg: dict):
    """Per point, per level, per corner in plain Python integers and floats.

    Returns (features [N, L*F], d features / d params as a dict per point {param index: weight}).
    """
    n_levels, f = cfg["n_levels"], cfg["n_features_per_level"]
    t = 1 << cfg["log2_hashmap_size"]
    offsets, sizes, scales, ress = [], [], [], []
    off = 0
    for lvl in range(n_levels):
        scale = float(np.float32(np.exp2(np.float32(lvl * math.log2(cfg["per_level_scale"])))
                                 * np.float32(cfg["base_resolution"]) - np.float32(1.0)))
        res = math.ceil(scale) + 1
        size = min(((res**d + 7) // 8) * 8, t)
        offsets.append(off)
        sizes.append(size)
        scales.append(scale)
        ress.append(res)
        off += size
    feats = np.zeros((len(x), n_levels * f))
    grads = []
    for i, p in enumerate(x):
        g = {}
        for lvl in range(n_levels):
            pos = [float(p[k]) * scales[lvl] + 0.5 for k in range(d)]
            cell = [math.floor(v) for v in pos]
            frac = [v - c for v, c in zip(pos, cell, strict=True)]
            for corner in range(1 << d):
                c = [cell[k] + ((corner >> k) & 1) for k in range(d)]
                w = 1.0
                for k in range(d):
                    w *= frac[k] if (corner >> k) & 1 else 1 - frac[k]
                if ress[lvl] ** d <= sizes[lvl]:
                    idx, stride = 0, 1
                    for k in range(d):
                        idx += c[k] * stride
                        stride *= ress[lvl]
                else:
                    idx = 0
                    for k in range(d):
                        idx ^= (c[k] * PRIMES[k]) & 0xFFFFFFFF
                idx %= sizes[lvl]
                for j in range(f):
                    pi = (offsets[lvl] + idx) * f + j
                    feats[i, lvl * f + j] += w * params[pi]
                    g[(pi, lvl * f + j)] = g.get((pi, lvl * f + j), 0.0) + w
        grads.append(g)
    return feats, grads


CFG = {"otype": "HashGrid", "n_levels": 6, "n_features_per_level": 2, "log2_hashmap_size": 10,
       "base_resolution": 4, "per_level_scale": 1.8}


def _points(d: int, n: int = 40, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, d, generator=g)
    # include exact corners and faces of the cube and points on cell boundaries
    x[0] = 0.0
    x[1] = 1.0
    x[2, 0] = 0.5
    x[3] = 0.25
    return x


@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("backend", ["cpu", "torch", "reference"])
def test_values_and_gradients_match_naive(d, backend):
    enc = HashGrid(d, CFG, backend=backend)
    with torch.no_grad():
        enc.params.uniform_(-1, 1)
    x = _points(d)
    out = enc(x)
    ref, grads = naive_encode(x.double().numpy(), enc.params.detach().double().numpy(), d, CFG)
    np.testing.assert_allclose(out.detach().numpy(), ref, atol=1e-5)
    # gradient of sum(out * r) w.r.t. params equals sum over points of weights * r
    r = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    (out * r).sum().backward()
    expect = np.zeros(enc.n_params)
    rn = r.double().numpy()
    for i, g in enumerate(grads):
        for (pi, col), w in g.items():
            expect[pi] += w * rn[i, col]
    np.testing.assert_allclose(enc.params.grad.numpy(), expect, atol=1e-4)


def test_fast_matches_reference_on_large_table():
    cfg = {"otype": "HashGrid", "n_levels": 16, "n_features_per_level": 2, "log2_hashmap_size": 15,
           "base_resolution": 16, "per_level_scale": 1.447}
    fast = HashGrid(3, cfg, backend="torch")
    ref = HashGrid(3, cfg, backend="reference")
    ref.load_state_dict(fast.state_dict())
    x = torch.rand(3000, 3)
    a, b = fast(x), ref(x)
    torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    g = torch.randn_like(a)
    (ga,) = torch.autograd.grad(a, fast.params, g)
    (gb,) = torch.autograd.grad(b, ref.params, g)
    torch.testing.assert_close(ga, gb, atol=1e-5, rtol=1e-4)


def test_layout_matches_tinycudann_rules():
    cfg = HashGridConfig(n_levels=16, n_features_per_level=2, log2_hashmap_size=19,
                         base_resolution=16, per_level_scale=1.447269237440378)
    lay = level_layout(3, cfg)
    assert lay.resolutions[0] == 16  # ceil(16 - 1) + 1
    assert lay.sizes[0] == 16**3  # dense, already a multiple of 8
    assert not lay.hashed[0] and lay.hashed[-1]
    assert all(s <= 1 << 19 for s in lay.sizes)
    assert lay.sizes[-1] == 1 << 19
    assert all(s % 8 == 0 for s in lay.sizes)
    enc = HashGrid(3, cfg.to_dict())
    assert enc.n_params == lay.offsets[-1] * 2
    assert enc.n_output_dims == 32
    assert enc.params.abs().max() <= 1e-4  # tinycudann's init range


def test_rejects_bad_config_and_shapes():
    with pytest.raises(ValueError):
        HashGrid(3, {"otype": "Frequency"})
    with pytest.raises(ValueError):
        HashGrid(3, CFG)(torch.rand(4, 2))
    with pytest.raises(ValueError):
        HashGrid(3, CFG, backend="nope")


def test_output_is_continuous_across_cells():
    enc = HashGrid(3, CFG)
    with torch.no_grad():
        enc.params.uniform_(-1, 1)
    x = torch.rand(200, 3) * 0.98 + 0.01
    eps = 1e-4
    jump = (enc(x + eps) - enc(x)).abs().max()
    assert jump < 0.05  # d-linear interpolation: small moves give small changes


@pytest.mark.parametrize("d", [2, 3])
def test_fused_kernel_matches_reference_values_and_gradients(d):
    """The C kernel against the plain PyTorch reference: outputs, table and input gradients."""
    cfg = {"otype": "HashGrid", "n_levels": 16, "n_features_per_level": 2, "log2_hashmap_size": 14,
           "base_resolution": 16, "per_level_scale": 1.447}
    fast = HashGrid(d, cfg, backend="cpu")
    ref = HashGrid(d, cfg, backend="reference")
    with torch.no_grad():
        fast.params.uniform_(-1, 1)
    ref.load_state_dict(fast.state_dict())
    x = torch.rand(5000, d)
    x[:4] = torch.tensor([0.0, 1.0, 0.5, 0.25])[:, None]  # cube corners, cell boundaries
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    a, b = fast(xa), ref(xb)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    g = torch.randn_like(a)
    ga_p, ga_x = torch.autograd.grad(a, [fast.params, xa], g)
    gb_p, gb_x = torch.autograd.grad(b, [ref.params, xb], g)
    torch.testing.assert_close(ga_p, gb_p, atol=1e-4, rtol=1e-4)
    # input gradients differ only where a point sits exactly on a cell face (floor is a kink)
    torch.testing.assert_close(ga_x[4:], gb_x[4:], atol=1e-2, rtol=1e-3)
