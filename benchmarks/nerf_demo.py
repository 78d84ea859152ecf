"""Radiance method on the demo capture: test-view PSNR after a wall-clock training budget.

Target: >= 28 dB at 128 px with 48 training views and `--budget 180` on 2 CPU cores.
Also reports the mesh against the ground truth (Chamfer, F-score at 1 % of the ground truth's
bounding-box diagonal; reconstruction/extract/metrics.py).
Prints one JSON line.   python benchmarks/nerf_demo.py [--budget 180] [--size 128]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
import trimesh

from reconstruction.extract.metrics import mesh_scores


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=180.0)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--train", type=int, default=48)
    args = ap.parse_args()
    from reconstruction.cli import run_fit
    from render.demo_capture import make_demo_capture

    with tempfile.TemporaryDirectory() as tmp:
        cap = make_demo_capture(Path(tmp) / "capture", size=args.size, n_train=args.train)
        t0 = time.perf_counter()
        m = run_fit(str(cap), "nerf", str(Path(tmp) / "out"), budget=args.budget, steps=None,
                    downscale=1, device="cpu", settings={}, quiet=True)
        wall = time.perf_counter() - t0
        rec = trimesh.load(Path(tmp) / "out" / "mesh.ply", process=False, force="mesh")
        scores = {**mesh_scores(rec, cap / "gt" / "mesh.ply"), "faces": int(len(rec.faces))}
    print(json.dumps({
        "benchmark": "nerf_demo", "size": args.size, "train_views": args.train,
        "budget_s": args.budget, "threads": torch.get_num_threads(),
        "test_psnr": round(m["test_psnr"], 3), "target_psnr": 28.0,
        "passed": m["test_psnr"] >= 28.0, "steps": m["steps"],
        "steps_per_second": m["steps_per_second"], "wall_s": round(wall, 1),
        "mesh": {k: (round(v, 5) if isinstance(v, float) else v) for k, v in scores.items()},
    }))


if __name__ == "__main__":
    main()
