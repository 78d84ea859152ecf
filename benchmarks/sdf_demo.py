"""Surface (SDF) method on the demo capture: the mesh against the ground truth after a budget.

Target at 128 px with 48 training views and `--budget 300` on 2 CPU cores: Chamfer distance
<= 0.5 % of the ground truth's bounding-box diagonal and F-score >= 0.90 at a threshold of
1 % of that diagonal (reconstruction/extract/metrics.py). Also reports the test-view PSNR.
Prints one JSON line.

    python benchmarks/sdf_demo.py [--budget 300] [--size 128] [--train 48]
        [--set KEY=VALUE ...] [--keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
import trimesh

from reconstruction.extract.metrics import mesh_scores

TARGET_CHAMFER_REL = 0.005
TARGET_FSCORE = 0.90


def _round(value):
    return round(value, 6) if isinstance(value, float) else value


def live_snapshot_seconds(result: Path, repeats: int = 5) -> float:
    """Median time of the low-resolution mesh snapshot the viewport gets during training."""
    from reconstruction.engine import restore_method

    method = restore_method(result, "cpu")
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        method.snapshot("mesh", "low")
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget", type=float, default=300.0, help="seconds of training")
    ap.add_argument("--size", type=int, default=128, help="demo image size in pixels")
    ap.add_argument("--train", type=int, default=48, help="training views")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a method setting (as `recon fit --set`)")
    ap.add_argument("--keep", type=Path, default=None,
                    help="write the capture and the result here instead of a temp folder")
    ap.add_argument("--method", default="sdf", help="method to fit (default sdf)")
    args = ap.parse_args(argv)
    from reconstruction.cli import UsageError
    from render.demo_capture import make_demo_capture

    try:
        return _run(args, make_demo_capture)
    except UsageError as exc:
        print(f"sdf_demo: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, make_demo_capture) -> int:
    from reconstruction.cli import _parse_settings, run_fit

    settings = _parse_settings(args.method, args.set)
    with contextlib.ExitStack() as stack:
        if args.keep is None:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        else:
            root = args.keep
            root.mkdir(parents=True, exist_ok=True)
        cap = make_demo_capture(root / "capture", size=args.size, n_train=args.train)
        out = root / "out"
        t0 = time.perf_counter()
        m = run_fit(str(cap), args.method, str(out), budget=args.budget, steps=None,
                    downscale=1, device="cpu", settings=settings, quiet=True)
        wall = time.perf_counter() - t0
        t1 = time.perf_counter()
        rec = trimesh.load(out / "mesh.ply", process=False, force="mesh")
        scores = mesh_scores(rec, cap / "gt" / "mesh.ply")
        score_s = time.perf_counter() - t1
        snapshot_s = live_snapshot_seconds(out)
    passed = scores["chamfer_rel"] <= TARGET_CHAMFER_REL and scores["fscore"] >= TARGET_FSCORE
    print(json.dumps({
        "benchmark": "sdf_demo", "method": args.method, "size": args.size,
        "train_views": args.train, "budget_s": args.budget, "settings": settings,
        "threads": torch.get_num_threads(),
        "test_psnr": _round(m.get("test_psnr")), "steps": m.get("steps"),
        "steps_per_second": m.get("steps_per_second"),
        "chamfer": _round(scores["chamfer"]), "chamfer_rel": _round(scores["chamfer_rel"]),
        "target_chamfer_rel": TARGET_CHAMFER_REL,
        "fscore": _round(scores["fscore"]), "target_fscore": TARGET_FSCORE,
        "passed": bool(passed),
        "accuracy": _round(scores["accuracy"]), "completeness": _round(scores["completeness"]),
        "precision": _round(scores["precision"]), "recall": _round(scores["recall"]),
        "tau": _round(scores["tau"]), "bbox_diagonal": _round(scores["bbox_diagonal"]),
        "faces": int(len(rec.faces)), "watertight": bool(trimesh.load(out / "mesh.ply").is_watertight),
        "live_mesh_snapshot_s": round(snapshot_s, 3),
        "wall_s": round(wall, 1), "score_s": round(score_s, 1),
        "out": str(out) if args.keep is not None else None,
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
