"""Messages between a front end (window or CLI) and the engine.

Plain frozen dataclasses of Python values and numpy arrays: no tensors, modules or locks
cross the boundary, so they pickle between processes and the window never needs torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# -- commands (front end -> engine) --------------------------------------------------------


@dataclass(frozen=True)
class Start:
    """Load a capture and train a method on it."""

    data: str  # capture folder or transforms file
    method: str = "nerf"
    out: str | None = None  # where outputs, metrics and the checkpoint go
    steps: int | None = None  # stop after this many steps ...
    budget: float | None = None  # ... or after this many seconds of training
    downscale: int = 1
    device: str = "auto"
    settings: dict[str, Any] = field(default_factory=dict)  # method Config overrides
    snapshot_every: float = 2.0  # seconds between live mesh/points snapshots (0: none)
    progress_every: float = 0.25  # seconds between progress events
    resume: str | None = None  # checkpoint to continue from
    bounds: tuple[tuple[float, float, float], tuple[float, float, float]] | None = None
    # world box (min, max) to train in, instead of the capture's own bounds (a crop)
    checkpoint_every: float = 120.0  # seconds between checkpoints into `out` (0: only at the end)


@dataclass(frozen=True)
class Pause:
    pass


@dataclass(frozen=True)
class Resume:
    pass


@dataclass(frozen=True)
class Stop:
    """Stop training; outputs are still written."""


@dataclass(frozen=True)
class Snapshot:
    kind: str  # "mesh" | "points" | "image" | ...
    quality: str = "low"


@dataclass(frozen=True)
class Export:
    path: str
    format: str = "ply"


@dataclass(frozen=True)
class ApplyEdit:
    edit: dict[str, Any]


@dataclass(frozen=True)
class RenderView:
    """Render one view of the field (between training steps, or of an idle result).

    c2w: [4, 4] camera-to-world in world coordinates, OpenGL convention (looks down -Z, +Y up).
    ``result``: a result folder whose checkpoint to render when nothing is training.
    """

    c2w: Any  # np.ndarray [4, 4] float64
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    request: int = 0
    result: str | None = None


@dataclass(frozen=True)
class Shutdown:
    """End the engine process."""


# -- events (engine -> front end) ------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    step: int
    total: int | None
    seconds: float
    metrics: dict[str, float]
    budget: float | None = None


@dataclass(frozen=True)
class SnapshotEvent:
    kind: str
    payload: dict[str, Any]  # numpy arrays and plain values
    step: int = 0


@dataclass(frozen=True)
class ViewImage:
    """The answer to :class:`RenderView`: image [H, W, 3] uint8."""

    image: Any
    request: int = 0
    step: int = 0


@dataclass(frozen=True)
class Log:
    level: str  # "info" | "warning" | "error"
    text: str


@dataclass(frozen=True)
class Error:
    kind: str  # "capture" | "config" | "output" (results cannot be written) | "engine"
    message: str
    hint: str = ""


@dataclass(frozen=True)
class Finished:
    outputs: dict[str, str]
    metrics: dict[str, Any]


Command = Start | Pause | Resume | Stop | Snapshot | Export | ApplyEdit | RenderView | Shutdown
Event = Progress | SnapshotEvent | ViewImage | Log | Error | Finished
