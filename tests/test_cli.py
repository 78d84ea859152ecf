"""The `recon` command line: bad input gets one clear line and exit code 2."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reconstruction.cli import main


def _blender(root: Path, n: int = 4, size: int = 16, bad: dict | None = None) -> Path:
    """A tiny NeRF-synthetic capture; `bad` maps frame index -> 'corrupt' | 'nan' | 'size'."""
    bad = bad or {}
    (root / "train").mkdir(parents=True)
    frames = []
    for i in range(n):
        pose = np.eye(4)
        pose[:3, 3] = [0.0, 0.0, 4.0]
        if bad.get(i) == "nan":
            pose[0, 0] = np.nan
        frames.append({"file_path": f"./train/r_{i}", "transform_matrix": pose.tolist()})
        s = size * 2 if bad.get(i) == "size" else size
        path = root / "train" / f"r_{i}.png"
        if bad.get(i) == "corrupt":
            path.write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
        else:
            Image.fromarray(np.full((s, s, 4), 200, np.uint8)).save(path)
    (root / "transforms_train.json").write_text(
        json.dumps({"camera_angle_x": 0.7, "frames": frames}, allow_nan=True))
    return root


def _run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("recon: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_missing_folder(tmp_path, capsys):
    code, _, err = _run(["info", str(tmp_path / "nope")], capsys)
    assert code == 2
    assert str(tmp_path / "nope") in _one_error_line(err)


def test_empty_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, _, err = _run(["fit", str(tmp_path / "empty"), "--out", str(tmp_path / "o"), "--steps", "1"], capsys)
    assert code == 2
    line = _one_error_line(err)
    assert "empty" in line
    assert not (tmp_path / "o" / "mesh.ply").exists()


def test_broken_json_names_file_and_line(tmp_path, capsys):
    root = _blender(tmp_path / "cap")
    (root / "transforms_train.json").write_text('{"camera_angle_x": 0.7,\n "frames": [\n}')
    code, _, err = _run(["info", str(root)], capsys)
    assert code == 2
    line = _one_error_line(err)
    assert "transforms_train.json" in line and "line" in line


def test_all_nan_poses(tmp_path, capsys):
    root = _blender(tmp_path / "cap", n=2, bad={0: "nan", 1: "nan"})
    code, _, err = _run(["info", str(root)], capsys)
    assert code == 2
    assert "transforms_train.json" in _one_error_line(err) or "r_" in _one_error_line(err)


def test_bad_frames_are_listed_and_the_rest_loads(tmp_path, capsys):
    root = _blender(tmp_path / "cap", n=5, bad={1: "corrupt", 2: "nan", 3: "size"})
    code, out, err = _run(["info", str(root), "--json"], capsys)
    assert code == 0, err
    info = json.loads(out)
    assert info["images"] == 2
    problems = "\n".join(info["problems"])
    assert "r_1" in problems and "r_2" in problems and "r_3" in problems


def test_training_continues_past_bad_images(tmp_path, capsys):
    root = _blender(tmp_path / "cap", n=5, bad={1: "corrupt"})
    code, out, err = _run(["fit", str(root), "--out", str(tmp_path / "o"), "--steps", "3",
                           "--set", "mesh_resolution=32", "--quiet"], capsys)
    assert code == 0, err
    assert "r_1" in err  # the skipped image is reported
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert metrics["steps"] == 3
    assert any("r_1" in s for s in metrics["skipped_images"])


def test_bad_setting_and_method(tmp_path, capsys):
    root = _blender(tmp_path / "cap")
    code, _, err = _run(["fit", str(root), "--out", str(tmp_path / "o"), "--set", "nope=1"], capsys)
    assert code == 2 and "nope" in _one_error_line(err)
    code, _, err = _run(["fit", str(root), "--out", str(tmp_path / "o"), "--method", "nope"], capsys)
    assert code == 2 and "nope" in _one_error_line(err)


def test_render_without_checkpoint(tmp_path, capsys):
    code, _, err = _run(["render", str(tmp_path), "--cameras", str(tmp_path / "c.json"),
                         "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and "checkpoint" in _one_error_line(err)


def test_no_traceback_from_the_console_script(tmp_path):
    """The installed entry point prints one line, exit 2, no traceback."""
    proc = subprocess.run([sys.executable, "-m", "reconstruction.cli", "info", str(tmp_path / "missing")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("downscale", ["0", "-1"])
def test_downscale_must_be_positive(tmp_path, capsys, downscale):
    code, _, err = _run(["info", str(tmp_path), "--downscale", downscale], capsys)
    assert code == 2 and "downscale" in err


def test_methods_json_lists_every_setting_with_its_doc(capsys):
    code, out, _ = _run(["methods", "--json"], capsys)
    assert code == 0
    methods = {m["name"]: m for m in json.loads(out)["methods"]}
    assert {"nerf", "sdf"} <= set(methods)
    fields = {f["name"]: f for f in methods["nerf"]["fields"]}
    assert fields["lr"]["type"] == "float" and fields["lr"]["default"] == 0.01
    assert fields["random_background"]["type"] == "bool"
    assert fields["grid_backend"]["type"] == "str"
    assert all(f["doc"] for m in methods.values() for f in m["fields"])
