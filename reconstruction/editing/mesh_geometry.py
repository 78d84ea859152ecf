"""Cutting a mesh to a box: triangles clipped exactly at the box's six planes.

Each plane keeps the triangles on its inside, drops those outside and cuts those it crosses
into one or two triangles whose new corners lie on the crossed edges. A crossed edge gets
one new vertex shared by the triangles on both sides of it, so the cut surface stays
connected, and the new vertex's colour is interpolated along the edge. Vertices no face uses
any more are removed; the order of the others is kept.
"""

from __future__ import annotations

import numpy as np


def _clip_plane(v: np.ndarray, f: np.ndarray, c: np.ndarray | None, normal: np.ndarray,
                offset: float):
    """Keep the side ``normal . x <= offset``. v [V, 3], f [F, 3], c [V, K] float or None."""
    s = v @ normal - offset  # [V]
    inside = s <= 0.0
    n_in = inside[f].sum(1)
    keep = f[n_in == 3]
    cut = f[(n_in == 1) | (n_in == 2)]
    if len(cut) == 0:
        return v, keep, c
    cin = inside[cut]
    ones = cin.sum(1) == 1
    # rotate every cut triangle (keeping its orientation) so that its odd corner comes first
    odd = np.where(ones, np.argmax(cin, 1), np.argmax(~cin, 1))
    r = np.arange(3)[None, :]
    tri = cut[np.arange(len(cut))[:, None], (odd[:, None] + r) % 3]  # [C, 3]: a, b, c
    a, b, cc = tri.T
    edges = np.concatenate([np.stack([a, b], 1), np.stack([a, cc], 1)])
    lo, hi = np.minimum(edges[:, 0], edges[:, 1]), np.maximum(edges[:, 0], edges[:, 1])
    uniq, inv = np.unique(np.stack([lo, hi], 1), axis=0, return_inverse=True)
    inv = inv.ravel()
    i, j = uniq[:, 0], uniq[:, 1]
    t = s[i] / (s[i] - s[j])  # the crossing along i -> j
    new_v = v[i] + t[:, None] * (v[j] - v[i])
    new_idx = len(v) + np.arange(len(uniq))
    p_ab, p_ac = new_idx[inv[:len(cut)]], new_idx[inv[len(cut):]]
    one = np.stack([a, p_ab, p_ac], 1)[ones]
    two = ~ones
    quad1 = np.stack([p_ab, b, cc], 1)[two]
    quad2 = np.stack([p_ab, cc, p_ac], 1)[two]
    v_out = np.vstack([v, new_v])
    c_out = None if c is None else np.vstack([c, c[i] + t[:, None] * (c[j] - c[i])])
    return v_out, np.vstack([keep, one, quad1, quad2]), c_out


def clip_mesh_to_box(
    vertices: np.ndarray,  # [V, 3]
    faces: np.ndarray,  # [F, 3]
    colors: np.ndarray | None,  # [V, K] uint8 or float, or None
    lo: np.ndarray,  # [3] box minimum
    hi: np.ndarray,  # [3] box maximum
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The part of the mesh inside [lo, hi]: (vertices [V', 3], faces [F', 3], colors)."""
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    if lo.shape != (3,) or hi.shape != (3,) or not np.all(lo < hi):
        raise ValueError(f"a crop box needs min < max on every axis, got {lo} and {hi}")
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64).reshape(-1, 3)
    dtype = None if colors is None else np.asarray(colors).dtype
    c = None if colors is None else np.asarray(colors, np.float64)
    for axis in range(3):
        e = np.zeros(3)
        e[axis] = 1.0
        v, f, c = _clip_plane(v, f, c, e, hi[axis])
        v, f, c = _clip_plane(v, f, c, -e, -lo[axis])
    used = np.zeros(len(v), bool)
    used[f.ravel()] = True
    remap = np.cumsum(used) - 1
    v, f = v[used], remap[f]
    if c is not None:
        c = c[used]
        if np.issubdtype(dtype, np.integer):
            c = np.clip(np.rint(c), 0, np.iinfo(dtype).max).astype(dtype)
        else:
            c = c.astype(dtype)
    return v, f, c
