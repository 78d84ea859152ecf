"""The CUDA backend of :class:`~reconstruction.encoding.HashGrid`: tinycudann's fused hash grid.

tinycudann (``import tinycudann``) is optional and CUDA-only. Nothing here imports it at module
level, so this module always imports; :func:`tcnn_available` says whether the backend can run.

:class:`TcnnHashGrid` wraps one ``tinycudann.Encoding`` built from the HashGrid's own config
(``HashGridConfig.to_dict()``) in float32, whose flat parameter vector has exactly the layout
HashGrid keeps (tinycudann's ``GridEncoding`` is where that layout comes from). The wrapper
does not own parameters: every call evaluates tinycudann with the HashGrid's ``params``
tensor, so ``HashGrid.state_dict()`` is the same (one key, ``params``) on every backend.

:func:`fused_mlp_with_grid` builds ``tinycudann.NetworkWithInputEncoding`` (hash grid and MLP
in one CUDA module) for methods that want the fastest network on a GPU and do not need the
grid to be a separate, portable :class:`HashGrid`; see ``docs/hashgrid.md``.
"""

from __future__ import annotations

import functools
import importlib.util

import torch
from torch import Tensor

# tinycudann's grid encoding is compiled for 2, 3 and 4 input dimensions only (grid.h:
# "GridEncoding: number of input dims must be 2, 3 or 4."; older releases: 2 or 3).
TCNN_GRID_DIMS = (2, 3, 4)
# FullyFusedMLP widths (DOCUMENTATION.md); other widths use CutlassMLP.
FULLY_FUSED_WIDTHS = (16, 32, 64, 128)


def tcnn_unavailable_reason() -> str | None:
    """None when the tinycudann backend can run here, else what is missing, in words.

    Never raises. ``import tinycudann`` itself raises ``EnvironmentError`` (not ImportError)
    when torch sees no CUDA device, so CUDA is checked first and the package is then only
    looked up, not imported.
    """
    missing = []
    try:
        if torch.version.cuda is None:
            missing.append("a CUDA build of PyTorch (this torch is CPU-only)")
        elif not torch.cuda.is_available():
            missing.append("a CUDA device (torch.cuda.is_available() is False)")
    except Exception as exc:  # a broken driver can raise from is_available()
        missing.append(f"a working CUDA device ({type(exc).__name__}: {exc})")
    try:
        installed = importlib.util.find_spec("tinycudann") is not None
    except Exception:
        installed = False
    if not installed:
        missing.append("the tinycudann package (pip install "
                       "git+https://github.com/NVlabs/tiny-cuda-nn/#subdirectory=bindings/torch, "
                       "which needs nvcc and a GPU at build time)")
    if missing:
        return "missing " + " and ".join(missing)
    err = _import_error()
    return None if err is None else f"tinycudann is installed but does not load: {err}"


@functools.lru_cache(maxsize=1)
def _import_error() -> str | None:
    """Import tinycudann once (only called with CUDA present); the error text, or None."""
    try:
        import tinycudann  # noqa: F401
    except Exception as exc:  # ImportError, EnvironmentError (no compatible compute capability)...
        return f"{type(exc).__name__}: {exc}"
    return None


def tcnn_available() -> bool:
    """True when a CUDA device is present and ``import tinycudann`` works. Never raises."""
    try:
        return tcnn_unavailable_reason() is None
    except Exception:
        return False


def require_tcnn(what: str = "HashGrid backend 'tcnn'"):
    """Import and return the ``tinycudann`` module, or raise RuntimeError saying what is missing."""
    reason = tcnn_unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"{what} needs tinycudann on a CUDA device: {reason}. "
                           "Without them use backend='auto' (falls back to the CPU backends), 'cpu' or 'torch'.")
    import tinycudann

    return tinycudann


class TcnnHashGrid:
    """Evaluates a HashGrid with ``tinycudann.Encoding`` on the HashGrid's own ``params``.

    Deliberately not an ``nn.Module``: the HashGrid holding it registers no sub-module, so its
    ``state_dict()`` keeps the single ``params`` entry of the other backends. The tinycudann
    module's ``params`` slot is pointed at that tensor before each call (tinycudann's
    ``Module.forward`` reads ``self.params``, casts it to the module precision, a no-op in
    float32, and hands it to the CUDA kernel with autograd), so gradients land in the
    HashGrid's ``params`` and loads, ``.to()`` and optimizers act on one tensor.
    """

    def __init__(self, n_input_dims: int, cfg, params: Tensor, seed: int = 1337):
        # cfg: HashGridConfig; params: [n_params] float32 on CUDA, the HashGrid's parameter
        if n_input_dims not in TCNN_GRID_DIMS:
            raise ValueError(f"tinycudann's hash grid takes {TCNN_GRID_DIMS} input dims, got "
                             f"{n_input_dims}; use backend 'cpu' or 'torch'")
        tcnn = require_tcnn()
        self.n_input_dims = n_input_dims
        self.n_output_dims = cfg.n_levels * cfg.n_features_per_level
        self.config = cfg.to_dict()
        # float32: parameters and output in full precision, exactly our layout and values
        self.encoding = tcnn.Encoding(n_input_dims, self.config, seed=seed, dtype=torch.float32)
        n_tcnn = self.tcnn_n_params()
        if n_tcnn != params.numel():
            raise RuntimeError(f"tinycudann lays this grid out in {n_tcnn} parameters, HashGrid in "
                               f"{params.numel()}; the two disagree for config {self.config}")
        self._bind(params)  # drops tinycudann's own randomly initialised copy

    def tcnn_n_params(self) -> int:
        """Parameter count according to tinycudann (native ``n_params()``)."""
        native = getattr(self.encoding, "native_tcnn_module", None)
        if native is not None and hasattr(native, "n_params"):
            return int(native.n_params())
        return int(self.encoding.params.numel())

    def _bind(self, params: Tensor) -> None:
        # written into _parameters directly so that plain tensors (functional calls) work too
        if self.encoding._parameters.get("params") is not params:
            self.encoding._parameters["params"] = params

    def forward(self, x: Tensor, params: Tensor) -> Tensor:
        # x: [N, d] points, clamped to [0, 1]; params: [n_params] float32 CUDA -> [N, L * F] float32
        if not params.is_cuda:
            raise RuntimeError("the tinycudann backend needs the HashGrid's params on a CUDA device")
        if params.dtype != torch.float32:
            raise RuntimeError(f"the tinycudann backend is built in float32; params are {params.dtype}")
        x = x.to(device=params.device, dtype=torch.float32)
        with torch.cuda.device(params.device):
            return self._evaluate(x, params)

    def _evaluate(self, x: Tensor, params: Tensor) -> Tensor:
        # x: [N, d] float32 on params' device -> [N, L * F] float32
        self._bind(params)
        out = self.encoding(x.clamp(0.0, 1.0).contiguous())
        return out[:, : self.n_output_dims].to(torch.float32)

    __call__ = forward


def fused_mlp_with_grid(n_input_dims: int, n_output_dims: int, grid_cfg, hidden: int = 64,
                        layers: int = 2, activation: str = "ReLU", output_activation: str = "None",
                        seed: int = 1337):
    """``tinycudann.NetworkWithInputEncoding``: hash grid -> MLP as one CUDA module.

    ``grid_cfg``: HashGrid config dict or :class:`HashGridConfig` (validated the same way);
    ``hidden``: neurons per hidden layer (16/32/64/128 use FullyFusedMLP, others CutlassMLP);
    ``layers``: hidden layers. Input [N, n_input_dims] in [0, 1] on CUDA, output
    [N, n_output_dims] in tinycudann's preferred precision (half on most GPUs).

    Use it for CUDA-only training where speed matters most and the grid only feeds this MLP.
    Its parameters are one flat vector (MLP weights, then the grid table), not a HashGrid
    ``state_dict``; when a checkpoint must also load on the CPU backends, use
    ``HashGrid(backend="tcnn")`` and a separate MLP instead.
    """
    from reconstruction.encoding.hashgrid import HashGridConfig

    if n_input_dims not in TCNN_GRID_DIMS:
        raise ValueError(f"tinycudann's hash grid takes {TCNN_GRID_DIMS} input dims, got {n_input_dims}")
    if hidden < 1 or layers < 0 or n_output_dims < 1:
        raise ValueError(f"need hidden >= 1, layers >= 0, n_output_dims >= 1; got "
                         f"{hidden}, {layers}, {n_output_dims}")
    cfg = grid_cfg if isinstance(grid_cfg, HashGridConfig) else HashGridConfig.from_dict(grid_cfg)
    tcnn = require_tcnn("fused_mlp_with_grid")
    network = {
        "otype": "FullyFusedMLP" if hidden in FULLY_FUSED_WIDTHS else "CutlassMLP",
        "activation": activation,
        "output_activation": output_activation,
        "n_neurons": hidden,
        "n_hidden_layers": layers,
    }
    return tcnn.NetworkWithInputEncoding(n_input_dims, n_output_dims, cfg.to_dict(), network, seed=seed)
