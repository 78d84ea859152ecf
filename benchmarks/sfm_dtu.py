"""Structure from motion on DTU scan24's photos against DTU's own cameras.

Runs ``reconstruction.data.sfm.run_sfm`` on the 49 photos of dtu_scan24 (resized to
``--max-size`` 800 px), loads the result with ``load_capture`` and the given cameras from
the IDR folder, aligns the recovered camera centres to the given ones with a similarity
(Umeyama: scale, rotation, translation) and measures, over the registered images, the
median rotation error (degrees) and the median centre error as a percentage of the
diameter of the given camera path. Targets: >= 47 of 49 registered, median rotation error
< 1 deg, median centre error < 1 %. Prints one JSON line.

    python benchmarks/sfm_dtu.py [--data DIR] [--max-size 800] [--matcher auto] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from reconstruction.data import load_capture
from reconstruction.data.sfm import run_sfm

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "dtu_scan24"
TARGET_REGISTERED = 47
TARGET_ROTATION_DEG = 1.0
TARGET_CENTRE_PCT = 1.0


def umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity (s, R [3, 3], t [3]) minimising |dst - (s R src + t)|^2; src, dst: [N, 3]."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    cov = xd.T @ xs / len(src)
    u, d, vt = np.linalg.svd(cov)
    sign = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[2, 2] = -1.0
    rot = u @ sign @ vt
    var = (xs**2).sum() / len(src)
    scale = float(np.trace(np.diag(d) @ sign) / var)
    return scale, rot, mu_d - scale * rot @ mu_s


def _orthonormal(m: np.ndarray) -> np.ndarray:
    u, _, vt = np.linalg.svd(m)
    return u @ vt


def compare(given, estimated) -> dict:
    """Rotation and centre errors of ``estimated`` cameras after a similarity alignment."""
    g_index = {Path(p).stem: i for i, p in enumerate(given.file_paths)}
    pairs = [(g_index[Path(p).stem], j) for j, p in enumerate(estimated.file_paths)
             if Path(p).stem in g_index]
    gi = np.array([a for a, _ in pairs])
    ej = np.array([b for _, b in pairs])
    g_c = given.cameras.centers[gi]
    e_c = estimated.cameras.centers[ej]
    scale, rot, trans = umeyama(e_c, g_c)
    aligned = (scale * (rot @ e_c.T)).T + trans
    all_c = given.cameras.centers
    diameter = float(np.max(np.linalg.norm(all_c[:, None] - all_c[None], axis=2)))
    centre_pct = np.linalg.norm(aligned - g_c, axis=1) / diameter * 100.0
    rot_err = []
    for a, b in pairs:
        r_g = _orthonormal(given.cameras.c2w[a, :3, :3])
        r_e = rot @ _orthonormal(estimated.cameras.c2w[b, :3, :3])
        cos = (np.trace(r_g.T @ r_e) - 1.0) / 2.0
        rot_err.append(float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))))
    return {
        "compared": len(pairs),
        "median_rotation_error_deg": round(float(np.median(rot_err)), 4),
        "max_rotation_error_deg": round(float(np.max(rot_err)), 4),
        "median_centre_error_pct": round(float(np.median(centre_pct)), 4),
        "max_centre_error_pct": round(float(np.max(centre_pct)), 4),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="DTU scan (IDR layout)")
    ap.add_argument("--max-size", type=int, default=800)
    ap.add_argument("--matcher", default="auto", choices=["auto", "exhaustive", "sequential"])
    ap.add_argument("--keep", type=Path, default=None, help="write the capture here")
    args = ap.parse_args(argv)
    if not (args.data / "images").is_dir():
        print(json.dumps({"error": f"{args.data / 'images'} not found"}))
        return 2
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sfm_dtu_") as tmp:
        capture = args.keep or Path(tmp) / "capture"
        report = run_sfm(args.data / "images", capture, matcher=args.matcher,
                         max_size=args.max_size)
        estimated = load_capture(capture, downscale=4)
    seconds = time.perf_counter() - t0
    given = load_capture(args.data, downscale=8)
    errors = compare(given, estimated)
    total = report["images_total"]
    out = {
        "benchmark": "sfm_dtu",
        "max_size": args.max_size,
        "matcher": report["matcher"],
        "registered": report["images_registered"],
        "images": total,
        "points3D": report["points3D"],
        "mean_reprojection_error_px": report["mean_reprojection_error"],
        **errors,
        "stage_seconds": report["seconds"],
        "seconds": round(seconds, 1),
        "targets_met": bool(
            report["images_registered"] >= min(TARGET_REGISTERED, total)
            and errors["median_rotation_error_deg"] < TARGET_ROTATION_DEG
            and errors["median_centre_error_pct"] < TARGET_CENTRE_PCT
        ),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
