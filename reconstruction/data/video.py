"""Frames from a video for ``recon sfm``: the sharpest frame of each window, no duplicates.

``extract_frames(VIDEO, FOLDER, frames=N)`` reads the video with OpenCV twice:

1. every frame's sharpness (variance of the Laplacian of the grey frame, on a copy whose
   longer side is at most ``SHARPNESS_SIZE`` px) and a small grey thumbnail;
2. the video is split into ``N`` equal windows (``N`` capped by the frame count) and the
   sharpest frame of each is a candidate. A candidate much blurrier than the candidates
   around it (less than ``BLUR_RATIO`` x their median sharpness) is dropped as ``blurred``;
   one that looks like the last kept frame (mean absolute difference of the thumbnails
   below ``DUPLICATE_MAD`` grey levels) is dropped as ``duplicate`` (the sharper of the
   two is kept). The kept frames are written as ``frame_00001.jpg`` ... resized so their
   longer side is at most ``max_size``.

The returned dict (recorded under ``video`` in ``sfm_report.json``) has the video's path,
fps, frame count and the kept and dropped frame indices with their sharpness.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from reconstruction.data.scene import CaptureError

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm")
DEFAULT_FRAMES = 120
SHARPNESS_SIZE = 480
THUMB_SIZE = 64
DUPLICATE_MAD = 2.0
BLUR_RATIO = 0.35
BLUR_NEIGHBOURS = 3


def is_video(path: str | Path) -> bool:
    """True for a file with a video extension (.mp4 .mov .avi .mkv .webm)."""
    p = Path(path)
    return p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file()


def _unreadable(video: Path, why: str) -> CaptureError:
    return CaptureError(
        video, f"cannot be read as a video ({why})",
        "check its codec (H.264 or MJPEG read everywhere) or extract its frames to a folder "
        "of JPEG/PNG photos and pass that folder",
    )


def _small(img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    s = min(1.0, size / max(w, h))
    if s < 1.0:
        img = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))),
                         interpolation=cv2.INTER_AREA)
    return img


def sharpness(frame: np.ndarray) -> float:
    """Variance of the Laplacian of the grey frame, on a copy at most SHARPNESS_SIZE px."""
    grey = cv2.cvtColor(_small(frame, SHARPNESS_SIZE), cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def _thumb(frame: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    return cv2.resize(grey, (THUMB_SIZE, THUMB_SIZE), interpolation=cv2.INTER_AREA)  # uint8: 4 KB


def _open(video: Path) -> cv2.VideoCapture:
    # FFmpeg's own messages ("moov atom not found") would add lines to the one-line error.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    cap = cv2.VideoCapture(str(video), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        try:
            cap = cv2.VideoCapture(str(video))
        finally:
            cv2.utils.logging.setLogLevel(level)
    if not cap.isOpened():
        raise _unreadable(video, "OpenCV could not open it")
    return cap


def select_frames(sharp: list[float], thumbs: list[np.ndarray], frames: int) -> tuple[list[int], list[dict]]:
    """(kept frame indices, dropped as ``{"index", "sharpness", "reason"}``)."""
    total = len(sharp)
    n = max(1, min(frames, total))
    edges = np.linspace(0, total, n + 1).round().astype(int)
    candidates = [int(a + np.argmax(sharp[a:b]))
                  for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]
    dropped: list[dict] = []
    sharp_enough = []
    for k, i in enumerate(candidates):
        around = [sharp[j] for j in candidates[max(0, k - BLUR_NEIGHBOURS):k + BLUR_NEIGHBOURS + 1]
                  if j != i]
        if around and sharp[i] < BLUR_RATIO * float(np.median(around)):
            dropped.append({"index": i, "sharpness": round(sharp[i], 2), "reason": "blurred"})
        else:
            sharp_enough.append(i)
    kept: list[int] = []
    for i in sharp_enough:
        diff = np.abs(thumbs[i].astype(np.float32) - thumbs[kept[-1]]) if kept else None
        if diff is not None and float(diff.mean()) < DUPLICATE_MAD:
            loser = i
            if sharp[i] > sharp[kept[-1]]:
                loser, kept[-1] = kept[-1], i
            dropped.append({"index": loser, "sharpness": round(sharp[loser], 2), "reason": "duplicate"})
            continue
        kept.append(i)
    dropped.sort(key=lambda d: d["index"])
    return kept, dropped


def extract_frames(video: str | Path, out_dir: str | Path, *, frames: int = DEFAULT_FRAMES,
                   max_size: int = 1600, progress=None) -> dict:
    """Write the kept frames of ``video`` to ``out_dir`` as frame_00001.jpg ...; the record."""
    video, out_dir = Path(video).expanduser(), Path(out_dir)
    if frames < 1:
        raise CaptureError(video, f"--frames {frames} is too few", "use at least 3")
    cap = _open(video)
    if progress:
        progress(f"reading {video} to keep up to {frames} sharp frames")
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    sharp: list[float] = []
    thumbs: list[np.ndarray] = []
    try:
        while True:
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            sharp.append(sharpness(frame))
            thumbs.append(_thumb(frame))
    finally:
        cap.release()
    if not sharp:
        raise _unreadable(video, "no frame could be decoded")
    if progress:
        progress(f"read {len(sharp)} frames of {video.name} ({fps:.1f} fps)")
    kept, dropped = select_frames(sharp, thumbs, frames)
    out_dir.mkdir(parents=True, exist_ok=True)
    names: dict[int, str] = {i: f"frame_{k + 1:05d}.jpg" for k, i in enumerate(kept)}
    cap = _open(video)
    try:
        index = 0
        while index <= kept[-1]:
            if not cap.grab():  # decode only; the picture is converted for kept frames alone
                break
            if index in names:
                ok, frame = cap.retrieve()
                if not ok or frame is None:
                    break
                cv2.imwrite(str(out_dir / names[index]), _small(frame, max_size),
                            [cv2.IMWRITE_JPEG_QUALITY, 95])
            index += 1
    finally:
        cap.release()
    missing = [names[i] for i in kept if not (out_dir / names[i]).is_file()]
    if missing:
        raise _unreadable(video, f"{len(missing)} frame(s) could not be decoded a second time")
    return {
        "path": str(video.resolve()),
        "bytes": video.stat().st_size,
        "fps": round(fps, 3),
        "frame_count": len(sharp),
        "frames_requested": frames,
        "kept": [{"index": i, "name": names[i], "sharpness": round(sharp[i], 2)} for i in kept],
        "dropped": dropped,
    }
