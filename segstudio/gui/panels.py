"""Opens the other engineers' windows (fine-tuning, versions, export, import) on demand.

Imported lazily when the menu action is triggered, so a missing or broken module costs a
message, never the editor (and the fine-tuning panel's imports stay off the start-up path).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
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
        widget.resize(min(widget.width(), screen.width()), min(widget.height(), screen.height() - 40))
        frame.setSize(widget.frameGeometry().size())
        frame.moveLeft(max(screen.left(), min(frame.left(), screen.right() - frame.width())))
        frame.moveTop(max(screen.top(), min(frame.top(), screen.bottom() - frame.height())))
    widget.move(frame.topLeft())
    if not isinstance(widget, QDialog) and not getattr(widget, "_closes_on_escape", False):
        shortcut = QShortcut(QKeySequence(Qt.Key.Key_Escape), widget)
        shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        shortcut.activated.connect(widget.close)
        widget._closes_on_escape = True


def open_panel(parent: QWidget, module_name: str, class_name: str, args: tuple[Any, ...],
               on_error: Callable[[str], None], modal: bool = False,
               connect: Callable[[Any], None] | None = None) -> Any:
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
        widget.adjustSize()
        place_window(widget, parent)
        widget.exec()
        return widget
    if not widget.isWindow():
        widget.setWindowFlag(Qt.WindowType.Window, True)
    widget.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    widget.show()
    place_window(widget, parent)  # after show: its final size is known
    widget.raise_()
    return widget
