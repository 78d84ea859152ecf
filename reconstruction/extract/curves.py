"""Parametric curves from 3D edge points: straight lines and cubic Bezier curves.

``fit_curves`` turns an unordered, noisy edge point cloud into the project's curve list
(``curves.json`` schema): lines are found first by sequential RANSAC (a line is kept where
a long enough, densely supported run of points lies within the tolerance of it), the
remaining points are split into connected chains, ordered along each chain's longest
path and fitted with cubic Beziers by alternating closest-point reparametrisation and
least-squares control points (a Chamfer-style iteration); a chain a single Bezier cannot
follow within tolerance is split where it deviates most. Endpoints that meet are merged,
duplicates and curves too short to matter are dropped.

Also here: dense sampling of curves, the curve precision / recall / F-score and Chamfer
distance of NEF's benchmark, and the curve file formats (JSON, OBJ polylines, DXF).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order, connected_components, minimum_spanning_tree
from scipy.spatial import cKDTree

from reconstruction.atomic import atomic_write, atomic_write_with

_BERN = np.array([[1, 0, 0, 0], [-3, 3, 0, 0], [3, -6, 3, 0], [-1, 3, -3, 1]], np.float64)


@dataclass
class CurveFitConfig:
    """Settings of the curve fitting (lengths in the units of the points)."""

    tolerance: float = 0.01
    """Largest distance of a supporting point from its curve."""
    spacing: float = 0.005
    """Points are thinned to about this spacing before fitting."""
    min_length: float = 0.05
    """Curves shorter than this are dropped."""
    min_support: float = 0.6
    """A line needs points along at least this fraction of its length."""
    ransac_iterations: int = 400
    """Candidate lines tried per extracted line."""
    max_depth: int = 4
    """A chain is split into at most 2^max_depth Bezier pieces."""
    seed: int = 0
    """Random seed of the line search."""


# -- curve geometry -------------------------------------------------------------------------
def bezier_points(cp: np.ndarray, t: np.ndarray) -> np.ndarray:
    """cp [4, 3] control points, t [M] in [0, 1] -> [M, 3] points on the cubic Bezier."""
    basis = np.stack([np.ones_like(t), t, t * t, t * t * t], 1) @ _BERN  # [M, 4]
    return basis @ cp


def curve_length(curve: dict) -> float:
    pts = sample_curve(curve, n=64)
    return float(np.linalg.norm(np.diff(pts, axis=0), axis=1).sum())


def sample_curve(curve: dict, spacing: float | None = None, n: int | None = None) -> np.ndarray:
    """Points along one curve ([M, 3]): every ``spacing`` units of length, or ``n`` points."""
    kind = curve["type"]
    if kind == "bezier":
        cp = np.asarray(curve["control_points"], np.float64)
        if n is None:
            rough = bezier_points(cp, np.linspace(0, 1, 33))
            length = np.linalg.norm(np.diff(rough, axis=0), axis=1).sum()
            n = max(2, int(math.ceil(length / spacing)) + 1)
        return bezier_points(cp, np.linspace(0, 1, n))
    pts = np.asarray(curve["points"], np.float64)
    out = []
    for a, b in zip(pts[:-1], pts[1:], strict=True):
        m = n if n is not None else max(2, int(math.ceil(np.linalg.norm(b - a) / spacing)) + 1)
        out.append(a + np.linspace(0, 1, m)[:, None] * (b - a))
    return np.concatenate(out) if out else pts


def sample_curves(curves: list[dict], spacing: float) -> np.ndarray:
    """All curves sampled every ``spacing`` units: [M, 3] (empty [0, 3] for no curves)."""
    parts = [sample_curve(c, spacing=spacing) for c in curves]
    return np.concatenate(parts) if parts else np.zeros((0, 3))


def curve_scores(pred: list[dict], gt: list[dict], threshold: float, spacing: float | None = None
                 ) -> dict[str, float]:
    """NEF's curve metrics: both curve sets sampled densely; precision = share of predicted
    samples within ``threshold`` of the ground truth, recall the converse, F their harmonic
    mean, and the symmetric Chamfer distance (mean of both mean nearest distances)."""
    spacing = spacing or threshold / 4
    g = sample_curves(gt, spacing)
    p = sample_curves(pred, spacing)
    if len(p) == 0 or len(g) == 0:
        return {"precision": 0.0, "recall": 0.0, "f_score": 0.0, "chamfer": float("inf"),
                "curves": len(pred)}
    d_pg = cKDTree(g).query(p)[0]
    d_gp = cKDTree(p).query(g)[0]
    prec = float((d_pg < threshold).mean())
    rec = float((d_gp < threshold).mean())
    f = 2 * prec * rec / (prec + rec) if prec + rec > 0 else 0.0
    return {"precision": prec, "recall": rec, "f_score": f,
            "chamfer": float(0.5 * (d_pg.mean() + d_gp.mean())), "curves": len(pred)}


# -- fitting --------------------------------------------------------------------------------
def thin_points(points: np.ndarray, spacing: float) -> np.ndarray:
    """points [N, 3] -> one point (the mean) per occupied cube of side ``spacing``."""
    if len(points) == 0:
        return points.reshape(0, 3)
    key = np.floor(points / spacing).astype(np.int64)
    _, inv = np.unique(key, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    sums = np.zeros((inv.max() + 1, 3))
    np.add.at(sums, inv, points)
    return sums / np.bincount(inv)[:, None]


def _point_line_dist(points: np.ndarray, a: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance of points [N, 3] from the infinite line a + t d (d unit) and their t [N]."""
    rel = points - a
    t = rel @ d
    return np.linalg.norm(rel - t[:, None] * d, axis=1), t


def _bow(points: np.ndarray, a: np.ndarray, d: np.ndarray) -> float:
    """How far points [N, 3] along the line a + t d bow away from it: the sagitta of the
    best quadratic through their offsets (an arc within tolerance of a line still bows)."""
    rel = points - a
    t = rel @ d
    off = rel - t[:, None] * d  # [N, 3]
    tc = t - 0.5 * (t.max() + t.min())
    basis = np.stack([np.ones_like(tc), tc, tc * tc], 1)
    coef, *_ = np.linalg.lstsq(basis, off, rcond=None)
    half = 0.5 * (t.max() - t.min())
    return float(np.linalg.norm(coef[2]) * half * half)


def _runs(t: np.ndarray, gap: float) -> list[np.ndarray]:
    """Indices of t [N] grouped into runs whose neighbouring values are at most ``gap`` apart."""
    order = np.argsort(t)
    breaks = np.nonzero(np.diff(t[order]) > gap)[0] + 1
    return np.split(order, breaks)


def _fit_lines(points: np.ndarray, cfg: CurveFitConfig, rng: np.random.Generator
               ) -> tuple[list[dict], np.ndarray]:
    """Sequential RANSAC lines; returns the lines and a mask [N] of the points they took."""
    used = np.zeros(len(points), bool)
    lines: list[dict] = []
    tree = cKDTree(points)
    gap = max(3.0 * cfg.spacing, cfg.min_length)  # collinear pieces closer than this are one line
    failures = 0
    while failures < 8 and (~used).sum() >= 8:
        free = np.nonzero(~used)[0]
        pts = points[free]
        best = None
        for _ in range(cfg.ransac_iterations):
            i = free[rng.integers(len(free))]
            near = tree.query_ball_point(points[i], 6 * cfg.min_length / 4)
            near = [j for j in near if not used[j] and j != i]
            if not near:
                continue
            j = near[rng.integers(len(near))]
            d = points[j] - points[i]
            norm = np.linalg.norm(d)
            if norm < 2 * cfg.spacing:
                continue
            d = d / norm
            dist, t = _point_line_dist(pts, points[i], d)
            inl = np.nonzero(dist < cfg.tolerance)[0]
            if len(inl) < 4:
                continue
            for run in _runs(t[inl], gap):
                ext = t[inl][run].max() - t[inl][run].min()
                score = len(run) if ext >= cfg.min_length else 0
                if best is None or score > best[0]:
                    best = (score, free[inl[run]])
        if best is None or best[0] == 0:
            failures += 1
            continue
        idx = best[1]
        # refine on the run's own points (principal axis), then re-collect its support
        c = points[idx].mean(0)
        d = np.linalg.svd(points[idx] - c, full_matrices=False)[2][0]
        dist, t = _point_line_dist(points[free], c, d)
        inl = np.nonzero(dist < cfg.tolerance)[0]
        runs = [r for r in _runs(t[inl], gap) if len(r)]
        run = max(runs, key=len) if runs else np.zeros(0, np.int64)
        tr = t[inl][run]
        length = float(tr.max() - tr.min()) if len(tr) else 0.0
        support = len(tr) * cfg.spacing / max(length, 1e-12)
        if length < cfg.min_length or support < cfg.min_support or \
                _bow(points[free[inl[run]]], c, d) > 0.3 * cfg.tolerance:
            failures += 1
            continue
        failures = 0
        used[free[inl[run]]] = True
        lines.append({"type": "line", "points": [(c + tr.min() * d).tolist(), (c + tr.max() * d).tolist()]})
    return lines, used


def _order_chain(points: np.ndarray, radius: float) -> np.ndarray:
    """Points [N, 3] of one chain -> indices along its longest path (tree diameter)."""
    n = len(points)
    if n < 3:
        return np.arange(n)
    tree = cKDTree(points)
    pairs = tree.query_pairs(radius, output_type="ndarray")
    w = np.linalg.norm(points[pairs[:, 0]] - points[pairs[:, 1]], axis=1) + 1e-9
    g = coo_matrix((w, (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    mst = minimum_spanning_tree(g + g.T)
    mst = mst + mst.T

    def far(src: int) -> tuple[int, np.ndarray]:
        order, pred = breadth_first_order(mst, src, directed=False)
        depth = np.zeros(n)
        for v in order[1:]:
            depth[v] = depth[pred[v]] + mst[pred[v], v]
        return int(order[np.argmax(depth[order])]), pred

    a, _ = far(0)
    b, pred = far(a)
    path = [b]
    while path[-1] != a and pred[path[-1]] >= 0:
        path.append(int(pred[path[-1]]))
    path = np.array(path[::-1])
    # every point takes the position along the path of its nearest path node
    _, nearest = cKDTree(points[path]).query(points)
    arc = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(points[path], axis=0), axis=1))])
    return np.argsort(arc[nearest], kind="stable")


def fit_bezier(points: np.ndarray, iterations: int = 8) -> tuple[np.ndarray, float]:
    """Cubic Bezier through ordered points [N, 3] with fixed ends, fitted by alternating
    closest-point parameters and least-squares inner control points.
    Returns (control points [4, 3], largest point distance)."""
    p0, p3 = points[0], points[-1]
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    t = np.concatenate([[0], np.cumsum(seg)])
    t = t / max(t[-1], 1e-12)
    cp = np.stack([p0, p0 + (p3 - p0) / 3, p0 + 2 * (p3 - p0) / 3, p3])
    dense_t = np.linspace(0, 1, 257)
    for _ in range(iterations):
        basis = np.stack([np.ones_like(t), t, t * t, t ** 3], 1) @ _BERN  # [N, 4]
        rhs = points - basis[:, :1] * p0 - basis[:, 3:] * p3
        a = basis[:, 1:3]
        sol, *_ = np.linalg.lstsq(a, rhs, rcond=None)
        cp = np.stack([p0, sol[0], sol[1], p3])
        dense = bezier_points(cp, dense_t)
        _, k = cKDTree(dense).query(points)
        t = dense_t[k]
        t[0], t[-1] = 0.0, 1.0
    dense = bezier_points(cp, dense_t)
    err = cKDTree(dense).query(points)[0]
    return cp, float(err.max())


def _fit_chain(points: np.ndarray, cfg: CurveFitConfig, depth: int = 0) -> list[dict]:
    """Ordered points [N, 3] -> lines / Beziers following them within tolerance."""
    if len(points) < 4:
        return []
    a, b = points[0], points[-1]
    chord = np.linalg.norm(b - a)
    if chord > 1e-9:
        d = (b - a) / chord
        dist, _ = _point_line_dist(points, a, d)
        if dist.max() < cfg.tolerance:
            return [{"type": "line", "points": [a.tolist(), b.tolist()]}]
    cp, err = fit_bezier(points) if chord > 1e-9 else (None, np.inf)
    if err < cfg.tolerance or depth >= cfg.max_depth or len(points) < 12:
        if cp is None:
            return []
        return [{"type": "bezier", "control_points": cp.tolist()}]
    # split at the point farthest from the chord, away from the ends
    if chord > 1e-9:
        dist, _ = _point_line_dist(points, a, (b - a) / chord)
    else:
        dist = np.linalg.norm(points - a, axis=1)
    lo, hi = len(points) // 6, len(points) - len(points) // 6
    k = lo + int(np.argmax(dist[lo:hi])) if hi > lo else len(points) // 2
    return _fit_chain(points[: k + 1], cfg, depth + 1) + _fit_chain(points[k:], cfg, depth + 1)


def _merge_endpoints(curves: list[dict], radius: float) -> None:
    """Endpoints closer than ``radius`` move to their common mean (in place)."""
    ends = []
    for ci, c in enumerate(curves):
        key = "points" if c["type"] != "bezier" else "control_points"
        ends += [(ci, 0, np.asarray(c[key][0])), (ci, -1, np.asarray(c[key][-1]))]
    if len(ends) < 2:
        return
    pos = np.stack([e[2] for e in ends])
    pairs = cKDTree(pos).query_pairs(radius, output_type="ndarray")
    n = len(pos)
    g = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n)) if len(pairs) else \
        coo_matrix((n, n))
    _, label = connected_components(g, directed=False)
    for lab in np.unique(label):
        members = np.nonzero(label == lab)[0]
        if len(members) < 2:
            continue
        target = pos[members].mean(0)
        for m in members:
            ci, which, p = ends[m]
            c = curves[ci]
            delta = target - p
            if c["type"] == "bezier":
                cp = np.asarray(c["control_points"], np.float64)
                inner = 1 if which == 0 else 2
                cp[which] += delta
                cp[inner] += delta
                c["control_points"] = cp.tolist()
            else:
                pts = np.asarray(c["points"], np.float64)
                pts[which] = target
                c["points"] = pts.tolist()


def _drop_duplicates(curves: list[dict], cfg: CurveFitConfig) -> list[dict]:
    """Drop curves shorter than min_length, and curves lying (90 %) along a longer one."""
    curves = [c for c in curves if curve_length(c) >= cfg.min_length]
    curves.sort(key=curve_length, reverse=True)
    kept: list[dict] = []
    kept_pts: list[np.ndarray] = []
    for c in curves:
        s = sample_curve(c, spacing=cfg.spacing)
        if kept_pts:
            d = cKDTree(np.concatenate(kept_pts)).query(s)[0]
            if (d < cfg.tolerance).mean() > 0.9:
                continue
        kept.append(c)
        kept_pts.append(s)
    return kept


def fit_curves(points: np.ndarray, cfg: CurveFitConfig | None = None) -> list[dict]:
    """Unordered edge points [N, 3] -> list of curves (curves.json schema, same units)."""
    cfg = cfg or CurveFitConfig()
    rng = np.random.default_rng(cfg.seed)
    pts = thin_points(np.asarray(points, np.float64), cfg.spacing)
    if len(pts) < 4:
        return []
    curves, used = _fit_lines(pts, cfg, rng)
    rest = pts[~used]
    # points near an accepted line belong to it even if another run claimed the line
    if curves and len(rest):
        line_pts = sample_curves(curves, cfg.spacing)
        rest = rest[cKDTree(line_pts).query(rest)[0] > cfg.tolerance]
    if len(rest) >= 4:
        radius = 4.0 * cfg.spacing
        pairs = cKDTree(rest).query_pairs(radius, output_type="ndarray")
        n = len(rest)
        g = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
        n_comp, label = connected_components(g, directed=False)
        for k in range(n_comp):
            chain = rest[label == k]
            if len(chain) < 4 or np.ptp(chain, axis=0).max() < 0.5 * cfg.min_length:
                continue
            order = _order_chain(chain, radius)
            curves += _fit_chain(chain[order], cfg)
    _merge_endpoints(curves, 2.0 * cfg.tolerance)
    return _drop_duplicates(curves, cfg)


# -- files ------------------------------------------------------------------------------------
def polyline_payload(curves: list[dict], spacing: float) -> dict[str, np.ndarray]:
    """Curves as one polyline buffer for viewers: points [M, 3] float32, offsets [C + 1]
    int64 (curve c is points[offsets[c]:offsets[c + 1]]), types [C] int8 (0 line, 1 bezier,
    2 polyline)."""
    parts = [sample_curve(c, spacing=spacing).astype(np.float32) for c in curves]
    code = {"line": 0, "bezier": 1, "polyline": 2}
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
    return {"points": np.concatenate(parts) if parts else np.zeros((0, 3), np.float32),
            "offsets": offsets, "types": np.array([code[c["type"]] for c in curves], np.int8)}


def transform_curves(curves: list[dict], fn) -> list[dict]:
    """Apply ``fn`` (points [M, 3] -> [M, 3]) to every point of every curve (a Bezier's
    control points transform with the curve under the affine maps used here)."""
    out = []
    for c in curves:
        key = "control_points" if c["type"] == "bezier" else "points"
        out.append({"type": c["type"], key: np.asarray(fn(np.asarray(c[key], np.float64))).tolist()})
    return out


def read_curves(path: str | Path) -> list[dict]:
    data = json.loads(Path(path).read_text())
    curves = data["curves"] if isinstance(data, dict) else data
    for c in curves:
        if c.get("type") not in ("line", "bezier", "polyline"):
            raise ValueError(f"{path}: unknown curve type {c.get('type')!r}")
    return curves


def _atomic_write(path: Path, write) -> Path:
    """``write(tmp)`` into a temp file beside ``path``, then rename (see reconstruction.atomic)."""
    return atomic_write_with(path, write)


def write_curves_json(path: str | Path, curves: list[dict]) -> Path:
    text = json.dumps({"curves": curves}, indent=1)
    return atomic_write(Path(path), text)


def write_curves_obj(path: str | Path, curves: list[dict], spacing: float) -> Path:
    """Curves as OBJ polylines (``l`` elements); Beziers sampled every ``spacing``."""
    lines = ["# curves: lines and cubic Beziers sampled as polylines"]
    n = 1
    for c in curves:
        pts = sample_curve(c, spacing=spacing) if c["type"] == "bezier" else np.asarray(c["points"])
        lines += [f"v {x:.7g} {y:.7g} {z:.7g}" for x, y, z in pts]
        lines.append("l " + " ".join(str(n + i) for i in range(len(pts))))
        n += len(pts)
    return atomic_write(Path(path), "\n".join(lines) + "\n")


def write_curves_ply(path: str | Path, curves: list[dict], spacing: float) -> Path:
    """Curves as a PLY of vertices and edges (Beziers sampled every ``spacing``)."""
    pay = polyline_payload(curves, spacing)
    pts, off = pay["points"], pay["offsets"]
    edges = [(i, i + 1) for c in range(len(curves)) for i in range(off[c], off[c + 1] - 1)]
    head = (f"ply\nformat ascii 1.0\nelement vertex {len(pts)}\nproperty float x\nproperty float y\n"
            f"property float z\nelement edge {len(edges)}\nproperty int vertex1\nproperty int vertex2\n"
            "end_header\n")
    body = "".join(f"{x:.7g} {y:.7g} {z:.7g}\n" for x, y, z in pts) + "".join(f"{a} {b}\n" for a, b in edges)
    return atomic_write(Path(path), head + body)


def write_points_ply(path: str | Path, points: np.ndarray, values: np.ndarray | None = None) -> Path:
    """points [N, 3] (and optional per-point values [N]) as a binary little-endian PLY."""
    pts = np.asarray(points, np.float32).reshape(-1, 3)
    props = "property float x\nproperty float y\nproperty float z\n"
    cols = [pts]
    if values is not None:
        props += "property float value\n"
        cols.append(np.asarray(values, np.float32).reshape(-1, 1))
    head = f"ply\nformat binary_little_endian 1.0\nelement vertex {len(pts)}\n{props}end_header\n"
    data = np.ascontiguousarray(np.concatenate(cols, 1), "<f4").tobytes()
    return atomic_write(Path(path), head.encode() + data)


def write_curves_dxf(path: str | Path, curves: list[dict]) -> Path:
    """Curves as DXF entities: LINE for lines, a degree-3 SPLINE (clamped, the Bezier's own
    control points) for Beziers, POLYLINE (3D) for polylines."""
    import ezdxf

    doc = ezdxf.new("R2010")
    msp = doc.modelspace()
    for c in curves:
        if c["type"] == "line":
            msp.add_line(tuple(c["points"][0]), tuple(c["points"][1]))
        elif c["type"] == "bezier":
            sp = msp.add_spline(dxfattribs={"degree": 3})
            sp.control_points = [tuple(p) for p in c["control_points"]]
            sp.knots = [0, 0, 0, 0, 1, 1, 1, 1]
        else:
            msp.add_polyline3d([tuple(p) for p in c["points"]])
    return _atomic_write(Path(path), lambda p: doc.saveas(p))


def write_curves_step(path: str | Path, curves: list[dict]) -> Path:
    """Curves as STEP edges (lines, Bezier curves with their own poles, polylines as chains of
    segments) in one compound, through Open CASCADE (the optional cadquery-ocp-novtk)."""
    try:
        from OCP.BRep import BRep_Builder
        from OCP.BRepBuilderAPI import BRepBuilderAPI_MakeEdge
        from OCP.Geom import Geom_BezierCurve
        from OCP.gp import gp_Pnt
        from OCP.OCP.collections import Array1_gp_Pnt
        from OCP.STEPControl import STEPControl_AsIs, STEPControl_Writer
        from OCP.TopoDS import TopoDS_Compound
    except ImportError as exc:
        raise RuntimeError("STEP export needs Open CASCADE: pip install 'reconstudio[step]' "
                           "(cadquery-ocp-novtk)") from exc

    builder, compound = BRep_Builder(), TopoDS_Compound()
    builder.MakeCompound(compound)
    for c in curves:
        if c["type"] == "bezier":
            poles = Array1_gp_Pnt(1, 4)
            for i, p in enumerate(c["control_points"]):
                poles.SetValue(i + 1, gp_Pnt(*map(float, p)))
            builder.Add(compound, BRepBuilderAPI_MakeEdge(Geom_BezierCurve(poles)).Edge())
            continue
        pts = [gp_Pnt(*map(float, p)) for p in c["points"]]
        for a, b in zip(pts[:-1], pts[1:], strict=True):
            if a.Distance(b) > 1e-12:
                builder.Add(compound, BRepBuilderAPI_MakeEdge(a, b).Edge())
    writer = STEPControl_Writer()

    def write(p: Path) -> None:
        import os
        import sys

        # Open CASCADE prints transfer statistics on the process's stdout: keep them off it
        sys.stdout.flush()
        saved = os.dup(1)
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 1)
                writer.Transfer(compound, STEPControl_AsIs)
                status = int(writer.Write(str(p)))
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        if status != 1:  # IFSelect_RetDone
            raise OSError(f"Open CASCADE could not write {p}")

    return _atomic_write(Path(path), write)


def read_step_edges(path: str | Path) -> list[str]:
    """Curve kinds of the edges in a STEP file ("line", "bezier", ...), read by Open CASCADE."""
    from OCP.BRep import BRep_Tool
    from OCP.GeomAdaptor import GeomAdaptor_Curve
    from OCP.STEPControl import STEPControl_Reader
    from OCP.TopAbs import TopAbs_EDGE
    from OCP.TopExp import TopExp_Explorer
    from OCP.TopoDS import TopoDS

    reader = STEPControl_Reader()
    reader.ReadFile(str(path))
    reader.TransferRoots()
    shape = reader.OneShape()
    kinds = []
    exp = TopExp_Explorer(shape, TopAbs_EDGE)
    while exp.More():
        first, last = 0.0, 1.0
        curve = BRep_Tool.Curve_s(TopoDS.Edge(exp.Current()), first, last)
        kinds.append(str(GeomAdaptor_Curve(curve).GetType()).split("_")[-1].lower())
        exp.Next()
    return kinds


def read_curves_dxf(path: str | Path) -> list[dict]:
    """LINE, SPLINE (single cubic segments) and 3D POLYLINE entities back as curves."""
    import ezdxf

    curves: list[dict] = []
    for e in ezdxf.readfile(str(path)).modelspace():
        kind = e.dxftype()
        if kind == "LINE":
            curves.append({"type": "line", "points": [list(e.dxf.start), list(e.dxf.end)]})
        elif kind == "SPLINE":
            curves.append({"type": "bezier", "control_points": [list(p) for p in e.control_points]})
        elif kind == "POLYLINE":
            curves.append({"type": "polyline", "points": [list(v.dxf.location) for v in e.vertices]})
    return curves
