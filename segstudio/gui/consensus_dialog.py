"""*Team -> Compare annotations...*: a reviewer sees the two annotations of a consensus image side by side
with what they disagree on, the agreement per class, and takes A, B or the merge as the image's mask.
Per class the reviewer may trust A or B (or keep the merge rule, "agreed only"); the merged preview follows
each choice at once (`agreement.merge_annotations`, computed here: a few milliseconds for a photo), and
*Resolve* saves exactly what the preview shows.

Server calls run on a plain thread (the window never waits on the network); results come back through
queued signals. The resolution names the two versions shown here, so if an annotator saves again while
the dialog is open the server refuses it and the dialog says to compare again.
"""

from __future__ import annotations

import threading
from functools import partial
from typing import Any

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QRadioButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from segstudio.core.errors import SegStudioError
from segstudio.core.schemes import UNLABELED
from segstudio.core.store_records import ImageRecord
from segstudio.team.agreement import agreement_of, merge_annotations

__all__ = ["CompareDialog", "blend"]

#: Width of each of the four pictures (pixels); they keep the image's aspect ratio.
PANE_WIDTH = 260
#: The IoU table shows this many class rows without scrolling (more scroll).
TABLE_ROWS = 12
DISPUTED_COLOR = np.array([255, 0, 64], np.uint8)
#: The per-class choices, in the order of their radio buttons: (key, button text); None = the merge rule.
CHOICES: tuple[tuple[str | None, str], ...] = (("A", "A"), ("B", "B"), (None, "agreed only"))


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


def _merged_picture(
    image: np.ndarray | None, merged: np.ndarray, a: np.ndarray, b: np.ndarray, lut: np.ndarray
) -> np.ndarray:
    """The merge over the photo, the pixels it leaves to paint (someone labelled them) bright."""
    out = blend(image, merged, lut)
    if out.shape[:2] == merged.shape:
        out[(merged == UNLABELED) & ((a != UNLABELED) | (b != UNLABELED))] = DISPUTED_COLOR
    return out


def _classes_present(a: np.ndarray, b: np.ndarray) -> list[int]:
    """Class indices either annotation uses (void excluded), in scheme order."""
    return [int(c) for c in np.union1d(np.unique(a), np.unique(b)) if c != UNLABELED]


class CompareDialog(QDialog):
    """Both annotations of `rec`, their agreement, a choice per class, and Take A / Take B / Resolve."""

    loaded = Signal(object)  # (ConsensusImage, mask A, mask B) or an error message
    resolved = Signal(object)  # the new main version id, or an error message
    left = Signal(object)  # out of consensus: (branch kept, main version id or None), or an error message

    def __init__(self, parent: Any, project: Any, rec: ImageRecord, image: np.ndarray | None) -> None:
        super().__init__(parent)
        self.project, self.rec, self.image = project, rec, image
        self.found: Any = None
        self.masks: tuple[np.ndarray, np.ndarray] | None = None  # (A, B) once both are saved
        self.version: int | None = None  # the resolution, once made
        self.taken: str | None = None
        self.choices: dict[int, str] = {}  # class index -> "A" / "B"; absent: the merge rule
        self.choice_buttons: dict[str, dict[str | None, QRadioButton]] = {}  # class name -> choice -> button
        self._groups: list[QButtonGroup] = []
        self.preview: np.ndarray | None = None  # the merged mask shown, which Resolve saves
        self.kept: str | None = None  # a lead took the image out of consensus keeping this branch
        self.setWindowTitle(f"Compare annotations — {rec.rel_path}")
        self.summary = QLabel("Loading the two annotations…")
        self.summary.setWordWrap(True)
        grid = QGridLayout()
        self.captions = [QLabel(text) for text in ("A", "B", "Disagreement", "Merged preview")]
        self.pictures = [QLabel() for _ in range(4)]
        # The dialog opens at its final size (pictures and table reserved before the masks arrive), so it
        # is centred over the window as it will look; growing after loading pushed Close off screen.
        pane = QSize(PANE_WIDTH, _pane_height(image, rec))
        for column, (caption, picture) in enumerate(zip(self.captions, self.pictures)):
            caption.setWordWrap(True)
            picture.setFixedSize(pane)
            grid.addWidget(caption, 0, column)
            grid.addWidget(picture, 1, column)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["class", "IoU (A vs B)", "take"])
        self.table.horizontalHeaderItem(2).setToolTip(
            "Whose labels to trust for this class: wherever either annotator labelled it, the chosen one's "
            "labels are kept (void included). 'agreed only': the merge rule (kept where they agree or only "
            "one labelled it, unlabelled where they disagree)."
        )
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        rows = min(TABLE_ROWS, max(1, len(project.scheme.names)))
        self.table.setMinimumHeight(
            self.table.horizontalHeader().sizeHint().height()
            + rows * self.table.verticalHeader().defaultSectionSize()
            + 2 * self.table.frameWidth()
        )
        self.take_a = QPushButton("Take A")
        self.take_b = QPushButton("Take B")
        self.merge = QPushButton("Resolve as previewed")
        self.merge.setToolTip(
            "Save the merged preview: per class the annotator you chose, elsewhere what both labelled alike "
            "(and what only one labelled); the disputed pixels are left unlabelled for you to paint"
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
        self.masks = (a, b)
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
        self._fill_table(_classes_present(a, b), agreement.per_class, found, ready and found.open)
        self._update_preview()
        self.take_a.setText(f"Take A ({found.annotator_a})")
        self.take_b.setText(f"Take B ({found.annotator_b})")
        self._show_keep(found)
        for button in (self.take_a, self.take_b, self.merge):
            button.setEnabled(ready and found.open)

    def _fill_table(self, classes: list[int], ious: dict[str, float], found: Any, editable: bool) -> None:
        """One row per class either annotator used: its IoU ('-' where only one labelled it, so there is
        nothing to compare) and the choice A / B / agreed only (kept when the masks are shown again)."""
        names = self.project.scheme.names
        self.choices = {c: who for c, who in self.choices.items() if c in classes}
        self.choice_buttons.clear()
        self._groups.clear()
        self.table.setRowCount(len(classes))
        for row, cls in enumerate(classes):
            name = str(names[cls]) if cls < len(names) else str(cls)
            self.table.setItem(row, 0, QTableWidgetItem(name))
            iou = ious.get(name)
            self.table.setItem(row, 1, QTableWidgetItem("-" if iou is None else f"{iou:.3f}"))
            cell = QWidget()
            line = QHBoxLayout(cell)
            line.setContentsMargins(4, 0, 4, 0)
            group = QButtonGroup(cell)
            self._groups.append(group)
            self.choice_buttons[name] = {}
            for key, text in CHOICES:
                button = QRadioButton(text)
                button.setToolTip(
                    "keep the merge rule for this class"
                    if key is None
                    else f"trust {found.annotator(key)} ({key}) for {name}: their labels wherever either "
                    f"annotator labelled {name}"
                )
                button.setChecked(self.choices.get(cls) == key)
                button.setEnabled(editable)
                group.addButton(button)
                line.addWidget(button)
                self.choice_buttons[name][key] = button
                button.toggled.connect(partial(self._toggled, cls, key))
            self.table.setCellWidget(row, 2, cell)

    def _toggled(self, cls: int, key: str | None, on: bool) -> None:
        if on:
            self._choose(cls, key)

    def _choose(self, cls: int, key: str | None) -> None:
        if key is None:
            self.choices.pop(cls, None)
        else:
            self.choices[cls] = key
        self._update_preview()

    def _update_preview(self) -> None:
        if self.masks is None:
            return
        a, b = self.masks
        merged, left = merge_annotations(a, b, self.choices)
        self.preview = merged
        self.pictures[3].setPixmap(
            _pixmap(_merged_picture(self.image, merged, a, b, self.project.scheme.lut()))
        )
        self.captions[3].setText(f"Merged preview ({left} pixels left to paint)")

    def _resolve(self, take: str) -> None:
        found = self.found
        if found is None:
            return
        for button in (self.take_a, self.take_b, self.merge):
            button.setEnabled(False)
        self.summary.setText("Saving the resolution…")
        classes = dict(self.choices) if take == "merge" else {}

        def work() -> None:
            try:
                version = self.project.resolve_consensus(
                    self.rec, take, seen=(found.head_a, found.head_b), classes=classes
                )
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
