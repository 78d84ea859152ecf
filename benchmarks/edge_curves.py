"""Edge method: parametric curves against the ground-truth feature curves after a budget.

NEF's protocol: predicted and ground-truth curves sampled densely; precision, recall and
F-score at a threshold of 2 % of the object's longest bounding-box side, and the symmetric
Chamfer distance. Target on each object (the demo object and the generated CAD-like ones
of render/cad_objects.py), 128 px, 48 training views, `--budget 300`, 2 CPU cores, with the
method's own edge maps: F-score >= 0.85. Prints one JSON line.

    python benchmarks/edge_curves.py [--budget 300] [--objects demo,steps,puck] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_FSCORE = 0.85


def make_capture(name: str, out: Path, size: int, n_train: int) -> Path:
    if name == "demo":
        from render.demo_capture import make_demo_capture

        return make_demo_capture(out, size=size, n_train=n_train)
    from render.cad_objects import make_cad_capture

    return make_cad_capture(out, name, size=size, n_train=n_train)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget", type=float, default=300.0, help="seconds of training per object")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--train", type=int, default=48)
    ap.add_argument("--objects", default="demo,steps,puck")
    ap.add_argument("--keep", type=Path, default=None, help="keep captures and results here")
    args = ap.parse_args(argv)
    root = args.keep or Path(tempfile.mkdtemp(prefix="edge_bench_"))
    out: dict = {"benchmark": "edge_curves", "budget": args.budget, "size": args.size,
                 "train_views": args.train, "target_f_score": TARGET_FSCORE, "objects": {}}
    t_all = time.perf_counter()
    for name in args.objects.split(","):
        cap = make_capture(name, root / f"{name}_capture", args.size, args.train)
        res = root / f"{name}_edge"
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "reconstruction.cli", "fit", str(cap), "--method", "edge",
                        "--budget", str(args.budget), "--out", str(res), "--quiet"], check=True)
        m = json.loads((res / "metrics.json").read_text())
        out["objects"][name] = {
            "precision": round(m["curve_precision"], 4), "recall": round(m["curve_recall"], 4),
            "f_score": round(m["curve_f_score"], 4), "chamfer": round(m["curve_chamfer"], 5),
            "curves": m["curves"], "edge_points": m["edge_points"], "steps": m["steps"],
            "edge_psnr": round(m.get("test_edge_psnr", float("nan")), 2),
            "wall_seconds": round(time.perf_counter() - t, 1),
            "meets_target": m["curve_f_score"] >= TARGET_FSCORE}
    fs = [o["f_score"] for o in out["objects"].values()]
    out["min_f_score"] = min(fs) if fs else 0.0
    out["meets_target"] = bool(fs) and min(fs) >= TARGET_FSCORE
    out["total_seconds"] = round(time.perf_counter() - t_all, 1)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
