"""Edit > Undo/Redo of method settings and display toggles; the Help menu."""

from __future__ import annotations

import json

from test_app_window import (  # noqa: F401  (no_leftovers: autouse; window: a fixture)
    needs_display,
    no_leftovers,
    window,
)

CATALOG = {"methods": [{"name": "toy", "doc": "A toy method.", "snapshot_kinds": ["mesh"],
                        "fields": [
                            {"name": "lr", "type": "float", "default": 0.01, "doc": "step size"},
                            {"name": "levels", "type": "int", "default": 16, "doc": "grid levels"},
                            {"name": "white", "type": "bool", "default": True, "doc": "background"},
                        ]}]}


def _with_catalog(win):
    from app.training import parse_catalog

    win._apply_catalog(parse_catalog(json.dumps(CATALOG)))
    win.method_panel.settings_form.reset()
    win.undo_stack.clear()
    return win.method_panel.settings_form


@needs_display
def test_settings_changes_undo_and_redo(qtbot, window):  # noqa: F811
    form = _with_catalog(window)
    assert window.undo_stack.count() == 0
    form.set_value("levels", 12)
    form.set_value("white", False)
    assert window.undo_stack.count() == 2
    assert window.undo_action.isEnabled()
    window.undo_action.trigger()
    assert form.values()["white"] is True and form.values()["levels"] == 12
    window.undo_action.trigger()
    assert form.values()["levels"] == 16
    assert not window.undo_action.isEnabled()
    window.redo_action.trigger()
    assert form.values()["levels"] == 12
    assert window.undo_stack.count() == 2  # undo/redo themselves are not recorded
    # typing in one field is one step
    editor = form.editors["lr"]
    editor.clear()
    for ch in "0.05":
        editor.insert(ch)
    assert form.values()["lr"] == 0.05
    assert window.undo_stack.index() == 2  # the redo of "white" was dropped by the new edit
    window.undo_action.trigger()
    assert form.values()["lr"] == 0.01


@needs_display
def test_display_toggles_undo_and_redo(qtbot, window):  # noqa: F811
    start = window.model.wireframe
    window.wireframe_action.trigger()
    window.bounds_action.trigger()
    assert window.model.wireframe is not start and window.model.show_bounds
    window.undo_stack.undo()
    assert not window.model.show_bounds
    window.undo_stack.undo()
    assert window.model.wireframe is start
    window.undo_stack.redo()
    assert window.model.wireframe is not start
    assert window.undo_stack.count() == 2
    assert "Wireframe" in window.undo_stack.undoText()


@needs_display
def test_help_menu(qtbot, window):  # noqa: F811
    titles = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert titles == ["File", "Edit", "View", "Training", "Help"]
    assert window.documentation_path().is_file()
    rows = dict(window.shortcut_rows(window))
    assert rows["Undo"] and rows["Wireframe"] == "W"
    assert window.version()
