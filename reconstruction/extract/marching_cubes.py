"""Scalar field -> triangle mesh with scikit-image's marching cubes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from skimage import measure
from torch import Tensor


@torch.no_grad()
def sample_grid(
    fn: Callable[[Tensor], Tensor],  # points [N, 3] -> values [N]
    lo: np.ndarray,  # [3] box corner
    hi: np.ndarray,  # [3] opposite corner
    resolution: int | tuple[int, int, int],  # points per side (or per axis)
    mask_fn: Callable[[Tensor], Tensor] | None = None,  # points [N, 3] -> bool [N]: evaluate here
    fill: float = 0.0,
    chunk: int = 1 << 17,
) -> np.ndarray:  # [X, Y, Z] float32, indexed [i, j, k] along x, y, z
    """Evaluate ``fn`` on a regular grid of points spanning [lo, hi] (corners included)."""
    shape = (resolution,) * 3 if isinstance(resolution, int) else tuple(int(r) for r in resolution)
    axes = [torch.linspace(float(lo[i]), float(hi[i]), shape[i]) for i in range(3)]
    out = torch.full(shape, fill, dtype=torch.float32)
    xs, ys = torch.meshgrid(axes[0], axes[1], indexing="ij")
    plane = torch.stack([xs.reshape(-1), ys.reshape(-1)], -1)  # [X * Y, 2]
    per_z = plane.shape[0]
    # walk the grid z-slab by z-slab so memory stays small at high resolution
    slabs = max(1, chunk // per_z)
    for k0 in range(0, shape[2], slabs):
        zs = axes[2][k0:k0 + slabs]
        pts = torch.cat([
            plane.repeat_interleave(zs.numel(), 0),
            zs.repeat(per_z)[:, None],
        ], -1)  # [X * Y * nz, 3] ordered (i, j, k) with k fastest within the slab
        vals = torch.full((pts.shape[0],), fill)
        sel = mask_fn(pts) if mask_fn is not None else torch.ones(pts.shape[0], dtype=torch.bool)
        if sel.any():
            vals[sel] = fn(pts[sel]).float()
        out[:, :, k0:k0 + zs.numel()] = vals.view(shape[0], shape[1], zs.numel())
    return out.numpy()


def keep_largest_component(
    sdf: np.ndarray,  # [X, Y, Z] signed distances (negative inside)
) -> np.ndarray:  # [X, Y, Z] the same with every inside piece but the largest made outside
    """Leave only the largest connected inside region (26-connected voxels), so the mesh is
    one piece: floaters and small disconnected blobs become empty space."""
    from scipy import ndimage

    inside = sdf < 0
    labels, n = ndimage.label(inside, structure=np.ones((3, 3, 3), bool))
    if n <= 1:
        return sdf
    sizes = np.bincount(labels.ravel())[1:]
    drop = inside & (labels != 1 + int(np.argmax(sizes)))
    out = sdf.copy()
    out[drop] = np.abs(out[drop]) + 1e-6
    return out


def solidify(
    volume: np.ndarray,  # [X, Y, Z] density-like field (object where values > level)
    level: float,
    min_component: float = 0.02,
) -> np.ndarray:  # [X, Y, Z] the same field with cavities filled and small islands removed
    """Prepare a density volume for a clean outer surface.

    Radiance fields leave density level sets inside objects and small floaters around them.
    Voxels enclosed by the object are raised above ``level`` (no inner shells) and connected
    pieces smaller than ``min_component`` of the largest piece are lowered below it.
    """
    from scipy import ndimage

    inside = volume > level
    if not inside.any():
        return volume
    labels, n = ndimage.label(inside)
    if n > 1:
        sizes = np.bincount(labels.ravel())[1:]
        keep = np.zeros(n + 1, dtype=bool)
        keep[1:] = sizes >= min_component * sizes.max()
        inside = keep[labels]
    filled = ndimage.binary_fill_holes(inside)
    out = volume.copy()
    out[filled & ~inside] = max(float(volume.max()), 2.0 * level)
    out[~filled & (volume > level)] = 0.5 * level
    return out


def marching_cubes(
    volume: np.ndarray,  # [X, Y, Z] scalar field sampled on a regular grid
    level: float,
    lo: np.ndarray,  # [3] position of volume[0, 0, 0]
    hi: np.ndarray,  # [3] position of volume[-1, -1, -1]
    inside_is_greater: bool = True,
) -> tuple[np.ndarray, np.ndarray]:  # vertices [V, 3] float32, faces [F, 3] int64, outward winding
    """Iso-surface of ``volume`` at ``level`` in the coordinates of the box [lo, hi].

    With ``inside_is_greater`` (densities) the object is where values exceed ``level``;
    otherwise (signed distances) where they fall below it. Faces wind counter-clockwise seen
    from outside, so a closed surface has positive volume. Vertices are unique positions
    (see ``weld``), so a closed surface stays closed in formats without shared vertices
    (STL). Returns empty arrays when the level is not crossed.
    """
    vmin, vmax = float(np.nanmin(volume)), float(np.nanmax(volume))
    if not (vmin < level < vmax):
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int64)
    vol = volume if inside_is_greater else -volume
    lvl = level if inside_is_greater else -level
    spacing = (np.asarray(hi, float) - np.asarray(lo, float)) / (np.array(volume.shape) - 1)
    # scikit-image's "ascent" winds faces counter-clockwise seen from the lower values, which
    # here (object where vol > lvl) is outside
    verts, faces, _, _ = measure.marching_cubes(vol, lvl, spacing=tuple(spacing),
                                                gradient_direction="ascent")
    verts = (verts + np.asarray(lo, float)).astype(np.float32)
    return weld(verts, faces.astype(np.int64))


def weld(
    verts: np.ndarray,  # [V, 3]
    faces: np.ndarray,  # [F, 3] indices into verts
) -> tuple[np.ndarray, np.ndarray]:  # vertices [V', 3], faces [F', 3] int64
    """Merge vertices at exactly the same position and drop the faces that collapse.

    Where the surface passes exactly through grid points, marching cubes puts several
    vertices at the same place and makes zero-area triangles between them. The mesh is closed
    by index but not by position, and formats that store positions only (STL), or readers
    that merge them, would see holes. Faces that lose a corner are dropped, and so are pairs
    of faces on the same three vertices (back-to-back slivers). Nothing changes (order
    included) when all positions are distinct.
    """
    if len(verts) == 0:
        return verts, faces
    uniq, first, inverse = np.unique(verts, axis=0, return_index=True, return_inverse=True)
    if len(uniq) == len(verts):
        return verts, faces
    # keep the surviving vertices in their original order
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    faces = rank[inverse.reshape(-1)][faces]
    faces = faces[(faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2])
                  & (faces[:, 0] != faces[:, 2])]
    _, tri_inverse, counts = np.unique(np.sort(faces, axis=1), axis=0, return_inverse=True,
                                       return_counts=True)
    faces = faces[counts[tri_inverse.reshape(-1)] == 1]
    return verts[first[order]], faces.astype(np.int64)


def vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:  # [V, 3] unit, outward
    """Area-weighted vertex normals of a mesh whose faces wind outward."""
    n = np.zeros_like(verts, dtype=np.float64)
    tri = verts[faces].astype(np.float64)
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    for k in range(3):
        np.add.at(n, faces[:, k], fn)
    norm = np.linalg.norm(n, axis=1, keepdims=True)
    return (n / np.maximum(norm, 1e-12)).astype(np.float32)
