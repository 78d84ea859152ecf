"""The fused C hash-grid kernel (``_hashgrid_cpu``) as a torch autograd Function.

Work is split over ``torch.get_num_threads()`` Python threads that each run a range of
points (forward, input gradient) or of levels (table gradient: levels own disjoint parts of
the table, so the scatter needs no atomics); the C code releases the GIL.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import torch
from torch import Tensor

try:
    from reconstruction.encoding import _hashgrid_cpu as _C
except ImportError:  # built by `pip install`; absent when no C compiler was available
    _C = None

_POOL: ThreadPoolExecutor | None = None


def available() -> bool:
    return _C is not None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=max(1, torch.get_num_threads()),
                                   thread_name_prefix="hashgrid")
    return _POOL


def _run(jobs) -> None:
    if len(jobs) == 1:
        jobs[0]()
        return
    for f in [_pool().submit(j) for j in jobs]:
        f.result()


class LevelTensors:
    """Per-level layout as contiguous tensors whose addresses the kernel reads."""

    def __init__(self, d: int, n_feat: int, scales, resolutions, sizes, offsets, hashed):
        self.d, self.n_levels, self.n_feat = d, len(scales), n_feat
        self.scales = torch.tensor(scales, dtype=torch.float32)
        self.res = torch.tensor(resolutions, dtype=torch.int64)
        self.sizes = torch.tensor(sizes, dtype=torch.int64)
        self.offsets = torch.tensor(offsets[: len(scales)], dtype=torch.int64)
        self.hashed = torch.tensor([int(h) for h in hashed], dtype=torch.int64)

    def head(self) -> tuple:
        return (self.d, self.n_levels, self.n_feat, self.scales.data_ptr(), self.res.data_ptr(),
                self.sizes.data_ptr(), self.offsets.data_ptr(), self.hashed.data_ptr())


def _splits(n: int, parts: int) -> list[tuple[int, int]]:
    parts = max(1, min(parts, n))
    step = (n + parts - 1) // parts
    return [(i, min(n, i + step)) for i in range(0, n, step)]


class HashGridCPU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, params: Tensor, lay: LevelTensors) -> Tensor:
        # x: [N, d] float32 in [0, 1]; params: [n_params] -> [N, L * F]
        x = x.contiguous()
        params_c = params.detach().contiguous()
        n = x.shape[0]
        out = torch.empty(n, lay.n_levels * lay.n_feat, dtype=torch.float32)
        head = lay.head()
        xp, tp, op = x.data_ptr(), params_c.data_ptr(), out.data_ptr()
        threads = torch.get_num_threads() if n >= 4096 else 1
        # threads take whole levels (each keeps its own table hot in cache)
        threads = min(threads, lay.n_levels)
        _run([lambda t=t: _C.forward(*head, xp, tp, op, 0, n, t, threads) for t in range(threads)])
        ctx.save_for_backward(x, params_c)
        ctx.lay = lay
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x, params = ctx.saved_tensors
        lay: LevelTensors = ctx.lay
        g = grad_out.contiguous().to(torch.float32)
        n = x.shape[0]
        head = lay.head()
        grad_x = grad_params = None
        if ctx.needs_input_grad[1]:
            grad_params = torch.zeros_like(params)
            gp = grad_params.data_ptr()
            threads = min(torch.get_num_threads(), lay.n_levels)
            _run([lambda t=t: _C.backward_table(*head, x.data_ptr(), g.data_ptr(), gp, n, t, threads)
                  for t in range(threads)])
        if ctx.needs_input_grad[0]:
            grad_x = torch.empty_like(x)
            threads = torch.get_num_threads() if n >= 4096 else 1
            _run([lambda a=a, b=b: _C.backward_input(*head, x.data_ptr(), params.data_ptr(), g.data_ptr(),
                                                     grad_x.data_ptr(), a, b, 0)
                  for a, b in _splits(n, threads)])
        return grad_x, grad_params, None
