"""Writing meshes (through trimesh), atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import trimesh


def write_mesh(
    path: Path,
    vertices: np.ndarray,  # [V, 3]
    faces: np.ndarray,  # [F, 3]
    colors: np.ndarray | None = None,  # [V, 3] float in [0, 1] or uint8
) -> Path:
    """Write a mesh in the format of ``path``'s suffix (ply, obj, glb, stl); temp file + rename."""
    path = Path(path)
    mesh = trimesh.Trimesh(vertices=np.asarray(vertices, np.float64), faces=np.asarray(faces),
                           process=False)
    if colors is not None and len(colors):
        c = np.asarray(colors)
        if c.dtype != np.uint8:
            c = (np.clip(c, 0, 1) * 255 + 0.5).astype(np.uint8)
        mesh.visual.vertex_colors = np.concatenate([c, np.full((len(c), 1), 255, np.uint8)], 1)
    data = mesh.export(file_type=path.suffix.lstrip(".").lower())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    os.replace(tmp, path)
    return path


def decimate(
    vertices: np.ndarray,  # [V, 3]
    faces: np.ndarray,  # [F, 3]
    colors: np.ndarray | None,  # [V, C] per-vertex attributes (colours), or None
    max_faces: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Quadric decimation (fast-simplification through trimesh) down to ``max_faces``.

    Vertex colours follow: each kept vertex takes the colour of the nearest original vertex.
    """
    if max_faces <= 0 or len(faces) <= max_faces:
        return vertices, faces, colors
    from scipy.spatial import cKDTree

    mesh = trimesh.Trimesh(vertices=np.asarray(vertices, np.float64), faces=np.asarray(faces),
                           process=False)
    small = mesh.simplify_quadric_decimation(face_count=int(max_faces))
    new_colors = None
    if colors is not None and len(colors):
        new_colors = np.asarray(colors)[cKDTree(mesh.vertices).query(small.vertices)[1]]
    return (np.asarray(small.vertices, np.float32), np.asarray(small.faces, np.int64), new_colors)
