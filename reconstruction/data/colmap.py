"""COLMAP captures: a sparse model (``sparse/0/`` or ``sparse/``) + ``images/``.

The model (``cameras``, ``images``, ``points3D`` as ``.bin`` or ``.txt``) is read with
pycolmap. COLMAP poses are world-to-camera in OpenCV axes; they become OpenGL
camera-to-world here, in COLMAP's own world frame (nothing recentred or rescaled).
Intrinsics use COLMAP's convention (pixel centres at +0.5), as :class:`Cameras` does.
Camera models PINHOLE, SIMPLE_PINHOLE, SIMPLE_RADIAL, RADIAL, OPENCV, FULL_OPENCV and
OPENCV_FISHEYE are supported; distortion is removed on load with OpenCV, keeping K.
Images with another model are skipped and listed. Masks: ``masks/`` beside ``images/``
holding ``<image name>``, ``<stem>.png`` or ``<image name>.png`` (255 = object, binarised at
127; ``recon sfm`` writes them), used when every registered image has one. Sparse points and their colours become
``scene.points`` / ``scene.point_colors`` and give the bounds (robust 2-98 % percentiles,
padded 10 %). Images are sorted by name; every 8th (``i % 8 == 0``) is "test", the rest
"train", "val" is empty.

Import order: pycolmap 4.2.1 imported before Pillow or OpenCV in one process corrupted
the heap ("corrupted size vs. prev_size", then a hang or an abort in zlib's deflateEnd on
the next Pillow resize/save). So Pillow and OpenCV are imported here first, and pycolmap
only inside :func:`read_model`. tests/test_data_loaders.py keeps a regression test.
"""

from __future__ import annotations

from pathlib import Path

import cv2  # noqa: F401  (must be loaded before pycolmap, see the module docstring)
import numpy as np
import PIL.Image  # noqa: F401  (must be loaded before pycolmap, see the module docstring)

from reconstruction.data.images import Capture, Frame
from reconstruction.data.paths import UnsafePathError, safe_path
from reconstruction.data.scene import OPENCV_TO_OPENGL, CaptureError, Problem

MODEL_FILES = ("cameras.bin", "cameras.txt")
IMAGE_DIRS = ("images",)


def is_model_dir(path: Path) -> bool:
    """True if ``path`` holds a COLMAP sparse model (cameras + images files)."""
    return any((path / f).is_file() for f in MODEL_FILES) and any(
        (path / f).is_file() for f in ("images.bin", "images.txt")
    )


def find_model(root: Path) -> Path | None:
    """The sparse model of a capture folder: ``sparse/0``, ``sparse``, ``sparse/<n>``, ``.``."""
    candidates = [root / "sparse" / "0", root / "sparse"]
    if (root / "sparse").is_dir():
        candidates += sorted(p for p in (root / "sparse").iterdir() if p.is_dir())
    candidates.append(root)
    return next((c for c in candidates if c.is_dir() and is_model_dir(c)), None)


def capture_root(model_dir: Path) -> Path:
    """The capture folder of a model folder: the nearest one (up to 2 levels) with images/."""
    for folder in (model_dir, model_dir.parent, model_dir.parent.parent):
        if any((folder / d).is_dir() for d in IMAGE_DIRS):
            return folder
    return model_dir.parent.parent if model_dir.parent.name == "sparse" else model_dir.parent


def camera_to_pinhole(
    model: str,
    params: np.ndarray,  # [K] COLMAP camera parameters
) -> tuple[float, float, float, float, np.ndarray | None, bool]:
    """(fx, fy, cx, cy, OpenCV distortion or None, fisheye) for a COLMAP camera model.

    Raises ValueError for a model OpenCV cannot undistort.
    """
    p = [float(x) for x in params]
    if model == "SIMPLE_PINHOLE":
        return p[0], p[0], p[1], p[2], None, False
    if model == "PINHOLE":
        return p[0], p[1], p[2], p[3], None, False
    if model == "SIMPLE_RADIAL":
        return p[0], p[0], p[1], p[2], np.array([p[3], 0.0, 0.0, 0.0]), False
    if model == "RADIAL":
        return p[0], p[0], p[1], p[2], np.array([p[3], p[4], 0.0, 0.0]), False
    if model == "OPENCV":
        return p[0], p[1], p[2], p[3], np.array(p[4:8]), False
    if model == "FULL_OPENCV":  # k1 k2 p1 p2 k3 k4 k5 k6: OpenCV's rational model, same order
        return p[0], p[1], p[2], p[3], np.array(p[4:12]), False
    if model == "OPENCV_FISHEYE":
        return p[0], p[1], p[2], p[3], np.array(p[4:8]), True
    raise ValueError(model)


def _cam_from_world(image) -> np.ndarray:
    """[3, 4] world-to-camera (OpenCV) of a pycolmap image (method in 4.x, property in 3.x)."""
    rigid = image.cam_from_world
    rigid = rigid() if callable(rigid) else rigid
    return np.asarray(rigid.matrix(), np.float64)


def read_model(model_dir: Path):
    """Read a sparse model with pycolmap (imported here, after Pillow and OpenCV)."""
    import pycolmap

    try:
        return pycolmap.Reconstruction(str(model_dir))
    except Exception as e:
        raise CaptureError(
            model_dir,
            f"COLMAP model cannot be read ({e})",
            "re-export it from COLMAP (File > Export model) or re-run mapping",
        ) from e


def read_colmap(root: Path, model_dir: Path | None = None) -> Capture:
    """Parse a COLMAP capture folder (``root`` holds ``sparse/0`` and ``images/``)."""
    model_dir = model_dir or find_model(root)
    if model_dir is None:
        raise CaptureError(
            root,
            "no COLMAP model (sparse/0/cameras.bin or .txt)",
            "run COLMAP mapping or point to the folder holding sparse/",
        )
    image_dir = next((root / d for d in IMAGE_DIRS if (root / d).is_dir()), None)
    if image_dir is None:
        raise CaptureError(
            root,
            "has a COLMAP model but no images/ folder",
            "put the photos in images/ next to sparse/",
        )
    rec = read_model(model_dir)
    mask_dir = root / "masks"

    problems: list[Problem] = []
    frames: list[Frame] = []
    for image in sorted(rec.images.values(), key=lambda im: im.name):
        name = image.name
        has_pose = image.has_pose() if callable(image.has_pose) else image.has_pose
        if not has_pose:
            problems.append(
                Problem(
                    str(image_dir / name),
                    "image not registered by COLMAP",
                    "re-run mapping with more overlap to include it",
                )
            )
            continue
        cam = rec.cameras[image.camera_id]
        model = cam.model.name if hasattr(cam.model, "name") else str(cam.model)
        try:
            fx, fy, cx, cy, dist, fisheye = camera_to_pinhole(model, np.asarray(cam.params))
        except ValueError:
            problems.append(
                Problem(
                    str(image_dir / name),
                    f"camera model {model} is not supported",
                    "run colmap image_undistorter, or use PINHOLE/SIMPLE_RADIAL/RADIAL/OPENCV cameras",
                )
            )
            continue
        w2c = np.eye(4)
        w2c[:3, :4] = _cam_from_world(image)
        try:
            path = safe_path(image_dir, name, "image")
        except UnsafePathError as e:
            problems.append(Problem(e.path, e.problem, e.fix))
            continue
        mask = None
        if mask_dir.is_dir():
            stem = Path(name).stem
            tries = []
            for m in (name, f"{stem}.png", f"{name}.png"):
                try:
                    tries.append(safe_path(mask_dir, m, "mask"))
                except UnsafePathError:
                    pass
            mask = next((m for m in tries if m.is_file()), None)
        frames.append(
            Frame(
                file_path=name,
                image_path=path if path.is_file() else None,
                expected_path=path,
                c2w=np.linalg.inv(w2c) @ OPENCV_TO_OPENGL,
                fx=fx,
                fy=fy,
                cx=cx,
                cy=cy,
                width=int(cam.width),
                height=int(cam.height),
                distortion=dist,
                fisheye=fisheye,
                index=len(frames),
                camera_model=model,
                mask_path=mask,
                mask_threshold=127 if mask is not None else None,
            )
        )
    if not all(fr.mask_path is not None for fr in frames):
        for fr in frames:  # a partial masks/ folder is ignored rather than losing images
            fr.mask_path, fr.mask_threshold = None, None
    points = colors = None
    if rec.num_points3D() > 0:
        pts = list(rec.points3D.values())
        points = np.array([p.xyz for p in pts], np.float64).reshape(-1, 3)
        colors = np.array([p.color for p in pts], np.uint8).reshape(-1, 3)
    return Capture(
        root=root,
        format="colmap",
        source=model_dir,
        frames=frames,
        problems=problems,
        points=points,
        point_colors=colors,
    )
