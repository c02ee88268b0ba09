"""Per-image problems without modal interruptions: a list in a dock plus a status-bar notice.

Why not message boxes: a bad file in a batch of 500, or an image deleted while the project was
open, concerns one image, needs no decision, and must not stop the annotator mid-stroke. Each
problem is one row (file: reason); clicking it opens the image. The window's status bar shows a
"⚠ N problems" button that opens the dock, so a problem never moves the canvas by itself.
Message boxes stay for what needs a decision or blocks all work (no model can be loaded).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

__all__ = ["ProblemsButton", "ProblemsPanel", "is_follow_up", "one_paragraph"]

PATH_ROLE = Qt.ItemDataRole.UserRole + 1
NOTE_ROLE = Qt.ItemDataRole.UserRole + 2  # set on rows that concern no image (e.g. "GPU out of memory")
#: worker messages that only repeat an earlier, already shown error for one more image
FOLLOW_UPS = ("no model is loaded",)


def is_follow_up(message: str) -> bool:
    """True for a per-image message that only says "see the error already shown" (status bar is enough)."""
    return message.startswith(FOLLOW_UPS)


def one_paragraph(message: str) -> str:
    """Blank-line separated parts joined into one paragraph of sentences (what message boxes show)."""
    parts = [" ".join(p.split()) for p in message.split("\n\n") if p.strip()]
    return " ".join(p if p.endswith((".", "!", "?", ":")) else f"{p}." for p in parts)


class ProblemsPanel(QWidget):
    """The list of per-image problems (newest first); one row per image, the latest reason wins."""

    image_requested = Signal(str)  # rel_path: the user clicked a problem
    count_changed = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QListWidget(self)
        self.list.setObjectName("problems_list")
        self.list.setWordWrap(True)
        self.list.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Expanding)
        self.list.itemClicked.connect(self._clicked)
        self.list.itemActivated.connect(self._clicked)
        self.empty = QLabel("No problems.", self)
        self.empty.setStyleSheet("color: gray")
        self.clear_button = QPushButton("Clear", self)
        self.clear_button.clicked.connect(self.clear)
        top = QHBoxLayout()
        top.addWidget(self.empty, 1)
        top.addWidget(self.clear_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.list, 1)
        self._update()

    def add(self, rel_path: str, reason: str) -> None:
        self._take(rel_path)
        item = QListWidgetItem(f"{rel_path}: {one_paragraph(reason)}")
        item.setData(PATH_ROLE, rel_path)
        item.setToolTip(f"{rel_path}\n{reason}\n\nClick to open the image.")
        self.list.insertItem(0, item)
        self._update()

    def add_note(self, source: str, message: str) -> None:
        """A problem that concerns no single image (the GPU ran out of memory, inference fell back to the
        CPU): one row per distinct message, newest first; clicking it opens nothing."""
        text = f"{source}: {one_paragraph(message)}"
        for row in range(self.list.count()):
            if self.list.item(row).data(NOTE_ROLE) == text:
                self.list.takeItem(row)
                break
        item = QListWidgetItem(text)
        item.setData(NOTE_ROLE, text)
        item.setToolTip(f"{source}\n{message}")
        self.list.insertItem(0, item)
        self._update()

    def notes(self) -> list[str]:
        """The rows added by `add_note`, newest first."""
        items = (self.list.item(r) for r in range(self.list.count()))
        return [item.text() for item in items if item.data(NOTE_ROLE)]

    def resolve(self, rel_path: str) -> None:
        """The image is fine again (predicted, or gone from the folder): drop its row."""
        if self._take(rel_path):
            self._update()

    def rename(self, old: str, new: str) -> None:
        for row in range(self.list.count()):
            item = self.list.item(row)
            if item.data(PATH_ROLE) == old:
                item.setData(PATH_ROLE, new)
                item.setText(new + item.text()[len(old) :])

    def clear(self) -> None:
        self.list.clear()
        self._update()

    def problems(self) -> dict[str, str]:
        """rel_path -> the row's text, for image rows (for tests and the browser's marks)."""
        items = (self.list.item(r) for r in range(self.list.count()))
        return {item.data(PATH_ROLE): item.text() for item in items if not item.data(NOTE_ROLE)}

    def _take(self, rel_path: str) -> bool:
        for row in range(self.list.count()):
            if self.list.item(row).data(PATH_ROLE) == rel_path:
                self.list.takeItem(row)
                return True
        return False

    def _clicked(self, item: QListWidgetItem) -> None:
        if not item.data(NOTE_ROLE):
            self.image_requested.emit(str(item.data(PATH_ROLE)))

    def _update(self) -> None:
        n = self.list.count()
        images = len(self.problems())
        parts = (
            [f"{images} image{'s' if images != 1 else ''} with a problem; click one to open it."]
            if images
            else []
        )
        if n > images:
            parts.insert(0, f"{n - images} model note{'s' if n - images != 1 else ''}.")
        self.empty.setText(" ".join(parts) or "No problems.")
        self.clear_button.setEnabled(n > 0)
        self.count_changed.emit(n)


class ProblemsButton(QToolButton):
    """Status-bar notice: hidden while there are no problems, "⚠ N problems" otherwise."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("problems_button")
        self.setAutoRaise(True)
        self.setToolTip("Images with a problem (show / hide the list)")
        self.setStyleSheet("color: #c0392b; font-weight: bold")
        self.set_count(0)

    def set_count(self, count: int) -> None:
        self.setText(f"⚠ {count} problem{'s' if count != 1 else ''}")
        self.setVisible(count > 0)
