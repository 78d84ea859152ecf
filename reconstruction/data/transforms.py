"""instant-ngp and nerfstudio ``transforms.json`` captures.

Both hold one ``transforms.json`` with OpenGL camera-to-world ``transform_matrix`` per
frame (the json's own world frame is kept; nothing is recentred or rescaled) and pinhole
intrinsics ``fl_x fl_y cx cy w h`` (or ``camera_angle_x`` / ``camera_angle_y``), globally
or per frame (a frame's keys override the global ones).

- instant-ngp: optional OpenCV distortion ``k1 k2 p1 p2`` (and ``k3``), removed on load
  with the same K. ``aabb_scale`` describes how far the background extends and is not
  used for the object's bounds. Frames keep the file's order.
- nerfstudio: recognised by ``camera_model`` (``PINHOLE``, ``SIMPLE_PINHOLE``, ``OPENCV``,
  ``OPENCV_FISHEYE``), ``applied_transform`` or ``*_filenames``. Optional ``mask_path``
  per frame (255 = object / pixel to use), optional ``train_filenames`` /
  ``val_filenames`` / ``test_filenames``. Frames are sorted by file path, as nerfstudio
  does. ``applied_transform`` (COLMAP world -> this json's world) is not undone: the
  json's world is the capture's world.

Without split lists, every 8th frame (position ``i % 8 == 0`` in the order above) is
"test", the rest "train", and "val" is empty. An ``aabb`` key (``[[x0, y0, z0], [x1, y1,
z1]]`` or 6 numbers) gives the object's bounds; otherwise they come from the cameras
(see ``reconstruction.data.loader``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from reconstruction.data.images import Capture, Frame, resolve_image
from reconstruction.data.paths import UnsafePathError, safe_path
from reconstruction.data.scene import CaptureError, Problem

SUPPORTED_CAMERA_MODELS = ("PINHOLE", "SIMPLE_PINHOLE", "OPENCV", "OPENCV_FISHEYE")
_NERFSTUDIO_KEYS = (
    "camera_model",
    "applied_transform",
    "train_filenames",
    "val_filenames",
    "test_filenames",
)


def load_json(path: Path) -> dict:
    """Parse a capture's JSON file; broken or unexpected JSON raises :class:`CaptureError`."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise CaptureError(
            path, f"cannot be read ({e.strerror or e})", "check the file's permissions"
        ) from e
    except UnicodeDecodeError as e:
        raise CaptureError(path, "is not UTF-8 text", "save it as UTF-8 JSON") from e
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as e:
        raise CaptureError(
            path,
            f"broken JSON at line {e.lineno}, column {e.colno}: {e.msg}",
            f"fix the JSON syntax near line {e.lineno} (a missing comma, quote or bracket?)",
        ) from e
    if not isinstance(meta, dict):
        raise CaptureError(
            path,
            "is JSON but not an object with a 'frames' list",
            "point to a transforms.json written by instant-ngp, nerfstudio or Blender",
        )
    frames = meta.get("frames")
    if not isinstance(frames, list) or not frames:
        raise CaptureError(
            path,
            "has no 'frames' list (or it is empty)",
            "add the frames, each with file_path and transform_matrix",
        )
    return meta


def is_nerfstudio(meta: dict) -> bool:
    """True for a nerfstudio transforms.json, False for instant-ngp's."""
    return any(k in meta for k in _NERFSTUDIO_KEYS)


def parse_pose(value) -> np.ndarray:
    """``transform_matrix`` (4x4 or 3x4 nested lists) -> [4, 4] float64; ValueError if malformed."""
    m = np.asarray(value, dtype=np.float64)
    if m.shape == (3, 4):
        m = np.vstack([m, [0.0, 0.0, 0.0, 1.0]])
    if m.shape != (4, 4):
        raise ValueError(f"transform_matrix has shape {m.shape}, expected 4x4")
    return m


def _number(value) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def frame_intrinsics(meta: dict, frame: dict) -> dict:
    """Intrinsics for one frame: the frame's own keys, else the file's.

    Returns the :class:`Frame` keyword arguments fx, fy, cx, cy, angle_x, angle_y, width,
    height and distortion (``[k1, k2, p1, p2, k3]``, None if all zero) plus the fisheye
    coefficients under ``fisheye_distortion`` (``[k1, k2, k3, k4]``).
    """

    def get(key):
        return _number(frame.get(key, meta.get(key)))

    w, h = get("w"), get("h")
    w = w if w is not None and math.isfinite(w) else None
    h = h if h is not None and math.isfinite(h) else None
    k = {name: get(name) or 0.0 for name in ("k1", "k2", "k3", "k4", "p1", "p2")}
    dist = np.array([k["k1"], k["k2"], k["p1"], k["p2"], k["k3"]])
    return {
        "fx": get("fl_x"),
        "fy": get("fl_y"),
        "cx": get("cx"),
        "cy": get("cy"),
        "angle_x": get("camera_angle_x"),
        "angle_y": get("camera_angle_y"),
        "width": None if w is None else int(round(w)),
        "height": None if h is None else int(round(h)),
        "distortion": dist if np.any(dist != 0) else None,
        "fisheye_distortion": np.array([k["k1"], k["k2"], k["k3"], k["k4"]]),
    }


def _norm(p: str) -> str:
    """A file path as a comparable key ("./images/a.png" == "images/a.png")."""
    s = str(p or "").replace("\\", "/")
    while s.startswith("./"):
        s = s[2:]
    return s


def parse_frames(
    meta: dict,
    base: Path,
    source: Path,
    problems: list[Problem],
    camera_model: str = "PINHOLE",
    split: str | None = None,
    start: int = 0,
) -> list[Frame]:
    """The ``frames`` of a transforms file as :class:`Frame` objects (images not opened).

    Frames without ``file_path`` or with a malformed ``transform_matrix`` are listed in
    ``problems`` and left out. A NaN/inf pose is kept here and dropped by the loader.
    """
    fisheye = camera_model == "OPENCV_FISHEYE" or bool(meta.get("is_fisheye", False))
    out: list[Frame] = []
    for j, fr in enumerate(meta["frames"]):
        if not isinstance(fr, dict) or not isinstance(fr.get("file_path"), str):
            problems.append(
                Problem(
                    f"{source} frame {j}", "frame has no file_path", "give every frame a file_path"
                )
            )
            continue
        try:
            c2w = parse_pose(fr.get("transform_matrix"))
        except (TypeError, ValueError) as e:
            problems.append(
                Problem(
                    f"{source} frame {j} ({fr['file_path']})",
                    f"bad transform_matrix ({e})",
                    "give the frame a 4x4 camera-to-world transform_matrix",
                )
            )
            continue
        intr = frame_intrinsics(meta, fr)
        fish = intr.pop("fisheye_distortion")
        if fisheye:
            intr["distortion"] = fish if np.any(fish != 0) else None
        try:
            image_path = resolve_image(base, fr["file_path"])
            mask_path = None
            if isinstance(fr.get("mask_path"), str):
                mask_path = safe_path(base, fr["mask_path"], "mask")
        except UnsafePathError as e:
            problems.append(Problem(f"{source} frame {j} ({e.path})", e.problem, e.fix))
            continue
        model = camera_model
        if camera_model == "PINHOLE" and intr["distortion"] is not None:
            model = "OPENCV"
        out.append(
            Frame(
                file_path=fr["file_path"],
                image_path=image_path,
                expected_path=base / fr["file_path"],
                c2w=c2w,
                fisheye=fisheye,
                mask_path=mask_path,
                split=split,
                index=start + len(out),
                camera_model=model,
                **intr,
            )
        )
    return out


def parse_aabb(meta: dict, source: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """An ``aabb`` key as (lo [3], hi [3]), None if absent; malformed raises CaptureError."""
    if "aabb" not in meta:
        return None
    try:
        box = np.asarray(meta["aabb"], np.float64).reshape(2, 3)
    except (TypeError, ValueError) as e:
        raise CaptureError(
            source,
            f"'aabb' is not two 3D points ({e})",
            'write it as "aabb": [[x0, y0, z0], [x1, y1, z1]]',
        ) from e
    lo, hi = np.minimum(box[0], box[1]), np.maximum(box[0], box[1])
    if not np.all(np.isfinite(box)) or np.any(hi <= lo):
        raise CaptureError(
            source,
            "'aabb' is empty or not finite",
            "give a box with lo < hi on every axis, or remove the key",
        )
    return lo, hi


def read_transforms(path: Path) -> Capture:
    """Parse an instant-ngp or nerfstudio ``transforms.json`` (``path``: the file)."""
    meta = load_json(path)
    base = path.parent
    problems: list[Problem] = []
    nerfstudio = is_nerfstudio(meta)
    camera_model = str(meta.get("camera_model", "PINHOLE")).upper()
    if camera_model not in SUPPORTED_CAMERA_MODELS:
        raise CaptureError(
            path,
            f"camera_model {camera_model!r} is not supported",
            f"use one of {', '.join(SUPPORTED_CAMERA_MODELS)} (undistort or re-run "
            "ns-process-data with --camera-type perspective)",
        )
    if nerfstudio:
        meta = dict(meta)
        meta["frames"] = sorted(
            meta["frames"],
            key=lambda f: str(f.get("file_path", "")) if isinstance(f, dict) else "",
        )
    frames = parse_frames(meta, base, path, problems, camera_model)
    has_split = False
    if nerfstudio and any(f"{s}_filenames" in meta for s in ("train", "val", "test")):
        has_split = True
        lookup: dict[str, str] = {}
        for s in ("test", "val", "train"):  # train wins if a file is listed twice
            names = meta.get(f"{s}_filenames") or []
            if not isinstance(names, list):
                raise CaptureError(
                    path,
                    f"'{s}_filenames' is a {type(names).__name__}, not a list of file names",
                    f'write it as "{s}_filenames": ["images/frame_00001.png", ...] or remove it',
                )
            for name in names:
                lookup[_norm(name)] = s
        default = None if "train_filenames" in meta else "train"
        for fr in frames:
            fr.split = lookup.get(_norm(fr.file_path), default)
    points = colors = None
    if nerfstudio and isinstance(meta.get("ply_file_path"), str):
        try:
            points, colors = _read_ply_points(
                safe_path(base, meta["ply_file_path"], "point cloud"), problems
            )
        except UnsafePathError as e:
            problems.append(Problem(e.path, e.problem, e.fix))
    return Capture(
        root=base,
        format="nerfstudio" if nerfstudio else "instant-ngp",
        source=path,
        frames=frames,
        problems=problems,
        bounds=parse_aabb(meta, path),
        points=points,
        point_colors=colors,
        has_split=has_split,
    )


def _read_ply_points(path: Path, problems: list[Problem]):
    """nerfstudio's ``ply_file_path`` sparse points -> ([P, 3], [P, 3] uint8) or (None, None)."""
    if not path.is_file():
        problems.append(
            Problem(
                str(path),
                "ply_file_path points to a missing file",
                "restore it or remove ply_file_path",
            )
        )
        return None, None
    try:
        import trimesh

        cloud = trimesh.load(path, process=False)
        pts = np.asarray(cloud.vertices, np.float64)
        colors = getattr(getattr(cloud, "visual", None), "vertex_colors", None)
        colors = None if colors is None or len(colors) != len(pts) else np.asarray(colors)[:, :3]
    except Exception as e:  # a bad point cloud never blocks the capture
        problems.append(
            Problem(
                str(path),
                f"sparse points unreadable ({e})",
                "re-export the point cloud or remove ply_file_path",
            )
        )
        return None, None
    if colors is None:
        colors = np.full((len(pts), 3), 255, np.uint8)
    return pts, colors.astype(np.uint8)
