"""Edits as data: cages (lattice, polycube), crops and curve edits, their inverses, `recon edit`."""

import json
import subprocess
import sys

import numpy as np
import pytest
import trimesh

from reconstruction.editing import EditDocument, EditError, Mesh, apply_all, parse_op, parse_ops
from reconstruction.editing import curve_geometry as cg
from reconstruction.editing.cage import fit_lattice, fit_polycube
from reconstruction.editing.mesh_geometry import clip_mesh_to_box
from reconstruction.extract.curves import bezier_points, sample_curve


def _sphere(subdiv=4):
    m = trimesh.creation.icosphere(subdiv)
    rng = np.random.default_rng(0)
    colors = rng.integers(0, 256, (len(m.vertices), 4), dtype=np.uint8)
    colors[:, 3] = 255
    return Mesh.of(m.vertices, m.faces, colors)


def _dumbbell():
    """Two unit-ish boxes joined by a thin bar along x: ends at x in [-3, -1] and [1, 3]."""
    parts = [trimesh.creation.box([2, 2, 2]).apply_translation([-2, 0, 0]),
             trimesh.creation.box([2, 2, 2]).apply_translation([2, 0, 0]),
             trimesh.creation.box([2, 0.4, 0.4])]
    m = trimesh.util.concatenate(parts)
    m = m.subdivide_to_size(0.2)
    return Mesh.of(m.vertices, m.faces, np.full((len(m.vertices), 4), 180, np.uint8))


def _curves():
    return [
        {"type": "line", "points": [[0, 0, 0], [1, 0, 0]]},
        {"type": "bezier", "control_points": [[1, 0, 0], [1.3, 0.5, 0], [1.7, 0.5, 0.2], [2, 0, 0]]},
        {"type": "polyline", "points": [[0, 1, 0], [0.5, 1.2, 0], [1, 1, 0], [1.5, 1.3, 0.1]]},
        {"type": "line", "points": [[1.02, 0, 0], [2, 0, 0.5]]},
    ]


# -- cages -----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind,cubes", [("lattice", 1), ("lattice", 3), ("polycube", 1),
                                        ("polycube", 4)])
def test_identity_cage_leaves_the_mesh_unchanged(kind, cubes):
    mesh = _dumbbell()
    doc = EditDocument(mesh=mesh)
    parse_op({"op": "cage", "kind": kind, "cubes": cubes}).apply(doc)
    assert np.abs(doc.cage.deformed() - mesh.vertices).max() < 1e-6
    # a zero move is the identity too, through the whole op path
    parse_op({"op": "move_cage", "vertices": "all", "delta": [0, 0, 0]}).apply(doc)
    assert np.abs(doc.mesh.vertices - mesh.vertices).max() < 1e-6
    assert doc.mesh.faces is mesh.faces and doc.mesh.colors is mesh.colors


@pytest.mark.parametrize("kind", ["lattice", "polycube"])
def test_translating_the_whole_cage_translates_the_mesh(kind):
    mesh = _sphere()
    doc = EditDocument(mesh=mesh)
    apply_all(doc, parse_ops([{"op": "cage", "kind": kind, "cubes": 3},
                              {"op": "move_cage", "vertices": "all", "delta": [0.5, -2.0, 7.25]}]))
    np.testing.assert_allclose(doc.mesh.vertices, mesh.vertices + [0.5, -2.0, 7.25], rtol=0, atol=1e-12)


def test_a_uniform_scale_of_the_lattice_scales_the_mesh():
    mesh = _sphere()
    doc = EditDocument(mesh=mesh)
    apply_all(doc, parse_ops([{"op": "cage", "kind": "lattice", "cubes": 2},
                              {"op": "scale_cage", "vertices": "all", "factor": [2, 1, 0.5],
                               "center": [0, 0, 0]}]))
    np.testing.assert_allclose(doc.mesh.vertices, mesh.vertices * [2, 1, 0.5], atol=1e-12)


def test_scaling_one_polycube_box_moves_only_the_vertices_bound_to_it():
    mesh = _dumbbell()
    cage = fit_polycube(mesh.vertices, mesh.faces, cubes=3)
    assert len(cage.boxes) == 3
    lo = cage.vertices[cage.boxes].min(1)
    hi = cage.vertices[cage.boxes].max(1)
    # the three boxes cover every vertex
    inside = np.stack([np.all((mesh.vertices >= a - 1e-9) & (mesh.vertices <= b + 1e-9), 1)
                       for a, b in zip(lo, hi, strict=False)], 1)
    assert inside.any(1).all()
    right = int(np.argmax(lo[:, 0]))  # the box around the end at x in [1, 3]
    assert lo[right, 0] > 0.5
    doc = EditDocument(mesh=mesh, cage=cage)
    center = (lo[right] + hi[right]) / 2
    parse_op({"op": "scale_box", "box": right, "factor": [1.25, 1.25, 1.25],
              "center": center.tolist()}).apply(doc)
    v0, v1 = mesh.vertices, doc.mesh.vertices
    bound = v0[:, 0] > 1.5  # well inside the right end's box
    np.testing.assert_allclose(v1[bound], center + 1.25 * (v0[bound] - center), atol=1e-9)
    far = v0[:, 0] < -0.5  # the left end, far from the scaled box
    assert np.abs(v1[far] - v0[far]).max() < 1e-3
    assert np.abs(v1 - v0).max() > 0.2
    # smooth: no new creases (the largest dihedral change between neighbouring faces stays small)
    def normals(v):
        return trimesh.Trimesh(v, mesh.faces, process=False).face_normals
    adj = trimesh.Trimesh(v0, mesh.faces, process=False).face_adjacency
    n0, n1 = normals(v0), normals(v1)
    a0 = np.degrees(np.arccos(np.clip((n0[adj[:, 0]] * n0[adj[:, 1]]).sum(1), -1, 1)))
    a1 = np.degrees(np.arccos(np.clip((n1[adj[:, 0]] * n1[adj[:, 1]]).sum(1), -1, 1)))
    assert np.abs(a1 - a0).max() < 30.0
    assert doc.mesh.colors is mesh.colors


def test_lattice_control_vertex_moves_the_mesh_smoothly_near_it():
    mesh = _sphere()
    cage = fit_lattice(mesh.vertices, cells=3)
    top = int(np.argmax(cage.vertices[:, 2] + 1e-3 * cage.vertices[:, 0]))
    w = cage.binding.weights(top)
    assert w.min() >= 0 and w.max() < 1
    moved = cage.with_vertices(cage.vertices + np.where(np.arange(64)[:, None] == top, [0, 0, 1.0], 0))
    d = moved.deformed() - mesh.vertices
    np.testing.assert_allclose(d[:, 2], w, atol=1e-12)


# -- every op and its inverse ----------------------------------------------------------------
OPS_AFTER_CAGE = [
    {"op": "move_cage", "vertices": [0, 3, 5], "delta": [0.1, 0.2, -0.3]},
    {"op": "move_cage", "vertices": "all", "delta": [1, 0, 0]},
    {"op": "scale_cage", "vertices": "all", "factor": 1.3},
    {"op": "scale_cage", "vertices": [1, 2], "factor": [1, 2, 1], "center": [0, 0, 0]},
    {"op": "scale_box", "box": 0, "factor": [1.1, 1.2, 0.9]},
    {"op": "move_face", "box": 0, "face": "+z", "delta": [0, 0, 0.25]},
]
CURVE_OPS = [
    {"op": "delete_curve", "index": 1},
    {"op": "move_control_point", "curve": 1, "point": 2, "to": [1.5, 1.0, 0.5]},
    {"op": "to_bezier", "curve": 0},
    {"op": "to_line", "curve": 1},
    {"op": "to_line", "curve": 2},
    {"op": "split_curve", "curve": 1, "t": 0.3},
    {"op": "split_curve", "curve": 2},
    {"op": "join_curves", "curves": [0, 3]},
    {"op": "join_curves", "curves": [0, 1]},
    {"op": "snap_endpoints", "curves": [0, 3]},
    {"op": "add_curve", "curve": {"type": "line", "points": [[0, 0, 1], [0, 0, 2]]}},
]


def _doc_with_cage():
    doc = EditDocument(mesh=_dumbbell(), curves=_curves())
    parse_op({"op": "cage", "kind": "polycube", "cubes": 3}).apply(doc)
    return doc


def _same(a, b):
    return all(x is y for x, y in zip(a, b, strict=False))


@pytest.mark.parametrize("spec", OPS_AFTER_CAGE + CURVE_OPS + [
    {"op": "crop", "min": [-2.5, -2, -2], "max": [2.2, 0.5, 2]},
    {"op": "cage", "kind": "lattice", "cubes": 2},
    {"op": "cage", "kind": "polycube", "cubes": 5}], ids=lambda s: s["op"])
def test_every_operation_and_its_inverse_restore_the_exact_state(spec):
    doc = _doc_with_cage()
    before = doc.state()
    snapshot = (doc.mesh.vertices.copy(), json.dumps(doc.curves), doc.cage.vertices.copy())
    op = parse_op(spec)
    assert parse_op(json.loads(json.dumps(op.to_json()))).to_json() == op.to_json()
    op.apply(doc)
    assert not _same(doc.state(), before)  # it changed something
    op.invert(doc)
    assert _same(doc.state(), before)
    assert np.array_equal(doc.mesh.vertices, snapshot[0]) and json.dumps(doc.curves) == snapshot[1]
    assert np.array_equal(doc.cage.vertices, snapshot[2])
    # and again: redo after undo gives the same result as the first time
    op.apply(doc)
    first = doc.state()
    op.invert(doc)
    op.apply(doc)
    assert np.array_equal(doc.mesh.vertices, first[0].vertices)
    assert json.dumps(doc.curves) == json.dumps(first[1])


def test_a_history_of_edits_undoes_back_to_the_start():
    doc = _doc_with_cage()
    start = doc.state()
    ops = parse_ops(OPS_AFTER_CAGE + CURVE_OPS[:4])
    for op in ops:
        op.apply(doc)
    for op in reversed(ops):
        op.invert(doc)
    assert _same(doc.state(), start)


def test_bad_operations_say_what_is_wrong():
    doc = EditDocument(mesh=_sphere(2))
    with pytest.raises(EditError, match="unknown operation 'twist'"):
        parse_op({"op": "twist"})
    with pytest.raises(EditError, match="min must be below max"):
        parse_op({"op": "crop", "min": [1, 0, 0], "max": [0, 1, 1]})
    with pytest.raises(EditError, match="3 finite numbers"):
        parse_op({"op": "move_cage", "vertices": "all", "delta": [1, "a", 0]})
    with pytest.raises(EditError, match="unknown field"):
        parse_op({"op": "delete_curve", "index": 0, "idx": 2})
    with pytest.raises(EditError, match="fit one first"):
        parse_op({"op": "move_cage", "vertices": "all", "delta": [1, 0, 0]}).apply(doc)
    with pytest.raises(EditError, match="has none"):
        parse_op({"op": "delete_curve", "index": 0}).apply(doc)
    parse_op({"op": "cage", "kind": "lattice", "cubes": 1}).apply(doc)
    with pytest.raises(EditError, match="indices in"):
        parse_op({"op": "move_cage", "vertices": [8], "delta": [1, 0, 0]}).apply(doc)


# -- geometry --------------------------------------------------------------------------------
def test_crop_cuts_a_mesh_exactly_at_the_box_and_interpolates_colours():
    box = trimesh.creation.box([2, 2, 2]).subdivide_to_size(0.5)
    colors = np.zeros((len(box.vertices), 4), np.uint8)
    colors[:, 0] = np.round((box.vertices[:, 0] + 1) * 100).astype(np.uint8)  # red = 100 (x + 1)
    colors[:, 3] = 255
    v, f, c = clip_mesh_to_box(box.vertices, box.faces, colors, [-2, -2, -2], [0.3, 2, 2])
    assert v[:, 0].max() == pytest.approx(0.3) and v[:, 0].min() == pytest.approx(-1)
    cut = trimesh.Trimesh(v, f, process=False)
    # the open box x in [-1, 0.3]: 4 side faces of 2 x 1.3 and the x = -1 face; no cap
    assert cut.area == pytest.approx(4 * 2 * 1.3 + 4, rel=1e-9)
    assert np.abs(c[:, 0].astype(float) - (v[:, 0] + 1) * 100).max() <= 0.5 + 1e-9
    # connected: the new vertices on each crossed edge are shared
    assert len(trimesh.Trimesh(v, f).split(only_watertight=False)) == 1


def test_curve_geometry_is_exact():
    cp = np.array(_curves()[1]["control_points"], float)
    a, b = cg.split_bezier(cp, 0.3)
    t = np.linspace(0, 1, 11)
    np.testing.assert_allclose(bezier_points(a, t), bezier_points(cp, 0.3 * t), atol=1e-12)
    np.testing.assert_allclose(bezier_points(b, t), bezier_points(cp, 0.3 + 0.7 * t), atol=1e-12)
    np.testing.assert_allclose(bezier_points(cg.sub_bezier(cp, 0.2, 0.6), t),
                               bezier_points(cp, 0.2 + 0.4 * t), atol=1e-12)
    line = _curves()[0]
    bez = cg.to_bezier(line)
    np.testing.assert_allclose(bezier_points(np.array(bez["control_points"]), t),
                               np.outer(t, [1, 0, 0]), atol=1e-12)
    assert cg.to_line(bez) == {"type": "line", "points": [[0.0, 0, 0], [1.0, 0, 0]]}
    # clipping: a line exactly, a Bezier into the exact pieces inside
    assert cg.clip(line, [0.25, -1, -1], [2, 1, 1]) == [{"type": "line", "points": [[0.25, 0, 0], [1, 0, 0]]}]
    pieces = cg.clip({"type": "bezier", "control_points": cp.tolist()}, [0, -1, -1], [1.5, 1, 1])
    assert len(pieces) == 1
    end = np.array(pieces[0]["control_points"])[-1]
    assert end[0] == pytest.approx(1.5, abs=1e-9)
    assert cg.clip(line, [5, 5, 5], [6, 6, 6]) == []
    # joining two collinear lines gives one line; a line and a Bezier one Bezier through both
    j = cg.join({"type": "line", "points": [[0, 0, 0], [1, 0, 0]]},
                {"type": "line", "points": [[2, 0, 0], [1, 0, 0]]})
    assert j == {"type": "line", "points": [[0.0, 0, 0], [2.0, 0, 0]]}
    jb = cg.join(_curves()[0], _curves()[1])
    assert jb["type"] == "bezier"
    s = sample_curve(jb, n=200)
    for c in _curves()[:2]:
        d = np.linalg.norm(sample_curve(c, n=50)[:, None] - s[None], axis=2).min(1)
        assert d.max() < 0.15  # one cubic through both: close, not exact


# -- recon edit ------------------------------------------------------------------------------
@pytest.fixture()
def result_dir(tmp_path):
    from reconstruction.extract.curves import write_curves_json
    from reconstruction.extract.mesh_io import write_mesh

    d = tmp_path / "result"
    m = _dumbbell()
    write_mesh(d / "mesh.ply", m.vertices, m.faces, m.colors)
    write_curves_json(d / "curves.json", _curves())
    return d


def _recon(*args):
    return subprocess.run([sys.executable, "-m", "reconstruction.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_recon_edit_applies_an_ops_file_and_writes_every_format(result_dir, tmp_path):
    ops = [{"op": "cage", "kind": "polycube", "cubes": 3},
           {"op": "scale_box", "box": 2, "factor": 1.25},
           {"op": "move_cage", "vertices": [0, 1], "delta": [0, 0, 0.3]},
           {"op": "crop", "min": [-2.5, -2, -2], "max": [3.5, 2, 2]},
           {"op": "move_control_point", "curve": 1, "point": 1, "to": [1.2, 0.8, 0.1]},
           {"op": "delete_curve", "index": 0}]
    (tmp_path / "ops.json").write_text(json.dumps(ops))
    before = {p.name: p.read_bytes() for p in result_dir.iterdir()}
    out = tmp_path / "edited"
    proc = _recon("edit", result_dir, "--ops", tmp_path / "ops.json", "--out", out)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["ops"] == 6 and summary["curves"] == 3
    names = {"mesh.ply", "mesh.obj", "mesh.glb", "mesh.stl", "curves.json", "curves.obj",
             "curves.ply", "curves.dxf", "edits.json", "bounds.json"}
    assert names <= {p.name for p in out.iterdir()}
    # the same as applying the ops here
    expect = apply_all(EditDocument(mesh=_dumbbell(), curves=_curves()), parse_ops(ops))
    got = trimesh.load(out / "mesh.ply", process=False)
    np.testing.assert_allclose(got.vertices, expect.mesh.vertices, atol=1e-5)  # float32 PLY
    assert np.array_equal(got.faces, expect.mesh.faces)
    assert np.array_equal(got.visual.vertex_colors, expect.mesh.colors)
    for fmt in ("obj", "glb", "stl"):
        other = trimesh.load(out / f"mesh.{fmt}", force="mesh")
        assert other.area == pytest.approx(got.area, rel=1e-4)
    assert json.loads((out / "curves.json").read_text())["curves"] == expect.curves
    assert json.loads((out / "bounds.json").read_text()) == {"min": [-2.5, -2, -2], "max": [3.5, 2, 2]}
    assert [o.to_json() for o in parse_ops(json.loads((out / "edits.json").read_text()))] == [
        o.to_json() for o in parse_ops(ops)]
    # the original result is untouched
    assert {p.name: p.read_bytes() for p in result_dir.iterdir()} == before


def test_recon_edit_refuses_bad_ops_with_a_message(result_dir, tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps([{"op": "scale_box", "box": 9, "factor": 2}]))
    proc = _recon("edit", result_dir, "--ops", tmp_path / "bad.json", "--out", tmp_path / "o")
    assert proc.returncode == 2
    assert "fit one first" in proc.stderr and "Traceback" not in proc.stderr
    (tmp_path / "broken.json").write_text("[{")
    proc = _recon("edit", result_dir, "--ops", tmp_path / "broken.json", "--out", tmp_path / "o")
    assert proc.returncode == 2 and "not a JSON edits file" in proc.stderr
    proc = _recon("edit", result_dir, "--ops", tmp_path / "bad.json", "--out", result_dir)
    assert proc.returncode == 2 and "original stays" in proc.stderr


def test_a_crop_box_bounds_the_next_training(demo_small, tmp_path):
    (tmp_path / "bounds.json").write_text(json.dumps({"min": [-0.8, -0.7, -0.6], "max": [0.6, 0.7, 0.5]}))
    out = tmp_path / "fit"
    proc = _recon("fit", demo_small, "--method", "nerf", "--steps", "2", "--out", out,
                  "--bounds", tmp_path / "bounds.json", "--quiet")
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["bounds"] == [[-0.8, -0.7, -0.6], [0.6, 0.7, 0.5]]
    proc = _recon("fit", demo_small, "--steps", "2", "--out", out, "--bounds", "1,1,1,0,0,0")
    assert proc.returncode == 2 and "must be below max" in proc.stderr
