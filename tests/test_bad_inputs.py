"""A corpus of bad inputs, each run through the real `recon` command.

Every case builds its own files under ``tmp_path / "in"`` (tiny captures, broken images,
crafted checkpoints, a result folder whose disk fills up during export) and runs
``recon info`` / ``fit`` / ``render`` / ``export`` on them in-process. Each must end with
exit code 2 and one ``recon: error:`` line naming the file and the reason, or (when the
rest of the capture can go on) exit code 0 with the bad file listed as skipped; never a
traceback; and the bytes, modes and mtimes of everything under ``in/`` are the same
afterwards.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import math
import os
import pickle
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reconstruction.cli import main

SIZE = 16  # px, square unless a case says otherwise
FIT = ["--steps", "2", "--set", "mesh_resolution=24", "--quiet"]


# ------------------------------------------------------------------ building blocks


def ring_pose(i: int, n: int, dist: float = 4.0) -> np.ndarray:
    """[4, 4] OpenGL camera-to-world on a ring around the origin, looking at it."""
    az, el = 2 * math.pi * i / n, math.radians(30 if i % 2 else 45)
    eye = dist * np.array([math.cos(az) * math.cos(el), math.sin(az) * math.cos(el), math.sin(el)])
    f = -eye / np.linalg.norm(eye)
    right = np.cross(f, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, np.cross(right, f), -f, eye
    return m


def picture(i: int, w: int = SIZE, h: int = SIZE, channels: int = 3) -> np.ndarray:
    rng = np.random.default_rng(i)
    return rng.integers(0, 256, (h, w, channels), dtype=np.uint8)


def save(path: Path, img: np.ndarray | Image.Image, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = img if isinstance(img, Image.Image) else Image.fromarray(img)
    im.save(path, **kw)
    return path


def capture(root: Path, n: int = 5, ext: str = ".png", w: int = SIZE, h: int = SIZE,
            ngp: bool = False, meta: dict | None = None, frames: list | None = None) -> Path:
    """A tiny capture: NeRF-synthetic (transforms_train.json) or instant-ngp (transforms.json).

    Images are ``train/r_<i><ext>`` of random pixels; ``meta`` keys are merged into the
    file; ``frames`` replaces the frame list.
    """
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        save(root / "train" / f"r_{i}{ext}", picture(i, w, h))
        out.append({"file_path": f"./train/r_{i}" + (ext if ngp else ""),
                    "transform_matrix": ring_pose(i, n).tolist()})
    if ngp:
        fx = 0.5 * w / math.tan(0.35)
        body = {"fl_x": fx, "fl_y": fx, "cx": w / 2, "cy": h / 2, "w": w, "h": h}
        name = "transforms.json"
    else:
        body = {"camera_angle_x": 0.7}
        name = "transforms_train.json"
    body["frames"] = out if frames is None else frames
    body.update(meta or {})
    (root / name).write_text(json.dumps(body, indent=1))
    return root


def info(root: Path) -> list[str]:
    return ["info", str(root), "--json"]


def fit(root: Path, out: Path) -> list[str]:
    return ["fit", str(root), "--out", str(out), *FIT]


def huge_png(width: int, height: int) -> bytes:
    """A valid 1-bit grey PNG of width x height, all black (a few tens of KB)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def jpeg_bytes(img: np.ndarray | Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    (img if isinstance(img, Image.Image) else Image.fromarray(img)).save(buf, "JPEG", **kw)
    return buf.getvalue()


def colmap_text(root: Path, names: list[str], write_images: bool = True) -> Path:
    """A COLMAP text model (one PINHOLE camera) naming ``names``; images/ written or not."""
    model = root / "sparse" / "0"
    model.mkdir(parents=True)
    f = 0.5 * SIZE / math.tan(0.35)
    (model / "cameras.txt").write_text(f"1 PINHOLE {SIZE} {SIZE} {f} {f} {SIZE / 2} {SIZE / 2}\n")
    lines = []
    for i, name in enumerate(names):
        w2c = np.linalg.inv(ring_pose(i, len(names)) @ np.diag([1.0, -1, -1, 1]))
        from scipy.spatial.transform import Rotation

        qx, qy, qz, qw = Rotation.from_matrix(w2c[:3, :3]).as_quat()
        t = w2c[:3, 3]
        lines += [f"{i + 1} {qw} {qx} {qy} {qz} {t[0]} {t[1]} {t[2]} 1 {name}", ""]
    (model / "images.txt").write_text("\n".join(lines) + "\n")
    (model / "points3D.txt").write_text("")
    (root / "images").mkdir(exist_ok=True)
    if write_images:
        for i, name in enumerate(names):
            save(root / "images" / name, picture(i))
    return root


class Evil:
    """Unpickling this runs a shell command: what a crafted checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def result_with_mesh(root: Path) -> Path:
    import trimesh

    root.mkdir(parents=True)
    trimesh.creation.box().export(root / "mesh.ply")
    return root


# ------------------------------------------------------------------ the corpus


@dataclass
class Case:
    argv: list[str]
    code: int = 2  # 2: refused; 0: went on without the bad file
    says: tuple[str, ...] = ()  # in the error line (code 2) or in the listed problems (code 0)
    images: int | None = None  # images loaded (info --json, code 0)
    patch: Callable[[pytest.MonkeyPatch], None] | None = None
    check: Callable[[], None] | None = None  # anything else to assert afterwards


CASES: dict[str, Callable[[Path], Case]] = {}


def case(fn: Callable[[Path], Case]) -> Callable[[Path], Case]:
    CASES[fn.__name__] = fn
    return fn


# -- images --------------------------------------------------------------------------------


@case
def png_truncated(d: Path) -> Case:
    root = capture(d / "cap")
    p = root / "train" / "r_1.png"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    return Case(info(root), 0, ("r_1.png",), images=4)


@case
def jpeg_truncated(d: Path) -> Case:
    root = capture(d / "cap", ext=".jpg", w=64, h=48)
    p = root / "train" / "r_1.jpg"
    p.write_bytes(p.read_bytes()[: p.stat().st_size * 2 // 3])
    return Case(info(root), 0, ("r_1.jpg",), images=4)


@case
def png_corrupt(d: Path) -> Case:
    root = capture(d / "cap")
    p = root / "train" / "r_1.png"
    raw = bytearray(p.read_bytes())
    raw[16:] = np.random.default_rng(0).integers(0, 256, len(raw) - 16, dtype=np.uint8).tobytes()
    p.write_bytes(bytes(raw))
    return Case(info(root), 0, ("r_1.png", "not a readable image"), images=4)


@case
def jpeg_corrupt_header(d: Path) -> Case:
    root = capture(d / "cap", ext=".jpg")
    p = root / "train" / "r_2.jpg"
    p.write_bytes(b"\xff\xd8" + np.random.default_rng(1).integers(0, 256, 600, dtype=np.uint8).tobytes())
    return Case(info(root), 0, ("r_2.jpg", "not a readable image"), images=4)


@case
def zero_byte_image(d: Path) -> Case:
    root = capture(d / "cap")
    (root / "train" / "r_3.png").write_bytes(b"")
    return Case(info(root), 0, ("r_3.png", "empty"), images=4)


@case
def text_named_png(d: Path) -> Case:
    root = capture(d / "cap")
    (root / "train" / "r_1.png").write_text("these are my notes, not a picture\n")
    return Case(info(root), 0, ("r_1.png", "not a readable image"), images=4)


@case
def html_named_jpg(d: Path) -> Case:
    root = capture(d / "cap", ext=".jpg")
    (root / "train" / "r_0.jpg").write_text("<html><body>404 Not Found</body></html>")
    return Case(info(root), 0, ("r_0.jpg", "not a readable image"), images=4)


@case
def every_image_broken(d: Path) -> Case:
    root = capture(d / "cap", n=3)
    for i in range(3):
        (root / "train" / f"r_{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    return Case(info(root), 2, ("transforms_train.json", "no usable image", "r_0.png"))


@case
def sixteen_bit_png(d: Path) -> Case:
    root = capture(d / "cap")
    for i in range(5):
        a = (picture(i)[..., 0].astype(np.uint16) * 257)
        Image.fromarray(a).save(root / "train" / f"r_{i}.png")
    with Image.open(root / "train" / "r_0.png") as im:
        assert im.mode.startswith("I")
    return Case(info(root), 0, (), images=5)


@case
def grayscale_png(d: Path) -> Case:
    root = capture(d / "cap")
    for i in range(5):
        save(root / "train" / f"r_{i}.png", picture(i)[..., 0])
    return Case(info(root), 0, (), images=5)


@case
def cmyk_jpeg(d: Path) -> Case:
    root = capture(d / "cap", ext=".jpg")
    for i in range(5):
        (root / "train" / f"r_{i}.jpg").write_bytes(
            jpeg_bytes(Image.fromarray(picture(i)).convert("CMYK")))
    with Image.open(root / "train" / "r_0.jpg") as im:
        assert im.mode == "CMYK"
    return Case(info(root), 0, (), images=5)


@case
def exif_rotated_jpeg(d: Path) -> Case:
    root = capture(d / "cap", ext=".jpg", w=24, h=16)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 16x24, shown rotated to 24x16 like the others
    stored = np.ascontiguousarray(np.rot90(picture(1, 24, 16), 1))
    (root / "train" / "r_1.jpg").write_bytes(jpeg_bytes(stored, exif=exif))
    return Case(info(root), 0, (), images=5)


@case
def image_20000_square_among_small(d: Path) -> Case:
    root = capture(d / "cap")
    (root / "train" / "r_2.png").write_bytes(huge_png(20000, 20000))
    t0 = time.perf_counter()

    def quick():  # the 400-megapixel image was measured from its header, never decoded
        assert time.perf_counter() - t0 < 60

    return Case(info(root), 0, ("r_2.png", "20000x20000"), images=4, check=quick)


@case
def capture_too_big_for_memory(d: Path) -> Case:
    root = capture(d / "cap", n=2)
    data = huge_png(20000, 20000)
    frames = []
    for i in range(64):  # 64 x 400 megapixels: far beyond any test machine's memory
        (root / "train" / f"big_{i}.png").write_bytes(data)
        frames.append({"file_path": f"./train/big_{i}", "transform_matrix": ring_pose(i, 64).tolist()})
    capture(root, n=0, frames=frames)
    return Case(fit(root, d.parent / "out"), 2, ("GiB", "--downscale", "20000x20000"))


@case
def memory_refused_with_downscale(d: Path) -> Case:
    root = capture(d / "cap", w=64, h=64)

    def little_memory(mp: pytest.MonkeyPatch) -> None:
        import reconstruction.data.memory as memory

        mp.setattr(memory, "available_memory", lambda: 300_000)

    return Case(info(root), 2, ("needs about", "GiB", "--downscale 2"), patch=little_memory)


@case
def mixed_sizes(d: Path) -> Case:
    root = capture(d / "cap")
    save(root / "train" / "r_2.png", picture(2, 32, 20))
    return Case(info(root), 0, ("r_2.png", "32x20", "16x16"), images=4)


@case
def one_image_only(d: Path) -> Case:
    root = capture(d / "cap", n=1)
    return Case(fit(root, d.parent / "out"), 0)


@case
def two_images_only(d: Path) -> Case:
    root = capture(d / "cap", n=2)
    return Case(fit(root, d.parent / "out"), 0)


@case
def duplicate_frames(d: Path) -> Case:
    root = capture(d / "cap", n=4)
    meta = json.loads((root / "transforms_train.json").read_text())
    meta["frames"].append(dict(meta["frames"][1], transform_matrix=ring_pose(7, 8).tolist()))
    (root / "transforms_train.json").write_text(json.dumps(meta))
    return Case(info(root), 0, ("r_1.png", "duplicate"), images=4)


@case
def unreadable_image(d: Path) -> Case:
    root = capture(d / "cap")
    locked = root / "train" / "r_1.png"
    os.chmod(locked, 0)

    def as_root(mp: pytest.MonkeyPatch) -> None:
        if os.geteuid() != 0:
            return  # chmod 0 is enough
        import PIL.Image

        real_open, real_fromfile = PIL.Image.open, np.fromfile

        def deny(path):
            if Path(os.fspath(path)) == locked:
                raise PermissionError(errno.EACCES, "Permission denied", str(path))

        def fake_open(fp, *a, **k):
            if isinstance(fp, (str, os.PathLike)):
                deny(fp)
            return real_open(fp, *a, **k)

        def fake_fromfile(fp, *a, **k):
            if isinstance(fp, (str, os.PathLike)):
                deny(fp)
            return real_fromfile(fp, *a, **k)

        mp.setattr(PIL.Image, "open", fake_open)
        mp.setattr(np, "fromfile", fake_fromfile)

    return Case(info(root), 0, ("r_1.png", "Permission denied"), images=4, patch=as_root)


@case
def symlink_loop(d: Path) -> Case:
    root = capture(d / "cap")
    (root / "train" / "r_1.png").unlink()
    (root / "train" / "r_1.png").symlink_to("r_1b.png")
    (root / "train" / "r_1b.png").symlink_to("r_1.png")
    return Case(info(root), 0, ("r_1", "symlink loop"), images=4)


@case
def symlink_outside(d: Path) -> Case:
    root = capture(d / "cap")
    secret = save(d / "elsewhere" / "private.png", picture(9))
    (root / "train" / "r_1.png").unlink()
    (root / "train" / "r_1.png").symlink_to(secret)
    return Case(info(root), 0, ("r_1.png", "outside the capture folder"), images=4)


@case
def dotdot_path(d: Path) -> Case:
    root = capture(d / "cap", n=4)
    save(d / "private.png", picture(9))
    meta = json.loads((root / "transforms_train.json").read_text())
    meta["frames"].append({"file_path": "../private", "transform_matrix": ring_pose(4, 5).tolist()})
    (root / "transforms_train.json").write_text(json.dumps(meta))
    return Case(info(root), 0, ("../private", "outside the capture folder"), images=4)


@case
def absolute_path(d: Path) -> Case:
    root = capture(d / "cap", n=4, ngp=True)
    meta = json.loads((root / "transforms.json").read_text())
    meta["frames"].append({"file_path": "/etc/passwd", "transform_matrix": ring_pose(4, 5).tolist()})
    (root / "transforms.json").write_text(json.dumps(meta))
    return Case(info(root), 0, ("/etc/passwd", "absolute"), images=4)


@case
def mask_path_outside(d: Path) -> Case:
    root = capture(d / "cap", n=4, ngp=True, meta={"camera_model": "PINHOLE"})
    meta = json.loads((root / "transforms.json").read_text())
    meta["frames"][2]["mask_path"] = "../../../../etc/shadow"
    (root / "transforms.json").write_text(json.dumps(meta))
    return Case(info(root), 0, ("etc/shadow", "outside the capture folder"), images=3)


@case
def nul_in_file_path(d: Path) -> Case:
    root = capture(d / "cap", n=4, ngp=True)
    meta = json.loads((root / "transforms.json").read_text())
    meta["frames"][0]["file_path"] = "train/r_0\x00.png"
    (root / "transforms.json").write_text(json.dumps(meta))
    return Case(info(root), 0, ("NUL",), images=3)


# -- poses and intrinsics --------------------------------------------------------------------


@case
def nan_pose(d: Path) -> Case:
    root = capture(d / "cap")
    meta = json.loads((root / "transforms_train.json").read_text())
    meta["frames"][1]["transform_matrix"][0][3] = float("nan")
    (root / "transforms_train.json").write_text(json.dumps(meta))
    return Case(info(root), 0, ("r_1", "NaN or infinite"), images=4)


@case
def infinite_pose(d: Path) -> Case:
    root = capture(d / "cap")
    meta = json.loads((root / "transforms_train.json").read_text())
    meta["frames"][3]["transform_matrix"][2][2] = float("inf")
    (root / "transforms_train.json").write_text(json.dumps(meta))
    return Case(info(root), 0, ("r_3", "NaN or infinite"), images=4)


@case
def every_pose_nan(d: Path) -> Case:
    root = capture(d / "cap", n=3)
    meta = json.loads((root / "transforms_train.json").read_text())
    for fr in meta["frames"]:
        fr["transform_matrix"] = [[float("nan")] * 4] * 4
    (root / "transforms_train.json").write_text(json.dumps(meta))
    return Case(fit(root, d.parent / "out"), 2, ("transforms_train.json", "NaN or infinite"))


@case
def singular_pose(d: Path) -> Case:
    root = capture(d / "cap")
    meta = json.loads((root / "transforms_train.json").read_text())
    meta["frames"][2]["transform_matrix"] = [[0, 0, 0, 1], [0, 0, 0, 2], [0, 0, 0, 3], [0, 0, 0, 1]]
    (root / "transforms_train.json").write_text(json.dumps(meta))
    return Case(info(root), 0, ("r_2", "degenerate"), images=4)


@case
def singular_intrinsics_zero_focal(d: Path) -> Case:
    root = capture(d / "cap", ngp=True, meta={"fl_x": 0.0, "fl_y": 0.0})
    return Case(info(root), 2, ("transforms.json", "singular intrinsic matrix"))


@case
def singular_intrinsics_zero_angle(d: Path) -> Case:
    root = capture(d / "cap", meta={"camera_angle_x": 0.0})
    return Case(fit(root, d.parent / "out"), 2, ("transforms_train.json", "singular intrinsic matrix"))


@case
def nan_intrinsics_one_frame(d: Path) -> Case:
    root = capture(d / "cap", ngp=True)
    meta = json.loads((root / "transforms.json").read_text())
    meta["frames"][1]["cx"] = float("nan")
    (root / "transforms.json").write_text(json.dumps(meta))
    return Case(info(root), 0, ("r_1.png", "cx is nan"), images=4)


# -- transforms.json with wrong types or missing keys ----------------------------------------


@case
def frames_not_a_list(d: Path) -> Case:
    root = capture(d / "cap", ngp=True, meta={"frames": "all of them"})
    return Case(info(root), 2, ("transforms.json", "'frames'"))


@case
def json_is_a_list(d: Path) -> Case:
    root = capture(d / "cap", ngp=True)
    (root / "transforms.json").write_text("[1, 2, 3]")
    return Case(info(root), 2, ("transforms.json", "not an object"))


@case
def json_not_utf8(d: Path) -> Case:
    root = capture(d / "cap", ngp=True)
    (root / "transforms.json").write_bytes(b'{"frames": ["\xff\xfe\xfa"]}')
    return Case(info(root), 2, ("transforms.json", "UTF-8"))


@case
def transform_matrix_wrong_type(d: Path) -> Case:
    root = capture(d / "cap", ngp=True)
    meta = json.loads((root / "transforms.json").read_text())
    for fr in meta["frames"]:
        fr["transform_matrix"] = "identity"
    (root / "transforms.json").write_text(json.dumps(meta))
    return Case(info(root), 2, ("transforms.json", "transform_matrix"))


@case
def transform_matrix_wrong_shape(d: Path) -> Case:
    root = capture(d / "cap", ngp=True)
    meta = json.loads((root / "transforms.json").read_text())
    meta["frames"][0]["transform_matrix"] = [[1, 2], [3, 4]]
    meta["frames"][1]["transform_matrix"] = [[1, 2, 3, 4], [5, 6, "x", 8], [0, 0, 0, 1]]
    (root / "transforms.json").write_text(json.dumps(meta))
    return Case(info(root), 0, ("frame 0", "frame 1", "transform_matrix"), images=3)


@case
def intrinsics_wrong_types(d: Path) -> Case:
    root = capture(d / "cap", ngp=True, meta={"fl_x": "wide", "fl_y": [1, 2], "w": {"px": 16},
                                             "h": None, "cx": True, "k1": "none"})
    return Case(info(root), 2, ("transforms.json", "no focal length"))


@case
def sizes_infinite_and_huge(d: Path) -> Case:
    root = capture(d / "cap", ngp=True, meta={"w": float("inf"), "h": 1e300})
    return Case(info(root), 0, (), images=5)  # a size that is not finite is not a size


@case
def missing_file_path_and_matrix(d: Path) -> Case:
    root = capture(d / "cap", ngp=True)
    meta = json.loads((root / "transforms.json").read_text())
    del meta["frames"][0]["file_path"]
    del meta["frames"][1]["transform_matrix"]
    meta["frames"][2] = "not a frame"
    (root / "transforms.json").write_text(json.dumps(meta))
    return Case(info(root), 0, ("frame 0", "file_path", "frame 1", "frame 2"), images=2)


@case
def missing_frames_key(d: Path) -> Case:
    root = capture(d / "cap", ngp=True)
    (root / "transforms.json").write_text(json.dumps({"fl_x": 20.0, "w": 16, "h": 16}))
    return Case(info(root), 2, ("transforms.json", "'frames'"))


@case
def missing_intrinsics(d: Path) -> Case:
    root = capture(d / "cap")
    meta = json.loads((root / "transforms_train.json").read_text())
    del meta["camera_angle_x"]
    (root / "transforms_train.json").write_text(json.dumps(meta))
    return Case(info(root), 2, ("transforms_train.json", "no focal length"))


@case
def aabb_wrong_type(d: Path) -> Case:
    root = capture(d / "cap", ngp=True, meta={"aabb": "big"})
    return Case(info(root), 2, ("transforms.json", "aabb"))


# -- COLMAP, video ---------------------------------------------------------------------------


@case
def colmap_images_missing(d: Path) -> Case:
    root = colmap_text(d / "cap", [f"img_{i}.png" for i in range(4)], write_images=False)
    return Case(info(root), 2, ("img_0.png", "not found"))


@case
def colmap_some_images_missing(d: Path) -> Case:
    root = colmap_text(d / "cap", [f"img_{i}.png" for i in range(5)])
    (root / "images" / "img_3.png").unlink()
    return Case(info(root), 0, ("img_3.png", "not found"), images=4)


@case
def colmap_name_escapes(d: Path) -> Case:
    root = colmap_text(d / "cap", [f"img_{i}.png" for i in range(4)] + ["../../private.png"],
                       write_images=False)
    for i in range(4):
        save(root / "images" / f"img_{i}.png", picture(i))
    save(d / "private.png", picture(9))
    return Case(info(root), 0, ("private.png", "outside the capture folder"), images=4)


@case
def video_zero_bytes(d: Path) -> Case:
    d.mkdir(parents=True)
    (d / "clip.mp4").write_bytes(b"")
    return Case(fit(d / "clip.mp4", d.parent / "out"), 2, ("clip.mp4",))


@case
def video_no_frames(d: Path) -> Case:
    import cv2

    d.mkdir(parents=True)
    path = d / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 32))
    writer.release()  # a container with no frame in it
    assert path.is_file()
    return Case(fit(path, d.parent / "out"), 2, ("clip.avi",))


# -- results: export and checkpoints ---------------------------------------------------------


def disk_full(mp: pytest.MonkeyPatch) -> None:
    """Every atomic write fails with ENOSPC after its first few bytes."""
    import reconstruction.atomic as atomic

    real = atomic._fdopen

    class Full:
        def __init__(self, f):
            self.f = f

        def write(self, b):
            self.f.write(bytes(b)[:7])
            self.f.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    mp.setattr(atomic, "_fdopen", lambda fd, mode="r", *a, **k: Full(real(fd, mode, *a, **k)))


def no_temp_files(folder: Path) -> Callable[[], None]:
    def check():
        left = [p.name for p in folder.rglob("*") if p.name.endswith(".tmp")]
        assert not left, left

    return check


@case
def disk_full_during_mesh_export(d: Path) -> Case:
    result = result_with_mesh(d / "result")
    (result / "mesh.obj").write_text("# the previous export, to be kept\n")
    return Case(["export", str(result), "--format", "obj"], 2,
                ("mesh.obj", "No space left on device"), patch=disk_full,
                check=no_temp_files(result))


@case
def disk_full_during_new_export(d: Path) -> Case:
    result = result_with_mesh(d / "result")
    target = d.parent / "exports" / "part.glb"

    def gone():
        assert not target.exists()
        no_temp_files(target.parent)()

    return Case(["export", str(result), "--out", str(target)], 2,
                ("part.glb", "No space left on device"), patch=disk_full, check=gone)


@case
def disk_full_during_curves_export(d: Path) -> Case:
    result = d / "result"
    result.mkdir(parents=True)
    curves = [{"type": "line", "points": [[0, 0, 0], [1, 0, 0]]},
              {"type": "bezier", "control_points": [[0, 0, 0], [0, 1, 0], [1, 1, 0], [1, 1, 1]]}]
    (result / "curves.json").write_text(json.dumps({"curves": curves}))
    (result / "curves.obj").write_text("# the previous export, to be kept\n")
    return Case(["export", str(result), "--format", "obj"], 2,
                ("curves.obj", "No space left on device"), patch=disk_full,
                check=no_temp_files(result))


@case
def disk_full_during_fit(d: Path) -> Case:
    root = capture(d / "cap")
    out = d.parent / "out"

    def nothing_half_written():
        assert not (out / "mesh.ply").exists()
        no_temp_files(out)()

    # the disk is full from the start: the first file of the run (run.json) is the one named
    return Case(fit(root, out), 2, (str(out), "No space left on device", "another --out"),
                patch=disk_full, check=nothing_half_written)


def cameras_file(d: Path) -> Path:
    path = d / "cams.json"
    path.write_text(json.dumps({"camera_angle_x": 0.7, "frames": [
        {"file_path": "v0", "transform_matrix": ring_pose(0, 4).tolist()}]}))
    return path


@case
def checkpoint_that_runs_code(d: Path) -> Case:
    result = d / "result"
    result.mkdir(parents=True)
    marker = d.parent / "pwned"
    (result / "checkpoint.pt").write_bytes(pickle.dumps({"format": "reconstudio-checkpoint",
                                                         "state": Evil(marker)}))

    def not_run():
        assert not marker.exists()

    return Case(["render", str(result), "--cameras", str(cameras_file(d)), "--out",
                 str(d.parent / "renders")], 2, ("checkpoint.pt", "refused", "could run code"),
                check=not_run)


@case
def checkpoint_zip_that_runs_code(d: Path) -> Case:
    import torch

    result = d / "result"
    result.mkdir(parents=True)
    marker = d.parent / "pwned"
    torch.save({"format": "reconstudio-checkpoint", "method": "nerf", "state": {"x": Evil(marker)}},
               result / "checkpoint.pt")
    assert not marker.exists()

    def not_run():
        assert not marker.exists()

    return Case(["render", str(result), "--cameras", str(cameras_file(d)), "--out",
                 str(d.parent / "renders")], 2, ("checkpoint.pt", "refused"), check=not_run)


@case
def checkpoint_truncated(d: Path) -> Case:
    import torch

    result = d / "result"
    result.mkdir(parents=True)
    buf = io.BytesIO()
    torch.save({"format": "reconstudio-checkpoint", "method": "nerf",
                "state": {"w": torch.zeros(1000)}}, buf)
    (result / "checkpoint.pt").write_bytes(buf.getvalue()[:900])
    return Case(["render", str(result), "--cameras", str(cameras_file(d)), "--out",
                 str(d.parent / "renders")], 2, ("checkpoint.pt", "damaged"))


@case
def checkpoint_zero_bytes(d: Path) -> Case:
    result = d / "result"
    result.mkdir(parents=True)
    (result / "checkpoint.pt").write_bytes(b"")
    return Case(["render", str(result), "--cameras", str(cameras_file(d)), "--out",
                 str(d.parent / "renders")], 2, ("checkpoint.pt", "damaged"))


@case
def checkpoint_foreign(d: Path) -> Case:
    import torch

    result = d / "result"
    result.mkdir(parents=True)
    torch.save({"weights": torch.zeros(3)}, result / "checkpoint.pt")
    return Case(["render", str(result), "--cameras", str(cameras_file(d)), "--out",
                 str(d.parent / "renders")], 2, ("checkpoint.pt", "not a ReconStudio checkpoint"))


# ------------------------------------------------------------------ the test


def tree_state(root: Path) -> dict[str, tuple]:
    """Path -> (mode, size, mtime_ns, sha256 or link target) of every file under root."""
    state: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            if p.is_symlink():
                digest = os.readlink(p)
            elif p.is_file():
                try:
                    digest = hashlib.sha256(p.read_bytes()).hexdigest()
                except PermissionError:  # the unreadable case, when not run as root
                    digest = "unreadable"
            else:  # a folder: an atomic write's temp file comes and goes, so no mtime
                state[str(p.relative_to(root))] = (st.st_mode,)
                continue
            state[str(p.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns, digest)
    return state


def test_corpus_is_large_enough():
    assert len(CASES) >= 30, len(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name, tmp_path, capsys, monkeypatch):
    inputs = tmp_path / "in"
    c = CASES[name](inputs)
    before = tree_state(inputs)
    if c.patch is not None:
        c.patch(monkeypatch)
    code = main(c.argv)
    monkeypatch.undo()
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, err
    assert code == c.code, f"exit {code}\n{err}"
    if code == 2:
        lines = [ln for ln in err.splitlines() if ln.startswith("recon: error:")]
        assert len(lines) == 1, err
        for s in c.says:
            assert s in lines[0], (s, lines[0])
    else:
        if c.argv[0] == "info":
            summary = json.loads(out)
            listed = "\n".join(summary["problems"])
            if c.images is not None:
                assert summary["images"] == c.images, listed
            if not c.says:
                assert not summary["problems"], listed
        else:
            listed = err
        for s in c.says:
            assert s in listed, (s, listed)
    assert tree_state(inputs) == before, "an input file was changed"
    if c.check is not None:
        c.check()


def test_console_script_refuses_a_crafted_checkpoint(tmp_path):
    """The same through the installed entry point: one line, exit 2, the code never ran."""
    d = tmp_path / "in"
    c = checkpoint_that_runs_code(d)
    proc = subprocess.run([sys.executable, "-m", "reconstruction.cli", *c.argv],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "refused" in proc.stderr
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("name", ["png_corrupt", "every_image_broken", "capture_too_big_for_memory"])
def test_console_script_says_only_what_was_skipped_and_why(tmp_path, name):
    """No decoder chatter (OpenCV/libpng log lines, Pillow warnings) around the messages."""
    c = CASES[name](tmp_path / "in")
    proc = subprocess.run([sys.executable, "-m", "reconstruction.cli", *c.argv],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == c.code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines and all(ln.startswith(("skipped ", "recon: error: ")) for ln in lines), proc.stderr


def test_fit_on_the_demo_capture_goes_on_past_broken_files(demo_small, tmp_path, capsys):
    """The generated demo capture with a truncated PNG, a zero-byte one and a NaN pose:
    `recon fit --steps 2` trains on the rest, lists the three, and changes none of them."""
    import shutil

    root = tmp_path / "in" / "capture"
    shutil.copytree(demo_small, root)
    p = root / "train" / "r_3.png"
    p.write_bytes(p.read_bytes()[:200])
    (root / "train" / "r_5.png").write_bytes(b"")
    meta = json.loads((root / "transforms_train.json").read_text())
    meta["frames"][7]["transform_matrix"][1][3] = float("nan")
    (root / "transforms_train.json").write_text(json.dumps(meta))
    before = tree_state(tmp_path / "in")
    code = main(fit(root, tmp_path / "out"))
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Traceback" not in out + err
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    skipped = "\n".join(metrics["skipped_images"])
    said = err.replace("\n", "")  # the console wraps long lines
    for name in ("r_3.png", "r_5.png", "r_7"):
        assert name in skipped and name in said, (name, skipped)
    assert tree_state(tmp_path / "in") == before
