"""The fused C hash-grid kernel (``_hashgrid_cpu``) as a torch autograd Function, and the
sparse Adam that goes with it.

Work is split over ``torch.get_num_threads()`` Python threads that each run a range of
points (forward, input gradient) or a set of levels (table gradient and Adam: levels own
disjoint parts of the table, so the scatter needs no atomics); the C code releases the GIL.

Sparse updates: when a :class:`SparseTable` is attached to the grid (done by
:class:`HashGridAdam`), the backward pass accumulates the table gradient into a persistent
buffer and flags the entries it touched instead of returning a dense gradient the size of
the table; the optimizer then updates, and clears, only the flagged entries. No memory
proportional to the table is allocated per step.
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


def _splits(n: int, parts: int) -> list[tuple[int, int]]:
    parts = max(1, min(parts, n))
    step = (n + parts - 1) // parts
    return [(i, min(n, i + step)) for i in range(0, n, step)]


TOUCH_GROUP = 64  # table entries per "touched" flag (TOUCH_SHIFT in the C kernel)


class SparseTable:
    """Persistent gradient buffer and touched-group flags of one grid."""

    def __init__(self, n_params: int, n_entries: int):
        self.grad = torch.zeros(n_params)  # [n_params] accumulated table gradient
        groups = (n_entries + TOUCH_GROUP - 1) // TOUCH_GROUP
        self.touched = torch.zeros(groups, dtype=torch.uint8)  # [groups] 1 = some gradient


class LevelTensors:
    """Per-level layout as contiguous tensors whose addresses the kernel reads."""

    def __init__(self, d: int, n_feat: int, scales, resolutions, sizes, offsets, hashed):
        self.d, self.n_levels, self.n_feat = d, len(scales), n_feat
        self.scales = torch.tensor(scales, dtype=torch.float32)
        self.res = torch.tensor(resolutions, dtype=torch.int64)
        self.sizes = torch.tensor(sizes, dtype=torch.int64)
        self.offsets = torch.tensor(offsets[: len(scales)], dtype=torch.int64)
        self.hashed = torch.tensor([int(h) for h in hashed], dtype=torch.int64)
        self.n_entries = int(offsets[len(scales)])
        self.sparse: SparseTable | None = None

    def head(self) -> tuple:
        return (self.d, self.n_levels, self.n_feat, self.scales.data_ptr(), self.res.data_ptr(),
                self.sizes.data_ptr(), self.offsets.data_ptr(), self.hashed.data_ptr())

    def threads(self) -> int:
        return max(1, min(torch.get_num_threads(), self.n_levels))


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
        # threads take interleaved levels: each keeps its tables hot, coarse and fine shared
        t = lay.threads() if n >= 4096 else 1
        _run([lambda k=k: _C.forward(*head, (xp, tp, op, 0, n, k, t)) for k in range(t)])
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
            sparse = lay.sparse
            if sparse is not None:  # accumulate in place; the optimizer reads the flags
                gp, tf = sparse.grad.data_ptr(), sparse.touched.data_ptr()
            else:
                grad_params = torch.zeros_like(params)
                gp, tf = grad_params.data_ptr(), 0
            t = lay.threads()
            _run([lambda k=k: _C.backward_table(*head, (x.data_ptr(), g.data_ptr(), gp, tf, n, k, t))
                  for k in range(t)])
        if ctx.needs_input_grad[0]:
            grad_x = torch.empty_like(x)
            threads = torch.get_num_threads() if n >= 4096 else 1
            _run([lambda a=a, b=b: _C.backward_input(
                *head, (x.data_ptr(), params.data_ptr(), g.data_ptr(), grad_x.data_ptr(), a, b))
                for a, b in _splits(n, threads)])
        return grad_x, grad_params, None


class HashGridAdam(torch.optim.Optimizer):
    """Adam for a HashGrid's table (instant-ngp's choices: betas (0.9, 0.99), eps 1e-15).

    With the fused CPU kernel it is sparse: only entries that received a gradient this step
    are updated (their moments too; untouched entries keep theirs, as in instant-ngp), with
    the bias correction of the global step. With other backends it is plain dense Adam.
    """

    def __init__(self, grid, lr: float = 1e-2, betas=(0.9, 0.99), eps: float = 1e-15,
                 weight_decay: float = 0.0):
        super().__init__([grid.params], dict(lr=lr, betas=tuple(betas), eps=eps,
                                             weight_decay=weight_decay))
        self.grid = grid
        self.sparse = getattr(grid, "backend", "") == "cpu" and available()
        if self.sparse:
            lay: LevelTensors = grid._levels
            if lay.sparse is None:
                lay.sparse = SparseTable(grid.params.numel(), lay.n_entries)

    def zero_grad(self, set_to_none: bool = True) -> None:
        super().zero_grad(set_to_none)  # the sparse buffer is cleared by step() itself

    @torch.no_grad()
    def step(self, closure=None):
        group = self.param_groups[0]
        p = group["params"][0]
        st = self.state[p]
        if not st:
            st["step"] = torch.zeros((), dtype=torch.float32)
            st["exp_avg"] = torch.zeros_like(p)
            st["exp_avg_sq"] = torch.zeros_like(p)
        st["step"] += 1
        t = float(st["step"])
        b1, b2 = group["betas"]
        bc1, bc2 = 1 - b1**t, 1 - b2**t
        if self.sparse:
            lay: LevelTensors = self.grid._levels
            sp = lay.sparse
            head = lay.head()
            k_threads = lay.threads()
            addrs = (p.data_ptr(), sp.grad.data_ptr(), st["exp_avg"].data_ptr(),
                     st["exp_avg_sq"].data_ptr(), sp.touched.data_ptr())
            _run([lambda k=k: _C.adam(*head, (*addrs, k, k_threads), group["lr"], b1, b2,
                                      group["eps"], bc1, bc2, group["weight_decay"])
                  for k in range(k_threads)])
            sp.touched.zero_()
            return None
        if p.grad is None:
            return None
        g = p.grad
        if group["weight_decay"]:
            g = g.add(p, alpha=group["weight_decay"])
        st["exp_avg"].mul_(b1).add_(g, alpha=1 - b1)
        st["exp_avg_sq"].mul_(b2).addcmul_(g, g, value=1 - b2)
        denom = (st["exp_avg_sq"] / bc2).sqrt_().add_(group["eps"])
        p.addcdiv_(st["exp_avg"], denom, value=-group["lr"] / bc1)
        return None

