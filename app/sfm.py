"""Plain photos or a video dropped on the window: `recon sfm` in a subprocess, then a capture.

Pure helpers (no Qt): what counts as photos, the command line, reading the report's images
left out, and marking them in a listed capture.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from app.capture import CaptureImage, CaptureInfo
from app.training import recon_error

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm")
REPORT_NAME = "sfm_report.json"


def is_photo_input(path: Path) -> bool:
    """A video file, or a folder of photos with no camera file, result or SfM model in it."""
    path = Path(path)
    if path.is_file():
        return path.suffix.lower() in VIDEO_SUFFIXES
    if not path.is_dir():
        return False
    names = {p.name for p in path.iterdir()}
    if names & {"transforms_train.json", "transforms.json", "mesh.ply", "metrics.json",
                "curves.json", "splats.ply", REPORT_NAME, "sparse"}:
        return False
    return any(p.suffix.lower() in PHOTO_SUFFIXES for p in path.iterdir() if p.is_file())


def sfm_output(path: Path) -> Path:
    """Where the capture of ``path`` goes: ``<INPUT>_capture`` beside it."""
    path = Path(path)
    base = path.with_suffix("") if path.is_file() else path
    return base.parent / f"{base.name}_capture"


def sfm_command(path: Path, out: Path) -> tuple[str, list[str]]:
    """(program, arguments) of `recon sfm INPUT --out OUT` with this interpreter."""
    return sys.executable, ["-m", "reconstruction.cli", "sfm", str(path), "--out", str(out)]


def sfm_error(stderr: str, code: int) -> str:
    """The one-line reason `recon sfm` gave for failing."""
    return recon_error(stderr, code)


def left_out(capture: Path) -> dict[str, str]:
    """Image name -> why SfM left it out, from ``capture/sfm_report.json`` ({} without one)."""
    try:
        report = json.loads((Path(capture) / REPORT_NAME).read_text())
        return {str(e["name"]): str(e.get("reason", "")) for e in report.get("left_out", [])}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def mark_left_out(info: CaptureInfo, left: dict[str, str]) -> CaptureInfo:
    """The capture's images with those SfM left out marked skipped, with SfM's reason.

    An image SfM did not register is usually not a frame of the capture at all; it is
    added (with its file under ``images/`` when it is there) so the user sees it and why.
    """
    if not left:
        return info
    images, seen = [], set()
    for im in info.images:
        stem = Path(im.path).name if im.path else ""
        match = next((n for n in left if n == stem or Path(n).stem == im.name.split("/")[-1]), None)
        if match is not None:
            seen.add(match)
            im = dataclasses.replace(im, status="skipped", reason=f"left out by SfM: {left[match]}")
        images.append(im)
    for name, reason in left.items():
        if name in seen:
            continue
        file = info.root / "images" / name
        images.append(CaptureImage(Path(name).stem, str(file) if file.is_file() else "",
                                   "skipped", f"left out by SfM: {reason}"))
    return dataclasses.replace(info, images=tuple(images))
