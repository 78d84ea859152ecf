"""`recon batch`: reconstruct many captures as Ray tasks, one task per capture.

Each task runs the ordinary command line in a child process (``python -m
reconstruction.cli fit CAPTURE --out OUT/NAME ...``, structure from motion included for
photo folders and videos, then ``recon export`` when ``--export`` is given), so a batch
result is exactly what ``recon fit`` would have written, and a crash in one capture
cannot take the others (or the driver) down. Tasks declare ``--cpus-per-task`` /
``--gpus-per-task`` to Ray, which runs as many at once as the cluster has room for.

A capture whose input is bad (``recon fit`` exits 2 with its ``recon: error:`` line) fails
at once with that line as its message; any other failure (a crash, a killed process, a
lost node) is retried up to ``--retries`` times. A capture whose outputs already exist in
``OUT/NAME`` (metrics.json and the method's files) is skipped, so running the same batch
again continues it. ``OUT/summary.csv`` and ``OUT/summary.json`` get one row per capture.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXIT_BAD_INPUT = 2
SUMMARY_COLUMNS = ("capture", "status", "seconds", "message", "attempts", "input", "out",
                   "steps", "train_seconds", "steps_per_second", "test_psnr", "outputs")
"""The summary's fixed columns; other scalar metrics of metrics.json follow them."""
LOG_NAME = "batch_task.log"
"""The child processes' output of the last attempt, in each capture's output folder."""


class BatchError(ValueError):
    """A batch that cannot start (inputs, manifest, cluster); ``str(err)`` says what to do."""


@dataclass(frozen=True)
class Job:
    """One capture of the batch."""

    name: str  # row name and output folder name
    input: str  # capture folder, photo folder or video (absolute)


# -- inputs ------------------------------------------------------------------------------------


def _is_video(p: Path) -> bool:
    from reconstruction.data.video import is_video

    return is_video(p)


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        k = seen.get(n, 0)
        seen[n] = k + 1
        out.append(n if k == 0 else f"{n}_{k + 1}")
    return out


def _read_manifest(path: Path) -> list[tuple[str | None, str]]:
    """(name or None, path) entries of a manifest: JSON (a list of paths or of
    {"path", "name"} objects, or {"captures": [...]}) or text (one path per line, # comments)."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise BatchError(f"{path}: cannot be read ({exc}); give a folder of captures or a "
                         f"manifest (one capture path per line)") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BatchError(f"{path}: not valid JSON ({exc}); a manifest is a list of capture "
                             f"paths or of {{\"path\": ..., \"name\": ...}} objects") from None
        if isinstance(data, dict):
            data = data.get("captures")
        if not isinstance(data, list):
            raise BatchError(f"{path}: expected a list of captures (or {{\"captures\": [...]}})")
        out: list[tuple[str | None, str]] = []
        for i, item in enumerate(data):
            if isinstance(item, str):
                out.append((None, item))
            elif isinstance(item, dict) and isinstance(item.get("path"), str):
                name = item.get("name")
                out.append((str(name) if name else None, item["path"]))
            else:
                raise BatchError(f"{path}: entry {i} is neither a path nor an object with "
                                 f"\"path\"")
        return out
    lines = [ln.strip() for ln in text.splitlines()]
    return [(None, ln) for ln in lines if ln and not ln.startswith("#")]


def list_jobs(inputs: str | Path) -> list[Job]:
    """The captures of ``inputs``: a manifest file, or a folder whose sub-folders (captures
    or photo folders) and videos are the captures. A ``NAME_capture`` folder that `recon
    fit` made beside photos or a video NAME in the same folder is not a capture of its own."""
    root = Path(inputs).expanduser()
    if root.is_file() and not _is_video(root):
        base = root.parent
        entries = []
        for name, p in _read_manifest(root):
            q = Path(p).expanduser()
            q = q if q.is_absolute() else base / q
            entries.append((name or (q.stem if _is_video(q) else q.name), str(q.resolve())))
        if not entries:
            raise BatchError(f"{root}: the manifest lists no captures")
        names = _unique([n for n, _ in entries])
        return [Job(n, p) for n, (_, p) in zip(names, entries, strict=True)]
    if not root.is_dir():
        raise BatchError(f"{root}: no such folder or manifest; give a folder of captures "
                         f"(one sub-folder or video each) or a manifest file")
    children = sorted(c for c in root.iterdir() if not c.name.startswith("."))
    sources = {c.stem if _is_video(c) else c.name for c in children
               if c.is_dir() or _is_video(c)}
    picked = []
    for c in children:
        if c.is_dir():
            if c.name.endswith("_capture") and c.name[: -len("_capture")] in sources:
                continue  # made by structure from motion from its sibling
            picked.append((c.name, str(c.resolve())))
        elif _is_video(c):
            picked.append((c.stem, str(c.resolve())))
    if not picked:
        raise BatchError(f"{root}: no captures in it (sub-folders with a capture or photos, "
                         f"or videos); give the folder that holds them, or a manifest")
    names = _unique([n for n, _ in picked])
    return [Job(n, p) for n, (_, p) in zip(names, picked, strict=True)]


def method_outputs(method: str) -> tuple[str, ...]:
    from reconstruction.methods.base import get_method

    return tuple(get_method(method).outputs)


def finished_metrics(out_dir: Path, outputs: tuple[str, ...]) -> dict[str, Any] | None:
    """metrics.json of a finished capture whose output files all exist, else None."""
    m = out_dir / "metrics.json"
    if not m.is_file() or not all((out_dir / o).is_file() for o in outputs):
        return None
    try:
        data = json.loads(m.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# -- the task ----------------------------------------------------------------------------------


class TaskFailure(RuntimeError):
    """A failure worth another attempt (a crash, not bad input)."""


def _error_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.startswith("recon: error:"):
            return ln
    return lines[-1][:500] if lines else ""


ATTEMPTS_NAME = "batch_attempts"


def _count_attempt(out: Path) -> None:
    try:
        n = int((out / ATTEMPTS_NAME).read_text()) if (out / ATTEMPTS_NAME).is_file() else 0
        (out / ATTEMPTS_NAME).write_text(str(n + 1))
    except (OSError, ValueError):
        pass


def _attempts(out: Path, default: int) -> int:
    try:
        return int((out / ATTEMPTS_NAME).read_text())
    except (OSError, ValueError):
        return default


def run_capture(job: dict[str, Any]) -> dict[str, Any]:
    """Fit (and export) one capture in child processes; returns its summary row.

    Bad input (exit 2) returns a failed row; any other non-zero exit raises
    :class:`TaskFailure` so that Ray retries it.
    """
    out = Path(job["out"])
    out.mkdir(parents=True, exist_ok=True)
    _count_attempt(out)
    env = dict(os.environ)
    threads = max(1, int(round(job.get("cpus", 1) or 1)))
    env.setdefault("OMP_NUM_THREADS", str(threads))
    env["OMP_NUM_THREADS"] = str(threads)
    cmd = [sys.executable, "-m", "reconstruction.cli", "fit", job["input"], "--method",
           job["method"], "--out", str(out), "--quiet", "--device", job.get("device", "auto")]
    for flag in ("steps", "budget", "downscale"):
        if job.get(flag) is not None:
            cmd += [f"--{flag}", str(job[flag])]
    for kv in job.get("settings") or []:
        cmd += ["--set", kv]
    cmds = [cmd]
    if job.get("export"):
        cmds.append([sys.executable, "-m", "reconstruction.cli", "export", str(out), "--format",
                     job["export"]])
    t0 = time.perf_counter()
    log = []
    for c in cmds:
        proc = subprocess.run(c, capture_output=True, text=True, env=env, check=False)
        log.append(f"$ {' '.join(c)}\n[exit {proc.returncode}]\n{proc.stdout}\n{proc.stderr}")
        try:
            (out / LOG_NAME).write_text("\n".join(log))
        except OSError:
            pass
        if proc.returncode == EXIT_BAD_INPUT:
            return {"status": "failed", "message": _error_line(proc.stderr),
                    "seconds": round(time.perf_counter() - t0, 2)}
        if proc.returncode != 0:
            raise TaskFailure(f"{c[3]} exited with code {proc.returncode}: "
                              f"{_error_line(proc.stderr) or 'no message'}")
    return {"status": "done", "message": "", "seconds": round(time.perf_counter() - t0, 2)}


# -- summary -----------------------------------------------------------------------------------


def summary_row(job: Job, out_dir: Path, status: str, seconds: float, message: str,
                attempts: int, outputs: tuple[str, ...]) -> dict[str, Any]:
    row: dict[str, Any] = {"capture": job.name, "status": status, "seconds": round(seconds, 2),
                           "message": message, "attempts": attempts, "input": job.input,
                           "out": str(out_dir)}
    metrics = finished_metrics(out_dir, outputs) if status in ("done", "skipped") else None
    if metrics:
        row.update(steps=metrics.get("steps"), train_seconds=metrics.get("seconds"),
                   steps_per_second=metrics.get("steps_per_second"),
                   test_psnr=metrics.get("test_psnr"))
        for k, v in metrics.items():
            if k not in row and k not in ("seconds", "data") and isinstance(v, (int, float, str)) \
                    and not isinstance(v, bool):
                row[k] = v
        files = [str(out_dir / o) for o in outputs if (out_dir / o).is_file()]
        files += sorted(str(p) for p in out_dir.glob("mesh.*")
                        if p.suffix != ".ply" and str(p) not in files)
        row["outputs"] = ";".join(files)
    return row


def write_summary(out: Path, rows: list[dict[str, Any]]) -> tuple[Path, Path]:
    from reconstruction.atomic import atomic_write

    out.mkdir(parents=True, exist_ok=True)
    extra = sorted({k for r in rows for k in r} - set(SUMMARY_COLUMNS))
    cols = list(SUMMARY_COLUMNS) + extra
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({c: ("" if r.get(c) is None else r.get(c)) for c in cols})
    csv_path = atomic_write(out / "summary.csv", buf.getvalue())
    counts = {s: sum(r["status"] == s for r in rows) for s in ("done", "failed", "skipped")}
    json_path = atomic_write(out / "summary.json",
                             json.dumps({"captures": rows, "counts": counts}, indent=2))
    return Path(csv_path), Path(json_path)


# -- the driver --------------------------------------------------------------------------------


def _ray():
    try:
        import ray
    except ImportError:
        raise BatchError("recon batch needs Ray: pip install 'reconstudio[batch]' "
                         "(or pip install ray)") from None
    return ray


def _connect(ray, address: str, num_cpus: int | None) -> bool:
    """Start or join Ray; returns True when this call started the instance (stop it after)."""
    if address in ("local", "", None):
        # a new single-node instance, no dashboard; it is stopped when the batch ends
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False,
                 logging_level="ERROR", log_to_driver=False)
        return True
    try:
        ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    except Exception as exc:  # noqa: BLE001 - ConnectionError, grpc errors, ...
        hint = (" (ray:// needs the client: pip install 'ray[client]')"
                if address.startswith("ray://") else "")
        raise BatchError(f"--address {address}: could not connect to Ray ({exc}){hint}; "
                         f"start a cluster with `ray start --head` or use --address local") from None
    return False


def run_batch(inputs: str, method: str, out: str, *, address: str = "local",
              cpus_per_task: float = 1.0, gpus_per_task: float = 0.0, retries: int = 2,
              steps: int | None = None, budget: float | None = None, downscale: int | None = None,
              device: str = "auto", settings: list[str] | None = None, export: str | None = None,
              num_cpus: int | None = None, quiet: bool = False) -> dict[str, Any]:
    """Run the batch; returns {"captures": rows, "counts": ..., "summary_csv", "summary_json"}."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    jobs = list_jobs(inputs)
    try:
        outputs = method_outputs(method)
    except ValueError as exc:
        raise BatchError(str(exc)) from None
    out_root = Path(out).expanduser()
    out_root.mkdir(parents=True, exist_ok=True)
    console = Console(stderr=True, quiet=quiet)
    rows: dict[str, dict[str, Any]] = {}
    todo = []
    for job in jobs:
        d = out_root / job.name
        if finished_metrics(d, outputs) is not None:
            rows[job.name] = summary_row(job, d, "skipped", 0.0, "outputs already there",
                                         0, outputs)
        else:
            todo.append(job)
    console.print(f"recon batch: {len(jobs)} captures, {len(jobs) - len(todo)} already done, "
                  f"{len(todo)} to run ({method}, {cpus_per_task:g} CPU"
                  f"{f', {gpus_per_task:g} GPU' if gpus_per_task else ''} per task)")
    if todo:
        ray = _ray()
        started = _connect(ray, address, num_cpus)
        try:
            task = ray.remote(run_capture).options(
                num_cpus=cpus_per_task, num_gpus=gpus_per_task, max_retries=max(0, retries),
                retry_exceptions=[TaskFailure])
            refs = {}
            t_submit = time.perf_counter()
            for job in todo:
                (out_root / job.name / ATTEMPTS_NAME).unlink(missing_ok=True)
                spec = {"input": job.input, "out": str(out_root / job.name), "method": method,
                        "steps": steps, "budget": budget, "downscale": downscale,
                        "device": device, "settings": list(settings or []), "export": export,
                        "cpus": cpus_per_task}
                refs[task.remote(spec)] = job
            columns = [TextColumn("[bold]batch"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("{task.fields[status]}"), TimeElapsedColumn()]
            with Progress(*columns, console=console, disable=quiet) as bar:
                t = bar.add_task("batch", total=len(todo), status="")
                pending = list(refs)
                while pending:
                    ready, pending = ray.wait(pending, num_returns=1, timeout=1.0)
                    for ref in ready:
                        job = refs[ref]
                        d = out_root / job.name
                        try:
                            res = ray.get(ref)
                            attempts = 1
                        except Exception as exc:  # noqa: BLE001 - the last attempt's error
                            cause = getattr(exc, "cause", None) or exc
                            res = {"status": "failed", "message": str(cause).strip().splitlines()[-1]
                                   if str(cause).strip() else type(cause).__name__,
                                   "seconds": time.perf_counter() - t_submit}
                            attempts = retries + 1
                        attempts = _attempts(d, attempts)
                        rows[job.name] = summary_row(job, d, res["status"], res["seconds"],
                                                     res["message"], attempts, outputs)
                        colour = "green" if res["status"] == "done" else "red"
                        bar.console.print(f"[{colour}]{res['status']}[/] {job.name} "
                                          f"({res['seconds']:.1f} s) {res['message']}")
                        bar.advance(t)
                    bar.update(t, status=f"{len(pending)} running or waiting")
        finally:
            if started:
                ray.shutdown()
    ordered = [rows[j.name] for j in jobs]
    csv_path, json_path = write_summary(out_root, ordered)
    counts = {s: sum(r["status"] == s for r in ordered) for s in ("done", "failed", "skipped")}
    return {"captures": ordered, "counts": counts, "summary_csv": str(csv_path),
            "summary_json": str(json_path)}


def cmd_batch(args: argparse.Namespace) -> int:
    """`recon batch`; exit 0 when no capture failed, 1 otherwise (the summary says which)."""
    from reconstruction.cli import UsageError

    try:
        result = run_batch(args.inputs, args.method, args.out, address=args.address,
                           cpus_per_task=args.cpus_per_task, gpus_per_task=args.gpus_per_task,
                           retries=args.retries, steps=args.steps, budget=args.budget,
                           downscale=args.downscale, device=args.device, settings=args.set,
                           export=args.export, num_cpus=args.num_cpus, quiet=args.quiet)
    except BatchError as exc:
        raise UsageError(str(exc)) from None
    print(json.dumps({"out": args.out, **result["counts"], "summary": result["summary_csv"]}))
    return 1 if result["counts"]["failed"] else 0
