"""Surface (SDF) method on a real capture (DTU scan24): does the mesh reproject into the masks?

DTU ships no ground-truth geometry here, so the mesh is checked against the object masks:
every view's silhouette of the exported mesh (reconstruction/extract/metrics.py) against
its mask at the training resolution. Target: mean IoU >= 0.9 over the views, with fit and
export inside 600 s of wall clock (`--budget 420` of training at `--downscale 4`, i.e.
400 x 300 on 2 CPU cores). Writes a picture of the mesh (render/preview.py, in its own
process so VTK stays out of this one) and the mesh's silhouette outline over four of the
photos. Prints one JSON line.

    python benchmarks/sdf_dtu.py [--downscale 4] [--budget 420] [--method sdf]
        [--set KEY=VALUE ...] [--keep DIR] [--picture PNG] [--data DIR]

The pictures go to the --keep folder (else $TMPDIR/reconstudio_bench/): dtu_<method>.png
(the lit surface, seen from the capture's most central camera), dtu_<method>_colors.png
(its vertex colours) and dtu_<method>_outline.png beside it, unless --picture names the
first.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import trimesh

from reconstruction.extract.metrics import mask_iou, silhouette

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "dtu_scan24"
TARGET_MEAN_IOU = 0.9
WALL_LIMIT_S = 600.0
MESH_COLOR = (40, 220, 40)  # BGR: the mesh's silhouette outline
MASK_COLOR = (40, 40, 230)  # BGR: the mask's outline


def outline_picture(
    images: np.ndarray,  # [K, H, W, 3] uint8 RGB photos
    silhouettes: np.ndarray,  # [K, H, W] bool, the mesh's silhouettes
    masks: np.ndarray,  # [K, H, W] bool, the object masks
    labels: list[str],  # K captions
    columns: int = 2,
) -> np.ndarray:
    """[rows * H, columns * W, 3] uint8 BGR grid: each photo with the mesh's silhouette
    outline (green) over the mask's outline (red) and a caption."""
    tiles = []
    for img, sil, mask, label in zip(images, silhouettes, masks, labels, strict=True):
        tile = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2BGR)
        thick = max(1, round(tile.shape[1] / 400))
        for m, color, width in ((mask, MASK_COLOR, thick), (sil, MESH_COLOR, thick)):
            contours = cv2.findContours(m.astype(np.uint8), cv2.RETR_LIST,
                                        cv2.CHAIN_APPROX_NONE)[0]
            cv2.drawContours(tile, contours, -1, color, width, lineType=cv2.LINE_AA)
        font, scale = cv2.FONT_HERSHEY_SIMPLEX, max(0.4, tile.shape[1] / 800)
        (tw, th), base = cv2.getTextSize(label, font, scale, 1)
        cv2.rectangle(tile, (0, 0), (tw + 12, th + base + 10), (0, 0, 0), -1)
        cv2.putText(tile, label, (6, th + 5), font, scale, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(tile)
    while len(tiles) % columns:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.concatenate(tiles[i:i + columns], axis=1) for i in range(0, len(tiles), columns)]
    return np.concatenate(rows, axis=0)


def _round(value, digits: int = 3):
    return round(value, digits) if isinstance(value, float) else value


def viewpoint(
    c2w: np.ndarray,  # [N, 4, 4] camera-to-world, OpenGL convention
    center: np.ndarray,  # [3] the object's centre
) -> tuple[np.ndarray, np.ndarray]:
    """(view [3], up [3]) for a picture from the capture's most central camera direction:
    the camera whose direction from ``center`` is nearest the mean of all, with its up."""
    dirs = c2w[:, :3, 3] - center
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    mean = dirs.mean(axis=0)
    i = int(np.argmax(dirs @ mean))
    return dirs[i], c2w[i, :3, 1]


def preview_picture(mesh: Path, png: Path, view: np.ndarray, up: np.ndarray,
                    plain: bool) -> bool:
    """Render ``mesh`` into ``png`` with render/preview.py in its own process (VTK stays out
    of this one). plain: lit geometry instead of vertex colours. False (and a message) if it
    failed."""
    cmd = [sys.executable, "-m", "render.preview", str(mesh), "--out", str(png),
           "--view", *map(str, view), "--up", *map(str, up)] + (["--plain"] if plain else [])
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"sdf_dtu: the picture {png.name} failed: {proc.stderr.strip()}", file=sys.stderr)
    return proc.returncode == 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="IDR/NeuS capture folder")
    ap.add_argument("--downscale", type=int, default=4, help="divide the image size by N")
    ap.add_argument("--budget", type=float, default=420.0, help="seconds of training (evaluation and export take ~100 s more)")
    ap.add_argument("--method", default="sdf", help="method to fit (default sdf)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a method setting (as `recon fit --set`)")
    ap.add_argument("--keep", type=Path, default=None,
                    help="write the result here instead of a temp folder")
    ap.add_argument("--picture", type=Path, default=None,
                    help="PNG of the mesh (default dtu_<method>.png in the --keep folder, "
                         "else in $TMPDIR/reconstudio_bench); the outline picture goes beside it")
    args = ap.parse_args(argv)
    from reconstruction.cli import UsageError
    from reconstruction.data import CaptureError

    try:
        return _run(args)
    except (UsageError, CaptureError) as exc:
        print(f"sdf_dtu: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from reconstruction.cli import UsageError, _parse_settings, run_fit
    from reconstruction.data import load_capture

    settings = _parse_settings(args.method, args.set)
    # The cameras and masks at the training resolution (checked before the long fit).
    scene = load_capture(args.data, downscale=args.downscale)
    if scene.masks is None:
        raise UsageError(f"{args.data}: the capture has no masks to compare the mesh with")
    picture_dir = args.keep or Path(tempfile.gettempdir()) / "reconstudio_bench"
    picture = args.picture or picture_dir / f"dtu_{args.method}.png"
    outline_path = picture.with_name(f"{picture.stem}_outline.png")
    colors_path = picture.with_name(f"{picture.stem}_colors.png")
    with contextlib.ExitStack() as stack:
        if args.keep is None:
            out = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "out"
        else:
            out = args.keep
        t0 = time.perf_counter()
        m = run_fit(str(args.data), args.method, str(out), budget=args.budget, steps=None,
                    downscale=args.downscale, device="cpu", settings=settings, quiet=True)
        wall = time.perf_counter() - t0

        t1 = time.perf_counter()
        mesh = trimesh.load(out / "mesh.ply", process=False, force="mesh")
        masks = scene.masks > 127  # [N, H, W]
        sils = np.stack([silhouette(mesh.vertices, mesh.faces, scene.cameras, i)
                         for i in range(len(scene))])
        ious = np.array([mask_iou(s, g) for s, g in zip(sils, masks, strict=True)])
        score_s = time.perf_counter() - t1

        picture.parent.mkdir(parents=True, exist_ok=True)
        view, up = viewpoint(scene.cameras.c2w, mesh.bounds.mean(axis=0))
        pictures = {"picture": picture, "colors_picture": colors_path}
        for key, path in pictures.items():
            if not preview_picture(out / "mesh.ply", path, view, up, plain=key == "picture"):
                pictures[key] = None
        shown = np.linspace(0, len(scene) - 1, 4).round().astype(int)
        grid = outline_picture(scene.images[shown], sils[shown], masks[shown],
                               [f"{scene.names[i]}  IoU {ious[i]:.3f}" for i in shown])
        cv2.imwrite(str(outline_path), grid)

    test = np.isin(np.arange(len(scene)), scene.split.get("test", []))
    print(json.dumps({
        "benchmark": "sdf_dtu", "method": args.method, "data": str(args.data),
        "downscale": args.downscale, "resolution": [scene.width, scene.height],
        "budget_s": args.budget, "settings": settings, "views": int(len(scene)),
        "mean_iou": round(float(ious.mean()), 4), "min_iou": round(float(ious.min()), 4),
        "min_iou_view": scene.names[int(ious.argmin())],
        "mean_iou_train": round(float(ious[~test].mean()), 4) if (~test).any() else None,
        "mean_iou_test": round(float(ious[test].mean()), 4) if test.any() else None,
        "target_mean_iou": TARGET_MEAN_IOU,
        "passed": bool(ious.mean() >= TARGET_MEAN_IOU), "wall_s": round(wall, 1),
        "within_wall_limit": bool(wall <= WALL_LIMIT_S), "wall_limit_s": WALL_LIMIT_S,
        "score_s": round(score_s, 1),
        "steps": m.get("steps"), "steps_per_second": m.get("steps_per_second"),
        "test_psnr": _round(m.get("test_psnr")), "faces": int(len(mesh.faces)),
        "iou_per_view": [round(float(x), 3) for x in ious],
        **{k: (str(v) if v is not None else None) for k, v in pictures.items()},
        "outline_picture": str(outline_path),
        "out": str(out) if args.keep is not None else None,
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
