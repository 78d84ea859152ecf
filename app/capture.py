"""A capture as the Capture panel shows it, without Qt: ``recon info DATA --json`` parsed.

The facts (format, image count, resolution, masks, split, problems) come from the engine's
own loader run in a subprocess (:func:`info_command`), so the window never imports torch and
says exactly what training would use. Every image gets a status: ``train``, ``val``,
``test`` (used for that), ``skipped`` (with the loader's reason) or ``unused``.
Thumbnails are made with Pillow (:func:`make_thumbnail`), off the GUI thread.
"""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

STATUS_LABELS = {
    "train": "training",
    "val": "validation",
    "test": "test",
    "skipped": "skipped",
    "unused": "not used",
}
STATUS_COLORS = {
    "train": "#2e7d32",
    "val": "#6a4c93",
    "test": "#1f6fb2",
    "skipped": "#c62828",
    "unused": "#757575",
}


@dataclass(frozen=True)
class CaptureImage:
    """One image of a capture and what training does with it."""

    name: str
    """Shown under the thumbnail: the path inside the capture without extension."""
    path: str
    """The image file ('' when there is none, e.g. a frame whose file is missing)."""
    status: str
    """train | val | test | skipped | unused"""
    reason: str = ""
    """Why it was skipped (the loader's problem and fix)."""
    file_path: str = ""
    """The frame's file_path as written in the capture ('' for a skipped file)."""
    c2w: tuple | None = None
    """Its camera-to-world matrix (4 rows of 4, world, OpenGL), when the capture gave one."""
    fov_x: float = 0.0
    """Its horizontal field of view in radians (0 when unknown)."""

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)


@dataclass(frozen=True)
class CaptureInfo:
    root: Path
    format: str
    n_images: int
    resolution: tuple[int, int]
    masks: bool
    split: dict[str, int]
    problems: tuple[str, ...]
    images: tuple[CaptureImage, ...]
    points: tuple | None = None
    """A sample of the capture's sparse points (world, [N][3]) when it has them."""

    def summary_rows(self) -> list[tuple[str, str]]:
        split = ", ".join(f"{n} {k}" for k, n in self.split.items() if n) or "none"
        rows = [
            ("format", self.format),
            ("images", f"{self.n_images} used, {len(self.problems)} skipped"),
            ("resolution", f"{self.resolution[0]} x {self.resolution[1]}"),
            ("masks", "yes" if self.masks else "no"),
            ("split", split),
        ]
        return rows


def info_command(capture: str | Path) -> list[str]:
    """The command that describes a capture (same interpreter as the window)."""
    return [sys.executable, "-m", "reconstruction.cli", "info", str(capture), "--json"]


def _natural(text: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def _display_name(path: str, root: Path) -> str:
    p = Path(path)
    if not p.is_absolute():
        p = root / p  # a frame's file_path is relative to the capture
    try:
        p = p.resolve().relative_to(root.resolve())
    except (ValueError, OSError):
        p = Path(p.name)
    return str(p.with_suffix("")) if p.suffix else str(p)


def parse_capture_info(text: str, root: str | Path) -> CaptureInfo:
    """`recon info --json` output as a :class:`CaptureInfo`. Raises ValueError."""
    root = Path(root)
    try:
        data = json.loads(text)
        frames = data.get("frames", [])
        images = []
        for fr in frames:
            image = str(fr.get("image", ""))
            name = _display_name(image, root) if image else str(fr.get("file_path", ""))
            c2w, fov_x = fr.get("c2w"), 0.0
            k = fr.get("intrinsics")
            if k and data.get("resolution"):
                fov_x = 2.0 * math.atan(0.5 * float(data["resolution"][0]) / max(float(k[0]), 1e-9))
            images.append(CaptureImage(name.lstrip("./"), image, str(fr.get("split", "train")),
                                       file_path=str(fr.get("file_path", "")),
                                       c2w=tuple(tuple(map(float, r)) for r in c2w) if c2w else None,
                                       fov_x=fov_x))
        for p in data.get("skipped", []):
            path = str(p.get("path", ""))
            reason = f"{p.get('problem', '')}. {p.get('fix', '')}".strip(". ")
            is_file = Path(path).suffix.lower() in (".png", ".jpg", ".jpeg", ".tif", ".tiff",
                                                    ".bmp", ".webp", ".exr")
            images.append(CaptureImage(_display_name(path, root), path if is_file else "",
                                       "skipped", reason))
        images.sort(key=lambda im: _natural(im.name))
        res = data.get("resolution", [0, 0])
        return CaptureInfo(
            root=root,
            format=str(data["format"]),
            n_images=int(data["images"]),
            resolution=(int(res[0]), int(res[1])),
            masks=bool(data.get("masks", False)),
            split={str(k): int(v) for k, v in dict(data.get("split", {})).items()},
            problems=tuple(str(p) for p in data.get("problems", [])),
            images=tuple(images),
            points=tuple(tuple(map(float, p)) for p in data["points"]) if data.get("points") else None,
        )
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise ValueError(f"`recon info --json` gave no capture description ({exc})") from None


def make_thumbnail(path: str | Path, size: int) -> tuple[bytes, int, int]:
    """An RGBA thumbnail (`size` px on its longer side) of an image file: (bytes, width, height).

    Transparent pixels are composited on white, as the loaders do. Raises OSError/ValueError
    for a file Pillow cannot read.
    """
    from PIL import Image, ImageOps

    with Image.open(path) as img:
        img.draft("RGB", (size, size))  # JPEG: decode at a fraction of the size
        img = ImageOps.exif_transpose(img)
        img.thumbnail((size, size))
        if max(img.size) < size:  # a tiny capture: scale up so the thumbnail is readable
            k = size / max(img.size)
            img = img.resize((max(1, round(img.width * k)), max(1, round(img.height * k))),
                             Image.Resampling.NEAREST)
        rgba = img.convert("RGBA")
    flat = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    flat.alpha_composite(rgba)
    return flat.tobytes(), flat.width, flat.height
