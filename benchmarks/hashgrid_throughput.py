"""Hash-grid forward+backward throughput on the CPU, every backend in the same run.

3-D input, 16 levels x 2 features, 2^19 table, base 16, per-level scale 1.447,
batch 2^18 (the reference runs a smaller batch and is scaled per point), 2 threads; the median rate
over repeats is reported.
`cpu_mpts` is the training configuration: the table gradient accumulated sparsely (as
HashGridAdam sets up); `cpu_dense_grad_mpts` returns a dense table gradient instead, and
`cpu_with_adam_step_mpts` adds the sparse Adam step. Target: cpu_mpts >= 3 and >= 20x the
plain reference measured in the same run.
Prints one JSON line.   python benchmarks/hashgrid_throughput.py [--log2-batch 18]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from reconstruction.encoding import HashGrid
from reconstruction.encoding.cpu_kernel import HashGridAdam, available

CFG = {"otype": "HashGrid", "n_levels": 16, "n_features_per_level": 2, "log2_hashmap_size": 19,
       "base_resolution": 16, "per_level_scale": 1.447}


def throughput(backend: str, n: int, d: int, repeats: int, sparse: bool = False,
               with_step: bool = False) -> float:
    """Points per second through forward + backward (+ the optimizer step if with_step)."""
    enc = HashGrid(d, CFG, backend=backend)
    opt = HashGridAdam(enc) if (sparse or with_step) else None
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, d, generator=g)
    grad = torch.randn(n, enc.n_output_dims, generator=g)

    def once():
        enc.params.grad = None
        enc(x).backward(grad)
        if with_step:
            opt.step()

    once()
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        once()
        rates.append(n / (time.perf_counter() - t))
    return statistics.median(rates)  # robust to a slow outlier on a shared machine


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--log2-batch", type=int, default=18)
    ap.add_argument("--dims", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(2)
    n = 1 << args.log2_batch
    res = {"benchmark": "hashgrid_throughput", "dims": args.dims, "batch": n, "threads": 2,
           "config": CFG}
    res["reference_mpts"] = throughput("reference", min(n, 1 << 15), args.dims, 3) / 1e6
    res["torch_mpts"] = throughput("torch", n, args.dims, 3) / 1e6
    if available():
        res["cpu_dense_grad_mpts"] = throughput("cpu", n, args.dims, 7) / 1e6
        res["cpu_mpts"] = throughput("cpu", n, args.dims, 7, sparse=True) / 1e6
        res["cpu_with_adam_step_mpts"] = throughput("cpu", n, args.dims, 7, with_step=True) / 1e6
        res["speedup_vs_reference"] = res["cpu_mpts"] / res["reference_mpts"]
        res["passed"] = res["speedup_vs_reference"] >= 20 and res["cpu_mpts"] >= 3.0
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in res.items()}))


if __name__ == "__main__":
    main()
