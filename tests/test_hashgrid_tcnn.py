"""HashGrid's tinycudann (CUDA) backend against the plain PyTorch reference.

The comparisons need a CUDA device and tinycudann and are skipped elsewhere; the checks of
backend selection and of the error raised without them run everywhere.
"""

import pytest
import torch

from reconstruction.encoding import HashGrid, HashGridConfig, cpu_kernel, tcnn_backend
from reconstruction.encoding.hashgrid import level_layout
from reconstruction.encoding.tcnn_backend import tcnn_available

HAVE_TCNN = tcnn_available()
needs_tcnn = pytest.mark.skipif(
    not HAVE_TCNN, reason="tinycudann and a CUDA device are needed; neither is present on this machine")

# small table: dense coarse levels and hashed fine ones
CFG = {"otype": "HashGrid", "n_levels": 8, "n_features_per_level": 2, "log2_hashmap_size": 12,
       "base_resolution": 4, "per_level_scale": 1.6}
# instant-ngp's default grid (16 levels, 2^19 entries, resolutions 16..~4096)
NGP_CFG = {"otype": "HashGrid", "n_levels": 16, "n_features_per_level": 2, "log2_hashmap_size": 19,
           "base_resolution": 16, "per_level_scale": 1.447269237440378}


def _points(d: int, n: int = 3000, seed: int = 0) -> torch.Tensor:
    """Random points in [0, 1]^d plus the cube's corners, faces and cell boundaries."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, d, generator=g)
    x[0] = 0.0
    x[1] = 1.0
    x[2] = 0.5
    x[3] = 0.25
    x[4, 0] = 1.0
    x[5, 0] = 0.0
    # exactly on a level-0 cell face: x * scale + 0.5 is an integer
    scale0 = level_layout(d, HashGridConfig.from_dict(CFG)).scales[0]
    x[6] = torch.tensor(1.5 / scale0)
    return x


def _pair(d: int, cfg: dict):
    """A "tcnn" and a "reference" grid with the same (non-trivial) parameters."""
    tc = HashGrid(d, cfg, backend="tcnn")
    ref = HashGrid(d, cfg, backend="reference")
    with torch.no_grad():
        ref.params.uniform_(-1, 1)
    tc.load_state_dict(ref.state_dict())
    return tc, ref


# --- everywhere -------------------------------------------------------------------------


def test_tcnn_available_is_false_here_and_does_not_raise():
    ok = tcnn_available()
    reason = tcnn_backend.tcnn_unavailable_reason()
    assert isinstance(ok, bool) and ok == (reason is None)
    if not torch.cuda.is_available():
        assert ok is False
        assert "CUDA" in reason


def test_tcnn_available_swallows_errors_from_cuda_and_the_package_lookup(monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("driver exploded")

    monkeypatch.setattr(torch.cuda, "is_available", boom)
    monkeypatch.setattr(tcnn_backend.importlib.util, "find_spec", boom)
    assert tcnn_available() is False
    reason = tcnn_backend.tcnn_unavailable_reason()
    assert "tinycudann package" in reason
    if torch.version.cuda is not None:
        assert "driver exploded" in reason


@pytest.mark.skipif(HAVE_TCNN, reason="checks the error raised when tinycudann/CUDA are absent")
def test_tcnn_backend_without_cuda_raises_saying_what_is_missing():
    with pytest.raises(RuntimeError) as err:
        HashGrid(3, CFG, backend="tcnn")
    msg = str(err.value)
    assert "tcnn" in msg and "tinycudann" in msg
    if not torch.cuda.is_available():
        assert "CUDA" in msg
    # the fused network helper fails the same way, before touching tinycudann
    with pytest.raises(RuntimeError, match="tinycudann"):
        tcnn_backend.fused_mlp_with_grid(3, 4, CFG, hidden=64, layers=2)


@pytest.mark.skipif(HAVE_TCNN, reason="on a CUDA machine with tinycudann 'auto' picks 'tcnn'")
def test_auto_picks_the_cpu_kernel_here():
    enc = HashGrid(3, CFG)
    assert enc.backend == ("cpu" if cpu_kernel.available() else "torch")
    assert not enc.params.is_cuda
    out = enc(torch.rand(16, 3))
    assert out.shape == (16, enc.n_output_dims) and out.dtype == torch.float32


def test_auto_never_picks_tcnn_for_one_dimensional_input():
    # tinycudann's grid is compiled for 2-4 input dims only
    assert HashGrid(1, CFG).backend in ("cpu", "torch")


def test_state_dict_has_only_params_and_tcnn_module_imports_without_tinycudann():
    enc = HashGrid(3, CFG, backend="cpu")
    assert list(enc.state_dict()) == ["params"]
    assert enc._tcnn is None
    assert tcnn_backend.TCNN_GRID_DIMS == (2, 3, 4)


class _StandInEncoding(torch.nn.Module):
    """Stands in for ``tinycudann.Encoding`` on the CPU, following its Python module: it owns
    a flat ``params`` Parameter from its own initialisation, and ``forward`` reads
    ``self.params``, casts it to the module precision and runs the kernel (here the
    reference), returning ``output[:batch, :n_output_dims]``."""

    def __init__(self, n_input_dims, encoding_config, seed=1337, dtype=None):
        super().__init__()
        self.cfg = HashGridConfig.from_dict(encoding_config)
        self.d = n_input_dims
        n = level_layout(n_input_dims, self.cfg).offsets[-1] * self.cfg.n_features_per_level
        self.native_tcnn_module = type("Native", (), {"n_params": staticmethod(lambda: n)})()
        self.params = torch.nn.Parameter(torch.full((n,), 7.0))
        self.n_output_dims = self.cfg.n_levels * self.cfg.n_features_per_level
        self.dtype = dtype

    def forward(self, x):
        from reconstruction.encoding import hashgrid_reference

        params = self.params.to(self.dtype).contiguous()
        return hashgrid_reference(x, params, self.d, self.cfg)[:, : self.n_output_dims]


def test_tcnn_glue_evaluates_on_the_hashgrid_params(monkeypatch):
    """The wrapper's parameter sharing, checked with a CPU stand-in for tinycudann."""
    fake = type("FakeTcnn", (), {"Encoding": _StandInEncoding})
    monkeypatch.setattr(tcnn_backend, "require_tcnn", lambda *a, **k: fake)
    ref = HashGrid(3, CFG, backend="reference")
    with torch.no_grad():
        ref.params.uniform_(-1, 1)
    glue = tcnn_backend.TcnnHashGrid(3, ref.cfg, ref.params)
    assert glue.encoding.params is ref.params  # its own initial copy (all 7s) is dropped
    assert glue.encoding.dtype == torch.float32
    x = _points(3, n=200)
    x[7] = torch.tensor([-0.5, 1.5, 0.3])  # outside the cube: clamped
    g = torch.randn(200, ref.n_output_dims)
    a = glue._evaluate(x, ref.params)
    (ga,) = torch.autograd.grad(a, [ref.params], g)
    b = ref(x.clamp(0, 1))
    (gb,) = torch.autograd.grad(b, [ref.params], g)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(ga, gb)
    # a replaced parameter (load_state_dict(assign=True), functional calls) is picked up
    other = torch.nn.Parameter(ref.params.detach() * 2)
    torch.testing.assert_close(glue._evaluate(x, other), 2 * b.detach())
    assert glue.encoding.params is other
    with pytest.raises(RuntimeError, match="CUDA"):
        glue.forward(x, ref.params)  # params on the CPU
    with pytest.raises(RuntimeError, match="disagree"):
        tcnn_backend.TcnnHashGrid(3, ref.cfg, ref.params[:-8])
    with pytest.raises(ValueError, match="input dims"):
        tcnn_backend.TcnnHashGrid(1, ref.cfg, ref.params)


# --- CUDA + tinycudann ----------------------------------------------------------------


@needs_tcnn
@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("cfg", [CFG, NGP_CFG], ids=["small", "ngp"])
def test_tcnn_matches_reference_values(d, cfg):
    tc, ref = _pair(d, cfg)
    assert tc.backend == "tcnn" and tc.params.is_cuda
    x = _points(d)
    with torch.no_grad():
        a = tc(x.cuda())
        b = ref(x)
    assert a.dtype == torch.float32 and a.is_cuda and a.shape == b.shape
    torch.testing.assert_close(a.cpu(), b, atol=1e-4, rtol=1e-4)


@needs_tcnn
@pytest.mark.parametrize("d", [2, 3])
def test_tcnn_matches_reference_param_gradients(d):
    tc, ref = _pair(d, CFG)
    x = _points(d)
    a, b = tc(x.cuda()), ref(x)
    g = torch.randn(b.shape, generator=torch.Generator().manual_seed(1))
    (ga,) = torch.autograd.grad(a, [tc.params], g.cuda())
    (gb,) = torch.autograd.grad(b, [ref.params], g)
    assert ga.shape == tc.params.shape
    torch.testing.assert_close(ga.cpu(), gb, atol=1e-4, rtol=1e-4)
    assert gb.abs().max() > 0  # the comparison is not between two zero vectors


@needs_tcnn
def test_state_dict_from_cpu_backend_loads_into_tcnn_and_back():
    cpu = HashGrid(3, CFG, backend="cpu")
    with torch.no_grad():
        cpu.params.uniform_(-1, 1)
    tc = HashGrid(3, CFG, backend="tcnn")
    assert list(tc.state_dict()) == list(cpu.state_dict()) == ["params"]
    tc.load_state_dict(cpu.state_dict())
    x = _points(3)
    with torch.no_grad():
        torch.testing.assert_close(tc(x.cuda()).cpu(), cpu(x), atol=1e-4, rtol=1e-4)
    # a step on the GPU, then back onto the CPU backend
    tc(x.cuda()).square().sum().backward()
    with torch.no_grad():
        tc.params -= 0.1 * tc.params.grad
    back = HashGrid(3, CFG, backend="cpu")
    back.load_state_dict({k: v.cpu() for k, v in tc.state_dict().items()})
    with torch.no_grad():
        torch.testing.assert_close(back(x), tc(x.cuda()).cpu(), atol=1e-4, rtol=1e-4)
        assert not torch.equal(back.params, cpu.params)


@needs_tcnn
@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("cfg", [CFG, NGP_CFG], ids=["small", "ngp"])
def test_param_count_equals_tinycudann(d, cfg):
    import tinycudann as tcnn

    ref = tcnn.Encoding(d, HashGridConfig.from_dict(cfg).to_dict(), dtype=torch.float32)
    n_ref = int(ref.native_tcnn_module.n_params())
    assert n_ref == ref.params.numel()
    enc = HashGrid(d, cfg, backend="tcnn")
    assert enc.n_params == n_ref == HashGrid(d, cfg, backend="cpu").n_params
    assert enc.n_output_dims == ref.n_output_dims


@needs_tcnn
def test_tcnn_points_are_clamped_and_auto_picks_tcnn():
    enc = HashGrid(3, CFG)
    assert enc.backend == "tcnn"
    with torch.no_grad():
        enc.params.uniform_(-1, 1)
        x = torch.tensor([[-0.5, 1.5, 0.3]], device="cuda")
        torch.testing.assert_close(enc(x), enc(x.clamp(0, 1)))
