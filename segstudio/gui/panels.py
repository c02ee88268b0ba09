"""Opens the other engineers' windows (fine-tuning, versions, export, import) on demand.

Imported lazily when the menu action is triggered, so a missing or broken module costs a
message, never the editor (and the fine-tuning panel's imports stay off the start-up path).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QDialog, QWidget

__all__ = ["open_panel", "place_window"]


def place_window(widget: QWidget, parent: QWidget) -> None:
    """Centre a top-level window on the main window, inside its screen; Esc closes it.

    Why: a window created from a child widget and shown later is placed by the window manager
    (it was seen at the screen corner); dialogs handle Esc themselves, plain windows do not.
    """
    main = parent.window()
    frame = widget.frameGeometry()
    frame.moveCenter(main.frameGeometry().center())
    screen = main.screen().availableGeometry() if main.screen() is not None else None
    if screen is not None:
        extra_w = widget.frameGeometry().width() - widget.width()  # window-manager frame, once shown
        extra_h = widget.frameGeometry().height() - widget.height()
        widget.resize(
            min(widget.width(), screen.width() - extra_w), min(widget.height(), screen.height() - extra_h)
        )
        frame.setSize(widget.frameGeometry().size())
        frame.moveLeft(max(screen.left(), min(frame.left(), screen.right() - frame.width())))
        frame.moveTop(max(screen.top(), min(frame.top(), screen.bottom() - frame.height())))
    widget.move(frame.topLeft())
    if not isinstance(widget, QDialog) and widget.findChild(_EscapeCloser) is None:
        widget.installEventFilter(_EscapeCloser(widget))


class _EscapeCloser(QObject):
    """Closes its window on an Esc that no child used (a combo's popup or an edit keeps its own Esc)."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            watched is self.parent()
            and event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and event.key() == Qt.Key.Key_Escape
        ):
            self.parent().close()
            return True
        return False


def open_panel(
    parent: QWidget,
    module_name: str,
    class_name: str,
    args: tuple[Any, ...],
    on_error: Callable[[str], None],
    modal: bool = False,
    connect: Callable[[Any], None] | None = None,
) -> Any:
    """Create `segstudio.gui.<module_name>.<class_name>(*args)` and show it; None (and on_error) if absent."""
    try:
        module = importlib.import_module(f"segstudio.gui.{module_name}")
        cls = getattr(module, class_name)
    except (ImportError, AttributeError) as exc:
        on_error(f"This feature is not available in this build yet ({exc}).")
        return None
    widget = cls(*args)
    if connect is not None:
        connect(widget)
    if modal and hasattr(widget, "exec"):
        widget.exec()  # a parented QDialog centres itself on the window when shown
        return widget
    if not widget.isWindow():
        widget.setWindowFlag(Qt.WindowType.Window, True)
    widget.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    widget.show()
    place_window(widget, parent)  # after show: its final size is known
    widget.raise_()
    return widget
