"""`recon scale`: metric scale for a capture from `recon sfm` (two points, their distance)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from reconstruction.cli import main
from reconstruction.data import load_capture
from reconstruction.data.scale import SCALE_NAME, scale_transforms
from reconstruction.data.sfm import run_sfm

REPO = Path(__file__).resolve().parents[1]
DTU = REPO.parent / "shared" / "data" / "dtu_scan24"
N_VIEWS = 8


@pytest.fixture(scope="module")
def sfm_capture(tmp_path_factory):
    if not (DTU / "images").is_dir():
        pytest.skip(f"DTU scan24 not found at {DTU}")
    root = tmp_path_factory.mktemp("scale")
    photos = root / "photos"
    photos.mkdir()
    for name in sorted(p.name for p in (DTU / "images").iterdir())[:N_VIEWS]:
        shutil.copy(DTU / "images" / name, photos / name)
    run_sfm(photos, root / "capture", max_size=800, progress=lambda s: None)
    return root / "capture"


def _args(point) -> list[str]:
    return [repr(float(v)) for v in point]


def _geometry(capture: Path) -> tuple[np.ndarray, np.ndarray]:
    scene = load_capture(capture)
    return scene.cameras.c2w[:, :3, 3].copy(), np.asarray(scene.points[:, :3], np.float64)


def test_scale_makes_the_two_points_the_given_distance_apart(sfm_capture, tmp_path, capsys):
    capture = tmp_path / "capture"
    shutil.copytree(sfm_capture, capture)
    centres, points = _geometry(capture)
    assert len(centres) >= 3
    before = float(np.linalg.norm(centres[0] - centres[1]))
    code = main(["scale", str(capture), "--points", *_args(centres[0]), *_args(centres[1]),
                 "--distance", "0.25"])
    out, err = capsys.readouterr()
    assert code == 0, err
    factor = 0.25 / before
    assert json.loads(out.strip().splitlines()[-1])["factor"] == pytest.approx(factor, rel=1e-12)

    new_centres, new_points = _geometry(capture)
    assert np.linalg.norm(new_centres[0] - new_centres[1]) == pytest.approx(0.25, rel=1e-9)
    np.testing.assert_allclose(new_centres, centres * factor, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(new_points, points * factor, rtol=1e-6, atol=1e-9)
    assert not any(p.name.startswith(".") for p in (capture / "sparse").iterdir())

    record = json.loads((capture / SCALE_NAME).read_text())
    assert record["factor"] == pytest.approx(factor) and record["distance"] == 0.25
    # A second scale multiplies: total_factor is the product, the history lists both.
    p, q = new_points[0], new_points[1]
    d = float(np.linalg.norm(p - q))
    assert main(["scale", str(capture), "--points", *_args(p), *_args(q),
                 "--distance", repr(2 * d)]) == 0
    record = json.loads((capture / SCALE_NAME).read_text())
    assert record["total_factor"] == pytest.approx(2 * factor) and len(record["history"]) == 2
    np.testing.assert_allclose(_geometry(capture)[0], centres * 2 * factor, rtol=1e-9, atol=1e-12)


def test_scale_transforms_json():
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "transforms.json"
        m = np.eye(4)
        m[:3, 3] = [1.0, -2.0, 3.0]
        path.write_text(json.dumps({"fl_x": 100, "aabb": [[-1, -1, -1], [1, 1, 1]],
                                    "frames": [{"file_path": "a.png", "transform_matrix": m.tolist()}]}))
        assert scale_transforms(path, 2.0) == 1
        data = json.loads(path.read_text())
        out = np.asarray(data["frames"][0]["transform_matrix"])
        np.testing.assert_allclose(out[:3, 3], [2.0, -4.0, 6.0])
        np.testing.assert_allclose(out[:3, :3], np.eye(3))
        assert data["aabb"] == [[-2, -2, -2], [2, 2, 2]] and data["fl_x"] == 100


@pytest.mark.parametrize("args, words", [
    (["--points", "1", "2", "3", "1", "2", "3", "--distance", "1"], "same point"),
    (["--points", "0", "0", "0", "1", "0", "0", "--distance", "0"], "positive"),
    (["--points", "0", "0", "0", "1", "0", "0", "--distance", "-2"], "positive"),
])
def test_bad_points_or_distance_exit_2(sfm_capture, capsys, args, words):
    before = sorted((sfm_capture / "sparse" / "0").iterdir())
    assert main(["scale", str(sfm_capture), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and err.count("\n") == 0
    assert sorted((sfm_capture / "sparse" / "0").iterdir()) == before
    assert not (sfm_capture / SCALE_NAME).exists()


def test_not_a_capture_exit_2(tmp_path, capsys):
    assert main(["scale", str(tmp_path), "--points", "0", "0", "0", "1", "0", "0",
                 "--distance", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a capture" in err and str(tmp_path) in err and err.count("\n") == 0
