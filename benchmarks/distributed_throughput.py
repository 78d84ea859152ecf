"""Data-parallel radiance training: 1 process vs N processes (gloo on loopback).

Builds the demo capture (default 64 px, 24 training views), trains `--steps` steps of the
nerf method with 1 process (all cores to torch) and with `--nproc` processes (cores split
between them; every rank draws its own ray batch, so a step sees N times the rays), and
reports training steps per second and rays per second (all ranks) of each, and the final
loss. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--views", type=int, default=24)
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--target-samples", type=int, default=None,
                    help="nerf target_samples (field evaluations per step and rank)")
    args = ap.parse_args()

    from reconstruction.distributed import launch
    from render.demo_capture import make_demo_capture

    settings = {"mesh_resolution": 64}
    if args.target_samples:
        settings["target_samples"] = args.target_samples
    with tempfile.TemporaryDirectory() as tmp:
        cap = Path(tmp) / "capture"
        make_demo_capture(cap, size=args.size, n_train=args.views, n_val=1, n_test=2, seed=0)
        runs = {}
        for n in (1, args.nproc):
            plan = {"data": str(cap), "method": "nerf", "out": str(Path(tmp) / f"out{n}"),
                    "steps": args.steps, "budget": None, "downscale": 1, "device": "cpu",
                    "settings": settings, "bounds": None, "checkpoint_every": 0,
                    "progress": False}
            t = time.perf_counter()
            m = launch(n, plan)
            losses = [v for _, v in m["history"]]
            runs[n] = {"steps_per_second": m["steps_per_second"],
                       "rays_per_second": m["rays_per_second"],
                       "final_loss": round(sum(losses[-10:]) / 10, 5),
                       "test_psnr": round(m.get("test_psnr", float("nan")), 2),
                       "rank_max_param_diff": m["rank_max_param_diff"],
                       "wall_seconds": round(time.perf_counter() - t, 1)}
    print(json.dumps({"benchmark": "distributed_throughput", "cores": os.cpu_count(),
                      "size": args.size, "views": args.views, "steps": args.steps,
                      "processes": {str(k): v for k, v in runs.items()},
                      "rays_per_second_speedup": round(runs[args.nproc]["rays_per_second"]
                                                       / runs[1]["rays_per_second"], 2)}))


if __name__ == "__main__":
    main()
