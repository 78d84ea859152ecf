"""Radiance method on the demo capture: test-view PSNR after a wall-clock training budget.

Target: >= 28 dB at 128 px with 48 training views and `--budget 180` on 2 CPU cores.
Also reports the mesh against the ground truth (Chamfer, F-score at 1 % of the object size).
Prints one JSON line.   python benchmarks/nerf_demo.py [--budget 180] [--size 128]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import trimesh
from scipy.spatial import cKDTree


def mesh_scores(rec_path: Path, gt_path: Path, n: int = 100_000) -> dict:
    rec = trimesh.load(rec_path, process=False)
    gt = trimesh.load(gt_path, process=False)
    a, b = rec.sample(n, seed=0), gt.sample(n, seed=0)
    acc, comp = cKDTree(b).query(a)[0], cKDTree(a).query(b)[0]
    tau = 0.01 * float(np.linalg.norm(gt.extents))
    p, r = float((acc < tau).mean()), float((comp < tau).mean())
    return {"chamfer": float((acc.mean() + comp.mean()) / 2), "accuracy": float(acc.mean()),
            "completeness": float(comp.mean()), "fscore": 2 * p * r / max(p + r, 1e-12),
            "fscore_tau": tau, "faces": int(len(rec.faces))}


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
        scores = mesh_scores(Path(tmp) / "out" / "mesh.ply", cap / "gt" / "mesh.ply")
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
