"""The engine: commands in, events out, in-process and in its own process."""

import time

import numpy as np
import pytest
import torch

from reconstruction import protocol as P
from reconstruction.engine import EngineProcess, Session, load_checkpoint, restore_method


def _collect(engine: EngineProcess, until, timeout: float = 120.0) -> list:
    events, end = [], time.time() + timeout
    while time.time() < end:
        for ev in engine.events(timeout=0.2):
            events.append(ev)
            if until(ev):
                return events
    raise AssertionError(f"no matching event within {timeout} s; got {[type(e).__name__ for e in events]}")


def test_session_in_process_writes_outputs(demo_small, tmp_path):
    events = []
    out = tmp_path / "out"
    fin = Session(events.append).run(P.Start(
        data=str(demo_small), method="nerf", out=str(out), steps=6, snapshot_every=0.0,
        settings={"mesh_resolution": 48}))
    assert isinstance(fin, P.Finished)
    assert {"mesh", "checkpoint", "metrics"} <= set(fin.outputs)
    assert fin.metrics["steps"] == 6 and "test_psnr" in fin.metrics
    assert any(isinstance(e, P.Progress) for e in events)
    # the checkpoint opens without executing code and restores the same field
    ck = load_checkpoint(out / "checkpoint.pt")
    assert ck["method"] == "nerf" and ck["state"]["step"] == 6
    torch.load(out / "checkpoint.pt", weights_only=True)
    m = restore_method(out)
    assert m.step_count == 6 and m.image_size == (64, 64)


def test_session_reports_bad_capture_as_error(tmp_path):
    events = []
    assert Session(events.append).run(P.Start(data=str(tmp_path / "missing"))) is None
    errs = [e for e in events if isinstance(e, P.Error)]
    assert len(errs) == 1 and errs[0].kind == "capture" and "missing" in errs[0].message


def test_engine_process_trains_snapshots_pauses_and_stops(demo_small, tmp_path):
    engine = EngineProcess()
    try:
        assert engine.is_alive()
        engine.send(P.Start(data=str(demo_small), method="nerf", out=str(tmp_path / "o"),
                            steps=100000, snapshot_every=0.5, progress_every=0.1,
                            settings={"preview_resolution": 32, "mesh_resolution": 32}))
        evs = _collect(engine, lambda e: isinstance(e, P.SnapshotEvent) and e.kind == "mesh")
        mesh = [e for e in evs if isinstance(e, P.SnapshotEvent) and e.kind == "mesh"][-1].payload
        assert isinstance(mesh["vertices"], np.ndarray) and mesh["vertices"].shape[1] == 3
        progress = [e for e in evs if isinstance(e, P.Progress)]
        assert progress and progress[-1].step > 0
        engine.send(P.Snapshot("image", "low"))
        evs = _collect(engine, lambda e: isinstance(e, P.SnapshotEvent) and e.kind == "image")
        img = evs[-1].payload["image"]
        assert img.ndim == 3 and img.shape[2] == 3
        engine.send(P.Pause())
        time.sleep(1.0)
        engine.events()
        step_a = None
        # while paused, no progress is made
        engine.send(P.Snapshot("points"))
        evs = _collect(engine, lambda e: isinstance(e, P.SnapshotEvent) and e.kind == "points")
        step_a = evs[-1].step
        time.sleep(1.0)
        engine.send(P.Snapshot("points"))
        evs = _collect(engine, lambda e: isinstance(e, P.SnapshotEvent) and e.kind == "points")
        assert evs[-1].step == step_a
        engine.send(P.Resume())
        engine.send(P.Stop())
        evs = _collect(engine, lambda e: isinstance(e, P.Finished))
        fin = evs[-1]
        assert (tmp_path / "o" / "mesh.ply").exists() and "checkpoint" in fin.outputs
    finally:
        engine.close()
    assert not engine.is_alive()


def test_engine_process_survives_bad_start(tmp_path):
    engine = EngineProcess()
    try:
        engine.send(P.Start(data=str(tmp_path / "missing")))
        evs = _collect(engine, lambda e: isinstance(e, P.Error), timeout=60)
        assert evs[-1].kind == "capture"
        assert engine.is_alive()  # the engine waits for the next command
    finally:
        engine.close()


@pytest.mark.parametrize("cmd", [P.Pause(), P.Snapshot("mesh")])
def test_messages_are_plain_data(cmd):
    import pickle

    assert pickle.loads(pickle.dumps(cmd)) == cmd


def test_events_return_at_once_when_the_engine_dies_mid_message(demo_small, tmp_path):
    """Killed while writing a snapshot nobody reads yet: the reader gets the end, not a hang."""
    import os
    import signal

    engine = EngineProcess()
    try:
        engine.send(P.Start(data=str(demo_small), method="sdf", out=str(tmp_path / "o"),
                            steps=100000, snapshot_every=0.1, progress_every=0.05,
                            settings={"preview_resolution": 48, "mesh_resolution": 32,
                                      "n_levels": 4, "log2_hashmap_size": 12}))
        time.sleep(12)  # nobody reads: the engine blocks inside a snapshot larger than the pipe
        os.kill(engine.pid, signal.SIGKILL)
        engine._proc.join(10)
        got, end = [], time.time() + 30
        while time.time() < end:
            t0 = time.perf_counter()
            batch = engine.events(timeout=0)
            assert time.perf_counter() - t0 < 2.0, "events(timeout=0) waited"
            if not batch:
                break
            got.extend(batch)
        assert engine.events(timeout=0) == []
        assert engine.exitcode == -signal.SIGKILL
        assert any(isinstance(e, P.Log) for e in got)  # what was complete still arrives
    finally:
        engine.close()
