"""Geometry of editing parametric curves (``curves.json`` dicts), exact where it can be.

A curve is ``{"type": "line", "points": [p0, p1]}``, ``{"type": "bezier",
"control_points": [p0, p1, p2, p3]}`` or ``{"type": "polyline", "points": [...]}``.

- Splitting a Bezier at ``t`` is de Casteljau's construction: both halves trace exactly
  the original. A line's split is at ``t`` of its length; a polyline's at the vertex
  nearest to ``t`` of its length (a new vertex when ``t`` falls inside a segment).
- A line becomes the Bezier with inner control points at 1/3 and 2/3 (the same straight
  curve, evenly parametrised); a Bezier or polyline becomes the line through its ends.
- Joining two curves that meet (or nearly) at an end: two collinear lines give one line;
  lines and polylines give a polyline; with a Bezier involved, one cubic Bezier is fitted
  to both (ends kept, inner points by least squares), since one cubic cannot in general
  hold two.
- Clipping to a box: lines exactly (Liang-Barsky); a Bezier is cut at the parameters where
  it crosses the box (found on a fine sampling, refined by bisection) and each inside piece
  is the exact sub-curve; polylines are cut at their crossing points.
"""

from __future__ import annotations

import numpy as np

from reconstruction.extract.curves import bezier_points, fit_bezier, sample_curve

CURVE_TYPES = ("line", "bezier", "polyline")


def key(curve: dict) -> str:
    return "control_points" if curve["type"] == "bezier" else "points"


def points_of(curve: dict) -> np.ndarray:  # -> [K, 3]
    """The curve's editable points (a Bezier's control points; a line's or polyline's points)."""
    return np.asarray(curve[key(curve)], np.float64)


def make(kind: str, pts: np.ndarray) -> dict:  # pts [K, 3]
    pts = np.asarray(pts, np.float64)
    return {"type": kind, ("control_points" if kind == "bezier" else "points"): pts.tolist()}


def ends(curve: dict) -> np.ndarray:  # -> [2, 3]
    p = points_of(curve)
    return np.stack([p[0], p[-1]])


def check(curve: dict) -> dict:
    """Raise ValueError unless ``curve`` is a well-formed curve dict; return it."""
    kind = curve.get("type") if isinstance(curve, dict) else None
    if kind not in CURVE_TYPES:
        raise ValueError(f"unknown curve type {kind!r}; use one of {', '.join(CURVE_TYPES)}")
    p = np.asarray(curve.get(key(curve)), dtype=np.float64)
    want = {"line": 2, "bezier": 4}.get(kind)
    if p.ndim != 2 or p.shape[1] != 3 or (want and len(p) != want) or len(p) < 2:
        raise ValueError(f"a {kind} needs {want or 'at least 2'} points [x, y, z], got {p.shape}")
    if not np.isfinite(p).all():
        raise ValueError(f"a {kind} has non-finite points")
    return curve


# -- conversion ------------------------------------------------------------------------------
def to_bezier(curve: dict) -> dict:
    if curve["type"] == "bezier":
        return curve
    p = points_of(curve)
    if curve["type"] == "line":
        a, b = p
        return make("bezier", [a, a + (b - a) / 3.0, a + 2.0 * (b - a) / 3.0, b])
    cp, _ = fit_bezier(p)  # a polyline: the cubic closest to it, its ends kept
    cp[0], cp[-1] = p[0], p[-1]
    return make("bezier", cp)


def to_line(curve: dict) -> dict:
    return curve if curve["type"] == "line" else make("line", ends(curve))


# -- split -----------------------------------------------------------------------------------
def split_bezier(cp: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:  # [4, 3] -> 2 x [4, 3]
    """de Casteljau: the two cubic halves of ``cp`` at ``t``."""
    p = np.asarray(cp, np.float64)
    a = (1 - t) * p[:-1] + t * p[1:]
    b = (1 - t) * a[:-1] + t * a[1:]
    c = (1 - t) * b[0] + t * b[1]
    return np.stack([p[0], a[0], b[0], c]), np.stack([c, b[1], a[2], p[3]])


def sub_bezier(cp: np.ndarray, t0: float, t1: float) -> np.ndarray:  # [4, 3] -> [4, 3]
    """The exact piece of a cubic between parameters ``t0 < t1``."""
    _, right = split_bezier(cp, t0)
    if t1 >= 1.0:
        return right
    left, _ = split_bezier(right, (t1 - t0) / (1.0 - t0))
    return left


def split(curve: dict, t: float = 0.5) -> tuple[dict, dict]:
    if not 0.0 < t < 1.0:
        raise ValueError(f"split at t in (0, 1), got {t}")
    p = points_of(curve)
    if curve["type"] == "bezier":
        a, b = split_bezier(p, t)
        return make("bezier", a), make("bezier", b)
    if curve["type"] == "line":
        m = p[0] + t * (p[1] - p[0])
        return make("line", [p[0], m]), make("line", [m, p[1]])
    seg = np.linalg.norm(np.diff(p, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    target = t * s[-1]
    i = int(np.clip(np.searchsorted(s, target), 1, len(p) - 1))
    if np.isclose(s[i], target) and 0 < i < len(p) - 1:
        return make("polyline", p[:i + 1]), make("polyline", p[i:])
    f = (target - s[i - 1]) / max(seg[i - 1], 1e-300)
    m = p[i - 1] + f * (p[i] - p[i - 1])
    return make("polyline", np.vstack([p[:i], m])), make("polyline", np.vstack([m, p[i:]]))


# -- join and snap ---------------------------------------------------------------------------
def nearest_ends(a: dict, b: dict) -> tuple[int, int, float]:
    """Which ends (0 start, 1 end) of ``a`` and ``b`` are closest, and their distance."""
    ea, eb = ends(a), ends(b)
    d = np.linalg.norm(ea[:, None] - eb[None, :], axis=2)
    i, j = np.unravel_index(int(d.argmin()), d.shape)
    return int(i), int(j), float(d[i, j])


def _oriented(curve: dict, start_at_end: bool) -> np.ndarray:
    """Points of ``curve`` traced from the given end (for joins)."""
    p = points_of(curve)
    return p[::-1] if start_at_end else p


def join(a: dict, b: dict, collinear_deg: float = 1.0) -> dict:
    """One curve made of ``a`` then ``b``, joined at their nearest ends (see module doc)."""
    ia, ib, _ = nearest_ends(a, b)
    pa = _oriented(a, ia == 0)  # a traced so that it ends at the join
    pb = _oriented(b, ib == 1)  # b traced so that it starts at the join
    meet = 0.5 * (pa[-1] + pb[0])
    if a["type"] == "bezier" or b["type"] == "bezier":
        ca = to_bezier(a) if a["type"] != "bezier" else a
        cb = to_bezier(b) if b["type"] != "bezier" else b
        sa = sample_curve(make("bezier", _oriented(ca, ia == 0)), n=64)
        sb = sample_curve(make("bezier", _oriented(cb, ib == 1)), n=64)
        pts = np.vstack([sa[:-1], meet, sb[1:]])
        cp, _ = fit_bezier(pts)
        cp[0], cp[-1] = pts[0], pts[-1]
        return make("bezier", cp)
    if a["type"] == "line" and b["type"] == "line":
        da, db = pa[-1] - pa[0], pb[-1] - pb[0]
        cos = float(da @ db) / max(np.linalg.norm(da) * np.linalg.norm(db), 1e-300)
        if cos >= np.cos(np.radians(collinear_deg)):
            return make("line", [pa[0], pb[-1]])
    return make("polyline", np.vstack([pa[:-1], meet, pb[1:]]))


def snap(a: dict, end_a: int, b: dict, end_b: int) -> tuple[dict, dict]:
    """Move end ``end_a`` of ``a`` and ``end_b`` of ``b`` to their midpoint. A Bezier's
    neighbouring inner control point moves with its end, so its tangent is kept."""
    pa, pb = points_of(a), points_of(b)
    ia = 0 if end_a == 0 else len(pa) - 1
    ib = 0 if end_b == 0 else len(pb) - 1
    meet = 0.5 * (pa[ia] + pb[ib])
    out = []
    for curve, p, i in ((a, pa, ia), (b, pb, ib)):
        d = meet - p[i]
        p = p.copy()
        p[i] = meet
        if curve["type"] == "bezier":
            p[1 if i == 0 else 2] += d
        out.append(make(curve["type"], p))
    return out[0], out[1]


# -- clip to a box ---------------------------------------------------------------------------
def _inside(p: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.all((p >= lo) & (p <= hi), axis=-1)


def _clip_segment(a, b, lo, hi) -> tuple[float, float] | None:
    """Liang-Barsky: parameter range of segment a->b inside the box, or None."""
    t0, t1 = 0.0, 1.0
    d = b - a
    for k in range(3):
        if abs(d[k]) < 1e-300:
            if a[k] < lo[k] or a[k] > hi[k]:
                return None
            continue
        u, v = (lo[k] - a[k]) / d[k], (hi[k] - a[k]) / d[k]
        t0, t1 = max(t0, min(u, v)), min(t1, max(u, v))
        if t0 > t1:
            return None
    return t0, t1


def _bezier_inside_ranges(cp, lo, hi, samples: int = 512) -> list[tuple[float, float]]:
    t = np.linspace(0.0, 1.0, samples + 1)
    ins = _inside(bezier_points(cp, t), lo, hi)

    def crossing(ta, tb, inside_a):
        for _ in range(50):
            tm = 0.5 * (ta + tb)
            if _inside(bezier_points(cp, np.array([tm])), lo, hi)[0] == inside_a:
                ta = tm
            else:
                tb = tm
        return 0.5 * (ta + tb)

    ranges, start = [], 0.0 if ins[0] else None
    for i in range(samples):
        if ins[i] != ins[i + 1]:
            tc = crossing(t[i], t[i + 1], bool(ins[i]))
            if ins[i]:
                ranges.append((start, tc))
                start = None
            else:
                start = tc
    if start is not None:
        ranges.append((start, 1.0))
    return [(a, b) for a, b in ranges if b - a > 1e-9]


def clip(curve: dict, lo: np.ndarray, hi: np.ndarray) -> list[dict]:
    """The pieces of ``curve`` inside the box [lo, hi] (none when it lies outside)."""
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    p = points_of(curve)
    if curve["type"] == "line":
        r = _clip_segment(p[0], p[1], lo, hi)
        if r is None or r[1] - r[0] <= 1e-12:
            return []
        if r == (0.0, 1.0):
            return [curve]
        d = p[1] - p[0]
        return [make("line", [p[0] + r[0] * d, p[0] + r[1] * d])]
    if curve["type"] == "bezier":
        ranges = _bezier_inside_ranges(p, lo, hi)
        if ranges == [(0.0, 1.0)]:
            return [curve]
        return [make("bezier", sub_bezier(p, a, b)) for a, b in ranges]
    pieces, cur = [], []
    for a, b in zip(p[:-1], p[1:], strict=False):
        r = _clip_segment(a, b, lo, hi)
        if r is None:
            if len(cur) > 1:
                pieces.append(cur)
            cur = []
            continue
        pa, pb = a + r[0] * (b - a), a + r[1] * (b - a)
        if not cur:
            cur = [pa]
        cur.append(pb)
        if r[1] < 1.0:
            pieces.append(cur)
            cur = []
    if len(cur) > 1:
        pieces.append(cur)
    if len(pieces) == 1 and len(pieces[0]) == len(p) and np.array_equal(np.asarray(pieces[0]), p):
        return [curve]
    return [make("polyline", np.asarray(q)) for q in pieces]
