"""Type-to-search class choice: a small popup filtered as you type; Enter picks, Esc closes.

Why: number keys reach only ten classes, and Cityscapes has 19 (COCO-stuff far more). Pressing
"/" (or Ctrl+K) and typing two or three letters is as fast as a number key for any class, without
reaching for the mouse. Matching is plain and predictable: names starting with the text first,
then names containing it, each in palette order.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QKeyEvent, QPixmap
from PySide6.QtWidgets import QFrame, QLineEdit, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

__all__ = ["QuickClassPicker", "rank_classes"]

INDEX_ROLE = Qt.ItemDataRole.UserRole + 1


def rank_classes(text: str, names: Sequence[str], order: Sequence[int]) -> list[int]:
    """Class indices matching `text`: prefix matches (also of any word) first, then substrings; palette order."""
    needle = text.strip().casefold()
    if not needle:
        return list(order)
    prefix, word, inside = [], [], []
    for index in order:
        name = names[index].casefold()
        if name.startswith(needle):
            prefix.append(index)
        elif any(part.startswith(needle) for part in name.replace("-", " ").replace("_", " ").split()):
            word.append(index)
        elif needle in name:
            inside.append(index)
    return prefix + word + inside


class QuickClassPicker(QFrame):
    """The popup; `picked(index)` when the user chooses a class."""

    picked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Popup)
        self.setObjectName("quick_pick")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.edit = QLineEdit(self)
        self.edit.setPlaceholderText("Type a class name…")
        self.edit.textChanged.connect(self._filter)
        self.edit.installEventFilter(self)
        self.list = QListWidget(self)
        self.list.setUniformItemSizes(True)
        self.list.itemActivated.connect(self._activated)
        self.list.itemClicked.connect(self._activated)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.edit)
        layout.addWidget(self.list)
        self.resize(260, 320)
        self._names: list[str] = []
        self._colors: list[tuple[int, int, int]] = []
        self._order: list[int] = []

    def popup(
        self,
        names: Sequence[str],
        colors: Sequence[tuple[int, int, int]],
        order: Sequence[int],
        at: QPoint,
        active: int | None = None,
    ) -> None:
        """Show at global position `at` (kept on screen) with every class listed, the active one current."""
        self._names, self._colors, self._order = list(names), [tuple(c) for c in colors], list(order)
        self.edit.clear()
        self._filter("")
        if active is not None:
            for row in range(self.list.count()):
                if self.list.item(row).data(INDEX_ROLE) == active:
                    self.list.setCurrentRow(row)
        screen = self.screen().availableGeometry() if self.screen() is not None else None
        pos = QPoint(at)
        if screen is not None:
            pos.setX(max(screen.left(), min(pos.x(), screen.right() - self.width())))
            pos.setY(max(screen.top(), min(pos.y(), screen.bottom() - self.height())))
        self.move(pos)
        self.show()
        self.edit.setFocus()

    def _filter(self, text: str) -> None:
        self.list.clear()
        for index in rank_classes(text, self._names, self._order):
            pixmap = QPixmap(14, 14)
            pixmap.fill(QColor(*self._colors[index]))
            item = QListWidgetItem(QIcon(pixmap), self._names[index])
            item.setData(INDEX_ROLE, index)
            self.list.addItem(item)
        if self.list.count():
            self.list.setCurrentRow(0)

    def pick_current(self) -> None:
        item = self.list.currentItem()
        if item is not None:
            self._activated(item)

    def _activated(self, item: QListWidgetItem) -> None:
        self.hide()
        self.picked.emit(int(item.data(INDEX_ROLE)))

    def eventFilter(self, watched: object, event: object) -> bool:
        """Up/Down/PgUp/PgDown move in the list while typing; Enter picks; Esc closes."""
        if watched is self.edit and isinstance(event, QKeyEvent) and event.type() == QKeyEvent.Type.KeyPress:
            key = event.key()
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self.pick_current()
                return True
            if key == Qt.Key.Key_Escape:
                self.hide()
                return True
            if key in (Qt.Key.Key_Up, Qt.Key.Key_Down, Qt.Key.Key_PageUp, Qt.Key.Key_PageDown):
                self.list.keyPressEvent(event)
                return True
        return super().eventFilter(watched, event)
