"""Writing meshes (through trimesh), atomically.

What each format keeps (read back with ``trimesh.load(path, process=False)``):

- ``ply`` (binary): vertices in order as float32, faces in order, RGBA uint8 vertex colours.
- ``glb`` (glTF 2.0 binary): the same, plus unit vertex normals for smooth shading; colours
  are ``COLOR_0`` (normalised unsigned bytes, RGBA). Positions are the world coordinates as
  written, with no up-axis change (glTF viewers assume +Y up).
- ``obj`` (text): vertices in order with 8 decimals, faces in order; colours as the common
  ``v x y z r g b`` extension (floats in [0, 1]; trimesh, open3d, MeshLab and Blender read
  it), which round-trips to the same 8-bit values.
- ``stl`` (binary): triangles as float32 corner positions with face normals; no colours and
  no shared vertices, so readers weld corners by position (``trimesh.load`` does by default)
  and a closed surface whose vertices are distinct positions (``marching_cubes`` output)
  loads watertight.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import trimesh

from reconstruction.atomic import atomic_write

MESH_FORMATS = ("ply", "obj", "glb", "stl")


def _color_u8(colors: np.ndarray, n: int) -> np.ndarray:  # [n, 4] uint8 RGBA
    """colors: [n, 3|4] float in [0, 1] or uint8."""
    c = np.asarray(colors)
    if c.ndim != 2 or c.shape[0] != n or c.shape[1] not in (3, 4):
        raise ValueError(f"colors must be [{n}, 3] or [{n}, 4] (one per vertex), got {c.shape}")
    if c.dtype != np.uint8:
        c = (np.clip(np.nan_to_num(c.astype(np.float64)), 0, 1) * 255 + 0.5).astype(np.uint8)
    if c.shape[1] == 3:
        c = np.concatenate([c, np.full((n, 1), 255, np.uint8)], 1)
    return c


def mesh_bytes(
    file_type: str,
    vertices: np.ndarray,  # [V, 3]
    faces: np.ndarray,  # [F, 3] indices into vertices
    colors: np.ndarray | None = None,  # [V, 3|4] float in [0, 1] or uint8
) -> bytes:
    """The file contents of the mesh in ``file_type`` (ply, obj, glb, stl).

    Vertices and faces are written as given (no merging, reordering or clean-up), so
    per-vertex colours stay attached to their vertices. A mesh without faces (a field that
    has no surface yet) gives a valid empty file. Raises ValueError on an unknown format,
    non-finite positions or out-of-range face indices.
    """
    fmt = file_type.lower().lstrip(".")
    if fmt not in MESH_FORMATS:
        raise ValueError(f"unknown mesh format {file_type!r}; use one of {', '.join(MESH_FORMATS)}")
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces)
    if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3:
        raise ValueError(f"expected vertices [V, 3] and faces [F, 3], got {v.shape} and {f.shape}")
    if len(f) == 0:
        return _empty(fmt)
    if not np.isfinite(v).all():
        raise ValueError("the mesh has non-finite vertex positions")
    if not np.issubdtype(f.dtype, np.integer) or f.min() < 0 or f.max() >= len(v):
        raise ValueError(f"face indices must be integers in [0, {len(v)})")
    mesh = trimesh.Trimesh(vertices=v, faces=f.astype(np.int64), process=False)
    if colors is not None and len(colors):
        mesh.visual.vertex_colors = _color_u8(colors, len(v))
    if fmt == "glb":
        data = trimesh.exchange.gltf.export_glb(mesh, include_normals=True, unitize_normals=True)
    elif fmt == "obj":
        # no normals: "f a//a" faces gain nothing here and some readers split vertices on them
        data = trimesh.exchange.obj.export_obj(mesh, include_normals=False, include_color=True,
                                               include_texture=False, digits=8)
    else:
        data = mesh.export(file_type=fmt)
    return data if isinstance(data, bytes) else data.encode()


def _empty(fmt: str) -> bytes:
    """A valid file of ``fmt`` holding no triangles."""
    if fmt == "glb":  # a scene without meshes: header and JSON chunk only
        doc = json.dumps({"asset": {"version": "2.0", "generator": "ReconStudio"},
                          "scene": 0, "scenes": [{"nodes": []}]}).encode()
        doc += b" " * (-len(doc) % 4)
        return struct.pack("<4sII", b"glTF", 2, 20 + len(doc)) + struct.pack(
            "<II", len(doc), 0x4E4F534A) + doc
    if fmt == "obj":
        return b"# empty mesh\n"
    empty = trimesh.Trimesh(np.zeros((0, 3)), np.zeros((0, 3), np.int64), process=False)
    return empty.export(file_type=fmt)


def write_mesh(
    path: Path,
    vertices: np.ndarray,  # [V, 3]
    faces: np.ndarray,  # [F, 3]
    colors: np.ndarray | None = None,  # [V, 3|4] float in [0, 1] or uint8
    file_type: str | None = None,
) -> Path:
    """Write a mesh in ``file_type`` (default: ``path``'s suffix); temp file + rename.

    See the module docstring for what each format keeps. Raises ValueError for a bad mesh or
    format and OSError when ``path`` cannot be written (nothing is left behind then).
    """
    path = Path(path)
    data = mesh_bytes(file_type or path.suffix, vertices, faces, colors)
    return atomic_write(path, data)


def decimate(
    vertices: np.ndarray,  # [V, 3]
    faces: np.ndarray,  # [F, 3]
    colors: np.ndarray | None,  # [V, C] per-vertex attributes (colours), or None
    max_faces: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Quadric decimation (fast-simplification through trimesh) down to ``max_faces``.

    Vertex colours follow: each kept vertex takes the colour of the nearest original vertex.
    The result has at most ``max_faces`` faces; ``max_faces <= 0`` means no limit.
    """
    if max_faces <= 0 or len(faces) <= max_faces:
        return vertices, faces, colors
    from scipy.spatial import cKDTree

    mesh = trimesh.Trimesh(vertices=np.asarray(vertices, np.float64), faces=np.asarray(faces),
                           process=False)
    target = int(max_faces)
    small = mesh.simplify_quadric_decimation(face_count=target)
    while len(small.faces) > max_faces and target > 1:
        # the simplifier may stop short of its target; aim lower until the budget holds
        target = max(1, target - (len(small.faces) - max_faces))
        small = mesh.simplify_quadric_decimation(face_count=target)
    new_colors = None
    if colors is not None and len(colors):
        new_colors = np.asarray(colors)[cKDTree(mesh.vertices).query(small.vertices)[1]]
    return (np.asarray(small.vertices, np.float32), np.asarray(small.faces, np.int64), new_colors)
