"""Mesh extraction and export: marching cubes on an analytic SDF, every format read back.

What "intact" means per format (see reconstruction/extract/mesh_io.py):
ply and glb keep vertices (float32, in order), faces (in order) and RGBA colours exactly;
obj keeps faces and colours exactly and positions to 8 decimals; stl keeps faces in order and
float32 corner positions, has no colours and no shared vertices (welded by position on load).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import trimesh

from reconstruction.cli import main
from reconstruction.extract.marching_cubes import (
    marching_cubes,
    sample_grid,
    vertex_normals,
    weld,
)
from reconstruction.extract.mesh_io import MESH_FORMATS, decimate, mesh_bytes, write_mesh

LO, HI = np.full(3, -1.0), np.full(3, 1.0)


def sphere_mesh(radius: float, centre, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Marching cubes of the exact sphere SDF |p - centre| - radius on [-1, 1]^3."""
    import torch

    c = torch.tensor(centre, dtype=torch.float32)
    vol = sample_grid(lambda p: (p - c).norm(dim=-1) - radius, LO, HI, resolution)
    return marching_cubes(vol, 0.0, LO, HI, inside_is_greater=False)


def position_colors(verts: np.ndarray) -> np.ndarray:  # [V, 3] uint8, a smooth function of position
    """verts: [V, 3] in [-1, 1]^3."""
    return (np.clip(0.5 + 0.5 * verts, 0, 1) * 255 + 0.5).astype(np.uint8)


@pytest.fixture(scope="module")
def coloured_sphere():
    """A closed marching-cubes sphere with a different random colour at every vertex."""
    verts, faces = sphere_mesh(0.6, (0.03, -0.02, 0.05), 40)
    colors = np.random.default_rng(0).integers(0, 256, (len(verts), 3), dtype=np.uint8)
    return verts, faces, colors


def seamed_cube() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A unit cube with 4 vertices per side (24, each corner stored 3 times) and a colour per
    side: vertices at the same place carry different colours, so merging them loses colour."""
    box = trimesh.creation.box()
    verts = box.vertices[box.faces].reshape(-1, 3)  # [36, 3] one vertex per face corner
    side = np.argmax(np.abs(box.face_normals), 1) * 2 + (box.face_normals.sum(1) > 0)  # [12]
    keys = np.concatenate([side.repeat(3)[:, None], verts], 1)
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)  # 4 corners x 6 sides
    palette = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255],
                        [255, 0, 255]], np.uint8)
    faces = inverse.reshape(-1, 3)
    return uniq[:, 1:].astype(np.float32), faces, palette[uniq[:, 0].astype(int)]


@pytest.fixture(params=["sphere", "seamed-cube"])
def any_mesh(request, coloured_sphere):
    return coloured_sphere if request.param == "sphere" else seamed_cube()


def load(path: Path) -> trimesh.Trimesh:
    """One mesh as stored: no merging, no reordering (a glb scene is flattened)."""
    mesh = trimesh.load(path, process=False, force="mesh")
    assert isinstance(mesh, trimesh.Trimesh)
    return mesh


# -- marching cubes on an analytic SDF ----------------------------------------------------------


@pytest.mark.parametrize(
    "radius, centre, resolution",
    [
        (0.6, (0.03, -0.02, 0.05), 64),  # generic: the surface crosses grid edges in between
        (0.5, (0.0, 0.0, 0.0), 41),  # grid step 0.05: the surface passes exactly through grid
        # points, where marching cubes puts coincident vertices and zero-area triangles
    ],
    ids=["generic", "through-grid-points"],
)
def test_marching_cubes_sphere_area_and_volume(radius, centre, resolution):
    verts, faces = sphere_mesh(radius, centre, resolution)
    mesh = trimesh.Trimesh(verts, faces, process=False)

    assert mesh.area == pytest.approx(4 * np.pi * radius**2, rel=0.01)
    # positive: faces wind counter-clockwise seen from outside
    assert mesh.volume == pytest.approx(4 / 3 * np.pi * radius**3, rel=0.01)
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert mesh.euler_number == 2  # one closed sphere, no handles or extra shells
    # vertices on the sphere, unique positions, normals pointing away from the centre
    step = 2.0 / (resolution - 1)
    dist = np.linalg.norm(verts - np.asarray(centre), axis=1)
    assert np.abs(dist - radius).max() < 0.05 * step
    assert len(np.unique(verts, axis=0)) == len(verts)
    normals = vertex_normals(verts, faces)
    assert (np.einsum("ij,ij->i", normals, verts - np.asarray(centre)) > 0).all()


def test_marching_cubes_density_and_sdf_conventions_agree():
    vol = sample_grid(lambda p: p.norm(dim=-1) - 0.55, LO, HI, 24)
    v_sdf, f_sdf = marching_cubes(vol, 0.0, LO, HI, inside_is_greater=False)
    v_den, f_den = marching_cubes(1.0 - vol, 1.0, LO, HI)  # density-like: object above level
    np.testing.assert_allclose(v_den, v_sdf, atol=1e-6)
    np.testing.assert_array_equal(f_den, f_sdf)
    assert trimesh.Trimesh(v_den, f_den, process=False).volume > 0


def test_weld_merges_coincident_vertices_and_drops_collapsed_faces():
    # a tetrahedron whose vertex 0 is stored twice (0 and 4), with a sliver face on both copies
    verts = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]], np.float32)
    faces = np.array([[0, 2, 1], [4, 1, 3], [0, 3, 2], [1, 2, 3], [0, 4, 1]])
    v, f = weld(verts, faces)
    np.testing.assert_array_equal(v, verts[:4])
    np.testing.assert_array_equal(f, [[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    assert trimesh.Trimesh(v, f, process=False).is_watertight
    # nothing to weld: returned unchanged
    v2, f2 = weld(v, f)
    assert v2 is v and f2 is f


# -- formats ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", MESH_FORMATS)
def test_export_round_trips_through_trimesh(any_mesh, tmp_path, fmt):
    verts, faces, colors = any_mesh
    path = write_mesh(tmp_path / f"mesh.{fmt}", verts, faces, colors)
    back = load(path)
    if fmt in ("ply", "glb", "obj"):
        assert len(back.vertices) == len(verts)
        np.testing.assert_array_equal(back.faces, faces)
        if fmt == "obj":  # text, 8 decimals
            np.testing.assert_allclose(back.vertices, verts, rtol=0, atol=1e-8)
        else:
            np.testing.assert_array_equal(back.vertices.astype(np.float32), verts)
        assert back.visual.kind == "vertex"
        rgba = np.asarray(back.visual.vertex_colors)
        np.testing.assert_array_equal(rgba[:, :3], colors)
        assert (rgba[:, 3] == 255).all()
    else:  # stl: corner positions per face, in face order; no colours
        assert len(back.faces) == len(faces)
        np.testing.assert_array_equal(back.triangles.astype(np.float32), verts[faces])
        assert back.visual.kind is None
        welded = trimesh.load(path)  # trimesh merges corners by position by default
        np.testing.assert_array_equal(np.unique(welded.vertices.astype(np.float32), axis=0),
                                      np.unique(verts, axis=0))
        assert welded.is_watertight and welded.volume > 0  # both meshes are closed


@pytest.mark.parametrize("fmt", ["ply", "glb", "obj"])
def test_float_colours_are_stored_as_rounded_bytes(tmp_path, fmt):
    verts, faces = sphere_mesh(0.5, (0.0, 0.1, 0.0), 16)
    colors = np.random.default_rng(1).random((len(verts), 3)).astype(np.float32)
    back = load(write_mesh(tmp_path / f"m.{fmt}", verts, faces, colors))
    expect = np.round(colors * 255).astype(np.uint8)
    np.testing.assert_array_equal(np.asarray(back.visual.vertex_colors)[:, :3], expect)


def _glb(data: bytes) -> tuple[dict, bytes]:
    """Check the GLB container (glTF 2.0 binary) and return its JSON and BIN chunks."""
    magic, version, length = struct.unpack_from("<4sII", data, 0)
    assert magic == b"glTF" and version == 2 and length == len(data)
    json_len, json_type = struct.unpack_from("<II", data, 12)
    assert json_type == 0x4E4F534A and json_len % 4 == 0  # "JSON", padded to 4 bytes
    doc = json.loads(data[20:20 + json_len])
    bin_len, bin_type = struct.unpack_from("<II", data, 20 + json_len)
    assert bin_type == 0x004E4942 and bin_len % 4 == 0  # "BIN\0"
    binary = data[28 + json_len:28 + json_len + bin_len]
    assert 28 + json_len + bin_len == len(data)
    return doc, binary


def _glb_json_only(data: bytes) -> tuple[dict, bytes]:
    """A GLB without binary data: header and JSON chunk only."""
    magic, version, length = struct.unpack_from("<4sII", data, 0)
    json_len, json_type = struct.unpack_from("<II", data, 12)
    assert (magic, version, length, json_type) == (b"glTF", 2, len(data), 0x4E4F534A)
    assert 20 + json_len == len(data) and json_len % 4 == 0
    return json.loads(data[20:]), b""


def _accessor(doc: dict, binary: bytes, index: int) -> np.ndarray:
    """Read one accessor (tightly packed) as numpy, checking it lies inside its buffer view."""
    dtypes = {5121: np.uint8, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
    widths = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}
    acc = doc["accessors"][index]
    view = doc["bufferViews"][acc["bufferView"]]
    assert view.get("buffer", 0) == 0 and "byteStride" not in view
    dtype, width = np.dtype(dtypes[acc["componentType"]]), widths[acc["type"]]
    start = view.get("byteOffset", 0) + acc.get("byteOffset", 0)
    assert start % dtype.itemsize == 0  # glTF alignment rule
    nbytes = acc["count"] * width * dtype.itemsize
    assert acc.get("byteOffset", 0) + nbytes <= view["byteLength"]
    assert view.get("byteOffset", 0) + view["byteLength"] <= doc["buffers"][0]["byteLength"]
    assert doc["buffers"][0]["byteLength"] <= len(binary)
    arr = np.frombuffer(binary, dtype, acc["count"] * width, start)
    return arr.reshape(acc["count"], width) if width > 1 else arr


def test_glb_is_valid_gltf2_binary(coloured_sphere):
    verts, faces, colors = coloured_sphere
    doc, binary = _glb(mesh_bytes("glb", verts, faces, colors))
    assert doc["asset"]["version"] == "2.0"
    assert len(doc["meshes"]) == 1 and len(doc["meshes"][0]["primitives"]) == 1
    scene = doc["scenes"][doc.get("scene", 0)]
    assert [doc["nodes"][n].get("mesh") for n in scene["nodes"]] == [0]
    prim = doc["meshes"][0]["primitives"][0]
    assert prim.get("mode", 4) == 4  # triangles
    attrs = prim["attributes"]
    assert {"POSITION", "NORMAL", "COLOR_0"} <= set(attrs)

    pos_acc = doc["accessors"][attrs["POSITION"]]
    assert (pos_acc["componentType"], pos_acc["type"]) == (5126, "VEC3")
    pos = _accessor(doc, binary, attrs["POSITION"])
    np.testing.assert_array_equal(pos, verts)
    # the spec requires POSITION min/max; viewers frame the object with them
    np.testing.assert_allclose(pos_acc["min"], verts.min(0), rtol=0, atol=1e-6)
    np.testing.assert_allclose(pos_acc["max"], verts.max(0), rtol=0, atol=1e-6)

    idx_acc = doc["accessors"][prim["indices"]]
    assert idx_acc["componentType"] in (5123, 5125) and idx_acc["type"] == "SCALAR"
    np.testing.assert_array_equal(_accessor(doc, binary, prim["indices"]).reshape(-1, 3), faces)

    col_acc = doc["accessors"][attrs["COLOR_0"]]
    assert col_acc["type"] in ("VEC3", "VEC4")
    col = _accessor(doc, binary, attrs["COLOR_0"])
    if col_acc["componentType"] == 5126:
        col = np.round(col * 255)
    else:
        assert col_acc["componentType"] == 5121 and col_acc["normalized"] is True
    np.testing.assert_array_equal(col[:, :3], colors)

    normals = _accessor(doc, binary, attrs["NORMAL"])
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-5)  # spec: unit
    assert (np.einsum("ij,ij->i", normals, verts - verts.mean(0)) > 0).all()  # outward


def test_glb_without_colours_has_no_color_attribute(coloured_sphere):
    verts, faces, _ = coloured_sphere
    doc, _ = _glb(mesh_bytes("glb", verts, faces))
    assert "COLOR_0" not in doc["meshes"][0]["primitives"][0]["attributes"]


@pytest.mark.parametrize("decimated", [False, True], ids=["full", "decimated"])
def test_stl_of_a_closed_surface_is_watertight(tmp_path, decimated):
    # the grid-aligned sphere: marching cubes makes coincident vertices there, which STL
    # (positions only) would turn into holes if they were not welded
    verts, faces = sphere_mesh(0.5, (0.0, 0.0, 0.0), 41)
    if decimated:
        verts, faces, _ = decimate(verts, faces, None, 800)
    stl = trimesh.load(write_mesh(tmp_path / "mesh.stl", verts, faces))
    assert len(stl.faces) == len(faces)
    assert stl.is_watertight and stl.is_winding_consistent
    assert stl.volume == pytest.approx(trimesh.Trimesh(verts, faces, process=False).volume,
                                       rel=1e-5)
    assert stl.volume > 0


def test_write_mesh_refuses_bad_input_and_leaves_nothing(tmp_path, coloured_sphere):
    verts, faces, colors = coloured_sphere
    with pytest.raises(ValueError, match="unknown mesh format"):
        write_mesh(tmp_path / "mesh.fbx", verts, faces)
    with pytest.raises(ValueError, match="one per vertex"):
        write_mesh(tmp_path / "mesh.ply", verts, faces, colors[:-1])
    with pytest.raises(ValueError, match="face indices"):
        write_mesh(tmp_path / "mesh.ply", verts, faces + len(verts))
    assert list(tmp_path.iterdir()) == []
    # an explicit format wins over the suffix
    path = write_mesh(tmp_path / "mesh.bin", verts, faces, colors, file_type="glb")
    assert path.read_bytes()[:4] == b"glTF"
    assert path.stat().st_mode & 0o044  # readable by others, like any new file (umask 022)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mesh.bin"]  # no temp files


@pytest.mark.parametrize("fmt", MESH_FORMATS)
def test_a_mesh_without_faces_gives_a_valid_empty_file(tmp_path, fmt):
    # a field with no surface yet (a very short fit) still exports without an error
    path = write_mesh(tmp_path / f"empty.{fmt}", np.zeros((0, 3), np.float32),
                      np.zeros((0, 3), np.int64), np.zeros((0, 3), np.float32))
    if fmt == "glb":
        doc, _ = _glb_json_only(path.read_bytes())
        assert doc["asset"]["version"] == "2.0" and not doc.get("meshes")
    mesh = trimesh.load(path, process=False, force="mesh")
    assert len(mesh.faces) == 0 and len(mesh.vertices) == 0


# -- decimation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("budget", [2000, 500, 120])
def test_decimate_keeps_colours_and_meets_the_face_budget(tmp_path, budget):
    verts, faces = sphere_mesh(0.6, (0.03, -0.02, 0.05), 64)
    colors = position_colors(verts)
    assert len(faces) > 4 * budget
    v, f, c = decimate(verts, faces, colors, budget)
    assert 0.9 * budget <= len(f) <= budget
    assert c is not None and c.dtype == np.uint8 and c.shape == (len(v), 3)
    assert np.unique(f).size == len(v)  # no unused vertices
    # each kept vertex carries the colour of the surface where it now is (colours follow
    # position here; nearest-vertex transfer is off by at most one original edge)
    err = np.abs(c.astype(int) - position_colors(v).astype(int))
    assert err.max() <= 12 and err.mean() < 2
    small = trimesh.Trimesh(v, f, process=False)
    assert small.is_watertight and small.volume > 0
    back = load(write_mesh(tmp_path / "small.ply", v, f, c))
    np.testing.assert_array_equal(np.asarray(back.visual.vertex_colors)[:, :3], c)


def test_decimate_leaves_a_mesh_within_budget_alone(coloured_sphere):
    verts, faces, colors = coloured_sphere
    v, f, c = decimate(verts, faces, colors, len(faces))
    assert v is verts and f is faces and c is colors


# -- recon export -------------------------------------------------------------------------------


@pytest.fixture
def result_dir(tmp_path, coloured_sphere) -> Path:
    """A result folder as `recon fit` leaves it: mesh.ply with vertex colours."""
    verts, faces, colors = coloured_sphere
    out = tmp_path / "result"
    write_mesh(out / "mesh.ply", verts, faces, colors)
    return out


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("recon: error: ")
    return err


@pytest.mark.parametrize("fmt", MESH_FORMATS)
def test_cli_export_every_format(result_dir, coloured_sphere, tmp_path, capsys, fmt):
    verts, faces, colors = coloured_sphere
    out = tmp_path / "exports" / f"sphere.{fmt}"
    assert main(["export", str(result_dir), "--format", fmt, "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["out"] == str(out) and report["faces"] == len(faces)
    assert report["colors"] is (fmt != "stl")
    if fmt == "stl":
        mesh = trimesh.load(out)
        assert mesh.is_watertight and len(mesh.vertices) == len(verts)
    else:
        mesh = load(out)
        assert len(mesh.vertices) == len(verts)
        np.testing.assert_array_equal(mesh.faces, faces)
        np.testing.assert_array_equal(np.asarray(mesh.visual.vertex_colors)[:, :3], colors)
    assert len(mesh.faces) == len(faces)


@pytest.mark.parametrize("fmt", MESH_FORMATS)
def test_cli_export_decimates_into_the_result_folder(result_dir, capsys, fmt):
    assert main(["export", str(result_dir), "--format", fmt, "--faces", "600"]) == 0
    out = result_dir / f"mesh_600.{fmt}"
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["out"] == str(out)
    mesh = trimesh.load(out, force="mesh")  # welded for stl, as stored for the others
    assert 540 <= len(mesh.faces) <= 600
    assert mesh.is_watertight
    if fmt != "stl":
        assert mesh.visual.kind == "vertex"
    # the full-resolution mesh.ply is untouched
    assert len(load(result_dir / "mesh.ply").faces) > 5000


def test_cli_export_format_from_out_suffix(result_dir, tmp_path, capsys):
    out = tmp_path / "sphere.glb"
    assert main(["export", str(result_dir), "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"glTF"
    assert main(["export", str(result_dir), "--format", "stl", "--out", str(out)]) == 2
    assert "--format" in _one_error_line(capsys)


def test_cli_export_without_a_mesh_fails_with_one_line(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["export", str(empty), "--format", "glb"]) == 2
    err = _one_error_line(capsys)
    assert "mesh.ply" in err and "recon fit" in err
    assert list(empty.iterdir()) == []

    curves = tmp_path / "edge"
    curves.mkdir()
    (curves / "curves.json").write_text('{"curves": []}')
    assert main(["export", str(curves)]) == 2
    assert "curves" in _one_error_line(capsys)

    assert main(["export", str(tmp_path / "missing")]) == 2
    assert "no such result folder" in _one_error_line(capsys)


def test_cli_export_of_a_damaged_or_empty_mesh_fails_with_one_line(tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "mesh.ply").write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 9\n")
    assert main(["export", str(bad), "--format", "obj"]) == 2
    assert "mesh.ply" in _one_error_line(capsys)

    empty = tmp_path / "empty"
    write_mesh(empty / "mesh.ply", np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int64))
    assert main(["export", str(empty), "--format", "glb"]) == 2
    assert "no faces" in _one_error_line(capsys)
    assert not (empty / "mesh.glb").exists()

    points = tmp_path / "points"
    points.mkdir()
    trimesh.PointCloud(np.random.default_rng(0).random((10, 3))).export(points / "mesh.ply")
    assert main(["export", str(points), "--format", "obj"]) == 2
    assert "no faces" in _one_error_line(capsys)
    assert not (points / "mesh.obj").exists()


def test_cli_export_to_an_unwritable_place_fails_with_one_line(result_dir, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    out = blocker / "sphere.glb"
    assert main(["export", str(result_dir), "--format", "glb", "--out", str(out)]) == 2
    err = _one_error_line(capsys)
    assert str(out) in err and "cannot be written" in err
    assert sorted(p.name for p in result_dir.iterdir()) == ["mesh.ply"]


def test_cli_export_rejects_a_bad_face_budget(result_dir, capsys):
    assert main(["export", str(result_dir), "--faces", "0"]) == 2
    assert "--faces" in _one_error_line(capsys)


# -- open3d -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def o3d():
    import open3d

    open3d.utility.set_verbosity_level(open3d.utility.VerbosityLevel.Error)
    return open3d


def _canonical(faces: np.ndarray) -> np.ndarray:  # [F, 3] rows sorted, winding kept
    """faces: [F, 3]; each triangle rotated to start at its smallest index, then rows sorted."""
    f = np.asarray(faces)
    rolled = np.stack([np.roll(f, -k, axis=1) for k in range(3)], 1)  # [F, 3 rotations, 3]
    f = rolled[np.arange(len(f)), np.argmin(f, axis=1)]
    return f[np.lexsort(f.T[::-1])]


@pytest.mark.parametrize("fmt", MESH_FORMATS)
def test_export_opens_in_open3d(o3d, any_mesh, tmp_path, fmt):
    from scipy.spatial import cKDTree

    verts, faces, colors = any_mesh
    path = write_mesh(tmp_path / f"mesh.{fmt}", verts, faces, colors)
    mesh = o3d.io.read_triangle_mesh(str(path))
    if fmt == "stl":  # corners per triangle: weld them, then compare by position
        mesh.remove_duplicated_vertices()
        ref_v, ref_f = np.unique(verts, axis=0, return_inverse=True)
        ref_f, ref_key, key = ref_f.reshape(-1)[faces], ref_v, np.asarray(mesh.vertices)
        assert not mesh.has_vertex_colors()
        assert mesh.is_watertight()  # both test meshes are closed surfaces
    else:
        assert mesh.has_vertex_colors()
        ref_f = faces
        # a vertex is its position and colour (the cube has coincident vertices of two colours)
        ref_key = np.concatenate([verts, colors / 255.0], 1)
        key = np.concatenate([np.asarray(mesh.vertices), np.asarray(mesh.vertex_colors)], 1)
        got = np.round(np.asarray(mesh.vertex_colors) * 255).astype(np.uint8)
        if fmt == "ply":  # read exactly as stored
            np.testing.assert_array_equal(np.asarray(mesh.vertices, np.float32), verts)
            np.testing.assert_array_equal(np.asarray(mesh.triangles), faces)
            np.testing.assert_array_equal(got, colors)
        # obj and glb go through assimp in open3d, which may renumber the vertices
    assert len(key) == len(ref_key) and len(mesh.triangles) == len(ref_f)
    dist, match = cKDTree(ref_key).query(key)
    assert dist.max() < 1e-6 and len(np.unique(match)) == len(ref_key)
    np.testing.assert_array_equal(_canonical(match[np.asarray(mesh.triangles)]),
                                  _canonical(ref_f))
