"""Opens the other engineers' windows (fine-tuning, versions, export, import) on demand.

Imported lazily when the menu action is triggered, so a missing or broken module costs a
message, never the editor (and the fine-tuning panel's imports stay off the start-up path).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QDialog, QWidget

__all__ = [
    "crf_panel",
    "effort_view",
    "export_dialog",
    "finetune_panel",
    "import_dialog",
    "open_panel",
    "place_window",
    "versions_dialog",
]


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


# Each window's module is imported when its menu action is first used (not at start-up); these
# factories are direct references that go-to-definition follows to the class.
PanelFactory = Callable[..., QWidget]


def effort_view(project: Any, parent: QWidget) -> QWidget:
    from segstudio.gui.effort_view import EffortDialog

    return EffortDialog(project, parent)


def export_dialog(project: Any, parent: QWidget) -> QWidget:
    from segstudio.gui.export_dialog import ExportDialog

    return ExportDialog(project, parent)


def import_dialog(parent: QWidget) -> QWidget:
    from segstudio.gui.import_dialog import ImportDialog

    return ImportDialog(parent)


def finetune_panel(project: Any, parent: QWidget) -> QWidget:
    from segstudio.gui.finetune_panel import FinetunePanel

    return FinetunePanel(project, parent)


def versions_dialog(project: Any, parent: QWidget) -> QWidget:
    from segstudio.gui.versions_dialog import VersionsDialog

    return VersionsDialog(project, parent)


def crf_panel(project: Any, parent: QWidget) -> QWidget:
    from segstudio.gui.crf_panel import CRFPanel

    return CRFPanel(project, parent)


def open_panel(
    parent: QWidget,
    factory: PanelFactory,
    args: tuple[Any, ...],
    on_error: Callable[[str], None],
    modal: bool = False,
    connect: Callable[[Any], None] | None = None,
) -> Any:
    """Create `factory(*args)` (one of the factories above) and show it; None (and on_error) if its
    module cannot be imported (a broken install costs a message, never the editor)."""
    try:
        widget = factory(*args)
    except ImportError as exc:
        on_error(f"This feature is not available in this build ({exc}).")
        return None
    if connect is not None:
        connect(widget)
    if modal and isinstance(widget, QDialog):
        widget.exec()  # a parented QDialog centres itself on the window when shown
        return widget
    if not widget.isWindow():
        widget.setWindowFlag(Qt.WindowType.Window, True)
    widget.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    widget.show()
    place_window(widget, parent)  # after show: its final size is known
    widget.raise_()
    return widget
