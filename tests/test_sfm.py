"""`recon sfm`: cameras for a plain folder of photos (pycolmap in a child process)."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reconstruction import cli
from reconstruction.cli import main
from reconstruction.data import load_capture
from reconstruction.data.sfm import REPORT_NAME, choose_matcher, looks_like_video

REPO = Path(__file__).resolve().parents[1]
DTU = REPO.parent / "shared" / "data" / "dtu_scan24"
N_DTU = 12  # consecutive views: enough overlap for exhaustive matching at 800 px in ~8 s


def _noise(path: Path, size=(160, 120), seed=0) -> None:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)


def test_fewer_than_three_images_is_a_one_line_error(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        _noise(photos / f"p{i}.png", seed=i)
    code = main(["sfm", str(photos), "--out", str(tmp_path / "cap")])
    err = capsys.readouterr().err
    assert code == 2
    assert "needs at least 3" in err and str(photos) in err
    assert err.strip().count("\n") == 0


def test_no_overlap_says_to_shoot_more_views(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        _noise(photos / f"p{i}.png", seed=10 + i)
    code = main(["sfm", str(photos), "--out", str(tmp_path / "cap"), "--max-size", "160"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2
    assert "too little overlap" in err and "60-80 % overlap" in err


def test_out_never_overwrites_the_photos(tmp_path, capsys):
    photos = tmp_path / "cap" / "images"
    photos.mkdir(parents=True)
    for i in range(3):
        _noise(photos / f"p{i}.png", seed=i)
    assert main(["sfm", str(photos), "--out", str(tmp_path / "cap")]) == 2
    assert "would overwrite the photos" in capsys.readouterr().err
    assert len(list(photos.iterdir())) == 3


def test_matcher_choice():
    assert choose_matcher([f"{i:06d}.png" for i in range(49)]) == "exhaustive"
    assert choose_matcher([f"IMG_{i:04d}.JPG" for i in range(61)]) == "sequential"
    assert looks_like_video([f"frame_{i:05d}.jpg" for i in range(10)])
    assert choose_matcher([f"out{i:04d}.png" for i in range(10)]) == "sequential"
    assert choose_matcher([f"frame_{i:05d}.jpg" for i in range(10)], "exhaustive") == "exhaustive"


@pytest.mark.skipif(not (DTU / "images").is_dir(), reason=f"DTU scan24 not found at {DTU}")
def test_sfm_on_dtu_views_registers_reports_and_loads(tmp_path, capsys, monkeypatch):
    photos = tmp_path / "photos"
    (photos / "masks").mkdir(parents=True)
    names = sorted(p.name for p in (DTU / "images").iterdir())[:N_DTU]
    for name in names:
        shutil.copy(DTU / "images" / name, photos / name)
        shutil.copy(DTU / "mask" / f"{Path(name).stem[-3:]}.png", photos / "masks" / name)
    _noise(photos / "zz_noise.png", size=(400, 300))  # matches nothing: left out, listed
    (photos / "zz_broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")  # unreadable: left out
    capture = tmp_path / "photos_capture"  # where `recon fit photos` looks for it
    code = main(["sfm", str(photos), "--out", str(capture), "--max-size", "800"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "structure from motion" in err and "zz_noise.png" in err  # table + warning
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["images"] == N_DTU + 2

    report = json.loads((capture / REPORT_NAME).read_text())
    assert report["matcher"] == "exhaustive"
    assert report["images_registered"] >= N_DTU - 1
    left = {e["name"]: e["reason"] for e in report["left_out"]}
    assert "zz_noise.png" in left and "not registered" in left["zz_noise.png"]
    assert "unreadable" in left["zz_broken.jpg"]
    reg = [im for im in report["images"] if im["registered"]]
    assert all(im["reprojection_error"] < 2.0 and im["points3D"] > 20 for im in reg)
    assert set(report["seconds"]) >= {"prepare", "features", "matching", "mapping", "total"}
    with Image.open(capture / "images" / names[0]) as im:
        assert max(im.size) == 800
    assert (capture / "sparse" / "0").is_dir() and (capture / "masks" / names[0]).is_file()

    scene = load_capture(capture)
    assert scene.format == "colmap" and len(scene) >= N_DTU - 1
    assert max(scene.images.shape[1:3]) == 800
    assert scene.masks is not None and scene.masks.shape[0] == len(scene)
    assert scene.points is not None and len(scene.points) > 200

    # `recon fit photos` reuses the capture beside the photos instead of running SfM again.
    def no_sfm(*args, **kwargs):
        raise AssertionError("structure from motion ran again")

    monkeypatch.setattr(cli, "_sfm", no_sfm)
    assert cli.is_photo_folder(photos)
    assert cli.ensure_capture(photos) == capture.resolve()
    assert cli.ensure_capture(capture) == capture  # a capture is used as it is


def test_pycolmap_after_pillow_and_opencv_in_the_sfm_process(tmp_path):
    """pycolmap 4.2.1 imported before Pillow/OpenCV crashed the next Pillow resize/save.

    The SfM child imports reconstruction.data.sfm, which must load Pillow and OpenCV and
    leave pycolmap to import_pycolmap(); then pycolmap, Pillow and OpenCV all keep working.
    """
    code = textwrap.dedent(f"""
        import sys
        import reconstruction.data.sfm as sfm
        assert "pycolmap" not in sys.modules, "pycolmap must be imported lazily"
        assert "PIL.Image" in sys.modules and "cv2" in sys.modules
        pycolmap = sfm.import_pycolmap()
        rec = pycolmap.Reconstruction()
        import numpy as np, PIL.Image, cv2
        img = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
        im = PIL.Image.fromarray(img).resize((640, 480), PIL.Image.LANCZOS)
        im.save({str(tmp_path / "after.png")!r})
        im.save({str(tmp_path / "after.jpg")!r}, quality=90)
        cv2.imwrite({str(tmp_path / "cv.png")!r}, cv2.resize(img, (100, 80)))
        print("ok", rec.num_images())
    """)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, timeout=60,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "ok 0"
