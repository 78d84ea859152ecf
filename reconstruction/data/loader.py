"""Load any supported capture into a :class:`Scene`: format detection, bounds, normalisation.

Supported layouts (``detect_format`` names):

- ``"nerf-synthetic"``: ``transforms_train.json`` (+ ``_val``, ``_test``); split from the files.
- ``"instant-ngp"``: one ``transforms.json`` (fl_x/fl_y/cx/cy/w/h or camera_angle_x, k1 k2 p1 p2).
- ``"nerfstudio"``: ``transforms.json`` with ``camera_model`` (masks, split lists optional).
- ``"idr"``: ``cameras_sphere.npz`` + ``image/`` (+ ``mask/``), e.g. DTU from IDR/NeuS.
- ``"colmap"``: ``sparse/0/`` (or ``sparse/``) + ``images/``.

Cameras are in the capture's own world frame (OpenGL camera axes). Formats without a
split use every 8th frame (``i % 8 == 0``, position in the capture's order) as "test" and
the rest as "train"; "val" is empty (a capture of a single image trains on it).

Bounds (``scene.bounds``, a world box holding the object) and ``scene.normalization =
Normalization.from_bounds(*bounds)``:

- IDR: the box around the unit sphere mapped by ``scale_mat``;
- COLMAP: the 2-98 % percentiles of the sparse points per axis, padded by 10 % of the
  extent on each side (the cameras' rule below when there are fewer than 8 points);
- transforms formats: an ``aabb`` key if present; else from the cameras (:func:`camera_bounds`).

Masks (from alpha, mask files or IDR masks) are resized like the images (INTER_AREA), so
after downscaling they hold pixel coverage 0-255; threshold at 127 for a binary mask.

Bad input raises :class:`CaptureError` (missing folder, no recognisable layout, broken
JSON, every pose NaN/inf, no usable image left, more memory needed than is available).
Bad single images and frames are skipped and listed in ``scene.problems`` (and logged as
warnings): unreadable images, NaN/inf/huge or degenerate poses, unusable intrinsics,
duplicates, and names that leave the capture folder (``..``, absolute paths, symlinks to
outside, symlink loops; see ``reconstruction/data/paths.py``). Nothing in the capture is
ever written.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from pathlib import Path

import numpy as np

from reconstruction.data import blender, colmap, idr, transforms
from reconstruction.data.images import IMAGE_EXTENSIONS, Capture, Frame, load_frames
from reconstruction.data.scene import Cameras, CaptureError, Normalization, Problem, Scene

log = logging.getLogger(__name__)

FORMATS = ("nerf-synthetic", "instant-ngp", "nerfstudio", "idr", "colmap")
SUPPORTED = (
    "supported layouts: nerf-synthetic (transforms_train.json), instant-ngp or nerfstudio "
    "(transforms.json), IDR/NeuS (cameras_sphere.npz + image/), COLMAP (sparse/0/ + images/)"
)
MAX_POSE_VALUE = 1e12  # no capture has a camera this far away, or a rotation entry this big
_SPLIT_FILE = re.compile(r"transforms_(train|val|test)\.json")


def _locate(path: str | Path) -> tuple[str, Path, Path]:
    """(format, capture folder, camera file or model folder) for a folder or a capture file."""
    p = Path(path).expanduser()
    if not p.exists():
        raise CaptureError(
            p, "does not exist", "check the path: give a capture folder or its transforms.json"
        )
    if p.is_file():
        name = p.name
        if _SPLIT_FILE.fullmatch(name):
            return "nerf-synthetic", p.parent, p
        if p.suffix.lower() == ".json":
            meta = transforms.load_json(p)
            return ("nerfstudio" if transforms.is_nerfstudio(meta) else "instant-ngp"), p.parent, p
        if name in idr.CAMERA_FILES:
            return "idr", p.parent, p
        if name in colmap.MODEL_FILES or name in ("images.bin", "images.txt"):
            return "colmap", colmap.capture_root(p.parent), p.parent
        raise CaptureError(
            p,
            "is not a capture file",
            f"give the capture folder or its transforms.json; {SUPPORTED}",
        )
    try:
        entries = sorted(p.iterdir())
    except OSError as e:
        raise CaptureError(
            p, f"cannot be listed ({e.strerror or e})", "check the folder's permissions"
        ) from e
    if not entries:
        raise CaptureError(p, "the folder is empty", f"add a capture; {SUPPORTED}")
    split_files = blender.split_files(p)
    if split_files:
        return "nerf-synthetic", p, split_files.get("train", next(iter(split_files.values())))
    json_files = [
        e
        for e in entries
        if e.is_file() and e.name.startswith("transforms") and e.suffix.lower() == ".json"
    ]
    if (p / "transforms.json").is_file() or len(json_files) == 1:
        source = p / "transforms.json" if (p / "transforms.json").is_file() else json_files[0]
        meta = transforms.load_json(source)
        return ("nerfstudio" if transforms.is_nerfstudio(meta) else "instant-ngp"), p, source
    camera_file = idr.camera_file(p)
    if camera_file is not None:
        return "idr", p, camera_file
    model = colmap.find_model(p)
    if model is not None:
        return "colmap", (p if model != p else colmap.capture_root(p)), model
    exts = {e.lower() for e in IMAGE_EXTENSIONS}
    photos = [e for e in entries if e.is_file() and e.suffix.lower() in exts]
    if photos:
        raise CaptureError(
            p,
            f"holds {len(photos)} images but no camera poses",
            f"run structure-from-motion (COLMAP) to make sparse/0/ next to images/; {SUPPORTED}",
        )
    shown = ", ".join(e.name + ("/" if e.is_dir() else "") for e in entries[:6])
    more = ", ..." if len(entries) > 6 else ""
    raise CaptureError(p, f"no recognisable capture layout (found {shown}{more})", SUPPORTED)


def detect_format(path: str | Path) -> str:
    """The layout of a capture folder or capture file: one of :data:`FORMATS`.

    Raises :class:`CaptureError` if the path is missing, empty or not a known layout (or
    its transforms JSON is broken: telling instant-ngp from nerfstudio needs its keys).
    """
    return _locate(path)[0]


# --------------------------------------------------------------------------- bounds


def camera_bounds(cameras: Cameras) -> tuple[np.ndarray, np.ndarray]:
    """A world box the cameras look at: (lo [3], hi [3]).

    Centre: the least-squares point nearest to all optical axes (the mean of the camera
    centres if the axes are near parallel or the point is behind most cameras).
    Half-size: median camera distance to the centre * tan(smallest half field of view),
    i.e. what the narrowest view sees at the typical distance. NeRF-synthetic's lego
    (distance ~4.03, camera_angle_x 0.69) gives ~1.45, the usual [-1.5, 1.5]^3.
    """
    o = cameras.centers  # [N, 3]
    d = -cameras.c2w[:, :3, 2]  # [N, 3] optical axes (OpenGL looks down -Z)
    d = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
    proj = np.eye(3)[None] - d[:, :, None] * d[:, None, :]  # [N, 3, 3]
    a = proj.sum(0)
    b = np.einsum("nij,nj->i", proj, o)
    center = o.mean(0)
    eig = np.linalg.eigvalsh(a)
    if len(o) > 1 and eig[0] > 1e-3 * len(o):
        c = np.linalg.solve(a, b)
        if np.mean(np.einsum("ni,ni->n", c[None] - o, d) > 0) >= 0.5:
            center = c
    dist = float(np.median(np.linalg.norm(o - center, axis=1)))
    half_fov = np.arctan(
        np.minimum(cameras.width / (2 * cameras.fx), cameras.height / (2 * cameras.fy))
    )
    half = dist * math.tan(float(np.min(half_fov)))
    if not np.isfinite(half) or half <= 0:
        half = 1.0
    return center - half, center + half


def point_bounds(
    points: np.ndarray,  # [P, 3] world
    low: float = 2.0,
    high: float = 98.0,
    pad: float = 0.1,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Robust box of sparse points: per-axis percentiles, padded by ``pad`` of the extent.

    Returns None if fewer than 8 finite points.
    """
    pts = np.asarray(points, np.float64).reshape(-1, 3)
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    if len(pts) < 8:
        return None
    lo, hi = np.percentile(pts, low, axis=0), np.percentile(pts, high, axis=0)
    ext = hi - lo
    return lo - pad * ext, hi + pad * ext


# --------------------------------------------------------------------------- scene


def _det3(c2w: np.ndarray) -> float:
    with np.errstate(all="ignore"):
        return float(np.linalg.det(c2w[:3, :3]))


def _check_poses(capture: Capture) -> list[Frame]:
    """Frames with a usable pose; the others listed in capture.problems."""
    good, nan = [], 0
    for fr in capture.frames:
        c2w = np.asarray(fr.c2w, np.float64)
        where = str(fr.expected_path or fr.file_path)
        if not np.all(np.isfinite(c2w)):
            nan += 1
            capture.problems.append(
                Problem(
                    where,
                    "camera pose is NaN or infinite",
                    f"fix or remove this frame's pose in {capture.source.name}",
                )
            )
        elif np.abs(c2w).max() > MAX_POSE_VALUE:
            capture.problems.append(
                Problem(
                    where,
                    f"camera pose holds values beyond {MAX_POSE_VALUE:g} "
                    f"(largest {np.abs(c2w).max():g})",
                    f"fix or remove this frame's pose in {capture.source.name}",
                )
            )
        elif not abs(_det3(c2w)) >= 1e-9:
            capture.problems.append(
                Problem(
                    where,
                    "camera pose is degenerate (singular rotation)",
                    f"fix or remove this frame's pose in {capture.source.name}",
                )
            )
        else:
            fr.c2w = np.vstack([c2w[:3], [0.0, 0.0, 0.0, 1.0]])
            good.append(fr)
    if capture.frames and nan == len(capture.frames):
        raise CaptureError(
            capture.source,
            f"every camera pose ({nan}) is NaN or infinite",
            "re-export the cameras from the tool that made them (a failed reconstruction?)",
        )
    return good


def _split(frames: list[Frame], has_split: bool) -> dict[str, np.ndarray]:
    """train/val/test index arrays into the kept frames."""
    out: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for k, fr in enumerate(frames):
        if has_split:
            if fr.split in out:
                out[fr.split].append(k)
        else:
            out["test" if fr.index % 8 == 0 else "train"].append(k)
    if not has_split and not out["train"]:
        out = {"train": list(range(len(frames))), "val": [], "test": []}
    return {k: np.asarray(v, np.int64) for k, v in out.items()}


def _background(background) -> np.ndarray:
    bg = np.asarray(background, np.float32).reshape(-1)
    if bg.shape != (3,) or not np.all(np.isfinite(bg)) or np.any((bg < 0) | (bg > 1)):
        raise ValueError(f"background must be 3 numbers in [0, 1], got {background!r}")
    return bg


def build_scene(capture: Capture, downscale: int = 1, background=(1.0, 1.0, 1.0)) -> Scene:
    """Decode a parsed capture's images and assemble the :class:`Scene`."""
    bg = _background(background)
    frames = _check_poses(capture)
    problems = capture.problems
    loaded = load_frames(frames, downscale, bg, problems, capture.source) if frames else None
    for p in problems:
        log.warning("skipped %s", p)
    if loaded is None:
        first = f" (first: {problems[0]})" if problems else ""
        raise CaptureError(
            capture.source,
            f"no usable image: {len(capture.frames)} frame(s), all skipped{first}",
            "fix the listed images or poses",
        )
    if capture.bounds is not None:
        lo, hi = capture.bounds
    else:
        box = point_bounds(capture.points) if capture.points is not None else None
        lo, hi = box if box is not None else camera_bounds(loaded.cameras)
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    models = Counter(fr.camera_model for fr in loaded.frames)
    camera_model = "+".join(sorted(models)) if len(models) > 1 else next(iter(models))
    return Scene(
        root=capture.root,
        format=capture.format,
        images=loaded.images,
        cameras=loaded.cameras,
        file_paths=[fr.file_path for fr in loaded.frames],
        split=_split(loaded.frames, capture.has_split),
        normalization=Normalization.from_bounds(lo, hi),
        bounds=(lo, hi),
        masks=loaded.masks,
        points=capture.points,
        point_colors=capture.point_colors,
        background=bg,
        alpha_composited=loaded.alpha_composited,
        camera_model=camera_model,
        problems=list(problems),
        image_paths=[str(fr.image_path or "") for fr in loaded.frames],
    )


def load_capture(path: str | Path, downscale: int = 1, background=(1.0, 1.0, 1.0),
                 bounds=None) -> Scene:
    """Load a capture folder (or its transforms*.json / cameras npz) into a :class:`Scene`.

    ``downscale``: integer factor; images are resized with ``cv2.INTER_AREA`` to
    ``round(W / downscale) x round(H / downscale)`` and the cameras scaled to match.
    ``background``: RGB in [0, 1] under transparent pixels of RGBA images (the alpha is
    kept as ``scene.masks``). Raises :class:`CaptureError` for an unusable capture; bad
    single images are skipped and listed in ``scene.problems``. ``bounds``: a world box
    ``(min [3], max [3])`` to train in instead of the capture's (a crop, ``bounds.json``).
    """
    if int(downscale) != downscale or downscale < 1:
        raise ValueError(f"downscale must be an integer >= 1, got {downscale!r}")
    _background(background)
    fmt, root, source = _locate(path)
    if fmt == "nerf-synthetic":
        capture = blender.read_blender(root)
    elif fmt in ("instant-ngp", "nerfstudio"):
        capture = transforms.read_transforms(source)
    elif fmt == "idr":
        capture = idr.read_idr(root, source)
    else:
        capture = colmap.read_colmap(root, source)
    if bounds is not None:  # a crop box from `recon edit` (bounds.json)
        lo, hi = (np.asarray(b, np.float64).reshape(3) for b in bounds)
        if not (np.isfinite(lo).all() and np.isfinite(hi).all() and np.all(lo < hi)):
            raise CaptureError(Path(path), f"bounds {lo.tolist()} - {hi.tolist()}: need finite "
                               f"min < max on every axis", "fix the --bounds box")
        capture.bounds = (lo, hi)
    return build_scene(capture, int(downscale), background)
