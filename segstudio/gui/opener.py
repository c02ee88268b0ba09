"""Opening a project off the GUI thread, so the window shows at once even for 10,000 new images."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from segstudio.core.errors import ProjectError, SegStudioError
from segstudio.core.logs import log_exception
from segstudio.core.project import Project
from segstudio.gui.tasks import TaskRunner, TaskState

__all__ = ["ProjectOpener"]


class ProjectOpener(QObject):
    """Opens a project off the GUI thread (hashing a new 10,000-image folder takes a while).

    Only the latest request counts: a project that finishes opening after the user asked for
    another folder (or closed the window) is closed again, so its lock is never leaked.
    """

    opened = Signal(object)
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._runner = TaskRunner(self, name="segstudio-open")
        self._runner.done.connect(self.opened)
        self._runner.failed.connect(self.failed)

    def start(self, folder: str, project_dir: str | None) -> None:
        def open_project(state: TaskState) -> Project:
            try:
                return Project.open(folder, project_dir, handle=state)
            except SegStudioError:
                raise
            except Exception as exc:  # an OS-level surprise: name the folder, keep the app running
                log_exception("open", exc)
                raise ProjectError(f"cannot open {folder}: {exc}") from exc

        self._runner.start(open_project, discard=lambda project: project.close())

    def cancel(self) -> None:
        self._runner.abandon()
