"""IDR / NeuS captures (DTU, BlendedMVS): ``cameras_sphere.npz`` + ``image/`` + ``mask/``.

The npz holds, per image i, ``world_mat_i`` = K [R | t] (4x4, OpenCV camera axes, pixel
centres at integer coordinates) and ``scale_mat_i`` (maps the unit sphere, which holds the
object, into the world). IDR and NeuS train on ``world_mat @ scale_mat``, i.e. in the unit
sphere's frame; here the poses stay in the frame of ``world_mat`` (for DTU: the real
scanner frame, in millimetres), because outputs are written in the capture's own world
coordinates. ``scale_mat`` defines the bounds (the box around the mapped unit sphere) and
therefore the normalisation: the unit cube's centre is the sphere's centre.

Images are ``image/`` (or ``images/``) and masks ``mask/`` (or ``masks/``); they are paired
with cameras by the number in their file name (DTU: ``000012.png`` and ``012.png`` are both
12), else by sorted order. Masks are 3-channel uint8 and not strictly binary: a pixel is
object if its value is > 127. There is no split in the capture: every 8th image
(``i % 8 == 0`` by camera index) is "test", the rest "train", "val" empty.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

from reconstruction.data.images import IMAGE_EXTENSIONS, Capture, Frame
from reconstruction.data.paths import UnsafePathError, safe_path
from reconstruction.data.scene import OPENCV_TO_OPENGL, CaptureError, Problem

CAMERA_FILES = ("cameras_sphere.npz", "cameras.npz", "cameras_large.npz")
IMAGE_DIRS = ("image", "images", "rgb")
MASK_DIRS = ("mask", "masks")
MASK_THRESHOLD = 127


def camera_file(root: Path) -> Path | None:
    """The IDR camera file in ``root`` (cameras_sphere.npz first), None if absent."""
    for name in CAMERA_FILES:
        if (root / name).is_file():
            return root / name
    return None


def decompose_projection(
    p: np.ndarray,  # [3, 4] projection matrix K [R | t], OpenCV camera axes
) -> tuple[np.ndarray, np.ndarray]:
    """Split P into intrinsics and an OpenCV camera-to-world pose.

    Returns (K [3, 3] with K[2, 2] = 1 and a positive diagonal, c2w [4, 4] OpenCV axes).
    cv2.decomposeProjectionMatrix may return K with negative diagonal entries (RQ is
    unique only up to signs) or a reflection for R when P has a negative overall scale;
    both are normalised so that K R is unchanged (up to the projective scale), R is a
    rotation and points in front of the camera have positive depth.
    """
    k, r, c = cv2.decomposeProjectionMatrix(np.asarray(p, np.float64))[:3]
    signs = np.sign(np.diag(k))
    signs[signs == 0] = 1.0
    d = np.diag(signs)
    k, r = k @ d, d @ r  # D = D^-1, so K R is unchanged
    if np.linalg.det(r) < 0:  # P had a negative overall scale: -P is the same camera
        r = -r
    k = k / k[2, 2]
    center = (c[:3] / c[3]).ravel()
    c2w = np.eye(4)
    c2w[:3, :3] = r.T
    c2w[:3, 3] = center
    return k, c2w


def _index_of(path: Path) -> int | None:
    m = re.search(r"(\d+)(?!.*\d)", path.stem)
    return int(m.group(1)) if m else None


def _pair(files: list[Path], n: int) -> dict[int, Path]:
    """Camera index -> file: by the number in the name if unique, else sorted order."""
    numbers = [_index_of(f) for f in files]
    if all(x is not None for x in numbers) and len(set(numbers)) == len(numbers):
        return {int(x): f for x, f in zip(numbers, files, strict=True)}
    return dict(enumerate(files[:n]))


def _list_images(folder: Path) -> list[Path]:
    exts = {e.lower() for e in IMAGE_EXTENSIONS}
    return sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in exts)


def read_idr(root: Path, source: Path | None = None) -> Capture:
    """Parse an IDR/NeuS folder (``root`` holds ``cameras_sphere.npz`` and ``image/``).

    ``source``: the camera file to use (default: :func:`camera_file`).
    """
    source = source or camera_file(root)
    if source is None:
        raise CaptureError(root, "no cameras_sphere.npz", "add the IDR camera file")
    try:
        with np.load(source) as npz:
            mats = {
                k: np.asarray(npz[k], np.float64)
                for k in npz.files
                if re.fullmatch(r"(world|scale)_mat_\d+", k)
            }
    except Exception as e:
        raise CaptureError(
            source, f"cannot be read as a NumPy .npz ({e})", "re-export the camera file"
        ) from e
    ids = sorted(int(k.rsplit("_", 1)[1]) for k in mats if k.startswith("world_mat_"))
    if not ids:
        raise CaptureError(
            source,
            "has no world_mat_<i> arrays",
            "an IDR camera file needs world_mat_0, world_mat_1, ... (K [R|t])",
        )
    image_dir = next((root / d for d in IMAGE_DIRS if (root / d).is_dir()), None)
    if image_dir is None:
        raise CaptureError(
            root,
            "has cameras but no image/ or images/ folder",
            "put the images in image/ next to the camera file",
        )
    image_files = _pair(_list_images(image_dir), len(ids))
    mask_dir = next((root / d for d in MASK_DIRS if (root / d).is_dir()), None)
    mask_files = _pair(_list_images(mask_dir), len(ids)) if mask_dir is not None else {}
    if not mask_files:
        mask_dir = None  # an empty mask folder means no masks, not "every mask missing"

    problems: list[Problem] = []
    frames: list[Frame] = []
    scale_mat = None
    for i in ids:
        world = mats[f"world_mat_{i}"]
        path = image_files.get(i)
        if path is not None:
            try:
                safe_path(image_dir, path.name, "image")
            except UnsafePathError as e:
                problems.append(Problem(e.path, e.problem, e.fix))
                continue
        name = f"{image_dir.name}/{path.name}" if path else f"{image_dir.name}/<camera {i}>"
        if scale_mat is None and f"scale_mat_{i}" in mats:
            scale_mat = mats[f"scale_mat_{i}"]
        if world.shape not in ((4, 4), (3, 4)) or not np.all(np.isfinite(world)):
            k, c2w = np.eye(3), np.full((4, 4), np.nan)  # dropped (and listed) by the loader
        else:
            k, c2w = decompose_projection(world[:3, :4])
        frames.append(
            Frame(
                file_path=name,
                image_path=path,
                expected_path=path or image_dir / f"{i:06d}.png",
                c2w=c2w @ OPENCV_TO_OPENGL,
                fx=float(k[0, 0]),
                fy=float(k[1, 1]),
                cx=float(k[0, 2]) + 0.5,
                cy=float(k[1, 2]) + 0.5,  # OpenCV -> +0.5 centres
                mask_path=None
                if mask_dir is None
                else mask_files.get(i, mask_dir / f"{i:03d}.png"),
                mask_threshold=MASK_THRESHOLD,
                index=len(frames),
            )
        )
    extra = sorted(set(image_files) - set(ids))
    for j in extra:
        problems.append(
            Problem(
                str(image_files[j]),
                "image has no world_mat in the camera file",
                f"add world_mat_{j} to {source.name} or remove the image",
            )
        )
    bounds = None
    if scale_mat is not None and np.all(np.isfinite(scale_mat)):
        a, t = scale_mat[:3, :3], scale_mat[:3, 3]
        half = np.linalg.norm(a, axis=1)  # box around the image of the unit sphere
        bounds = (t - half, t + half)
    return Capture(
        root=root, format="idr", source=source, frames=frames, problems=problems, bounds=bounds
    )
