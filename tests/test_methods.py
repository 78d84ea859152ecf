"""Every registered method trains a few steps on the CPU, renders, snapshots and round-trips
its state; a method is covered the day it is registered."""

import numpy as np
import pytest
import torch

from reconstruction.methods import REGISTRY, get_method
from reconstruction.methods.base import config_docs

METHODS = sorted(REGISTRY)


@pytest.mark.parametrize("name", METHODS)
def test_smoke_train(name, sphere, tmp_path):
    cls = get_method(name)
    m = cls()
    m.setup(sphere, torch.device("cpu"))
    for _ in range(3):
        metrics = m.step()
    assert np.isfinite(metrics["loss"])
    imgs = m.render(sphere.cameras.subset([0]))
    assert imgs.shape == (1, sphere.height, sphere.width, 3) and np.isfinite(imgs).all()
    for kind in cls.snapshot_kinds:
        payload = m.snapshot(kind, "low")
        assert payload is None or all(isinstance(v, np.ndarray) for v in payload.values())
    outputs = m.export(tmp_path)
    assert outputs and all((tmp_path / p).exists() or p.startswith(str(tmp_path)) for p in outputs.values())
    # state round trip through a weights_only load
    path = tmp_path / "state.pt"
    torch.save(m.state_dict(), path)
    m2 = cls()
    m2.setup(None, torch.device("cpu"))
    m2.load_state_dict(torch.load(path, weights_only=True))
    np.testing.assert_allclose(m2.render(sphere.cameras.subset([0])), imgs, atol=1e-5)


@pytest.mark.parametrize("name", METHODS)
def test_every_config_field_is_documented(name):
    import dataclasses

    cls = get_method(name)
    docs = config_docs(cls.Config)
    missing = [f.name for f in dataclasses.fields(cls.Config) if not docs.get(f.name)]
    assert not missing, f"{name}: config fields without a docstring: {missing}"


def test_same_seed_same_training(sphere):
    losses = []
    for _ in range(2):
        m = get_method("nerf")()
        m.setup(sphere, torch.device("cpu"))
        losses.append([m.step()["loss"] for _ in range(4)])
    assert losses[0] == losses[1]


@pytest.mark.parametrize("name", METHODS)
def test_a_resumed_method_continues_with_the_same_losses(name, sphere, tmp_path):
    """State saved at step k and loaded into a fresh method (through a weights_only file)
    gives the same losses from k on as the method that never stopped: model, optimiser,
    occupancy or densification state, step and RNG are all in the state."""
    total, k = 14, 6

    def run_steps(m, start, stop):
        out = []
        for i in range(start, stop):
            m.progress = i / total  # what the engine sets from step / target
            out.append(m.step()["loss"])
        return out

    cls = get_method(name)
    straight = cls()
    straight.setup(sphere, torch.device("cpu"))
    expect = run_steps(straight, 0, total)

    first = cls()
    first.setup(sphere, torch.device("cpu"))
    got = run_steps(first, 0, k)
    path = tmp_path / "state.pt"
    torch.save(first.state_dict(), path)
    second = cls()
    second.setup(sphere, torch.device("cpu"))
    second.load_state_dict(torch.load(path, weights_only=True))
    assert second.step_count == k
    got += run_steps(second, k, total)
    assert got == expect
