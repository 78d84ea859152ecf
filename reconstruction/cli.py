"""`recon`: everything the window does, headless.

    recon info DATA                      what was detected in a capture
    recon sfm PHOTOS --out CAPTURE [--matcher auto] [--max-size PX]   cameras for photos
    recon sfm VIDEO --out CAPTURE [--frames N]                          ... or a video
    recon scale CAPTURE --points X1 Y1 Z1 X2 Y2 Z2 --distance METRES    metric scale
    recon fit DATA --method nerf --out DIR [--budget S] [--steps N] [--downscale N]
    recon fit --resume DIR|NAME.recon    continue a run where it was saved
    recon fit DATA --nproc 2 --out DIR   data-parallel training (torch.distributed)
    recon batch INPUTS --method M --out DIR [--address local]   many captures on Ray
    recon edit DIR --ops edits.json --out EDITED   crop, cage deformation, curve edits
    recon render DIR --cameras FILE.json --out IMGDIR [--downscale N]
    recon export DIR --format ply|obj|glb|stl [--faces N] [--out FILE]
    recon methods [--json]               the methods and their settings
    recon demo [--out DIR]               build the demo capture, reconstruct it, show it

Bad input ends with one line on stderr (which file, what is wrong, what to do) and exit 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

EXIT_BAD_INPUT = 2


class UsageError(Exception):
    """A problem with the user's input; printed as one line, exit code 2."""


def _console():
    from rich.console import Console

    return Console(stderr=True)


# -- info --------------------------------------------------------------------------------------


def cmd_info(args: argparse.Namespace) -> int:
    from reconstruction.data import load_capture

    scene = load_capture(args.data, downscale=args.downscale)
    info = scene.summary()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"capture {scene.root}", show_header=False)
    for key in ("format", "images", "resolution", "camera_model", "split", "masks", "sparse_points",
                "bounds"):
        table.add_row(key, str(info[key]))
    table.add_row("problems", "\n".join(info["problems"]) or "none")
    Console().print(table)
    return 0


# -- fit -----------------------------------------------------------------------------------------


def _parse_settings(method: str, pairs: list[str]) -> dict[str, Any]:
    from reconstruction.methods.base import get_method

    try:
        cls = get_method(method)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    fields = {f.name: f for f in dataclasses.fields(cls.Config)}
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise UsageError(f"--set {pair}: expected KEY=VALUE (e.g. --set lr=0.005)")
        key, value = pair.split("=", 1)
        if key not in fields:
            raise UsageError(f"--set {key}: {method} has no setting {key!r}; "
                             f"available: {', '.join(fields)}")
        default = getattr(cls.Config(), key)
        try:
            if isinstance(default, bool):
                out[key] = value.lower() in ("1", "true", "yes", "on")
            elif isinstance(default, int):
                out[key] = int(value)
            elif isinstance(default, float):
                out[key] = float(value)
            else:
                out[key] = value
        except ValueError:
            raise UsageError(f"--set {key}={value}: expected a {type(default).__name__}") from None
    return out


def run_fit(data: str, method: str, out: str, *, budget: float | None, steps: int | None,
            downscale: int, device: str, settings: dict[str, Any], quiet: bool = False,
            resume: str | None = None, bounds=None,
            checkpoint_every: float = 60.0) -> dict[str, Any]:
    """Train in-process with a rich progress bar; returns the metrics. Raises UsageError."""
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from reconstruction import protocol as P
    from reconstruction.engine import Session

    if budget is None and steps is None:
        budget = 120.0
    console = _console()
    errors: list[P.Error] = []
    finished: list[P.Finished] = []
    total = steps if steps is not None else budget
    columns = [TextColumn("[bold]{task.description}"), BarColumn(),
               TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, disable=quiet, transient=False) as bar:
        task = bar.add_task(f"fit {method}", total=total, status="loading capture")

        def emit(ev: P.Event) -> None:
            if isinstance(ev, P.Progress):
                m = ev.metrics
                done = ev.step if steps is not None else ev.seconds
                bar.update(task, completed=min(done, total),
                           status=f"step {ev.step}  loss {m.get('loss', float('nan')):.4f}  "
                                  f"psnr {m.get('psnr', float('nan')):.2f}")
            elif isinstance(ev, P.Log):
                if ev.level != "info" or not quiet:
                    bar.console.print(f"[{'yellow' if ev.level == 'warning' else 'dim'}]{ev.text}")
            elif isinstance(ev, P.Error):
                errors.append(ev)
            elif isinstance(ev, P.Finished):
                finished.append(ev)

        Session(emit).run(P.Start(data=data, method=method, out=out, steps=steps, budget=budget,
                                  downscale=downscale, device=device, settings=settings,
                                  snapshot_every=0.0, resume=resume,
                                  bounds=bounds, checkpoint_every=checkpoint_every))
    if errors:
        err = errors[0]
        if err.kind == "engine":
            console.print(err.hint)
        raise UsageError(err.message)
    return finished[0].metrics if finished else {}


def parse_bounds(value: str | None):
    """``--bounds``: a bounds.json from `recon edit` ({"min": [...], "max": [...]}) or six
    numbers "x0,y0,z0,x1,y1,z1"; returns ((min), (max)) or None."""
    if value is None:
        return None
    path = Path(value)
    try:
        if path.suffix.lower() == ".json" or path.is_file():
            data = json.loads(path.read_text())
            lo, hi = data["min"], data["max"]
        else:
            nums = [float(x) for x in value.replace(" ", ",").split(",") if x]
            if len(nums) != 6:
                raise ValueError(f"{len(nums)} numbers")
            lo, hi = nums[:3], nums[3:]
        lo = tuple(float(x) for x in lo)
        hi = tuple(float(x) for x in hi)
        if len(lo) != 3 or len(hi) != 3:
            raise ValueError("min and max need 3 numbers each")
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise UsageError(f"--bounds {value}: not a box ({exc}); give bounds.json from `recon "
                         f"edit` or six numbers x0,y0,z0,x1,y1,z1") from None
    if not all(a < b for a, b in zip(lo, hi, strict=True)):
        raise UsageError(f"--bounds {value}: min {list(lo)} must be below max {list(hi)}")
    return (lo, hi)


def _resume_plan(args: argparse.Namespace) -> dict[str, Any]:
    """What `recon fit --resume DIR|PROJECT` continues: run.json of the run folder, the
    checkpoint, and the target (the run's own, unless --steps/--budget give a new one)."""
    from reconstruction.engine import CHECKPOINT_NAME, RUN_NAME
    from reconstruction.project import ProjectError, is_project, run_dir

    target = Path(args.resume)
    if not target.is_dir():
        raise UsageError(f"--resume {target}: no such folder; give the --out folder of an "
                         f"earlier `recon fit` (or a .recon project)")
    folder = target
    if is_project(target):
        try:
            folder = run_dir(target)
        except ProjectError as exc:
            raise UsageError(str(exc)) from None
    run_file, ck = folder / RUN_NAME, folder / CHECKPOINT_NAME
    try:
        run = json.loads(run_file.read_text())
        if not isinstance(run, dict) or not isinstance(run.get("data"), str) or \
                not isinstance(run.get("method"), str):
            raise ValueError("no data or method in it")
    except FileNotFoundError:
        raise UsageError(f"--resume {target}: no {RUN_NAME} in {folder}; it was not written by "
                         f"`recon fit --out` (start a new fit instead)") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{run_file}: damaged ({exc}); start a new fit") from None
    if not ck.is_file():
        raise UsageError(f"--resume {target}: no {CHECKPOINT_NAME} yet (the run stopped before "
                         f"its first save); start it again with `recon fit {run['data']} --out "
                         f"{target}`")
    if args.data is not None and Path(args.data).resolve() != Path(run["data"]).resolve():
        raise UsageError(f"--resume {target}: that run trained on {run['data']}, not "
                         f"{args.data}; drop DATA or start a new fit")
    if args.set:
        raise UsageError("--resume continues with the run's own settings; drop --set")
    steps, budget = args.steps, args.budget
    if steps is None and budget is None:
        steps, budget = run.get("steps"), run.get("budget")
    return {"data": run["data"], "method": run["method"], "out": str(folder),
            "settings": dict(run.get("settings") or {}), "steps": steps, "budget": budget,
            "downscale": int(run.get("downscale") or 1), "bounds": run.get("bounds"),
            "resume": str(ck)}


def cmd_fit(args: argparse.Namespace) -> int:
    if _distributed(args):
        return _fit_distributed(args)
    if args.resume is not None:
        plan = _resume_plan(args)
        if args.method is not None and args.method != plan["method"]:
            raise UsageError(f"--resume: that run is method {plan['method']!r}; drop --method")
    else:
        args.method = args.method or "nerf"
        if args.data is None or args.out is None:
            raise UsageError("recon fit needs DATA and --out (or --resume DIR to continue a run)")
        data = str(ensure_capture(args.data))
        plan = {"data": data, "method": args.method, "out": args.out,
                "settings": _parse_settings(args.method, args.set or []), "steps": args.steps,
                "budget": args.budget, "downscale": args.downscale,
                "bounds": parse_bounds(args.bounds), "resume": None}
        out = Path(args.out)
        if out.suffix == ".recon":  # a project: the run goes inside it, project.json beside
            from reconstruction.project import PROJECT_FILE, new_project, write_project

            if not (out / PROJECT_FILE).is_file():
                write_project(out, new_project(data, args.method, plan["settings"], args.steps,
                                               args.budget))
            plan["out"] = str(out / "run")
    metrics = run_fit(plan["data"], plan["method"], plan["out"], budget=plan["budget"],
                      steps=plan["steps"], downscale=plan["downscale"], device=args.device,
                      settings=plan["settings"], quiet=args.quiet, bounds=plan["bounds"],
                      resume=plan["resume"], checkpoint_every=args.checkpoint_every)
    summary = {k: metrics[k] for k in ("steps", "seconds", "test_psnr") if k in metrics}
    print(json.dumps({"out": plan["out"], **summary}))
    return 0


# -- sfm -----------------------------------------------------------------------------------------


def print_sfm_report(report: dict[str, Any]) -> None:
    """The SfM report as a rich table on stderr (one row per image, then the totals)."""
    from rich.table import Table

    table = Table(title=f"structure from motion: {report['images_registered']}/"
                        f"{report['images_total']} images registered ({report['matcher']} matching)")
    for col in ("image", "registered", "reproj. error px", "3D points"):
        table.add_column(col, justify="left" if col == "image" else "right")
    reasons = {e["name"]: e["reason"] for e in report["left_out"]}
    for im in report["images"]:
        err = im.get("reprojection_error")
        table.add_row(im["name"], "yes" if im["registered"] else "[yellow]no",
                      "-" if err is None else f"{err:.2f}", str(im.get("points3D", 0)))
    for name in reasons:
        if not any(im["name"] == name for im in report["images"]):
            table.add_row(name, "[yellow]no", "-", "0")
    sec = report["seconds"]
    table.caption = (f"{report['points3D']} points, mean error {report['mean_reprojection_error']:.2f} px; "
                     + ", ".join(f"{k} {v:.1f} s" for k, v in sec.items()))
    console = _console()
    console.print(table)
    for name, why in reasons.items():
        console.print(f"[yellow]warning[/]: {name} left out: {why}")


def _sfm(input_dir: Path, out: Path, matcher: str = "auto", max_size: int | None = None,
         timeout: float | None = None, frames: int | None = None) -> dict[str, Any]:
    from reconstruction.data import sfm

    return sfm.run_sfm(input_dir, out, matcher=matcher,
                       max_size=max_size or sfm.DEFAULT_MAX_SIZE,
                       timeout=timeout or sfm.DEFAULT_TIMEOUT,
                       frames=frames or sfm.DEFAULT_FRAMES)


def is_photo_folder(path: str | Path) -> bool:
    """True for a folder of JPEG/PNG photos without cameras (no capture layout)."""
    from reconstruction.data import CaptureError, detect_format
    from reconstruction.data.sfm import list_photos

    p = Path(path).expanduser()
    if not p.is_dir() or not list_photos(p):
        return False
    try:
        detect_format(p)
    except CaptureError:
        return True
    return False


def sfm_capture_dir(photos: Path) -> Path:
    """Where `recon fit PHOTOS` keeps the cameras it made: PHOTOS/../<name>_capture.

    For a video file VIDEO.mp4 it is VIDEO_capture beside it.
    """
    from reconstruction.data.video import is_video

    photos = Path(photos).expanduser().resolve()
    name = photos.stem if is_video(photos) else photos.name
    return photos.parent / f"{name}_capture"


def ensure_capture(data: str | Path) -> Path:
    """``data`` itself, or for a plain photo folder the SfM capture made (once) beside it."""
    from reconstruction.data.sfm import report_is_current
    from reconstruction.data.video import is_video

    video = is_video(Path(data).expanduser())
    if not video and not is_photo_folder(data):
        return Path(data)
    photos = Path(data).expanduser()
    capture = sfm_capture_dir(photos)
    console = _console()
    if report_is_current(capture, photos):
        console.print(f"using the cameras in {capture} (delete it to run structure from motion again)")
        return capture
    what = "is a video" if video else "holds photos without cameras"
    console.print(f"{photos} {what}: structure from motion into {capture}")
    print_sfm_report(_sfm(photos, capture))
    return capture


def cmd_sfm(args: argparse.Namespace) -> int:
    if args.max_size is not None and args.max_size < 16:
        raise UsageError(f"--max-size {args.max_size}: use at least 16 pixels")
    if args.frames is not None and args.frames < 3:
        raise UsageError(f"--frames {args.frames}: use at least 3 frames")
    report = _sfm(Path(args.input), Path(args.out), args.matcher, args.max_size, args.timeout,
                  args.frames)
    print_sfm_report(report)
    print(json.dumps({"out": report["capture"], "registered": report["images_registered"],
                      "images": report["images_total"], "points3D": report["points3D"],
                      "seconds": report["seconds"]["total"]}))
    return 0


def cmd_scale(args: argparse.Namespace) -> int:
    from reconstruction.data.scale import rescale_capture

    pts = args.points
    record = rescale_capture(args.capture, pts[:3], pts[3:], args.distance)
    _console().print(f"scaled {args.capture} by {record['factor']:.6g} (points "
                     f"{record['distance_before']:.6g} -> {record['distance']:.6g} apart)")
    print(json.dumps({"capture": str(args.capture), "factor": record["factor"],
                      "total_factor": record["total_factor"]}))
    return 0


# -- render --------------------------------------------------------------------------------------


def load_camera_file(path: Path, width: int, height: int):
    """Cameras of a NeRF-synthetic / instant-ngp style json at the capture's resolution.

    Returns (Cameras, frame names). Intrinsics come from camera_angle_x (and _y) or
    fl_x/fl_y/cx/cy (scaled to ``width`` x ``height`` when the file states w/h).
    """
    import numpy as np

    from reconstruction.data.scene import Cameras

    try:
        meta = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UsageError(f"{path}: camera file not found; pass a transforms-style json with --cameras") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: broken JSON at line {exc.lineno} ({exc.msg}); fix the file") from None
    frames = meta.get("frames") or []
    if not frames:
        raise UsageError(f"{path}: no 'frames' in the camera file; it needs frames with file_path and transform_matrix")
    c2w, fx, fy, cx, cy, names = [], [], [], [], [], []
    for i, fr in enumerate(frames):
        try:
            m = np.asarray(fr["transform_matrix"], dtype=np.float64)
        except (KeyError, ValueError, TypeError):
            raise UsageError(f"{path}: frame {i} has no valid transform_matrix (4x4)") from None
        if m.shape != (4, 4) or not np.isfinite(m).all():
            raise UsageError(f"{path}: frame {i} transform_matrix is not a finite 4x4 matrix")
        src = {**meta, **fr}
        w0, h0 = float(src.get("w", width)), float(src.get("h", height))
        sx, sy = width / w0, height / h0
        if "fl_x" in src:
            fx_i = float(src["fl_x"]) * sx
            fy_i = float(src.get("fl_y", src["fl_x"])) * sy
        elif "camera_angle_x" in src:
            fx_i = 0.5 * width / np.tan(0.5 * float(src["camera_angle_x"]))
            fy_i = (0.5 * height / np.tan(0.5 * float(src["camera_angle_y"]))
                    if "camera_angle_y" in src else fx_i)
        else:
            raise UsageError(f"{path}: no intrinsics (camera_angle_x or fl_x) for frame {i}")
        c2w.append(m)
        fx.append(fx_i)
        fy.append(fy_i)
        cx.append(float(src["cx"]) * sx if "cx" in src else width / 2)
        cy.append(float(src["cy"]) * sy if "cy" in src else height / 2)
        fp = str(fr.get("file_path", f"frame_{i:04d}"))
        names.append(Path(fp).stem if Path(fp).suffix else Path(fp).name)
    cams = Cameras(np.stack(c2w), np.array(fx), np.array(fy), np.array(cx), np.array(cy), width, height)
    return cams, names


def _splats_from_ply(path: Path, cameras: Path):
    """A render-only Gaussian method from a bare splats.ply (e.g. written by another tool);
    the image size comes from the camera file's w/h (else 800 x 800)."""
    from reconstruction.methods.gaussian import Gaussians

    try:
        method = Gaussians.from_ply(path)
    except (ValueError, KeyError) as exc:
        raise UsageError(f"{exc}; pass a 3D Gaussian Splatting PLY") from None
    try:
        meta = json.loads(Path(cameras).read_text())
        frame = (meta.get("frames") or [{}])[0]
        size = (int(frame.get("w", meta.get("w", 800))), int(frame.get("h", meta.get("h", 800))))
        method.image_size = size
    except (OSError, ValueError, TypeError, AttributeError):
        pass  # load_camera_file reports a bad camera file
    return method


def cmd_render(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from reconstruction.engine import CHECKPOINT_NAME, restore_method

    result = Path(args.dir)
    if not (result / CHECKPOINT_NAME).exists() and (result / "splats.ply").is_file():
        method = _splats_from_ply(result / "splats.ply", Path(args.cameras))
    elif not (result / CHECKPOINT_NAME).exists():
        raise UsageError(f"{result / CHECKPOINT_NAME}: no checkpoint; run `recon fit DATA --out {result}` first")
    else:
        method = restore_method(result, args.device if args.device != "auto" else "cpu")
    w0, h0 = method.image_size
    w, h = max(1, round(w0 / args.downscale)), max(1, round(h0 / args.downscale))
    cams, names = load_camera_file(Path(args.cameras), w, h)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        img = method.render(cams.subset([i]))[0]
        Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)).save(out / f"{name}.png")
    print(json.dumps({"rendered": len(names), "out": str(out), "size": [w, h]}))
    return 0


# -- export --------------------------------------------------------------------------------------


def _export_target(result: Path, out: str | None, fmt: str | None, faces: int | None,
                   formats: tuple[str, ...]) -> tuple[Path, str]:
    """Where `recon export` writes and in which format (--format, else --out's suffix, else ply)."""
    suffix = Path(out).suffix.lower().lstrip(".") if out else ""
    if fmt and suffix in formats and suffix != fmt:
        raise UsageError(f"--out {out} ends in .{suffix} but --format is {fmt}; "
                         f"change one so they agree (or drop --format)")
    fmt = fmt or (suffix if suffix in formats else "ply")
    name = f"mesh_{faces}.{fmt}" if faces else f"mesh.{fmt}"
    if out is None:
        return result / name, fmt
    target = Path(out)
    if target.is_dir() or out.endswith(("/", os.sep)):
        return target / name, fmt
    return target, fmt


CURVE_FORMATS = ("json", "obj", "ply", "dxf", "step")


def _export_curves(result: Path, args: argparse.Namespace) -> int:
    """`recon export` on an edge result: its curves as JSON, OBJ polylines, PLY edges or DXF."""
    import numpy as np

    from reconstruction.extract.curves import (
        read_curves,
        sample_curve,
        write_curves_dxf,
        write_curves_json,
        write_curves_obj,
        write_curves_ply,
        write_curves_step,
    )

    src = result / "curves.json"
    fmt = args.format
    suffix = Path(args.out).suffix.lower().lstrip(".") if args.out else ""
    if fmt is None:
        fmt = suffix if suffix in CURVE_FORMATS else "dxf"
    if fmt not in CURVE_FORMATS:
        raise UsageError(f"--format {fmt}: curves export as {', '.join(CURVE_FORMATS)}; "
                         f"{fmt} is a mesh format (a result of --method nerf or sdf)")
    if args.faces is not None:
        raise UsageError("--faces applies to meshes; curves have no faces (drop --faces)")
    try:
        curves = read_curves(src)
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{src}: not a curves file ({exc}); re-run `recon fit DATA --method edge`") from None
    if not curves:
        raise UsageError(f"{src}: holds no curves (the edge field had found no edges); fit again "
                         f"with a longer --budget, or lower --set point_threshold=...")
    out = Path(args.out) if args.out else result / f"curves.{fmt}"
    if args.out and (out.is_dir() or args.out.endswith(("/", os.sep))):
        out = out / f"curves.{fmt}"
    pts = np.concatenate([sample_curve(c, n=16) for c in curves]) if curves else np.zeros((1, 3))
    spacing = max(float(np.ptp(pts, 0).max()), 1e-9) / 400
    try:
        if fmt == "json":
            if not (out.exists() and out.resolve() == src.resolve()):
                write_curves_json(out, curves)
        elif fmt == "obj":
            write_curves_obj(out, curves, spacing)
        elif fmt == "ply":
            write_curves_ply(out, curves, spacing)
        elif fmt == "step":
            try:
                write_curves_step(out, curves)
            except RuntimeError as exc:
                raise UsageError(str(exc)) from None
        else:
            write_curves_dxf(out, curves)
    except OSError as exc:
        raise UsageError(f"{out}: cannot be written ({exc.strerror or exc}); choose another --out "
                         f"or make its folder writable") from None
    kinds = {k: sum(c["type"] == k for c in curves) for k in ("line", "bezier", "polyline")}
    print(json.dumps({"out": str(out), "format": fmt, "curves": len(curves), **kinds}))
    return 0


def _export_splat_mesh(result: Path, args: argparse.Namespace) -> int:
    """`recon export` of a Gaussian result: marching cubes on the splat density."""
    from reconstruction.extract.mesh_io import MESH_FORMATS, decimate, write_mesh
    from reconstruction.extract.splat_io import read_splats_ply
    from reconstruction.extract.splat_mesh import splat_mesh

    if args.faces is not None and args.faces < 1:
        raise UsageError(f"--faces {args.faces}: the face budget must be at least 1")
    src = result / "splats.ply"
    try:
        splats = read_splats_ply(src)
    except (ValueError, KeyError) as exc:
        raise UsageError(f"{exc}; re-run `recon fit DATA --method gaussian` to write it again") from None
    mesh = splat_mesh(splats)
    if len(mesh["faces"]) == 0:
        raise UsageError(f"{src}: the splats enclose no surface yet; fit again with a longer --budget")
    out, fmt = _export_target(result, args.out, args.format, args.faces, MESH_FORMATS)
    verts, faces, colors = decimate(mesh["vertices"], mesh["faces"], mesh["colors"], args.faces or 0)
    try:
        write_mesh(out, verts, faces, colors, file_type=fmt)
    except OSError as exc:
        raise UsageError(f"{out}: cannot be written ({exc.strerror or exc}); choose another --out") from None
    print(json.dumps({"out": str(out), "format": fmt, "vertices": len(verts), "faces": len(faces),
                      "colors": fmt != "stl", "source": "splats.ply"}))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import trimesh

    from reconstruction.extract.mesh_io import MESH_FORMATS, decimate, write_mesh

    result = Path(args.dir)
    src = result / "mesh.ply"
    if not result.is_dir():
        raise UsageError(f"{result}: no such result folder; pass the folder written by "
                         f"`recon fit DATA --out {result}`")
    if not src.is_file() and (result / "splats.ply").is_file():
        return _export_splat_mesh(result, args)
    if not src.is_file():
        if (result / "curves.json").is_file():
            return _export_curves(result, args)
        if (result / "splats.ply").is_file():
            raise UsageError(f"{result}: holds Gaussian splats (splats.ply), not a mesh; mesh "
                             f"export needs a result of `recon fit DATA --method nerf` or `sdf`")
        raise UsageError(f"{src}: no mesh in this result; run "
                         f"`recon fit DATA --method nerf --out {result}` first")
    if args.faces is not None and args.faces < 1:
        raise UsageError(f"--faces {args.faces}: the face budget must be at least 1")
    out, fmt = _export_target(result, args.out, args.format, args.faces, MESH_FORMATS)
    try:
        mesh = trimesh.load(src, process=False, force="mesh")
    except Exception as exc:  # trimesh raises many kinds on a damaged file
        raise UsageError(f"{src}: cannot be read as a mesh ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else 'damaged'}); "
                         f"re-run `recon fit` to write it again") from None
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise UsageError(f"{src}: has no faces (the field had no surface yet); fit again "
                         f"with a longer --budget (nerf: or a lower --set mesh_threshold=...)")
    colors = mesh.visual.vertex_colors[:, :3] if mesh.visual.kind == "vertex" else None
    verts, faces, colors = decimate(mesh.vertices, mesh.faces, colors, args.faces or 0)
    try:
        if not (out.exists() and out.resolve() == src.resolve() and len(faces) == len(mesh.faces)):
            # (exporting mesh.ply unchanged onto itself would only risk the original)
            write_mesh(out, verts, faces, colors, file_type=fmt)
    except OSError as exc:
        blocker = next((a for a in out.parents if a.exists()), None)
        why = (f"{blocker} is a file, not a folder" if blocker is not None and not blocker.is_dir()
               else exc.strerror or str(exc))
        raise UsageError(f"{out}: cannot be written ({why}); choose another --out or make its "
                         f"folder writable") from None
    except ValueError as exc:
        raise UsageError(f"{src}: {exc}") from None
    if fmt == "stl" and colors is not None:
        _console().print("note: STL stores no vertex colours; use --format ply or glb to keep them")
    print(json.dumps({"out": str(out), "format": fmt, "vertices": len(verts), "faces": len(faces),
                      "colors": colors is not None and fmt != "stl"}))
    return 0


# -- batch and distributed fit -----------------------------------------------------------------


def _distributed(args: argparse.Namespace) -> bool:
    """True when `recon fit` trains data-parallel (--nproc N > 1, or under torchrun)."""
    from reconstruction.distributed import requested

    return requested(args)


def _fit_distributed(args: argparse.Namespace) -> int:
    from reconstruction.distributed import fit_distributed

    return fit_distributed(args)


def cmd_batch(args: argparse.Namespace) -> int:
    from reconstruction.batch import cmd_batch as run

    return run(args)


# -- edit ----------------------------------------------------------------------------------------
def cmd_edit(args: argparse.Namespace) -> int:
    """Apply an edits file (crop, cage deformation, curve edits) to a result; write every format."""
    from reconstruction.editing import EditError, apply_all, load_result, parse_ops, write_result

    ops_path = Path(args.ops)
    try:
        data = json.loads(ops_path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{ops_path}: no such edits file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{ops_path}: not a JSON edits file ({exc}); it holds a list of "
                         f"operations like [{{\"op\": \"crop\", \"min\": [...], \"max\": [...]}}]") from None
    out = Path(args.out)
    result = Path(args.dir)
    if out.exists() and result.exists() and out.resolve() == result.resolve():
        raise UsageError(f"--out {out}: is the result folder itself; write the edited result "
                         f"into another folder so the original stays")
    try:
        ops = parse_ops(data)
        doc = apply_all(load_result(result), ops)
    except EditError as exc:
        raise UsageError(f"{ops_path}: {exc}") from None
    try:
        files = write_result(doc, out, ops)
    except OSError as exc:
        raise UsageError(f"{out}: cannot be written ({exc.strerror or exc}); choose another "
                         f"--out or make its folder writable") from None
    summary: dict[str, Any] = {"out": str(out), "ops": len(ops), "files": sorted(Path(f).name for f in files.values())}
    if doc.mesh is not None:
        summary.update(vertices=int(len(doc.mesh.vertices)), faces=int(len(doc.mesh.faces)))
    if doc.curves is not None:
        summary["curves"] = len(doc.curves)
    print(json.dumps(summary))
    return 0


# -- demo ----------------------------------------------------------------------------------------


def _demo_in_window(capture: Path, result: Path, args: argparse.Namespace) -> int:
    """Train the demo in the window (the mesh grows in its viewport); returns its exit code."""
    cmd = [sys.executable, "-m", "app.main", str(capture), "--method", args.method, "--start",
           "--budget", str(args.budget), "--out", str(result)]
    _console().print(f"opening the window: {args.method} on {capture} for {args.budget:g} s "
                     f"(close it any time; the result goes to {result})")
    return subprocess.run(cmd, check=False).returncode


def cmd_demo(args: argparse.Namespace) -> int:
    out = Path(args.out)
    capture = out / "capture"
    console = _console()
    if not (capture / "transforms_train.json").exists():
        console.print(f"building the demo capture in {capture} ...")
        subprocess.run([sys.executable, "-m", "render.demo_capture", "--out", str(capture),
                        "--size", str(args.size)], check=True)
    result = out / "result"
    show = args.show if args.show is not None else (
        bool(os.environ.get("DISPLAY")) and sys.stdin.isatty() and not os.environ.get("CI"))
    if show:
        code = _demo_in_window(capture, result, args)
        if code != 0:
            raise UsageError(f"the window ended with exit code {code}; run `recon demo "
                             f"--no-show` for the headless demo")
        metrics_path = result / "metrics.json"
        metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
        print(json.dumps({"out": str(out), **{k: metrics[k] for k in ("steps", "seconds", "test_psnr")
                                              if k in metrics}}))
        return 0
    metrics = run_fit(str(capture), args.method, str(result), budget=args.budget, steps=None,
                      downscale=1, device=args.device, settings={})
    preview = out / "preview.png"
    cmd = [sys.executable, "-m", "render.preview", str(result / "mesh.ply"), "--out", str(preview),
           "--gt", str(capture / "gt" / "mesh.ply")]
    subprocess.run(cmd, check=True)
    console.print(f"[bold green]demo done[/]: test PSNR {metrics.get('test_psnr', float('nan')):.2f} dB "
                  f"after {metrics.get('steps')} steps ({metrics.get('seconds')} s)")
    console.print(f"  mesh     {result / 'mesh.ply'}\n  metrics  {result / 'metrics.json'}\n"
                  f"  picture  {preview}")
    print(json.dumps({"out": str(out), **{k: metrics[k] for k in ("steps", "seconds", "test_psnr") if k in metrics}}))
    return 0


# -- methods -------------------------------------------------------------------------------------


def cmd_methods(args: argparse.Namespace) -> int:
    from reconstruction.engine import describe_methods

    methods = describe_methods()
    if args.json:
        print(json.dumps({"methods": methods}))
        return 0
    for m in methods:
        print(f"{m['name']}: {m['doc']}")
        for f in m["fields"]:
            print(f"  {f['name']} ({f['type']}, default {f['default']!r}): {f['doc']}")
    return 0


# -- entry ---------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="recon", description="ReconStudio: 3D neural reconstruction, headless.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("info", help="print what was detected in a capture")
    s.add_argument("data")
    s.add_argument("--downscale", type=int, default=1)
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("sfm", help="recover the cameras of a folder of photos (COLMAP capture)")
    s.add_argument("input", help="folder of JPEG/PNG photos (optional masks/ inside), or a video "
                                 "(.mp4 .mov .avi .mkv .webm)")
    s.add_argument("--out", required=True, help="capture folder to write (images/, sparse/0/, sfm_report.json)")
    s.add_argument("--matcher", default="auto", choices=["auto", "exhaustive", "sequential"],
                   help="auto: sequential for more than 60 images or video-frame names, else exhaustive")
    s.add_argument("--max-size", type=int, default=None,
                   help="resize so the longer side is at most PX (default 1600)")
    s.add_argument("--timeout", type=float, default=None, help="seconds before SfM is stopped (default 3600)")
    s.add_argument("--frames", type=int, default=None,
                   help="for a video: split it into N windows and keep the sharpest frame of "
                        "each (default 120, at most the frame count)")
    s.set_defaults(func=cmd_sfm)

    s = sub.add_parser("scale", help="give a capture from `recon sfm` metric scale from two points")
    s.add_argument("capture", help="capture folder written by `recon sfm` (sparse/0/)")
    s.add_argument("--points", type=float, nargs=6, required=True, metavar=("X1", "Y1", "Z1", "X2", "Y2", "Z2"),
                   help="two points in the capture's current coordinates")
    s.add_argument("--distance", type=float, required=True, metavar="METRES",
                   help="their real distance: the capture is scaled so they end up this far apart")
    s.set_defaults(func=cmd_scale)

    s = sub.add_parser("fit", help="train a method on a capture and write its outputs")
    s.add_argument("data", nargs="?", default=None,
                   help="capture folder (NeRF-synthetic, instant-ngp, nerfstudio, IDR/NeuS, "
                        "COLMAP), a folder of photos or a video (cameras by `recon sfm` first)")
    s.add_argument("--method", default=None, help="nerf (default), sdf, edge or gaussian")
    s.add_argument("--out", default=None,
                   help="output folder (NAME.recon: a project, the run inside it); the training "
                        "state is saved there as it goes")
    s.add_argument("--resume", default=None, metavar="DIR",
                   help="continue the run in DIR (an earlier --out, or a .recon project) with "
                        "its own capture, method and settings, to its step or budget (or to a "
                        "new --steps/--budget)")
    s.add_argument("--checkpoint-every", type=float, default=60.0, metavar="SECONDS",
                   help="seconds between saves of the training state (default 60; 0: only at "
                        "the end)")
    s.add_argument("--nproc", type=int, default=1, metavar="N", help="train data-parallel in N local processes (torch.distributed; under torchrun: its ranks); see docs/scaling.md")
    s.add_argument("--budget", type=float, default=None, help="seconds of training")
    s.add_argument("--steps", type=int, default=None, help="training steps")
    s.add_argument("--downscale", type=int, default=1, help="divide image resolution by N")
    s.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    s.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a method setting")
    s.add_argument("--bounds", default=None, metavar="BOX",
                   help="train inside this world box instead of the capture's bounds: "
                        "bounds.json from `recon edit` (a crop) or x0,y0,z0,x1,y1,z1")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_fit)

    s = sub.add_parser("methods", help="list the methods and their settings (--set KEY=VALUE)")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_methods)

    s = sub.add_parser("render", help="render a trained result from the cameras of a json file")
    s.add_argument("dir", help="result folder written by `recon fit`")
    s.add_argument("--cameras", required=True, help="transforms-style json (frames with transform_matrix)")
    s.add_argument("--out", required=True, help="folder for one PNG per frame")
    s.add_argument("--downscale", type=int, default=1)
    s.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    s.set_defaults(func=cmd_render)

    s = sub.add_parser("export", help="export a result's mesh (or curves) to another format")
    s.add_argument("dir", help="result folder holding mesh.ply or curves.json (written by `recon fit`)")
    s.add_argument("--format", default=None, choices=["ply", "obj", "glb", "stl", "json", "dxf", "step"],
                   help="file format (default: from --out's suffix, else ply for meshes and dxf "
                        "for curves); meshes: ply and glb keep vertex colours, obj keeps them as "
                        "the common v x y z r g b extension, stl has none; curves: json "
                        "(curves.json schema), obj (polylines), ply (vertices and edges), dxf "
                        "(LINE and SPLINE entities), step (Open CASCADE edges; the step extra)")
    s.add_argument("--faces", type=int, default=None, help="decimate to at most N faces")
    s.add_argument("--out", default=None,
                   help="output file, or a folder (default: DIR/mesh.FORMAT, or "
                        "DIR/mesh_N.FORMAT with --faces N)")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("edit", help="apply edits (crop, cage deformation, curve edits) to a "
                                    "result and write it in every format")
    s.add_argument("dir", help="result folder holding mesh.ply and/or curves.json")
    s.add_argument("--ops", required=True,
                   help="JSON list of operations, applied in order (the window's edits.json, or "
                        "e.g. [{\"op\": \"cage\", \"kind\": \"polycube\", \"cubes\": 4}, "
                        "{\"op\": \"scale_box\", \"box\": 0, \"factor\": 1.2}]; "
                        "see docs/editing.md)")
    s.add_argument("--out", required=True, help="folder for the edited mesh.*/curves.*, "
                                               "edits.json, cage.json, bounds.json")
    s.set_defaults(func=cmd_edit)

    s = sub.add_parser("batch", help="reconstruct many captures as Ray tasks (one per capture); "
                                     "summary.csv and summary.json in --out")
    s.add_argument("inputs", help="folder of captures (sub-folders: captures or photo folders; "
                                  "videos) or a manifest (one path per line, or a JSON list)")
    s.add_argument("--method", default="nerf", help="nerf (default), sdf, edge or gaussian")
    s.add_argument("--out", required=True, help="output folder: OUT/NAME per capture, summary.*")
    s.add_argument("--address", default="local",
                   help="local (default: start and stop a Ray instance here), auto (the running "
                        "cluster) or ray://HOST:PORT (Ray client)")
    s.add_argument("--cpus-per-task", type=float, default=1.0, metavar="N",
                   help="CPUs each capture's task declares (and its torch threads)")
    s.add_argument("--gpus-per-task", type=float, default=0.0, metavar="N",
                   help="GPUs each capture's task declares (0: CPU only)")
    s.add_argument("--num-cpus", type=int, default=None, metavar="N",
                   help="with --address local: CPUs the local Ray instance offers (default all)")
    s.add_argument("--retries", type=int, default=2,
                   help="extra attempts after a crash (bad input is not retried; default 2)")
    s.add_argument("--budget", type=float, default=None, help="seconds of training per capture")
    s.add_argument("--steps", type=int, default=None, help="training steps per capture")
    s.add_argument("--downscale", type=int, default=None, help="divide image resolution by N")
    s.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    s.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a method setting")
    s.add_argument("--export", default=None, choices=["ply", "obj", "glb", "stl"],
                   help="also export each result to this format (recon export)")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_batch)

    s = sub.add_parser("demo", help="build the demo capture, reconstruct it and show the result")
    s.add_argument("--out", default="demo_out")
    s.add_argument("--method", default="sdf", help="method to reconstruct with (default sdf)")
    s.add_argument("--budget", type=float, default=180.0)
    s.add_argument("--size", type=int, default=128)
    s.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    g = s.add_mutually_exclusive_group()
    g.add_argument("--show", dest="show", action="store_true", default=None,
                   help="train in the ReconStudio window (default when a display and a "
                        "terminal are there and CI is not set)")
    g.add_argument("--no-show", dest="show", action="store_false",
                   help="headless: fit, write preview.png, print one JSON line")
    s.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for name in ("downscale",):
        if getattr(args, name, 1) is not None and getattr(args, name, 1) < 1:
            print(f"recon: error: --{name} must be >= 1", file=sys.stderr)
            return EXIT_BAD_INPUT
    from reconstruction.data import CaptureError
    from reconstruction.data.paths import UnsafePathError
    from reconstruction.engine import CheckpointError

    try:
        return int(args.func(args) or 0)
    except (CaptureError, UsageError, CheckpointError, UnsafePathError) as exc:
        print(f"recon: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:  # disk full, permission denied, ... while reading or writing
        where = exc.filename or "a file"
        print(f"recon: error: {where}: {exc.strerror or exc}; free some space or choose "
              f"another folder, then run the command again", file=sys.stderr)
        return EXIT_BAD_INPUT
    except MemoryError:
        print("recon: error: out of memory; pass --downscale 2 (or more) or use fewer "
              "images", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("recon: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    # run the imported module's main, so `python -m reconstruction.cli` and the modules it
    # imports share one UsageError (and every other class) with `recon`
    from reconstruction.cli import main as _main

    sys.exit(_main())
