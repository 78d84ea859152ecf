"""Projects: a ``NAME.recon/`` folder that holds a whole piece of work.

::

    NAME.recon/
      project.json    what the window restores: the capture (its path), the method, its
                      settings and target (steps or budget), the edit history (the
                      operations of reconstruction.editing, in order), the viewport camera
      run/            the training run: what ``recon fit --out`` writes (run.json,
                      checkpoint.pt with the model, optimiser, occupancy/densification
                      state, step and RNG, history.json, mesh.ply / curves.json /
                      splats.ply, metrics.json)

Every file is written atomically (a temp file, then a rename). ``recon fit DATA --out
NAME.recon`` trains into ``NAME.recon/run`` and writes project.json; ``recon fit --resume
NAME.recon`` (or ``--resume`` on a plain output folder) continues the run. Names inside the
project (the run folder) must stay inside it; the capture is the user's and may be anywhere,
but it must exist.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PROJECT_SUFFIX = ".recon"
PROJECT_FILE = "project.json"
FORMAT = "reconstudio-project"


class ProjectError(ValueError):
    """A project that cannot be read: which file, why, the fix."""


def is_project(path: str | Path) -> bool:
    p = Path(path)
    return p.suffix == PROJECT_SUFFIX or (p / PROJECT_FILE).is_file()


def new_project(capture: str | Path, method: str, settings: dict | None = None,
                steps: int | None = None, budget: float | None = None) -> dict[str, Any]:
    return {"format": FORMAT, "version": 1, "capture": str(Path(capture).resolve()),
            "method": method, "settings": dict(settings or {}), "steps": steps,
            "budget": budget, "run": "run", "edits": [], "view": None}


def write_project(folder: str | Path, data: dict[str, Any]) -> Path:
    from reconstruction.atomic import atomic_write

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return atomic_write(folder / PROJECT_FILE, json.dumps(data, indent=1).encode())


def read_project(folder: str | Path) -> dict[str, Any]:
    """project.json of ``folder``, checked (ProjectError when it is not a usable project)."""
    from reconstruction.data.paths import UnsafePathError, safe_path

    folder = Path(folder)
    path = folder / PROJECT_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ProjectError(f"{folder}: no {PROJECT_FILE}; not a ReconStudio project") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProjectError(f"{path}: damaged ({exc}); restore it from a copy, or start a new "
                           f"project from the capture") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ProjectError(f"{path}: not a ReconStudio project file")
    for key, kind in (("capture", str), ("method", str), ("run", str), ("settings", dict),
                      ("edits", list)):
        if not isinstance(data.get(key), kind):
            raise ProjectError(f"{path}: {key!r} is missing or not a {kind.__name__}; fix it "
                               f"or start a new project from the capture")
    try:
        safe_path(folder, data["run"], "run folder")
    except UnsafePathError as exc:
        raise ProjectError(f"{path}: the run folder {data['run']!r} leaves the project "
                           f"({exc.problem}); it must be a folder inside it") from None
    return data


def run_dir(folder: str | Path, data: dict[str, Any] | None = None) -> Path:
    data = read_project(folder) if data is None else data
    return Path(folder) / data["run"]
