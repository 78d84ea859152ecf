"""CPU rasteriser speed: frames per second rendering 50k Gaussians at 256 x 256.

Random Gaussians (scales 0.5-2 % of the scene) in a unit ball seen from 3 units away; forward
only (no_grad) and forward + backward. Prints one JSON line.

    python benchmarks/raster_speed.py [--gaussians 50000] [--size 256] [--frames 5]
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch

from reconstruction.rendering.gaussian_raster import rasterize


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gaussians", type=int, default=50000)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--frames", type=int, default=5)
    args = ap.parse_args()
    g = torch.Generator().manual_seed(0)
    n = args.gaussians
    d = torch.randn(n, 3, generator=g)
    means = d / d.norm(dim=1, keepdim=True) * torch.rand(n, 1, generator=g) ** (1 / 3)
    quats = torch.randn(n, 4, generator=g)
    log_scales = torch.log(0.005 + 0.015 * torch.rand(n, 3, generator=g))
    colors = torch.rand(n, 3, generator=g)
    opac = torch.rand(n, generator=g) * 0.9 + 0.05
    params = [t.requires_grad_() for t in (means, quats, log_scales, colors, opac)]
    c2w = torch.eye(4)
    c2w[2, 3] = 3.0
    s = args.size
    f = 0.5 * s / math.tan(0.5 * 0.7)
    bg = torch.ones(3)

    def frame(backward: bool) -> None:
        out = rasterize(*params, c2w, f, f, s / 2, s / 2, s, s, bg)
        if backward:
            out["rgb"].sum().backward()

    times = {}
    for mode in ("forward", "forward_backward"):
        ctx = torch.no_grad() if mode == "forward" else torch.enable_grad()
        with ctx:
            frame(mode != "forward")  # warm-up
            t0 = time.perf_counter()
            for _ in range(args.frames):
                frame(mode != "forward")
            times[mode] = (time.perf_counter() - t0) / args.frames
    print(json.dumps({"benchmark": "raster_speed", "gaussians": n, "size": [s, s],
                      "threads": torch.get_num_threads(),
                      "fps_forward": round(1 / times["forward"], 3),
                      "fps_forward_backward": round(1 / times["forward_backward"], 3),
                      "seconds_per_frame": {k: round(v, 4) for k, v in times.items()},
                      "numpy": np.__version__}))


if __name__ == "__main__":
    main()
