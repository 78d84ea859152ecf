"""Undoable window changes for the window's ``QUndoStack`` (Edit > Undo / Redo).

Each command holds the value before and after; applying one sets the widget or action
while :attr:`UndoRecorder.applying` is set, so the change it causes is not recorded again.
Method settings typed in one field merge into one step; geometry edits will join later.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QAction, QUndoCommand, QUndoStack

SETTINGS_ID = 1001
"""``QUndoCommand.id`` of settings changes (consecutive edits of one field merge)."""


class UndoRecorder:
    """Shared state of the commands: the stack, and whether a command is being applied."""

    def __init__(self, stack: QUndoStack) -> None:
        self.stack = stack
        self.applying = False

    def push(self, command: QUndoCommand) -> None:
        if not self.applying:
            self.stack.push(command)


class ToggleCommand(QUndoCommand):
    """A checkable action (a View toggle) switched on or off."""

    def __init__(self, recorder: UndoRecorder, action: QAction, checked: bool) -> None:
        label = action.text().replace("&", "")
        super().__init__(f"{'Show' if checked else 'Hide'} {label}" if not label.startswith("Show")
                         else f"{label} {'on' if checked else 'off'}")
        self.recorder, self.action, self.checked = recorder, action, checked

    def _set(self, checked: bool) -> None:
        if self.action.isChecked() == checked:
            return  # the first redo: the action is already in this state
        self.recorder.applying = True
        try:
            self.action.setChecked(checked)
        finally:
            self.recorder.applying = False

    def redo(self) -> None:
        self._set(self.checked)

    def undo(self) -> None:
        self._set(not self.checked)


class SettingsCommand(QUndoCommand):
    """One method setting changed from ``old`` to ``new`` in the Method panel's form."""

    def __init__(self, recorder: UndoRecorder, form, method: str, name: str,
                 old: Any, new: Any) -> None:
        super().__init__(f"Set {name}")
        self.recorder, self.form = recorder, form
        self.method, self.name, self.old, self.new = method, name, old, new

    def id(self) -> int:  # noqa: A003 - Qt API
        return SETTINGS_ID

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802 - Qt API
        if not isinstance(other, SettingsCommand) or (other.method, other.name) != (
                self.method, self.name):
            return False
        self.new = other.new
        return True

    def _set(self, value: Any) -> None:
        form = self.form
        if form.method is None or form.method.name != self.method or self.name not in form.editors:
            return  # another method is shown now: nothing of this one to set
        try:
            if form.values().get(self.name) == value:
                return
        except ValueError:
            pass
        self.recorder.applying = True
        try:
            form.set_value(self.name, value)
        finally:
            self.recorder.applying = False

    def redo(self) -> None:
        self._set(self.new)

    def undo(self) -> None:
        self._set(self.old)
