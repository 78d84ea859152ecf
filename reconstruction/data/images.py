"""Shared image reading for every capture format.

A format module (``blender``, ``transforms``, ``idr``, ``colmap``) only parses its camera
files into a :class:`Capture`: a list of :class:`Frame` (which file, which pose, which
intrinsics, which distortion, which mask) plus whatever else the format knows (bounds,
sparse points, split). :func:`load_frames` then does the part all formats share:

- find each image (``./train/r_0`` -> ``./train/r_0.png``, ``.jpg``, ...),
- read it with OpenCV (8- or 16-bit, gray, RGB or RGBA; Pillow as a fallback decoder) and
  apply its EXIF orientation,
- skip, and list as a :class:`~reconstruction.data.scene.Problem`, every image that is
  missing, unreadable (truncated, corrupt, empty, not an image), named outside the capture
  folder (:func:`~reconstruction.data.paths.safe_path`), listed twice in one split, whose
  camera has unusable intrinsics, or whose size differs from its camera's or from the
  other images',
- refuse, before decoding any pixel, a capture that needs more memory than is available
  (:func:`~reconstruction.data.memory.check_memory`: the GiB and a ``--downscale`` that fits),
- composite alpha on the background colour (alpha kept as the mask),
- downscale with ``cv2.INTER_AREA`` (cameras scaled with :meth:`Cameras.scaled`),
- remove lens distortion (OpenCV / fisheye model, the same K before and after),
- stack everything into one ``uint8`` array ``[N, H, W, 3]``.

Import order matters: this module imports Pillow and OpenCV at import time so that they are
loaded before pycolmap anywhere in the engine (pycolmap 4.2.1 loaded first corrupts the
heap on the next Pillow PNG save; see ``reconstruction/data/colmap.py``).
"""

from __future__ import annotations

import io
import math
import os
import threading
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import PIL.Image

from reconstruction.data.memory import check_memory
from reconstruction.data.paths import safe_path
from reconstruction.data.scene import Cameras, Problem

# Tried in this order when a frame's file_path has no extension (NeRF-synthetic "./train/r_0").
IMAGE_EXTENSIONS = (
    ".png",
    ".jpg",
    ".jpeg",
    ".PNG",
    ".JPG",
    ".JPEG",
    ".webp",
    ".tif",
    ".tiff",
    ".bmp",
)
_EXIF_ORIENTATION = 0x0112

# OpenCV's own log lines ("[ERROR:0@0.08] global grfmt_png.cpp:297 readHeader ...") would
# come on top of the one clear message per bad file; OPENCV_LOG_LEVEL still wins if set.
if "OPENCV_LOG_LEVEL" not in os.environ:
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


class ImageReadError(ValueError):
    """An image file that exists but cannot be decoded."""


# --------------------------------------------------------------------------- frames


@dataclass
class Frame:
    """One image of a capture as its camera file describes it (full resolution).

    Intrinsics left ``None`` are filled in by :func:`load_frames` once the image size is
    known: ``fx`` from ``angle_x`` (``fx = 0.5 * W / tan(angle_x / 2)``), ``fy`` from
    ``angle_y`` or else ``fx``, ``cx = W / 2``, ``cy = H / 2``.
    """

    file_path: str  # as written in the capture ("./train/r_0", "images/0001.jpg")
    image_path: Path | None  # the file found on disk, None if missing
    c2w: np.ndarray  # [4, 4] camera-to-world, OpenGL convention (-Z forward, +Y up)
    fx: float | None = None  # focal length in pixels
    fy: float | None = None
    cx: float | None = None  # principal point in pixels, pixel centres at +0.5
    cy: float | None = None
    angle_x: float | None = None  # horizontal field of view in radians (NeRF-synthetic)
    angle_y: float | None = None
    width: int | None = None  # image size the camera file states, if any
    height: int | None = None
    distortion: np.ndarray | None = None  # [K] OpenCV (k1, k2, p1, p2[, k3]) or fisheye (k1..k4)
    fisheye: bool = False  # True: `distortion` is cv2.fisheye's (k1, k2, k3, k4)
    mask_path: Path | None = None  # mask image (255 = object), if the capture has one
    mask_threshold: int | None = None  # binarise the mask at `> threshold` (IDR: 127)
    split: str | None = None  # "train" / "val" / "test" if the capture says so
    index: int = 0  # position in the capture's order (used by the every-8th split rule)
    camera_model: str = "PINHOLE"  # as the capture names it (before undistortion)
    expected_path: Path | None = None  # where the image was looked for (for messages)


@dataclass
class Capture:
    """What a format module parsed, before any image is decoded."""

    root: Path  # the capture folder
    format: str  # "nerf-synthetic" | "instant-ngp" | "nerfstudio" | "idr" | "colmap"
    source: Path  # the file (or model folder) describing the cameras
    frames: list[Frame]
    problems: list[Problem] = field(default_factory=list)
    bounds: tuple[np.ndarray, np.ndarray] | None = None  # world box given by the capture
    points: np.ndarray | None = None  # [P, 3] sparse points, world
    point_colors: np.ndarray | None = None  # [P, 3] uint8
    has_split: bool = False  # frames carry their split (otherwise every 8th frame is test)


@dataclass
class LoadedFrames:
    """The decoded images of the frames that survived."""

    images: np.ndarray  # [N, H, W, 3] uint8
    masks: np.ndarray | None  # [N, H, W] uint8 (255 = object) or None
    cameras: Cameras  # N cameras at the loaded resolution
    frames: list[Frame]  # the N kept frames, in capture order
    alpha_composited: bool = False  # masks are the alpha the images were composited with


# --------------------------------------------------------------------------- single images


def resolve_image(base: Path, file_path: str) -> Path | None:
    """The file a frame's ``file_path`` names, trying known extensions; None if missing.

    ``file_path`` is relative to ``base``. "./train/r_0" finds "train/r_0.png" (then .jpg,
    .jpeg, ...); a path that already has its extension is used as is. A name that leaves
    ``base`` (absolute, ``..``, a symlink to outside, a symlink loop) raises
    :class:`~reconstruction.data.paths.UnsafePathError`.
    """
    p = safe_path(base, file_path, "image")
    if p.is_file():
        return p
    rel = Path(file_path)
    for ext in IMAGE_EXTENSIONS:
        q = p.with_name(p.name + ext)
        if q.is_file() or q.is_symlink():
            q = safe_path(base, rel.with_name(rel.name + ext), "image")
            if q.is_file():
                return q
    return None


def _exif_orientation(im: PIL.Image.Image) -> int:
    """EXIF orientation (1-8) from an opened, not yet decoded, Pillow image."""
    if im.format == "PNG" and "exif" not in im.info:
        return 1  # do not let getexif() decode the whole PNG looking for a late eXIf chunk
    try:
        value = int(im.getexif().get(_EXIF_ORIENTATION, 1) or 1)
    except Exception:
        return 1
    return value if 1 <= value <= 8 else 1


_BOMB_LOCK = threading.Lock()


def _unreadable(err: BaseException, path: Path) -> str:
    """'not a readable image (why)', without repeating the file name the message starts with."""
    if isinstance(err, PIL.UnidentifiedImageError):
        return "not a readable image (its bytes are not PNG, JPEG or another known image format)"
    why = str(err).replace(f"'{path}'", "").replace(str(path), "").strip(" :") or "damaged"
    return f"not a readable image ({type(err).__name__}: {why})"


def _open_header(path: Path) -> tuple[int, int, int]:
    with warnings.catch_warnings():  # a big image is judged by the memory check, not here
        warnings.simplefilter("ignore", PIL.Image.DecompressionBombWarning)
        with PIL.Image.open(path) as im:
            w, h = im.size
            return int(w), int(h), _exif_orientation(im)


def image_info(path: Path) -> tuple[int, int, int]:
    """(width, height, exif_orientation) from the file header, without decoding pixels.

    Width and height are the stored ones (before the orientation is applied). A huge image
    (beyond Pillow's decompression-bomb limit) is measured from its header all the same:
    whether it fits in memory is decided later, for the whole capture.
    Raises :class:`ImageReadError` if the file is not an image.
    """
    try:
        return _open_header(path)
    except PIL.Image.DecompressionBombError:
        with _BOMB_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore", PIL.Image.DecompressionBombWarning)
            limit, PIL.Image.MAX_IMAGE_PIXELS = PIL.Image.MAX_IMAGE_PIXELS, None
            try:
                return _open_header(path)
            except (OSError, ValueError, SyntaxError) as e:
                raise ImageReadError(_unreadable(e, path)) from e
            finally:
                PIL.Image.MAX_IMAGE_PIXELS = limit
    except OSError as e:
        if isinstance(e, PermissionError) or (not isinstance(e, PIL.UnidentifiedImageError)
                                              and e.errno is not None):
            raise ImageReadError(f"cannot be read ({e.strerror or e})") from e
        return _info_opencv(path, e)
    except (ValueError, SyntaxError) as e:
        return _info_opencv(path, e)


def _info_opencv(path: Path, err: Exception) -> tuple[int, int, int]:
    """Size of a file Pillow cannot parse, from OpenCV (rare formats); its header first."""
    try:
        empty = path.stat().st_size == 0
    except OSError as e:
        raise ImageReadError(f"cannot be read ({e.strerror or e})") from e
    if empty:
        raise ImageReadError("the file is empty (0 bytes)") from err
    # cv2.imread would decode the pixels of anything: refuse what OpenCV cannot even
    # recognise before that, so a non-image never gets decoded in full.
    if not cv2.haveImageReader(str(path)):
        raise ImageReadError(_unreadable(err, path)) from err
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ImageReadError(_unreadable(err, path)) from err
    return int(img.shape[1]), int(img.shape[0]), 1


def oriented_size(width: int, height: int, orientation: int) -> tuple[int, int]:
    """Image size after applying an EXIF orientation (5-8 swap width and height)."""
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def apply_orientation(img: np.ndarray, orientation: int) -> np.ndarray:
    """img: [H, W, ...] as stored -> as displayed for EXIF orientation 1-8 (as Pillow)."""
    if orientation == 2:
        img = img[:, ::-1]
    elif orientation == 3:
        img = img[::-1, ::-1]
    elif orientation == 4:
        img = img[::-1]
    elif orientation == 5:
        img = img.swapaxes(0, 1)
    elif orientation == 6:
        img = np.rot90(img, -1)
    elif orientation == 7:
        img = img[::-1, ::-1].swapaxes(0, 1)
    elif orientation == 8:
        img = np.rot90(img, 1)
    return np.ascontiguousarray(img)


def _to_uint8(img: np.ndarray) -> np.ndarray:
    """img: [H, W, C] of any depth -> uint8 (16-bit rounded, float clipped to [0, 1])."""
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        return ((img.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if np.issubdtype(img.dtype, np.floating):
        return (np.clip(np.nan_to_num(img), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    top = 65535.0 if img.max(initial=0) > 255 else 255.0
    return (np.clip(img.astype(np.float64) / top, 0, 1) * 255.0 + 0.5).astype(np.uint8)


def _truncated_jpeg(raw: np.ndarray) -> bool:
    """True for JPEG bytes without an end-of-image marker near their end (a cut-off file)."""
    if raw.size < 4 or raw[0] != 0xFF or raw[1] != 0xD8:
        return False
    tail = raw[-4096:].tobytes()
    return b"\xff\xd9" not in tail


def _decode(path: Path) -> np.ndarray:
    """Decode to RGB(A) channel order: [H, W, 1|2|3|4], any depth, stored orientation."""
    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise ImageReadError(f"cannot be read ({e.strerror or e})") from e
    if raw.size == 0:
        raise ImageReadError("the file is empty")
    img = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED)
    if img is not None and _truncated_jpeg(raw):
        img = None  # OpenCV fills the missing part with grey; let Pillow decide
    if img is not None:
        if img.ndim == 2:
            return img[:, :, None]
        if img.shape[2] == 3:
            return img[:, :, ::-1]
        if img.shape[2] == 4:
            return img[:, :, [2, 1, 0, 3]]
        return img
    try:  # formats or variants OpenCV does not decode
        with PIL.Image.open(io.BytesIO(raw.tobytes())) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                arr = np.asarray(im)
                arr = arr.astype(np.uint16) if im.mode.startswith("I;16") else arr
            elif im.mode in ("RGBA", "LA", "PA", "RGBa") or "transparency" in im.info:
                arr = np.asarray(im.convert("RGBA"))
            else:
                arr = np.asarray(im.convert("RGB"))
    except Exception as e:
        raise ImageReadError(_unreadable(e, path)) from e
    if arr.dtype == np.int32:  # Pillow "I" mode from 16-bit files
        arr = np.clip(arr, 0, 65535).astype(np.uint16)
    return arr[:, :, None] if arr.ndim == 2 else arr


def read_image(path: str | Path, orientation: int | None = None) -> np.ndarray:
    """Read an image as uint8 RGB or RGBA: returns [H, W, 3] or [H, W, 4].

    8- and 16-bit files, gray, gray+alpha, RGB and RGBA are accepted. ``orientation`` is
    the EXIF orientation to apply (None: read it from the file; 1: keep pixels as stored).
    Raises :class:`ImageReadError` for a corrupt or non-image file.
    """
    path = Path(path)
    if orientation is None:
        orientation = image_info(path)[2]
    img = _to_uint8(_decode(path))
    c = img.shape[2]
    if c == 1:
        img = np.repeat(img, 3, axis=2)
    elif c == 2:
        img = np.concatenate([np.repeat(img[:, :, :1], 3, axis=2), img[:, :, 1:]], axis=2)
    elif c > 4:
        img = img[:, :, :4]
    return apply_orientation(img, orientation)


def read_mask(
    path: str | Path, threshold: int | None = None, orientation: int | None = None
) -> np.ndarray:
    """Read a mask image as [H, W] uint8 (255 = object).

    Colour masks use the brightest channel. ``threshold``: values ``> threshold`` become
    255 and the rest 0 (IDR/DTU masks are 3-channel and not strictly binary: 127).
    """
    path = Path(path)
    if orientation is None:
        orientation = image_info(path)[2]
    img = _to_uint8(_decode(path))
    if img.shape[2] >= 3:  # cv2.max is much faster than ndarray.max(axis=2)
        gray = cv2.max(cv2.max(img[:, :, 0], img[:, :, 1]), img[:, :, 2])
    else:
        gray = np.ascontiguousarray(img[:, :, 0])
    if threshold is not None:
        gray = cv2.threshold(gray, threshold, 255, cv2.THRESH_BINARY)[1]
    return apply_orientation(gray, orientation)


def composite(rgba: np.ndarray, background: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """rgba: [H, W, 4] uint8 (straight alpha), background: [3] in [0, 1].

    Returns (rgb [H, W, 3] uint8 = rgb * a + background * (1 - a), alpha [H, W] uint8).
    """
    alpha = rgba[:, :, 3]
    a = alpha.astype(np.float32)[:, :, None] * (1.0 / 255.0)
    bg = np.asarray(background, np.float32).reshape(1, 1, 3) * 255.0
    rgb = rgba[:, :, :3].astype(np.float32) * a + bg * (1.0 - a)
    return (rgb + 0.5).astype(np.uint8), np.ascontiguousarray(alpha)


def resize_area(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """img: [H, W] or [H, W, C] -> resized to size=(width, height) with cv2.INTER_AREA."""
    if (img.shape[1], img.shape[0]) == tuple(size):
        return img
    return cv2.resize(img, tuple(int(s) for s in size), interpolation=cv2.INTER_AREA)


# --------------------------------------------------------------------------- undistortion

_MAPS: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
_MAPS_LOCK = threading.Lock()


def has_distortion(distortion: np.ndarray | None) -> bool:
    """True if the coefficients are present and not all zero."""
    return distortion is not None and bool(np.any(np.asarray(distortion) != 0))


def undistort_maps(
    fx: float,
    fy: float,
    cx: float,
    cy: float,
    size: tuple[int, int],
    distortion: np.ndarray,  # [K] OpenCV or fisheye coefficients
    fisheye: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """cv2.remap maps that undistort an image of ``size`` = (w, h) keeping the same K.

    ``cx, cy`` use the +0.5 pixel-centre convention of :class:`Cameras`; OpenCV puts pixel
    centres at integers, so K is shifted by half a pixel for OpenCV. Maps are cached.
    """
    dist = np.asarray(distortion, np.float64).ravel()
    key = (fx, fy, cx, cy, tuple(size), tuple(dist.tolist()), fisheye)
    with _MAPS_LOCK:
        if key in _MAPS:
            return _MAPS[key]
    k = np.array([[fx, 0.0, cx - 0.5], [0.0, fy, cy - 0.5], [0.0, 0.0, 1.0]])
    if fisheye:
        d = np.zeros(4)
        d[: min(4, dist.size)] = dist[:4]
        m1, m2 = cv2.fisheye.initUndistortRectifyMap(k, d, np.eye(3), k, tuple(size), cv2.CV_32FC1)
    else:
        m1, m2 = cv2.initUndistortRectifyMap(k, dist, None, k, tuple(size), cv2.CV_32FC1)
    with _MAPS_LOCK:
        if len(_MAPS) > 64:
            _MAPS.clear()
        _MAPS[key] = (m1, m2)
    return m1, m2


def _remap(img: np.ndarray, maps: tuple[np.ndarray, np.ndarray], border) -> np.ndarray:
    """img: [H, W] or [H, W, C] -> undistorted, bilinear; `border` fills outside pixels."""
    return cv2.remap(
        img,
        maps[0],
        maps[1],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=border,
    )


# --------------------------------------------------------------------------- many frames


@dataclass
class _Plan:
    frame: Frame
    orientation: int


def _bad_intrinsics(intr: tuple[float | None, ...], width: int, height: int) -> str:
    """Why fx, fy, cx, cy cannot make a pinhole camera ('' if they can)."""
    fx, fy, cx, cy = intr
    if fx is None:
        return "no focal length (give fl_x, or camera_angle_x)"
    for name, v in (("fx", fx), ("fy", fy), ("cx", cx), ("cy", cy)):
        if not math.isfinite(v):
            return f"{name} is {v} (singular intrinsic matrix)"
    for name, v in (("fx", fx), ("fy", fy), ("cx", cx), ("cy", cy)):
        if abs(v) > 1e9:
            return f"{name}={v:g} is far beyond any image"
    if fx <= 0 or fy <= 0:
        return f"focal length fx={fx:g}, fy={fy:g} is not positive (singular intrinsic matrix)"
    if max(width, height) / min(fx, fy) > 1e4:
        return f"focal length fx={fx:g}, fy={fy:g} is near zero (singular intrinsic matrix)"
    return ""


def _focal_from_angle(size: int, angle: float) -> float:
    """Focal length in pixels from a field of view in radians (inf/nan when degenerate)."""
    angle = float(angle)
    if not math.isfinite(angle):
        return math.nan
    t = math.tan(0.5 * angle)
    return 0.5 * size / t if t != 0 else math.inf


def _resolve_intrinsics(frame: Frame, width: int, height: int) -> tuple[float | None, ...]:
    fx = frame.fx
    if fx is None and frame.angle_x is not None:
        fx = _focal_from_angle(width, frame.angle_x)
    fy = frame.fy
    if fy is None and frame.angle_y is not None:
        fy = _focal_from_angle(height, frame.angle_y)
    if fx is None:
        fx = fy
    if fy is None:
        fy = fx
    cx = width / 2.0 if frame.cx is None else frame.cx
    cy = height / 2.0 if frame.cy is None else frame.cy
    if fx is None:
        return None, None, float(cx), float(cy)
    return float(fx), float(fy), float(cx), float(cy)


def _workers(pixels: int = 0) -> int:
    """Images decoded at once: up to 4, one at a time for huge images (> 64 megapixels)."""
    if pixels > 2**26:
        return 1
    return max(1, min(4, os.cpu_count() or 1))


def load_frames(
    frames: list[Frame],
    downscale: int,
    background: np.ndarray,  # [3] in [0, 1]
    problems: list[Problem],
    source: Path | str | None = None,
) -> LoadedFrames | None:
    """Decode, check, composite, downscale and undistort the frames' images.

    Frames that cannot be used are left out and appended to ``problems``; returns None if
    none remains. All kept images have one size: the size their cameras state, and among
    the rest the most common one. The order of the frames is kept. A frame naming the same
    image file as an earlier frame of its split is a duplicate and left out; a frame whose
    intrinsics are not usable (zero, negative or non-finite focal length or principal
    point: a singular K) is left out.

    Before any pixel is decoded, the memory the kept images need is compared with the
    memory available (:func:`reconstruction.data.memory.check_memory`): a capture that
    does not fit raises :class:`~reconstruction.data.scene.CaptureError` naming ``source``,
    both numbers and a ``--downscale`` that fits.
    """
    background = np.asarray(background, np.float32).reshape(3)

    # 1. headers only: existence, readability, size, orientation.
    plans: list[_Plan] = []
    sizes: list[tuple[int, int]] = []
    seen: dict[tuple[str | None, str], str] = {}
    for fr in frames:
        if fr.image_path is not None:
            try:
                key = (fr.split, os.path.realpath(fr.image_path))
            except (OSError, ValueError):
                key = (fr.split, str(fr.image_path))
            if key in seen:
                problems.append(
                    Problem(
                        str(fr.image_path),
                        f"duplicate: the same image file as {seen[key]}",
                        "list each image once (remove the repeated frame)",
                    )
                )
                continue
            seen[key] = str(fr.file_path)
        if fr.image_path is None:
            tried = ", ".join(IMAGE_EXTENSIONS[:3])
            problems.append(
                Problem(
                    str(fr.expected_path or fr.file_path),
                    f"image file not found (also tried {tried}, ...)",
                    "restore the file or remove its frame from the capture",
                )
            )
            continue
        try:
            w, h, orientation = image_info(fr.image_path)
        except ImageReadError as e:
            problems.append(Problem(str(fr.image_path), str(e), "replace or remove the file"))
            continue
        size = oriented_size(w, h, orientation)
        if fr.width is not None and fr.height is not None:
            expected = (int(fr.width), int(fr.height))
            if size != expected and (w, h) == expected:
                orientation, size = 1, (w, h)  # camera calibrated on the stored pixels
            if size != expected:
                problems.append(
                    Problem(
                        str(fr.image_path),
                        f"image is {size[0]}x{size[1]} but its camera says {expected[0]}x{expected[1]}",
                        "restore the original image or fix w/h in the camera file",
                    )
                )
                continue
        plans.append(_Plan(fr, orientation))
        sizes.append(size)
    if not plans:
        return None

    # 2. one size for all.
    ref = Counter(sizes).most_common(1)[0][0]
    kept: list[_Plan] = []
    for plan, size in zip(plans, sizes, strict=True):
        if size != ref:
            problems.append(
                Problem(
                    str(plan.frame.image_path),
                    f"image is {size[0]}x{size[1]}, the other images are {ref[0]}x{ref[1]}",
                    "resize it to match the others or remove it",
                )
            )
        else:
            kept.append(plan)
    width, height = ref

    # 3. cameras at full resolution, then at the loaded one.
    good: list[_Plan] = []
    rows: list[tuple[float, ...]] = []
    for plan in kept:
        intr_i = _resolve_intrinsics(plan.frame, width, height)
        bad = _bad_intrinsics(intr_i, width, height)
        if bad:
            problems.append(
                Problem(
                    str(plan.frame.image_path),
                    f"unusable intrinsics: {bad}",
                    "fix the focal length (fl_x/fl_y or camera_angle_x) and principal point "
                    "(cx/cy) in the camera file",
                )
            )
            continue
        good.append(plan)
        rows.append(intr_i)
    kept = good
    if not kept:
        return None
    check_memory(source or kept[0].frame.image_path.parent, len(kept), width, height, downscale)
    intr = np.array(rows, np.float64)
    full = Cameras(
        np.stack([np.asarray(p.frame.c2w, np.float64) for p in kept]),
        intr[:, 0],
        intr[:, 1],
        intr[:, 2],
        intr[:, 3],
        width,
        height,
    )
    cams = full if downscale == 1 else full.scaled(1.0 / downscale)
    size = (cams.width, cams.height)
    want_masks = any(p.frame.mask_path is not None for p in kept)

    # 4. decode in parallel (OpenCV releases the GIL).
    def job(i: int):
        plan = kept[i]
        fr = plan.frame
        try:
            img = read_image(fr.image_path, plan.orientation)
        except ImageReadError as e:
            return Problem(str(fr.image_path), str(e), "replace or remove the file")
        if (img.shape[1], img.shape[0]) != (width, height):
            return Problem(str(fr.image_path), "image size changed while loading", "reload")
        alpha = None
        if img.shape[2] == 4:
            img, alpha = composite(img, background)
        mask = None
        if want_masks:
            if fr.mask_path is None or not fr.mask_path.is_file():
                return Problem(
                    str(fr.mask_path or fr.image_path),
                    "mask file not found",
                    "add the mask (the other frames have one) or remove the frame",
                )
            try:
                mask = read_mask(fr.mask_path, fr.mask_threshold)
            except ImageReadError as e:
                return Problem(str(fr.mask_path), f"mask {e}", "replace or remove the mask")
            if (mask.shape[1], mask.shape[0]) != (width, height):
                return Problem(
                    str(fr.mask_path),
                    f"mask is {mask.shape[1]}x{mask.shape[0]}, its image is {width}x{height}",
                    "use a mask of the image's size",
                )
        img = resize_area(img, size)
        alpha = None if alpha is None else resize_area(alpha, size)
        mask = None if mask is None else resize_area(mask, size)
        if has_distortion(fr.distortion):
            maps = undistort_maps(
                float(cams.fx[i]),
                float(cams.fy[i]),
                float(cams.cx[i]),
                float(cams.cy[i]),
                size,
                fr.distortion,
                fr.fisheye,
            )
            bg = tuple(float(v) * 255.0 for v in background)
            img = _remap(img, maps, bg)
            alpha = None if alpha is None else _remap(alpha, maps, 0)
            mask = None if mask is None else _remap(mask, maps, 0)
        return img, alpha, mask

    n = len(kept)
    images = np.empty((n, size[1], size[0], 3), np.uint8)
    masks: np.ndarray | None = None
    ok = np.zeros(n, bool)
    with ThreadPoolExecutor(max_workers=_workers(width * height)) as pool:
        for i, result in enumerate(pool.map(job, range(n))):
            if isinstance(result, Problem):
                problems.append(result)
                continue
            img, alpha, mask = result
            images[i] = img
            if mask is None:
                mask = alpha
            if mask is not None and masks is None:
                masks = np.full((n, size[1], size[0]), 255, np.uint8)
            if mask is not None:
                masks[i] = mask
            ok[i] = True
    if not ok.any():
        return None
    if not ok.all():
        idx = np.flatnonzero(ok)
        images = images[idx]
        masks = None if masks is None else masks[idx]
        cams = cams.subset(idx)
        kept = [kept[i] for i in idx]
    alpha_composited = masks is not None and not want_masks
    return LoadedFrames(images, masks, cams, [p.frame for p in kept], alpha_composited)
