"""The novel-view preview: the viewport's camera as an engine camera, rendered by the field."""

from __future__ import annotations

import numpy as np
from test_app_training import TINY, capture, settings_file, tiny_capture, twindow  # noqa: F401
from test_app_window import needs_display, no_leftovers  # noqa: F401

from app.viewport import view_camera


def test_view_camera_is_opengl_c2w_looking_at_the_focal_point():
    c2w, fx, fy, cx, cy = view_camera((0, -4, 0), (0, 0, 0), (0, 0, 1), 30.0, 64, 48)
    np.testing.assert_allclose(c2w[:3, 3], [0, -4, 0])
    np.testing.assert_allclose(-c2w[:3, 2], [0, 1, 0], atol=1e-12)  # looks down -Z
    np.testing.assert_allclose(c2w[:3, 1], [0, 0, 1], atol=1e-12)  # +Y up
    np.testing.assert_allclose(c2w[:3, 0], [1, 0, 0], atol=1e-12)  # +X right
    assert np.allclose(c2w[:3, :3] @ c2w[:3, :3].T, np.eye(3))
    assert fx == fy and abs(fy - 24 / np.tan(np.radians(15))) < 1e-9
    assert (cx, cy) == (32.0, 24.0)


@needs_display
def test_preview_renders_the_field_and_follows_the_camera(qtbot, twindow, capture):  # noqa: F811
    window = twindow
    window.view_sizes = (16, 32)  # seconds per view on a CPU: keep the test short
    assert window.open_path(capture)
    if window.methods is None:
        with qtbot.waitSignal(window.methods_loaded, timeout=60_000):
            pass
    assert window.start_training("sdf", steps=100_000, settings=TINY)
    qtbot.waitUntil(lambda: window.training.state == "training" and window.training.last_step > 5,
                    timeout=90_000)
    sizes: list[int] = []
    window.view_rendered.connect(sizes.append)

    def shot_after_move(azimuth: float) -> np.ndarray:
        sizes.clear()
        window.viewport.renderer.GetActiveCamera().Azimuth(azimuth)
        window.viewport.render()
        qtbot.waitUntil(lambda: window.view_sizes[1] in sizes, timeout=120_000)
        return window.view_image.copy()

    first = shot_after_move(5.0)
    assert window.view_sizes[0] in sizes or len(sizes) >= 1  # coarse while moving, then sharp
    assert max(first.shape[:2]) == window.view_sizes[1] and first.std() > 1.0
    second = shot_after_move(90.0)
    assert np.abs(first.astype(int) - second.astype(int)).mean() > 0.5
    window.save_window_screenshot(window.settings.fileName().replace("settings.ini", "preview.png"))
    window.method_panel.stop_button.click()
    qtbot.waitUntil(lambda: not window.training.active, timeout=60_000)
    window.close()
    assert window.engine is None
