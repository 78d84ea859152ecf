"""Reading a result folder into an :class:`EditDocument` and writing the edited result.

A result folder (``recon fit --out DIR``) has ``mesh.ply`` (nerf, sdf) and/or
``curves.json`` (edge). The edited result is written in every export format:

- ``mesh.ply``, ``mesh.obj``, ``mesh.glb``, ``mesh.stl`` (see :mod:`reconstruction.extract.mesh_io`);
- ``curves.json``, ``curves.obj``, ``curves.ply``, ``curves.dxf`` and, when Open CASCADE is
  installed (the ``step`` extra), ``curves.step``;
- ``edits.json``: the operations applied, in order (``recon edit --ops`` reads it back);
- ``cage.json``: the cage, when there is one; ``bounds.json``: the crop box, when there is
  one (``recon fit DATA --bounds bounds.json`` trains inside it).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from reconstruction.editing.ops import EditDocument, EditError, EditOp, Mesh

MESH_OUTPUTS = ("ply", "obj", "glb", "stl")
CURVE_OUTPUTS = ("json", "obj", "ply", "dxf", "step")


def read_mesh_file(path: Path) -> Mesh:
    import trimesh

    try:
        m = trimesh.load(path, process=False, force="mesh")
    except Exception as exc:  # trimesh raises many kinds for a broken file
        raise EditError(f"{path}: not a readable mesh ({type(exc).__name__}: {exc})") from None
    colors = None
    if getattr(m.visual, "kind", None) == "vertex":
        colors = np.asarray(m.visual.vertex_colors, np.uint8)
    return Mesh.of(np.asarray(m.vertices, np.float64), np.asarray(m.faces, np.int64), colors)


def load_result(result: str | Path) -> EditDocument:
    """The mesh and curves of a result folder (or of a mesh / curves file)."""
    from reconstruction.extract.curves import read_curves

    p = Path(result)
    if p.is_file():
        files = {"mesh": p} if p.suffix.lower() != ".json" else {"curves": p}
    elif p.is_dir():
        files = {k: p / n for k, n in (("mesh", "mesh.ply"), ("curves", "curves.json"))
                 if (p / n).is_file()}
    else:
        raise EditError(f"{p}: no such result folder; give the --out folder of `recon fit`")
    if not files:
        raise EditError(f"{p}: holds neither mesh.ply nor curves.json; fit with --method "
                        f"nerf, sdf or edge first")
    doc = EditDocument()
    if "mesh" in files:
        doc.mesh = read_mesh_file(files["mesh"])
    if "curves" in files:
        try:
            doc.curves = read_curves(files["curves"])
        except (ValueError, KeyError, TypeError) as exc:
            raise EditError(f"{files['curves']}: not a curves file ({exc})") from None
    return doc


def curve_spacing(curves: list[dict]) -> float:
    """Sampling step for polyline exports: 1/400 of the curves' extent."""
    from reconstruction.extract.curves import sample_curve

    if not curves:
        return 1.0
    pts = np.concatenate([sample_curve(c, n=16) for c in curves])
    return max(float(np.ptp(pts, 0).max()), 1e-9) / 400


def _write_json(path: Path, data) -> None:
    from reconstruction.atomic import atomic_write

    atomic_write(path, json.dumps(data, indent=1))


def write_result(doc: EditDocument, out: str | Path, ops: list[EditOp]) -> dict[str, str]:
    """Write the edited document into ``out`` (see the module docstring); returns the files."""
    from reconstruction.extract import curves as C
    from reconstruction.extract.mesh_io import write_mesh

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    if doc.mesh is not None:
        m = doc.mesh
        for fmt in MESH_OUTPUTS:
            files[f"mesh.{fmt}"] = str(write_mesh(out / f"mesh.{fmt}", m.vertices, m.faces,
                                                  m.colors))
    if doc.curves is not None:
        spacing = curve_spacing(doc.curves)
        files["curves.json"] = str(C.write_curves_json(out / "curves.json", doc.curves))
        files["curves.obj"] = str(C.write_curves_obj(out / "curves.obj", doc.curves, spacing))
        files["curves.ply"] = str(C.write_curves_ply(out / "curves.ply", doc.curves, spacing))
        files["curves.dxf"] = str(C.write_curves_dxf(out / "curves.dxf", doc.curves))
        try:
            files["curves.step"] = str(C.write_curves_step(out / "curves.step", doc.curves))
        except RuntimeError:
            pass  # Open CASCADE is not installed (pip install 'reconstudio[step]')
    _write_json(out / "edits.json", {"ops": [op.to_json() for op in ops]})
    files["edits.json"] = str(out / "edits.json")
    if doc.cage is not None:
        _write_json(out / "cage.json", doc.cage.to_json())
        files["cage.json"] = str(out / "cage.json")
    if doc.crop is not None:
        _write_json(out / "bounds.json", {"min": doc.crop[0], "max": doc.crop[1]})
        files["bounds.json"] = str(out / "bounds.json")
    return files
