"""Dropped photos or a video: `recon sfm` in a subprocess; SfM's left-out images marked."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from test_app_window import (  # noqa: F401  (no_leftovers: autouse; window: a fixture)
    _drag_events,
    needs_display,
    no_leftovers,
    window,
)

from app.capture import CaptureImage, CaptureInfo
from app.sfm import is_photo_input, left_out, mark_left_out, sfm_error, sfm_output


def write_photos(folder: Path, n: int) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
    return folder


def test_what_counts_as_photos(tmp_path):
    photos = write_photos(tmp_path / "shots", 2)
    assert is_photo_input(photos)
    assert sfm_output(photos) == tmp_path / "shots_capture"
    (photos / "transforms.json").write_text("{}")
    assert not is_photo_input(photos)
    video = tmp_path / "walk.mp4"
    video.write_bytes(b"")
    assert is_photo_input(video) and sfm_output(video) == tmp_path / "walk_capture"
    assert not is_photo_input(tmp_path / "missing")
    assert sfm_error("progress\nrecon: error: too few images\n", 2) == "too few images"


def test_left_out_images_are_marked_with_the_reason(tmp_path):
    cap = tmp_path / "cap"
    (cap / "images").mkdir(parents=True)
    (cap / "images" / "c.jpg").write_bytes(b"x")
    (cap / "sfm_report.json").write_text(json.dumps({"left_out": [
        {"name": "b.jpg", "reason": "not registered: too few matches"},
        {"name": "c.jpg", "reason": "blurred"}]}))
    info = CaptureInfo(root=cap, format="colmap", n_images=2, resolution=(64, 48), masks=False,
                       split={"train": 2}, problems=(),
                       images=(CaptureImage("a", str(cap / "images/a.jpg"), "train"),
                               CaptureImage("b", str(cap / "images/b.jpg"), "train")))
    marked = mark_left_out(info, left_out(cap))
    by_name = {im.name: im for im in marked.images}
    assert by_name["a"].status == "train"
    assert by_name["b"].status == "skipped" and "too few matches" in by_name["b"].reason
    assert by_name["c"].status == "skipped" and by_name["c"].path.endswith("c.jpg")
    assert mark_left_out(info, {}) is info


@needs_display
def test_dropping_two_photos_runs_sfm_and_says_why_it_failed(qtbot, window, tmp_path):  # noqa: F811
    from PySide6.QtWidgets import QApplication

    photos = write_photos(tmp_path / "two", 2)
    _mime, enter, drop = _drag_events(photos)
    with qtbot.waitSignal(window.sfm_failed, timeout=120_000) as failed:
        QApplication.sendEvent(window, enter)
        QApplication.sendEvent(window, drop)
        qtbot.waitUntil(lambda: window.sfm_running, timeout=5_000)
    message = failed.args[0]
    assert "3" in message or "images" in message, message
    assert "Camera recovery failed" in window.last_error
    assert not window.sfm_running and window.isVisible()
    assert any("recon sfm" in text for _, text in window.training.log)
    assert window.training_panel.progress_bar.maximum() == 100


DTU = Path(__file__).resolve().parents[2] / "shared" / "data" / "dtu_scan24" / "images"


def _six_dtu_photos(tmp_path: Path) -> Path:
    """Six neighbouring DTU scan24 photos in tmp_path/shots (skips without the data)."""
    import shutil

    import pytest

    if not DTU.is_dir():
        pytest.skip("needs ../shared/data/dtu_scan24")
    photos = tmp_path / "shots"
    photos.mkdir()
    for i in range(10, 16):
        shutil.copy(DTU / f"{i:06d}.png", photos)
    return photos


@needs_display
def test_dropping_real_photos_recovers_cameras_and_opens_the_capture(qtbot, window, tmp_path):  # noqa: F811


    photos = _six_dtu_photos(tmp_path)
    window.sfm_args = ("--max-size", "320")  # seconds, not minutes, on two cores
    with qtbot.waitSignal(window.capture_listed, timeout=180_000) as listed:
        assert window.open_path(photos)
        assert window.sfm_running
    assert listed.args[0] == 6
    src = window.model.source
    assert src.kind == "capture" and src.path == tmp_path / "shots_capture"
    assert (src.path / "sfm_report.json").is_file()
    assert window.capture_dock.isVisible()
    qtbot.waitUntil(lambda: not window.sfm_running, timeout=5_000)
    if window.methods is None:  # opening a capture reads the method list: let it finish
        with qtbot.waitSignal(window.methods_loaded, timeout=60_000):
            pass
    window.save_window_screenshot(Path(__file__).resolve().parent / "artifacts" / "sfm_capture.png")


@needs_display
def test_scale_from_two_picked_points_rescales_the_capture(qtbot, window, tmp_path):  # noqa: F811
    import subprocess
    import sys


    photos = _six_dtu_photos(tmp_path)
    capture = tmp_path / "cap"
    subprocess.run([sys.executable, "-m", "reconstruction.cli", "sfm", str(photos), "--out", str(capture),
                    "--max-size", "320"], check=True, capture_output=True, timeout=300)
    with qtbot.waitSignal(window.capture_listed, timeout=120_000):
        assert window.open_path(capture)
    # the capture's sparse points are shown, to see the scene and to pick on
    pts = np.asarray(window.capture_info.points)
    assert len(pts) > 50 and window.sparse_actor is not None
    assert window.sparse_actor.mapper.dataset.n_points == len(pts)
    tool = window.scale_tool
    tool.ask_distance = lambda now: 0.25  # the dialog's answer, in metres
    assert tool.start() and tool.picking
    a, b = pts[0], pts[len(pts) // 2]
    with qtbot.waitSignal(tool.scaled, timeout=120_000) as done:
        tool.add_point(a)
        assert tool.picking and len(tool.points) == 1  # still waiting for the second point
        tool.add_point(b)
    factor = done.args[0]
    np.testing.assert_allclose(factor, 0.25 / np.linalg.norm(a - b), rtol=1e-6)
    record = json.loads((capture / "scale.json").read_text())
    np.testing.assert_allclose(record["factor"], factor, rtol=1e-9)
    # the capture reopened in metres: the same two sparse points are now 0.25 m apart
    with qtbot.waitSignal(window.capture_listed, timeout=120_000):
        pass
    new = np.asarray(window.capture_info.points)
    np.testing.assert_allclose(np.linalg.norm(new[0] - new[len(new) // 2]), 0.25, rtol=1e-4)
    # measure the same two points (now 0.25 m apart), then give them another length
    assert tool.start(measure=True) and tool.measuring
    with qtbot.waitSignal(tool.measured, timeout=10_000) as measured:
        tool.add_point(new[0])
        tool.add_point(new[len(new) // 2])
    np.testing.assert_allclose(measured.args[0], 0.25, rtol=1e-4)
    assert window.statusBar().currentMessage().endswith(" m") and window.scale_measured_action.isEnabled()
    with qtbot.waitSignal(tool.scaled, timeout=120_000) as done:
        assert tool.scale_measured(0.5)
    np.testing.assert_allclose(done.args[0], 2.0, rtol=1e-4)
