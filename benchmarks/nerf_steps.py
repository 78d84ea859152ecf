"""Radiance-method training speed on the demo capture for each hash-grid backend.

Trains N steps (default 60, after 70 warm-up steps so the occupancy grid has pruned) at
128 px with 48 views and reports steps per second and samples per second per backend:
"torch" is the vectorised PyTorch grid with dense Adam (how training ran before the fused
kernel), "cpu" the fused C kernel with the sparse Adam. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch


def measure(scene, backend: str, warmup: int, steps: int) -> dict:
    from reconstruction.methods import get_method
    from reconstruction.methods.nerf import NerfConfig

    m = get_method("nerf")(NerfConfig(grid_backend=backend))
    m.setup(scene, torch.device("cpu"))
    for _ in range(warmup):
        m.step()
    samples = 0.0
    t = time.perf_counter()
    for _ in range(steps):
        met = m.step()
        samples += met["rays"] * met["samples_per_ray"]
    dt = time.perf_counter() - t
    return {"steps_per_second": round(steps / dt, 3), "samples_per_second": round(samples / dt)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=70)
    args = ap.parse_args()
    torch.set_num_threads(2)
    from reconstruction.data import load_capture
    from render.demo_capture import make_demo_capture

    with tempfile.TemporaryDirectory() as tmp:
        scene = load_capture(make_demo_capture(Path(tmp) / "capture", size=128))
    res = {"benchmark": "nerf_steps", "size": 128, "train_views": 48, "threads": 2}
    for backend in ("torch", "cpu"):
        res[backend] = measure(scene, backend, args.warmup, args.steps)
    res["speedup"] = round(res["cpu"]["steps_per_second"] / res["torch"]["steps_per_second"], 2)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
