"""The window's side of a team project: *File -> Open team project...*, who is editing which image in
the browser, and the lease of the image being edited.

Every server call runs on a plain thread (the screen never waits on the network); results come back
through queued signals. Local projects never create any of this.
"""

from __future__ import annotations

import threading
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QInputDialog, QLineEdit

from segstudio.core.errors import SegStudioError
from segstudio.core.store_records import ImageRecord

__all__ = ["POLL_MS", "TeamPresence", "attach", "install_menu_action"]

#: How often the browser learns who is editing what (ms).
POLL_MS = 3000


def install_menu_action(window: Any) -> QAction:
    """*File -> Open team project...*, placed right after *Open folder*."""
    action = QAction("Open team project…", window)
    action.setStatusTip("Join a team project on a PostgreSQL server (docs/team.md)")
    action.triggered.connect(lambda: choose_team_project(window))
    opener = window.actions_by_id["open_folder"]
    for menu_action in window.menuBar().actions():
        menu = menu_action.menu()
        if menu is not None and opener in menu.actions():
            actions = menu.actions()
            after = actions[actions.index(opener) + 1] if actions.index(opener) + 1 < len(actions) else None
            if after is not None:
                menu.insertAction(after, action)
            else:
                menu.addAction(action)
            break
    return action


def choose_team_project(window: Any) -> None:
    """Ask for the server URL and the local copy of the images, then open like any folder."""
    url, ok = QInputDialog.getText(
        window,
        "Open team project",
        "Team server (postgresql://USER@HOST:PORT/DATABASE);\n"
        "the password comes from ~/.pgpass or PGPASSWORD, never from here:",
        QLineEdit.EchoMode.Normal,
    )
    if not ok or not url.strip():
        return
    folder = QFileDialog.getExistingDirectory(window, "Your copy of the team's images")
    if folder:
        window.open_folder(folder, db=url.strip())


def attach(window: Any, project: Any) -> TeamPresence | None:
    if not hasattr(project, "take_lease"):
        return None
    return TeamPresence(window, project)


class TeamPresence(QObject):
    editors_seen = Signal(object)  # {rel_path: member} of the others
    lease_refused = Signal(str)  # a message for the status bar

    def __init__(self, window: Any, project: Any) -> None:
        super().__init__(window)
        self.window = window
        self.project = project
        self._held: ImageRecord | None = None
        self._polling = False
        self._stopped = False
        self.editors_seen.connect(window.browser.model.set_editors)
        self.lease_refused.connect(lambda text: window.statusBar().showMessage(text, 15000))
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.poll)
        self.timer.start()
        self.poll()

    def _thread(self, work: Any) -> None:
        threading.Thread(target=work, name="segstudio-team", daemon=True).start()

    def poll(self) -> None:
        if self._polling or self._stopped:
            return
        self._polling = True
        paths = {r.id: r.rel_path for r in self.window.browser.model.records()}
        me = self.project.member

        def work() -> None:
            try:
                editors = self.project.editors()
                if not self._stopped:
                    self.editors_seen.emit(
                        {paths[i]: m for i, m in editors.items() if m != me and i in paths}
                    )
            except SegStudioError:
                pass  # the next poll tries again; saves report their own errors
            finally:
                self._polling = False

        self._thread(work)

    def image_opened(self, rec: ImageRecord) -> None:
        """Take the lease of the image now being edited; give back the previous one."""
        previous, self._held = self._held, rec

        def work() -> None:
            from segstudio.team.errors import LeaseError

            try:
                if previous is not None and previous.id != rec.id:
                    self.project.release_lease(previous)
                self.project.take_lease(rec)
            except LeaseError as error:
                self.lease_refused.emit(str(error))
            except SegStudioError as error:
                self.lease_refused.emit(f"team server: {error}")

        self._thread(work)

    def stop(self) -> None:
        self._stopped = True
        self.timer.stop()
