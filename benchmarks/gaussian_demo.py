"""Gaussian splatting on the demo capture: test-view PSNR after a wall-clock budget, next to
the radiance (nerf) method's PSNR at the same budget.

Target: >= 28 dB at 128 px with 48 training views and `--budget 300` on 2 CPU cores.
Prints one JSON line.

    python benchmarks/gaussian_demo.py [--budget 300] [--size 128] [--train 48] [--skip-nerf]
        [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

TARGET_PSNR = 28.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=300.0)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--train", type=int, default=48)
    ap.add_argument("--skip-nerf", action="store_true", help="do not train nerf for comparison")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a gaussian setting")
    args = ap.parse_args()
    from reconstruction.cli import _parse_settings, run_fit
    from render.demo_capture import make_demo_capture

    settings = _parse_settings("gaussian", args.set)
    result: dict = {"benchmark": "gaussian_demo", "size": args.size, "train_views": args.train,
                    "budget_s": args.budget, "threads": torch.get_num_threads(),
                    "target_psnr": TARGET_PSNR}
    with tempfile.TemporaryDirectory() as tmp:
        cap = make_demo_capture(Path(tmp) / "capture", size=args.size, n_train=args.train)
        t0 = time.perf_counter()
        m = run_fit(str(cap), "gaussian", str(Path(tmp) / "gs"), budget=args.budget, steps=None,
                    downscale=1, device="cpu", settings=settings, quiet=True)
        result.update({"test_psnr": round(m["test_psnr"], 3),
                       "passed": m["test_psnr"] >= TARGET_PSNR, "steps": m["steps"],
                       "steps_per_second": m["steps_per_second"],
                       "gaussians": m.get("gaussians"), "wall_s": round(time.perf_counter() - t0, 1)})
        if not args.skip_nerf:
            n = run_fit(str(cap), "nerf", str(Path(tmp) / "nerf"), budget=args.budget, steps=None,
                        downscale=1, device="cpu", settings={}, quiet=True)
            result["nerf"] = {"test_psnr": round(n["test_psnr"], 3), "steps": n["steps"]}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
