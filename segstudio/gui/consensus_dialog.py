"""*Team -> Compare annotations...*: a reviewer sees the two annotations of a consensus image side by side
with what they disagree on, the agreement per class, and takes A, B or the merge as the image's mask.

Server calls run on a plain thread (the window never waits on the network); results come back through
queued signals. The resolution names the two versions shown here, so if an annotator saves again while
the dialog is open the server refuses it and the dialog says to compare again.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from segstudio.core.errors import SegStudioError
from segstudio.core.schemes import UNLABELED
from segstudio.core.store_records import ImageRecord
from segstudio.team.agreement import agreement_of, merge_annotations

__all__ = ["CompareDialog", "blend"]

#: Width of each of the three pictures (pixels); they keep the image's aspect ratio.
PANE_WIDTH = 320
#: The IoU table shows this many class rows without scrolling (more scroll).
TABLE_ROWS = 12
DISPUTED_COLOR = np.array([255, 0, 64], np.uint8)


def blend(
    image: np.ndarray | None, mask: np.ndarray | None, lut: np.ndarray, alpha: float = 0.55
) -> np.ndarray:
    """RGB picture: the mask's class colours over the photo (void pixels show the photo)."""
    if mask is None:
        base = np.zeros((1, 1, 3), np.uint8) if image is None else image[..., :3]
        return np.ascontiguousarray(base, dtype=np.uint8)
    colours = lut[mask].astype(np.float32)
    photo = colours if image is None or image.shape[:2] != mask.shape else image[..., :3].astype(np.float32)
    out = np.where((mask != UNLABELED)[..., None], (1 - alpha) * photo + alpha * colours, photo)
    return np.ascontiguousarray(out.clip(0, 255).astype(np.uint8))


def _disputed_picture(image: np.ndarray | None, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The photo dimmed, the disputed pixels (both labelled, differently) bright."""
    disputed = (a != b) & (a != UNLABELED) & (b != UNLABELED)
    photo = (
        np.full((*a.shape, 3), 128, np.uint8)
        if image is None or image.shape[:2] != a.shape
        else image[..., :3]
    )
    out = (photo.astype(np.float32) * 0.35).astype(np.uint8)
    out[disputed] = DISPUTED_COLOR
    return np.ascontiguousarray(out)


def _pane_height(image: np.ndarray | None, rec: ImageRecord) -> int:
    """Height of a picture PANE_WIDTH wide with the image's aspect ratio (4:3 when unknown)."""
    h, w = image.shape[:2] if image is not None else (rec.height or 3, rec.width or 4)
    return max(1, round(PANE_WIDTH * h / max(1, w)))


def _pixmap(rgb: np.ndarray) -> QPixmap:
    h, w = rgb.shape[:2]
    image = QImage(rgb.data, w, h, rgb.strides[0], QImage.Format.Format_RGB888).copy()
    return QPixmap.fromImage(image).scaledToWidth(PANE_WIDTH, Qt.TransformationMode.SmoothTransformation)


class CompareDialog(QDialog):
    """Both annotations of `rec`, their agreement, and Take A / Take B / Merge."""

    loaded = Signal(object)  # (ConsensusImage, mask A, mask B) or an error message
    resolved = Signal(object)  # the new main version id, or an error message
    left = Signal(object)  # out of consensus: (branch kept, main version id or None), or an error message

    def __init__(self, parent: Any, project: Any, rec: ImageRecord, image: np.ndarray | None) -> None:
        super().__init__(parent)
        self.project, self.rec, self.image = project, rec, image
        self.found: Any = None
        self.version: int | None = None  # the resolution, once made
        self.taken: str | None = None
        self.kept: str | None = None  # a lead took the image out of consensus keeping this branch
        self.setWindowTitle(f"Compare annotations — {rec.rel_path}")
        self.summary = QLabel("Loading the two annotations…")
        self.summary.setWordWrap(True)
        grid = QGridLayout()
        self.captions = [QLabel(text) for text in ("A", "B", "Disagreement")]
        self.pictures = [QLabel() for _ in range(3)]
        # The dialog opens at its final size (pictures and table reserved before the masks arrive), so it
        # is centred over the window as it will look; growing after loading pushed Close off screen.
        pane = QSize(PANE_WIDTH, _pane_height(image, rec))
        for column, (caption, picture) in enumerate(zip(self.captions, self.pictures)):
            picture.setFixedSize(pane)
            grid.addWidget(caption, 0, column)
            grid.addWidget(picture, 1, column)
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["class", "IoU (A vs B)"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        rows = min(TABLE_ROWS, max(1, len(project.scheme.names)))
        self.table.setMinimumHeight(
            self.table.horizontalHeader().sizeHint().height()
            + rows * self.table.verticalHeader().defaultSectionSize()
            + 2 * self.table.frameWidth()
        )
        self.take_a = QPushButton("Take A")
        self.take_b = QPushButton("Take B")
        self.merge = QPushButton("Merge")
        self.merge.setToolTip(
            "Keep what both annotators labelled alike (and what only one labelled); leave the disputed "
            "pixels unlabelled for you to paint"
        )
        self.close_button = QPushButton("Close")
        buttons = QHBoxLayout()
        for button in (self.take_a, self.take_b, self.merge):
            button.setEnabled(False)
            button.setAutoDefault(False)  # Enter must not resolve: it would pick Take A by accident
            buttons.addWidget(button)
        self.close_button.setDefault(True)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addLayout(grid)
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        # Leads may also take the image out of consensus, also before both finished (team single).
        self.keep_a = QPushButton("Keep only A")
        self.keep_b = QPushButton("Keep only B")
        for button in (self.keep_a, self.keep_b):
            button.setEnabled(False)
            button.setAutoDefault(False)
            button.setToolTip(
                "Leads: take the image out of consensus. This annotator's last save becomes its version (the "
                "other annotation stays in the history) and it goes on as an ordinary image of theirs"
            )
        if getattr(project, "role", "") == "lead":
            keeping = QHBoxLayout()
            keeping.addWidget(QLabel("Out of consensus:"))
            keeping.addWidget(self.keep_a)
            keeping.addWidget(self.keep_b)
            keeping.addStretch(1)
            layout.addLayout(keeping)
        self.keep_a.clicked.connect(lambda: self._leave("A"))
        self.keep_b.clicked.connect(lambda: self._leave("B"))
        self.left.connect(self._on_left)
        self.take_a.clicked.connect(lambda: self._resolve("A"))
        self.take_b.clicked.connect(lambda: self._resolve("B"))
        self.merge.clicked.connect(lambda: self._resolve("merge"))
        self.close_button.clicked.connect(self.reject)
        self.loaded.connect(self._show)
        self.resolved.connect(self._on_resolved)
        self._thread(self._load)

    def _thread(self, work: Any) -> None:
        threading.Thread(target=work, name="segstudio-consensus", daemon=True).start()

    def _load(self) -> None:
        try:
            self.loaded.emit(self.project.branch_masks(self.rec))
        except SegStudioError as error:
            self.loaded.emit(str(error))

    def _show(self, result: Any) -> None:
        if isinstance(result, str):
            self.summary.setText(result)
            return
        found, a, b = result
        self.found = found
        lut = self.project.scheme.lut()
        for index, (branch, mask) in enumerate((("A", a), ("B", b))):
            state = (
                "nothing saved yet" if mask is None else "done" if found.done(branch) else "not marked done"
            )
            self.captions[index].setText(f"{branch}: {found.annotator(branch)} ({state})")
            self.pictures[index].setPixmap(_pixmap(blend(self.image, mask, lut)))
        ready = a is not None and b is not None and found.done("A") and found.done("B")
        self._show_keep(found)
        if a is None or b is None:
            self.summary.setText("Agreement: waiting for both annotations.")
            return
        agreement, _ = agreement_of(a, b, self.project.scheme.names)
        _, disputed = merge_annotations(a, b)
        self.pictures[2].setPixmap(_pixmap(_disputed_picture(self.image, a, b)))
        self.captions[2].setText(f"Disagreement ({disputed} pixels)")
        miou = "-" if agreement.miou is None else f"{agreement.miou:.3f}"
        share = disputed / max(1, agreement.pixels)
        self.summary.setText(
            f"Agreement mIoU {miou} over the classes present; {disputed} pixels disputed ({share:.1%} of "
            "the pixels both labelled)."
            + ("" if found.open else f" Resolved by {found.resolved_by} (took {found.resolved_how}).")
            + ("" if ready or not found.open else " Both annotators must mark their annotation done first.")
        )
        self.table.setRowCount(len(agreement.per_class))
        for row, (name, iou) in enumerate(agreement.per_class.items()):
            self.table.setItem(row, 0, QTableWidgetItem(name))
            self.table.setItem(row, 1, QTableWidgetItem(f"{iou:.3f}"))
        self.take_a.setText(f"Take A ({found.annotator_a})")
        self.take_b.setText(f"Take B ({found.annotator_b})")
        self._show_keep(found)
        for button in (self.take_a, self.take_b, self.merge):
            button.setEnabled(ready and found.open)

    def _resolve(self, take: str) -> None:
        found = self.found
        if found is None:
            return
        for button in (self.take_a, self.take_b, self.merge):
            button.setEnabled(False)
        self.summary.setText("Saving the resolution…")

        def work() -> None:
            try:
                version = self.project.resolve_consensus(self.rec, take, seen=(found.head_a, found.head_b))
                self.taken = take
                self.resolved.emit(version)
            except SegStudioError as error:
                self.resolved.emit(str(error))

        self._thread(work)

    def _show_keep(self, found: Any) -> None:
        self.keep_a.setText(f"Keep only A ({found.annotator_a})")
        self.keep_b.setText(f"Keep only B ({found.annotator_b})")
        for button in (self.keep_a, self.keep_b):
            button.setEnabled(found.open)

    def _leave(self, branch: str) -> None:
        for button in (self.take_a, self.take_b, self.merge, self.keep_a, self.keep_b):
            button.setEnabled(False)
        self.summary.setText("Taking the image out of consensus…")

        def work() -> None:
            try:
                after = self.project.leave_consensus(self.rec, branch)
                self.left.emit((branch, None if after is None else after.resolved_version))
            except SegStudioError as error:
                self.left.emit(str(error))

        self._thread(work)

    def _on_left(self, result: Any) -> None:
        if isinstance(result, str):
            self.summary.setText(f"Still in consensus: {result}")
            self._thread(self._load)
            return
        self.kept, version = result
        self.version = None if version is None else int(version)
        self.accept()

    def _on_resolved(self, result: Any) -> None:
        if isinstance(result, str):
            self.summary.setText(f"Not resolved: {result}")
            self._thread(self._load)  # show what is there now
            return
        self.version = int(result)
        self.accept()
