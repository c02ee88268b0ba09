"""Opening a project off the GUI thread, so the window shows at once even for 10,000 new images."""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, Signal

from segstudio.core.errors import SegStudioError
from segstudio.core.project import Project
from segstudio.core.logs import log_exception

__all__ = ["ProjectOpener"]


class ProjectOpener(QObject):
    """Opens a project off the GUI thread (hashing a new 10,000-image folder takes a while).

    Only the latest request counts: a project that finishes opening after the user asked for
    another folder (or closed the window) is closed again, so its lock is never leaked.
    """

    opened = Signal(object)
    failed = Signal(str)
    _done = Signal(int, object, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._generation = 0
        self._done.connect(self._finish)

    def start(self, folder: str, project_dir: str | None) -> None:
        self._generation += 1
        generation = self._generation

        def run() -> None:
            try:
                self._done.emit(generation, Project.open(folder, project_dir), "")
            except SegStudioError as exc:
                self._done.emit(generation, None, str(exc))
            except Exception as exc:  # noqa: BLE001
                log_exception("open", exc)
                self._done.emit(generation, None, f"cannot open {folder}: {exc}")

        threading.Thread(target=run, name="segstudio-open", daemon=True).start()

    def cancel(self) -> None:
        self._generation += 1

    def _finish(self, generation: int, project: Project | None, message: str) -> None:
        if generation != self._generation:
            if project is not None:
                project.close()
            return
        if project is None:
            self.failed.emit(message)
        else:
            self.opened.emit(project)
