"""Free-space carving from rendered depth: which grid points the training views see through.

A radiance field's density below a surface is unconstrained (nothing sees it), so its
level sets leave inner shells, and floaters survive in places few views cover. Rendering
each training view's depth and opacity gives direct evidence: a point in front of the
rendered surface (or on a transparent pixel's ray) is empty; a point behind the surface in
every view that sees it is inside the object.
"""

from __future__ import annotations

import numpy as np


def visibility(
    points: np.ndarray,  # [N, 3] positions (same frame as the cameras)
    c2w: np.ndarray,  # [V, 4, 4] camera-to-world, OpenGL convention
    intrinsics: np.ndarray,  # [V, 4] fx, fy, cx, cy of the depth maps
    depth: np.ndarray,  # [V, H, W] rendered distance along each pixel's unit ray
    opacity: np.ndarray,  # [V, H, W] rendered opacity in [0, 1]
    margin: float,  # band around the surface left undecided (same units as points)
    min_votes: int = 2,
) -> tuple[np.ndarray, np.ndarray]:  # free [N] bool, inside [N] bool
    """free: seen empty by at least ``min_votes`` views (one view's eroded silhouette or
    noisy depth must not open a hole); inside: behind the surface in every view that sees it,
    and not free. Points within ``margin`` of a rendered surface are neither, so the surface
    itself is left to the field."""
    n = len(points)
    votes = np.zeros(n, np.int32)
    behind_all = np.ones(n, bool)
    seen = np.zeros(n, bool)
    pts = points.astype(np.float32)
    v_count, h, w = depth.shape
    for v in range(v_count):
        w2c = np.linalg.inv(c2w[v]).astype(np.float32)
        p = pts @ w2c[:3, :3].T + w2c[:3, 3]
        z = -p[:, 2]
        fx, fy, cx, cy = intrinsics[v]
        front = z > 1e-6
        zs = np.where(front, z, 1.0)
        u = np.floor(fx * p[:, 0] / zs + cx).astype(np.int64)
        vv = np.floor(-fy * p[:, 1] / zs + cy).astype(np.int64)
        ok = front & (u >= 0) & (u < w) & (vv >= 0) & (vv < h)
        idx = np.nonzero(ok)[0]
        if idx.size == 0:
            continue
        d_pix = depth[v, vv[idx], u[idx]]
        a_pix = opacity[v, vv[idx], u[idx]]
        dist = np.linalg.norm(p[idx], axis=1)  # distance from the camera centre
        empty = (a_pix < 0.5) | (dist < d_pix - margin)
        votes[idx[empty]] += 1
        seen[idx] = True
        behind = (a_pix >= 0.5) & (dist > d_pix + margin)
        behind_all[idx[~behind & ~empty]] = False
    free = votes >= min_votes
    return free, behind_all & seen & ~free
