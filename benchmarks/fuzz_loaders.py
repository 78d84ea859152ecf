"""Fuzz the capture loaders with hypothesis for a few minutes; count inputs and failures.

Three targets, each a generator of inputs and a check that runs them through the real
loader (:func:`reconstruction.data.load_capture`, then ``scene.summary()``):

- ``image``: bytes as an image file of a 3-image capture: random bytes, and valid PNG /
  JPEG files with bytes flipped, inserted or cut off (headers claiming huge sizes
  included). The file is also read alone with ``image_info`` / ``read_image`` (decoded
  only when its header says it is small, as the loader does after its memory check).
- ``transforms``: random JSON as ``transforms.json`` / ``transforms_train.json``: any JSON
  value, and objects built from the keys the loaders read (file_path, transform_matrix,
  fl_x, camera_angle_x, w, h, k1..k4, aabb, camera_model, *_filenames, mask_path, ...)
  with values of every JSON type, NaN and infinities, paths that leave the folder.
- ``poses``: well-formed transforms.json whose matrices and intrinsics are random floats
  (NaN, +-inf, huge, tiny, zero included).

A failure is any exception other than the loaders' own :class:`CaptureError` /
:class:`ImageReadError` (clear message, exit code 2 in ``recon``). The run lasts
``--seconds`` (split between the targets), in batches of hypothesis examples with
fresh seeds; nothing is shrunk (the check records a failure and goes on).

    python benchmarks/fuzz_loaders.py [--seconds 180] [--seed 0]

Prints one JSON line: {"benchmark": "fuzz_loaders", "inputs_tried": N, "failures": M,
"seconds": S, "targets": {...}, "failure_kinds": [...]}. tests/test_fuzz_loaders.py runs
the same checks for a few hundred inputs.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from PIL import Image

from reconstruction.data import CaptureError, load_capture
from reconstruction.data.images import ImageReadError, image_info, read_image

EXPECTED = (CaptureError, ImageReadError)
SMALL = 4096 * 4096  # decode a lone fuzzed image only below this many pixels
SIZE = 8


# ------------------------------------------------------------------ fixed material


def _pose(i: int, n: int = 3) -> list[list[float]]:
    az = 2 * math.pi * i / n
    eye = 4.0 * np.array([math.cos(az), math.sin(az), 0.8])
    f = -eye / np.linalg.norm(eye)
    r = np.cross(f, [0.0, 0.0, 1.0])
    r /= np.linalg.norm(r)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = r, np.cross(r, f), -f, eye
    return m.tolist()


def _encoded(fmt: str, i: int = 0) -> bytes:
    buf = io.BytesIO()
    pixels = np.random.default_rng(i).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buf, fmt)
    return buf.getvalue()


PNG = _encoded("PNG")
JPEG = _encoded("JPEG")


def write_capture(root: Path, meta: dict | None = None, name: str = "transforms.json") -> Path:
    """3 small PNGs in root/train/ and (unless meta is None) a camera file."""
    (root / "train").mkdir(parents=True, exist_ok=True)
    for i in range(3):
        (root / "train" / f"r_{i}.png").write_bytes(_encoded("PNG", i))
    if meta is not None:
        (root / name).write_text(json.dumps(meta, allow_nan=True))
    return root


def base_meta() -> dict:
    f = 0.5 * SIZE / math.tan(0.35)
    return {"fl_x": f, "fl_y": f, "cx": SIZE / 2, "cy": SIZE / 2, "w": SIZE, "h": SIZE,
            "frames": [{"file_path": f"train/r_{i}.png", "transform_matrix": _pose(i)}
                       for i in range(3)]}


# ------------------------------------------------------------------ strategies

floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.0, -0.0, 1e-300, -1e-300, 1e300, -1e300, 1e-9, 0.5, 1.0, -1.0, 20.0])
scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | floats
           | st.text(max_size=10) | st.sampled_from(["nan", "inf", "-inf", "1e999", "", "0"]))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=16,
)
paths = st.sampled_from([
    "train/r_0.png", "./train/r_1", "train/r_2.png", "train/missing.png", "../outside.png",
    "/etc/passwd", "train/../train/r_0.png", "train", "", ".", "train/r_0.png\x00x",
    "../../../../../../etc/shadow", "train/r_0.PNG", "~/r_0.png",
]) | st.text(max_size=12)
matrices = st.lists(st.lists(floats, min_size=4, max_size=4), min_size=3, max_size=4)
KEYS = ["file_path", "transform_matrix", "fl_x", "fl_y", "cx", "cy", "w", "h", "camera_angle_x",
        "camera_angle_y", "k1", "k2", "k3", "k4", "p1", "p2", "mask_path", "aabb", "camera_model",
        "is_fisheye", "aabb_scale", "applied_transform", "train_filenames", "val_filenames",
        "test_filenames", "ply_file_path", "frames"]
values_for = {
    "file_path": paths | json_values,
    "mask_path": paths | json_values,
    "ply_file_path": paths | json_values,
    "transform_matrix": matrices | json_values,
    "applied_transform": matrices | json_values,
    "aabb": st.lists(st.lists(floats, min_size=3, max_size=3), min_size=2, max_size=2)
    | st.lists(floats, max_size=7) | json_values,
    "camera_model": st.sampled_from(["PINHOLE", "OPENCV", "OPENCV_FISHEYE", "SIMPLE_PINHOLE",
                                     "EQUIRECTANGULAR", "pinhole"]) | json_values,
    "train_filenames": st.lists(paths, max_size=4) | json_values,
    "val_filenames": st.lists(paths, max_size=4) | json_values,
    "test_filenames": st.lists(paths, max_size=4) | json_values,
}


@st.composite
def keyed_dict(draw, allow_frames: bool) -> dict:
    keys = draw(st.lists(st.sampled_from(KEYS if allow_frames else KEYS[:-1]), max_size=10, unique=True))
    out = {}
    for k in keys:
        out[k] = draw(values_for.get(k, floats | json_values))
    return out


@st.composite
def transforms_meta(draw):
    """A transforms.json body: any JSON, or an object of the keys the loaders read."""
    kind = draw(st.sampled_from(["any", "keyed", "mutated"]))
    if kind == "any":
        return draw(json_values)
    if kind == "keyed":
        meta = draw(keyed_dict(True))
        if draw(st.booleans()):
            meta["frames"] = draw(st.lists(keyed_dict(False) | json_values, max_size=5))
        return meta
    meta = base_meta()  # a valid file with a few keys replaced
    for k, v in draw(keyed_dict(False)).items():
        meta[k] = v
    for fr in meta["frames"]:
        for k, v in draw(keyed_dict(False)).items():
            fr[k] = v
    return meta


@st.composite
def image_data(draw):
    """(bytes, suffix): random bytes, or a valid PNG/JPEG flipped, spliced or cut."""
    kind = draw(st.sampled_from(["random", "png", "jpeg"]))
    if kind == "random":
        return draw(st.binary(max_size=600)), draw(st.sampled_from([".png", ".jpg"]))
    raw = bytearray(PNG if kind == "png" else JPEG)
    for pos, byte in draw(st.lists(st.tuples(st.integers(0, len(raw) - 1), st.integers(0, 255)),
                                   max_size=6)):
        raw[pos] = byte
    if draw(st.booleans()):  # splice in a run of bytes (huge sizes in headers, chunks)
        pos = draw(st.integers(0, len(raw)))
        raw[pos:pos] = draw(st.binary(min_size=1, max_size=16))
    if draw(st.booleans()):
        raw = raw[: draw(st.integers(0, len(raw)))]
    return bytes(raw), ".png" if kind == "png" else ".jpg"


@st.composite
def pose_meta(draw):
    """A well-formed transforms.json with random floats in poses and intrinsics."""
    meta = base_meta()
    for fr in meta["frames"]:
        if draw(st.booleans()):
            m = np.asarray(fr["transform_matrix"])
            for _ in range(draw(st.integers(1, 6))):
                m[draw(st.integers(0, 3)), draw(st.integers(0, 3))] = draw(floats)
            fr["transform_matrix"] = m.tolist()
    for k in draw(st.lists(st.sampled_from(["fl_x", "fl_y", "cx", "cy", "camera_angle_x", "k1", "p1"]),
                           max_size=3, unique=True)):
        if k == "camera_angle_x":
            meta.pop("fl_x")
            meta.pop("fl_y")
        meta[k] = draw(floats)
    return meta


# ------------------------------------------------------------------ checks


def _load(root: Path) -> None:
    scene = load_capture(root)
    scene.summary()
    assert len(scene.images) == len(scene.cameras) > 0
    assert np.all(np.isfinite(scene.cameras.c2w))


def check_image(data: bytes, suffix: str) -> None:
    """A fuzzed image alone and as one frame of a capture: loads or fails cleanly."""
    with tempfile.TemporaryDirectory() as d:
        root = write_capture(Path(d) / "cap")
        path = root / "train" / f"r_1{suffix}"
        (root / "train" / "r_1.png").unlink()
        path.write_bytes(data)
        meta = base_meta()
        meta["frames"][1]["file_path"] = f"train/r_1{suffix}"
        (root / "transforms.json").write_text(json.dumps(meta))
        try:
            w, h, _ = image_info(path)
            if w * h <= SMALL:
                img = read_image(path)
                assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] in (3, 4)
        except ImageReadError as e:
            assert str(e)
        try:
            _load(root)
        except CaptureError as e:
            assert str(e)


def check_transforms(meta, blender: bool = False) -> None:
    with tempfile.TemporaryDirectory() as d:
        root = write_capture(Path(d) / "cap", meta,
                             "transforms_train.json" if blender else "transforms.json")
        try:
            _load(root)
        except CaptureError as e:
            assert str(e)


# ------------------------------------------------------------------ the run


TARGETS = {
    "image": (image_data(), lambda x: check_image(*x)),
    "transforms": (st.tuples(transforms_meta(), st.booleans()), lambda x: check_transforms(*x)),
    "poses": (pose_meta(), check_transforms),
}


def run_target(name: str, seconds: float, start_seed: int, batch: int = 50) -> dict:
    """Run one target for ``seconds``; returns tried, failures and their kinds."""
    strategy, check = TARGETS[name]
    tried, failures = 0, Counter()
    examples: dict[str, str] = {}

    def body(x):
        nonlocal tried
        tried += 1
        try:
            check(x)
        except EXPECTED:
            pass
        except Exception as exc:  # noqa: BLE001 - that is what is being counted
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            kind = f"{type(exc).__name__} at {Path(frame.filename).name}:{frame.lineno}: {str(exc)[:120]}"
            failures[kind] += 1
            examples.setdefault(kind, repr(x)[:300])

    t_end = time.monotonic() + seconds
    k = start_seed
    while time.monotonic() < t_end:
        run = settings(max_examples=batch, deadline=None, database=None, phases=[Phase.generate],
                       suppress_health_check=list(HealthCheck))(given(strategy)(body))
        seed(k)(run)()
        k += 1
    return {"inputs_tried": tried, "failures": sum(failures.values()),
            "kinds": [{"kind": kd, "count": n, "example": examples[kd]} for kd, n in failures.items()]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=180.0, help="total wall clock")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--targets", nargs="*", default=list(TARGETS), choices=list(TARGETS))
    args = p.parse_args(argv)
    os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
    import logging

    logging.disable(logging.WARNING)  # skipped frames are logged: expected here
    t0 = time.perf_counter()
    share = args.seconds / len(args.targets)
    results = {t: run_target(t, share, args.seed * 1000) for t in args.targets}
    out = {
        "benchmark": "fuzz_loaders",
        "inputs_tried": sum(r["inputs_tried"] for r in results.values()),
        "failures": sum(r["failures"] for r in results.values()),
        "seconds": round(time.perf_counter() - t0, 1),
        "targets": {t: {"inputs_tried": r["inputs_tried"], "failures": r["failures"]}
                    for t, r in results.items()},
        "failure_kinds": [dict(k, target=t) for t, r in results.items() for k in r["kinds"]],
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
