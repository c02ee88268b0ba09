"""Help > Open log folder opens the open project's log folder; worker errors land there with tracebacks."""

from __future__ import annotations

import numpy as np
from PIL import Image
from PySide6.QtGui import QDesktopServices

from segstudio.core.logs import LOG_FILE, current_log_dir, user_log_dir
from segstudio.gui.main_window import MainWindow
from segstudio.gui.settings import AppSettings


def test_help_menu_opens_the_project_log_folder_and_worker_errors_are_logged(qtbot, tmp_path, monkeypatch):
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(images / "a.png")
    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()))
    window = MainWindow(AppSettings())
    qtbot.addWidget(window)
    action = next(
        a
        for m in window.menuBar().actions()
        if "Help" in m.text()
        for a in m.menu().actions()
        if a.text() == "Open log folder"
    )
    action.trigger()
    assert opened == [str(user_log_dir().absolute())]  # no project yet: the user's log folder
    window.open_folder(images)
    qtbot.waitUntil(lambda: window.project is not None, timeout=20000)
    assert action.isEnabled()
    action.trigger()
    logs = window.project.state_dir / "logs"
    assert opened[-1] == str(logs.absolute()) and current_log_dir() == logs.absolute()

    from segstudio.gui.background_tasks import TaskRunner

    def buggy(state):
        return {}["missing key"]

    runner = TaskRunner()
    with qtbot.waitSignal(runner.failed, timeout=10000):
        runner.start(buggy)
    runner.wait()
    text = (logs / LOG_FILE).read_text()
    assert "Traceback" in text and "in buggy" in text and "KeyError" in text
    window.close_project()
