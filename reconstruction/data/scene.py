"""The one capture type every loader returns and every method consumes.

A :class:`Scene` holds the images (already undistorted, alpha already composited on the
background colour), optional masks, one pinhole camera per image in the OpenGL
camera-to-world convention (camera looks down -Z, +Y up, +X right), a train/val/test
split and the normalisation that maps the object's bounds into the unit cube [0, 1]^3
in which methods train. Everything a method writes goes back through
:meth:`Normalization.to_world`, so outputs are in the input's own world coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# OpenCV camera axes (x right, y down, z forward) -> OpenGL camera axes (x right, y up, z back).
OPENCV_TO_OPENGL = np.diag([1.0, -1.0, -1.0, 1.0])


class CaptureError(Exception):
    """A capture that cannot be used. ``str(err)`` is one line: which file, what, the fix."""

    def __init__(self, path: str | Path, problem: str, fix: str):
        self.path = str(path)
        self.problem = problem
        self.fix = fix
        super().__init__(f"{self.path}: {problem}. {fix}")


@dataclass(frozen=True)
class Problem:
    """One part of a capture that was left out, and why; reported, never fatal alone."""

    path: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}. {self.fix}"


@dataclass
class Cameras:
    """Pinhole cameras, one per image. Distortion is removed when images are loaded."""

    c2w: np.ndarray  # [N, 4, 4] float64, camera-to-world, OpenGL convention
    fx: np.ndarray  # [N] float64, focal length in pixels
    fy: np.ndarray  # [N] float64
    cx: np.ndarray  # [N] float64, principal point in pixels (pixel centres at +0.5)
    cy: np.ndarray  # [N] float64
    width: int
    height: int

    def __len__(self) -> int:
        return int(self.c2w.shape[0])

    def subset(self, idx: np.ndarray | list[int]) -> Cameras:
        idx = np.asarray(idx, dtype=np.int64)
        return Cameras(
            self.c2w[idx], self.fx[idx], self.fy[idx], self.cx[idx], self.cy[idx],
            self.width, self.height,
        )

    def scaled(self, factor: float) -> Cameras:
        """Cameras for images resized by ``factor`` (0.5 = half the width and height)."""
        w = max(1, int(round(self.width * factor)))
        h = max(1, int(round(self.height * factor)))
        sx, sy = w / self.width, h / self.height
        return Cameras(
            self.c2w.copy(), self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, w, h
        )

    def intrinsics(self) -> np.ndarray:
        """[N, 3, 3] pinhole matrices K."""
        k = np.zeros((len(self), 3, 3))
        k[:, 0, 0], k[:, 1, 1] = self.fx, self.fy
        k[:, 0, 2], k[:, 1, 2] = self.cx, self.cy
        k[:, 2, 2] = 1.0
        return k

    @property
    def centers(self) -> np.ndarray:
        """[N, 3] camera centres in world coordinates."""
        return self.c2w[:, :3, 3]

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project world points into every camera.

        points: [P, 3] world. Returns (uv [N, P, 2] pixel coordinates, pixel centres at
        +0.5, so pixel (row i, col j) covers u in [j, j + 1), v in [i, i + 1);
        depth [N, P], positive in front of the camera).
        """
        pts = np.asarray(points, np.float64).reshape(-1, 3)
        w2c = np.linalg.inv(self.c2w)  # [N, 4, 4]
        cam = np.einsum("nij,pj->npi", w2c[:, :3, :3], pts) + w2c[:, None, :3, 3]  # OpenGL
        depth = -cam[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = self.fx[:, None] * cam[..., 0] / depth + self.cx[:, None]
            v = -self.fy[:, None] * cam[..., 1] / depth + self.cy[:, None]
        return np.stack([u, v], axis=-1), depth


@dataclass(frozen=True)
class Normalization:
    """World <-> unit cube: ``unit = (world - center) * scale + 0.5``.

    The object's bounds map inside [0, 1]^3 with a margin; methods train there.
    """

    center: tuple[float, float, float]
    scale: float

    def to_unit(self, points: np.ndarray) -> np.ndarray:
        """points: [..., 3] world -> [..., 3] unit cube."""
        return (np.asarray(points) - np.asarray(self.center)) * self.scale + 0.5

    def to_world(self, points: np.ndarray) -> np.ndarray:
        """points: [..., 3] unit cube -> [..., 3] world."""
        return (np.asarray(points) - 0.5) / self.scale + np.asarray(self.center)

    def c2w_to_unit(self, c2w: np.ndarray) -> np.ndarray:
        """c2w: [N, 4, 4] world poses -> [N, 4, 4] poses in the unit cube (rotation kept)."""
        out = np.array(c2w, dtype=np.float64, copy=True)
        out[:, :3, 3] = self.to_unit(out[:, :3, 3])
        return out

    @staticmethod
    def from_bounds(lo: np.ndarray, hi: np.ndarray, margin: float = 0.05) -> Normalization:
        """Fit the box [lo, hi] (world) into [margin, 1 - margin]^3, keeping aspect."""
        lo, hi = np.asarray(lo, float), np.asarray(hi, float)
        center = (lo + hi) / 2
        extent = float(np.max(hi - lo))
        if not np.isfinite(extent) or extent <= 0:
            extent = 1.0
        scale = (1.0 - 2 * margin) / extent
        return Normalization(tuple(float(c) for c in center), float(scale))


@dataclass
class Scene:
    """A loaded capture: images, cameras, split and normalisation."""

    root: Path
    format: str  # "nerf-synthetic" | "instant-ngp" | "nerfstudio" | "idr" | "colmap"
    images: np.ndarray  # [N, H, W, 3] uint8, alpha already composited on `background`
    cameras: Cameras  # N cameras, world coordinates of the input
    file_paths: list[str]  # N frame names as written in the capture (e.g. "./test/r_3")
    split: dict[str, np.ndarray]  # "train" / "val" / "test" -> int64 indices into images
    normalization: Normalization
    bounds: tuple[np.ndarray, np.ndarray]  # world-space box (lo [3], hi [3]) holding the object
    masks: np.ndarray | None = None  # [N, H, W] uint8 (255 = object), from alpha or mask files
    points: np.ndarray | None = None  # [P, 3] sparse world points (COLMAP), if any
    point_colors: np.ndarray | None = None  # [P, 3] uint8
    background: np.ndarray = field(default_factory=lambda: np.ones(3, np.float32))  # [3] in [0, 1]
    alpha_composited: bool = False  # True when `masks` is the alpha the images were composited with
    camera_model: str = "PINHOLE"  # as found in the capture, before undistortion
    problems: list[Problem] = field(default_factory=list)  # what was left out, and why
    image_paths: list[str] = field(default_factory=list)  # N image files read ("" if unknown)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def width(self) -> int:
        return int(self.images.shape[2])

    @property
    def height(self) -> int:
        return int(self.images.shape[1])

    @property
    def names(self) -> list[str]:
        """Frame names without folders or extension ("./test/r_3.png" -> "r_3")."""
        return [Path(p).stem if Path(p).suffix else Path(p).name for p in self.file_paths]

    def summary(self) -> dict:
        """What `recon info` prints."""
        return {
            "format": self.format,
            "root": str(self.root),
            "images": len(self),
            "resolution": [self.width, self.height],
            "camera_model": self.camera_model,
            "split": {k: int(len(v)) for k, v in self.split.items()},
            "masks": self.masks is not None,
            "sparse_points": 0 if self.points is None else int(len(self.points)),
            "bounds": [np.asarray(self.bounds[0]).tolist(), np.asarray(self.bounds[1]).tolist()],
            "problems": [str(p) for p in self.problems],
            "frames": self.frame_rows(),
            "points": self.point_sample(),
            "skipped": [{"path": p.path, "problem": p.problem, "fix": p.fix}
                        for p in self.problems],
        }

    def point_sample(self, n: int = 20000) -> list[list[float]]:
        """Up to ``n`` of the sparse points (world), evenly spread over the list."""
        if self.points is None or not len(self.points):
            return []
        idx = np.unique(np.linspace(0, len(self.points) - 1, min(n, len(self.points))).round().astype(np.int64))
        return np.asarray(self.points[idx], dtype=float).round(6).tolist()

    def frame_rows(self) -> list[dict]:
        """One row per kept image: its name, file_path, image file, split, camera-to-world
        matrix and intrinsics (fx, fy, cx, cy)."""
        split_of = {}
        for name in ("val", "test", "train"):  # a frame in several splits shows the first
            for i in np.asarray(self.split.get(name, []), dtype=np.int64).tolist():
                split_of.setdefault(int(i), name)
        paths = self.image_paths if len(self.image_paths) == len(self) else [""] * len(self)
        cams = self.cameras
        return [
            {"name": name, "file_path": fp, "image": paths[i], "split": split_of.get(i, "unused"),
             # world camera-to-world (OpenGL: looks down -Z) and pinhole intrinsics, so that
             # viewers can draw the camera of any capture format
             "c2w": np.asarray(cams.c2w[i], dtype=float).round(9).tolist(),
             "intrinsics": [float(cams.fx[i]), float(cams.fy[i]), float(cams.cx[i]), float(cams.cy[i])]}
            for i, (name, fp) in enumerate(zip(self.names, self.file_paths, strict=True))
        ]
