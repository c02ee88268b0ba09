"""Opens the other engineers' windows (fine-tuning, versions, export, import) on demand.

Imported lazily when the menu action is triggered, so a missing or broken module costs a
message, never the editor (and the fine-tuning panel's imports stay off the start-up path).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget

__all__ = ["open_panel"]


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
        widget.exec()
        return widget
    if not widget.isWindow():
        widget.setWindowFlag(Qt.WindowType.Window, True)
    widget.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    widget.show()
    widget.raise_()
    return widget
