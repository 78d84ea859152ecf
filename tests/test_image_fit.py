"""The 2-D image fit (benchmarks/image_fit.py) in small, and HashGridAdam against torch Adam.

The image fit trains a fixed number of steps (deterministic) on a 128x128 downscaled copy of
skimage.data.astronaut(). Measured here: 34.7 dB after 200 steps (the torch backend: 34.7);
a constant colour scores 10.5, a table that is never updated 10.5, a grid of only the
16- and 32-resolution levels 22.8. The floor of 30 dB sits below the first and well above
the others.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from reconstruction.encoding import HashGrid
from reconstruction.encoding.cpu_kernel import HashGridAdam, available

pytest.importorskip("skimage")

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "image_fit.py"
PSNR_FLOOR = 30.0
needs_kernel = pytest.mark.skipif(not available(), reason="fused CPU hash-grid kernel not built")


def _image_fit():
    spec = importlib.util.spec_from_file_location("image_fit_bench", BENCH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def bench():
    return _image_fit()


@pytest.fixture(scope="module")
def small_image(bench):
    return bench.load_image(128)  # [128, 128, 3]


def test_small_image_fit_reaches_floor(bench, small_image):
    torch.manual_seed(0)
    cfg = bench.ImageFitConfig(n_levels=8, log2_hashmap_size=14, base_resolution=16,
                               finest_resolution=256, batch=4096)
    model, steps, _ = bench.fit(small_image, cfg, steps=200, seed=0)
    assert steps == 200
    out = bench.render(model, 128, 128)
    assert out.shape == small_image.shape
    score = bench.psnr(out, small_image)
    assert score >= PSNR_FLOOR, f"image fit PSNR {score:.2f} dB < floor {PSNR_FLOOR}"


def test_constant_colour_scores_far_below_floor(bench, small_image):
    mean = small_image.reshape(-1, 3).mean(0).expand_as(small_image)
    assert bench.psnr(mean, small_image) < PSNR_FLOOR - 10


def test_bilinear_targets_match_pixels_at_centres(bench, small_image):
    h, w, _ = small_image.shape
    xy = bench.pixel_centres(h, w)
    torch.testing.assert_close(bench.bilinear(small_image, xy), small_image.reshape(-1, 3),
                               atol=1e-6, rtol=0)
    mid = (xy[:1] + xy[1:2]) / 2  # half way between pixels (0, 0) and (0, 1)
    torch.testing.assert_close(bench.bilinear(small_image, mid)[0], small_image[0, :2].mean(0))


SMALL = {"otype": "HashGrid", "n_levels": 4, "n_features_per_level": 2, "log2_hashmap_size": 8,
         "base_resolution": 4, "per_level_scale": 2.0}


@needs_kernel
def test_sparse_adam_matches_torch_adam_when_every_entry_has_gradient():
    sparse_grid = HashGrid(2, SMALL, backend="cpu")
    dense_grid = HashGrid(2, SMALL, backend="cpu")
    assert torch.equal(sparse_grid.params, dense_grid.params)
    opt_s = HashGridAdam(sparse_grid, lr=1e-2)
    assert opt_s.sparse
    opt_d = torch.optim.Adam([dense_grid.params], lr=1e-2, betas=(0.9, 0.99), eps=1e-15)
    init = sparse_grid.params.detach().clone()
    gen = torch.Generator().manual_seed(0)
    for step in range(5):
        x = torch.rand(1 << 15, 2, generator=gen)
        g = torch.randn(len(x), sparse_grid.n_output_dims, generator=gen)
        opt_s.zero_grad()
        sparse_grid(x).backward(g)
        assert sparse_grid.params.grad is None  # the gradient went to the sparse buffer
        opt_s.step()
        if step == 0:  # Adam's first step moves every entry with a gradient by about lr
            assert ((sparse_grid.params.detach() - init).abs() > 0.5e-2).all()
        opt_d.zero_grad()
        dense_grid(x).backward(g)
        grad = dense_grid.params.grad
        assert (grad != 0).all(), "the test needs a non-zero gradient on every table entry"
        opt_d.step()
    torch.testing.assert_close(sparse_grid.params, dense_grid.params, atol=1e-5, rtol=0)


@needs_kernel
def test_sparse_adam_leaves_entries_without_gradient_untouched():
    grid = HashGrid(2, SMALL, backend="cpu")
    probe = HashGrid(2, SMALL, backend="cpu")  # dense-gradient twin: which entries get gradient
    opt = HashGridAdam(grid, lr=1e-2)
    before = grid.params.detach().clone()
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(4096, 2, generator=gen) * 0.1  # all points in the corner [0, 0.1]^2
    g = torch.randn(len(x), grid.n_output_dims, generator=gen)
    probe(x).backward(g)
    no_grad = probe.params.grad.view(-1, 2).eq(0).all(dim=1)  # [entries] True: never any gradient
    # the dense coarse level (resolution 4, 16 entries, index x + 4 y): corner points reach
    # only grid corners (0..1, 0..1); the far corners certainly get no gradient
    lay = grid.layout
    assert not lay.hashed[0] and lay.resolutions[0] == 4 and lay.offsets[0] == 0
    far = [cx + 4 * cy for cx in range(4) for cy in range(4) if cx >= 2 or cy >= 2]
    assert no_grad[far].all()
    assert no_grad.sum() > 0.5 * len(no_grad) and not no_grad.all()
    for _ in range(3):
        opt.zero_grad()
        grid(x).backward(g)
        opt.step()
    after = grid.params.detach().view(-1, 2)
    assert torch.equal(after[no_grad], before.view(-1, 2)[no_grad])  # bit-exact
    assert (after[~no_grad] != before.view(-1, 2)[~no_grad]).all()
