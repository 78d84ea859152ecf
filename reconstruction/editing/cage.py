"""Cages that deform a mesh: a bounding Bernstein lattice, or a polycube of k boxes.

A cage is a small set of control vertices bound to the mesh once; moving cage vertices
moves the mesh by a fixed linear map of the cage displacement::

    mesh = mesh_rest + W @ (cage - cage_rest)        # W: [V, M], rows sum to 1

Written as a displacement, the rest cage reproduces the rest mesh exactly (``W @ 0 = 0``),
a cage translated by ``d`` translates every vertex by ``d`` (rows of ``W`` sum to one), and
the map is smooth because every weight is. Colours and faces never change.

- ``lattice``: trivariate Bernstein free-form deformation (Sederberg and Parry, 1986) over
  the mesh's padded bounding box, ``cubes`` cells per axis (degree ``cubes``, so
  ``(cubes + 1)^3`` control vertices; 1 is the 8-corner box). ``W`` is kept factorised as
  three per-axis Bernstein bases and never built densely.
- ``polycube``: ``cubes`` axis-aligned boxes that cover the object, from a coarse
  voxelisation of the surface (filled inside) split greedily into boxes of occupied voxels,
  then merged pairwise (the pair whose bounding box adds the least empty volume first) until
  ``cubes`` remain; too few are split along their longest side. Each vertex takes the
  trilinear coordinates of every box near it (affine, so each box alone reproduces the
  identity) blended by a weight that is 1 inside the box and falls smoothly to 0 one voxel
  outside it; ``W`` is sparse.

Pure numpy/scipy: the window and ``recon edit`` share it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import comb

import numpy as np
from scipy import ndimage, sparse

CAGE_KINDS = ("lattice", "polycube")
# box corner c has offsets ((c >> 0) & 1, (c >> 1) & 1, (c >> 2) & 1) along x, y, z
_CORNER_BITS = np.array([[(c >> a) & 1 for a in range(3)] for c in range(8)], np.int64)  # [8, 3]
# the 12 edges and 6 faces of a box, as corner numbers
BOX_EDGES = np.array([[0, 1], [2, 3], [4, 5], [6, 7], [0, 2], [1, 3], [4, 6], [5, 7],
                      [0, 4], [1, 5], [2, 6], [3, 7]], np.int64)
BOX_FACES = {"-x": [0, 2, 6, 4], "+x": [1, 3, 7, 5], "-y": [0, 1, 5, 4],
             "+y": [2, 3, 7, 6], "-z": [0, 1, 3, 2], "+z": [4, 5, 7, 6]}


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.flags.writeable = False
    return a


def bernstein(n: int, t: np.ndarray) -> np.ndarray:  # t [N] -> [N, n + 1]
    """Bernstein basis of degree ``n`` at ``t`` (any real t; affine precision everywhere)."""
    t = np.asarray(t, np.float64)[:, None]
    i = np.arange(n + 1)[None, :]
    coef = np.array([comb(n, k) for k in range(n + 1)], np.float64)[None, :]
    return coef * t ** i * (1.0 - t) ** (n - i)


@dataclass
class Binding:
    """The linear map from cage displacement to mesh displacement (``W`` above)."""

    kind: str
    matrix: sparse.csc_matrix | None = None  # [V, M] (polycube)
    bases: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # per axis [V, n + 1] (lattice)
    shape: tuple[int, int, int] | None = None  # lattice control vertices per axis
    _dense: np.ndarray | None = field(default=None, repr=False)  # [V, M], lattice, on demand

    def displacement(self, delta: np.ndarray) -> np.ndarray:  # delta [M, 3] -> [V, 3]
        """Mesh displacement for cage displacement ``delta``; only moved vertices cost."""
        moved = np.flatnonzero(np.any(delta != 0.0, axis=1))
        if self.matrix is not None:
            n = self.matrix.shape[0]
            if len(moved) == 0:
                return np.zeros((n, 3))
            return np.asarray(self.matrix[:, moved] @ delta[moved])
        bx, by, bz = self.bases
        n = len(bx)
        if len(moved) == 0:
            return np.zeros((n, 3))
        nx, ny, nz = self.shape
        if len(moved) > 8:  # many moved: the dense W (built once, V x M doubles)
            if self._dense is None:
                w = (bx[:, :, None] * by[:, None, :]).reshape(n, nx * ny)
                self._dense = (w[:, :, None] * bz[:, None, :]).reshape(n, nx * ny * nz)
            return self._dense @ delta
        i, j, k = np.unravel_index(moved, (nx, ny, nz))
        return (bx[:, i] * by[:, j] * bz[:, k]) @ delta[moved]  # [V, m] @ [m, 3]

    def weights(self, vertex: int) -> np.ndarray:  # -> [V]
        """Column ``vertex`` of ``W``: how strongly each mesh vertex follows that cage vertex."""
        if self.matrix is not None:
            return np.asarray(self.matrix[:, vertex].todense()).ravel()
        i, j, k = np.unravel_index(vertex, self.shape)
        bx, by, bz = self.bases
        return bx[:, i] * by[:, j] * bz[:, k]


@dataclass
class Cage:
    """A cage bound to a mesh. Arrays are read-only: edits make new cages."""

    kind: str  # "lattice" or "polycube"
    rest: np.ndarray  # [M, 3] cage vertices when bound
    vertices: np.ndarray  # [M, 3] cage vertices now
    edges: np.ndarray  # [E, 2] vertex indices, for drawing
    boxes: np.ndarray  # [B, 8] corner vertex indices per box (lattice: its cells)
    mesh_rest: np.ndarray  # [V, 3] mesh vertices when bound
    binding: Binding = field(repr=False)

    def deformed(self) -> np.ndarray:  # -> [V, 3]
        """The mesh vertices for the cage's current vertices."""
        return self.mesh_rest + self.binding.displacement(self.vertices - self.rest)

    def moved(self, vertices: np.ndarray, mesh: np.ndarray) -> np.ndarray:  # -> [V, 3]
        """The mesh ``mesh`` [V, 3] (deformed by this cage as it is now) after the cage moves
        to ``vertices`` [M, 3]: only the cage vertices that move cost anything."""
        return mesh + self.binding.displacement(np.asarray(vertices, np.float64) - self.vertices)

    def with_vertices(self, vertices: np.ndarray) -> Cage:  # vertices [M, 3]
        if vertices.shape != self.rest.shape:
            raise ValueError(f"expected cage vertices {self.rest.shape}, got {vertices.shape}")
        return Cage(self.kind, self.rest, _readonly(np.asarray(vertices, np.float64)), self.edges,
                    self.boxes, self.mesh_rest, self.binding)

    def face_vertices(self, box: int, face: str) -> list[int]:
        """Cage vertex indices of one face (``"-x"``, ``"+y"``, ...) of box ``box``."""
        if not 0 <= box < len(self.boxes):
            raise ValueError(f"box {box} out of range: the cage has {len(self.boxes)}")
        if face not in BOX_FACES:
            raise ValueError(f"face must be one of {', '.join(BOX_FACES)}, got {face!r}")
        return [int(self.boxes[box][c]) for c in BOX_FACES[face]]

    def to_json(self) -> dict:
        return {"kind": self.kind, "vertices": self.vertices.tolist(), "rest": self.rest.tolist(),
                "boxes": self.boxes.tolist(), "edges": self.edges.tolist()}


def _pad_box(lo: np.ndarray, hi: np.ndarray, pad: float) -> tuple[np.ndarray, np.ndarray]:
    size = np.maximum(hi - lo, 1e-9)
    extra = pad * max(float(size.max()), 1e-9)
    return lo - extra, hi + extra


# -- lattice ---------------------------------------------------------------------------------
def fit_lattice(vertices: np.ndarray, cells: int = 3, pad: float = 0.02) -> Cage:  # [V, 3]
    """A Bernstein lattice of ``cells`` cells per axis around ``vertices``."""
    if not 1 <= int(cells) <= 8:
        raise ValueError(f"a lattice has 1 to 8 cells per axis, got {cells}")
    n = int(cells)
    v = np.asarray(vertices, np.float64)
    lo, hi = _pad_box(v.min(0), v.max(0), pad)
    local = (v - lo) / (hi - lo)
    bases = tuple(bernstein(n, local[:, a]) for a in range(3))
    g = np.linspace(0.0, 1.0, n + 1)
    ii, jj, kk = np.meshgrid(g, g, g, indexing="ij")
    grid = lo + np.stack([ii, jj, kk], -1).reshape(-1, 3) * (hi - lo)  # [(n+1)^3, 3]
    shape = (n + 1, n + 1, n + 1)
    idx = np.arange(len(grid)).reshape(shape)
    edges = np.concatenate([
        np.stack([idx[:-1, :, :].ravel(), idx[1:, :, :].ravel()], 1),
        np.stack([idx[:, :-1, :].ravel(), idx[:, 1:, :].ravel()], 1),
        np.stack([idx[:, :, :-1].ravel(), idx[:, :, 1:].ravel()], 1)])
    cell = np.stack(np.meshgrid(np.arange(n), np.arange(n), np.arange(n), indexing="ij"), -1)
    cell = cell.reshape(-1, 3)
    boxes = np.stack([idx[tuple((cell + _CORNER_BITS[c]).T)] for c in range(8)], 1)
    grid = _readonly(grid)
    return Cage("lattice", grid, grid, _readonly(edges), _readonly(boxes), _readonly(v.copy()),
                Binding("lattice", bases=bases, shape=shape))


# -- polycube --------------------------------------------------------------------------------
def _surface_samples(vertices: np.ndarray, faces: np.ndarray, spacing: float) -> np.ndarray:
    """Vertices plus points on every face no further than ``spacing`` apart (roughly)."""
    if len(faces) == 0:
        return vertices
    tri = vertices[faces]  # [F, 3, 3]
    longest = np.linalg.norm(tri - np.roll(tri, 1, axis=1), axis=2).max(1)
    big = longest > spacing
    pts = [vertices, tri.mean(1)]
    if big.any():
        t = tri[big]
        k = np.minimum(np.ceil(longest[big] / spacing).astype(int), 16)
        for m in np.unique(k):
            sel = t[k == m]
            a, b = np.meshgrid(np.arange(m + 1), np.arange(m + 1), indexing="ij")
            keep = a + b <= m
            a, b = a[keep] / m, b[keep] / m
            w = np.stack([1 - a - b, a, b], 1)  # [S, 3]
            pts.append(np.einsum("sk,fkc->fsc", w, sel).reshape(-1, 3))
    return np.concatenate(pts)


def _prefix(occ: np.ndarray) -> np.ndarray:
    return np.pad(occ.astype(np.int64), ((1, 0), (1, 0), (1, 0))).cumsum(0).cumsum(1).cumsum(2)


def _count(cum: np.ndarray, lo, hi) -> int:
    """Occupied voxels in [lo, hi) from the prefix sums ``cum``."""
    x0, y0, z0 = lo
    x1, y1, z1 = hi
    return int(cum[x1, y1, z1] - cum[x0, y1, z1] - cum[x1, y0, z1] - cum[x1, y1, z0]
               + cum[x0, y0, z1] + cum[x0, y1, z0] + cum[x1, y0, z0] - cum[x0, y0, z0])


_ORDERS = ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))


def _grow(cum: np.ndarray, dims, seed: np.ndarray, order) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = seed.copy(), seed + 1
    for axis in order:
        while hi[axis] < dims[axis]:
            trial = hi.copy()
            trial[axis] += 1
            if _count(cum, lo, trial) != int(np.prod(trial - lo)):
                break
            hi = trial
    return lo, hi


def _voxel_boxes(occ: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split occupied voxels into disjoint boxes, largest first: each round grows a box from
    every free voxel that starts a run along x, y and z (in all six axis orders) and takes the
    biggest. Returns (lo, hi) voxel index ranges (hi exclusive)."""
    free = occ.copy()
    dims = np.array(free.shape)
    boxes = []
    while free.any():
        cum = _prefix(free)
        pad = np.pad(free, ((1, 0), (1, 0), (1, 0)))
        corner = free & ~pad[:-1, 1:, 1:] & ~pad[1:, :-1, 1:] & ~pad[1:, 1:, :-1]
        seeds = np.argwhere(corner)
        if len(seeds) == 0:
            seeds = np.argwhere(free)[:1]
        best = None
        for seed in seeds:
            for order in _ORDERS:
                lo, hi = _grow(cum, dims, seed, order)
                vol = int(np.prod(hi - lo))
                if best is None or vol > best[0]:
                    best = (vol, lo, hi)
        _, lo, hi = best
        free[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = False
        boxes.append((lo, hi))
    return boxes


def _merge_boxes(boxes: list[tuple[np.ndarray, np.ndarray]], occ: np.ndarray,
                 count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Merge pairs of boxes (into their bounding box) until ``count`` remain, each time the
    pair whose merged box holds the fewest empty voxels; then split the largest boxes along
    their longest side while there are fewer than ``count``."""
    cum = _prefix(occ)

    def empty(lo, hi):
        return int(np.prod(hi - lo)) - _count(cum, lo, hi)

    boxes = list(boxes)
    while len(boxes) > count:
        best = None
        for a in range(len(boxes)):
            for b in range(a + 1, len(boxes)):
                lo = np.minimum(boxes[a][0], boxes[b][0])
                hi = np.maximum(boxes[a][1], boxes[b][1])
                cost = (empty(lo, hi), int(np.prod(hi - lo)))
                if best is None or cost < best[0]:
                    best = (cost, a, b, lo, hi)
        _, a, b, lo, hi = best
        boxes = [bx for i, bx in enumerate(boxes) if i not in (a, b)] + [(lo, hi)]
        # the merged box may swallow others whole
        boxes = [bx for bx in boxes[:-1] if not (np.all(bx[0] >= lo) and np.all(bx[1] <= hi))
                 ] + [boxes[-1]]
    while len(boxes) < count:
        sizes = [np.prod(hi - lo) for lo, hi in boxes]
        i = int(np.argmax(sizes))
        lo, hi = boxes.pop(i)
        axis = int(np.argmax(hi - lo))
        if hi[axis] - lo[axis] < 2:
            boxes.insert(i, (lo, hi))
            break  # every box is one voxel thick: no more splits possible
        mid = (lo[axis] + hi[axis]) // 2
        hi_a, lo_b = hi.copy(), lo.copy()
        hi_a[axis], lo_b[axis] = mid, mid
        boxes += [(lo, hi_a), (lo_b, hi)]
    return boxes


def polycube_boxes(vertices: np.ndarray, faces: np.ndarray, cubes: int,
                   resolution: int = 12) -> np.ndarray:  # -> [B, 2, 3] world lo/hi
    """``cubes`` axis-aligned boxes covering the surface (see the module docstring)."""
    if not 1 <= int(cubes) <= 64:
        raise ValueError(f"a polycube has 1 to 64 boxes, got {cubes}")
    v = np.asarray(vertices, np.float64)
    lo, hi = v.min(0), v.max(0)
    pitch = max(float((hi - lo).max()), 1e-9) / resolution
    dims = np.maximum(np.ceil((hi - lo) / pitch).astype(int), 1)
    pts = _surface_samples(v, np.asarray(faces, np.int64), 0.5 * pitch)
    ijk = np.clip(np.floor((pts - lo) / pitch).astype(int), 0, dims - 1)
    occ = np.zeros(dims, bool)
    occ[tuple(ijk.T)] = True
    occ = ndimage.binary_fill_holes(occ)
    boxes = _merge_boxes(_voxel_boxes(occ), occ, int(cubes))
    # voxel boxes hold every surface point (on their boundary at worst): no padding, so
    # boxes that touch keep common corners
    return np.array([[lo + b0 * pitch, lo + b1 * pitch] for b0, b1 in boxes])


def _box_distance(points: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:  # -> [N]
    d = np.maximum(np.maximum(lo - points, points - hi), 0.0)
    return np.linalg.norm(d, axis=1)


def fit_polycube(vertices: np.ndarray, faces: np.ndarray, cubes: int = 4,
                 resolution: int = 12, blend: float = 1.0) -> Cage:
    """A polycube cage of ``cubes`` boxes bound to the mesh. ``blend``: how far outside a
    box (in voxels of the ``resolution`` grid) its influence fades to zero."""
    v = np.asarray(vertices, np.float64)
    boxes = polycube_boxes(v, faces, cubes, resolution)
    pitch = max(float((v.max(0) - v.min(0)).max()), 1e-9) / resolution
    radius = blend * pitch
    corners = np.concatenate([lo + _CORNER_BITS * (hi - lo) for lo, hi in boxes])  # [8B, 3]
    # boxes that touch share the corners they have in common
    key = np.round(corners / (1e-6 * pitch)).astype(np.int64)
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)
    remap = np.empty_like(order)
    remap[order] = np.arange(len(order))
    cage_vertices = corners[first[order]]
    box_index = remap[inverse.ravel()].reshape(len(boxes), 8)

    n = len(v)
    blend_w = np.zeros((n, len(boxes)))
    for b, (lo, hi) in enumerate(boxes):
        s = np.clip(_box_distance(v, lo, hi) / radius, 0.0, 1.0)
        blend_w[:, b] = (1.0 - s * s * (3.0 - 2.0 * s)) + 1e-12  # smoothstep fall-off
    near = blend_w > 1e-9
    lonely = ~near.any(1)
    if lonely.any():  # outside every box's reach: follow the nearest box
        dist = np.stack([_box_distance(v[lonely], lo, hi) for lo, hi in boxes], 1)
        near[np.flatnonzero(lonely), dist.argmin(1)] = True
    blend_w = np.where(near, blend_w, 0.0)
    blend_w /= blend_w.sum(1, keepdims=True)
    rows, cols, vals = [], [], []
    for b, (lo, hi) in enumerate(boxes):
        idx = np.flatnonzero(near[:, b])
        if len(idx) == 0:
            continue
        t = (v[idx] - lo) / (hi - lo)  # [n_b, 3], affine outside the box too
        for c in range(8):
            bits = _CORNER_BITS[c]
            w = np.prod(np.where(bits == 1, t, 1.0 - t), axis=1)
            rows.append(idx)
            cols.append(np.full(len(idx), box_index[b, c]))
            vals.append(blend_w[idx, b] * w)
    matrix = sparse.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                               shape=(n, len(cage_vertices))).tocsc()
    edges = np.unique(np.sort(box_index[:, BOX_EDGES].reshape(-1, 2), axis=1), axis=0)
    cage_vertices = _readonly(cage_vertices)
    return Cage("polycube", cage_vertices, cage_vertices, _readonly(edges),
                _readonly(box_index), _readonly(v.copy()), Binding("polycube", matrix=matrix))


def fit_cage(vertices: np.ndarray, faces: np.ndarray, kind: str, cubes: int) -> Cage:
    """``kind`` "lattice" (``cubes`` cells per axis) or "polycube" (``cubes`` boxes)."""
    if kind == "lattice":
        return fit_lattice(vertices, cubes)
    if kind == "polycube":
        return fit_polycube(vertices, faces, cubes)
    raise ValueError(f"cage kind must be one of {', '.join(CAGE_KINDS)}, got {kind!r}")
