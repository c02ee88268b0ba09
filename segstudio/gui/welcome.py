"""First-run guidance: what to do with an empty window, and with a project that has no model yet.

Why in the window and not in the docs: a new user sees a blank canvas and a menu bar; the page
says "open a folder" with a button (and the recent folders), and a project without a model shows
a bar naming the four ways to get one, each a click away. `planned_model` tells the status bar
which model the project will use before one is loaded, so it never shows the previous project's.
No torch here: these run at start-up and on project open.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from segstudio.core.schemes import VOC_CLASSES

__all__ = ["ModelHintBar", "WelcomePage", "build_central", "has_model", "planned_model"]

MODEL_CHOICES = (
    "No model yet. To get predictions: use a weights file (a SegStudio checkpoint or a torchvision .pth), try an "
    "untrained model (random weights, only to try the app), or correct a few images by hand and fine-tune on them "
    "(Train → Fine-tune…). With the Pascal VOC classes, torchvision's weights download by themselves when online."
)


def _is_voc(names: list[str]) -> bool:
    return [n.casefold() for n in names] == [n.casefold() for n in VOC_CLASSES]


def planned_model(project: Any, choice: dict[str, Any] | None = None) -> str:
    """Which model predictions will use (the user's Model-menu choice, else what "auto" picks)."""
    choice = choice or {}
    if choice.get("weights") == "none":
        return "untrained (random weights)"
    if choice.get("weights") == "file" and choice.get("path"):
        return f"weights file {Path(str(choice['path'])).name}"
    if choice.get("weights") == "project" and choice.get("version"):
        return f"project version {choice['version']}"
    active = project.active_model_version()
    if active is not None:
        return f"project version {active.version}"
    if _is_voc(project.scheme.names):
        return "torchvision VOC weights (downloaded when online)"
    return "none yet"


def has_model(project: Any, choice: dict[str, Any] | None = None) -> bool:
    return planned_model(project, choice) != "none yet"


class WelcomePage(QWidget):
    """Shown while no folder is open: an Open folder button, recent folders, and how models work."""

    open_requested = Signal()
    recent_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("welcome_page")
        title = QLabel("<h2>SegStudio</h2>", self)
        intro = QLabel(
            "Open a folder of images to start annotating. SegStudio keeps its work in a "
            "<code>.segstudio</code> folder next to the images; nothing else is changed.",
            self,
        )
        intro.setWordWrap(True)
        self.open_button = QPushButton("Open folder…", self)
        self.open_button.setObjectName("welcome_open")
        self.open_button.setDefault(True)
        self.open_button.setMinimumHeight(36)
        self.open_button.clicked.connect(self.open_requested)
        self.recent_box = QVBoxLayout()
        self.recent_title = QLabel("<b>Recent folders</b>", self)
        models = QLabel(f"<b>Models.</b> {MODEL_CHOICES}", self)
        models.setWordWrap(True)
        models.setStyleSheet("color: #555")
        column = QVBoxLayout()
        for widget in (title, intro, self.open_button, self.recent_title):
            column.addWidget(widget)
        column.addLayout(self.recent_box)
        column.addSpacing(12)
        column.addWidget(models)
        column.addStretch(1)
        box = QWidget(self)
        box.setLayout(column)
        box.setMaximumWidth(560)
        box.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        outer = QHBoxLayout(self)
        outer.addStretch(1)
        outer.addWidget(box, 3)
        outer.addStretch(1)
        self.recent_buttons: list[QPushButton] = []

    def set_recent(self, folders: list[str]) -> None:
        for button in self.recent_buttons:
            self.recent_box.removeWidget(button)
            button.deleteLater()
        self.recent_buttons = []
        for folder in folders[:5]:
            button = QPushButton(folder, self)
            button.setFlat(True)
            button.setStyleSheet("text-align: left")
            button.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
            button.setToolTip(folder)
            button.clicked.connect(lambda _=False, f=folder: self.recent_requested.emit(f))
            self.recent_box.addWidget(button)
            self.recent_buttons.append(button)
        self.recent_title.setVisible(bool(folders))


class ModelHintBar(QFrame):
    """A bar above the canvas while the project has no model: the four ways to get one, as buttons."""

    weights_file = Signal()
    untrained = Signal()
    finetune = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("model_hint")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet("#model_hint { background: #fff4d6; } #model_hint QLabel { color: #5a4300; }")
        self.text = QLabel(
            "No model yet: paint by hand, or get predictions with one of these "
            "(torchvision's VOC weights download by themselves when online, VOC classes only).",
            self,
        )
        self.text.setWordWrap(True)
        self.text.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        row = QHBoxLayout()
        row.addWidget(self.text, 1)
        self.buttons: dict[str, QPushButton] = {}
        for key, label, tip, signal in (
            ("file", "Weights file…", "Model → Use weights file…", self.weights_file),
            (
                "untrained",
                "Untrained",
                "Model → Use untrained model (random weights, to try the app)",
                self.untrained,
            ),
            ("finetune", "Fine-tune…", "Train → Fine-tune… on the images you marked done", self.finetune),
        ):
            button = QPushButton(label, self)
            button.setToolTip(tip)
            button.clicked.connect(signal)
            row.addWidget(button)
            self.buttons[key] = button
        close = QToolButton(self)
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Hide this hint")
        close.clicked.connect(self.hide)
        row.addWidget(close)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addLayout(row)
        self.hide()


def build_central(parent: QWidget, canvas: QWidget) -> tuple[QStackedWidget, WelcomePage, ModelHintBar]:
    """The window's central area: the welcome page (no folder open) or the hint bar over the canvas."""
    welcome = WelcomePage(parent)
    hint = ModelHintBar(parent)
    editor = QWidget(parent)
    column = QVBoxLayout(editor)
    column.setContentsMargins(0, 0, 0, 0)
    column.setSpacing(0)
    column.addWidget(hint)
    column.addWidget(canvas, 1)
    stack = QStackedWidget(parent)
    stack.addWidget(welcome)
    stack.addWidget(editor)
    return stack, welcome, hint
