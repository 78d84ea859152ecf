"""Data-parallel training (reconstruction/distributed.py): 2 gloo processes on loopback."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow

SETTINGS = {"mesh_resolution": 32, "target_samples": 8192}


@pytest.fixture(scope="module")
def tiny_capture(tmp_path_factory) -> Path:
    from render.demo_capture import make_demo_capture

    out = tmp_path_factory.mktemp("dist") / "capture"
    make_demo_capture(out, size=32, n_train=12, n_val=1, n_test=2, seed=0)
    return out


def _plan(capture: Path, out: Path, steps: int, **extra) -> dict:
    return {"data": str(capture), "method": "nerf", "out": str(out), "steps": steps,
            "budget": None, "downscale": 1, "device": "cpu", "settings": dict(SETTINGS),
            "bounds": None, "checkpoint_every": 0, "progress": False, **extra}


def test_two_ranks_stay_identical_and_learn_like_one(tiny_capture, tmp_path):
    from reconstruction.distributed import launch

    steps = 40
    one = launch(1, _plan(tiny_capture, tmp_path / "one", steps))
    two = launch(2, _plan(tiny_capture, tmp_path / "two", steps, dump_states=str(tmp_path / "dump")))
    # every rank ends with bitwise the same parameters
    a = torch.load(tmp_path / "dump" / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "dump" / "rank1.pt", weights_only=True)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert two["rank_max_param_diff"] == 0.0
    assert two["nproc"] == 2 and two["steps"] == steps
    # the loss falls as in one process (each rank draws its own rays: twice the batch)
    loss1 = [v for _, v in one["history"]]
    loss2 = [v for _, v in two["history"]]
    end1, end2 = sum(loss1[-10:]) / 10, sum(loss2[-10:]) / 10
    assert end2 < 0.6 * loss2[0], (loss2[0], end2)
    assert end2 < 1.25 * end1, (end1, end2)
    # rank 0 wrote the outputs, as recon fit does
    out = tmp_path / "two"
    for name in ("mesh.ply", "metrics.json", "checkpoint.pt", "history.json", "run.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "metrics.json").read_text())["nproc"] == 2


def _grad_worker(rank: int, world: int, capture: str, port: int, result_file: str) -> None:
    import torch.distributed as dist

    from reconstruction.data import load_capture
    from reconstruction.distributed import RANK_SEED_STRIDE
    from reconstruction.engine import build_method

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    try:
        m = build_method("nerf", SETTINGS)
        m.setup(load_capture(capture), torch.device("cpu"))
        m.gen = torch.Generator().manual_seed(RANK_SEED_STRIDE * rank)
        seen = {}

        def capture_grads():  # the method calls this between backward and its optimizers
            sp = m.field.encoding._levels.sparse
            seen["table"] = sp.grad.clone()
            seen["touched"] = sp.touched.clone()
            seen["mlp"] = [p.grad.clone() for p in m.mlp_optimizer.param_groups[0]["params"]]
            type(m).reduce_gradients(m)
            seen["table_after"] = sp.grad.clone()
            seen["touched_after"] = sp.touched.clone()
            seen["mlp_after"] = [p.grad.clone() for p in m.mlp_optimizer.param_groups[0]["params"]]

        m.reduce_gradients = capture_grads
        m.step()
        gathered = [None] * world
        plain = {k: ([t.numpy() for t in v] if isinstance(v, list) else v.numpy())
                 for k, v in seen.items()}  # numpy: tensors would go through shared memory
        dist.all_gather_object(gathered, plain)
        if rank == 0:
            with open(result_file, "wb") as f:
                pickle.dump(gathered, f)
    finally:
        dist.destroy_process_group()


def test_sparse_table_gradient_is_the_mean_over_ranks(tiny_capture, tmp_path):
    import torch.multiprocessing as tmp

    from reconstruction.distributed import _free_port

    result_file = tmp_path / "grads.pkl"
    tmp.spawn(_grad_worker, args=(2, str(tiny_capture), _free_port(), str(result_file)), nprocs=2)
    r0, r1 = ({k: ([torch.from_numpy(a) for a in v] if isinstance(v, list) else torch.from_numpy(v))
               for k, v in r.items()} for r in pickle.loads(result_file.read_bytes()))
    assert not torch.equal(r0["table"], r1["table"])  # the ranks drew different rays
    mean = (r0["table"] + r1["table"]) / 2
    for r in (r0, r1):
        assert torch.allclose(r["table_after"], mean, atol=1e-9, rtol=0)
        assert torch.equal(r["touched_after"], torch.maximum(r0["touched"], r1["touched"]))
        for g, a, b in zip(r["mlp_after"], r0["mlp"], r1["mlp"], strict=True):
            assert torch.allclose(g, (a + b) / 2, atol=1e-9, rtol=0)
    assert torch.equal(r0["table_after"], r1["table_after"])
    # no gradient outside the touched groups is lost
    assert torch.count_nonzero(mean) == torch.count_nonzero(r0["table_after"])


def test_recon_fit_nproc_2(tiny_capture, tmp_path, capsys):
    from reconstruction.cli import main

    out = tmp_path / "fit"
    code = main(["fit", str(tiny_capture), "--out", str(out), "--nproc", "2", "--steps", "20",
                 "--set", "mesh_resolution=32", "--quiet"])
    assert code == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["nproc"] == 2 and line["steps"] == 20
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["rank_max_param_diff"] == 0.0
    assert (out / "mesh.ply").is_file()
    # the checkpoint continues in one process like any other
    assert main(["fit", "--resume", str(out), "--steps", "25", "--quiet"]) == 0
    assert json.loads((out / "metrics.json").read_text())["steps"] == 25


def test_resume_and_other_methods_are_refused(tiny_capture, tmp_path, capsys):
    from reconstruction.cli import main

    assert main(["fit", str(tiny_capture), "--out", str(tmp_path / "x"), "--nproc", "2",
                 "--method", "gaussian", "--steps", "2"]) == 2
    assert "data-parallel training supports nerf" in capsys.readouterr().err


def test_a_broken_capture_ends_with_one_line(tmp_path, capsys):
    from reconstruction.cli import main

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "transforms_train.json").write_text("{not json")
    assert main(["fit", str(bad), "--out", str(tmp_path / "o"), "--nproc", "2", "--steps", "2",
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "recon: error:" in err and "transforms_train.json" in err
