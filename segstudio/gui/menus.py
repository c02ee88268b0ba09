"""Menu bar and toolbars of the main window, laid out from tables (the window only connects them).

Actions with keyboard shortcuts come from `shortcuts.SHORTCUTS`; entries starting with "@" are
menu-only actions created here (panels of other modules, settings toggles).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QLabel, QMainWindow, QMenu, QSlider, QToolBar

from segstudio.gui.smart_tools import SmartOptions
from segstudio.gui.tools import ToolOptionsBar, ToolState

__all__ = ["MENUS", "build_menus", "build_toolbars"]

MENUS: dict[str, list[str | None]] = {
    "&File": ["open_folder", "@recent", "rescan", "save", None, "@export", "@import", None, "quit"],
    "&Edit": [
        "undo",
        "redo",
        None,
        "replace_class",
        "@undo_class_removal",
        "accept_prediction",
        "quick_class",
        None,
        "mark_done",
        "mark_skipped",
    ],
    "&View": [
        "toggle_overlay",
        "outline_mode",
        "confidence_layer",
        "diff_layer",
        "show_prediction",
        None,
        "zoom_fit",
        "zoom_1to1",
        None,
        "next_image",
        "prev_image",
        "next_unfinished",
    ],
    "&Model": [
        "predict_current",
        "predict_all_new",
        "@cancel_batch",
        "@auto_predict",
        "crf_toggle",
        None,
        "@crf_on",
        "@crf_panel",
        "@crf_tune",
        None,
        "@weights_file",
        "@untrained",
        "@versions",
        None,
        "@sam_checkpoint",
        "@get_sam",
    ],
    "&Train": ["@finetune", "@effort"],
    "&Help": ["shortcuts", "@open_logs"],
}
MENU_ONLY = {
    "export": "Export…",
    "import": "Import…",
    "undo_class_removal": "Undo class removal",
    "cancel_batch": "Cancel pre-annotation",
    "auto_predict": "Auto-predict on open",
    "versions": "Versions…",
    "finetune": "Fine-tune…",
    "effort": "Editing effort…",
    "sam_checkpoint": "Use SAM checkpoint for smart clicks…",
    "get_sam": "Get a SAM model…",
    "crf_on": "Dense CRF for this project",
    "crf_panel": "CRF settings…",
    "crf_tune": "Tune CRF on corrected images",
    "open_logs": "Open log folder",
    "weights_file": "Use weights file…",
    "untrained": "Use untrained model (random weights, for testing)",
}
SHORT_TEXT = {
    "tool_brush": "Brush",
    "tool_eraser": "Eraser",
    "tool_fill": "Fill",
    "tool_polygon": "Polygon",
    "tool_click": "Click",
    "tool_box": "Box",
    "tool_scribble": "Scribble",
    "tool_wand": "Wand",
    "tool_superpixel": "Superpixels",
    "toggle_overlay": "Overlay",
    "outline_mode": "Outline",
    "confidence_layer": "Confidence",
    "diff_layer": "Diff",
    "show_prediction": "Prediction",
    "crf_toggle": "Before CRF",
}
TOOLS = (
    "tool_brush",
    "tool_eraser",
    "tool_fill",
    "tool_polygon",
    "tool_click",
    "tool_box",
    "tool_scribble",
    "tool_wand",
    "tool_superpixel",
)
LAYERS = ("toggle_overlay", "outline_mode", "confidence_layer", "diff_layer", "show_prediction", "crf_toggle")


def build_menus(window: QMainWindow, actions: dict[str, QAction]) -> tuple[dict[str, QAction], QMenu]:
    """Fill the menu bar; returns the menu-only actions by name and the (empty) recent-folders menu."""
    extra: dict[str, QAction] = {}
    recent = QMenu("Open &recent", window)
    for title, entries in MENUS.items():
        menu = window.menuBar().addMenu(title)
        for entry in entries:
            if entry is None:
                menu.addSeparator()
            elif entry == "@recent":
                menu.addMenu(recent)
            elif entry.startswith("@"):
                extra[entry[1:]] = menu.addAction(MENU_ONLY[entry[1:]])
            else:
                menu.addAction(actions[entry])
    extra["auto_predict"].setCheckable(True)
    extra["crf_on"].setCheckable(True)
    for key, short in SHORT_TEXT.items():
        actions[key].setIconText(short)
        actions[key].setToolTip(f"{actions[key].text()} ({actions[key].shortcut().toString()})")
    actions["crf_toggle"].setText("Show prediction before CRF")
    actions["toggle_overlay"].setChecked(True)
    return extra, recent


def build_toolbars(
    window: QMainWindow, actions: dict[str, QAction], tool_state: ToolState
) -> tuple[ToolOptionsBar, QSlider]:
    """Tools, tool options and view toolbars; returns the options bar and the opacity slider."""
    tools_bar = QToolBar("Tools", window)
    tools_bar.setObjectName("tools_bar")
    group = QActionGroup(window)
    for key in TOOLS:
        group.addAction(actions[key])
        tools_bar.addAction(actions[key])
    tools_bar.addAction(actions["undo"])
    tools_bar.addAction(actions["redo"])
    window.addToolBar(tools_bar)
    window.tools_bar = tools_bar
    options_bar = ToolOptionsBar(tool_state, window)
    options_bar.protect_class_combo.setMinimumContentsLength(10)
    window.addToolBar(options_bar)
    window.smart_options = SmartOptions(tool_state, window)
    window.addToolBar(window.smart_options)
    view_bar = QToolBar("View", window)
    view_bar.setObjectName("view_bar")
    view_bar.addWidget(QLabel(" Opacity ", window))
    slider = QSlider(Qt.Orientation.Horizontal, window)
    slider.setRange(0, 100)
    slider.setMaximumWidth(140)
    slider.setToolTip("Overlay opacity")
    view_bar.addWidget(slider)
    for key in LAYERS:
        view_bar.addAction(actions[key])
    window.addToolBar(view_bar)
    window.view_bar = view_bar
    return options_bar, slider
