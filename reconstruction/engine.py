"""The engine: a training session driven by commands, reporting through events.

:class:`Session` runs in whatever process calls it (the CLI runs it in-process);
:class:`EngineProcess` runs one in a separate ``spawn`` process for the window, so neither
the GIL nor a crash in training can freeze or kill the front end. Both speak the messages
of :mod:`reconstruction.protocol`.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing as mp
import os
import queue
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reconstruction import protocol as P

CHECKPOINT_NAME = "checkpoint.pt"
RUN_NAME = "run.json"
"""The run's request (capture, method, settings, target), written at its start: what
``recon fit --resume DIR`` continues."""
HISTORY_NAME = "history.json"
"""The loss of every step, carried across resumes."""


def run_record(start) -> dict[str, Any]:
    """The parts of a Start that define a run (plain JSON)."""
    return {"data": str(Path(start.data).resolve()), "method": start.method,
            "settings": dict(start.settings), "steps": start.steps, "budget": start.budget,
            "downscale": start.downscale, "device": start.device,
            "bounds": None if start.bounds is None else [list(map(float, b)) for b in start.bounds]}


def resolve_device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but no CUDA device is available; use --device cpu")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {name!r}; use auto, cpu or cuda")
    return torch.device(name)


def save_checkpoint(path: Path, method_name: str, state: dict[str, Any], extra: dict | None = None) -> Path:
    """Atomic torch.save of tensors and plain values (loads with weights_only=True).

    Serialised in memory first, then written through :func:`reconstruction.atomic.atomic_write`,
    so a full disk raises OSError (ENOSPC, naming ``path``) and leaves any previous
    checkpoint as it was.
    """
    import io

    import torch

    from reconstruction.atomic import atomic_write

    payload = {"format": "reconstudio-checkpoint", "version": 1, "method": method_name,
               "state": state, "extra": extra or {}}
    buf = io.BytesIO()
    torch.save(payload, buf)
    return atomic_write(Path(path), buf.getvalue())


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded safely. ``str(err)``: which file, why, the fix."""

    def __init__(self, path: str | Path, problem: str, fix: str):
        self.path = str(path)
        self.problem = problem
        self.fix = fix
        super().__init__(f"{self.path}: {problem}. {fix}")


_REFIT = "re-run `recon fit DATA --out DIR` to write a new one"


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint without executing code from it (``weights_only=True``).

    Anything but tensors and plain values inside (a pickle that would import and call
    something, e.g. ``os.system``) is refused before it runs; a missing, damaged or foreign
    file raises :class:`CheckpointError` too.
    """
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "no checkpoint file here", _REFIT)
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": not for the user
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        unsafe = "weights only" in str(exc).lower() or "unsupported" in str(exc).lower()
        why = ("refused: it holds objects other than tensors and plain values, and loading "
               "them could run code" if unsafe else f"damaged ({first[:200]})")
        raise CheckpointError(path, why, "use only checkpoints written by ReconStudio; "
                              + _REFIT) from None
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a damaged file
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(path, f"damaged or not a checkpoint ({type(exc).__name__}: "
                              f"{first[:200]})", _REFIT) from None
    if (not isinstance(payload, dict) or payload.get("format") != "reconstudio-checkpoint"
            or not isinstance(payload.get("state"), dict)
            or not isinstance(payload.get("method"), str)):
        raise CheckpointError(path, "not a ReconStudio checkpoint", _REFIT)
    return payload


def write_json_atomic(path: Path, data: Any) -> None:
    """JSON to ``path`` through a temp file and a rename (nothing half-written on failure)."""
    from reconstruction.atomic import atomic_write

    atomic_write(path, json.dumps(data, indent=2))


def describe_methods() -> list[dict[str, Any]]:
    """Every registered method with its settings, as plain JSON-ready values.

    One entry per method: ``name``, ``doc`` (the class docstring's first line), ``outputs``,
    ``snapshot_kinds`` and ``fields``: per config field its ``name``, ``type`` (``bool``,
    ``int``, ``float``, ``str`` or ``json`` for anything else), ``default`` and ``doc`` (the
    docstring under it). Front ends build settings forms from it without importing torch.
    """
    from reconstruction.methods.base import REGISTRY, config_docs, get_method

    get_method(next(iter(REGISTRY), "nerf"))  # imports (and so registers) every method
    described = []
    for name in sorted(REGISTRY):
        cls = REGISTRY[name]
        docs = config_docs(cls.Config)
        defaults = cls.Config()
        fields = []
        for f in dataclasses.fields(cls.Config):
            value = getattr(defaults, f.name)
            kind = next((t.__name__ for t in (bool, int, float, str) if type(value) is t), "json")
            if kind == "json":
                try:
                    json.dumps(value)
                except TypeError:
                    value = repr(value)
                    kind = "str"
            fields.append({"name": f.name, "type": kind, "default": value,
                           "doc": docs.get(f.name, "")})
        doc = (cls.__doc__ or "").strip().splitlines()
        described.append({"name": name, "doc": doc[0] if doc else "",
                          "outputs": list(cls.outputs), "snapshot_kinds": list(cls.snapshot_kinds),
                          "fields": fields})
    return described


def build_method(name: str, settings: dict[str, Any] | None = None):
    from reconstruction.methods.base import config_from_dict, get_method

    cls = get_method(name)
    return cls(config_from_dict(cls.Config, settings))


class Session:
    """Trains one method on one capture; obeys commands from ``poll``, reports via ``emit``."""

    def __init__(self, emit: Callable[[P.Event], None],
                 poll: Callable[[], P.Command | None] = lambda: None):
        self.emit = emit
        self.poll = poll
        self.method = None
        self.history: list[tuple[int, float]] = []
        self.scene = None
        self.paused = False
        self.stopping = False
        self.shutdown = False

    # -- commands while training ------------------------------------------------------------
    def _handle(self, cmd: P.Command) -> None:
        if isinstance(cmd, P.Pause):
            self.paused = True
        elif isinstance(cmd, P.Resume):
            self.paused = False
        elif isinstance(cmd, P.Stop):
            self.stopping = True
        elif isinstance(cmd, P.Shutdown):
            self.stopping = self.shutdown = True
        elif isinstance(cmd, P.Snapshot):
            self._snapshot(cmd.kind, cmd.quality)
        elif isinstance(cmd, P.Export):
            self._export_to(Path(cmd.path))
        elif isinstance(cmd, P.ApplyEdit):
            self.emit(P.Error("engine", "edits are not supported by this method yet", ""))
        elif isinstance(cmd, P.RenderView):
            render_view(self.method, cmd, self.emit)
        elif isinstance(cmd, P.Start):
            self.emit(P.Log("warning", "already training; stop first"))

    def _snapshot(self, kind: str, quality: str) -> None:
        if self.method is None:
            return
        payload = self.method.snapshot(kind, quality)
        if payload is not None:
            self.emit(P.SnapshotEvent(kind, payload, self.method.step_count))

    def _export_to(self, path: Path) -> None:
        from reconstruction.extract.mesh_io import write_mesh

        if self.method is None:
            return
        if path.suffix.lower() in (".ply", ".obj", ".glb", ".stl"):
            mesh = self.method.snapshot("mesh", "high")
            if mesh is None:
                self.emit(P.Error("engine", f"{self.method.name} has no mesh to export", ""))
                return
            write_mesh(path, mesh["vertices"], mesh["faces"], mesh.get("colors"))
            self.emit(P.Log("info", f"exported {path}"))
        else:
            outputs = self.method.export(path)
            self.emit(P.Log("info", f"exported {', '.join(outputs.values())}"))

    def _drain(self) -> None:
        while True:
            cmd = self.poll()
            if cmd is None:
                return
            self._handle(cmd)

    # -- the run ------------------------------------------------------------------------------
    def run(self, start: P.Start) -> P.Finished | None:
        try:
            return self._run(start)
        except Exception as exc:  # report, never take the front end down
            self.emit(P.Error("engine", f"{type(exc).__name__}: {exc}", traceback.format_exc()))
            return None

    def _extra(self, start: P.Start, train_seconds: float) -> dict[str, Any]:
        """What a checkpoint carries besides the method's state: enough to continue."""
        return {"data": str(Path(start.data).resolve()), "downscale": start.downscale,
                "train_seconds": float(train_seconds),
                "history": [[int(a), float(b)] for a, b in self.history]}

    def _run(self, start: P.Start) -> P.Finished | None:
        from reconstruction.data import CaptureError, load_capture

        try:
            device = resolve_device(start.device)
            method = build_method(start.method, start.settings)
        except (ValueError, KeyError, TypeError) as exc:
            self.emit(P.Error("config", str(exc).strip("'\""), "check the method name and settings"))
            return None
        try:
            scene = load_capture(start.data, downscale=start.downscale, bounds=start.bounds)
        except CaptureError as exc:
            self.emit(P.Error("capture", str(exc), exc.fix))
            return None
        for problem in scene.problems:
            self.emit(P.Log("warning", f"skipped {problem}"))
        self.scene = scene
        self.emit(P.Log("info", f"{scene.format} capture: {len(scene)} images "
                                f"{scene.width}x{scene.height}, split "
                                f"{ {k: len(v) for k, v in scene.split.items()} }"))
        method.setup(scene, device)
        self.method = method
        train_seconds = 0.0
        self.history = []  # (step, loss) of every step, carried across resumes
        if start.resume:
            ck = load_checkpoint(Path(start.resume))
            if ck.get("method") not in (None, method.name):
                self.emit(P.Error("checkpoint", f"{start.resume}: a checkpoint of method "
                                  f"{ck.get('method')!r}, not {method.name!r}",
                                  f"resume it with --method {ck.get('method')}"))
                return None
            method.load_state_dict(ck["state"])
            extra = ck.get("extra") or {}
            train_seconds = float(extra.get("train_seconds", 0.0))
            self.history = [(int(a), float(b)) for a, b in extra.get("history", [])
                            if int(a) <= method.step_count]
            self.emit(P.Log("info", f"resumed from step {method.step_count} "
                                    f"({train_seconds:.1f} s trained)"))

        out = Path(start.out) if start.out else None
        if out is not None:
            try:
                out.mkdir(parents=True, exist_ok=True)
                write_json_atomic(out / RUN_NAME, run_record(start))
            except OSError as exc:
                fix = "free some space or choose another --out, then fit again"
                self.emit(P.Error("output", f"{exc.filename or out}: cannot be written "
                                  f"({exc.strerror or exc}); {fix}", fix))
                return None
        last_progress = last_snapshot = last_ckpt = time.perf_counter()
        metrics: dict[str, float] = {}
        steps_done_at_start = method.step_count
        while not self.stopping:
            self._drain()
            if self.stopping:
                break
            if self.paused:
                time.sleep(0.05)
                continue
            frac_steps = (method.step_count / start.steps) if start.steps else 0.0
            frac_time = (train_seconds / start.budget) if start.budget else 0.0
            if start.steps is None and start.budget is None:
                frac_time = train_seconds / 300.0
            method.progress = min(1.0, max(frac_steps, frac_time))
            if (start.steps is not None and method.step_count >= start.steps) or (
                    start.budget is not None and train_seconds >= start.budget):
                break
            t0 = time.perf_counter()
            metrics = method.step()
            train_seconds += time.perf_counter() - t0
            if "loss" in metrics:
                self.history.append((method.step_count, float(metrics["loss"])))
            now = time.perf_counter()
            if now - last_progress >= start.progress_every:
                last_progress = now
                self.emit(P.Progress(method.step_count, start.steps, train_seconds, metrics, start.budget))
            if start.snapshot_every and now - last_snapshot >= start.snapshot_every:
                for kind in method.snapshot_kinds:
                    if kind != "image":
                        self._snapshot(kind, "low")
                last_snapshot = time.perf_counter()
            if out is not None and start.checkpoint_every and now - last_ckpt >= start.checkpoint_every:
                save_checkpoint(out / CHECKPOINT_NAME, method.name, method.state_dict(),
                                extra=self._extra(start, train_seconds))
                last_ckpt = time.perf_counter()
        self.emit(P.Progress(method.step_count, start.steps, train_seconds, metrics, start.budget))

        result: dict[str, Any] = {
            "method": method.name,
            "data": str(start.data),
            "format": scene.format,
            "steps": method.step_count,
            "steps_this_run": method.step_count - steps_done_at_start,
            "seconds": round(train_seconds, 3),
            "steps_per_second": round((method.step_count - steps_done_at_start) / max(train_seconds, 1e-9), 3),
            "device": str(device),
            "image_size": [scene.width, scene.height],
            "downscale": start.downscale,
            "bounds": [[float(x) for x in b] for b in scene.bounds],
            "skipped_images": [str(p) for p in scene.problems],
            "final_train_metrics": metrics,
        }
        evaluate = getattr(method, "evaluate", None)
        if evaluate is not None:
            self.emit(P.Log("info", "rendering test views"))
            result.update(evaluate())
        outputs: dict[str, str] = {}
        if out is not None:
            try:
                out.mkdir(parents=True, exist_ok=True)
                outputs = dict(method.export(out))
                outputs["checkpoint"] = str(save_checkpoint(
                    out / CHECKPOINT_NAME, method.name, method.state_dict(),
                    extra=self._extra(start, train_seconds)))
                write_json_atomic(out / HISTORY_NAME, {"loss": self.history})
                outputs["history"] = str(out / HISTORY_NAME)
                write_json_atomic(out / "metrics.json", result)
                outputs["metrics"] = str(out / "metrics.json")
            except OSError as exc:  # disk full, read-only folder: every write is atomic
                where = exc.filename or out
                fix = "free some space or choose another --out, then fit again"
                self.emit(P.Error("output", f"{where}: cannot be written ({exc.strerror or exc}); "
                                  f"{fix}", fix))
                return None
        finished = P.Finished(outputs, result)
        self.emit(finished)
        return finished


def render_view(method, cmd: P.RenderView, emit: Callable[[P.Event], None]) -> None:
    """Answer a RenderView with the method's picture (a warning when it cannot render)."""
    import numpy as np

    from reconstruction.data.scene import Cameras

    if method is None:
        emit(P.Log("warning", "no field to render a view of yet"))
        return
    try:
        w, h = max(1, int(cmd.width)), max(1, int(cmd.height))
        cams = Cameras(np.asarray(cmd.c2w, dtype=np.float64).reshape(1, 4, 4),
                       np.array([cmd.fx], float), np.array([cmd.fy], float),
                       np.array([cmd.cx], float), np.array([cmd.cy], float), w, h)
        rgb = np.asarray(method.render(cams))[0]
    except Exception as exc:  # noqa: BLE001 - a preview must never end a run
        emit(P.Log("warning", f"view not rendered: {type(exc).__name__}: {exc}"))
        return
    image = np.clip(rgb[..., :3] * 255.0 + 0.5, 0, 255).astype(np.uint8)
    emit(P.ViewImage(image, cmd.request, int(getattr(method, "step_count", 0))))


def restore_method(result_dir: Path, device: str = "cpu"):
    """Rebuild a trained method from ``result_dir/checkpoint.pt`` for rendering/export."""
    ck = load_checkpoint(Path(result_dir) / CHECKPOINT_NAME)
    state = ck["state"]
    method = build_method(ck["method"], state.get("config"))
    method.setup(None, resolve_device(device))
    method.load_state_dict(state)
    return method


# -- the engine process ----------------------------------------------------------------------


def _engine_main(cmd_q, evt_conn, niceness: int = 0) -> None:
    """Entry point of the engine process: run Start commands until Shutdown.

    Events go out through `evt_conn`, the write end of a one-way pipe that only this process
    holds: if it dies mid-message the reader sees the end of the pipe, not half a message.
    """
    gone = []

    def send(ev: P.Event) -> None:
        if gone:
            return
        try:
            evt_conn.send(ev)
        except (BrokenPipeError, OSError):  # the front end is gone: finish quietly
            gone.append(True)

    if niceness and hasattr(os, "nice"):
        try:
            os.nice(niceness)  # let the front end's event loop win over training for the CPU
        except OSError:
            pass

    parent = mp.parent_process()
    last_check = [time.monotonic()]

    def orphaned() -> bool:
        return parent is not None and not parent.is_alive()

    def poll():
        try:
            return cmd_q.get_nowait()
        except queue.Empty:
            now = time.monotonic()
            if now - last_check[0] > 1.0:  # the front end died without Shutdown: stop too
                last_check[0] = now
                if orphaned():
                    return P.Shutdown()
            return None

    loaded: dict[str, Any] = {}  # result folder -> its method, for views of an idle result
    while True:
        try:
            cmd = cmd_q.get(timeout=1.0)
        except queue.Empty:
            if orphaned():
                break
            continue
        if isinstance(cmd, P.Shutdown):
            break
        if isinstance(cmd, P.Start):
            session = Session(send, lambda: P.Shutdown() if gone else poll())
            session.run(cmd)
            if session.shutdown:
                break
            if cmd.out and session.method is not None:
                loaded = {str(Path(cmd.out).resolve()): session.method}
        elif isinstance(cmd, P.RenderView):
            key = str(Path(cmd.result).resolve()) if cmd.result else next(iter(loaded), None)
            if key is not None and key not in loaded:
                try:
                    loaded = {key: restore_method(Path(key))}
                except Exception as exc:  # noqa: BLE001 - say why, stay alive
                    send(P.Log("warning", f"could not load {key} to render it: {exc}"))
                    continue
            render_view(loaded.get(key) if key else None, cmd, send)
        else:
            send(P.Log("warning", f"ignored {type(cmd).__name__}: nothing is training"))
        if gone:
            break
    send(P.Log("info", "engine stopped"))
    evt_conn.close()


class EngineProcess:
    """A training engine in its own process (multiprocessing, spawn)."""

    def __init__(self, niceness: int = 0):
        """niceness: added to the engine process's nice value (POSIX; 0 leaves it as is)."""
        ctx = mp.get_context("spawn")
        self._cmd = ctx.Queue()
        self._evt, evt_send = ctx.Pipe(duplex=False)
        self._eof = False
        self._proc = ctx.Process(target=_engine_main, args=(self._cmd, evt_send, niceness),
                                 name="reconstudio-engine", daemon=True)
        self._proc.start()
        evt_send.close()  # only the engine holds the write end: its death reads as the end

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    def is_alive(self) -> bool:
        return self._proc.is_alive()

    @property
    def exitcode(self) -> int | None:
        return self._proc.exitcode

    def send(self, cmd: P.Command) -> None:
        self._cmd.put(cmd)

    def events(self, timeout: float = 0.0, max_events: int = 1000) -> list[P.Event]:
        """Events waiting (blocking up to ``timeout`` for the first one).

        With ``timeout=0`` this returns at once, also after the engine died in the middle of
        a message (the pipe then ends: the partial message is dropped, later calls return []).
        """
        out: list[P.Event] = []
        if self._eof:
            return out
        try:
            if not self._evt.poll(timeout if timeout > 0 else 0):
                return out
            while len(out) < max_events:
                out.append(self._evt.recv())
                if not self._evt.poll(0):
                    break
        except (EOFError, OSError):
            self._eof = True
        return out

    def close(self, timeout: float = 10.0) -> None:
        """Ask the engine to stop, then end the process if it does not.

        Events that arrive meanwhile are read and dropped (the engine must not block on a
        full pipe while it writes its outputs).
        """
        if self._proc.is_alive():
            self._cmd.put(P.Shutdown())
            deadline = time.monotonic() + timeout
            while self._proc.is_alive() and time.monotonic() < deadline:
                self.events(timeout=0.05)
                self._proc.join(0.01)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)
        self._cmd.close()
        self._cmd.join_thread()
        self._evt.close()
