"""Metric scale for a capture made by ``recon sfm``: two points and their real distance.

Structure from motion recovers a scene up to scale. ``rescale_capture(CAPTURE, P1, P2, D)``
multiplies the capture's world coordinates by ``D / |P1 - P2|`` (``P1``, ``P2`` in the
capture's current coordinates, e.g. two sparse points or camera centres picked in the
window), so that the two points end up ``D`` metres apart:

- ``sparse/0`` (COLMAP, text or binary as found): camera centres and 3D points are scaled
  about the origin (pycolmap ``Reconstruction.transform`` with a ``Sim3d`` of that scale,
  in a child process like the SfM itself, see ``reconstruction.data.sfm``). The new model
  is written beside the old one and swapped in by renaming, so an interrupted run leaves
  the old model or the new one, never half of each.
- ``transforms.json`` if present: each frame's ``transform_matrix`` translation and any
  ``aabb`` (written to a temporary file, then ``os.replace``).
- ``scale.json``: this factor, the points and distance, and the product of every factor
  applied so far (``total_factor``).

Errors are :class:`CaptureError` (one line, exit code 2): not a capture with
``sparse/0``, identical points, a distance that is not a positive number.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from reconstruction.data.scene import CaptureError

SCALE_NAME = "scale.json"
DEFAULT_TIMEOUT = 600.0
_MODEL_FILES = ("cameras", "images", "points3D")


def _model_format(sparse: Path) -> str | None:
    """'bin' or 'txt' if ``sparse`` holds a whole COLMAP model, else None."""
    for ext in ("bin", "txt"):
        if all((sparse / f"{n}.{ext}").is_file() for n in _MODEL_FILES):
            return ext
    return None


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def scale_transforms(path: Path, factor: float) -> int:
    """Scale the translations (and ``aabb``) of a transforms.json in place; frames scaled."""
    data = json.loads(path.read_text())
    frames = data.get("frames", [])
    for frame in frames:
        m = np.asarray(frame["transform_matrix"], dtype=np.float64)
        m[:3, 3] *= factor
        frame["transform_matrix"] = m.tolist()
    if "aabb" in data:
        data["aabb"] = (np.asarray(data["aabb"], dtype=np.float64) * factor).tolist()
    _write_json_atomic(path, data)
    return len(frames)


def _run_child(sparse: Path, out: Path, factor: float) -> int:
    """Read ``sparse``, scale it by ``factor``, write it to ``out`` in the same format."""
    from reconstruction.data.sfm import import_pycolmap

    pycolmap = import_pycolmap()
    rec = pycolmap.Reconstruction(str(sparse))
    rec.transform(pycolmap.Sim3d(factor, pycolmap.Rotation3d(), np.zeros(3)))
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    if _model_format(sparse) == "txt":
        rec.write_text(str(out))
    else:
        rec.write_binary(str(out))
    print(json.dumps({"images": rec.num_reg_images(), "points3D": rec.num_points3D()}))
    return 0


def rescale_capture(capture: str | Path, p1, p2, distance: float, *,
                    timeout: float = DEFAULT_TIMEOUT) -> dict:
    """Scale ``capture`` so that ``p1`` and ``p2`` are ``distance`` apart; the scale record."""
    capture = Path(capture).expanduser()
    sparse = capture / "sparse" / "0"
    if not capture.is_dir() or _model_format(sparse) is None:
        raise CaptureError(capture, "is not a capture with a COLMAP model in sparse/0",
                           "give the --out folder written by recon sfm")
    a, b = np.asarray(p1, dtype=np.float64), np.asarray(p2, dtype=np.float64)
    if a.shape != (3,) or b.shape != (3,) or not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise CaptureError(capture, "--points needs two finite points X1 Y1 Z1 X2 Y2 Z2",
                           "give six numbers")
    before = float(np.linalg.norm(a - b))
    if before < 1e-12:
        raise CaptureError(capture, "the two --points are the same point",
                           "give two different points (e.g. two ends of a known length)")
    if not (math.isfinite(distance) and distance > 0):
        raise CaptureError(capture, f"--distance {distance} is not a positive length",
                           "give the real distance between the points in metres (> 0)")
    factor = distance / before

    staged = capture / "sparse" / ".0.scaled"
    cmd = [sys.executable, "-m", "reconstruction.data.scale", "--run", str(sparse),
           "--out", str(staged), "--factor", repr(factor)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              cwd=Path(__file__).resolve().parents[2])
    except subprocess.TimeoutExpired:
        shutil.rmtree(staged, ignore_errors=True)
        raise CaptureError(sparse, f"rescaling did not finish within {timeout:.0f} s",
                           "check the model with recon info") from None
    if proc.returncode != 0 or _model_format(staged) is None:
        shutil.rmtree(staged, ignore_errors=True)
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]
        raise CaptureError(sparse, f"the model could not be rescaled (exit code "
                                   f"{proc.returncode}; {tail})",
                           "check that recon info reads the capture")
    old = capture / "sparse" / ".0.old"
    shutil.rmtree(old, ignore_errors=True)
    os.rename(sparse, old)
    os.rename(staged, sparse)
    shutil.rmtree(old, ignore_errors=True)

    transforms = capture / "transforms.json"
    frames = scale_transforms(transforms, factor) if transforms.is_file() else None
    record_path = capture / SCALE_NAME
    try:
        previous = json.loads(record_path.read_text())
        total = float(previous.get("total_factor", 1.0)) * factor
        history = list(previous.get("history", []))
    except (OSError, ValueError, AttributeError):
        total, history = factor, []
    entry = {"factor": factor, "points": [a.tolist(), b.tolist()],
             "distance_before": before, "distance": distance}
    record = {**entry, "total_factor": total, "history": [*history, entry],
              "transforms_frames": frames}
    _write_json_atomic(record_path, record)
    return record


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="rescaling child process")
    p.add_argument("--run", required=True, help="sparse model folder to read")
    p.add_argument("--out", required=True, help="folder for the scaled model")
    p.add_argument("--factor", type=float, required=True)
    args = p.parse_args(argv)
    return _run_child(Path(args.run), Path(args.out), args.factor)


if __name__ == "__main__":
    sys.exit(main())
