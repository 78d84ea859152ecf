"""Data-parallel training of one capture over several processes (torch.distributed).

Every rank holds the whole model and the whole capture. Parameters start identical (the
method seeds its initialisation from ``config.seed``); each rank draws its own ray batch
(its ray generator is re-seeded with the rank); after ``backward()`` the method calls
:meth:`~reconstruction.methods.base.Method.reduce_gradients`, which averages the
gradients over the ranks, so every rank applies the same update and the parameters stay
identical. Rank 0 alone writes run.json, checkpoints and the outputs.

The hash-grid table is the large part of the model and each step touches a small part of
it. With the fused CPU kernel its gradient lives in a persistent buffer with one "touched"
flag per 64 entries (:class:`~reconstruction.encoding.cpu_kernel.SparseTable`); here the
flags are summed with the dense MLP gradients in one all-reduce, then only the entries of
the groups some rank touched are gathered, all-reduced and scattered back (the whole
buffer when more than half of it was touched), and the flags are set to the union, so
the sparse Adam of every rank updates the same entries with the same values.

Launch: ``recon fit DATA --out DIR --nproc N`` spawns N local processes on loopback;
under ``torchrun`` (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set) ``recon fit`` joins
the group that torchrun set up, on one machine or several. Backend: gloo on CPU, nccl on
CUDA.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import socket
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

SUPPORTED_METHODS = ("nerf",)
"""Methods whose step calls ``reduce_gradients`` between backward and the optimizer steps."""

RANK_SEED_STRIDE = 1_000_003
"""Rank r draws its rays from ``Generator(seed + r * RANK_SEED_STRIDE)``."""

SPARSE_FRACTION = 0.5
"""Above this touched fraction of the table the whole gradient buffer is all-reduced."""


class DistributedError(RuntimeError):
    """A distributed run that cannot start; ``str(err)`` says what to do."""


def env_world() -> tuple[int, int, int, int] | None:
    """(rank, world_size, local_rank, local_world_size) from torchrun's variables, or None."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return None
    world = int(os.environ["WORLD_SIZE"])
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    return rank, world, local, local_world


def requested(args: argparse.Namespace) -> bool:
    """True when ``recon fit`` should train data-parallel: --nproc > 1 or under torchrun."""
    nproc = getattr(args, "nproc", None) or 1
    env = env_world()
    return nproc > 1 or (env is not None and env[1] > 1)


# -- gradient reduction -----------------------------------------------------------------------


def _split_params(method) -> tuple[list, list]:
    """(sparse hash-grid optimizers, dense parameters) of a method's optimizers."""
    opts = list(getattr(method, "optimizers", ()) or ())
    if not opts:
        return [], [p for p in method.field.parameters() if p.requires_grad]
    sparse = [o for o in opts if getattr(o, "sparse", False)]
    skip = {id(o.param_groups[0]["params"][0]) for o in sparse}
    dense, seen = [], set()
    for o in opts:
        for g in o.param_groups:
            for p in g["params"]:
                if id(p) not in skip and id(p) not in seen and p.requires_grad:
                    seen.add(id(p))
                    dense.append(p)
    return sparse, dense


@torch.no_grad()
def reduce_gradients(method) -> None:
    """Average every gradient of ``method`` over the process group (called by the method
    between backward and its optimizer steps). Missing dense gradients count as zeros."""
    from reconstruction.encoding.cpu_kernel import TOUCH_GROUP

    world = dist.get_world_size()
    sparse, dense = _split_params(method)
    for p in dense:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flags = [o.grid._levels.sparse.touched for o in sparse]
    parts = [p.grad.reshape(-1) for p in dense] + [f.to(torch.float32) for f in flags]
    if not parts:
        return
    flat = torch.cat(parts)
    dist.all_reduce(flat)
    flat.div_(world)
    at = 0
    for p in dense:
        n = p.numel()
        p.grad.copy_(flat[at:at + n].view_as(p.grad))
        at += n
    for o, f in zip(sparse, flags, strict=True):
        n = f.numel()
        union = flat[at:at + n] > 0
        at += n
        f.copy_(union.to(f.dtype))
        lay = o.grid._levels
        grad = lay.sparse.grad
        groups = union.nonzero().squeeze(1)
        if groups.numel() * TOUCH_GROUP > SPARSE_FRACTION * lay.n_entries:
            dist.all_reduce(grad)
            grad.div_(world)
            continue
        if groups.numel() == 0:
            continue
        entries = (groups[:, None] * TOUCH_GROUP + torch.arange(TOUCH_GROUP)).reshape(-1)
        entries = entries[entries < lay.n_entries]
        table = grad.view(lay.n_entries, lay.n_feat)
        values = table.index_select(0, entries)  # [E, F]
        dist.all_reduce(values)
        values.div_(world)
        table.index_copy_(0, entries, values)


# -- the training run -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _flat_params(method) -> torch.Tensor:
    return torch.cat([t.detach().reshape(-1).float().cpu()
                      for t in method.field.state_dict().values()])


def train(rank: int, world: int, plan: dict[str, Any], *, local_rank: int = 0,
          local_world: int = 1, init_method: str = "env://",
          progress: bool = True) -> dict[str, Any] | None:
    """One rank of a data-parallel fit; rank 0 writes the outputs and returns the metrics
    (other ranks return None). ``plan``: data, method, out, steps, budget, downscale,
    device, settings, bounds, checkpoint_every, and optionally dump_states (a folder where
    every rank writes ``rank{r}.pt``, its field's state, for checking)."""
    from reconstruction import protocol as P
    from reconstruction.data import load_capture
    from reconstruction.engine import (
        CHECKPOINT_NAME,
        HISTORY_NAME,
        RUN_NAME,
        build_method,
        resolve_device,
        run_record,
        save_checkpoint,
        write_json_atomic,
    )

    device = resolve_device(plan.get("device", "auto"))
    if device.type == "cpu":
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(1, local_world)))
        backend = "gloo"
    else:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
        backend = "nccl"
    dist.init_process_group(backend, init_method=init_method, rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=float(plan.get("timeout", 600))))
    try:
        return _train(rank, world, plan, device, P, load_capture, build_method, run_record,
                      save_checkpoint, write_json_atomic, CHECKPOINT_NAME, HISTORY_NAME,
                      RUN_NAME, progress)
    finally:
        dist.destroy_process_group()


def _train(rank, world, plan, device, P, load_capture, build_method, run_record,
           save_checkpoint, write_json_atomic, CHECKPOINT_NAME, HISTORY_NAME, RUN_NAME,  # noqa: N803
           progress):
    steps, budget = plan.get("steps"), plan.get("budget")
    if steps is None and budget is None:
        budget = 120.0
    start = P.Start(data=plan["data"], method=plan["method"], out=plan.get("out"), steps=steps,
                    budget=budget, downscale=int(plan.get("downscale", 1)),
                    device=plan.get("device", "auto"), settings=dict(plan.get("settings") or {}),
                    bounds=plan.get("bounds"))
    scene = load_capture(start.data, downscale=start.downscale, bounds=start.bounds)
    method = build_method(start.method, start.settings)
    method.setup(scene, device)
    seed = int(getattr(method.config, "seed", 0))
    method.gen = torch.Generator().manual_seed(seed + RANK_SEED_STRIDE * rank)
    flat = _flat_params(method).to(device)
    ref = flat.clone()
    dist.broadcast(ref, 0)
    if not torch.equal(flat, ref):
        raise DistributedError("the ranks built different initial parameters; use the same "
                               "code, settings and seed on every machine")
    out = Path(start.out) if (start.out and rank == 0) else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / RUN_NAME, {**run_record(start), "nproc": world})
    bar = None
    if rank == 0 and progress:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                       TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
                       console=Console(stderr=True))
        bar.start()
        task = bar.add_task(f"fit {start.method} x{world}", total=steps or budget,
                            status="training")
    history: list[tuple[int, float]] = []
    train_seconds = 0.0  # the ranks' mean, identical on every rank (so are the decisions)
    rays_total = 0.0
    metrics: dict[str, float] = {}
    last_ckpt = time.perf_counter()
    every = float(plan.get("checkpoint_every", 60.0) or 0.0)
    stats = torch.zeros(3, dtype=torch.float64, device=device)

    def extra() -> dict[str, Any]:
        return {"data": str(Path(start.data).resolve()), "downscale": start.downscale,
                "train_seconds": float(train_seconds), "nproc": world,
                "history": [[int(a), float(b)] for a, b in history]}

    try:
        while True:
            frac = max(method.step_count / steps if steps else 0.0,
                       train_seconds / budget if budget else 0.0)
            method.progress = min(1.0, frac)
            if (steps is not None and method.step_count >= steps) or (
                    budget is not None and train_seconds >= budget):
                break
            t0 = time.perf_counter()
            metrics = method.step()
            dt = time.perf_counter() - t0
            stats[0], stats[1], stats[2] = metrics.get("loss", 0.0), metrics.get("rays", 0.0), dt
            dist.all_reduce(stats)
            loss = float(stats[0]) / world
            rays_total += float(stats[1])
            train_seconds += float(stats[2]) / world
            metrics = {**metrics, "loss": loss, "rank0_loss": metrics.get("loss", loss),
                       "psnr": -10.0 * math.log10(max(loss, 1e-10)), "rays_all_ranks": float(stats[1])}
            history.append((method.step_count, loss))
            if bar is not None:
                bar.update(task, completed=method.step_count if steps else train_seconds,
                           status=f"step {method.step_count}  loss {loss:.4f}")
            if out is not None and every and time.perf_counter() - last_ckpt >= every:
                save_checkpoint(out / CHECKPOINT_NAME, method.name, method.state_dict(),
                                extra=extra())
                last_ckpt = time.perf_counter()
    finally:
        if bar is not None:
            bar.stop()
    # the ranks must hold the same parameters: rank 0's against every rank's
    flat = _flat_params(method).to(device)
    ref = flat.clone()
    dist.broadcast(ref, 0)
    diff = (flat - ref).abs().max().reshape(1).to(torch.float64)
    dist.all_reduce(diff, op=dist.ReduceOp.MAX)
    dump = plan.get("dump_states")
    if dump:
        Path(dump).mkdir(parents=True, exist_ok=True)
        torch.save({k: v.detach().cpu() for k, v in method.field.state_dict().items()},
                   Path(dump) / f"rank{rank}.pt")
    if rank != 0:
        return None
    result: dict[str, Any] = {
        "method": method.name, "data": str(start.data), "format": scene.format,
        "steps": method.step_count, "steps_this_run": method.step_count,
        "seconds": round(train_seconds, 3),
        "steps_per_second": round(method.step_count / max(train_seconds, 1e-9), 3),
        "rays_per_second": round(rays_total / max(train_seconds, 1e-9), 1),
        "device": str(device), "nproc": world, "rank_max_param_diff": float(diff),
        "image_size": [scene.width, scene.height], "downscale": start.downscale,
        "bounds": [[float(x) for x in b] for b in scene.bounds],
        "skipped_images": [str(p) for p in scene.problems],
        "final_train_metrics": metrics, "history": history,
    }
    result.update(method.evaluate() if hasattr(method, "evaluate") else {})
    if out is not None:
        outputs = dict(method.export(out))
        outputs["checkpoint"] = str(save_checkpoint(out / CHECKPOINT_NAME, method.name,
                                                    method.state_dict(), extra=extra()))
        write_json_atomic(out / HISTORY_NAME, {"loss": history})
        outputs["history"] = str(out / HISTORY_NAME)
        write_json_atomic(out / "metrics.json", {k: v for k, v in result.items() if k != "history"})
        outputs["metrics"] = str(out / "metrics.json")
        result["outputs"] = outputs
    return result


def _spawned(index: int, world: int, plan: dict[str, Any], port: int, result_file: str) -> None:
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    try:
        result = train(index, world, plan, local_rank=index, local_world=world,
                       init_method=f"tcp://127.0.0.1:{port}", progress=plan.get("progress", True))
    except Exception as exc:  # the parent reports the first rank's message as one line
        Path(f"{result_file}.rank{index}.error").write_text(str(exc) or type(exc).__name__)
        raise
    if index == 0:  # a file, not a pipe: a long history must not block the exit
        Path(result_file).write_text(json.dumps(result))


def launch(nproc: int, plan: dict[str, Any]) -> dict[str, Any]:
    """Train ``plan`` with ``nproc`` local processes on loopback; returns rank 0's metrics."""
    import tempfile

    import torch.multiprocessing as tmp

    with tempfile.TemporaryDirectory(prefix="recon-dist-") as tmpdir:
        result_file = Path(tmpdir) / "result.json"
        try:
            tmp.spawn(_spawned, args=(nproc, plan, _free_port(), str(result_file)),
                      nprocs=nproc, join=True)
        except (tmp.ProcessRaisedException, tmp.ProcessExitedException) as exc:
            errors = sorted(Path(tmpdir).glob("result.json.rank*.error"))
            why = errors[0].read_text() if errors else str(exc).strip().splitlines()[0]
            raise DistributedError(f"data-parallel training stopped: {why}") from None
        return json.loads(result_file.read_text()) if result_file.is_file() else {}


def fit_distributed(args: argparse.Namespace) -> int:
    """``recon fit ... --nproc N`` (or under torchrun): the data-parallel fit."""
    from reconstruction.cli import UsageError, _parse_settings, ensure_capture, parse_bounds

    if getattr(args, "resume", None) is not None:
        raise UsageError("--resume continues in one process; drop --nproc (a distributed "
                         "run's checkpoint resumes like any other)")
    method = args.method or "nerf"
    if method not in SUPPORTED_METHODS:
        raise UsageError(f"--nproc: data-parallel training supports {', '.join(SUPPORTED_METHODS)}"
                         f", not {method}; drop --nproc")
    if args.data is None or args.out is None:
        raise UsageError("recon fit needs DATA and --out")
    if Path(args.out).suffix == ".recon":
        raise UsageError("--nproc writes a run folder, not a .recon project; give another "
                         "--out (or drop --nproc)")
    env = env_world()
    if env is None or env[0] == 0:
        data = str(ensure_capture(args.data))  # structure from motion once, on rank 0
    else:
        data = str(args.data)
    plan = {"data": data, "method": method, "out": args.out, "steps": args.steps,
            "budget": args.budget, "downscale": args.downscale, "device": args.device,
            "settings": _parse_settings(method, args.set or []),
            "bounds": parse_bounds(args.bounds), "checkpoint_every": getattr(args, "checkpoint_every", 60.0),
            "progress": not args.quiet}
    if env is not None:
        rank, world, local, local_world = env
        if env[0] != 0 and not Path(data).exists():
            raise UsageError(f"{data}: not on this machine; every node needs the capture "
                             f"at the same path")
        try:
            metrics = train(rank, world, plan, local_rank=local, local_world=local_world,
                            progress=not args.quiet)
        except DistributedError as exc:
            raise UsageError(str(exc)) from None
        if metrics is None:
            return 0
    else:
        try:
            metrics = launch(int(args.nproc), plan)
        except DistributedError as exc:
            raise UsageError(str(exc)) from None
    summary = {k: metrics[k] for k in ("steps", "seconds", "test_psnr", "nproc",
                                       "rays_per_second") if k in metrics}
    print(json.dumps({"out": args.out, **summary}))
    return 0
