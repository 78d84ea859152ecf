"""Curves, edge points and splats in the viewport: live snapshots and result files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_app_window import (  # noqa: F401  (no_leftovers: autouse; window: a fixture)
    METRICS,
    needs_display,
    no_leftovers,
    window,  # noqa: F811
)

from app.viewport import (
    BEZIER_SAMPLES,
    COLOR_ARRAY,
    curves_polydata,
    edge_points_polydata,
    read_curves,
    read_splats,
    splats_polydata,
)

CURVES = {"curves": [
    {"type": "line", "points": [[0, 0, 0], [1, 0, 0]]},
    {"type": "bezier", "control_points": [[0, 0, 0], [0, 1, 0], [1, 1, 0], [1, 1, 1]]},
    {"type": "polyline", "points": [[0, 0, 1], [0.5, 0, 1], [0.5, 0.5, 1], [1, 0.5, 1]]},
]}


def curves_payload():
    points = np.array([[0, 0, 0], [1, 0, 0], [0, 0, 1], [0, 1, 1], [1, 1, 1],
                       [1, 0, 1], [2, 0, 1]], dtype=np.float32)
    return {"points": points, "offsets": np.array([0, 2, 5, 7], dtype=np.int64),
            "types": np.array([0, 2, 1], dtype=np.int8)}


def write_splats_ply(path: Path, n: int = 50, seed: int = 0) -> np.ndarray:
    """A 3DGS-layout binary PLY of n splats; returns the f_dc values written."""
    rng = np.random.default_rng(seed)
    names = (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", "opacity"]
             + [f"scale_{i}" for i in range(3)] + [f"rot_{i}" for i in range(4)])
    data = np.zeros((n, len(names)), dtype=np.float32)
    data[:, 0:3] = rng.uniform(-1, 1, (n, 3))
    data[:, 6:9] = rng.normal(0, 1, (n, 3))
    data[:, 9] = rng.normal(0, 2, n)
    data[:, 10:13] = np.log(0.02)
    data[:, 13] = 1.0
    header = "ply\nformat binary_little_endian 1.0\n" + f"element vertex {n}\n"
    header += "".join(f"property float {p}\n" for p in names) + "end_header\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header.encode() + data.astype("<f4").tobytes())
    return data


def test_curves_payload_is_one_line_cell_per_curve():
    mesh = curves_polydata(curves_payload())
    assert mesh.n_points == 7 and mesh.n_cells == 3 and mesh.n_lines == 3
    colors = mesh.cell_data[COLOR_ARRAY]
    assert colors.shape == (3, 3) and not np.array_equal(colors[0], colors[1])
    with pytest.raises(ValueError):
        curves_polydata({**curves_payload(), "types": np.zeros(2, np.int8)})


def test_edge_points_and_splats_payloads():
    n = 100
    rng = np.random.default_rng(1)
    pts = edge_points_polydata({"positions": rng.normal(size=(n, 3)).astype(np.float32),
                                "values": rng.uniform(size=n).astype(np.float32)})
    assert pts.n_points == n and pts.point_data[COLOR_ARRAY].shape == (n, 3)
    splats = splats_polydata({"positions": rng.normal(size=(n, 3)), "colors": rng.uniform(size=(n, 3)),
                              "scales": np.full(n, 0.01), "opacity": np.ones(n)})
    assert splats.n_points == n and "scale" in splats.point_data


def test_curves_json_samples_beziers(tmp_path):
    path = tmp_path / "curves.json"
    path.write_text(json.dumps(CURVES))
    payload = read_curves(path)
    assert list(np.diff(payload["offsets"])) == [2, BEZIER_SAMPLES, 4]
    assert list(payload["types"]) == [0, 1, 2]
    np.testing.assert_allclose(payload["points"][2], [0, 0, 0])
    np.testing.assert_allclose(payload["points"][2 + BEZIER_SAMPLES - 1], [1, 1, 1], atol=1e-6)
    path.write_text(json.dumps({"curves": [{"type": "spiral"}]}))
    with pytest.raises(ValueError, match="curve 0"):
        read_curves(path)


def test_splats_ply_is_decoded(tmp_path):
    data = write_splats_ply(tmp_path / "splats.ply", n=40)
    payload = read_splats(tmp_path / "splats.ply")
    assert payload["positions"].shape == (40, 3)
    np.testing.assert_allclose(payload["colors"], np.clip(0.5 + 0.28209479 * data[:, 6:9], 0, 1),
                               atol=1e-5)
    np.testing.assert_allclose(payload["opacity"], 1 / (1 + np.exp(-data[:, 9])), atol=1e-5)
    np.testing.assert_allclose(payload["scales"], 0.02, rtol=1e-5)


@needs_display
def test_live_geometry_snapshots_are_updated_in_place(qtbot, window, tmp_path):  # noqa: F811
    from reconstruction import protocol as P

    rng = np.random.default_rng(2)
    window.training.handle(P.SnapshotEvent("curves", curves_payload(), 5))
    window.training.handle(P.SnapshotEvent("edge_points", {
        "positions": rng.normal(size=(300, 3)).astype(np.float32),
        "values": rng.uniform(size=300).astype(np.float32)}, 5))
    window.training.handle(P.SnapshotEvent("splats", {
        "positions": rng.normal(size=(200, 3)).astype(np.float32),
        "colors": rng.uniform(size=(200, 3)).astype(np.float32),
        "scales": np.full(200, 0.02, np.float32), "opacity": np.ones(200, np.float32)}, 5))
    window._draw_snapshots()
    assert window.geometry["curves"].n_cells == 3
    assert window.geometry["edge_points"].n_points == 300
    assert window.geometry["splats"].n_points == 200
    actors = dict(window.geometry_actors)
    assert set(actors) == {"curves", "edge_points", "splats"}
    window.save_window_screenshot(tmp_path / "live_geometry.png")

    payload = curves_payload()
    payload["points"] = payload["points"] * 2
    window.training.handle(P.SnapshotEvent("curves", payload, 9))
    window._draw_snapshots()
    assert window.geometry_actors["curves"] is actors["curves"]  # same actor, new data
    assert window.geometry["curves"].bounds[1] == pytest.approx(4.0)


@needs_display
def test_result_with_curves_and_splats_shows_them(qtbot, window, tmp_path):  # noqa: F811
    folder = tmp_path / "edge_result"
    folder.mkdir()
    (folder / "curves.json").write_text(json.dumps(CURVES))
    write_splats_ply(folder / "splats.ply", n=60)
    (folder / "metrics.json").write_text(json.dumps({**METRICS, "method": "edge"}))
    shown = []
    window.geometry_shown.connect(lambda kind, n: shown.append((kind, n)))
    assert window.open_path(folder)
    assert ("curves", 2 + BEZIER_SAMPLES + 4) in shown and ("splats", 60) in shown
    assert window.geometry["curves"].n_cells == 3
    assert window.geometry_actors["splats"].GetVisibility()
    out = window.save_window_screenshot(tmp_path / "result_geometry.png")
    artifacts = Path(__file__).resolve().parent / "artifacts"
    artifacts.mkdir(exist_ok=True)
    out.replace(artifacts / out.name)
