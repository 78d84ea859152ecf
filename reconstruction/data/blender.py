"""NeRF-synthetic (Blender) captures: ``transforms_{train,val,test}.json``.

Each split file has ``camera_angle_x`` (horizontal field of view, radians) and frames with
``file_path`` (usually without extension, e.g. ``"./train/r_0"``: ``.png`` then ``.jpg``
... are tried) and ``transform_matrix`` (OpenGL camera-to-world, kept as is). The principal
point is the image centre. RGBA images are composited on the background colour and the
alpha is kept as the mask. The split is the file each frame comes from; only
``transforms_train.json`` is required. ``fl_x``/``cx``/... keys, when present, win over
``camera_angle_x`` as in instant-ngp.
"""

from __future__ import annotations

from pathlib import Path

from reconstruction.data.images import Capture, Frame
from reconstruction.data.scene import Problem
from reconstruction.data.transforms import load_json, parse_aabb, parse_frames

SPLITS = ("train", "val", "test")


def split_files(root: Path) -> dict[str, Path]:
    """The split files present in ``root``: {"train": .../transforms_train.json, ...}."""
    return {
        s: root / f"transforms_{s}.json"
        for s in SPLITS
        if (root / f"transforms_{s}.json").is_file()
    }


def read_blender(root: Path) -> Capture:
    """Parse a NeRF-synthetic folder (``root`` holds ``transforms_train.json``)."""
    files = split_files(root)
    problems: list[Problem] = []
    frames: list[Frame] = []
    bounds = None
    for split, path in files.items():
        meta = load_json(path)
        frames += parse_frames(meta, root, path, problems, split=split, start=len(frames))
        bounds = bounds or parse_aabb(meta, path)
    return Capture(
        root=root,
        format="nerf-synthetic",
        source=files.get("train", root),
        frames=frames,
        problems=problems,
        bounds=bounds,
        has_split=True,
    )
