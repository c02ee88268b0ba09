"""Single-key shortcuts (number keys pick classes, letters pick tools) win over a focused control.

Why: after Cancel in the status bar or closing the Problems panel, Qt moves the focus to the
next control, often the brush Size spin box; a spin box claims printable keys (ShortcutOverride),
so "4" (a class) set the brush to 4 px. Text fields (line edits, text edits, editable combos)
keep their keys: typing a name must never pick a class.

The same application filter tells the window about its resizes before its layout runs (the only
moment the side panels still have the user's widths; see MainWindow.before_resize).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent, QKeySequence, QResizeEvent
from PySide6.QtWidgets import QAbstractSpinBox, QLineEdit, QPlainTextEdit, QTextEdit, QWidget

__all__ = ["ShortcutKeysFirst"]

#: keys a spin box still needs for itself (editing its value with the keyboard)
_SPIN_KEYS = {
    Qt.Key.Key_Up,
    Qt.Key.Key_Down,
    Qt.Key.Key_PageUp,
    Qt.Key.Key_PageDown,
    Qt.Key.Key_Left,
    Qt.Key.Key_Right,
}
_MODIFIERS = (
    Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier | Qt.KeyboardModifier.MetaModifier
)


def _is_text_field(widget: QObject) -> bool:
    if isinstance(widget, (QTextEdit, QPlainTextEdit)):
        return True
    if isinstance(widget, QLineEdit):
        return not isinstance(widget.parent(), QAbstractSpinBox)  # a spin box's editor is not a text field
    return False


class ShortcutKeysFirst(QObject):
    """Application event filter: the window's single-key shortcuts are not overridden by non-text controls."""

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self.window = window

    def _bound(self, event: QKeyEvent) -> bool:
        pressed = QKeySequence(event.keyCombination())
        for action in self.window.actions():
            if action.isEnabled() and any(
                seq.matches(pressed) == QKeySequence.SequenceMatch.ExactMatch for seq in action.shortcuts()
            ):
                return True
        return False

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize and watched is self.window and isinstance(event, QResizeEvent):
            # Application filters run before the window's layout: the panels still have the user's widths.
            self.window.before_resize(event.oldSize().width(), event.size().width())
            return False
        if event.type() != QEvent.Type.ShortcutOverride or not isinstance(event, QKeyEvent):
            return False
        if (
            event.modifiers() & _MODIFIERS
            or not isinstance(watched, QWidget)
            or watched.window() is not self.window
        ):
            return False
        if _is_text_field(watched):
            return False
        spin = watched if isinstance(watched, QAbstractSpinBox) else watched.parent()
        if isinstance(spin, QAbstractSpinBox) and event.key() in _SPIN_KEYS:
            return False
        if self._bound(event):
            event.ignore()  # not overridden: the window's shortcut gets the key
            return True
        return False
