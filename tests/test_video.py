"""`recon sfm VIDEO`: the sharpest distinct frames of a video, then structure from motion."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from reconstruction import cli
from reconstruction.cli import main
from reconstruction.data import load_capture
from reconstruction.data.sfm import REPORT_NAME
from reconstruction.data.video import select_frames

REPO = Path(__file__).resolve().parents[1]
DTU = REPO.parent / "shared" / "data" / "dtu_scan24"
N_VIEWS = 10
SIZE = (800, 600)
REPEAT = 3
BLURRED_VIEW = 4  # the middle copy of this view is blurred strongly


def _write_video(path: Path) -> tuple[list[int], int]:
    """DTU views as a video, each frame REPEAT times; (first frame of each view, blurred index)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, SIZE)
    assert writer.isOpened(), "this OpenCV build cannot write mp4v"
    names = sorted(p.name for p in (DTU / "images").iterdir())[:N_VIEWS]
    starts, blurred, index = [], -1, 0
    for v, name in enumerate(names):
        img = cv2.resize(cv2.imread(str(DTU / "images" / name)), SIZE, interpolation=cv2.INTER_AREA)
        starts.append(index)
        for r in range(REPEAT):
            frame = img
            if v == BLURRED_VIEW and r == 1:
                frame, blurred = cv2.GaussianBlur(img, (0, 0), 6), index
            writer.write(frame)
            index += 1
    writer.release()
    return starts, blurred


def test_select_frames_drops_duplicates_and_blurred():
    rng = np.random.default_rng(0)
    views = [rng.uniform(0, 255, (64, 64)).astype(np.float32) for _ in range(4)]
    thumbs = [views[i // 2] for i in range(8)]  # every view twice
    sharp = [100.0, 90.0, 120.0, 110.0, 5.0, 5.0, 100.0, 101.0]  # view 2 blurred
    kept, dropped = select_frames(sharp, thumbs, 8)
    assert kept == [0, 2, 7]
    reasons = {d["index"]: d["reason"] for d in dropped}
    assert reasons == {1: "duplicate", 3: "duplicate", 4: "blurred", 5: "blurred", 6: "duplicate"}
    kept, dropped = select_frames(sharp, thumbs, 4)  # windows of two frames: the sharper one
    assert kept == [0, 2, 7] and [d["reason"] for d in dropped] == ["blurred"]


def test_unreadable_video_is_a_one_line_error(tmp_path, capsys):
    video = tmp_path / "broken.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video")
    code = main(["sfm", str(video), "--out", str(tmp_path / "cap")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert str(video) in err and "codec" in err and "extract its frames" in err
    assert err.count("\n") == 0


@pytest.mark.skipif(not (DTU / "images").is_dir(), reason=f"DTU scan24 not found at {DTU}")
def test_sfm_on_a_video_keeps_sharp_distinct_frames_and_loads(tmp_path, capsys, monkeypatch):
    video = tmp_path / "turntable.mp4"
    starts, blurred = _write_video(video)
    capture = tmp_path / "turntable_capture"  # where `recon fit turntable.mp4` looks for it
    code = main(["sfm", str(video), "--out", str(capture), "--max-size", "800"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "duplicate" in err

    report = json.loads((capture / REPORT_NAME).read_text())
    info = report["video"]
    assert info["path"] == str(video.resolve()) and info["fps"] == pytest.approx(10.0)
    assert info["frame_count"] == N_VIEWS * REPEAT
    kept = [k["index"] for k in info["kept"]]
    assert len(kept) == N_VIEWS  # one frame per view: the copies are duplicates
    assert blurred not in kept
    assert [k["name"] for k in info["kept"]] == [f"frame_{i:05d}.jpg" for i in range(1, N_VIEWS + 1)]
    view_of = [np.searchsorted(starts, i, side="right") - 1 for i in kept]
    assert view_of == list(range(N_VIEWS))
    reasons = {d["index"]: d["reason"] for d in info["dropped"]}
    assert set(reasons) == set(range(N_VIEWS * REPEAT)) - set(kept)
    assert reasons[blurred] == "blurred"
    assert set(reasons.values()) <= {"duplicate", "blurred"}
    assert all(k["sharpness"] > 0 for k in info["kept"])

    assert report["input"] == str(video.resolve()) and report["matcher"] == "sequential"
    assert report["images_registered"] >= N_VIEWS - 2
    assert "extract" in report["seconds"]
    assert not (capture / ".video_frames").exists()
    assert sorted(p.name for p in (capture / "images").iterdir()) == [k["name"] for k in info["kept"]]
    scene = load_capture(capture)
    assert scene.format == "colmap" and len(scene) >= N_VIEWS - 2
    assert max(scene.images.shape[1:3]) == 800

    # `recon fit turntable.mp4` reuses the capture beside the video.
    def no_sfm(*args, **kwargs):
        raise AssertionError("structure from motion ran again")

    monkeypatch.setattr(cli, "_sfm", no_sfm)
    assert cli.ensure_capture(video) == capture.resolve()


def test_a_still_video_is_too_few_frames(tmp_path, capsys):
    video = tmp_path / "still.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (160, 120))
    frame = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    for _ in range(12):
        writer.write(frame)
    writer.release()
    assert main(["sfm", str(video), "--out", str(tmp_path / "cap")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert str(video) in err and "distinct sharp frame" in err and ".video_frames" not in err
    assert not (tmp_path / "cap" / ".video_frames").exists()
