"""Every action and button of the window, triggered the way a user does, raises nothing.

Why: the palette's Add/Rename/Colour crashed for every user (`clicked(bool)` passed checked=False
into an optional name) while the tests called the slots directly. This test walks every QAction
and QAbstractButton of the main window (a project open), then of every dialog and panel those
opened, and triggers each with its real signal (`QAction.trigger()`, `QAbstractButton.click()`).
Only the blocking dialogs are stubbed (file pickers, message boxes, input dialogs: they answer
"cancel"); modal dialogs are shown non-modally so their own buttons are walked too. Any exception
reaching sys.excepthook, any error logged, and any error box fails the test, naming the control.
"""

from __future__ import annotations

import logging

import pytest
import shiboken6
from PySide6.QtGui import QAction, QColor
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QColorDialog,
    QDialog,
    QDockWidget,
    QFileDialog,
    QInputDialog,
    QMessageBox,
    QWidget,
)

from segstudio.gui.main_window import MainWindow

#: controls whose effect ends the walk (quitting) are triggered last, on their own
LAST = {"action_quit"}


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage())


@pytest.fixture
def stubbed_dialogs(monkeypatch) -> list[str]:
    """Blocking dialogs answer 'cancel'; warnings are recorded (an error a user would see)."""
    seen: list[str] = []

    def box(kind: str, answer: QMessageBox.StandardButton):
        def show(parent, title, text, *args, **kwargs):
            seen.append(f"{kind}: {title}: {text}")
            return answer

        return staticmethod(show)

    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: ("", "")))
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(lambda *a, **k: ([], "")))
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: ("", "")))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: ""))
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: ("", False)))
    monkeypatch.setattr(QInputDialog, "getItem", staticmethod(lambda *a, **k: ("", False)))
    monkeypatch.setattr(QInputDialog, "getInt", staticmethod(lambda *a, **k: (0, False)))
    monkeypatch.setattr(QColorDialog, "getColor", staticmethod(lambda *a, **k: QColor()))
    monkeypatch.setattr(QMessageBox, "question", box("question", QMessageBox.StandardButton.No))
    monkeypatch.setattr(QMessageBox, "information", box("information", QMessageBox.StandardButton.Ok))
    monkeypatch.setattr(QMessageBox, "warning", box("warning", QMessageBox.StandardButton.Ok))
    monkeypatch.setattr(QMessageBox, "critical", box("critical", QMessageBox.StandardButton.Ok))

    def exec_nonblocking(self: QDialog) -> int:
        self.show()  # walked like the window's own controls, then closed with the project
        return 0

    monkeypatch.setattr(QDialog, "exec", exec_nonblocking)
    return seen


def _controls(root: QWidget) -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = []
    for action in root.findChildren(QAction):
        if action.isSeparator() or action.menu() is not None:
            continue
        if type(action.parent()).__module__.startswith("pyqtgraph"):
            continue  # a plot's context-menu entry: only reachable by right-clicking the plot first
        found.append((f"{type(root).__name__}: action {action.objectName() or action.text()!r}", action))
    for button in root.findChildren(QAbstractButton):
        if button.objectName() == "qt_menubar_ext_button" or getattr(button, "menu", lambda: None)():
            continue  # pops up a menu of actions walked above (a blocking popup offscreen)
        label = button.objectName() or button.text() or button.toolTip() or type(button).__name__
        found.append((f"{type(root).__name__}: button {label!r}", button))
    return found


def _fire(control: object) -> None:
    if isinstance(control, QAction):
        if control.isEnabled():
            control.trigger()
    elif isinstance(control, QAbstractButton) and control.isEnabled():
        control.click()


def test_every_action_and_button_runs_without_error(qtbot, small_folder, stubbed_dialogs, monkeypatch):
    from segstudio.gui.settings import AppSettings

    shown_errors: list[str] = []
    real_show_error = MainWindow.show_error

    def recording_show_error(self, title: str, message: str) -> None:
        shown_errors.append(f"{title}: {message}")
        real_show_error(self, title, message)

    monkeypatch.setattr(MainWindow, "show_error", recording_show_error)
    errors = _Errors()
    logging.getLogger("segstudio").addHandler(errors)
    window = MainWindow(AppSettings())
    qtbot.addWidget(window)
    window.resize(1200, 800)
    window.show()
    qtbot.waitExposed(window)
    window.open_folder(small_folder)
    qtbot.waitUntil(
        lambda: window.session is not None and window.session.document is not None, timeout=20_000
    )
    window.use_weights(weights="none", path=None, version=None)  # offline: no download attempted
    window.settings.auto_predict = False

    failures: list[str] = []
    fired: set[int] = set()
    roots: list[QWidget] = [window]
    last: list[tuple[str, object]] = []
    kept: list[object] = []
    try:
        with qtbot.captureExceptions() as exceptions:
            while roots:
                root = roots.pop(0)
                for name, control in _controls(root):
                    if id(control) in fired or not shiboken6.isValid(control):
                        continue  # seen, or deleted by an earlier control (a rebuilt list or menu)
                    fired.add(id(control))
                    kept.append(control)  # alive: its id is never reused by another wrapper
                    if control.objectName() in LAST:
                        last.append((name, control))
                        continue
                    before = (len(exceptions), len(errors.records), len(shown_errors), len(stubbed_dialogs))
                    _fire(control)
                    qtbot.wait(20)
                    new = (
                        [f"exception {e[1]!r}" for e in exceptions[before[0] :]]
                        + [f"logged {m}" for m in errors.records[before[1] :]]
                        + [f"error shown {m}" for m in shown_errors[before[2] :]]
                        + [m for m in stubbed_dialogs[before[3] :] if m.startswith(("warning", "critical"))]
                    )
                    failures += [f"{name}: {m}" for m in new]
                # Dialogs and panels the controls opened: walked next.
                for widget in QApplication.topLevelWidgets():
                    if (
                        widget is not window
                        and widget.isVisible()
                        and not isinstance(widget, QDockWidget)
                        and id(widget) not in fired
                    ):
                        fired.add(id(widget))
                        kept.append(widget)
                        roots.append(widget)
            walked = len(fired)
            for name, control in last:
                before_close = len(exceptions)
                _fire(control)
                qtbot.wait(20)
                failures += [f"{name}: exception {e[1]!r}" for e in exceptions[before_close:]]
    finally:
        logging.getLogger("segstudio").removeHandler(errors)
        window.close()
    assert walked > 80, f"only {walked} controls found: the walk does not see the window"
    assert not failures, "\n".join(failures)


def test_palette_buttons_add_rename_and_recolour_by_click(qtbot, shown_window, small_folder, monkeypatch):
    """The route the Cityscapes export error recommends ("rename your classes"), clicked as a user does."""
    from PySide6.QtCore import Qt

    window = shown_window(small_folder)
    palette = window.palette
    answers = iter([("kerb", True), ("pavement edge", True)])
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: next(answers)))
    monkeypatch.setattr(QColorDialog, "getColor", staticmethod(lambda *a, **k: QColor(1, 2, 3)))
    count = window.project.scheme.num_classes
    qtbot.mouseClick(palette.add_button, Qt.MouseButton.LeftButton)
    assert window.project.scheme.num_classes == count + 1
    assert window.project.scheme.names[-1] == "kerb" and palette.active_class == count
    qtbot.mouseClick(palette.rename_button, Qt.MouseButton.LeftButton)
    assert window.project.scheme.names[-1] == "pavement edge"
    qtbot.mouseClick(palette.color_button, Qt.MouseButton.LeftButton)
    assert window.project.scheme.classes[-1].color == (1, 2, 3)
