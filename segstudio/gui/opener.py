"""Opening a project off the GUI thread, so the window shows at once even for 10,000 new images."""

from __future__ import annotations

import threading
from concurrent.futures import Future

from PySide6.QtCore import QObject, Signal

from segstudio.core.errors import ProjectError, SegStudioError
from segstudio.core.logs import log_exception
from segstudio.core.project import Project
from segstudio.core.task_handle import NullTask, TaskHandle
from segstudio.gui.background_tasks import TaskRunner

__all__ = ["EarlyOpen", "ProjectOpener", "open_project"]


def open_project(folder: str, project_dir: str | None, handle: TaskHandle, db: str | None = None) -> Project:
    """`Project.open`, with OS-level surprises turned into a message that names the folder.

    `db`: a team project's server URL (the project then lives there; see docs/team.md)."""
    try:
        project = Project.open(folder, project_dir, handle=handle, db=db)
    except SegStudioError:
        raise
    except Exception as exc:  # an OS-level surprise: name the folder, keep the app running
        log_exception("open", exc)
        raise ProjectError(f"cannot open {folder}: {exc}") from exc
    try:  # the window reads the project's CRF switch through it when the project is ready: load it here,
        from segstudio.ml import crf_project  # noqa: F401  off the GUI thread (no torch)
    except Exception as exc:
        log_exception("open", exc)
    return project


class EarlyOpen:
    """A folder given on the command line, opened on a plain thread while the window is still being built.

    Why: opening (a first open hashes every image) and importing the window's modules (pyqtgraph,
    Qt classes) are both on the way to the first photo; run side by side, the opening mostly hides
    behind the imports (hashing and file and SQLite I/O release the GIL). The window adopts the
    result through `ProjectOpener.start(..., early=this)` (`TaskRunner.adopt` of its future), so it
    arrives exactly like any other open. The plain thread is deliberate: it starts before Qt's
    modules are imported, so no Qt object can run it.
    """

    def __init__(self, folder: str, project_dir: str | None) -> None:
        self.request = (folder, project_dir)
        self.handle = NullTask()
        self.future: Future[Project] = Future()
        threading.Thread(target=self._run, name="segstudio-early-open", daemon=True).start()

    def _run(self) -> None:
        try:
            self.future.set_result(open_project(*self.request, self.handle))
        except BaseException as exc:
            self.future.set_exception(exc)

    def close_when_done(self) -> None:
        """Not adopted (another folder was asked for): close its project once it exists, so no lock leaks."""
        self.handle.cancel()
        self.future.add_done_callback(lambda f: f.exception() is None and f.result().close())


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

    def start(
        self, folder: str, project_dir: str | None, early: EarlyOpen | None = None, db: str | None = None
    ) -> None:
        """Open `folder` (on the team server `db`, if given); `early` is an open of it already under way
        (run_app), adopted instead of a new one."""
        if early is not None and (early.request != (folder, project_dir) or db is not None):
            early.close_when_done()
            early = None
        if early is not None:
            # no thread waits for it: the future's completion is reported as a queued signal
            self._runner.adopt(
                early.future, on_cancel=early.handle.cancel, discard=lambda project: project.close()
            )
            return
        self._runner.start(
            lambda state: open_project(folder, project_dir, state, db),
            discard=lambda project: project.close(),
        )

    def cancel(self) -> None:
        self._runner.abandon()
