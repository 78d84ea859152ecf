"""`recon batch` wall time: 4 small captures with 1 vs 2 tasks at once on a 2-CPU Ray.

Builds `--captures` copies of the demo capture (default 32 px, 12 views), then runs the
batch twice on a local Ray instance with `--num-cpus` CPUs: with --cpus-per-task equal to
all of them (one task at a time, each fit using every core) and with 1 CPU per task (as
many tasks as cores). Each capture: `--steps` steps of nerf, then its mesh. Prints one
JSON line with the wall time of each batch (Ray start and stop included).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--captures", type=int, default=4)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--num-cpus", type=int, default=2)
    args = ap.parse_args()

    from reconstruction.batch import run_batch
    from render.demo_capture import make_demo_capture

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "captures"
        make_demo_capture(root / "c0", size=args.size, n_train=12, n_val=1, n_test=2, seed=0)
        for i in range(1, args.captures):
            shutil.copytree(root / "c0", root / f"c{i}")
        runs = {}
        for cpus in (float(args.num_cpus), 1.0):
            concurrent = int(args.num_cpus // cpus)
            t = time.perf_counter()
            res = run_batch(str(root), "nerf", str(Path(tmp) / f"out{concurrent}"),
                            num_cpus=args.num_cpus, cpus_per_task=cpus, steps=args.steps,
                            settings=["mesh_resolution=64"], quiet=True)
            wall = time.perf_counter() - t
            rows = res["captures"]
            runs[str(concurrent)] = {
                "wall_seconds": round(wall, 1), "done": res["counts"]["done"],
                "mean_task_seconds": round(sum(r["seconds"] for r in rows) / len(rows), 1),
                "mean_train_steps_per_second": round(
                    sum(r.get("steps_per_second") or 0 for r in rows) / len(rows), 2)}
    print(json.dumps({"benchmark": "batch_throughput", "captures": args.captures,
                      "size": args.size, "steps": args.steps, "ray_cpus": args.num_cpus,
                      "concurrent_tasks": runs,
                      "speedup": round(runs["1"]["wall_seconds"]
                                       / runs[str(args.num_cpus)]["wall_seconds"], 2)}))


if __name__ == "__main__":
    main()
