"""Structure from motion for a plain folder of photos: cameras for ``recon fit``.

``run_sfm(INPUT, CAPTURE)`` turns a folder of JPEG/PNG photos into a COLMAP capture the
loader reads (``reconstruction.data.colmap``):

1. prepare (this process): every photo is read with Pillow, its EXIF orientation applied
   (``ImageOps.exif_transpose``), resized so its longer side is at most ``max_size``
   (Lanczos) and written to ``CAPTURE/images/`` under its own name (EXIF kept, orientation
   reset). An unreadable file is left out and listed. ``INPUT/masks/`` is copied to
   ``CAPTURE/masks/`` with the same names, oriented and resized like its image.
2. features, matching, mapping (a child process, ``python -m reconstruction.data.sfm
   --run CAPTURE``): pycolmap's SIFT extraction (one shared SIMPLE_RADIAL camera when all
   images have one size), exhaustive or sequential matching, incremental mapping. The
   largest model is written to ``CAPTURE/sparse/0``. The child has a timeout, so a crash or
   a hang of pycolmap cannot take the caller down; pycolmap's own log goes to
   ``CAPTURE/sfm.log``, progress lines to stderr.
3. ``CAPTURE/sfm_report.json``: images registered / total, per image its mean
   reprojection error (pixels) and number of observed 3D points, the images left out and
   why, seconds per stage.

A video file (``.mp4 .mov .avi .mkv .webm``) is first cut into frames
(``reconstruction.data.video``: the sharpest frame of each of ``frames`` equal windows,
near-duplicates and much blurrier frames dropped), written as ``frame_00001.jpg`` ... and
then goes through the same steps; the report also holds ``video`` (path, fps, frame count,
kept frames with their sharpness, dropped ones with the reason).

Matcher ``auto``: sequential (each image against its 10 neighbours by name, quadratic
overlap) when there are more than 60 images or the names look like video frames
(``frame_0001.jpg``, ``out0001.png``, ``video-12.jpg``), else exhaustive.

Failures raise :class:`CaptureError` (one line, ``recon`` exits with 2): fewer than 3
usable images; no model or no initial pair (too little overlap); a crash or timeout of the
child. A model that registers only part of the images is kept; the rest are listed.

Import order: pycolmap 4.2.1 imported before Pillow or OpenCV in one process corrupted the
heap; :func:`import_pycolmap` loads both first, and only the child imports pycolmap.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2  # noqa: F401  (must be loaded before pycolmap, see the module docstring)
import numpy as np
import PIL.Image
import PIL.ImageOps

from reconstruction.data.scene import CaptureError
from reconstruction.data.video import DEFAULT_FRAMES, VIDEO_EXTENSIONS, extract_frames, is_video

PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png")
REPORT_NAME = "sfm_report.json"
DEFAULT_MAX_SIZE = 1600
DEFAULT_TIMEOUT = 3600.0
SEQUENTIAL_ABOVE = 60
MIN_IMAGES = 3
OVERLAP_HINT = "too little overlap between the photos: shoot more views with 60-80 % overlap"
_VIDEO_NAME = re.compile(r"(?i)^(frame|frames|video|vid|clip|out|output|thumb|img_seq)[\W_]*\d+$")
_RESULT_NAME = "sfm_result.json"

Progress = Callable[[str], None]


def _stderr(text: str) -> None:
    print(f"sfm: {text}", file=sys.stderr, flush=True)


def import_pycolmap():
    """pycolmap, imported after Pillow and OpenCV (loaded by this module's own imports)."""
    import pycolmap

    return pycolmap


def list_photos(folder: Path) -> list[Path]:
    """The JPEG/PNG files directly in ``folder``, sorted by name."""
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_EXTENSIONS
    )


def looks_like_video(names: list[str]) -> bool:
    """True if the names look like frames extracted from a video (frame_0001.jpg, ...)."""
    return bool(names) and all(_VIDEO_NAME.match(Path(n).stem) for n in names)


def choose_matcher(names: list[str], matcher: str = "auto") -> str:
    """'exhaustive' or 'sequential' for ``matcher`` in auto / exhaustive / sequential."""
    if matcher not in ("auto", "exhaustive", "sequential"):
        raise ValueError(f"matcher must be auto, exhaustive or sequential, got {matcher!r}")
    if matcher != "auto":
        return matcher
    return "sequential" if len(names) > SEQUENTIAL_ABOVE or looks_like_video(names) else "exhaustive"


# --------------------------------------------------------------------------- prepare


def _fit_size(w: int, h: int, max_size: int) -> tuple[int, int]:
    s = min(1.0, max_size / max(w, h))
    return max(1, round(w * s)), max(1, round(h * s))


def prepare_images(
    input_dir: Path, capture: Path, max_size: int = DEFAULT_MAX_SIZE
) -> tuple[list[str], list[dict]]:
    """Copy the photos (oriented, resized) to ``capture/images``; masks to ``capture/masks``.

    Returns (names written, left out as ``{"name", "reason"}``).
    """
    images_dir = capture / "images"
    if images_dir.exists():
        shutil.rmtree(images_dir)
    images_dir.mkdir(parents=True)
    names: list[str] = []
    left: list[dict] = []
    sizes: dict[str, tuple[int, int]] = {}
    for src in list_photos(input_dir):
        try:
            with PIL.Image.open(src) as im:
                im = PIL.ImageOps.exif_transpose(im)
                exif = im.getexif()
                exif[0x0112] = 1
                mode = "RGB" if im.mode not in ("RGB", "L") else im.mode
                im = im.convert(mode)
                size = _fit_size(im.width, im.height, max_size)
                if size != im.size:
                    im = im.resize(size, PIL.Image.LANCZOS)
                if src.suffix.lower() == ".png":
                    im.save(images_dir / src.name)
                else:
                    im.save(images_dir / src.name, quality=95, exif=exif.tobytes())
        except Exception as e:  # Pillow raises many kinds on a broken file
            left.append({"name": src.name, "reason": f"unreadable image ({type(e).__name__}: {e})"})
            continue
        names.append(src.name)
        sizes[src.name] = size
    masks_in = input_dir / "masks"
    if masks_in.is_dir():
        masks_out = capture / "masks"
        if masks_out.exists():
            shutil.rmtree(masks_out)
        masks_out.mkdir(parents=True)
        for name in names:
            stem = Path(name).stem
            found = [masks_in / name] + [masks_in / (stem + e) for e in (".png", ".jpg", ".jpeg")]
            found += [masks_in / (name + ".png")]
            src = next((m for m in found if m.is_file()), None)
            if src is None:
                continue
            with PIL.Image.open(src) as m:
                w, h = sizes[name]
                m = PIL.ImageOps.exif_transpose(m).convert("L").resize((w, h), PIL.Image.NEAREST)
                m.save(masks_out / src.name)
    return names, left


# --------------------------------------------------------------------------- child


def _image_stats(rec, image) -> tuple[float, int]:
    """(mean reprojection error in pixels, number of observed 3D points) of one image."""
    errors = []
    for p2d in image.points2D:
        if not p2d.has_point3D():
            continue
        proj = image.project_point(rec.points3D[p2d.point3D_id].xyz)
        if proj is not None:
            errors.append(float(np.linalg.norm(np.asarray(proj) - np.asarray(p2d.xy))))
    return (float(np.mean(errors)) if errors else float("nan")), len(errors)


def _run_child(capture: Path, matcher: str, threads: int) -> int:
    """Features, matching, mapping in this process; writes ``_RESULT_NAME``. Exit code."""
    pycolmap = import_pycolmap()
    images_dir = capture / "images"
    names = sorted(p.name for p in images_dir.iterdir() if p.is_file())
    database = capture / "database.db"
    database.unlink(missing_ok=True)
    out: dict = {"seconds": {}}

    def done(payload: dict, code: int) -> int:
        (capture / _RESULT_NAME).write_text(json.dumps({**out, **payload}))
        return code

    sizes = set()
    for n in names:
        with PIL.Image.open(images_dir / n) as im:
            sizes.add(im.size)
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = "SIMPLE_RADIAL"
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.num_threads = threads
    extraction.use_gpu = False
    mode = pycolmap.CameraMode.SINGLE if len(sizes) == 1 else pycolmap.CameraMode.AUTO
    print(f"extracting features from {len(names)} images", flush=True)
    t = time.perf_counter()
    pycolmap.extract_features(
        database, images_dir, image_names=names, camera_mode=mode,
        reader_options=reader, extraction_options=extraction, device=pycolmap.Device.cpu,
    )
    out["seconds"]["features"] = round(time.perf_counter() - t, 2)

    matching = pycolmap.FeatureMatchingOptions()
    matching.num_threads = threads
    matching.use_gpu = False
    print(f"matching ({matcher}), features took {out['seconds']['features']:.1f} s", flush=True)
    t = time.perf_counter()
    if matcher == "sequential":
        pairing = pycolmap.SequentialPairingOptions()
        pairing.overlap = 10
        pairing.quadratic_overlap = True
        pairing.loop_detection = False
        pycolmap.match_sequential(database, matching_options=matching, pairing_options=pairing,
                                  device=pycolmap.Device.cpu)
    else:
        pycolmap.match_exhaustive(database, matching_options=matching, device=pycolmap.Device.cpu)
    out["seconds"]["matching"] = round(time.perf_counter() - t, 2)

    print(f"mapping, matching took {out['seconds']['matching']:.1f} s", flush=True)
    t = time.perf_counter()
    models_dir = capture / "sparse_models"
    shutil.rmtree(models_dir, ignore_errors=True)
    models_dir.mkdir()
    options = pycolmap.IncrementalPipelineOptions()
    options.num_threads = threads
    options.random_seed = 0
    models = pycolmap.incremental_mapping(database, images_dir, models_dir, options=options)
    out["seconds"]["mapping"] = round(time.perf_counter() - t, 2)
    shutil.rmtree(models_dir, ignore_errors=True)
    if not models:
        return done({"error": "no_model"}, 3)
    rec = max(models.values(), key=lambda r: r.num_reg_images())
    sparse = capture / "sparse" / "0"
    shutil.rmtree(capture / "sparse", ignore_errors=True)
    sparse.mkdir(parents=True)
    rec.write(sparse)
    per_image = {}
    for image in rec.images.values():
        has_pose = image.has_pose() if callable(image.has_pose) else image.has_pose
        if has_pose:
            err, n = _image_stats(rec, image)
            per_image[image.name] = {"reprojection_error": round(err, 4), "points3D": n}
    cam = next(iter(rec.cameras.values()))
    return done({
        "models": len(models),
        "registered": per_image,
        "points3D": int(rec.num_points3D()),
        "mean_reprojection_error": round(float(rec.compute_mean_reprojection_error()), 4),
        "camera_model": cam.model.name,
    }, 0)


# --------------------------------------------------------------------------- parent


def report_is_current(capture: Path, input_dir: Path, max_size: int | None = None) -> bool:
    """True if ``capture`` holds a finished SfM of ``input_dir``'s current photos (or video)."""
    try:
        report = json.loads((capture / REPORT_NAME).read_text())
    except (OSError, ValueError):
        return False
    if not (capture / "sparse" / "0").is_dir():
        return False
    same_size = max_size is None or report.get("max_size") == max_size
    if is_video(input_dir):
        video = report.get("video") or {}
        return (same_size and video.get("path") == str(Path(input_dir).resolve())
                and video.get("bytes") == Path(input_dir).stat().st_size)
    names = [p.name for p in list_photos(input_dir)]
    return same_size and report.get("input_images") == names


def run_sfm(
    input_dir: str | Path,
    capture: str | Path,
    *,
    matcher: str = "auto",
    max_size: int = DEFAULT_MAX_SIZE,
    timeout: float = DEFAULT_TIMEOUT,
    threads: int | None = None,
    progress: Progress = _stderr,
    frames: int = DEFAULT_FRAMES,
) -> dict:
    """Photos in ``input_dir`` (or a video) -> COLMAP capture in ``capture``; the report.

    A video file (:data:`VIDEO_EXTENSIONS`) is first cut into up to ``frames`` sharp,
    distinct frames (``reconstruction.data.video``) named ``frame_00001.jpg`` ...; the
    report then also holds ``video`` (path, fps, frame count, kept and dropped frames).

    Raises :class:`CaptureError` when there are fewer than 3 usable photos, when no model
    can be built (too little overlap) or when the SfM process crashes or times out.
    """
    input_dir, capture = Path(input_dir).expanduser(), Path(capture).expanduser()
    if max_size < 16:
        raise CaptureError(input_dir, f"--max-size {max_size} is too small", "use at least 16 px")
    if not is_video(input_dir):
        return _run_sfm(input_dir, capture, matcher=matcher, max_size=max_size,
                        timeout=timeout, threads=threads, progress=progress)
    t0 = time.perf_counter()
    created = not capture.exists()
    capture.mkdir(parents=True, exist_ok=True)
    (capture / REPORT_NAME).unlink(missing_ok=True)
    staging = capture / ".video_frames"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        video = extract_frames(input_dir, staging, frames=frames, max_size=max_size,
                               progress=progress)
        for d in video["dropped"]:
            progress(f"frame {d['index']} dropped: {d['reason']} (sharpness {d['sharpness']:.1f})")
        extract_s = round(time.perf_counter() - t0, 2)
        progress(f"kept {len(video['kept'])} of {video['frame_count']} frames in {extract_s:.1f} s")
        if len(video["kept"]) < MIN_IMAGES:
            raise CaptureError(
                input_dir,
                f"gives only {len(video['kept'])} distinct sharp frame(s) of "
                f"{video['frame_count']}; structure from motion needs at least {MIN_IMAGES}",
                "film a slow, steady turn around the object, or raise --frames",
            )
        try:
            report = _run_sfm(staging, capture, matcher=matcher, max_size=max_size,
                              timeout=timeout, threads=threads, progress=progress, write=False)
        except CaptureError as e:
            if e.path != str(staging):
                raise
            raise CaptureError(input_dir, e.problem, e.fix) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created:  # a failed run leaves no empty capture folder beside the video
            with contextlib.suppress(OSError):
                capture.rmdir()
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    report["input"] = video["path"]
    report["video"] = video
    report["seconds"] = {"extract": extract_s, **report["seconds"],
                         "total": round(time.perf_counter() - t0, 2)}
    (capture / REPORT_NAME).write_text(json.dumps(report, indent=2))
    return report


def _run_sfm(input_dir: Path, capture: Path, *, matcher: str, max_size: int, timeout: float,
             threads: int | None, progress: Progress, write: bool = True) -> dict:
    t0 = time.perf_counter()
    if not input_dir.is_dir():
        raise CaptureError(input_dir, "is not a folder",
                           "give the folder holding the photos, or a video ("
                           + " ".join(VIDEO_EXTENSIONS) + ")")
    photos = list_photos(input_dir)
    if len(photos) < MIN_IMAGES:
        raise CaptureError(
            input_dir,
            f"holds {len(photos)} JPEG/PNG image(s); structure from motion needs at least "
            f"{MIN_IMAGES}",
            "add more photos of the object from different viewpoints (60-80 % overlap)",
        )
    resolved_in, written = input_dir.resolve(), (capture / "images").resolve()
    if resolved_in == written or written in resolved_in.parents or resolved_in == capture.resolve():
        raise CaptureError(
            capture,
            f"--out would overwrite the photos in {input_dir}",
            "choose an --out folder outside the photos' folder",
        )
    capture.mkdir(parents=True, exist_ok=True)
    (capture / REPORT_NAME).unlink(missing_ok=True)
    progress(f"preparing {len(photos)} images (longer side <= {max_size} px) in {capture / 'images'}")
    t = time.perf_counter()
    names, left = prepare_images(input_dir, capture, max_size)
    seconds = {"prepare": round(time.perf_counter() - t, 2)}
    if len(names) < MIN_IMAGES:
        raise CaptureError(
            input_dir,
            f"only {len(names)} readable image(s) (needs at least {MIN_IMAGES})",
            "replace the unreadable photos or add more",
        )
    chosen = choose_matcher(names, matcher)
    threads = threads or max(1, os.cpu_count() or 1)
    (capture / _RESULT_NAME).unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "reconstruction.data.sfm", "--run", str(capture),
           "--matcher", chosen, "--threads", str(threads)]
    log_path = capture / "sfm.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True,
                                cwd=Path(__file__).resolve().parents[2])
        deadline = time.monotonic() + timeout
        try:
            import selectors

            sel = selectors.DefaultSelector()
            sel.register(proc.stdout, selectors.EVENT_READ)
            while True:
                left_s = deadline - time.monotonic()
                if left_s <= 0:
                    raise subprocess.TimeoutExpired(cmd, timeout)
                if sel.select(timeout=min(left_s, 1.0)):
                    line = proc.stdout.readline()
                    if not line:
                        break
                    progress(line.rstrip())
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise CaptureError(
                capture,
                f"structure from motion did not finish within {timeout:.0f} s",
                "use fewer or smaller images (--max-size), or --matcher sequential",
            ) from None
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    result_file = capture / _RESULT_NAME
    if not result_file.is_file():
        tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["no log"]
        raise CaptureError(
            capture,
            f"the structure-from-motion process stopped (exit code {proc.returncode}; "
            f"{tail[0][:200]})",
            f"see {log_path}; try a smaller --max-size or fewer images",
        )
    result = json.loads(result_file.read_text())
    result_file.unlink()
    seconds.update(result.get("seconds", {}))
    if result.get("error"):
        raise CaptureError(input_dir, "no camera model could be built (no initial image pair)",
                           OVERLAP_HINT)
    registered = result["registered"]
    images = []
    for name in names:
        entry = {"name": name, "registered": name in registered}
        entry.update(registered.get(name, {"reprojection_error": None, "points3D": 0}))
        images.append(entry)
    for name in names:
        if name not in registered:
            left.append({"name": name, "reason": "not registered: too few matches with the "
                                                 "registered views (add views between them)"})
    seconds["total"] = round(time.perf_counter() - t0, 2)
    report = {
        "input": str(input_dir),
        "input_images": [p.name for p in photos],
        "capture": str(capture),
        "max_size": max_size,
        "matcher": chosen,
        "images_total": len(photos),
        "images_registered": len(registered),
        "models": result.get("models", 1),
        "points3D": result["points3D"],
        "mean_reprojection_error": result["mean_reprojection_error"],
        "camera_model": result["camera_model"],
        "images": images,
        "left_out": left,
        "seconds": seconds,
    }
    if write:
        (capture / REPORT_NAME).write_text(json.dumps(report, indent=2))
    (capture / "database.db").unlink(missing_ok=True)
    if len(registered) < len(photos):
        progress(f"warning: {len(photos) - len(registered)} of {len(photos)} images left out: "
                 + ", ".join(e["name"] for e in left[:8]) + (", ..." if len(left) > 8 else ""))
    progress(f"registered {len(registered)}/{len(photos)} images, {result['points3D']} points, "
             f"{seconds['total']:.1f} s")
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="structure-from-motion child process")
    p.add_argument("--run", required=True, help="capture folder with images/")
    p.add_argument("--matcher", default="exhaustive", choices=["exhaustive", "sequential"])
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    return _run_child(Path(args.run), args.matcher, args.threads)


if __name__ == "__main__":
    sys.exit(main())
