"""Class palette: pick the active class, edit the scheme, hide classes, see pixel counts.

Editing never renumbers classes: a class's index is what the masks on disk store, so "reorder"
changes only the display order (and which number key selects which class), "add" appends a
new index, "rename"/"recolour" replace the `ClassDef` in place. The palette emits the edited
scheme; the window hands it to the project store.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QColorDialog,
    QComboBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from segstudio.core.errors import SegStudioError
from segstudio.core.schemes import ClassDef, LabelScheme

__all__ = ["PRESETS", "PaletteWidget"]

#: preset label -> registry name in core.schemes
PRESETS = {"Pascal VOC (21)": "voc", "Cityscapes (19)": "cityscapes"}
ROLE_INDEX = Qt.ItemDataRole.UserRole + 1
LOAD_ITEM = "@load"  # the combo entry that opens a scheme file


def _swatch(color: tuple[int, int, int], size: int = 16) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(*color))
    return QIcon(pixmap)


def _button(text: str, parent: QWidget) -> QToolButton:
    button = QToolButton(parent)
    button.setText(text)
    button.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
    return button


class PaletteWidget(QWidget):
    class_selected = Signal(int)  # mask index
    scheme_edited = Signal(object)  # LabelScheme
    preset_requested = Signal(str)  # registry name
    hidden_changed = Signal(object)  # frozenset[int]
    order_changed = Signal(list)  # display order of mask indices
    delete_requested = Signal(int)  # mask index (the window asks and rewrites the masks)
    merge_requested = Signal(int)  # mask index
    load_requested = Signal()  # "Load scheme from file…"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.scheme: LabelScheme | None = None
        self.order: list[int] = []
        self.hidden: set[int] = set()
        self._counts: np.ndarray | None = None
        self._active = 0

        self.preset_combo = QComboBox(self)
        self.preset_combo.addItem("Scheme: custom", "")
        for label, name in PRESETS.items():
            self.preset_combo.addItem(f"Preset: {label}", name)
        self.preset_combo.addItem("Load scheme from file…", LOAD_ITEM)
        self.preset_combo.activated.connect(self._preset_picked)
        self.preset_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.preset_combo.setMinimumContentsLength(10)
        self.active_label = QLabel(self)
        self.active_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        # A long class name must not widen the dock (the canvas would jump): ignore its width hint.
        self.active_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.active_label.setMinimumHeight(30)
        self.find = QLineEdit(self)
        self.find.setObjectName("class_find")
        self.find.setPlaceholderText("Find class…  (or press / anywhere)")
        self.find.setClearButtonEnabled(True)
        self.find.textChanged.connect(self._find)
        self.find.returnPressed.connect(self._pick_first_found)
        self.list = QListWidget(self)
        self.list.setObjectName("class_list")
        self.list.setUniformItemSizes(True)  # 19+ classes: compact rows, no per-row layout
        self.list.currentItemChanged.connect(self._current_changed)
        self.list.itemChanged.connect(self._item_changed)
        # Three short rows (edit / scheme / order): the dock stays narrow enough for an 800 px window.
        buttons, moves = QHBoxLayout(), QHBoxLayout()
        # Tool buttons, not push buttons: no style minimum of ~80 px each, so the dock can be narrow.
        self.add_button = _button("Add", self)
        self.rename_button = _button("Rename", self)
        self.color_button = _button("Colour", self)
        self.up_button = _button("▲", self)
        self.down_button = _button("▼", self)
        # Lambdas, never the methods themselves: `clicked(bool)` would pass checked=False into
        # their optional first parameter (a name or colour) and crash.
        for button, slot in (
            (self.add_button, lambda: self.add_class()),
            (self.rename_button, lambda: self.rename_active()),
            (self.color_button, lambda: self.recolour_active()),
            (self.up_button, lambda: self.move_active(-1)),
            (self.down_button, lambda: self.move_active(1)),
        ):
            button.clicked.connect(slot)
            (moves if button in (self.up_button, self.down_button) else buttons).addWidget(button)
        edits = QHBoxLayout()
        self.merge_button = _button("Merge…", self)
        self.merge_button.setToolTip("Merge the active class into another (its pixels change class)")
        self.delete_button = _button("Delete…", self)
        self.delete_button.setToolTip("Delete the active class (asks what its pixels become)")
        self.load_button = _button("Load…", self)
        self.load_button.setToolTip("Load a label scheme from a JSON file")
        self.merge_button.clicked.connect(lambda: self.merge_requested.emit(self._active))
        self.delete_button.clicked.connect(lambda: self.delete_requested.emit(self._active))
        self.load_button.clicked.connect(lambda: self.load_requested.emit())
        for button in (self.merge_button, self.delete_button, self.load_button):
            edits.addWidget(button)
        self.up_button.setToolTip("Move up (display order and number keys only)")
        self.down_button.setToolTip("Move down (display order and number keys only)")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.preset_combo)
        layout.addWidget(self.active_label)
        layout.addWidget(self.find)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)
        layout.addLayout(edits)
        moves.addStretch(1)
        layout.addLayout(moves)
        hint = QLabel(
            "Number keys 1–9, 0 pick the first ten classes; / picks any class by name; "
            "untick to hide a class.",
            self,
        )
        hint.setWordWrap(True)
        hint.setStyleSheet("color: gray; font-size: 10px")
        layout.addWidget(hint)

    # -- model -> widget ---------------------------------------------------------------------------
    def set_scheme(
        self, scheme: LabelScheme, order: list[int] | None = None, hidden: set[int] | None = None
    ) -> None:
        self.scheme = scheme
        n = scheme.num_classes
        base = order if order is not None else self.order
        kept = [i for i in base if isinstance(i, int) and 0 <= i < n]
        self.order = kept + [i for i in range(n) if i not in kept]
        if hidden is not None:
            self.hidden = {i for i in hidden if 0 <= i < n}
        self.preset_combo.setCurrentIndex(max(0, self.preset_combo.findData(scheme.name)))
        if self._active >= n:
            self._active = 0
        self._rebuild()

    def set_counts(self, counts: np.ndarray | None) -> None:
        """Per-index pixel counts of the current image (None: no image)."""
        self._counts = counts
        self.list.blockSignals(True)
        for row in range(self.list.count()):
            item = self.list.item(row)
            item.setText(self._row_text(row, int(item.data(ROLE_INDEX))))
        self.list.blockSignals(False)

    def _row_text(self, row: int, index: int) -> str:
        assert self.scheme is not None
        key = f"{(row + 1) % 10}" if row < 10 else " "
        count = ""
        if self._counts is not None and index < len(self._counts):
            count = f"   {int(self._counts[index]):,} px"
        return f"{key}  {self.scheme.classes[index].name}{count}"

    def _rebuild(self) -> None:
        assert self.scheme is not None
        self.list.blockSignals(True)
        self.list.clear()
        for row, index in enumerate(self.order):
            cls = self.scheme.classes[index]
            item = QListWidgetItem(_swatch(cls.color), self._row_text(row, index))
            item.setData(ROLE_INDEX, index)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked if index in self.hidden else Qt.CheckState.Checked)
            self.list.addItem(item)
        self.list.blockSignals(False)
        self._find(self.find.text())
        self.select_class(self._active, emit=False)

    def _find(self, text: str) -> None:
        """Hide the rows whose name does not contain `text` (display only; number keys are unchanged)."""
        if self.scheme is None:
            return
        needle = text.strip().casefold()
        for row in range(self.list.count()):
            name = self.scheme.classes[int(self.list.item(row).data(ROLE_INDEX))].name.casefold()
            self.list.item(row).setHidden(bool(needle) and needle not in name)

    def _pick_first_found(self) -> None:
        for row in range(self.list.count()):
            if not self.list.item(row).isHidden():
                self.select_class(int(self.list.item(row).data(ROLE_INDEX)))
                return

    def _show_active(self) -> None:
        if self.scheme is None:
            return
        cls = self.scheme.classes[self._active]
        r, g, b = cls.color
        text = "black" if (0.299 * r + 0.587 * g + 0.114 * b) > 140 else "white"
        self.active_label.setText(f"Active: {cls.name}")
        self.active_label.setStyleSheet(
            f"background: rgb({r},{g},{b}); color: {text}; font-weight: bold; border-radius: 4px; padding: 4px"
        )

    # -- selection ------------------------------------------------------------------------------------
    @property
    def active_class(self) -> int:
        return self._active

    def select_class(self, index: int, emit: bool = True) -> None:
        if self.scheme is None or not (0 <= index < self.scheme.num_classes):
            return
        self._active = index
        row = self.order.index(index)
        self.list.blockSignals(True)
        self.list.setCurrentRow(row)
        self.list.blockSignals(False)
        self._show_active()
        if emit:
            self.class_selected.emit(index)

    def select_position(self, position: int) -> None:
        """Number key `position` (1-based, 10 for key 0) selects that row of the palette."""
        if 1 <= position <= len(self.order):
            self.select_class(self.order[position - 1])

    def _current_changed(self, current: QListWidgetItem | None, _previous: object) -> None:
        if current is not None:
            self.select_class(int(current.data(ROLE_INDEX)))

    def _item_changed(self, item: QListWidgetItem) -> None:
        index = int(item.data(ROLE_INDEX))
        hidden = item.checkState() != Qt.CheckState.Checked
        if hidden != (index in self.hidden):
            (self.hidden.add if hidden else self.hidden.discard)(index)
            self.hidden_changed.emit(frozenset(self.hidden))

    def set_hidden(self, index: int, hidden: bool) -> None:
        row = self.order.index(index)
        self.list.item(row).setCheckState(Qt.CheckState.Unchecked if hidden else Qt.CheckState.Checked)

    # -- editing ---------------------------------------------------------------------------------------
    def _emit_scheme(self, scheme: LabelScheme) -> bool:
        try:
            self.set_scheme(scheme)
        except SegStudioError as exc:
            QMessageBox.warning(self, "Class palette", str(exc))
            return False
        self.scheme_edited.emit(scheme)
        return True

    def add_class(self, name: str | None = None, color: tuple[int, int, int] | None = None) -> None:
        if self.scheme is None:
            return
        if name is None:
            name, ok = QInputDialog.getText(self, "Add class", "Name of the new class:")
            if not ok or not name.strip():
                return
        if color is None:
            rng = np.random.default_rng(len(self.scheme.classes) * 7919)
            color = tuple(int(c) for c in rng.integers(40, 256, 3))
        try:
            scheme = LabelScheme(
                self.scheme.name if self.scheme.name not in PRESETS.values() else "custom",
                (*self.scheme.classes, ClassDef(name.strip(), color)),
            )
        except SegStudioError as exc:
            QMessageBox.warning(self, "Add class", str(exc))
            return
        if self._emit_scheme(scheme):
            self.select_class(scheme.num_classes - 1)

    def rename_active(self, name: str | None = None) -> None:
        if self.scheme is None:
            return
        old = self.scheme.classes[self._active]
        if name is None:
            name, ok = QInputDialog.getText(self, "Rename class", "New name:", text=old.name)
            if not ok or not name.strip():
                return
        self._replace_active(replace(old, name=name.strip()))

    def recolour_active(self, color: tuple[int, int, int] | None = None) -> None:
        if self.scheme is None:
            return
        old = self.scheme.classes[self._active]
        if color is None:
            picked = QColorDialog.getColor(QColor(*old.color), self, f"Colour of {old.name}")
            if not picked.isValid():
                return
            color = (picked.red(), picked.green(), picked.blue())
        self._replace_active(replace(old, color=tuple(color)))

    def _replace_active(self, cls: ClassDef) -> None:
        assert self.scheme is not None
        classes = list(self.scheme.classes)
        classes[self._active] = cls
        try:
            scheme = LabelScheme(
                self.scheme.name if self.scheme.name not in PRESETS.values() else "custom", tuple(classes)
            )
        except SegStudioError as exc:
            QMessageBox.warning(self, "Class palette", str(exc))
            return
        self._emit_scheme(scheme)

    def move_active(self, delta: int) -> None:
        row = self.order.index(self._active)
        new_row = row + delta
        if not (0 <= new_row < len(self.order)):
            return
        self.order.insert(new_row, self.order.pop(row))
        self._rebuild()
        self.order_changed.emit(list(self.order))

    def _preset_picked(self, i: int) -> None:
        name = self.preset_combo.itemData(i)
        if name == LOAD_ITEM:
            if self.scheme is not None:
                self.preset_combo.setCurrentIndex(max(0, self.preset_combo.findData(self.scheme.name)))
            self.load_requested.emit()
        elif name and self.scheme is not None and name != self.scheme.name:
            self.preset_requested.emit(name)
        elif self.scheme is not None:
            self.preset_combo.setCurrentIndex(max(0, self.preset_combo.findData(self.scheme.name)))
