"""Every keyboard shortcut in one table; actions and the Help -> Keyboard shortcuts dialog read it.

One table means the help can never disagree with the real key bindings.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

__all__ = ["SHORTCUTS", "Shortcut", "ShortcutsDialog", "make_action", "shortcut"]


@dataclass(frozen=True)
class Shortcut:
    id: str
    keys: tuple[str, ...]
    text: str
    group: str


def _s(id: str, keys: str | tuple[str, ...], text: str, group: str) -> Shortcut:
    return Shortcut(id, (keys,) if isinstance(keys, str) else keys, text, group)


SHORTCUTS: tuple[Shortcut, ...] = (
    _s("open_folder", "Ctrl+O", "Open folder…", "File"),
    _s("save", "Ctrl+S", "Save mask now", "File"),
    _s("rescan", "F5", "Rescan the folder (images added, removed or renamed on disk)", "File"),
    _s("quit", "Ctrl+Q", "Quit", "File"),
    _s("undo", "Ctrl+Z", "Undo", "Edit"),
    _s("redo", ("Ctrl+Shift+Z", "Ctrl+Y"), "Redo", "Edit"),
    _s("replace_class", "Ctrl+R", "Replace class A by B…", "Edit"),
    _s("accept_prediction", "A", "Accept the prediction as the mask", "Edit"),
    _s("mark_done", "D", "Mark image done and go to the next unfinished", "Edit"),
    _s("mark_skipped", "K", "Mark image skipped and go to the next unfinished", "Edit"),
    _s("next_image", ("Right", "PgDown"), "Next image", "Navigate"),
    _s("prev_image", ("Left", "PgUp"), "Previous image", "Navigate"),
    _s("next_unfinished", "U", "Next unfinished image", "Navigate"),
    _s("tool_brush", "B", "Brush", "Tools"),
    _s("tool_eraser", "E", "Eraser (back to unlabeled)", "Tools"),
    _s("tool_fill", "F", "Flood fill", "Tools"),
    _s("tool_polygon", "G", "Polygon fill (click vertices, Enter fills, Esc cancels)", "Tools"),
    _s(
        "tool_click",
        "S",
        "Smart click (left: this is the class, right/Shift: not this; Enter accepts)",
        "Tools",
    ),
    _s("tool_box", "Shift+S", "Box: drag around an object (then click to refine, Enter accepts)", "Tools"),
    _s("tool_scribble", "L", "Scribble: a stroke that spreads to its region (Enter accepts)", "Tools"),
    _s(
        "tool_wand",
        "W",
        "Magic wand: colour-similar region; drag left/right for less/more tolerance",
        "Tools",
    ),
    _s("tool_superpixel", "Shift+B", "Superpixel brush: paints whole superpixels", "Tools"),
    _s("protect_cycle", "P", "Protect mode: off / only unlabeled / only the chosen class", "Tools"),
    _s("brush_smaller", "[", "Smaller brush (also Ctrl+wheel)", "Tools"),
    _s("brush_larger", "]", "Larger brush (also Ctrl+wheel)", "Tools"),
    _s("polygon_finish", ("Return", "Enter"), "Fill the polygon / accept the clicked object", "Tools"),
    _s("polygon_cancel", "Esc", "Cancel the polygon / the clicked object", "Tools"),
    _s("prompt_undo", "Backspace", "Drop the latest click of the clicked object", "Tools"),
    *(_s(f"class_{n}", str(n % 10), f"Select class {n} in the palette", "Classes") for n in range(1, 11)),
    _s("quick_class", ("/", "Ctrl+K"), "Pick a class by typing part of its name", "Classes"),
    _s("toggle_overlay", "O", "Show / hide the label overlay", "View"),
    _s("outline_mode", "Shift+O", "Outline-only overlay", "View"),
    _s("confidence_layer", "C", "Confidence heat map", "View"),
    _s("diff_layer", "X", "Diff against the prediction (edit effort)", "View"),
    _s("show_prediction", "V", "Show the prediction instead of the mask", "View"),
    _s("zoom_fit", "Ctrl+0", "Fit image to window", "View"),
    _s("zoom_1to1", "Ctrl+1", "Zoom 1:1", "View"),
    _s("pan_hint", "Space", "Hold and drag to pan (or drag with the middle button); wheel zooms", "View"),
    _s("predict_current", "Ctrl+P", "Predict the current image", "Model"),
    _s("predict_all_new", "Ctrl+Shift+P", "Pre-annotate all new images", "Model"),
    _s("crf_toggle", "R", "Prediction before / after CRF", "Model"),
    _s("shortcuts", "F1", "Keyboard shortcuts", "Help"),
)

_BY_ID = {s.id: s for s in SHORTCUTS}


def shortcut(id: str) -> Shortcut:
    return _BY_ID[id]


def make_action(parent: QWidget, id: str, checkable: bool = False, bind_keys: bool = True) -> QAction:
    """A QAction with the text and keys from the table (keys left off for display-only rows)."""
    entry = _BY_ID[id]
    action = QAction(entry.text, parent)
    action.setObjectName(f"action_{id}")
    action.setCheckable(checkable)
    if bind_keys:
        action.setShortcuts([QKeySequence(k) for k in entry.keys])
    return action


class ShortcutsDialog(QDialog):
    """Help -> Keyboard shortcuts: the whole table, grouped."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.resize(560, 620)
        table = QTableWidget(len(SHORTCUTS), 3, self)
        table.setHorizontalHeaderLabels(["Group", "Keys", "Action"])
        for row, entry in enumerate(SHORTCUTS):
            keys = " / ".join(
                QKeySequence(k).toString(QKeySequence.SequenceFormat.NativeText) or k for k in entry.keys
            )
            for col, text in enumerate((entry.group, keys, entry.text)):
                table.setItem(row, col, QTableWidgetItem(text))
        table.verticalHeader().setVisible(False)
        table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table = table
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(table)
        layout.addWidget(buttons)
