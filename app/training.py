"""Training as the window sees it, without Qt: the method catalogue and the run's state.

The catalogue comes from ``recon methods --json`` run in a subprocess (:func:`catalog_command`),
so the window learns every method's settings without importing torch. A
:class:`TrainingModel` keeps what the training panels show: the run's state (which buttons
are enabled), progress with elapsed time and ETA, the loss/PSNR history for the plot, the
log, and the latest snapshot of each kind (older ones are dropped: the viewport draws only
the newest). Nothing here imports Qt, VTK or torch.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from reconstruction import protocol as P

State = Literal["idle", "starting", "training", "paused", "stopping", "finished", "failed", "died"]
ACTIVE_STATES = ("starting", "training", "paused", "stopping")
"""States in which the engine is working on a run."""
STATE_LABELS = {
    "idle": "Ready",
    "starting": "Loading the capture...",
    "training": "Training",
    "paused": "Paused",
    "stopping": "Stopping: writing the result...",
    "finished": "Finished",
    "failed": "Failed",
    "died": "The engine stopped unexpectedly",
}


@dataclass(frozen=True)
class FieldInfo:
    """One setting of a method's config dataclass."""

    name: str
    type: str
    """``bool``, ``int``, ``float``, ``str`` or ``json`` (any other JSON value)."""
    default: Any
    doc: str = ""

    @property
    def label(self) -> str:
        return self.name.replace("_", " ")

    def parse(self, text: str) -> Any:
        """The value typed into a text field, as this field's type. Raises ValueError."""
        text = text.strip()
        if self.type == "int":
            return int(text)
        if self.type == "float":
            value = float(text)
            if not math.isfinite(value):
                raise ValueError(f"{self.name}: {text} is not a finite number")
            return value
        if self.type == "bool":
            return text.lower() in ("1", "true", "yes", "on")
        if self.type == "json":
            return json.loads(text)
        return text

    def format(self, value: Any) -> str:
        """A value as its text field shows it (round-trips through :meth:`parse`)."""
        if self.type == "float":
            return repr(float(value))
        if self.type == "json":
            return json.dumps(value)
        return str(value)


@dataclass(frozen=True)
class MethodInfo:
    name: str
    doc: str
    fields: tuple[FieldInfo, ...]
    snapshot_kinds: tuple[str, ...] = ()

    def field(self, name: str) -> FieldInfo:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def changed(self, values: dict[str, Any]) -> dict[str, Any]:
        """The entries of `values` that differ from the defaults (what Start needs to carry)."""
        defaults = {f.name: f.default for f in self.fields}
        return {k: v for k, v in values.items() if k in defaults and v != defaults[k]}


def catalog_command() -> list[str]:
    """The command that prints the method catalogue (same interpreter as the window)."""
    return [sys.executable, "-m", "reconstruction.cli", "methods", "--json"]


def parse_catalog(text: str) -> dict[str, MethodInfo]:
    """Method name -> :class:`MethodInfo` from ``recon methods --json``. Raises ValueError."""
    try:
        data = json.loads(text)
        methods = {}
        for m in data["methods"]:
            fields = tuple(
                FieldInfo(f["name"], f["type"], f["default"], f.get("doc", "")) for f in m["fields"]
            )
            methods[m["name"]] = MethodInfo(
                m["name"], m.get("doc", ""), fields, tuple(m.get("snapshot_kinds", ()))
            )
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"`recon methods --json` gave no method list ({exc})") from None
    if not methods:
        raise ValueError("`recon methods --json` lists no methods")
    return methods


def default_output(capture: Path, method: str) -> Path:
    """A result folder beside the capture that does not exist yet: CAPTURE_METHOD[_N]."""
    capture = Path(capture)
    base = capture.parent / f"{capture.name}_{method}"
    candidate, n = base, 2
    while candidate.exists():
        candidate = base.with_name(f"{base.name}_{n}")
        n += 1
    return candidate


def format_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "--"
    seconds = max(0, int(round(seconds)))
    m, s = divmod(seconds, 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


@dataclass
class RunRequest:
    """What the user asked for; becomes a :class:`reconstruction.protocol.Start`."""

    data: str
    method: str
    out: str
    settings: dict[str, Any] = field(default_factory=dict)
    budget: float | None = None
    steps: int | None = None
    snapshot_every: float = 1.0
    checkpoint_every: float = 30.0
    resume: str | None = None
    bounds: tuple | None = None
    """World box (min, max) to train in instead of the capture's: the Edit panel's crop."""

    def start_command(self) -> P.Start:
        return P.Start(
            data=self.data,
            method=self.method,
            out=self.out,
            steps=self.steps,
            budget=self.budget,
            settings=dict(self.settings),
            snapshot_every=self.snapshot_every,
            progress_every=0.2,
            checkpoint_every=self.checkpoint_every,
            resume=self.resume,
            bounds=self.bounds,
        )


class TrainingModel:
    """One run at a time: its state, progress, history, log and latest snapshots."""

    MAX_LOG = 2000

    def __init__(self) -> None:
        self.state: State = "idle"
        self.request: RunRequest | None = None
        self.progress: P.Progress | None = None
        self.history: list[tuple[int, float, float]] = []  # (step, loss, psnr)
        self.log: deque[tuple[str, str]] = deque(maxlen=self.MAX_LOG)
        self.pending: dict[str, P.SnapshotEvent] = {}
        self.error: P.Error | None = None
        self.finished: P.Finished | None = None
        self.started_at: float | None = None
        self.last_step = 0
        self.log_count = 0  # lines ever added (the deque keeps the last MAX_LOG)

    # -- transitions ------------------------------------------------------------------------
    def start(self, request: RunRequest) -> None:
        self.state = "starting"
        self.request = request
        self.progress = None
        self.history.clear()
        self.pending.clear()
        self.error = self.finished = None
        self.started_at = time.monotonic()
        self.add_log("info", f"starting {request.method} on {request.data} -> {request.out}")

    def pause(self) -> None:
        if self.state in ("starting", "training"):
            self.state = "paused"

    def resume(self) -> None:
        if self.state == "paused":
            self.state = "training" if self.progress is not None else "starting"

    def stop(self) -> None:
        if self.state in ("starting", "training", "paused"):
            self.state = "stopping"

    def died(self, exitcode: int | None) -> str:
        self.state = "died"
        message = f"The engine process ended unexpectedly (exit code {exitcode})"
        if exitcode is not None and exitcode < 0:
            message = f"The engine process was killed (signal {-exitcode})"
        self.add_log("error", message)
        return message

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def add_log(self, level: str, text: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        self.log.append((level, f"{stamp} {level}: {text}"))
        self.log_count += 1

    # -- events -------------------------------------------------------------------------------
    def handle(self, ev: P.Event) -> str:
        """Take one engine event; returns what it was (progress/snapshot/log/error/finished)."""
        if isinstance(ev, P.Progress):
            self.progress = ev
            self.last_step = ev.step
            if self.state == "starting":
                self.state = "training"
            loss, psnr = ev.metrics.get("loss"), ev.metrics.get("psnr")
            if loss is not None and (not self.history or self.history[-1][0] != ev.step):
                self.history.append((ev.step, float(loss), float(psnr if psnr is not None else "nan")))
            return "progress"
        if isinstance(ev, P.SnapshotEvent):
            self.pending[ev.kind] = ev  # only the newest of each kind is drawn
            return "snapshot"
        if isinstance(ev, P.Log):
            self.add_log(ev.level, ev.text)
            return "log"
        if isinstance(ev, P.Error):
            self.error = ev
            if self.active:
                self.state = "failed"
            self.add_log("error", ev.message + (f" ({ev.hint})" if ev.hint and "\n" not in ev.hint else ""))
            return "error"
        if isinstance(ev, P.Finished):
            self.finished = ev
            self.state = "finished"
            self.add_log("info", f"finished after {ev.metrics.get('steps', '?')} steps")
            return "finished"
        return "other"

    def take_snapshots(self) -> list[P.SnapshotEvent]:
        out = list(self.pending.values())
        self.pending.clear()
        return out

    # -- what the panels show -------------------------------------------------------------------
    def fraction(self) -> float:
        """Share of the budget or steps done, in [0, 1]."""
        p = self.progress
        if p is None:
            return 0.0
        parts = []
        if p.total:
            parts.append(p.step / p.total)
        if p.budget:
            parts.append(p.seconds / p.budget)
        return min(1.0, max(parts)) if parts else 0.0

    def eta(self) -> float | None:
        """Seconds of training left, from the steps or the budget (whichever ends first)."""
        p = self.progress
        if p is None:
            return None
        left = []
        if p.budget:
            left.append(max(0.0, p.budget - p.seconds))
        if p.total and p.step > 0:
            left.append(max(0.0, (p.total - p.step) * p.seconds / p.step))
        return min(left) if left else None

    def progress_text(self) -> str:
        p = self.progress
        if p is None:
            return STATE_LABELS[self.state]
        total = f"/{p.total:,}" if p.total else ""
        text = (
            f"step {p.step:,}{total}  elapsed {format_duration(p.seconds)}  "
            f"ETA {format_duration(self.eta()) if self.state in ('training', 'paused') else '--'}"
        )
        loss, psnr = p.metrics.get("loss"), p.metrics.get("psnr")
        if loss is not None:
            text += f"  loss {loss:.4g}"
        if psnr is not None:
            text += f"  PSNR {psnr:.2f} dB"
        return text


def recon_error(stderr: str, code: int) -> str:
    """The one-line reason a `recon` subprocess gave for failing (its ``recon: error:``
    line), else its last line, else the exit code."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    errs = [ln for ln in lines if ln.startswith("recon: error:")]
    if errs:
        return errs[-1].removeprefix("recon: error: ")
    return lines[-1] if lines else f"exit code {code}"
